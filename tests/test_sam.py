"""SAM loading, the one-embedding-per-frame cache, mask proposals and entity tokens (tiny model,
CPU)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor

from ros_ground import ahead
from ros_ground.sam import (
    REGISTRY_SPECS,
    SamLoadError,
    SamSegmenter,
    build_sam_from_config,
    build_tiny_sam,
    config_of,
    entity_tokens,
    get_shared_sam,
    load_sam,
    mask_proposals,
    sam_config,
    save_sam,
)
from ros_ground.sam.predictor import timed_stage

H, W = 96, 160
POINTS = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture()
def seg() -> SamSegmenter:
    return load_sam("tiny")


def test_tiny_sam_through_stock_predictor():
    predictor = SamPredictor(build_tiny_sam())
    predictor.set_image(_image())
    masks, scores, low_res = predictor.predict(
        point_coords=np.array([[40.0, 30.0]]), point_labels=np.array([1]), multimask_output=True
    )
    assert masks.shape == (3, H, W) and masks.dtype == bool
    assert scores.shape == (3,)


def test_tiny_sam_is_deterministic_and_leaves_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_tiny_sam(seed=1), build_tiny_sam(seed=1)
    assert torch.rand(1) == expected
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert not torch.equal(
        build_tiny_sam(seed=2).mask_decoder.iou_token.weight, a.mask_decoder.iou_token.weight
    )


def test_segment_point_shape_and_choice(seg):
    image = _image()
    mask, score = seg.segment_point(image, (40.0, 30.0))
    assert mask.shape == (H, W) and mask.dtype == bool and isinstance(score, float)
    fixed, _ = seg.segment_point(image, (40.0, 30.0), choice=2)
    assert fixed.shape == (H, W)
    again, _ = seg.segment_point(None, (40.0, 30.0), choice=2)
    np.testing.assert_array_equal(fixed, again)
    assert seg.embedding_passes == 1
    with pytest.raises(ValueError):
        seg.segment_point(image, (1.0, 1.0), choice=3)


@pytest.mark.parametrize("choice", ["iou", 2])
def test_segment_points_decode_together_what_predict_decodes_one_by_one(seg, monkeypatch, choice):
    import ros_ground.sam.predictor as predictor_module

    image = _image(3)
    points = [(10.0, 12.0), (80.5, 40.0), (150.0, 90.0), (40.0, 70.0), (120.0, 8.0)]
    monkeypatch.setattr(predictor_module, "BATCH_MASK_BYTES", 2 * 3 * H * W)  # batches of 2, 2, 1
    together = seg.segment_points(image, points, choice)
    assert len(together) == len(points)
    for point, (mask, score) in zip(points, together):
        masks, scores, _ = seg.predictor.predict(  # segment_anything's own one-prompt path
            point_coords=np.array([point], dtype=np.float32), point_labels=np.array([1]),
            multimask_output=True)
        index = int(np.argmax(scores)) if choice == "iou" else choice
        assert mask.dtype == bool and mask.shape == (H, W)
        assert np.mean(mask != masks[index]) < 1e-3 and score == pytest.approx(scores[index], abs=1e-4)
    assert seg.segment_points(None, [], choice) == []
    assert seg.embedding_passes == 1


def test_same_image_is_encoded_once(seg):
    image = _image()
    seg.set_image(image)
    seg.set_image(image)
    seg.set_image(image.copy())  # same content, new buffer: content hash hits
    assert seg.embedding_passes == 1
    seg.set_image(_image(1))
    assert seg.embedding_passes == 2
    seg.set_image(image, key=("cam", 7))
    seg.set_image(_image(5), key=("cam", 7))  # an explicit key is trusted, content not hashed
    assert seg.embedding_passes == 3


def test_timed_stage_reports_this_threads_encoder_passes_as_embedding(seg, monkeypatch):
    encoder = seg.sam.image_encoder
    forward = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda x: (time.sleep(0.2), forward(x))[1])
    timing = {"sam_embedding": 1.0}
    with timed_stage(timing, "segment"):
        seg.segment_point(_image(), (10.0, 10.0))  # encodes the frame, then decodes
    assert timing["sam_embedding"] >= 201.0 and timing["segment"] < 200.0, timing
    other = threading.Thread(target=seg.set_image, args=(_image(1),))
    timing = {}
    with timed_stage(timing, "wait"):  # another thread's pass is not this stage's embedding
        other.start()
        other.join()
    assert timing["sam_embedding"] == 0.0 and timing["wait"] >= 200.0, timing


# an image is a numpy array: a tensor or a list of uint8 pixels is refused, not converted
BAD_IMAGES = [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8),
              np.zeros((0, 8, 3), np.uint8), np.zeros((8, 8, 4), np.uint8),
              np.zeros((8, 8, 3), np.uint8).tolist(), torch.zeros((8, 8, 3), dtype=torch.uint8),
              None]


@pytest.fixture(scope="module")
def tiny_lmm():
    from ros_ground.lmm import load_lmm

    return load_lmm("tiny", device="cpu")


@pytest.mark.parametrize("bad", BAD_IMAGES,
                         ids=["float", "2d", "empty", "rgba", "list", "tensor", "none"])
def test_every_model_input_rejects_a_bad_image_with_one_input_error(seg, tiny_lmm, bad):
    from ros_ground.errors import InputError

    adapter = tiny_lmm
    calls = [lambda: seg.set_image(bad), lambda: seg.zooms(bad), lambda: seg.propose(bad),
             lambda: adapter.prepare(bad, "Describe the image.")]
    if bad is not None:  # segment_points(None, ...) decodes on the current image
        calls.append(lambda: seg.segment_points(bad, [(1.0, 1.0)]))
    for call in calls:
        with pytest.raises(InputError, match="non-empty HxWx3 uint8 RGB array") as raised:
            call()
        assert isinstance(raised.value, ValueError)  # callers that catch ValueError still do
    assert seg.embedding_passes == 0


def test_set_image_is_thread_safe(seg):
    image = _image()
    threads = [
        threading.Thread(target=seg.segment_point, args=(image, (10.0, 10.0))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seg.embedding_passes == 1


def test_propose_reuses_embedding(seg):
    image = _image()
    seg.set_image(image, key="frame-1")
    before, _ = seg.segment_point(None, (50.0, 50.0))
    proposals = seg.propose(image, key="frame-1", box_nms_thresh=0.99, **POINTS)
    assert seg.embedding_passes == 1
    assert proposals, "thresholds at 0 keep the grid's masks"
    assert [p.id for p in proposals] == list(range(len(proposals)))
    for p in proposals:
        assert p.mask.shape == (H, W) and p.mask.dtype == bool
        assert p.feature.shape == (32,) and p.feature.dtype == np.float32
    after, _ = seg.segment_point(None, (50.0, 50.0))  # the generator left the embedding in place
    np.testing.assert_array_equal(before, after)
    seg.propose(image, **POINTS)  # no key: a content key differs from "frame-1", so one new pass
    seg.propose(image.copy(), **POINTS)  # same content: hashed once, then the generator's alias
    assert seg.embedding_passes == 2
    with pytest.raises(TypeError):
        seg.propose(image, output_mode="coco_rle")


def test_propose_with_crops_restores_full_frame(seg):
    image = _image()
    seg.set_image(image)
    seg.propose(image, crop_n_layers=1, **POINTS)
    assert seg.embedding_passes == 1 + 4  # full frame reused; four crops encoded
    assert tuple(seg.predictor.original_size) == (H, W)
    seg.set_image(image)
    assert seg.embedding_passes == 5


def test_proposal_zoom_encodes_one_crop_per_window_of_a_large_frame(seg):
    from ros_ground.sam.windows import proposal_windows

    small = _image()  # 96x160, below the tiny SAM's 256-px input: no window, the same masks
    plain = seg.propose(small, key="small", **POINTS)
    zoomed = seg.propose(small, key="small", proposal_zoom=True, **POINTS)
    assert seg.embedding_passes == 1
    assert [p.mask.tolist() for p in zoomed] == [p.mask.tolist() for p in plain]
    large = np.random.default_rng(2).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    windows = proposal_windows(300, 500, seg.img_size)
    assert len(windows) == 6
    proposals = seg.propose(large, key="large", proposal_zoom=True, **POINTS)
    assert seg.embedding_passes == 1 + 1 + len(windows)  # the frame once, each window once
    assert tuple(seg.predictor.original_size) == (300, 500)  # the frame stays current
    assert seg._crop_predictor.is_image_set is False  # the crops' predictor is released
    assert all(p.mask.shape == (300, 500) for p in proposals)
    # with crop layers too: the layers' crops and the zoom crops, each encoded once
    both = seg.propose(large, key="large", proposal_zoom=True, crop_n_layers=1, **POINTS)
    assert seg.embedding_passes == 2 + len(windows) + 4 + len(windows)
    assert all(p.mask.shape == (300, 500) for p in both)
    # max_zoom_crops bounds the encoder passes a frame costs
    passes = seg.embedding_passes
    capped = seg.propose(large, key="large", proposal_zoom=True, max_zoom_crops=2, **POINTS)
    assert seg.embedding_passes - passes == len(proposal_windows(300, 500, seg.img_size, 2)) == 2
    assert all(p.mask.shape == (300, 500) for p in capped)
    # zoom_magnification: crops of img_size / 2 px, which SAM reads twice enlarged
    passes = seg.embedding_passes
    magnified = seg.propose(large, key="large", proposal_zoom=True, zoom_magnification=2.0,
                            max_zoom_crops=100, **POINTS)
    crops = proposal_windows(300, 500, seg.img_size // 2)
    assert seg.embedding_passes - passes == len(crops) > len(windows)
    assert all(p.mask.shape == (300, 500) for p in magnified)
    with pytest.raises(ValueError, match="zoom_magnification"):
        seg.propose(large, key="large", proposal_zoom=True, zoom_magnification=0.5, **POINTS)


def _blobs() -> np.ndarray:
    """Flat regions (a disc, a box, a background) with some noise: several distinct masks."""
    rows, cols = np.mgrid[0:H, 0:W]
    image = np.full((H, W, 3), 40, dtype=np.uint8)
    image[(rows - 45) ** 2 + (cols - 50) ** 2 < 600] = (200, 30, 30)
    image[15:80, 100:150] = (30, 200, 60)
    noise = np.random.default_rng(1).integers(0, 20, (H, W, 3), dtype=np.uint8)
    return image + noise


@pytest.mark.parametrize("params, at_least", [
    ({"box_nms_thresh": 1.0, "points_per_batch": 5}, 40),  # no NMS; batches split unevenly
    ({"box_nms_thresh": 1.0, "crop_n_layers": 1}, 5),
    ({"box_nms_thresh": 0.99, "min_mask_region_area": 40}, 5),
    ({"box_nms_thresh": 1.0, "pred_iou_thresh": 0.02, "stability_score_thresh": 0.59,
      "stability_score_offset": 0.001}, 3),  # both filters at work: 4 of 48 pass
])
def test_propose_gives_segment_anythings_generator_masks(params, at_least):
    seg = SamSegmenter(build_tiny_sam(seed=3))  # seed 3: its random masks differ enough
    image = _blobs()
    settings = {**POINTS, **params}
    stock = SamAutomaticMaskGenerator(build_tiny_sam(seed=3), **settings).generate(image)
    seg.set_image(_image(9), key="another frame")  # propose must make its image current
    proposals = seg.propose(image, **settings)
    assert len(stock) >= at_least, "the comparison needs several masks"
    assert len(proposals) == len(stock)
    for proposal, record in zip(proposals, stock):
        np.testing.assert_array_equal(proposal.mask, record["segmentation"])
        assert proposal.score == record["predicted_iou"]
        assert proposal.stability == record["stability_score"]
    features = np.stack([p.feature for p in proposals])
    np.testing.assert_array_equal(features, entity_tokens(seg.predictor, [p.mask for p in proposals]))


def test_proposals_reject_unknown_parameters_and_a_predictor_without_the_image(seg):
    with pytest.raises(TypeError, match="crop_nms_thresh"):
        seg.propose(_image(), crop_nms_thresh=0.5)
    assert seg.embedding_passes == 0  # refused before any encoder pass
    seg.set_image(_image())
    with pytest.raises(ValueError, match="holds a"):
        mask_proposals(seg.predictor, np.zeros((H // 2, W, 3), dtype=np.uint8))


@pytest.mark.parametrize("spec", REGISTRY_SPECS)
def test_released_architecture_without_checkpoint_fails_at_load(spec):
    with pytest.raises(SamLoadError, match=f"SAM '{spec}' needs its checkpoint"):
        load_sam(spec)
    with pytest.raises(SamLoadError, match="needs its checkpoint"):
        get_shared_sam(spec, None, "cpu")


def test_sam_settings_are_checked_before_the_lmm_loads(monkeypatch, tmp_path):
    # each of these was found only after seconds of loading the LMM, some with a misleading
    # message ("a saved-model path ..." for the default sim with a checkpoint)
    import ros_ground.lmm as lmm
    from ros_ground.engine import build_engine

    monkeypatch.setattr(lmm, "load_lmm", lambda *a, **k: pytest.fail("the LMM was loaded"))
    for sam_model, checkpoint, device, words in [
            ("vit_b", str(tmp_path / "missing.pth"), "cpu", "SAM checkpoint not found"),
            ("vit_h", None, "cpu", "needs its checkpoint"),
            ("sim", str(tmp_path / "x.pth"), "cpu", "sam_checkpoint is for vit_h / vit_l / vit_b"),
            (str(tmp_path / "nowhere"), None, "cpu", "no such directory"),  # as the LMM says
            ("vit_x", None, "cpu", "unknown SAM spec 'vit_x'")]:
        with pytest.raises(SamLoadError, match=words):
            build_engine("tiny", sam_model, checkpoint, device=device)
    if not torch.cuda.is_available():
        with pytest.raises(SamLoadError, match="'cuda' requested but CUDA is not available"):
            build_engine("tiny", "tiny", device="cuda")
        # "auto" is resolved as the LMM's is, by every SAM loader
        assert str(load_sam("tiny", device="auto").device) == "cpu"
    for device in ("CPU", "", "gpu"):  # torch's own RuntimeError named no setting
        with pytest.raises(SamLoadError, match="device must be auto, cpu, cuda or cuda:N"):
            load_sam("tiny", device=device)


def test_configs_read_back_from_models():
    assert config_of(build_tiny_sam(img_size=128)) == sam_config("tiny", img_size=128)
    vit_b = sam_config("vit_b")  # read from segment-anything's builder
    assert (vit_b["img_size"], vit_b["encoder_depth"], vit_b["prompt_embed_dim"]) == (1024, 12, 256)
    assert vit_b["encoder_global_attn_indexes"] == [2, 5, 8, 11]
    assert vit_b["pixel_mean"] == [123.675, 116.28, 103.53]
    with torch.device("meta"):
        assert config_of(build_sam_from_config(vit_b)) == vit_b
    with pytest.raises(SamLoadError, match="no built-in SAM config"):
        sam_config("vit_xxl")
    # a corrupt sam_config.json gets the loader's error, not a ZeroDivisionError or TypeError
    for key, value in (("patch_size", 0), ("img_size", "256"), ("img_size", 100), ("patch_size", -16)):
        with pytest.raises(SamLoadError, match="img_size and patch_size must be positive integers"):
            build_sam_from_config({**sam_config("tiny"), key: value})


def test_entity_tokens_pool_the_valid_region(seg):
    image = np.zeros((128, 256, 3), dtype=np.uint8)  # resized to 128x256: embedding rows 0-7 valid
    seg.set_image(image)
    full = np.ones((128, 256), dtype=bool)
    empty = np.zeros((128, 256), dtype=bool)
    left = np.zeros((128, 256), dtype=bool)
    left[:, :128] = True
    tokens = entity_tokens(seg.predictor, [full, empty, left])
    emb = seg.predictor.get_image_embedding()[0].numpy()  # [32, 16, 16]
    assert tokens.shape == (3, 32)
    np.testing.assert_allclose(tokens[0], emb[:, :8, :].mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(tokens[1], 0.0)
    np.testing.assert_allclose(tokens[2], emb[:, :8, :8].mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        entity_tokens(seg.predictor, [np.ones((10, 10), dtype=bool)])
    assert SamSegmenter.feature_source == "sam_image_embedding"


def test_save_and_load_gives_identical_outputs(tmp_path, seg):
    image = _image()
    weights = save_sam(build_tiny_sam(seed=3), sam_config("tiny"), tmp_path / "model")
    assert weights.suffix == ".safetensors"
    reference = SamSegmenter(build_tiny_sam(seed=3))
    for spec in (tmp_path / "model", weights):
        loaded = load_sam(str(spec))
        m1, s1 = reference.segment_point(image, (70.0, 20.0))
        m2, s2 = loaded.segment_point(image, (70.0, 20.0))
        np.testing.assert_array_equal(m1, m2)
        assert s1 == s2
        torch.testing.assert_close(
            loaded.predictor.features, reference.predictor.features, rtol=0, atol=0
        )


def test_save_rejects_config_that_does_not_fit(tmp_path):
    with pytest.raises(SamLoadError):
        save_sam(build_tiny_sam(), sam_config("tiny", img_size=128), tmp_path)
    with pytest.raises(SamLoadError):
        save_sam(build_tiny_sam(), {**sam_config("tiny"), "bogus": 1}, tmp_path)


def test_vit_b_architecture_loads_safetensors_and_rejects_wrong_keys(tmp_path):
    from safetensors.torch import save_file

    with torch.device("meta"):
        shapes = {
            k: v.shape for k, v in build_sam_from_config(sam_config("vit_b")).state_dict().items()
        }
    state = {k: torch.full(shape, 0.5) for k, shape in shapes.items()}
    path = tmp_path / "vit_b.safetensors"
    save_file(state, str(path))
    seg = load_sam("vit_b", checkpoint=str(path))
    assert seg.img_size == 1024
    assert torch.all(seg.sam.image_encoder.patch_embed.proj.weight == 0.5)

    del state["mask_decoder.iou_token.weight"]
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(path))
    with pytest.raises(SamLoadError, match="missing 1.*unexpected 1"):
        load_sam("tiny", checkpoint=str(path))
    with pytest.raises(SamLoadError, match="matches vit_b"):
        load_sam("tiny", checkpoint=str(path))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(SamLoadError, match="corrupt"):
        load_sam("tiny", checkpoint=str(bad))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(SamLoadError, match=r"junk.pth is not a SAM checkpoint: neither a PyTorch "
                                           r"file nor safetensors \(it starts with b'definite'\)"):
        load_sam("tiny", checkpoint=str(junk))
    # a pickle that would run code: refused in one line, torch's advice to its users left out
    import pickle

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"x": print}, protocol=2))
    with pytest.raises(SamLoadError, match=r"refused to load .*evil.pth: torch.load\(weights_only="
                                           r"True\), which takes plain tensors only, refused it "
                                           r"\(Unsupported global: GLOBAL print") as refused:
        load_sam("tiny", checkpoint=str(evil))
    assert "\n" not in str(refused.value)
    with pytest.raises(SamLoadError, match="not found"):
        load_sam("tiny", checkpoint=str(tmp_path / "absent.pth"))
    with pytest.raises(SamLoadError, match="is a directory: give the checkpoint file"):
        load_sam("tiny", checkpoint=str(tmp_path))
    with pytest.raises(SamLoadError, match="unknown SAM spec"):
        load_sam("vit_xxl")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(SamLoadError, match="config"):
        load_sam(str(tmp_path))


_EXPLOITED: list[str] = []


def _exploit() -> None:
    _EXPLOITED.append("ran")


class _Malicious:
    def __reduce__(self):
        return (_exploit, ())


def test_torch_load_uses_weights_only(tmp_path):
    plain = tmp_path / "plain.pth"
    torch.save(
        {"model": build_tiny_sam(seed=4).state_dict()}, plain
    )  # wrapped state dicts are unwrapped
    seg = load_sam("tiny", checkpoint=str(plain))
    assert torch.equal(
        seg.sam.mask_decoder.iou_token.weight, build_tiny_sam(seed=4).mask_decoder.iou_token.weight
    )

    evil = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": _Malicious()}, evil)
    with pytest.raises(SamLoadError, match="refused") as refused:
        load_sam("tiny", checkpoint=str(evil))
    assert _EXPLOITED == []
    # what was refused, without torch's advice to load it with weights_only=False
    said = str(refused.value)
    assert "unsupported global" in said.lower() and "_exploit" in said
    assert "weights_only` set to `False" not in said and "safe_globals" not in said
    # a legacy pickle's refusal ("Unsupported operand 149") is shown, not hidden behind torch's
    # "file an issue" line, and claims nothing of what the file holds
    legacy = tmp_path / "legacy.pth"
    torch.save(build_tiny_sam(seed=4).state_dict(), legacy, _use_new_zipfile_serialization=False,
               pickle_protocol=4)
    with pytest.raises(SamLoadError, match=r"refused it \(Unsupported operand \d+\)"):
        load_sam("tiny", checkpoint=str(legacy))


def test_prefetched_embedding_is_the_one_set_image_computes(seg):
    """The worker encodes on its own predictor, holding no lock; the frame's first use installs
    its embedding (no second pass) and every mask is bit-identical."""
    image, point = _image(7), (50.0, 40.0)
    reference = load_sam("tiny")
    expected_mask, expected_score = reference.segment_point(image, point, key="f")
    ahead.worker().submit(lambda: None).result()  # the process's one worker, kept
    threads = threading.active_count()
    with seg.prefetched(image, key="f"):
        with seg.exclusive():  # a proposal node holding the segmenter cannot stall the worker
            seg._jobs[("key", "f", "RGB")].result(timeout=30)
        assert seg.wait_prefetch(image, key="f") == 0.0
        mask, score = seg.segment_point(image, point, key="f")
        assert seg.embedding_passes == 1
        seg.set_image(_image(8), key="other")  # another thread's frame, then ours again: free
        seg.set_image(image, key="f")
        assert seg.embedding_passes == 2
    assert threading.active_count() == threads and not seg._jobs
    np.testing.assert_array_equal(mask, expected_mask)
    assert score == expected_score
    torch.testing.assert_close(seg.predictor.features, reference.predictor.features, rtol=0, atol=0)
    with seg.prefetched(image, key="f"):  # already current: nothing to start
        assert not seg._jobs
    assert seg.embedding_passes == 2


def test_a_prefetch_the_worker_never_started_is_dropped_at_once(seg):
    gate = threading.Event()
    busy = ahead.worker().submit(gate.wait)  # the process's one worker, held by other work
    image = _image(9)
    try:
        t0 = time.perf_counter()
        with seg.prefetched(image, key="late"):
            pass
        assert time.perf_counter() - t0 < 1.0 and not seg._jobs  # not held until the worker frees
        with seg.prefetched(image, key="late2"):
            seg._jobs[("key", "late2", "RGB")].cancel()  # another request's block ended first
            assert seg.wait_prefetch(image, key="late2") == 0.0
            mask, _ = seg.segment_point(image, (50.0, 40.0), key="late2")  # encoded here instead
        assert mask.shape == image.shape[:2]
    finally:
        gate.set()
        busy.result(timeout=10)


def test_prefetch_errors_reach_the_frames_user_and_no_thread_outlives_the_block(seg, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("encoder failed")

    monkeypatch.setattr(seg._prefetch_predictor, "set_image", broken)
    ahead.worker().submit(lambda: None).result()  # the process's one worker, kept
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="encoder failed"):
        with seg.prefetched(_image(), key="g"):
            seg.segment_point(_image(), (10.0, 10.0), key="g")
    with seg.prefetched(_image(), key="h"):  # not needed (a canceled answer): dropped
        pass
    assert threading.active_count() == threads and not seg._jobs
    assert not seg._lock._is_owned()
    seg.segment_point(_image(), (10.0, 10.0), key="g")  # encoded as usual afterwards


@pytest.mark.parametrize("choice", ["iou", 0, 2])
def test_segment_points_equal_predict_torch_exactly(seg, choice):
    """Upsampling only the kept candidate changes no pixel: the batch predict_torch decodes."""
    image = _image(4)
    points = np.array([(10.0, 12.0), (80.5, 40.0), (150.0, 90.0), (40.0, 70.0)], np.float32)
    got = seg.segment_points(image, points, choice)
    predictor = seg.predictor
    coords = predictor.transform.apply_coords(points[:, None, :], predictor.original_size)
    masks, scores, _ = predictor.predict_torch(torch.as_tensor(coords, dtype=torch.float),
                                               torch.ones((len(points), 1), dtype=torch.int))
    for i, (mask, score) in enumerate(got):
        index = int(scores[i].argmax()) if choice == "iou" else choice
        np.testing.assert_array_equal(mask, masks[i, index].numpy())
        assert score == float(scores[i, index])


def test_large_frames_decode_fewer_points_at_once_and_propose_the_same(monkeypatch):
    """A 4096x4096 frame's 64 points decode to 12.9 GB of float mask logits at once: the batch
    is cut to MAX_BATCH_LOGIT_BYTES, and the masks stay segment-anything's."""
    from ros_ground.sam import proposals

    assert proposals.points_per_batch(64, (450, 800)) == 64
    assert proposals.points_per_batch(64, (4096, 4096)) == 2
    assert proposals.points_per_batch(64, (40000, 40000)) == 1
    image = _blobs()
    settings = {**POINTS, "box_nms_thresh": 1.0}
    stock = SamAutomaticMaskGenerator(build_tiny_sam(seed=3), **settings).generate(image)
    # a budget of three points' logits on this frame
    monkeypatch.setattr(proposals, "MAX_BATCH_LOGIT_BYTES", 3 * 3 * 4 * H * W)
    seg = SamSegmenter(build_tiny_sam(seed=3))
    batches, decode = [], seg.predictor.predict_torch

    def spy(coords, *args, **kwargs):
        batches.append(coords.shape[0])
        return decode(coords, *args, **kwargs)

    monkeypatch.setattr(seg.predictor, "predict_torch", spy)
    found = seg.propose(image, **settings)
    assert batches and max(batches) == 3 and sum(batches) == 16
    assert len(found) == len(stock) >= 5
    for proposal, record in zip(found, stock):
        np.testing.assert_array_equal(proposal.mask, record["segmentation"])


def test_a_proposal_run_stops_between_batches_when_asked(seg):
    from ros_ground.sam.proposals import ProposalsStopped

    large = np.random.default_rng(2).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    full = seg.propose(large, key="large", proposal_zoom=True, points_per_batch=4, **POINTS)
    asked = []

    def stop_after(n):
        return lambda: asked.append(1) or len(asked) > n

    passes = seg.embedding_passes
    with pytest.raises(ProposalsStopped):  # in the whole frame's batches: no crop encoded
        seg.propose(large, key="large", proposal_zoom=True, points_per_batch=4,
                    should_stop=stop_after(2), **POINTS)
    assert len(asked) == 3 and seg.embedding_passes == passes
    asked.clear()
    with pytest.raises(ProposalsStopped):  # after the frame and a crop or two
        seg.propose(large, key="large", proposal_zoom=True, points_per_batch=4,
                    should_stop=stop_after(12), **POINTS)
    assert seg.embedding_passes > passes and seg._crop_predictor.is_image_set is False
    # never stopping: the same proposals as without the question
    again = seg.propose(large, key="large", proposal_zoom=True, points_per_batch=4,
                        should_stop=lambda: False, **POINTS)
    assert [p.mask.tolist() for p in again] == [p.mask.tolist() for p in full]
