"""The device rule every model loader shares (ros_ground.device)."""

import pytest
import torch

from ros_ground.device import resolve_device


def test_names_torch_reads():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
    for bad in ("CPU", "", "gpu"):
        with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
            resolve_device(bad)


def test_meta_runs_no_model():
    with pytest.raises(KeyError, match="meta device runs no model"):
        resolve_device("meta", KeyError)


def test_cuda_index_is_checked_against_the_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda")
    seen = r"'cuda:2' requested but torch sees 2 CUDA devices \(cuda:0..cuda:1\)"
    with pytest.raises(ValueError, match=seen):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("name", ["mps", "xpu", "meta", "cuda:-1"])
def test_the_loaders_refuse_what_the_setting_refuses(name):
    # the node's `device` check (settings) and the loaders' (resolve_device) take the same names
    from ros_ground import settings

    with pytest.raises(ValueError, match="device must be auto"):
        settings.by_name(settings.GROUNDING)["device"].check(name)
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N"):
        resolve_device(name)
