"""`ros-ground eval --scene-set`: scene sets reach the renderer; naming accuracy and localisation
given naming."""

import inspect
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from test_evaluate import Oracle

from ros_ground.engine import EngineConfig, build_engine
from ros_ground.evaluate import SCENE_SETS, evaluate, report_json, scene_for
from ros_ground.evaluate.metrics import GTPhrase, PredPhrase
from ros_ground.evaluate.naming import Naming, naming
from ros_ground.sam import PROPOSAL_DEFAULTS
from ros_ground.settings import AMG_NAMES
from ros_ground.sim import scene as S
from ros_ground.sim.ranges import OOD_RANGES, TRAINING_RANGES


def _mask(x0: int) -> np.ndarray:
    mask = np.zeros((20, 40), dtype=bool)
    mask[5:10, x0:x0 + 5] = True
    return mask


GT = [GTPhrase("red cube", _mask(0)), GTPhrase("red cube", _mask(10)),
      GTPhrase("blue mug", _mask(20)), GTPhrase("teddy bear", _mask(30))]


def test_naming_needs_category_and_colour():
    assert naming([PredPhrase("the blue mug", None, (21.5, 6.5))], GT).named == 1
    assert naming([PredPhrase("the green mug", None, (21.5, 6.5))], GT).named == 0  # wrong colour
    assert naming([PredPhrase("the blue cube", None, (1.5, 6.5))], GT).named == 0
    assert naming([PredPhrase("a cup", None, None)], GT).named == 0  # a colour word is required
    assert naming([PredPhrase("a brown teddy", None, None)], GT).named == 1  # it has none
    assert naming([PredPhrase("the table", None, None)], GT).named == 0


def test_category_naming_ignores_the_colour_said():
    said = [PredPhrase("the green mug", None, None), PredPhrase("a black cube", None, None),
            PredPhrase("a mug", None, None)]  # the second mug phrase finds no free mug
    result = naming(said, GT)
    assert (result.named, result.named_category) == (0, 2)
    assert Naming.total([result, naming([PredPhrase("a blue cube", None, None)], GT)]) == {
        "naming_accuracy": 0.0, "named_point_accuracy": 0.0, "category_naming_accuracy": 3 / 8}


def test_category_naming_never_takes_an_object_a_fully_right_name_needs():
    # "ball" is both categories: a category-only pass alone would give "a ball" the sphere
    gt = [GTPhrase("red sphere", _mask(0)), GTPhrase("soccer ball", _mask(10))]
    result = naming([PredPhrase("a ball", None, None), PredPhrase("a red sphere", None, None)], gt)
    assert (result.named, result.named_category) == (2, 2)


def test_naming_counts_each_object_once_and_plural_phrases_for_several():
    one = naming([PredPhrase("a red cube", None, None)] * 3, GT)
    assert (one.num_gt, one.named) == (4, 2)  # two red cubes exist: a third phrase names none
    two = naming([PredPhrase("two red cubes", None, None), PredPhrase("a blue cup", None, None)], GT)
    assert two.named == 3


def test_localisation_given_naming_takes_the_object_the_point_is_in():
    # the point lies in the second red cube: that one is named, and the point hits it
    hit = naming([PredPhrase("the red cube", None, (11.5, 6.5))], GT)
    assert (hit.named, hit.named_hit) == (1, 1)
    miss = naming([PredPhrase("the red cube", None, (35.5, 6.5))], GT)  # in the teddy bear
    assert (miss.named, miss.named_hit) == (1, 0)


def test_scene_sets_render_their_ranges():
    # each set the evaluation offers is drawn from its own ranges
    assert "randomised" in SCENE_SETS
    assert scene_for(3, "randomised").rgb.tobytes() == \
        S.generate_scene(3, ranges=TRAINING_RANGES).rgb.tobytes()
    assert scene_for(3).rgb.tobytes() == S.generate_scene(3).rgb.tobytes()
    ood = scene_for(3, "ood")
    assert ood.rgb.shape == (450, 800, 3)
    assert ood.rgb.tobytes() == S.generate_scene(3, ranges=OOD_RANGES).rgb.tobytes()
    with pytest.raises(ValueError, match="scene set"):
        scene_for(3, "train")
    # the per-axis diagnostic: the same objects in the same poses, only the paint from training
    paint = scene_for(3, "ood:palette")
    assert paint.rgb.shape == (450, 800, 3) and paint.rgb.tobytes() != ood.rgb.tobytes()
    assert [o.name for o in paint.objects] == [o.name for o in ood.objects]
    assert np.array_equal(paint.objects[0].mask, ood.objects[0].mask)
    assert scene_for(3, "in:light_z", 160, 120).rgb.shape == (120, 160, 3)  # the caller's size


