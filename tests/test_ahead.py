"""ahead.py: which frame-only work runs on the worker thread while the answer is generated, and
on how many torch threads."""

import threading

import pytest
import torch

from ros_ground import ahead

# torch's thread count per thread is OpenMP's behaviour (the wheels' backend)
pytestmark = pytest.mark.skipif("OpenMP" not in torch.__config__.parallel_info(),
                                reason="torch's parallel backend is not OpenMP")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores,torch_threads,sam,lmm,expected", [
    (2, 1, "cpu", "cpu", (True, True)),      # a core left free: both ahead
    (2, 2, "cpu", "cpu", (False, False)),    # torch on every core: the worker would spin
    (2, 0, "cpu", "cpu", (False, False)),    # torch's default: nothing measured to be spare
    (1, 1, "cpu", "cpu", (False, False)),
    (2, 2, "cuda", "cuda", (True, False)),   # SAM on a GPU; the views stay after on a GPU LMM
    (8, 4, "cuda", "cuda:0", (True, False)),
    (8, 4, "cpu", "cuda:0", (True, False)),
])
def test_ahead_only_where_the_work_has_somewhere_to_run(monkeypatch, cores, torch_threads, sam,
                                                        lmm, expected):
    monkeypatch.setattr(ahead, "usable_cores", lambda: cores)
    assert ahead.spare_cores(torch_threads) == (cores - torch_threads if torch_threads else 0)
    assert ahead.ahead_work(None, sam, torch.device(lmm), torch_threads) == expected
    assert ahead.ahead_work(False, sam, lmm, torch_threads) == (False, False)
    assert ahead.ahead_work(True, sam, lmm, torch_threads) == (True, lmm == "cpu")


def test_each_job_sets_its_own_threads_on_the_one_worker(threads):
    """The worker thread keeps its count between jobs and new threads start from the last value
    set anywhere, so every job sets its own, and the request's thread keeps its own."""
    torch.set_num_threads(3)
    seen = [ahead.worker().submit(ahead.with_threads(torch.get_num_threads, n)).result()
            for n in (2, 1, 2)]
    assert seen == [2, 1, 2] and torch.get_num_threads() == 3


@pytest.mark.parametrize("torch_threads,cores,inside", [(1, 3, 3), (0, 3, 1), (1, 1, 1)])
def test_grounding_after_the_answer_joins_the_spare_cores(monkeypatch, threads, torch_threads,
                                                          cores, inside):
    monkeypatch.setattr(ahead, "usable_cores", lambda: cores)
    torch.set_num_threads(1)
    with ahead.joined(torch_threads):
        assert torch.get_num_threads() == inside
    assert torch.get_num_threads() == 1
    with pytest.raises(RuntimeError), ahead.joined(torch_threads):
        raise RuntimeError("a failed stage")
    assert torch.get_num_threads() == 1


def test_a_request_sets_its_threads_for_its_duration_only(threads):
    torch.set_num_threads(2)
    with ahead.threads(0):
        assert torch.get_num_threads() == 2
    with ahead.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), ahead.threads(1):
        raise RuntimeError("a failed request")
    assert torch.get_num_threads() == 2


def test_one_worker_thread_serves_every_request_in_order():
    first = ahead.worker()
    order = []
    jobs = [first.submit(order.append, i) for i in range(5)]
    jobs[-1].result()
    names = {ahead.worker().submit(lambda: threading.current_thread().name).result()
             for _ in range(3)}
    assert ahead.worker() is first and order == list(range(5))
    assert len(names) == 1 and names.pop().startswith("ground-ahead")


def test_a_views_prefill_nobody_waited_for_is_canceled_or_finished():
    gate, ran = threading.Event(), []

    class Slow:
        def prefill_views(self, *args):
            ran.append(args)

    blocker = ahead.worker().submit(gate.wait)  # the worker busy with an earlier job
    with ahead.views_prefill(Slow(), None, "p", ["identity", "hflip"], True) as future:
        assert not future.done()
        gate.set()
    assert future.done() and blocker.result()
    assert ran in ([], [(None, "p", ["hflip"])])  # canceled before it started, or it ran whole
    with ahead.views_prefill(Slow(), None, "p", ["identity"], True) as future:
        assert future is None  # nothing to read but the image as it is


def test_torch_threads_beyond_the_cpus_are_refused_everywhere(monkeypatch):
    """More threads than CPUs only slow every op (11.7 s a request at 1000 threads on 2 CPUs):
    the setting, the engine and the API refuse them, naming the setting."""
    from ros_ground import cores, settings
    from ros_ground.engine import GroundingEngine

    monkeypatch.setattr(cores, "usable_cores", lambda: 4)
    setting = settings.by_name(settings.GROUNDING)["torch_threads"]
    assert [setting.check(n) for n in (0, 1, 4)] == [0, 1, 4]
    for bad in (5, 1000, -1):
        with pytest.raises(ValueError, match="torch_threads"):
            setting.check(bad)
        with pytest.raises(ValueError, match="torch_threads"):
            GroundingEngine(lmm=None, sam=None, nlp=None, torch_threads=bad)
