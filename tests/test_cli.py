"""`ros-ground ground`: the offline command line, as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ros_ground.image_files import load_depth, load_rgb, save_png
from ros_ground.rle import rle_to_mask


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "scene.png"
    save_png(path, np.random.RandomState(5).randint(0, 255, (70, 110, 3), dtype=np.uint8))
    return path


def _run(*args, check=True):
    return subprocess.run([sys.executable, "-m", "ros_ground.cli", *args], capture_output=True,
                          text=True, check=check, timeout=300)


def test_ground_json_schema_and_mask_sizes(png, tmp_path):
    overlay = tmp_path / "overlay.png"
    out = _run("ground", "--image", str(png), "--prompt", "Describe the image in detail.",
               "--model", "tiny", "--json", "--overlay", str(overlay))
    result = json.loads(out.stdout)
    assert set(result) == {"text", "phrases", "timing_ms", "model", "mode", "prompt",
                           "prompt_phrases", "target", "landmark", "relation", "destination", "absent",
                           "second_landmark", "intent", "more_targets", "position_error"}
    assert result["position_error"] == "no --depth and --camera-info given"
    assert result["model"] == "tiny" and result["text"]
    assert result["mode"] == "point"  # auto without proposals: SAM at each phrase's peak
    assert result["phrases"], result["text"]
    for p in result["phrases"]:
        assert result["text"][p["char_start"]:p["char_end"]] == p["text"]
        assert rle_to_mask(p["mask_rle"]).shape == (70, 110)
    image = load_rgb(overlay)
    assert image.shape == (70, 110, 3)
    assert not np.array_equal(image, load_rgb(png))  # masks were drawn


def test_ground_human_output(png):
    out = _run("ground", "--image", str(png), "--model", "tiny", "--mode", "point")
    assert out.stdout.startswith("[tiny] ")
    assert "area=" in out.stdout and "timing:" in out.stdout


def test_missing_image_and_model_are_clear_errors(png, tmp_path):
    out = _run("ground", "--image", str(tmp_path / "none.png"), check=False)
    assert out.returncode == 2 and "could not read an image from" in out.stderr
    assert "no such file" in out.stderr and "imread" not in out.stderr  # not OpenCV's own warning
    out = _run("ground", "--image", str(tmp_path), check=False)
    assert out.returncode == 2 and "a folder" in out.stderr
    out = _run("ground", "--image", "/dev/zero", check=False)  # would never end reading
    assert out.returncode == 2 and "/dev/zero: not a regular file" in out.stderr
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = _run("ground", "--image", str(broken), check=False)
    assert out.returncode == 2
    assert f"cannot decode {broken}: not an image of a format taken (JPEG, PNG" in out.stderr
    out = _run("ground", "--image", str(png), "--model", str(tmp_path / "no-model"), check=False)
    assert out.returncode == 2 and "no-model" in out.stderr


def test_a_model_directory_of_pickled_weights_is_refused_in_one_line(png, tmp_path):
    # trial132 D5: exit 1 with torch's 40-line traceback
    from tests.test_lmm import pickled_lmm

    directory = pickled_lmm(tmp_path / "evil")
    out = _run("ground", "--image", str(png), "--model", str(directory), check=False)
    assert out.returncode == 2, out.stderr
    error = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "Traceback" not in out.stderr, out.stderr
    assert str(directory) in error[0] and "pickled weights are refused" in error[0]


def test_what_the_node_refuses_is_refused_before_any_model_loads(png):
    out = _run("ground", "--image", str(png), "--model", "no-such-model",
               "--overlay", "/no/such/folder/out.png", check=False)
    assert out.returncode == 2 and "cannot write /no/such/folder/out.png: no folder" in out.stderr
    out = _run("ground", "--image", str(png), "--model", "no-such-model", "--overlay", "out.xyz",
               check=False)
    assert out.returncode == 2 and "no image format for the extension '.xyz'" in out.stderr
    assert "no-such-model" not in out.stderr
    # helper-131: --overlay naming the input image (or a link to it) replaced it with the overlay
    before = png.read_bytes()
    link = png.parent / "link.png"
    link.symlink_to(png)
    for overlay in (png, link):
        out = _run("ground", "--image", str(png), "--model", "no-such-model", "--overlay",
                   str(overlay), check=False)
        assert out.returncode == 2 and "is one of the input files: it would be overwritten" in out.stderr
    assert png.read_bytes() == before
    out = _run("ground", "--image", str(png), "--model", "no-such-model", "--prompt", "x" * 2001,
               check=False)
    assert out.returncode == 2 and "prompt has 2001 characters, limit is 2000" in out.stderr
    assert "no-such-model" not in out.stderr  # refused before the model was looked for
    out = _run("ground", "--image", str(png), "--prompt", "   ", check=False)
    assert out.returncode == 2 and "empty prompt" in out.stderr
    # bytes that are not UTF-8 (argv holds them as surrogate escapes) reached the tokenizer
    out = _run("ground", "--image", str(png), "--model", "no-such-model", "--prompt",
               "\udcff\udcfe bad", check=False)
    assert out.returncode == 2 and "prompt is not valid UTF-8 text: character 0" in out.stderr
    assert "Traceback" not in out.stderr and "no-such-model" not in out.stderr
    out = _run("eval", "--scenes", "0", check=False)
    assert out.returncode == 2 and "--scenes: expected an integer >= 1, got '0'" in out.stderr
    out = _run("eval", "--seed", "-5", check=False)
    assert out.returncode == 2 and "--seed: expected an integer >= 0, got '-5'" in out.stderr
    # seeds that reach the training seeds are refused before any model loads
    out = _run("eval", "--seed", "9990", "--scenes", "11", "--model", "no-such-model", check=False)
    assert out.returncode == 2 and "got seeds 9990..10000" in out.stderr
    assert "no-such-model" not in out.stderr


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_ask_timeout_must_be_positive_seconds(timeout):
    out = subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", "ask", "hi", "--timeout",
                          timeout], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"--timeout: expected a finite number of seconds > 0, got '{timeout}'" in out.stderr


def test_a_question_pools_its_window_entity_tokens_once(tmp_path, monkeypatch, capsys):
    # the answer's phrases and the question's own are scored against the same proposals of the
    # same frame (named by its pixels: the CLI gives no key), so the window tokens, a vision
    # pass per proposal, are computed once
    from ros_ground import cli
    from ros_ground.lmm import tokens
    from ros_ground.sim.scene import generate_scene

    path = tmp_path / "scene.png"
    save_png(path, generate_scene(3, width=160, height=120, num_objects=3).rgb)
    calls = []
    pool = tokens.window_entity_tokens
    monkeypatch.setattr(tokens, "window_entity_tokens",
                        lambda lmm, image, masks, window: calls.append(len(masks))
                        or pool(lmm, image, masks, window))
    assert cli.main(["ground", "--model", "sim", "--sam-model", "sim", "--image", str(path),
                     "--prompt", "Where is the red mug?", "--entity-scoring", "tokens",
                     "--mode", "entities", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["phrases"] and result["prompt_phrases"]  # both were scored
    assert len(calls) == 1 and calls[0] > 0


@pytest.mark.parametrize("where", [["--point", "50,30"], ["--region", "20,10,40,30"]])
def test_ground_a_region_by_point_or_box(png, where):
    out = _run("ground", "--image", str(png), "--model", "tiny", "--prompt", "What is this?",
               "--json", *where)
    result = json.loads(out.stdout)
    assert result["prompt"] == "What is this?" and result["text"]
    for p in result["phrases"]:
        assert rle_to_mask(p["mask_rle"]).shape == (70, 110)


def test_a_box_becomes_a_proposal_in_entities_mode(tmp_path, monkeypatch, capsys):
    # as README says and the node does: the box selects the proposal of highest IoU with it,
    # and those proposals ground the answer (SAM proposes once)
    from ros_ground import cli, regions
    from ros_ground.sam.segmenter import SamSegmenter
    from ros_ground.sim.scene import generate_scene

    path = tmp_path / "scene.png"
    save_png(path, generate_scene(3).rgb)
    chosen, proposed = [], []
    pick = regions.entity_for_box
    monkeypatch.setattr(regions, "entity_for_box",
                        lambda box, proposals: chosen.append(pick(box, proposals)) or chosen[-1])
    propose = SamSegmenter.propose
    monkeypatch.setattr(SamSegmenter, "propose",
                        lambda self, *a, **k: proposed.append(1) or propose(self, *a, **k))
    box = (140, 115, 35, 52)  # around the green mug (144, 118, 29, 47)
    assert cli.main(["ground", "--image", str(path), "--prompt", "What is this?", "--region",
                     ",".join(map(str, box)), "--mode", "entities", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "entities"
    rectangle = regions.box_mask((240, 320), *box)
    assert chosen[0] is not None and chosen[0].sum() < 0.8 * rectangle.sum()  # the mug, not the box
    assert len(proposed) == 1
    # a box no proposal matches is the region as drawn, and says so
    assert cli.main(["ground", "--image", str(path), "--prompt", "What is this?", "--region",
                     "0,0,6,6", "--mode", "entities", "--json"]) == 0
    assert "no proposal matches the box" in capsys.readouterr().err and chosen[-1] is None
    # no proposals at all: point mode, without a second proposal pass
    proposed.clear()
    monkeypatch.setattr(SamSegmenter, "propose", lambda self, *a, **k: proposed.append(1) or [])
    assert cli.main(["ground", "--image", str(path), "--prompt", "What is this?", "--region",
                     ",".join(map(str, box)), "--mode", "entities", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "point" and len(proposed) == 1


def test_entities_mode_without_proposals_says_it_grounded_by_points(png, monkeypatch, capsys):
    from ros_ground import cli
    from ros_ground.sam.segmenter import SamSegmenter

    monkeypatch.setattr(SamSegmenter, "propose", lambda self, *a, **k: [])
    assert cli.main(["ground", "--image", str(png), "--prompt", "Describe the image.",
                     "--mode", "entities"]) == 0
    out = capsys.readouterr()
    assert "grounded in point mode instead" in out.err and out.out.startswith("[sim] ")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_train_help_is_trains_own(flag, capsys):
    """`ros-ground train -h` (the top-level help says "(-h)"): argparse's REMAINDER left a
    leading option out, and the command failed with "unrecognized arguments"."""
    from ros_ground.cli import main

    with pytest.raises(SystemExit) as done:
        main(["train", flag])
    assert done.value.code == 0
    assert "usage: ros-ground train [-h] {data,lmm,sam,eval,all}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["bench", "--bogus"])
    assert done.value.code == 2
    # the subcommand's usage and name, not the list of subcommands: the user sees which flags it takes
    err = capsys.readouterr().err
    assert "ros-ground bench: error: unrecognized arguments: --bogus" in err
    assert err.startswith("usage: ros-ground bench")
    with pytest.raises(SystemExit) as done:
        main(["ground", "--image", "x.png", "--params-file", "/nonexistent/robot.yaml"])
    assert done.value.code == 2
    assert "ros-ground ground: error: /nonexistent/robot.yaml: no such file\n" in capsys.readouterr().err


@pytest.mark.parametrize("args,expected", [
    (["ground", "--image", "x.png", "--max-image-pixels", "0"], "--max-image-pixels: expected an "
     "integer >= 1, got '0'"),
    (["bench", "--soak", "nan"], "--soak: expected a finite number of seconds > 0, got 'nan'"),
    (["bench", "--soak", "-1"], "--soak: expected a finite number of seconds > 0, got '-1'"),
    (["bench", "--threads", "0"], "--threads: expected an integer >= 1, got '0'"),
])
def test_numeric_flags_out_of_range_are_usage_errors(args, expected, capsys):
    from ros_ground.cli import main

    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2 and expected in capsys.readouterr().err


def test_the_command_line_starts_without_torch():
    # `ros-ground ask`, `--help`, `train -h`, usage errors and a bad --image answer in a fraction
    # of a second: torch (about 5 s to import on this CPU) loads only when a model is about to run
    code = ("import sys; from ros_ground import cli; from ros_ground.nodes import cli as ros_cli"
            "; cli.build_parser(ros_cli.add_ros_commands).parse_args(['ask', 'hi'])"
            "; import ros_ground.nodes.ask"
            "; from ros_ground.train import build_parser; build_parser()"  # train -h's defaults
            "; assert cli.main(['ground', '--image', '/no/such/image.png']) == 2"
            "; assert cli.main(['eval', '--seed', '100000']) == 2"  # a training seed
            "; print(sorted(m for m in ('torch', 'transformers', 'segment_anything', 'spacy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("side,limit", [(100000, 4096 * 4096), (300, 1000)])
def test_an_image_file_above_the_limit_is_refused_from_its_header(tmp_path, capsys, side, limit):
    # a PNG declaring 100000x100000 (OpenCV's own cap is 2^30 pixels) is refused in one line
    # before a model loads or a pixel is decoded, by --max-image-pixels as by the default
    from test_image_codec import _declaring

    from ros_ground.cli import main

    path = tmp_path / "bomb.png"
    path.write_bytes(_declaring(".png", side, side))
    assert main(["ground", "--model", "no-such-model", "--image", str(path),
                 "--max-image-pixels", str(limit)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ros-ground ground: error: {path} is above the limit of {limit} "
                          "(max_image_pixels)") or f"image {side}x{side} has {side * side} pixels, " \
        f"above the limit of {limit}" in err, err
    assert "no-such-model" not in err and "Traceback" not in err


@pytest.mark.parametrize("where,words", [
    (["--region", "10,10,0,0"], "region box (10, 10, 0, 0) is empty"),
    (["--region", "0,0,4294967295,4294967295"], "reaches outside the 110x70 image"),
    (["--point", "100000,5"], "region point (100000, 5) is outside the 110x70 image"),
    # a value starting with "-" read as an option: "expected one argument"
    (["--region", "-5,10,20,20"], "region box (-5, 10, 20, 20) reaches outside"),
    (["--point", "-1,3"], "region point (-1, 3) is outside the 110x70 image"),
])
def test_a_region_off_the_image_is_refused_before_a_model_loads(png, capsys, where, words):
    from ros_ground.cli import main

    assert main(["ground", "--model", "no-such-model", "--image", str(png), *where]) == 2
    err = capsys.readouterr().err
    assert words in err and "no-such-model" not in err, err


def test_ctrl_c_while_grounding_prints_one_line(monkeypatch, capsys, png):
    from ros_ground import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.CORE_COMMANDS, "ground", interrupted)
    assert cli.main(["ground", "--image", str(png)]) == 130
    assert capsys.readouterr().err == "ros-ground ground: interrupted\n"


def test_a_params_file_gives_the_flags_the_nodes_values(monkeypatch, tmp_path, capsys):
    """`--params-file config/sim.yaml` grounds as the launched node does (its entity scoring and
    target threshold, not the node's defaults); a flag given still wins."""
    import ros_ground.cli as cli

    seen = []
    monkeypatch.setitem(cli.CORE_COMMANDS, "ground", lambda args: seen.append(args) or 0)
    assert cli.main(["ground", "--image", "x.png", "--params-file", "config/sim.yaml"]) == 0
    assert cli.main(["ground", "--image", "x.png", "--params-file", "config/sim.yaml",
                     "--min-target-score", "0.3", "--no-command-words"]) == 0
    assert cli.main(["ground", "--image", "x.png"]) == 0
    sim, flagged, plain = seen
    assert (sim.entity_scoring, sim.min_target_score, sim.region_token) == ("tokens", 0.15, "encoder")
    assert (flagged.min_target_score, flagged.command_words, flagged.entity_scoring) == (0.3, False,
                                                                                           "tokens")
    assert (plain.entity_scoring, plain.min_target_score) == ("attention", -2.0)
    # one image is asked what the node's `describe` asks: its default_prompt, or a file's
    assert plain.prompt == "Describe the scene."
    # a list, as the node's YAML writes it; a wildcard key; a later key wins
    listed = tmp_path / "listed.yaml"
    listed.write_text("/**:\n  ros__parameters:\n    attention_views: [identity, hflip]\n"
                      "    max_new_tokens: 8\n/**/grounding_node:\n  ros__parameters:\n"
                      "    max_new_tokens: 16\n    queue_size: 2\n    default_prompt: What is red?\n"
                      "other_node:\n  ros__parameters:\n    nonsense: 1\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(listed)]) == 0
    assert (seen[-1].attention_views, seen[-1].max_new_tokens) == (["identity", "hflip"], 16)
    assert seen[-1].prompt == "What is red?"
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(listed), "--prompt", "Hi?"]) == 0
    assert seen[-1].prompt == "Hi?"
    # the node's limits, which `ground` has flags of; files layered, a later one winning; a
    # wildcard section's parameter of another node is that node's
    limits = tmp_path / "limits.yaml"
    limits.write_text("/robot/grounding_node:\n  ros__parameters:\n    max_image_pixels: 10\n"
                      "    max_new_tokens: 4\n/**:\n  ros__parameters:\n    camera_fps: 30\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(listed),
                     "--params-file", str(limits)]) == 0
    assert (seen[-1].max_image_pixels, seen[-1].max_new_tokens, seen[-1].attention_views) == (
        10, 4, ["identity", "hflip"])
    # what a user can get wrong: the file, a parameter's name, its value
    bad = tmp_path / "bad.yaml"
    for text, words in [("- a\n- b\n", "is no ROS 2 parameter file"),
                        ("grounding_node: [1]\n", "'grounding_node' has no ros__parameters mapping"),
                        ("sim_camera_node:\n  ros__parameters:\n    seed: 1\n",
                         "has no section for grounding_node (its sections: sim_camera_node)"),
                        ("grounding_node:\n  ros__parameters:\n    min_target_score: lots\n",
                         f"{bad}: min_target_score: expected a number (not quoted), got 'lots'"),
                        ("grounding_node:\n  ros__parameters:\n    torch_threads: true\n",
                         f"{bad}: torch_threads: expected an integer, got True"),
                        ("grounding_node:\n  ros__parameters:\n    device: null\n",
                         f"{bad}: device: expected text, got None"),
                        # helper-112: types the node refuses though their text would parse
                        ("grounding_node:\n  ros__parameters:\n    queue_size: 2.5\n",
                         f"{bad}: queue_size: expected an integer, got 2.5"),
                        ("mask_proposal_node:\n  ros__parameters:\n    pred_iou_thresh: '0.5'\n",
                         f"{bad}: pred_iou_thresh: expected a number (not quoted), got '0.5'"),
                        ("grounding_node:\n  ros__parameters:\n    attention_views: [identity, 2]\n",
                         f"{bad}: attention_views: expected a list of text, got ['identity', 2]"),
                        ("grounding_node:\n  ros__parameters:\n    max_image_pixels: 0\n",
                         f"{bad}: max_image_pixels: expected an integer >= 1, got '0'")]:
        bad.write_text(text)
        with pytest.raises(SystemExit) as exc:
            cli.main(["ground", "--image", "x.png", "--params-file", str(bad)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and words in err and "usage:" not in err, text  # one line
    with pytest.raises(SystemExit):
        cli.main(["ground", "--image", "x.png", "--params-file", str(tmp_path / "none.yaml")])
    assert "none.yaml" in capsys.readouterr().err
    # `compile: off` (a YAML boolean) is read as the node reads it, and not used
    # for one image; a typo in a wildcard section is named; the proposal node's settings give
    # the engine's own proposals, as on a far camera (config/demo.yaml)
    node = tmp_path / "node.yaml"
    node.write_text("/**:\n  ros__parameters:\n    max_new_tokns: 8\n    use_sim_time: true\n"
                    "grounding_node:\n  ros__parameters:\n    compile: off\n"
                    "other_node:\n  ros__parameters:\n    gain: 2\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(node)]) == 0
    err = capsys.readouterr().err
    assert seen[-1].compile == "auto"
    assert "compile" not in err  # the --params-file help says so; no note on every run
    assert "no ros_ground node has a parameter 'max_new_tokns'" in err and "'max_new_tokens'" in err
    assert "gain" not in err and "use_sim_time" not in err
    # a typo in a node's own section is ignored with the same word as in a wildcard one (the
    # node itself warns and ignores it); a name of the other node there is that node's
    node.write_text("/**/grounding_node:\n  ros__parameters:\n    min_target_scor: 0.2\n"
                    "    points_per_side: 8\n"
                    "mask_proposal_node:\n  ros__parameters:\n    pred_iou_thres: 0.5\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(node)]) == 0
    err = capsys.readouterr().err
    assert (f"{node}: grounding_node has no parameter 'min_target_scor', so it is ignored: did you "
            "mean 'min_target_score'?") in err
    assert "grounding_node has no parameter 'points_per_side', so it is ignored: did you mean " \
        "'points_per_side' (a mask_proposal_node parameter)" in err
    assert "mask_proposal_node has no parameter 'pred_iou_thres', so it is ignored: did you mean " \
        "'pred_iou_thresh'" in err
    assert cli.main(["ground", "--image", "x.png", "--params-file", "config/sim.yaml",
                     "--params-file", "config/demo.yaml"]) == 0
    far = seen[-1]
    assert (far.proposal_zoom, far.pred_iou_thresh, far.stability_score_thresh, far.mode) == (
        True, 0.5, 0.5, "auto")
    assert cli.engine_config(far).amg_params["proposal_zoom"] is True


def test_a_params_file_gives_ground_only_the_proposal_nodes_proposal_settings(monkeypatch, tmp_path,
                                                                            capsys):
    """The proposal node's section gives `ground` its proposal settings only (never the engine's
    sam_model or device); a nested namespace key and a file with a proposal section only are
    read; a value the proposal node would refuse is refused, even with no `ground` flag of it."""
    import ros_ground.cli as cli

    seen = []
    monkeypatch.setitem(cli.CORE_COMMANDS, "ground", lambda args: seen.append(args) or 0)
    both = tmp_path / "both.yaml"
    both.write_text("/**/grounding_node:\n  ros__parameters:\n    sam_model: sim\n    device: cpu\n"
                    "/**/mask_proposal_node:\n  ros__parameters:\n    sam_model: vit_b\n"
                    "    device: cuda\n    pred_iou_thresh: 0.6\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(both)]) == 0
    assert (seen[-1].sam_model, seen[-1].device, seen[-1].pred_iou_thresh) == ("sim", "cpu", 0.6)
    nested = tmp_path / "nested.yaml"
    nested.write_text("ground:\n  grounding_node:\n    ros__parameters:\n      min_target_score: 0.33\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(nested)]) == 0
    assert seen[-1].min_target_score == 0.33
    proposals = tmp_path / "proposals.yaml"
    proposals.write_text("/**/mask_proposal_node:\n  ros__parameters:\n    proposal_zoom: true\n")
    assert cli.main(["ground", "--image", "x.png", "--params-file", str(proposals)]) == 0
    assert seen[-1].proposal_zoom is True
    refused = tmp_path / "refused.yaml"
    refused.write_text("/**/mask_proposal_node:\n  ros__parameters:\n    min_period_s: -1.0\n")
    with pytest.raises(SystemExit):
        cli.main(["ground", "--image", "x.png", "--params-file", str(refused)])
    assert f"{refused}: min_period_s must be" in capsys.readouterr().err


def test_a_ros_subcommand_of_the_core_command_line_says_where_it_is():
    out = _run("ask", "Describe the scene.", check=False)
    assert out.returncode == 2 and "ask needs ROS: run it from the `ros-ground` entry point " \
        "(`python -m ros_ground.nodes.cli ask ...`)" in out.stderr, out.stderr



def test_the_readmes_sample_scene_grounds_its_command_in_3d():
    """docs/sample holds the files the README's commands name: its second command finds the
    green mug and where it is."""
    sample = Path(__file__).resolve().parent.parent / "docs" / "sample"
    out = _run("ground", "--image", str(sample / "scene.png"), "--depth", str(sample / "depth.png"),
               "--camera-info", str(sample / "camera_info.yaml"), "--params-file", "config/sim.yaml",
               "--prompt", "Pick up the green mug.", "--json")
    result = json.loads(out.stdout)
    target = result["prompt_phrases"][result["target"]]
    assert target["text"] == "the green mug" and result["position_error"] == ""
    x, y, w, h = target["bbox"]
    assert abs(x - 145) <= 3 and abs(y - 119) <= 3 and abs(w - 28) <= 3 and abs(h - 45) <= 3
    assert abs(target["position"][2] - 0.619) < 0.02  # metres from the camera


def test_the_sample_depth_has_no_return_where_the_ray_hit_nothing():
    """docs/sample/depth.png is what a depth camera sends: 0 where nothing reflected, never the
    renderer's far plane, which `ground --depth` would take for a surface 5 m away."""
    from ros_ground.sim.camera import FAR

    depth = load_depth(Path(__file__).resolve().parent.parent / "docs" / "sample" / "depth.png")
    assert np.isnan(depth).any()
    assert np.nanmax(depth) < FAR * 0.999


def _parser_of(main, monkeypatch, argv=()):
    """The parser a `main(argv)` builds, caught as it starts parsing (nothing else runs)."""
    import argparse

    class Built(Exception):
        pass

    def catch(parser, *args, **kwargs):
        raise Built(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    with pytest.raises(Built) as built:
        main(list(argv))
    monkeypatch.undo()
    return built.value.args[0]


def _undocumented(parser, prefix="") -> list[str]:
    import argparse

    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _undocumented(sub, f"{prefix}{name} ")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            found.append(prefix + "/".join(action.option_strings or [action.dest]))
    return found


def test_every_flag_says_what_it_does(monkeypatch):
    # `-h` is where a user learns a flag: one listed bare leaves them reading the source
    from ros_ground import cli
    from ros_ground.nodes import cli as ros_cli
    from ros_ground.train import build_parser, region_encoder, retrieval_head

    parsers = {"ros-ground": cli.build_parser(ros_cli.add_ros_commands),
               "ros-ground train": build_parser(),
               "train.retrieval_head": _parser_of(retrieval_head.main, monkeypatch),
               "train.region_encoder": _parser_of(region_encoder.main, monkeypatch)}
    bare = [f"{name}: {flag}" for name, parser in parsers.items() for flag in _undocumented(parser)]
    assert not bare, "flags without help text:\n" + "\n".join(bare)


def test_ground_help_gives_an_empty_default_as_the_readme_does(capsys):
    # the README's parameter table gives sam_checkpoint's default as "" (not given); -h said None
    from ros_ground import cli

    with pytest.raises(SystemExit):
        cli.main(["ground", "-h"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default \"\"; the node's sam_checkpoint)" in out and "default None" not in out
