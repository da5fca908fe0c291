"""`ros-ground eval --prompt absent`: commands about what a scene lacks, and how they are scored."""

import json

import numpy as np
import pytest

from ros_ground.evaluate.absent import ABSENT_KINDS, BALLS, absent_commands
from ros_ground.evaluate.scenes import scene_for


@pytest.mark.parametrize("scene_set", ["in", "ood"])
def test_absent_commands_name_only_what_the_scene_lacks(scene_set):
    kinds = set()
    for seed in range(8):
        scene = scene_for(seed, scene_set)
        categories = {o.category for o in scene.objects}
        colours = {o.color for o in scene.objects if o.color}
        verb = "Pick up the " if seed % 2 == 0 else "Where is the "
        for kind, command in absent_commands(scene):
            assert command.startswith(verb)
            words = command[len(verb):].rstrip(".?")
            kinds.add(kind)
            colour, _, category = words.partition(" ") if kind != "category" else ("", "", words)
            if kind.startswith("category"):
                assert category not in categories and not (category in BALLS and categories & BALLS)
            else:
                assert category in categories
                assert colour not in {o.color for o in scene.objects if o.category == category}
            assert (colour in colours) == (kind in ("category_colour", "colour_elsewhere"))
        assert absent_commands(scene) == absent_commands(scene_for(seed, scene_set))  # seeded
    assert kinds == set(ABSENT_KINDS)


@pytest.mark.parametrize("scene_set", ["in", "ood"])
def test_a_bare_category_command_names_an_object_alone_of_its_kind(scene_set):
    from ros_ground.evaluate.absent import bare_category_commands
    from ros_ground.evaluate.scenes import target_object

    asked = 0
    for seed in range(12):
        scene = scene_for(seed, scene_set)
        obj = target_object(scene, "command")
        same = [o for o in scene.objects if o.category == obj.category
                or {o.category, obj.category} <= BALLS]
        commands = bare_category_commands(scene)
        assert commands == ([] if len(same) > 1 else [
            f"Pick up the {obj.category}." if seed % 2 == 0 else f"Where is the {obj.category}?"])
        asked += len(commands)
    assert asked > 0


def test_the_absent_eval_scores_present_and_absent_commands(monkeypatch):
    from ros_ground.engine import EngineConfig, build_engine
    from ros_ground.evaluate import absent
    from ros_ground.results import Proposal

    engine = build_engine(model="tiny", sam_model="tiny", device="cpu", config=EngineConfig(
        max_new_tokens=4, mode="entities", entity_scoring="tokens", min_target_score=1.0))

    def squares(image, **kwargs):  # object-sized proposals (the tiny SAM's are not)
        masks = [np.zeros(image.shape[:2], bool) for _ in range(3)]
        for i, m in enumerate(masks):
            m[100:130, 40 + 80 * i:70 + 80 * i] = True
        return [Proposal(i, m) for i, m in enumerate(masks)]

    monkeypatch.setattr(engine.sam, "propose", squares)
    asked = []
    real = absent.absent_commands
    monkeypatch.setattr(absent, "absent_commands", lambda scene: asked.extend(real(scene)) or real(scene))
    # a threshold no cosine reaches: every command is refused, present ones too
    report = absent.evaluate_absent(engine, 2, 2, progress=False)
    assert (report["scenes"], report["commands"]) == (2, 2)
    assert report["target_accuracy"] == 0.0 and report["present_no_target"] == 1.0
    bare = report["present_category"]
    assert bare["commands"] >= 1 and bare["no_target"] == 1.0 and bare["target_accuracy"] == 0.0
    assert sum(row["commands"] for row in report["absent"].values()) == len(asked) > 0
    assert all(row["no_target"] == row["named_absent"] == 1.0
               for row in report["absent"].values() if row["commands"])
    # never: "Pick up the teddy bear." (seed 2) and "... the <category>." get the best square
    # (the commands with a colour word are refused when the squares lack it)
    engine.config.min_target_score = -2.0
    report = absent.evaluate_absent(engine, 1, 2, progress=False)
    assert report["present_no_target"] == 0.0 and report["absent"]["category"]["no_target"] == 0.0


def test_the_absent_eval_prints_a_table_unless_json(capsys):
    from ros_ground.cli import main

    args = ["eval", "--prompt", "absent", "--scenes", "1", "--seed", "2", "--model", "tiny",
            "--sam-model", "tiny", "--max-new-tokens", "4"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "absent: category" in text and "min_target_score -2.0" in text and "{" not in text
    assert "present, by its category alone" in text
    assert main([*args, "--entity-scoring", "tokens", "--min-target-score", "0.3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["min_target_score"] == 0.3 and set(report["absent"]) == set(ABSENT_KINDS)