def test_oracle_names_and_points_perfectly_on_ood_scenes(monkeypatch):
    engine = build_engine(model="tiny", sam_model="tiny", device="cpu",
                          config=EngineConfig(max_new_tokens=8))
    oracle = Oracle(engine)
    original = S.generate_scene
    shapes = []

    def remember(seed, *args, **kwargs):
        oracle.scene = original(seed, *args, **kwargs)
        shapes.append(oracle.scene.rgb.shape)
        return oracle.scene

    monkeypatch.setattr(S, "generate_scene", remember)
    run = evaluate(oracle, scenes=2, seed=5, variants={"oracle": {"mode": "point"}},
                   progress=False, scene_set="ood")
    assert shapes == [(450, 800, 3)] * 2
    report = report_json(run, 2, "oracle", 5, "describe", EngineConfig(mode="point"), "ood")
    assert report["scene_set"] == "ood"
    assert report["naming_accuracy"] == 1.0 and report["named_point_accuracy"] == 1.0
    assert report["category_naming_accuracy"] == 1.0
    base = report["baseline_random_point"]
    assert base["naming_accuracy"] == 1.0  # the baseline keeps the model's phrases
    assert base["named_point_accuracy"] < 1.0  # but not its points


def test_cli_scene_set_ood(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ros_ground.cli", "eval", "--scenes", "1", "--seed", "2",
         "--model", "tiny", "--mode", "point", "--max-new-tokens", "8", "--scene-set", "ood",
         "--json", "--dump", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(out.stdout)
    assert report["scene_set"] == "ood"
    for source in (report, report["baseline_random_point"]):
        assert 0.0 <= source["naming_accuracy"] <= 1.0
        assert 0.0 <= source["named_point_accuracy"] <= 1.0
        assert source["naming_accuracy"] <= source["category_naming_accuracy"] <= 1.0
    from ros_ground.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval"]).scene_set == "in"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--scene-set", "train"])
    assert parser.parse_args(["eval", "--scene-set", "ood:palette,width"]).scene_set == "ood:palette,width"
    for bad in ("ood:height", "ood:"):
        with pytest.raises(SystemExit):
            parser.parse_args(["eval", "--scene-set", bad])


