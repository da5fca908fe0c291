"""`ros-ground eval --prompt absent`: does a command about an object the frame lacks get no target?

A robot told "Pick up the duck." with no duck in view must not be sent to the best match of the
rest. For every scene the command evaluation's own command about a present object X (the
scene's first referring expression, `scene_prompts(..., "command")`) is asked, then commands
about what the scene lacks (`absent_commands`), all with the same words ("Pick up ..." on even
seeds, "Where is ...?" on odd ones) and the same proposals. Reported: the share of present
commands whose target is X (IoU >= 0.5, `target_accuracy`); the same for X named by its
category alone ("the tray", `present_category`) where no other object in view is of it, as
a robot's user says it and the eval's own commands never do (they name the colour); and, of
each kind of absent command, the share answered with no target (`no_target`,
GroundingResult.target -1) and the share whose response names the phrase absent
(`named_absent`, GroundingResult.absent; the rest of no target: a phrase the model cannot read,
none grounded): the trade-off `min_target_score` sets (command.refer.absent).
"""

from __future__ import annotations

import numpy as np

from ros_ground.evaluate.metrics import IOU_HIT
from ros_ground.evaluate.progress import scene_progress
from ros_ground.evaluate.scenes import scene_for, scene_prompts, target_object
from ros_ground.masks import iou
from ros_ground.sim.language import COLORS, PLURALS

# the categories a command can name; a sphere and a soccer ball are both "a ball"
CATEGORIES = tuple(c for c in PLURALS if c != "object")
BALLS = frozenset(("sphere", "soccer ball"))
ABSENT_KINDS = (
    "category",  # "the duck": no duck in view
    "category_colour",  # "the red duck": no duck, something red
    "colour_elsewhere",  # "the blue mug": mugs, none blue, something blue
    "colour_nowhere",  # "the purple mug": mugs, no object painted purple
)


def absent_commands(scene) -> list[tuple[str, str]]:
    """(kind of ABSENT_KINDS, command) about what `scene` lacks, drawn from its seed: a
    category with no object in view (bare, and with a colour some object has), and a category
    in view with a colour none of its objects has (some other object's; no object's). Kinds the
    scene cannot give (every category in view, no coloured object) are left out."""
    rng = np.random.default_rng(scene.seed + 7)
    categories = {o.category for o in scene.objects}
    colours = sorted({o.color for o in scene.objects if o.color})
    missing = [c for c in CATEGORIES if c not in categories and not (c in BALLS and categories & BALLS)]
    ask = (lambda x: f"Pick up {x}.") if scene.seed % 2 == 0 else (lambda x: f"Where is {x}?")
    out = []
    if missing:
        category = missing[rng.integers(len(missing))]
        out.append(("category", ask(f"the {category}")))
        if colours:
            out.append(("category_colour", ask(f"the {colours[rng.integers(len(colours))]} {category}")))
    coloured = [o for o in scene.objects if o.color]
    if coloured:
        obj = coloured[rng.integers(len(coloured))]
        own = {o.color for o in scene.objects if o.category == obj.category}
        elsewhere = sorted(set(colours) - own)
        if elsewhere:
            out.append(("colour_elsewhere",
                        ask(f"the {elsewhere[rng.integers(len(elsewhere))]} {obj.category}")))
        nowhere = sorted(set(COLORS) - set(colours))
        if nowhere:
            out.append(("colour_nowhere", ask(f"the {nowhere[rng.integers(len(nowhere))]} {obj.category}")))
    return out


def bare_category_commands(scene) -> list[str]:
    """The command about the scene's command target X (`target_object`) by its category alone,
    in the scene's wording ("Pick up the tray." / "Where is the tray?"), when X is the only
    object of it in view (a ball counts among BALLS); [] otherwise."""
    obj = target_object(scene, "command")
    if sum(o.category == obj.category or {o.category, obj.category} <= BALLS
           for o in scene.objects) != 1:
        return []
    return [f"Pick up the {obj.category}." if scene.seed % 2 == 0 else f"Where is the {obj.category}?"]


def evaluate_absent(engine, scenes: int, seed: int, progress: bool | None = None,
                    scene_set: str = "in") -> dict:
    """Target accuracy on the present commands and the no-target share of each kind of absent
    command (module docstring) on scenes seed .. seed+scenes-1 of `scene_set`, the engine in
    its config's mode with its config's proposals (made once per scene). ValueError for seeds
    outside the held-out evaluation seeds (train.data.check_eval_seeds)."""
    from ros_ground.train.data import check_eval_seeds

    check_eval_seeds(seed, scenes)
    present = [0, 0, 0]  # right target, no target, commands
    bare = [0, 0, 0]  # the same for the object named by its category alone
    absent = {kind: [0, 0, 0] for kind in ABSENT_KINDS}  # no target, named absent, commands
    samples = []
    for scene_seed in scene_progress(range(seed, seed + scenes), "eval absent", progress):
        scene = scene_for(scene_seed, scene_set)
        key = ("eval-absent", scene_set, scene_seed)  # seeds repeat across scene sets
        proposals = None
        if engine.config.mode != "point":
            proposals = engine.sam.propose(scene.rgb, key=key, **engine.config.amg_params)
        obj = target_object(scene, "command")
        for text, _ in scene_prompts(scene, "command"):
            result = engine.ground(scene.rgb, text, proposals=proposals, image_key=key)
            target = result.prompt_phrases[result.target] if result.target >= 0 else None
            present[0] += target is not None and iou(target.mask, obj.mask) >= IOU_HIT
            present[1] += target is None
            present[2] += 1
        for text in bare_category_commands(scene):
            result = engine.ground(scene.rgb, text, proposals=proposals, image_key=key)
            target = result.prompt_phrases[result.target] if result.target >= 0 else None
            bare[0] += target is not None and iou(target.mask, obj.mask) >= IOU_HIT
            bare[1] += target is None
            bare[2] += 1
        for kind, text in absent_commands(scene):
            result = engine.ground(scene.rgb, text, proposals=proposals, image_key=key)
            absent[kind][0] += result.target < 0
            absent[kind][1] += result.absent >= 0
            absent[kind][2] += 1
            if len(samples) < 20:
                samples.append({"seed": scene_seed, "kind": kind, "command": text,
                                "target": result.target, "absent": result.absent})
    return {
        "scenes": scenes, "seed": seed, "scene_set": scene_set, "commands": present[2],
        "target_accuracy": _share(present[0], present[2]),
        "present_no_target": _share(present[1], present[2]),
        "present_category": {"commands": bare[2], "target_accuracy": _share(bare[0], bare[2]),
                             "no_target": _share(bare[1], bare[2])},
        "absent": {kind: {"commands": n, "no_target": _share(none, n), "named_absent": _share(named, n)}
                   for kind, (none, named, n) in absent.items()},
        "samples": samples,
    }


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None
