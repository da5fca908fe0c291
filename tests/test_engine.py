"""End to end on the tiny models: text in, a mask of the input's size per phrase out."""

import threading
import time

import numpy as np
import pytest

from ros_ground import ahead
from ros_ground.engine import EngineConfig, GroundingEngine, build_engine
from ros_ground.regions import Region
from ros_ground.results import Proposal
from ros_ground.rle import rle_to_mask

PROMPT = "Describe the image in detail."


@pytest.fixture(scope="module")
def engine() -> GroundingEngine:
    return build_engine(model="tiny", sam_model="tiny", device="cpu",
                        config=EngineConfig(max_new_tokens=24))


@pytest.fixture
def image():
    return np.random.RandomState(3).randint(0, 255, (90, 150, 3), dtype=np.uint8)


def test_point_mode_masks_match_image_and_spans_index_text(engine, image):
    result = engine.ground(image, PROMPT, mode="point")
    assert result.text and result.mode == "point" and not result.canceled
    assert result.phrases, f"no phrases in {result.text!r}"
    for p in result.phrases:
        assert p.mask.shape == image.shape[:2] and p.mask.dtype == bool
        assert result.text[p.char_start:p.char_end] == p.text
        x, y = p.point
        assert 0 <= x < image.shape[1] and 0 <= y < image.shape[0]
        assert 0.0 <= p.score <= 1.5  # SAM's predicted IoU
        assert p.token_indices and max(p.token_indices) < len(result.token_ids)
    assert {"generation", "grounding", "total", "decode", "segment"} <= set(result.timing_ms)


def test_json_schema(engine, image):
    out = engine.ground(image, PROMPT, mode="point").to_json()
    assert set(out) == {"text", "phrases", "timing_ms", "model", "mode", "prompt", "prompt_phrases",
                        "target", "landmark", "relation", "destination", "absent", "second_landmark",
                        "intent", "more_targets"}
    assert out["mode"] == "point"
    for p in out["phrases"]:
        assert set(p) == {"text", "char_start", "char_end", "score", "bbox", "point", "mask_rle",
                          "entity_ids", "position", "size", "depth_points"}
        assert p["mask_rle"]["size"] == [90, 150]
        assert rle_to_mask(p["mask_rle"]).shape == (90, 150)
        assert len(p["bbox"]) == 4 and (p["point"] is None or len(p["point"]) == 2)


def _strips(image, count: int) -> list[np.ndarray]:
    """`count` vertical strips of equal width that tile the image."""
    width = image.shape[1] // count
    masks = []
    for i in range(count):
        m = np.zeros(image.shape[:2], bool)
        m[:, i * width:(i + 1) * width] = True
        masks.append(m)
    return masks


def test_entities_mode_selects_among_given_proposals(engine, image):
    masks = _strips(image, 3)
    proposals = [Proposal(id=10 + i, mask=m, score=0.9) for i, m in enumerate(masks)]
    result = engine.ground(image, PROMPT, mode="auto", proposals=proposals)
    assert result.mode == "entities" and result.phrases
    for p in result.phrases:
        assert p.entity_ids and set(p.entity_ids) <= {10, 11, 12}
        union = np.any([masks[i - 10] for i in p.entity_ids], axis=0)
        np.testing.assert_array_equal(p.mask, union)
        assert set(p.entity_scores) == {10, 11, 12}
        x, y = p.point
        assert p.mask[int(y), int(x)]  # the phrase's point lies on its own mask


def test_auto_without_proposals_is_point(engine, image):
    assert engine.ground(image, PROMPT, mode="auto").mode == "point"


def test_progress_streams_text_and_final_result_matches_plain_run(engine, image):
    updates = []
    streamed = engine.ground(image, PROMPT, mode="point",
                             on_progress=lambda text, phrases: updates.append((text, phrases)))
    plain = engine.ground(image, PROMPT, mode="point")
    assert len(updates) == len(streamed.token_ids)
    assert updates[-1][0] == streamed.text == plain.text
    lengths = [len(t) for t, _ in updates]
    assert lengths == sorted(lengths)
    for a, b in zip(streamed.phrases, plain.phrases):
        np.testing.assert_array_equal(a.mask, b.mask)


