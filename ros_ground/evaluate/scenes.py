"""What the evaluation asks about which scenes: the scene sets, the prompts and their ground truth.

Scene sets (`SCENE_SETS`): "in" (default) the classic 320x240 scenes, inside the training ranges
of both the first and the domain-randomised models; "randomised" scenes drawn over the training
ranges themselves; "ood" scenes drawn outside them on five axes (sim.ranges.OOD_RANGES: a lower,
farther camera, an 800x450 image, held-out colour shades).

Prompts (`scene_prompts`): "Describe the scene." against every object, "Where is X?" (`refer`:
the scene's first referring expression) against X, and `command`: "Pick up X." on even seeds,
"Where is X?" on odd ones.
"""

from __future__ import annotations

from ros_ground.evaluate.metrics import GTPhrase, Vocabulary, gt_from_objects
from ros_ground.sim import ranges as sim_ranges
from ros_ground.sim.language import COLORS, PLURALS, SYNONYMS

DESCRIBE_PROMPT = "Describe the scene."
PROMPT_KINDS = ("describe", "refer", "both", "command")
SCENE_SETS = tuple(sim_ranges.SCENE_SETS)
# the simulator's words for its categories and colours: which object a phrase names
SIM_VOCABULARY = Vocabulary(SYNONYMS, tuple(COLORS), PLURALS)


def scene_for(seed: int, scene_set: str = "in", width: int = 320, height: int = 240):
    """The evaluation scene of `seed` in `scene_set` (sim.scene.scene_in_set)."""
    from ros_ground.sim.scene import scene_in_set

    return scene_in_set(seed, scene_set, width, height)


def scene_prompts(scene, kind: str) -> list[tuple[str, list[GTPhrase]]]:
    """(prompt, GT phrases) pairs for a scene: the description task, referring questions, or both."""
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt kind must be one of {PROMPT_KINDS}, got {kind!r}")
    prompts = []
    if kind in ("describe", "both"):
        prompts.append((DESCRIBE_PROMPT, gt_from_objects(scene.objects)))
    if kind in ("refer", "both", "command") and scene.referring:
        expression, index = scene.referring[0]
        target = scene.objects[index]
        text = (f"Pick up {expression}." if kind == "command" and scene.seed % 2 == 0
                else f"Where is {expression}?")
        prompts.append((text, [GTPhrase(target.name, target.mask)]))
    return prompts


def target_object(scene, kind: str):
    """The object X that a `refer`/`command` prompt of the scene is about (None: none)."""
    if kind not in ("refer", "both", "command") or not scene.referring:
        return None
    return scene.objects[scene.referring[0][1]]
