"""Training data from domain-randomised scenes: stored frames, cache, the LMM never sees a mask."""

import json
from pathlib import Path

import numpy as np
import pytest

from ros_ground.sim import scene as S
from ros_ground.sim.ranges import CLASSIC_RANGES, TRAINING_RANGES
from ros_ground.train import data as D


def test_randomised_frames_are_stored_at_one_size_with_their_labels():
    store = D.SceneStore(D.TRAIN_SEED_START, 4)
    classic = D.SceneStore(D.TRAIN_SEED_START, 4, scene_set="classic")
    assert store.scene_set == D.DEFAULT_SCENE_SET == "randomised"
    for i in range(4):
        rgb, labels = store.rgb(i), store.labels(i)
        assert rgb.shape == (D.HEIGHT, D.WIDTH, 3) and labels.shape == (D.HEIGHT, D.WIDTH)
        record = store.texts(i)
        assert set(np.unique(labels)) <= set(range(D.FIRST_OBJECT + len(record["names"])))
        assert not np.array_equal(rgb, classic.rgb(i))
    # the stored frame is the rendered one, resized: same seed, same draws
    scene = S.generate_scene(D.TRAIN_SEED_START, ranges=TRAINING_RANGES)
    assert store.texts(0)["names"] == [o.name for o in scene.objects]
    assert (scene.height, scene.width) != (D.HEIGHT, D.WIDTH)


def test_scene_sets_name_their_ranges():
    assert D.scene_ranges("randomised") is TRAINING_RANGES
    assert D.scene_ranges("classic") is CLASSIC_RANGES
    with pytest.raises(ValueError, match="scene set"):
        D.SceneStore(D.TRAIN_SEED_START, 1, scene_set="ood")  # never train on the held-out set


def test_mixed_scenes_alternate_classic_and_randomised_by_seed():
    mixed = D.SceneStore(D.TRAIN_SEED_START, 4, scene_set="mixed")
    classic = D.SceneStore(D.TRAIN_SEED_START, 4, scene_set="classic")
    randomised = D.SceneStore(D.TRAIN_SEED_START, 4)
    assert D.TRAIN_SEED_START % 2 == 0 and D.scene_ranges("mixed") is TRAINING_RANGES
    for i in range(4):
        same = classic if i % 2 == 0 else randomised
        other = randomised if i % 2 == 0 else classic
        assert np.array_equal(mixed.rgb(i), same.rgb(i)) and mixed.texts(i) == same.texts(i)
        assert not np.array_equal(mixed.rgb(i), other.rgb(i))


def test_cache_of_randomised_scenes_matches_on_the_fly_renders(tmp_path):
    D.build_cache(D.TRAIN_SEED_START, 2, tmp_path, progress=False)
    assert (tmp_path / f"randomised_texts_{D.TRAIN_SEED_START}.json").is_file()
    assert not (tmp_path / f"texts_{D.TRAIN_SEED_START}.json").exists()  # classic names stay free
    cached = D.SceneStore(D.TRAIN_SEED_START, 2, tmp_path)
    fresh = D.SceneStore(D.TRAIN_SEED_START, 2)
    assert cached.cached() == 1
    classic = D.SceneStore(D.TRAIN_SEED_START, 2, tmp_path, scene_set="classic")
    assert classic.cached() == 0  # a randomised cache never stands in for classic scenes
    for i in range(2):
        assert np.array_equal(cached.rgb(i), fresh.rgb(i))
        assert np.array_equal(cached.labels(i), fresh.labels(i))
        assert cached.texts(i) == fresh.texts(i)


def test_lmm_training_never_reads_labels_or_masks(tmp_path, monkeypatch):
    """Both LMM stages run with every route to a mask raising: the store's label maps, the
    label-map builder and the scenes' object masks. Adding mask supervision anywhere in the LMM
    pipeline fails here."""
    from ros_ground.train.configs import LMMArch, LMMTrainConfig
    from ros_ground.train.lmm import train_lmm

    def forbidden(*args, **kwargs):
        raise AssertionError("LMM training read a mask")

    # render what the store needs before the guards go up (rendering itself builds label maps)
    texts = {}
    rgbs = {}
    store = D.SceneStore(D.TRAIN_SEED_START, 3)
    for i in range(3):
        texts[i], rgbs[i] = store.texts(i), store.rgb(i)
    monkeypatch.setattr(D.SceneStore, "labels", forbidden)
    monkeypatch.setattr(D.SceneStore, "texts", lambda self, i: texts[i])
    monkeypatch.setattr(D.SceneStore, "rgb", lambda self, i: rgbs[i].copy())
    monkeypatch.setattr(D, "label_map", forbidden)
    monkeypatch.setattr(S.SimObject, "mask", property(forbidden), raising=False)
    arch = LMMArch(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1,
                   vision_heads=2, vision_mlp=64, text_hidden=64, text_layers=2, text_heads=2,
                   text_kv_heads=2, text_mlp=128)
    cfg = LMMTrainConfig(scenes=3, steps=2, batch_size=3, warmup=1, checkpoint_every=10_000,
                         arch=arch, threads=1, vision_steps=2)
    summary = train_lmm(cfg, tmp_path / "lmm", cache_dir=tmp_path / "no_cache", progress=False)
    assert summary["steps"] == 2 and summary["vision"]["steps"] == 2
    written = json.loads((tmp_path / "lmm" / "training.json").read_text())
    assert written["config"]["scene_set"] == "randomised"


