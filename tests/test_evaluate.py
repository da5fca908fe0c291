"""`ros-ground eval`: the pipeline from scenes to metrics, checked with an oracle and a real run."""

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from ros_ground.engine import EngineConfig, build_engine
from ros_ground.evaluate import SIM_VOCABULARY, evaluate, report_json, scene_prompts
from ros_ground.evaluate.metrics import GTPhrase, PredPhrase, evaluate_image, point_accuracy
from ros_ground.evaluate.report import format_report
from ros_ground.evaluate.run import random_point_baseline, random_proposal_baseline
from ros_ground.results import GroundedPhrase, GroundingResult, Proposal
from ros_ground.sim.scene import generate_scene

KEYS = {"scenes", "phrases", "mask_recall", "miou", "ap50", "point_accuracy"}


@pytest.fixture(scope="module")
def engine():
    return build_engine(model="tiny", sam_model="tiny", device="cpu",
                        config=EngineConfig(max_new_tokens=8))


class Oracle:
    """Answers with the scene's own objects: every metric must come out perfect."""

    def __init__(self, engine):
        self.engine = engine
        self.scene = None

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, image, prompt, **kwargs):
        return prompt

    def read_views(self, image, gen, config=None):
        return gen

    def ground_generation(self, image, gen, config=None, **kwargs):
        phrases, text = [], ""
        for obj in self.scene.objects:
            start = len(text)
            text += f"the {obj.name}. "
            ys, xs = np.nonzero(obj.mask)
            phrases.append(GroundedPhrase(
                text=f"the {obj.name}", char_start=start, char_end=start + len(obj.name) + 4,
                score=1.0, mask=obj.mask, point=(float(xs[0]) + 0.5, float(ys[0]) + 0.5)))
        return GroundingResult(text=text, phrases=phrases, model="oracle",
                               image_size=image.shape[:2])


def test_oracle_scores_perfectly(engine, monkeypatch):
    oracle = Oracle(engine)
    import ros_ground.sim.scene as scene_module

    original = scene_module.generate_scene

    def remember(seed, **kwargs):
        oracle.scene = original(seed, **kwargs)
        return oracle.scene

    monkeypatch.setattr(scene_module, "generate_scene", remember)
    run = evaluate(oracle, scenes=2, seed=11, variants={"oracle": {"mode": "point"}},
                   progress=False)
    report = report_json(run, 2, "oracle", 11, "describe", EngineConfig(mode="point"))
    assert report["mask_recall"] == 1.0 and report["miou"] == 1.0
    assert report["ap50"] == pytest.approx(1.0) and report["point_accuracy"] == 1.0
    assert report["baseline_random_point"]["mask_recall"] < 1.0
    # every setting that changes the numbers is in the report, under its parameter's name
    settings_given = {"sam_model": "sim", "device": "cpu", "dtype": "float32", "image": None}
    report = report_json(run, 2, "oracle", 11, "describe",
                         EngineConfig(mode="point", point_zoom=False, entity_token_window=2.0,
                                      max_new_tokens=7), values=settings_given)
    assert (report["point_zoom"], report["entity_token_window"], report["max_new_tokens"]) == (
        False, 2.0, 7)
    assert {"normalise_maps", "multimask_choice", "region_token"} <= set(report)
    assert (report["sam_model"], report["device"], report["dtype"]) == ("sim", "cpu", "float32")
    assert "image" not in report and report["mode"] == "point"
    # helper-130: "model: sim" named no weights, and `train lmm` rewrites them in place
    from ros_ground.lmm.fingerprint import lmm_sha256
    from ros_ground.sam.load import SIM_SAM_DIR

    assert report["provenance"]["lmm_sha256"] is None  # the "oracle" model has no weights
    made = report_json(run, 2, "sim", 11, "describe", EngineConfig(mode="point"),
                       values={"sam_model": "sim"})["provenance"]
    assert made["lmm_sha256"] == lmm_sha256() and len(made["lmm_sha256"]) == 64
    sam_weights = (SIM_SAM_DIR / "model.safetensors").read_bytes()
    assert made["sam_sha256"] == hashlib.sha256(sam_weights).hexdigest()
    assert made["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+changes)?", made["commit"])
    assert {"torch", "transformers", "ros_ground"} <= set(made)
    hub = report_json(run, 2, "oracle", 11, "describe", EngineConfig(mode="point"),
                      values={"model": "llava-hf/llava-1.5-7b-hf", "sam_model": "vit_b"})["provenance"]
    assert hub["lmm_sha256"] is None and hub["sam_sha256"] is None


