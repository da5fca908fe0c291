"""The sim retrieval head and region encoder are used only with the LMM they were trained for."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from ros_ground import region_encoder, retrieval
from ros_ground.errors import InputError
from ros_ground.lmm import fingerprint
from ros_ground.lmm.fingerprint import KEY, lmm_sha256


def test_the_fingerprint_is_the_weights_files_sha256_and_none_without_one(tmp_path):
    assert lmm_sha256(tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    assert lmm_sha256(tmp_path) == hashlib.sha256(b"weights").hexdigest()


def test_the_shipped_head_and_encoder_record_the_shipped_lmm():
    shipped = lmm_sha256()
    assert shipped is not None
    assert retrieval.head_record()[KEY] == shipped
    assert torch.load(region_encoder.SIM_REGION_ENCODER_PATH, weights_only=True)[KEY] == shipped
    assert retrieval.load_head(lmm_sha256=shipped) is not None
    assert region_encoder.load_encoder(lmm_sha256=shipped) is not None


def _head(tmp_path, recorded):
    path = tmp_path / "head.npy"
    np.save(path, np.eye(4, dtype=np.float32))
    path.with_suffix(".json").write_text(json.dumps({KEY: recorded} if recorded else {}))
    return path


def test_a_head_for_other_weights_warns_naming_both_and_is_not_loaded(tmp_path, caplog):
    path = _head(tmp_path, "a" * 64)
    np.testing.assert_array_equal(retrieval.load_head(path, lmm_sha256="a" * 64), np.eye(4))
    with caplog.at_level("WARNING", logger="ros_ground.lmm.fingerprint"):
        assert retrieval.load_head(path, lmm_sha256="b" * 64) is None
    said = caplog.records[-1].getMessage()
    assert "aaaaaaaaaaaa" in said and "bbbbbbbbbbbb" in said and str(path) in said
    assert "python -m ros_ground.train.retrieval_head" in said
    caplog.clear()
    with caplog.at_level("WARNING", logger="ros_ground.lmm.fingerprint"):
        assert retrieval.load_head(_head(tmp_path, None), lmm_sha256="b" * 64) is None
    assert "no LMM fingerprint" in caplog.records[-1].getMessage()


def test_the_sim_scorer_scores_without_a_head_trained_for_other_weights(monkeypatch, tmp_path,
                                                                        caplog):
    from ros_ground import entity_scoring
    from ros_ground.lmm import load_lmm

    tiny_lmm = load_lmm("tiny", device="cpu")

    dim = tiny_lmm.model.get_input_embeddings().weight.shape[1]
    path = tmp_path / "head.npy"
    np.save(path, np.eye(dim, dtype=np.float32))
    path.with_suffix(".json").write_text(json.dumps({"entity_token_window": 3.0, KEY: "a" * 64}))
    monkeypatch.setattr(retrieval, "SIM_HEAD_PATH", path)
    monkeypatch.setattr(tiny_lmm, "name", "sim")
    monkeypatch.setattr(fingerprint, "lmm_sha256", lambda model_dir=None: "a" * 64)
    assert entity_scoring.EntityScorer(tiny_lmm)._head(3.0) is not None
    monkeypatch.setattr(fingerprint, "lmm_sha256", lambda model_dir=None: "b" * 64)
    with caplog.at_level("WARNING"):
        assert entity_scoring.EntityScorer(tiny_lmm)._head(3.0) is None
    assert any("trained for other weights" in r.getMessage() for r in caplog.records)


def test_an_encoder_for_other_weights_warns_and_the_encoder_token_is_refused(tmp_path, monkeypatch,
                                                                             caplog):
    path = tmp_path / "encoder.pt"
    region_encoder.save_encoder(region_encoder.RegionEncoder(8), path, lmm_sha256="a" * 64)
    assert region_encoder.load_encoder(path, lmm_sha256="a" * 64).hidden == 8
    monkeypatch.setattr(region_encoder, "SIM_REGION_ENCODER_PATH", path)
    monkeypatch.setattr(region_encoder, "_LOADED", {})
    monkeypatch.setattr(region_encoder, "lmm_sha256", lambda model_dir=None: "b" * 64)
    with caplog.at_level("WARNING", logger="ros_ground.lmm.fingerprint"):
        with pytest.raises(InputError, match="trained for other weights.*region_encoder.*'pooled'"):
            region_encoder.encoder_for("sim")
        with pytest.raises(InputError):  # loaded once: warned once
            region_encoder.encoder_for("sim")
    assert len(caplog.records) == 1 and "aaaaaaaaaaaa" in caplog.records[0].getMessage()
    monkeypatch.setattr(region_encoder, "_LOADED", {})
    monkeypatch.setattr(region_encoder, "lmm_sha256", lambda model_dir=None: "a" * 64)
    assert region_encoder.encoder_for("sim").hidden == 8