def test_train_cli_defaults_to_randomised_scenes():
    from ros_ground.train import build_parser

    parser = build_parser()
    for what in ("data", "lmm", "sam"):
        assert parser.parse_args([what]).scene_set == "randomised"
    assert parser.parse_args(["lmm", "--scene-set", "classic"]).scene_set == "classic"
    with pytest.raises(SystemExit):
        parser.parse_args(["lmm", "--scene-set", "ood"])


def test_model_cards_name_each_training_scene_set():
    from ros_ground.train.card_format import data_ranges

    assert data_ranges("classic").startswith("the classic setting")
    assert data_ranges("randomised").startswith("domain-randomised over")
    mixed = data_ranges("mixed")
    assert mixed.startswith("even seeds the classic setting") and "odd seeds domain-randomised" in mixed


def test_a_fine_tunes_card_gives_its_lineage_and_the_table_by_scene_set(tmp_path):
    from ros_ground.train.card import lmm_card, sam_card

    base = {"step": 3400, "elapsed_s": 3000.0, "base": None,
            "config": {"seed_start": 100000, "scenes": 10, "batch_size": 8, "lr": 1e-3},
            "vision": {"steps": 3400, "config": {"batch_size": 32, "lr": 1e-3}}}
    tuned = {"step": 4000, "elapsed_s": 2400.0, "vision": None, "base": base,
             "config": {"seed_start": 100000, "scenes": 10, "scene_set": "mixed", "lr": 2e-4,
                        "init_from": "ros_ground/models/sim_lmm"}}
    (tmp_path / "training.json").write_text(json.dumps(tuned))
    metrics = ("mask_recall", "miou", "ap50", "point_accuracy", "naming_accuracy",
               "category_naming_accuracy", "named_point_accuracy")
    run = {"scene_set": "ood", "scenes": 2, "phrases": 5, **dict.fromkeys(metrics, 0.25),
           "baseline_random_point": {"mask_recall": 0.0, "point_accuracy": 0.125}}
    cropped = {**run, "crop_n_layers": 1, "prompt": "command"}  # a row gives its run's command
    zoomed = {**run, "proposal_zoom": True, "prompt": "command"}
    # a newer report names every proposal setting it changed
    loose = {**run, "proposal_changes": {"proposal_zoom": True, "stability_score_thresh": 0.5}}
    card = lmm_card(tmp_path, {"train": {"wall_s": 2400.0},
                               "scene_set_runs": [run, cropped, zoomed, loose]})
    assert "**fine-tuned** from `ros_ground/models/sim_lmm`" in card
    assert "stage 1 3400 steps x batch 32 images at AdamW lr 0.001" in card
    assert "stage 1: none in the fine-tune" in card and "fine-tune data" in card
    assert "this fine-tune 40.0 min, with its base's 50.0 min **90.0 min** in all" in card
    assert "| ood | 2 | 5 | 0.250 | 0.250 |" in card and "| 0.000 / 0.125 |" in card
    assert "ros-ground eval --scenes 2 --seed 0 --mode auto --scene-set ood" in card
    assert card.count("--crop-n-layers") == 1 and card.count("--prompt") == 2
    assert card.count("--proposal-zoom") == 2 and "| ood (zoom crops) | 2 |" in card
    assert "| ood (zoom crops, stability_score_thresh 0.5) | 2 |" in card
    assert "--proposal-zoom --stability-score-thresh 0.5 --json" in card
    assert "--prompt command --crop-n-layers 1 --json" in card and "| ood (crop layers 1) | 2 |" in card
    # the table by scene set alone is an evaluation: write_cards writes that card, and leaves
    # a model without any evaluation (here SAM) with the card it has
    from ros_ground.train.card import write_cards

    sam_dir = tmp_path / "sam"
    sam_dir.mkdir()
    write_cards(tmp_path, sam_dir, {"lmm": {"scene_set_runs": [run]}, "sam": {"train": {}}})
    assert "| ood | 2 | 5 |" in (tmp_path / "MODEL_CARD.md").read_text()
    assert not (sam_dir / "MODEL_CARD.md").exists()
    (tmp_path / "training.json").write_text(json.dumps(base))  # trained from scratch
    scratch = lmm_card(tmp_path, {"train": {"wall_s": 3000.0}})
    assert "fine-tune" not in scratch and "**50.0 min**" in scratch

    def quality(objects):
        return {"scenes": 2, "seeds": [0, 1], "objects": objects, "median_object_area_px": 90.0,
                "point_inner": {"miou": 0.5, "iou_ge_0.5": 0.5},
                "point_random_inside": {"miou": 0.4, "iou_ge_0.5": 0.4},
                "point_ms_per_prompt": 1.0,
                "amg": {"node (16 pts, iou 0.7, stability 0.8)": {
                    "recall_iou_0.5": 0.75, "mean_best_iou": 0.6, "proposals_per_scene": 9.0,
                    "seconds_per_scene": 1.0}}}

    card = sam_card(tmp_path, {"train": {"wall_s": 60.0}, "quality": quality(7),
                               "quality_by_set": {"ood": quality(8)}})
    assert "| in | 7 | 90 px | 0.500 | 0.500 | 0.400 | 0.750 |" in card
    assert "| ood | 8 | 90 px |" in card