def test_variants_ground_one_generation_and_the_first_is_the_plain_run(engine, monkeypatch):
    calls = []
    original = engine.lmm.generate
    monkeypatch.setattr(engine.lmm, "generate", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    plain = evaluate(engine, scenes=2, seed=5, variants={"point": {"mode": "point"}},
                     prompt="both", progress=False)
    answers = len(calls)
    seen = []
    run = evaluate(engine, scenes=2, seed=5, prompt="both", progress=False,
                   variants={"point": {"mode": "point"}, "auto": {"mode": "auto"},
                             "one view": {"mode": "point", "attention_views": ("identity",)}},
                   on_answer=seen.append)
    assert len(calls) == 2 * answers  # one generation per prompt, whatever the variants
    assert set(run.records) == {"point", "auto", "one view"}
    assert len(seen) == 3 * answers and {a.variant for a in seen} == set(run.records)
    assert [r.matches for r in run.model] == [r.matches for r in plain.model]
    assert [r.miou for r in run.baseline] == [r.miou for r in plain.baseline]
    assert all(a.result.mode == "point" for a in seen if a.variant != "auto")


class _AnyPoint:
    """Segments nothing: the baseline's points alone are under test (and how SAM is asked)."""

    def __init__(self):
        self.zooms = []

    def segment_point(self, image, point, image_key=None, zoom=None):
        self.zooms.append(zoom)
        return np.zeros(image.shape[:2], bool), 0.0


def test_random_point_baseline_prompts_sam_as_the_model_does():
    # the model's point mode prompts SAM on windows of a large frame (point_zoom): a baseline
    # prompted on the whole frame, shrunk, would lose to the zoom, not to the attention
    image, sam = np.zeros((30, 40, 3), np.uint8), _AnyPoint()
    phrases = [GroundedPhrase("mug", 0, 3, 1.0, np.zeros((30, 40), bool))]
    random_point_baseline(sam, image, phrases, np.random.default_rng(0), zoom=True)
    random_point_baseline(sam, image, phrases, np.random.default_rng(0), zoom=False)
    random_point_baseline(sam, image, phrases, np.random.default_rng(0))
    assert sam.zooms == [True, False, None]  # None: the engine's config decides


def test_random_point_baseline_is_uniform_and_scored_like_a_model():
    image = np.zeros((30, 40, 3), np.uint8)
    gt = [GTPhrase("red mug", np.zeros((30, 40), bool)), GTPhrase("blue cube", np.zeros((30, 40), bool))]
    gt[0].mask[:10, :10] = True
    gt[1].mask[15:25, 20:40] = True
    phrases = [GroundedPhrase(g.text, 0, len(g.text), 1.0, g.mask) for g in gt]
    first = random_point_baseline(_AnyPoint(), image, phrases, np.random.default_rng(3))
    again = random_point_baseline(_AnyPoint(), image, phrases, np.random.default_rng(3))
    assert [p.point for p in first] == [p.point for p in again] and len(first) == 2
    assert [p.text for p in first] == ["red mug", "blue cube"]
    assert all(0 <= p.point[0] < 40 and 0 <= p.point[1] < 30 for p in first)
    many = random_point_baseline(_AnyPoint(), image, phrases * 2000, np.random.default_rng(0))
    union = gt[0].mask | gt[1].mask
    hits = point_accuracy([p.point for p in many], [union] * len(many))
    assert hits == pytest.approx(union.mean(), abs=0.03)  # uniform over the image
    preds = [PredPhrase(p.text, g.mask, p.point) for p, g in zip(first, gt)]
    record = evaluate_image(preds, gt, lambda a, b: np.zeros((len(a), len(b))), SIM_VOCABULARY)
    assert record.points_total == 2


def test_random_proposal_baseline_draws_uniformly_among_the_frames_proposals():
    masks = [np.zeros((30, 40), bool) for _ in range(3)]
    for k, mask in enumerate(masks):
        mask[k * 10:k * 10 + 5, 4:9] = True
    proposals = [Proposal(k, mask) for k, mask in enumerate(masks)]
    phrases = [GroundedPhrase("red mug", 0, 7, 1.0, masks[0])] * 3000
    first = random_proposal_baseline(phrases, proposals, np.random.default_rng(3))
    again = random_proposal_baseline(phrases, proposals, np.random.default_rng(3))
    assert [p.point for p in first] == [p.point for p in again] and first[0].text == "red mug"
    chosen = [next(k for k, m in enumerate(masks) if m is p.mask) for p in first]
    assert np.bincount(chosen, minlength=3) / len(chosen) == pytest.approx([1 / 3] * 3, abs=0.04)
    assert point_accuracy([p.point for p in first], [p.mask for p in first]) == 1.0
    with pytest.raises(ValueError):
        random_proposal_baseline(phrases, [], np.random.default_rng(0))


def test_entity_modes_are_scored_beside_a_random_proposal_too(engine):
    seen = []
    # the untrained tiny SAM's masks pass only thresholds of 0
    loose = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    run = evaluate(engine, scenes=2, seed=5, variants={"auto": {"mode": "auto"}},
                   progress=False, on_answer=seen.append, amg_params=loose)
    among = [a for a in seen if a.result.mode == "entities" and a.proposals]
    assert among and run.proposal_answers == len(among)
    assert len(run.baseline_proposal) == len(run.baseline) == len(seen)
    report = report_json(run, 2, "tiny", 5, "describe", replace(engine.config, mode="auto"))
    base = report["baseline_random_proposal"]
    assert KEYS <= set(base) and base["answers_among_proposals"] == len(among)
    assert "baseline_random_point" in report
    table = format_report(report)
    assert "random proposal" in table.splitlines()[1] and "recall and AP50" in table
    # the random points are drawn as without it, and a point mode has no proposal baseline
    plain = evaluate(engine, scenes=2, seed=5, variants={"point": {"mode": "point"}},
                     progress=False)
    assert [r.miou for r in run.baseline] == [r.miou for r in plain.baseline]
    assert not plain.baseline_proposal
    report = report_json(plain, 2, "tiny", 5, "describe", engine.config)
    assert "baseline_random_proposal" not in report
    assert "random proposal" not in format_report(report)


def test_refer_prompt_targets_one_object():
    scene = generate_scene(4)
    prompts = scene_prompts(scene, "both")
    assert prompts[0][0] == "Describe the scene." and len(prompts[0][1]) == len(scene.objects)
    if scene.referring:
        text, gt = prompts[1]
        assert text.startswith("Where is ") and len(gt) == 1


def test_cli_json_keys_and_ranges(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ros_ground.cli", "eval", "--scenes", "2", "--seed", "7",
         "--model", "tiny", "--mode", "point", "--phrase-tokens", "root", "--entity-margin", "0",
         "--entity-assignment", "independent", "--phrase-contrast", "0.25",
         "--attention-views", "identity,vflip",
         "--max-new-tokens", "8", "--json", "--dump", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(out.stdout)  # progress goes to stderr, not into the JSON
    assert "eval: scene 2/2, " in out.stderr  # stderr is a pipe here: lines, not a bar
    assert KEYS | {"baseline_random_point", "mode", "model", "seed"} <= set(report)
    assert report["scenes"] == 2 and report["mode"] == "point" and report["seed"] == 7
    assert report["phrase_tokens"] == "root" and report["entity_margin"] == 0.0
    assert report["entity_assignment"] == "independent" and report["phrase_contrast"] == 0.25
    assert report["attention_views"] == ["identity", "vflip"]
    for source in (report, report["baseline_random_point"]):
        assert KEYS <= set(source)
        assert all(0.0 <= source[k] <= 1.0 for k in ("mask_recall", "miou", "ap50",
                                                      "point_accuracy"))
    assert len(list(tmp_path.glob("*.png"))) == 2 and len(list(tmp_path.glob("*.json"))) == 2


def test_region_report_text_reads_like_the_others():
    from ros_ground.evaluate.report import format_region_report

    report = {"scenes": 2, "regions": 5, "prompt": "What is this?", "seed": 3,
              "region_naming_accuracy": 0.6, "region_naming_color_accuracy": None,
              "region_mask_accuracy": 0.4,
              "region_naming_baseline": 0.2, "region_naming_color_baseline": 0.0,
              "seconds_per_answer": {"region": 0.1, "baseline": 0.2}, "samples": []}
    lines = format_region_report(report, "tiny").splitlines()
    assert lines[0] == "2 scenes (seeds 3..4), 5 regions, model tiny, prompt 'What is this?'"
    assert lines[2].split() == ["region_naming_accuracy", "0.600", "0.200"]
    assert lines[3].split() == ["region_naming_color_accuracy", "n/a", "0.000"]
    assert lines[4].split() == ["region_mask_accuracy", "0.400", "-"]


def test_region_eval_prints_the_plain_report_unless_json(capsys):
    from ros_ground.cli import main

    args = ["eval", "--prompt", "region", "--scenes", "1", "--seed", "3", "--model", "tiny",
            "--sam-model", "tiny", "--max-new-tokens", "4"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "region_naming_accuracy" in text and "{" not in text
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenes"] == 1 and {"region_naming_accuracy", "samples"} <= set(report)
    assert (report["model"], report["region_token"], report["sam_model"]) == ("tiny", "pooled", "tiny")


def test_region_eval_dumps_each_scenes_regions_and_answers(capsys, tmp_path):
    from ros_ground.cli import main
    from ros_ground.evaluate import scene_for
    from ros_ground.image_files import load_rgb

    args = ["eval", "--prompt", "region", "--scenes", "1", "--seed", "3", "--model", "tiny",
            "--sam-model", "tiny", "--max-new-tokens", "4", "--json", "--dump", str(tmp_path / "d")]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    record = json.loads((tmp_path / "d" / "scene000003_regions.json").read_text())
    scene = scene_for(3, "in")
    assert [r["object"] for r in record["regions"]] == [o.name for o in scene.objects]
    assert [r["answer"] for r in record["regions"]] == [s["answer"] for s in report["samples"]]
    picture = load_rgb(str(tmp_path / "d" / "scene000003_regions.png"))
    assert picture.shape == scene.rgb.shape and (picture != scene.rgb).any()  # regions drawn
    # a --dump that is a file is refused before any model loads
    (tmp_path / "file").write_text("x")
    for dump in (tmp_path / "file", tmp_path / "file" / "sub"):
        assert main([*args[:-1], str(dump), "--model", "no-such-model"]) == 2
        assert capsys.readouterr().err.strip().endswith("is a file, not a folder")


def test_region_eval_asks_about_the_objects_of_the_scene_set_given(capsys, monkeypatch):
    from ros_ground.cli import main
    from ros_ground.engine import GroundingEngine
    from ros_ground.evaluate import scene_for

    shapes = []
    original = GroundingEngine.generate_region

    def generate_region(self, image, *args, **kwargs):
        shapes.append(image.shape)
        return original(self, image, *args, **kwargs)

    monkeypatch.setattr(GroundingEngine, "generate_region", generate_region)

    args = ["eval", "--prompt", "region", "--scenes", "1", "--seed", "3", "--model", "tiny",
            "--sam-model", "tiny", "--max-new-tokens", "2", "--json", "--scene-set", "ood"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    ood = scene_for(3, "ood")
    assert report["scene_set"] == "ood" and report["regions"] == len(ood.objects)
    assert [s["object"] for s in report["samples"]] == [o.name for o in ood.objects]
    assert shapes == [ood.rgb.shape] * len(ood.objects) and ood.rgb.shape != (240, 320, 3)


def test_model_card_tables_come_from_the_same_protocol(engine):
    from ros_ground.train.evaluation import grounding_eval

    variants = {"point": {"mode": "point"}, "contrast": {"mode": "point", "phrase_contrast": 0.5}}
    out = grounding_eval(engine, scenes=2, seed=4, variants=variants, progress=False,
                         amg_params={"points_per_side": 4})
    assert list(out["table"]) == ["point", "contrast", "random point baseline"]
    plain = report_json(evaluate(engine, scenes=2, seed=4, variants={"point": {"mode": "point"}},
                                 progress=False), 2, "tiny", 4, "describe", engine.config)
    for key in KEYS:
        assert out["table"]["point"][key] == pytest.approx(plain[key])
        assert out["table"]["random point baseline"][key] == pytest.approx(
            plain["baseline_random_point"][key])
    refer = out["referring"]
    questions = sum(bool(generate_scene(s).referring) for s in (4, 5))
    assert refer["questions"] == questions and len(refer["samples"]) == questions
    assert {"any_phrase_iou_ge_0.5", "named_phrase_iou_ge_0.5", "gcg"} <= set(refer["point"])
    assert [s["seed"] for s in out["samples"]] == [4, 5]
    with pytest.raises(ValueError):
        grounding_eval(engine, scenes=1, seed=20_000)  # training seeds are never evaluated on


def test_command_prompts_and_target_scoring():
    from ros_ground.evaluate.scenes import target_object
    from ros_ground.evaluate.targets import target_metrics, target_record

    even = next(s for s in map(generate_scene, range(0, 20, 2)) if s.referring)
    odd = next(s for s in map(generate_scene, range(1, 20, 2)) if s.referring)
    assert scene_prompts(even, "command")[0][0].startswith("Pick up the ")
    assert scene_prompts(odd, "command")[0][0].startswith("Where is the ")
    assert target_object(even, "describe") is None
    records = []
    for scene in (even, odd):
        obj = target_object(scene, "command")
        other = next(o for o in scene.objects if o is not obj)
        target = GroundedPhrase(f"the {obj.name}", 0, 4 + len(obj.name), 1.0, obj.mask)
        answer = GroundedPhrase(f"the {obj.name}", 0, 4 + len(obj.name), 1.0, other.mask)
        result = GroundingResult(text="", phrases=[answer], model="oracle",
                                 image_size=obj.mask.shape, prompt_phrases=[target], target=0)
        record = target_record(scene, obj, result, answer_hit=False)
        # the target is right; the answer's phrase with its words is on another object
        assert record.target_hit and not record.shared_hit
        assert record.position_error < 0.005 and record.position_error_gt < 0.005
        assert len(record.answer_position_errors) == 1
        records.append(record)
        wrong = GroundingResult(text="", phrases=[], model="oracle", image_size=obj.mask.shape,
                                prompt_phrases=[answer], target=0)
        missed = target_record(scene, obj, wrong, answer_hit=True)
        assert not missed.target_hit and np.isnan(missed.position_error)
        records.append(missed)
    metrics = target_metrics(records)
    assert metrics["target_accuracy"] == 0.5 and metrics["answer_route_accuracy"] == 0.5
    assert metrics["target_position_error_gt_m"] < 0.005
    assert target_metrics([]) == {}


def test_command_eval_reports_target_keys(engine):
    run = evaluate(engine, scenes=2, seed=6, prompt="command", progress=False)
    report = report_json(run, 2, "tiny", 6, "command", engine.config)
    assert {"target_accuracy", "answer_route_accuracy", "target_accuracy_shared_answer",
            "target_position_error_m", "target_position_error_gt_m", "answer_position_error_m",
            "commands"} <= set(report)
    assert report["commands"] == 2 and 0 <= report["target_accuracy"] <= 1
    assert 0 <= report["baseline_random_point"]["target_accuracy"] <= 1
    assert report["target_position_error_gt_m"] < 0.005  # the geometry alone, true masks
    from ros_ground.evaluate import format_report

    assert "target_accuracy" in format_report(report)
    # the random point grounds the model's own answer: its naming is not a baseline's
    naming = next(line for line in format_report(report).splitlines() if line.startswith("naming_accuracy"))
    assert naming.split()[-2:] == ["(same", "text)"]
    # the proposals' crop layers are part of what was measured, in the JSON and the text
    assert report["crop_n_layers"] == 0 and "crop layers" not in format_report(report)
    cropped = replace(engine.config, amg_params={**engine.config.amg_params, "crop_n_layers": 1})
    assert "crop layers 1" in format_report(report_json(run, 2, "tiny", 6, "command", cropped))
    zoomed = replace(engine.config, amg_params={**cropped.amg_params, "proposal_zoom": True})
    zoomed_report = report_json(run, 2, "tiny", 6, "command", zoomed)
    assert zoomed_report["proposal_zoom"] is True and report["proposal_zoom"] is False
    assert "crop layers 1, zoom crops" in format_report(zoomed_report)
    assert report["proposal_changes"] == {}
    assert zoomed_report["proposal_changes"] == {"crop_n_layers": 1, "proposal_zoom": True}
    loose = replace(engine.config, amg_params={**engine.config.amg_params, "pred_iou_thresh": 0.5})
    loose_report = report_json(run, 2, "tiny", 6, "command", loose)
    assert loose_report["proposal_changes"] == {"pred_iou_thresh": 0.5}
    assert "pred_iou_thresh 0.5" in format_report(loose_report)
    pointed = report_json(run, 2, "tiny", 6, "command", replace(zoomed, mode="point"))
    assert "crop layers" not in format_report(pointed)  # point prompts make no proposals
    assert "zoom" not in format_report(pointed)


def test_command_target_accuracy_is_reported_per_entity_scoring(engine):
    """One generation per command, grounded under each scoring: the report gives each one's
    target accuracy, so scorings are compared on the same answers."""
    from ros_ground.evaluate import format_report

    variants = {"model": {"mode": "auto"},
                **{f"entity_scoring:{s}": {"mode": "auto", "entity_scoring": s}
                   for s in ("attention", "combined")}}
    run = evaluate(engine, scenes=2, seed=6, prompt="command", variants=variants, progress=False)
    report = report_json(run, 2, "tiny", 6, "command", engine.config)
    by = report["target_accuracy_by_scoring"]
    assert set(by) == {"attention", "combined"}
    for name, value in by.items():
        hits = [r.target_hit for r in run.targets[f"entity_scoring:{name}"]]
        assert len(hits) == 2 and value == sum(hits) / 2
    assert f"target_accuracy by entity scoring: attention {by['attention']:.3f}" in format_report(report)
    described = evaluate(engine, scenes=1, seed=6, prompt="describe", variants=variants,
                         progress=False)
    assert report_json(described, 1, "tiny", 6, "describe", engine.config)[
        "target_accuracy_by_scoring"] == {}  # descriptions have no target


def test_eval_runs_with_the_engines_torch_threads_and_restores_them(engine, monkeypatch):
    import torch

    from ros_ground import ahead

    if ahead.usable_cores() < 2:
        pytest.skip("needs 2 usable cores to tell 1 thread from the default")
    monkeypatch.setattr(engine, "torch_threads", 1)
    before = torch.get_num_threads()
    if before == 1:
        pytest.skip("torch already runs one thread here")
    seen = []
    evaluate(engine, scenes=1, seed=0, on_answer=lambda a: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("seed, scenes", [(9999, 2), (100_000, 1), (-1, 3)])
def test_evaluation_never_scores_a_training_seed(engine, seed, scenes):
    from ros_ground.evaluate.regions import evaluate_regions

    with pytest.raises(ValueError, match="evaluation seeds must lie in 0..9999"):
        evaluate(engine, scenes=scenes, seed=seed, progress=False)
    with pytest.raises(ValueError, match="evaluation seeds must lie in 0..9999"):
        evaluate_regions(engine, scenes, seed, SIM_VOCABULARY, progress=False)


def test_scene_progress_reports_in_lines_without_a_terminal(capsys):
    from ros_ground.evaluate.progress import scene_progress

    # capsys's stderr is not a terminal: a line every report_every_s and one at the end
    assert list(scene_progress(range(5, 8), "eval", report_every_s=3600.0)) == [5, 6, 7]
    assert capsys.readouterr().err.splitlines()[0].startswith("eval: scene 3/3, ")
    list(scene_progress(range(3), "eval regions", report_every_s=1e-9))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"eval regions: scene {i}/3" for i in (1, 2, 3)]
    assert all(line.endswith(" min left") for line in lines)
    assert list(scene_progress(range(3), "eval", progress=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="report_every_s"):
        list(scene_progress(range(3), "eval", report_every_s=0))


def test_command_eval_measures_the_threshold_on_tokens_and_refuses_dump_for_absent(capsys, tmp_path):
    """min_target_score is a retrieval cosine: the eval's attention and combined variants run
    without it instead of refusing the whole run; --prompt absent writes no dump, so it says so
    before any model loads rather than leaving the folder empty."""
    from ros_ground.cli import main

    args = ["eval", "--prompt", "command", "--scenes", "1", "--seed", "3", "--model", "tiny",
            "--sam-model", "tiny", "--max-new-tokens", "4", "--mode", "entities",
            "--entity-scoring", "tokens", "--min-target-score", "0.15", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["min_target_score"] == 0.15
    dump = tmp_path / "d"
    assert main(["eval", "--prompt", "absent", "--scenes", "1", "--seed", "3", "--model", "tiny",
                 "--sam-model", "tiny", "--dump", str(dump)]) == 2
    assert "--prompt absent keeps neither" in capsys.readouterr().err and not dump.exists()


def test_provenance_hashes_a_sharded_checkpoint(tmp_path):
    # helper-134: a local LLaVA-7B is saved in shards; only model.safetensors was hashed
    from ros_ground.evaluate.report import provenance

    for i in (1, 2):
        (tmp_path / f"model-0000{i}-of-00002.safetensors").write_bytes(bytes([i]) * 10)
    first = provenance(str(tmp_path), "vit_b")["lmm_sha256"]
    assert first is not None and len(first) == 64
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"\x03" * 10)
    assert provenance(str(tmp_path), "vit_b")["lmm_sha256"] not in (None, first)
    assert provenance(str(tmp_path / "nothing"), "vit_b")["lmm_sha256"] is None


@pytest.mark.parametrize("prompt", ["describe", "absent"])
def test_eval_reports_the_weights_it_started_with_and_names_a_change_during_the_run(
        prompt, tmp_path, monkeypatch, capsys):
    """trial137 D2: the provenance was hashed after the run, so weights rewritten during it (`train
    lmm` rewrites the embedded LMM in place) were credited with numbers they did not give."""
    import shutil

    import ros_ground.evaluate.absent as absent_module
    import ros_ground.evaluate.cli as eval_cli
    from ros_ground.cli import main
    from ros_ground.lmm.loading import SIM_LMM_DIR
    from ros_ground.sam.load import SIM_SAM_DIR

    lmm, sam = tmp_path / "lmm", tmp_path / "sam"
    shutil.copytree(SIM_LMM_DIR, lmm)
    shutil.copytree(SIM_SAM_DIR, sam)
    sha = {name: hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
           for name, path in (("lmm", lmm), ("sam", sam))}

    def rewrite(path):
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF  # a byte of the last tensor: the header still reads
        path.write_bytes(bytes(data))
        return hashlib.sha256(bytes(data)).hexdigest()

    rewritten = {}

    def while_running(original):
        def run(*args, **kwargs):
            result = original(*args, **kwargs)  # the models have loaded and answered
            rewritten["lmm"] = rewrite(lmm / "model.safetensors")
            rewritten["sam"] = rewrite(sam / "model.safetensors")
            return result
        return run

    if prompt == "absent":
        monkeypatch.setattr(absent_module, "evaluate_absent", while_running(absent_module.evaluate_absent))
    else:
        monkeypatch.setattr(eval_cli, "evaluate", while_running(eval_cli.evaluate))
    argv = ["eval", "--scenes", "1", "--seed", "3", "--model", str(lmm), "--sam-model", str(sam),
            "--prompt", prompt, "--json"] + (["--mode", "point"] if prompt == "describe" else [])
    assert main(argv) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    made = report["provenance"]
    assert (made["lmm_sha256"], made["sam_sha256"]) == (sha["lmm"], sha["sam"])
    assert report["weights_changed_during_run"] == [
        {"weights": name, "sha256_at_start": sha[name], "sha256_at_end": rewritten[name]}
        for name in ("lmm", "sam")]
    for name, path in (("LMM", lmm), ("SAM", sam)):
        assert f"the {name} weights of {path} changed during the run" in out.err, out.err

    monkeypatch.undo()  # unchanged weights: an empty list, nothing said
    assert main(argv) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["weights_changed_during_run"] == []
    assert report["provenance"]["lmm_sha256"] == rewritten["lmm"] and "changed during" not in out.err
