"""Grounding quality on generated scenes, against their ground truth: the one evaluation protocol.

`ros-ground eval` and the model cards (ros_ground.train.evaluation) both run `evaluate`. Each
scene is rendered from its seed; the engine answers each prompt once (`generate`) and grounds
that answer under every variant of its settings (`ground_generation`); the phrases are scored
with GLaMM's GCG metrics (mask recall, mIoU), AP50 and point accuracy (ros_ground.evaluate.metrics),
beside a random-point baseline that keeps the first variant's phrases but prompts SAM at a
uniformly random point instead of the attention peak, and, where the first variant chooses among
SAM's proposals (mode entities / auto), a random-proposal baseline that gives each phrase a
uniformly random proposal of the frame: any proposal is a whole object, so against a random
point the choice among proposals would look better than it is (evaluate.run).
Prompts about one object are also scored as commands (target accuracy, 3-D error), and each
answer for naming (right category and colour words), which splits an error on a scene set into
naming and localisation.

Modules, one job each:

- `metrics`: GLaMM's GCG metrics (mask recall, mIoU), AP50 and point accuracy of one image;
- `selection_metrics`: how often the entity chosen for a phrase is its object's;
- `scenes`: the scene sets (in, randomised, ood), the prompts and their ground truth;
- `run`: `evaluate`, the loop over scenes, prompts and variants, and the baselines;
- `naming`: which ground-truth objects an answer names, and whether it points inside them;
- `targets`: prompts about one object scored as commands;
- `report`: the report as JSON and as text;
- `regions`: `--prompt region`, whether the answer names the region asked about;
- `absent`: `--prompt absent`, whether commands about what a scene lacks get no target;
- `progress`: progress over the scenes (a tqdm bar on a terminal, a line now and then in a log);
- `cli`: `ros-ground eval`.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ros_ground.evaluate.report import format_report, report_json
    from ros_ground.evaluate.run import Answer, EvalRun, evaluate
    from ros_ground.evaluate.scenes import (
        DESCRIBE_PROMPT,
        PROMPT_KINDS,
        SCENE_SETS,
        SIM_VOCABULARY,
        scene_for,
        scene_prompts,
    )

# each name below is imported from its module on first use, so that importing a light module of
# the package (metrics, selection_metrics: train.evaluation and the tests do) loads no engine
_HOMES = {
    **dict.fromkeys(("format_report", "report_json"), "report"),
    **dict.fromkeys(("Answer", "EvalRun", "evaluate"), "run"),
    **dict.fromkeys(("DESCRIBE_PROMPT", "PROMPT_KINDS", "SCENE_SETS", "SIM_VOCABULARY", "scene_for",
                     "scene_prompts"), "scenes"),
}


def __getattr__(name: str):
    """The package's names (`__all__`) from their modules; AttributeError for any other."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DESCRIBE_PROMPT",
    "PROMPT_KINDS",
    "SCENE_SETS",
    "SIM_VOCABULARY",
    "Answer",
    "EvalRun",
    "evaluate",
    "format_report",
    "report_json",
    "scene_for",
    "scene_prompts",
]