def test_eval_proposal_flags_reach_the_proposals(monkeypatch):
    """`--crop-n-layers`, `--pred-iou-thresh`, ... set the proposals as the proposal node's
    parameters do."""
    from ros_ground.cli import build_parser, engine_config
    from ros_ground.evaluate import cli as eval_cli

    seen = {}

    class Stop(Exception):
        pass

    def capture(*args, **kwargs):
        bound = inspect.signature(evaluate).bind(*args, **kwargs)
        assert "amg_params" not in bound.arguments  # evaluate's proposals: the engine config's
        engine = bound.arguments["engine"]
        seen.update(proposals=engine.config.amg_params, variants=bound.arguments["variants"],
                    config=engine.config)
        raise Stop

    monkeypatch.setattr(eval_cli, "evaluate", capture)
    parser = build_parser()
    args = parser.parse_args(["eval", "--model", "tiny", "--sam-model", "tiny", "--scenes", "1",
                              "--crop-n-layers", "1", "--proposal-zoom",
                              "--pred-iou-thresh", "0.5"])  # mode auto: each scoring
    with pytest.raises(Stop):
        eval_cli.run_eval(args, engine_config(args))
    assert seen["proposals"]["crop_n_layers"] == 1 and seen["proposals"]["points_per_side"] == 16
    assert seen["proposals"]["proposal_zoom"] is True and seen["proposals"]["pred_iou_thresh"] == 0.5
    # the engine's own proposals (a frame without any) use the same settings
    assert len(seen["variants"]) > 1 and all(
        replace(seen["config"], **v).amg_params == seen["proposals"] for v in seen["variants"].values())
    assert parser.parse_args(["eval"]).crop_n_layers == 0
    assert parser.parse_args(["eval"]).proposal_zoom is False
    # every proposal setting of the node is a flag, named, defaulting and checked like it
    for name in AMG_NAMES:
        assert getattr(parser.parse_args(["eval"]), name) == PROPOSAL_DEFAULTS[name]
    for bad in (["--crop-n-layers", "4"], ["--pred-iou-thresh", "1.5"], ["--points-per-side", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["eval", *bad])


@pytest.mark.parametrize("crops", [["--crop-n-layers", "1"], ["--proposal-zoom"],
                                   ["--stability-score-thresh", "0.5"]])
@pytest.mark.parametrize("flags", [["--mode", "point"], ["--prompt", "region"]])
def test_eval_refuses_proposal_flags_where_nothing_is_proposed(monkeypatch, flags, crops):
    """Point prompts and region prompts make no proposals: proposal settings there are refused
    before any model loads, rather than recorded as if they had been measured."""
    from ros_ground.cli import build_parser, engine_config
    from ros_ground.evaluate import cli as eval_cli

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(eval_cli, "build_engine_from_settings", no_load)
    args = build_parser().parse_args(["eval", "--scenes", "1", *crops, *flags])
    with pytest.raises(ValueError, match=crops[0] + ".*makes? none"):
        eval_cli.run_eval(args, engine_config(args))


def test_evaluate_proposes_with_the_engine_configs_settings(monkeypatch):
    """Without `amg_params`, the frame's proposals and the engine's own (a frame without any)
    use the engine config's settings, which `--crop-n-layers` sets."""

    params = {**PROPOSAL_DEFAULTS, "points_per_side": 4, "crop_n_layers": 1}
    engine = build_engine(model="tiny", sam_model="tiny", device="cpu",
                          config=EngineConfig(max_new_tokens=4, amg_params=params))
    calls = []

    def propose(image, key=None, **kwargs):
        calls.append(kwargs)
        return []  # none: the engine then makes its own

    monkeypatch.setattr(engine.sam, "propose", propose)
    evaluate(engine, 1, 6, {"entities": {"mode": "entities"}}, progress=False)
    assert len(calls) >= 2 and all(c == params for c in calls)


def test_one_engine_evaluates_both_sets_of_the_same_seeds():
    """Seeds repeat across scene sets: their images must not share the engine's image cache."""
    engine = build_engine(model="tiny", sam_model="tiny", device="cpu",
                          config=EngineConfig(max_new_tokens=4))
    for scene_set in ("in", "ood"):
        run = evaluate(engine, 1, 6, {"auto": {"mode": "auto"}}, progress=False,
                       amg_params={"points_per_side": 4}, scene_set=scene_set)
        assert len(run.model) == 1


def test_sam_quality_scores_the_scene_set_asked_for():
    from ros_ground.sam import load_sam
    from ros_ground.train.evaluation import sam_quality

    seed = 4  # its ood scene holds more objects than its classic one
    assert len(scene_for(seed, "ood").objects) != len(scene_for(seed, "in").objects)
    ood = sam_quality(load_sam("tiny"), scenes=1, seed=seed, amg_settings={}, progress=False,
                      scene_set="ood")
    assert ood["scene_set"] == "ood" and ood["objects"] == len(scene_for(seed, "ood").objects)


def test_changed_settings_are_what_the_proposals_ran_with():
    """A report names the proposal settings that differ from the node's; batching changes no
    mask, and names left out take segment-anything's defaults, as `mask_proposals` does."""
    from ros_ground.sam.proposals import AMG_DEFAULTS, changed_settings
    from ros_ground.train.card_format import proposal_text

    assert changed_settings(PROPOSAL_DEFAULTS) == {}
    assert changed_settings({**PROPOSAL_DEFAULTS, "points_per_batch": 8, "pred_iou_thresh": 0.5}) \
        == {"pred_iou_thresh": 0.5}
    partial = changed_settings({"crop_n_layers": 1})
    assert partial["crop_n_layers"] == 1
    assert partial["points_per_side"] == AMG_DEFAULTS["points_per_side"]
    assert AMG_DEFAULTS["points_per_side"] != PROPOSAL_DEFAULTS["points_per_side"]
    report = {"mode": "auto", "proposal_changes": {"proposal_zoom": False, "crop_n_layers": 2}}
    assert proposal_text(report, "") == "no zoom crops, crop layers 2"


def test_eval_lets_batching_through_where_nothing_is_proposed(monkeypatch):
    from ros_ground.cli import build_parser, engine_config
    from ros_ground.evaluate import cli as eval_cli

    class Loaded(Exception):
        pass

    def load(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr(eval_cli, "build_engine_from_settings", load)
    args = build_parser().parse_args(["eval", "--scenes", "1", "--mode", "point",
                                      "--points-per-batch", "8"])
    with pytest.raises(Loaded):  # past the check: the flag changes no mask
        eval_cli.run_eval(args, engine_config(args))