def test_streaming_segments_each_phrase_once(engine, image, monkeypatch):
    from ros_ground import streaming

    monkeypatch.setattr(streaming, "PARSE_PERIOD_S", 0.0)  # look after every token
    points, segment = [], engine.sam.segment_points
    monkeypatch.setattr(engine.sam, "segment_points",
                        lambda image, pts, *a, **k: points.append(len(pts)) or segment(image, pts, *a, **k))
    updates = []
    result = engine.ground(image, PROMPT, mode="point", config=EngineConfig(max_new_tokens=48),
                           on_progress=lambda text, phrases: updates.append(phrases))
    streamed = updates[-1]
    assert len(streamed) >= 3 and points[-1] == len(result.phrases)  # the last call: the answer's
    assert sum(points[:-1]) == len(streamed)  # while streaming: each phrase once, as it completes


def test_a_region_answer_streams_and_cancels_as_ground_does(engine, image):
    region = Region(np.zeros(image.shape[:2], bool), "box")
    region.mask[20:60, 40:100] = True
    updates = []
    streamed = engine.ground_region(image, "What is this?", region, config=EngineConfig(
        mode="point", max_new_tokens=24), on_progress=lambda *update: updates.append(update))
    plain = engine.ground_region(image, "What is this?", region,
                                 config=EngineConfig(mode="point", max_new_tokens=24))
    assert streamed.text == plain.text and not streamed.canceled
    assert len(updates) == len(streamed.token_ids) and updates[-1][0] == streamed.text
    calls = []
    canceled = engine.ground_region(image, "What is this?", region,
                                    should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert canceled.canceled and len(canceled.token_ids) <= 3 < len(plain.token_ids)


def test_one_generation_grounds_several_ways_as_ground_does(engine, image):
    gen = engine.generate(image, PROMPT)
    assert {"generation", "views"} <= set(gen.timing_ms)
    for mode in ("point", "entities"):
        cfg = EngineConfig(mode=mode, max_new_tokens=24)
        once = engine.ground_generation(image, gen, config=cfg)
        whole = engine.ground(image, PROMPT, config=cfg)
        assert once.text == whole.text and once.mode == whole.mode
        assert once.token_ids == whole.token_ids
        assert [p.text for p in once.phrases] == [p.text for p in whole.phrases]
        for a, b in zip(once.phrases, whole.phrases):
            assert a.point == b.point
            np.testing.assert_array_equal(a.mask, b.mask)
    raw = engine.generate(image, PROMPT, views=False)
    assert "views" not in raw.timing_ms and raw.text == gen.text
    np.testing.assert_allclose(engine.read_views(image, raw).image_maps, gen.image_maps)
    with pytest.raises(ValueError):
        engine.ground_generation(image[..., 0], gen)


def test_cancel_stops_early(engine, image):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    result = engine.ground(image, PROMPT, mode="point", should_stop=stop)
    assert result.canceled and len(result.token_ids) <= 3


@pytest.mark.parametrize("switch", [{"normalise": True}, {"phrase_contrast": 0.5}])
def test_map_switches_change_maps_not_text(engine, image, switch):
    # each alone: a full phrase contrast would also remove the sequence mean
    base = dict(normalise=False, phrase_contrast=0.0, max_new_tokens=24)
    on = engine.ground(image, PROMPT, config=EngineConfig(**{**base, **switch}))
    off = engine.ground(image, PROMPT, config=EngineConfig(**base))
    assert on.text == off.text and len(on.phrases) >= 2
    assert [p.text for p in on.phrases] == [p.text for p in off.phrases]
    assert any(a.point != b.point for a, b in zip(on.phrases, off.phrases))


def test_attention_views_reread_the_answer_on_flipped_images(engine, image, monkeypatch):
    reads = []
    view_maps = engine.lmm.view_maps
    monkeypatch.setattr(engine.lmm, "view_maps",
                        lambda *a: reads.append(list(a[3])) or view_maps(*a))
    one = engine.ground(image, PROMPT, mode="point", config=EngineConfig(
        attention_views=("identity",), max_new_tokens=24))
    assert reads == []
    flips = engine.ground(image, PROMPT, mode="point")  # the default: the image and its flips
    assert reads == [["hflip", "vflip", "rot180"]] and flips.timing_ms["views"] > 0  # one pass
    assert flips.text == one.text and len(flips.phrases) >= 2
    assert [p.text for p in flips.phrases] == [p.text for p in one.phrases]
    assert any(a.point != b.point for a, b in zip(flips.phrases, one.phrases))
    reads.clear()
    canceled = engine.ground(image, PROMPT, mode="point", should_stop=lambda: True)
    assert canceled.canceled and reads == []  # nothing to re-read for an answer not given


def test_full_phrase_contrast_makes_sequence_normalisation_redundant(engine, image):
    full = dict(phrase_contrast=1.0, max_new_tokens=24)
    on = engine.ground(image, PROMPT, mode="point", config=EngineConfig(normalise=True, **full))
    off = engine.ground(image, PROMPT, mode="point", config=EngineConfig(normalise=False, **full))
    assert len(on.phrases) >= 2
    assert [p.point for p in on.phrases] == [p.point for p in off.phrases]


def test_exclusive_assignment_gives_each_phrase_its_own_entities(engine, image):
    from ros_ground.phrases import later_mentions, noun_phrases

    proposals = [Proposal(id=i, mask=m, score=0.9) for i, m in enumerate(_strips(image, 30))]
    exclusive = engine.ground(image, PROMPT, mode="entities", proposals=proposals)
    chunks = noun_phrases(engine.nlp, exclusive.text)
    assert [c.text for c in chunks] == [p.text for p in exclusive.phrases]
    free = later_mentions(chunks, exclusive.text)
    counts = [c.count for c in chunks]
    assert sum(c or 1 for c, f in zip(counts, free) if not f) <= len(proposals), counts
    bound = [p.entity_ids for p, f in zip(exclusive.phrases, free) if not f]
    assert len(bound) >= 2 and len({i for ids in bound for i in ids}) == sum(map(len, bound))
    for phrase, count in zip(exclusive.phrases, counts):  # the random text has plurals too
        assert len(phrase.entity_ids) == count if count else len(phrase.entity_ids) >= 1
    independent = engine.ground(image, PROMPT, mode="entities", proposals=proposals, config=EngineConfig(
        entity_assignment="independent", entity_margin=2.0, max_new_tokens=24))
    assert all(sorted(p.entity_ids) == list(range(30)) for p in independent.phrases)  # past the range: all


def test_one_sam_embedding_per_frame(engine, image):
    before = engine.sam.embedding_passes
    engine.ground(image, PROMPT, mode="point", image_key="frame-1")
    engine.ground(image, "What is on the table?", mode="point", image_key="frame-1")
    assert engine.sam.embedding_passes - before == 1


@pytest.mark.parametrize("zoom", [True, False])
# auto: point prompts, no proposals given and no object asked about (a command's target is
# chosen among the engine's own proposals)
@pytest.mark.parametrize("mode", ["point", "auto"])
def test_points_on_zoom_windows_cost_no_embedding_of_the_whole_frame(engine, monkeypatch, zoom, mode):
    """point_zoom prompts each point of a frame larger than SAM's input on a window at SAM's
    scale: the frame's own embedding, computed or prefetched, would go unused."""
    from ros_ground.sam import segmenter
    from ros_ground.sam.windows import point_windows

    # the tiny random SAM's masks are arbitrary: no window cuts one (the cut case: test_sam_windows)
    monkeypatch.setattr(segmenter, "reaches_inner_edge", lambda *args: False)
    monkeypatch.setattr(engine, "prefetch", True)  # would encode the frame ahead, on the worker
    side = engine.sam.img_size
    large = np.random.RandomState(5).randint(0, 255, (side + side // 2, 2 * side, 3), dtype=np.uint8)
    assert engine.sam.zooms(large) and not engine.sam.zooms(large[:side, :side])
    before = engine.sam.embedding_passes
    result = engine.ground(large, "What is on the table?", mode=mode, image_key=f"large-{zoom}-{mode}",
                           config=EngineConfig(max_new_tokens=24, point_zoom=zoom))
    # the answer's points, then the command's, each in one call; the second reuses kept windows
    answer = point_windows([p.point for p in result.phrases], *large.shape[:2], side)
    kept = [box for box, _ in answer]
    command = point_windows([p.point for p in result.prompt_phrases], *large.shape[:2], side, kept)
    windows = len(set(kept) | {box for box, _ in command})
    assert windows, result.text
    assert engine.sam.embedding_passes - before == (windows if zoom else 1)
    assert result.mode == "point"


@pytest.mark.parametrize("zoom", [True, False])
def test_the_encoders_time_is_sam_embedding_whichever_stage_runs_it(engine, monkeypatch, zoom):
    """The frame is encoded inside "segment" (point prompts), a point window's too, and a new
    window inside "prompt_grounding": each pass is reported as "sam_embedding", not there."""
    from ros_ground.sam import segmenter

    monkeypatch.setattr(segmenter, "reaches_inner_edge", lambda *args: False)
    monkeypatch.setattr(engine, "prefetch", False)  # a worker's passes are its own thread's
    encoder = engine.sam.sam.image_encoder
    forward = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda x: (time.sleep(0.5), forward(x))[1])
    side = engine.sam.img_size
    large = np.random.RandomState(6).randint(0, 255, (side + side // 2, 2 * side, 3), dtype=np.uint8)
    before = engine.sam.embedding_passes
    result = engine.ground(large, "Where is the red mug?", mode="point", image_key=f"slow-{zoom}",
                           config=EngineConfig(max_new_tokens=24, point_zoom=zoom))
    passes = engine.sam.embedding_passes - before
    timing = result.timing_ms
    assert passes >= 1 and timing["sam_embedding"] >= 500 * passes, (passes, timing)
    # the stages' own work (decoding prompts) is short beside the passes they needed
    assert timing["segment"] + timing["prompt_grounding"] < 500 * passes, (passes, timing)
    assert timing["grounding"] >= timing["sam_embedding"]


def test_another_thread_cannot_switch_the_frame_between_phrases(engine, image, monkeypatch):
    """The composed graph's proposal node shares the segmenter: while a response is being
    grounded its calls wait, so our frame is encoded once whatever the other thread does."""
    original = engine.sam.segment_points
    others: list[tuple[threading.Thread, threading.Event]] = []

    def segment_points(*args, **kwargs):
        done = threading.Event()
        thread = threading.Thread(
            target=lambda: (engine.sam.set_image(np.zeros_like(image), key="other"), done.set()))
        thread.start()
        others.append((thread, done))
        done.wait(0.2)  # time for the other thread to get in, if it could
        return original(*args, **kwargs)

    monkeypatch.setattr(engine.sam, "segment_points", segment_points)
    before = engine.sam.embedding_passes
    result = engine.ground(image, PROMPT, mode="point", image_key="frame-guarded")
    held_off = [not done.is_set() for _, done in others]
    for thread, _ in others:
        thread.join(timeout=30)
    assert len(result.phrases) >= 2, result.text
    assert held_off and all(held_off)
    assert engine.sam.embedding_passes - before == 2  # ours once, then the other frame once


def test_selecting_among_given_proposals_neither_waits_for_nor_runs_sam(engine, image):
    """The proposals came with their frame: a proposal node holding the shared segmenter (and
    long past that frame) must not delay the answer, nor cost an encoder pass."""
    halves = [np.zeros(image.shape[:2], bool) for _ in range(2)]
    halves[0][:, : image.shape[1] // 2] = True
    halves[1][:, image.shape[1] // 2:] = True
    proposals = [Proposal(id=i, mask=m, score=0.9) for i, m in enumerate(halves)]
    engine.sam.set_image(np.zeros_like(image), key="the-node-moved-on")
    before = engine.sam.embedding_passes
    holding, release = threading.Event(), threading.Event()

    def proposal_node():
        with engine.sam.exclusive():
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=proposal_node)
    thread.start()
    holding.wait(10)
    try:
        result = engine.ground(image, PROMPT, mode="entities", proposals=proposals,
                               image_key="frame-with-proposals")
    finally:
        release.set()
        thread.join(timeout=30)
    assert result.mode == "entities" and result.phrases
    assert all(p.entity_ids for p in result.phrases)
    assert engine.sam.embedding_passes == before


@pytest.mark.parametrize("bad", [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32)])
def test_bad_images_raise_value_error(engine, bad):
    with pytest.raises(ValueError):
        engine.ground(bad, PROMPT)


def test_config_validation():
    with pytest.raises(ValueError):
        EngineConfig(mode="magic").validate()
    with pytest.raises(ValueError):
        EngineConfig(multimask_choice=5).validate()
    with pytest.raises(ValueError, match="entity_assignment"):
        EngineConfig(entity_assignment="greedy").validate()
    with pytest.raises(ValueError, match="phrase_contrast"):
        EngineConfig(phrase_contrast=-0.1).validate()
    with pytest.raises(ValueError, match="attention views"):
        EngineConfig(attention_views=["identity", "mirror"]).validate()
    assert EngineConfig(attention_views=["vflip"]).validate().attention_views == ("vflip",)


def test_input_checks_raise_input_error():
    from ros_ground.errors import InputError, check_prompt

    check_prompt("Describe the image.", 100)
    for prompt, limit in [("", 10), ("  \n", 10), ("x" * 11, 10), (None, 10), ("a\udcff", 10)]:
        with pytest.raises(InputError):
            check_prompt(prompt, limit)


def _threads_with_the_ahead_worker() -> int:
    """Threads alive once the process's one ahead worker runs (it is kept, not one per request)."""
    ahead.worker().submit(lambda: None).result()
    return threading.active_count()


@pytest.mark.parametrize("mode", ["point", "entities"])
def test_prefetching_sams_embedding_changes_no_result(engine, image, mode, monkeypatch):
    """`ground` encodes the frame for SAM and reads the views' prompt on a worker thread while
    generating: same masks, scores and points as doing both after generation, and no thread
    left behind."""
    config = EngineConfig(max_new_tokens=24, amg_params={"points_per_side": 4})
    threads = _threads_with_the_ahead_worker()
    monkeypatch.setattr(engine, "prefetch", False)
    plain = engine.ground(image, PROMPT, mode=mode, image_key=f"plain-{mode}", config=config)
    monkeypatch.setattr(engine, "prefetch", True)
    prefill, read = engine.lmm.prefill_views, []
    monkeypatch.setattr(engine.lmm, "prefill_views", lambda *a: read.append(
        (threading.current_thread().name, list(a[-1]))) or prefill(*a))
    before = engine.sam.embedding_passes
    ahead = engine.ground(image, PROMPT, mode=mode, image_key=f"ahead-{mode}", config=config)
    assert engine.sam.embedding_passes - before == 1
    assert [(name.startswith("ground-ahead"), views) for name, views in read] == \
        [(True, ["hflip", "vflip", "rot180"])]
    assert threading.active_count() == threads
    assert ahead.text == plain.text and ahead.phrases
    pairs = list(zip(plain.phrases + plain.prompt_phrases, ahead.phrases + ahead.prompt_phrases))
    assert len(pairs) == len(plain.phrases + plain.prompt_phrases)
    for a, b in pairs:
        np.testing.assert_array_equal(a.mask, b.mask)
        assert (a.score, a.point, a.entity_ids) == (b.score, b.point, b.entity_ids)
    assert "sam_wait" in ahead.timing_ms


def test_torch_threads_hold_for_the_request_only(engine, image):
    """An engine with torch_threads below the CPUs runs the frame-only work ahead and gives the
    answer of one without; the caller's thread count is back after the request."""
    import torch

    one = GroundingEngine(engine.lmm, engine.sam, engine.nlp, engine.config, torch_threads=1)
    before = torch.get_num_threads()
    with_threads = one.ground(image, PROMPT, mode="point", image_key="threads-1")
    assert torch.get_num_threads() == before
    plain = engine.ground(image, PROMPT, mode="point", image_key="threads-0")
    assert with_threads.text == plain.text
    assert [p.point for p in with_threads.phrases] == [p.point for p in plain.phrases]


def test_a_region_request_runs_on_the_engines_torch_threads_too(engine, image, monkeypatch):
    """`torch_threads` is per grounding request: a region's answer (clicked_point, region
    goals) is generated on it and grounded on every core it leaves spare, as `ground`'s."""
    import torch

    if ahead.usable_cores() < 2 or torch.get_num_threads() == 1:
        pytest.skip("needs 2 usable cores and torch's default above 1 to tell the counts apart")
    one = GroundingEngine(engine.lmm, engine.sam, engine.nlp, engine.config, torch_threads=1)
    seen = {}
    for stage in ("generate", "ground_generation"):
        real = getattr(one, stage)
        monkeypatch.setattr(one, stage, lambda *a, _real=real, _stage=stage, **k: (
            seen.setdefault(_stage, torch.get_num_threads()), _real(*a, **k))[1])
    region = Region(np.zeros(image.shape[:2], bool), "box")
    region.mask[20:60, 40:100] = True
    before = torch.get_num_threads()
    one.ground_region(image, "What is this?", region, config=EngineConfig(mode="point"))
    assert seen == {"generate": 1, "ground_generation": ahead.usable_cores()}
    assert torch.get_num_threads() == before


def test_prefetch_failure_is_the_requests_error_and_cancel_leaves_nothing(engine, image,
                                                                         monkeypatch):
    monkeypatch.setattr(engine, "prefetch", True)
    threads = _threads_with_the_ahead_worker()
    canceled = engine.ground(image, PROMPT, mode="point", image_key="canceled",
                             should_stop=lambda: True)
    assert canceled.canceled and threading.active_count() == threads

    def broken(*_args, **_kwargs):
        raise RuntimeError("encoder failed")

    monkeypatch.setattr(engine.sam._prefetch_predictor, "set_image", broken)
    with pytest.raises(RuntimeError, match="encoder failed"):  # the node answers MODEL_ERROR
        engine.ground(image, PROMPT, mode="point", image_key="broken")
    assert threading.active_count() == threads and not engine.sam._jobs
    assert not engine.sam._lock._is_owned()
    monkeypatch.undo()
    monkeypatch.setattr(engine, "prefetch", True)
    monkeypatch.setattr(engine.lmm, "prefill_views", broken)
    with pytest.raises(RuntimeError, match="encoder failed"):
        engine.ground(image, PROMPT, mode="point", image_key="broken-views")
    assert threading.active_count() == threads


def test_both_models_wrong_are_named_at_once_before_anything_loads(monkeypatch, tmp_path):
    """config/default.yaml on a machine without its weights: the missing SAM checkpoint and the
    missing LLaVA are named in one error, not the second only after the first is fixed and the
    node configured again."""
    from ros_ground.lmm import ModelLoadError
    from ros_ground.sam import SamLoadError

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    loads = []
    monkeypatch.setattr("ros_ground.lmm.load_lmm", lambda *a, **k: loads.append(a))
    missing = str(tmp_path / "sam_vit_h.pth")
    with pytest.raises(ModelLoadError) as both:
        build_engine("llava-hf/llava-1.5-7b-hf", "vit_h", sam_checkpoint=missing, device="cpu")
    said = str(both.value)
    assert missing in said and "'llava-hf/llava-1.5-7b-hf' is not in the Hugging Face cache" in said
    assert "; and " in said and loads == []
    with pytest.raises(SamLoadError):  # one problem keeps its own type
        build_engine("tiny", "vit_h", sam_checkpoint=missing, device="cpu")
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        build_engine("llava-hf/llava-1.5-7b-hf", "tiny", device="cpu")
    # a download that never finished, and a directory that is no checkpoint
    (tmp_path / "hub" / "models--llava-hf--llava-1.5-7b-hf" / "snapshots" / "abc").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError) as both:
        build_engine("llava-hf/llava-1.5-7b-hf", "vit_h", sam_checkpoint=missing, device="cpu")
    assert "not in the Hugging Face cache" in str(both.value) and missing in str(both.value)
    with pytest.raises(ModelLoadError, match="holds no config.json"):
        build_engine(str(tmp_path / "empty"), "tiny", device="cpu")
    # an uninstalled spaCy pipeline is said with the models' problems, not after they are mended
    with pytest.raises(ModelLoadError) as three:
        build_engine(str(tmp_path / "empty"), "vit_h", sam_checkpoint=missing, device="cpu",
                     spacy_model="xx_no_such_pipeline")
    said = str(three.value)
    assert missing in said and "holds no config.json" in said
    assert "spaCy pipeline 'xx_no_such_pipeline' is not installed" in said and loads == []


def test_segment_point_zooms_as_point_mode_does(engine, image, monkeypatch):
    """A baseline's or a click's point goes to SAM as point mode's points do: with the
    config's point_zoom unless told otherwise."""
    asked = []
    monkeypatch.setattr(engine.sam, "segment_points", lambda image, points, choice, key, zoom: asked.append(
        (len(points), zoom)) or [(np.zeros(image.shape[:2], bool), 0.0)])
    engine.segment_point(image, (3.0, 4.0))
    engine.segment_point(image, (3.0, 4.0), zoom=not engine.config.point_zoom)
    assert asked == [(1, engine.config.point_zoom), (1, not engine.config.point_zoom)]
