"""ahead.py: which frame-only work runs on a worker thread while the answer is generated."""

import threading

import pytest
import torch

from ros_ground import ahead


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores,torch_threads,sam,lmm,expected", [
    (2, 1, "cpu", "cpu", (True, True)),      # a core left free: both ahead
    (2, 2, "cpu", "cpu", (False, False)),    # torch on every core: the worker would spin
    (1, 1, "cpu", "cpu", (False, False)),
    (2, 2, "cuda", "cuda", (True, False)),   # SAM on a GPU; the views stay after on a GPU LMM
    (8, 4, "cuda", "cuda:0", (True, False)),
    (8, 4, "cpu", "cuda:0", (True, False)),
])
def test_ahead_only_where_the_work_has_somewhere_to_run(monkeypatch, threads, cores,
                                                        torch_threads, sam, lmm, expected):
    monkeypatch.setattr(ahead, "usable_cores", lambda: cores)
    torch.set_num_threads(torch_threads)
    assert ahead.spare_threads() == cores - torch_threads
    assert ahead.ahead_work(None, sam, torch.device(lmm)) == expected
    assert ahead.ahead_work(False, sam, lmm) == (False, False)
    assert ahead.ahead_work(True, sam, lmm) == (True, lmm == "cpu")


def test_the_worker_takes_only_the_spare_cores(monkeypatch, threads):
    monkeypatch.setattr(ahead, "usable_cores", lambda: 6)
    torch.set_num_threads(4)
    seen = {}
    work = ahead.on_spare_threads(lambda: seen.setdefault("worker", torch.get_num_threads()))
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == {"worker": 2} and torch.get_num_threads() == 4  # the caller's unchanged


@pytest.mark.parametrize("enabled,cores,inside", [(True, 3, 3), (False, 3, 1), (True, 1, 1)])
def test_grounding_after_the_answer_joins_the_spare_cores(monkeypatch, threads, enabled, cores,
                                                          inside):
    monkeypatch.setattr(ahead, "usable_cores", lambda: cores)
    torch.set_num_threads(1)
    with ahead.spare_cores_joined(enabled):
        assert torch.get_num_threads() == inside
    assert torch.get_num_threads() == 1
    with pytest.raises(RuntimeError), ahead.spare_cores_joined(enabled):
        raise RuntimeError("a failed stage")
    assert torch.get_num_threads() == 1