def test_make_train_sim_runs_train_all_whose_steps_are_the_shipped_recipe_and_parse():
    from ros_ground import cli
    from ros_ground.train import build_parser, train_sim_steps

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ntrain-sim:", 1)[1].split("\n\n", 1)[0]
    assert [line.strip() for line in recipe.splitlines()[1:]] == ["$(VENV)/bin/ros-ground train all"]
    steps = train_sim_steps(workers=3)
    names = [" ".join(argv[:3 if argv[1] == "train" else 2]) if argv[0] == "ros_ground.cli" else argv[0]
             for argv, _ in steps]
    assert names == ["ros_ground.cli train data", "ros_ground.cli train lmm", "ros_ground.cli train sam",
                     "ros_ground.cli train data", "ros_ground.cli train lmm", "ros_ground.cli train sam",
                     "ros_ground.train.retrieval_head", "ros_ground.train.region_encoder",
                     "ros_ground.cli eval", "ros_ground.cli eval", "ros_ground.cli eval",
                     "ros_ground.cli train eval"]
    train = [build_parser().parse_args(argv[2:]) for argv, _ in steps if argv[1:2] == ["train"]]
    assert [(a.what, getattr(a, "scene_set", None)) for a in train[:6]] == [
        ("data", "classic"), ("lmm", "classic"), ("sam", "classic"),
        ("data", "mixed"), ("lmm", "mixed"), ("sam", "mixed")]
    assert train[0].workers == 3 and train[1].fresh and train[1].init_from is None
    assert train[4].init_from == "ros_ground/models/sim_lmm" and train[4].vision_steps == 0
    assert train[5].init_from == "ros_ground/models/sim_sam" and train[5].steps == 400
    evals = [(cli.build_parser().parse_args(argv[1:]), out) for argv, out in steps
             if argv[1:2] == ["eval"]]
    assert [a.scene_set for a, _ in evals] == ["in", "randomised", "ood"]
    assert all(a.json and out.name == f"eval_{a.scene_set}.json" for a, out in evals)
    assert train[-1].scene_set_run == [str(out) for _, out in evals]


def test_train_all_runs_each_step_in_turn_and_stops_at_the_first_failure(tmp_path, monkeypatch):
    import subprocess

    from ros_ground.train import main_train, train_sim_steps

    monkeypatch.setenv("ROS_GROUND_CACHE", str(tmp_path))
    calls = []

    def call(argv, cwd=None, stdout=None):
        calls.append((argv, stdout.name if stdout else None))
        return 3 if "ros_ground.train.region_encoder" in argv else 0

    monkeypatch.setattr(subprocess, "call", call)
    assert main_train(["all"]) == 3
    steps = train_sim_steps()
    assert [argv[2:] for argv, _ in calls] == [argv for argv, _ in steps[:8]]
    calls.clear()
    monkeypatch.setattr(subprocess, "call", lambda argv, cwd=None, stdout=None:
                        calls.append((argv, stdout.name if stdout else None)) or 0)
    assert main_train(["all"]) == 0
    assert [(argv[2:], out) for argv, out in calls] == [
        (argv, str(out) if out else None) for argv, out in steps]
