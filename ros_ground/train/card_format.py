"""Formatting shared by the embedded models' MODEL_CARD.md (train.card): tables, data ranges,
training lineage."""

from __future__ import annotations

import json
from pathlib import Path

METRICS = ("mask_recall", "miou", "ap50", "point_accuracy")


def read_json(path: Path) -> dict:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


def files_table(directory: Path) -> str:
    rows = []
    for f in sorted(Path(directory).iterdir()):
        if f.is_file() and f.name != "MODEL_CARD.md":
            rows.append(f"| `{f.name}` | {f.stat().st_size / 1e6:.2f} MB |")
    return "| file | size |\n|---|---|\n" + "\n".join(rows)


def data_ranges(scene_set: str | None) -> str:
    """One line on the settings the training scenes were drawn from (sim.ranges), for a card."""
    from ros_ground.sim.ranges import CLASSIC_RANGES, TRAINING_RANGES

    classic = "the classic setting (sim.ranges.CLASSIC_RANGES: 320x240, 2-6 objects)"
    if scene_set not in ("randomised", "mixed"):
        return classic
    r, c = TRAINING_RANGES, CLASSIC_RANGES
    lead = "" if scene_set == "randomised" else f"even seeds {classic}, odd seeds "

    def span(pair, unit="", digits=3):
        return f"{pair[0]:.{digits}g} to {pair[1]:.{digits}g}{unit}"

    return (f"{lead}domain-randomised over sim.ranges.TRAINING_RANGES (the classic setting lies inside "
            f"them): camera {span(r.distance, ' m')} away (classic {span(c.distance, ' m')}), "
            f"{span(r.elevation_deg, ' deg')} up, azimuth {span(r.azimuth_deg, ' deg')}, "
            f"look-at offset up to {r.target_offset[1]:g} m, vertical FOV "
            f"{span(r.fov_deg, ' deg')}; images {r.width[0]}-{r.width[1]} px wide, aspect "
            f"{span(r.aspect)} (resized to the cache's 320x240 for SAM, by the processor "
            f"for the LMM); light direction and ambient {span(r.light_ambient)} / diffuse "
            f"{span(r.light_diffuse)}; table texture one of {len(r.table_textures)} "
            f"({', '.join(r.table_textures)}), tint {span(r.table_tint)}; "
            f"{r.num_objects[0]}-{r.num_objects[1]} objects, scale {span(r.object_scale)}, "
            f"paint channels jittered by up to {r.color_jitter:g}")


def metric_table(table: dict) -> str:
    lines = ["| setting | mask recall | mIoU | AP50 | point accuracy | phrases predicted |",
             "|---|---|---|---|---|---|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in METRICS)
                     + f" | {row.get('pred_phrases', '')} |")
    return "\n".join(lines)


def loss_history(history: list[dict], key: str = "loss", every: int = 6) -> str:
    if not history:
        return "n/a"
    picked = history[::every] + ([history[-1]] if (len(history) - 1) % every else [])
    return ", ".join(f"{h['step']}: {h[key]:.3f}" for h in picked)


def seed_range(cfg: dict) -> str:
    start = cfg.get("seed_start", 0)
    return f"seeds {start} .. {start + cfg.get('scenes', 0) - 1} ({cfg.get('scenes')} scenes)"


def base_line(base: dict, init_from: str, stages: str) -> str:
    """The card line of a fine-tune's base: the checkpoint's own training record (loop.base_record)."""
    cfg = base.get("config", {})
    return (f"- **fine-tuned** from `{init_from}` as it then was, itself trained from scratch on "
            f"{seed_range(cfg)}, {data_ranges(cfg.get('scene_set'))}: {stages}; "
            f"{minutes(base.get('elapsed_s'))} (its record: `training.json` under \"base\")")


def schedule_lines(info: dict) -> list[str]:
    """Card lines for the resumes of the run recorded in `training.json` (`info`) that changed
    --steps (loop.resumes): its cosine schedule was planned over one length and, from the
    resume, over another, which the config's last `steps` alone does not say."""
    changes = [r for r in info.get("resumed") or [] if r.get("steps") != r.get("steps_before")]
    if not changes:
        return []
    return ["- schedule changed on resume: " + "; ".join(
        f"at step {r.get('at_step')}, --steps {r.get('steps_before')} -> {r.get('steps')} (the "
        f"cosine re-planned over {r.get('steps')} steps from there)" for r in changes)]


def wall_time_line(train: dict, base: dict | None, stages: str) -> str:
    own = minutes(train.get("wall_s"))
    late = " - stopped early at the time limit" if train.get("stopped_early") else ""
    if not base:
        return (f"- wall time, {stages}: **{own}** on the project's 2-core CPU machine (shared "
                f"with other jobs){late}")
    total = minutes((train.get("wall_s") or 0) + (base.get("elapsed_s") or 0))
    return (f"- wall time: this fine-tune {own}{late}, with its base's "
            f"{minutes(base.get('elapsed_s'))} **{total}** in all, on the project's 2-core CPU "
            "machine (shared with other jobs)")


def proposal_changes(report: dict) -> dict:
    """The mask-proposal settings an evaluation report (`ros-ground eval --json`) ran with that
    differ from the mask_proposal_node's defaults ({} for none; point mode and region prompts
    make no proposals). Reports older than `proposal_changes` name only the crop settings."""
    if report.get("mode") == "point" or report.get("prompt") == "region":
        return {}
    if "proposal_changes" in report:
        return dict(report["proposal_changes"])
    return {k: report[k] for k in ("crop_n_layers", "proposal_zoom") if report.get(k)}


def proposal_text(report: dict, lead: str) -> str:
    """`lead` + the report's `proposal_changes` in words ("crop layers 1, zoom crops,
    pred_iou_thresh 0.5"), or "" for none."""
    words = {"crop_n_layers": lambda v: f"crop layers {v}",
             "proposal_zoom": lambda v: "zoom crops" if v else "no zoom crops"}
    parts = [words.get(k, lambda v, k=k: f"{k} {v}")(v) for k, v in proposal_changes(report).items()]
    return lead + ", ".join(parts) if parts else ""


def proposal_flags(report: dict) -> str:
    """The `ros-ground eval` flags that set the report's `proposal_changes` (" --flag value"...)."""
    flags = []
    for k, v in proposal_changes(report).items():
        flag = "--" + k.replace("_", "-")
        flags.append(flag if v is True else f"--no-{k.replace('_', '-')}" if v is False else f"{flag} {v}")
    return "".join(" " + f for f in flags)


def scene_set_table(runs: list[dict]) -> list[str]:
    """Card lines for `ros-ground eval --scene-set S --json` results, one row each."""
    lines = [
        "## By scene set: the training camera and others",
        "",
        "`in`: the classic 320x240 setting; `randomised`: drawn over the training ranges (held-out "
        "seeds); `ood`: outside them on several axes (`sim.ranges.OOD_RANGES`: a camera lower "
        "and farther than any training pose, 800x450 frames, colour shades held out). Naming: "
        "the share of ground-truth objects the answer names with the right category and colour "
        "(category named: the category alone); named point: of those, the share whose phrase's "
        "point lands in the object. The last column is the random-point baseline on the same "
        "phrases.",
        "",
        "| scene set | scenes | phrases | mask recall | mIoU | AP50 | point acc. | naming | "
        "category named | named point | baseline recall / point |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for r in runs:
        b = r.get("baseline_random_point", {})
        crops = proposal_text(r, " (")
        crops += ")" if crops else ""
        lines.append(
            f"| {r.get('scene_set', 'in')}{crops} | {r['scenes']} | {r['phrases']} | "
            + " | ".join(f"{r[k]:.3f}" for k in METRICS + (
                "naming_accuracy", "category_naming_accuracy", "named_point_accuracy"))
            + f" | {b.get('mask_recall', 0):.3f} / {b.get('point_accuracy', 0):.3f} |")
        prompt = r.get("prompt", "describe")
        commands.append(f"ros-ground eval --scenes {r['scenes']} --seed {r.get('seed', 0)} --mode "
                        f"{r.get('mode', 'auto')} --scene-set {r.get('scene_set', 'in')} "
                        f"--entity-scoring {r.get('entity_scoring', 'attention')}"
                        + (f" --prompt {prompt}" if prompt != "describe" else "")
                        + proposal_flags(r)
                        + " --json")
    return lines + ["", "```", *commands, "```", ""]
