"""The one training loop of the embedded models (vision pretraining, the LMM, SAM).

A model supplies `step_fn(step) -> (loss, stats)`; the loop does the rest: backward, gradient
clipping, the optimizer and learning-rate schedule steps, smoothed losses on a tqdm bar, a
history entry every few steps (also appended to a JSON-lines log), periodic checkpoints, and a
stop at the time limit. `LoopState` carries what a resumed run needs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

StepFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class LoopState:
    """Where a run stands: steps done, seconds trained, history, smoothed values."""

    step: int = 0
    elapsed_s: float = 0.0
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    running: dict[str, float] = field(default_factory=dict)  # exponential moving averages


def resume_schedule(make: Callable[..., torch.optim.lr_scheduler.LRScheduler],
                    optimizer: torch.optim.Optimizer, base_lr: float, step: int, **kwargs):
    """`make(optimizer, last_epoch=..., **kwargs)` (a transformers schedule) positioned so the
    next optimizer step uses the schedule's value at `step`, with `base_lr` as its peak."""
    for group in optimizer.param_groups:
        group["initial_lr"] = base_lr
    return make(optimizer, last_epoch=step - 1, **kwargs)


def train_steps(step_fn: StepFn, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler,
                params: Iterable[torch.nn.Parameter], state: LoopState, steps: int, *,
                grad_clip: float = 1.0, time_limit_s: float | None = None,
                smoothing: float = 0.98, history_every: int = 50,
                checkpoint: Callable[[LoopState], None] | None = None,
                checkpoint_every: int | None = None, log_path: Path | None = None,
                desc: str = "train", progress: bool | None = None,
                report_every_s: float = 60.0) -> LoopState:
    """Run steps state.step .. steps-1 (or until `time_limit_s` of training in all, counting
    `state.elapsed_s`; then `state.stopped_early`). `params` are clipped to norm `grad_clip`.

    `stats` of a step (and its loss) are smoothed with weight `smoothing` on the past; every
    `history_every` steps and at the last step they enter `state.history` (and `log_path`).
    `checkpoint(state)` runs every `checkpoint_every` steps before the last. `progress`: a bar
    on stderr (None: only on a TTY). Without the bar (a pipe, a log file, CI), one plain line
    goes to stderr at most every `report_every_s` seconds and at the end, so an hour-long run
    is never silent.
    """
    params = list(params)
    t_start = time.perf_counter() - state.elapsed_s
    state.running = {}
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a") if log_path else None  # noqa: SIM115 - closed below
    bar = tqdm(total=steps, initial=state.step, desc=desc, unit="step", dynamic_ncols=True,
               disable=None if progress is None else not progress)
    reported = run_start = time.perf_counter()
    first_step = state.step
    try:
        while state.step < steps:
            if time_limit_s is not None and time.perf_counter() - t_start > time_limit_s:
                state.stopped_early = True
                break
            lr = scheduler.get_last_lr()[0]
            loss, stats = step_fn(state.step)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            for key, value in {"loss": float(loss.detach()), **stats}.items():
                past = state.running.get(key)
                state.running[key] = value if past is None else (
                    smoothing * past + (1 - smoothing) * value)
            state.step += 1
            state.elapsed_s = time.perf_counter() - t_start
            bar.update(1)
            bar.set_postfix({**{k: f"{v:.3f}" for k, v in state.running.items()},
                             "lr": f"{lr:.1e}"})
            if state.step % history_every == 0 or state.step == steps:
                entry = {"step": state.step,
                         **{k: round(v, 4) for k, v in state.running.items()},
                         "elapsed_s": round(state.elapsed_s, 1)}
                state.history.append(entry)
                if log:
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
            if checkpoint and checkpoint_every and state.step % checkpoint_every == 0 \
                    and state.step < steps:
                checkpoint(state)
            if bar.disable and (time.perf_counter() - reported >= report_every_s
                                or state.step == steps):
                reported = time.perf_counter()
                pace = (reported - run_start) / max(state.step - first_step, 1)
                _report(desc, state, steps, pace * (steps - state.step))
    finally:
        bar.close()
        if log:
            log.close()
    return state


def _report(desc: str, state: LoopState, steps: int, left: float) -> None:
    """One line of progress: step, smoothed stats, elapsed time (a resumed run's included) and
    `left`, the seconds the remaining steps take at this run's pace."""
    progress_line(desc, "step", state.step, steps, state.elapsed_s, left,
                  " ".join(f"{k} {v:.3f}" for k, v in state.running.items()))


def progress_line(desc: str, unit: str, done: int, total: int, elapsed_s: float, left_s: float,
                  stats: str = "") -> None:
    """One plain progress line on stderr, for a long run that has no tqdm bar (a pipe, a log
    file, CI): "train: step 120/4000, loss 0.502, 11.1 min, about 25 min left". Seconds in."""
    stats = f"{stats}, " if stats else ""
    print(f"{desc}: {unit} {done}/{total}, {stats}{elapsed_s / 60:.1f} min, "
          f"about {left_s / 60:.0f} min left", file=sys.stderr, flush=True)


def base_record(init_from: str | Path | None) -> dict | None:
    """The `training.json` of the checkpoint a fine-tune starts from (`init_from`), read before
    training can overwrite it, or None (no `init_from`, or a checkpoint without one).

    A fine-tune stores it under "base" in its own `training.json`, so a model card can give the
    whole lineage: the data and steps of every stage and the wall time they took together."""
    if not init_from:
        return None
    path = Path(init_from) / "training.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_record(config: dict, out_dir: Path, init_from: str | None, resumed: list | None = None) -> dict:
    """What a training state records of its run, for `check_resumable` and `resumed_init_from`:
    its settings (`config`, the run's to_dict()), its output directory, its start, and its
    resumes (`resumes`; [] for a run never resumed)."""
    return {"config": config, "out": str(Path(out_dir).resolve()), **init_from_record(init_from),
            "resumed": list(resumed or [])}


def resumes(state: dict | None, config: dict) -> list[dict]:
    """The resumes of a run: those its saved training `state` records, and this one (the run's
    `config`, to_dict()) when `state` is resumed; [] for a fresh run. Each is {"at_step": the
    steps done then, "steps_before": --steps until then, "steps": --steps from then}: `steps`
    may change on resume (RESUME_MAY_CHANGE) and the cosine learning-rate schedule is planned
    over it, so `training.json` keeps each change, not only the last value, which no schedule
    of the run followed from its start."""
    if state is None:
        return []
    before = (state.get("config") or {}).get("steps")
    return [*state.get("resumed", []),
            {"at_step": state.get("step"), "steps_before": before, "steps": config.get("steps")}]


def init_from_record(init_from: str | None) -> dict:
    """What a training state records of its start: the `init_from` given, and the directory it
    named (a later run may be started from another working directory)."""
    return {"init_from": init_from,
            "init_from_resolved": str(Path(init_from).resolve()) if init_from else None}


# what a resumed run may change: how long it runs and on how many threads, not what it trains
RESUME_MAY_CHANGE = frozenset({"steps", "time_limit_min", "threads", "checkpoint_every", "init_from"})


def check_resumable(state: dict, config: dict, out_dir: Path, state_path: Path) -> None:
    """ValueError unless the saved training `state` is this run's to resume: the same settings
    (`config`, the run's to_dict(), but RESUME_MAY_CHANGE), the same output directory, and a
    stage 1 (the LMM's vision tower) that ran to its end, and a --steps not below the main
    stage's steps done (`_check_steps`); else the saved weights would be trained on silently and
    `training.json`, and the model card from it, would describe a run that never happened.
    Then says on stderr what is resumed. A state saved without these records (by an older
    version of this code) is resumed without the checks."""
    def refuse(why: str) -> None:
        raise ValueError(f"the saved training state {str(state_path)!r} {why}: pass --fresh to "
                         "start a new run")

    saved = state.get("config")
    if saved is not None:
        changed = sorted(k for k in set(saved) | set(config)
                         if k not in RESUME_MAY_CHANGE and saved.get(k) != config.get(k))
        if changed:
            refuse("is of another run (" + ", ".join(
                f"{k} {saved.get(k)!r}, now {config.get(k)!r}" for k in changed[:4]) + ")")
        _check_steps(saved.get("steps"), config.get("steps"), state.get("step"), refuse)
    if state.get("out") is not None and state["out"] != str(Path(out_dir).resolve()):
        refuse(f"writes to {state['out']!r}, not {str(Path(out_dir).resolve())!r}")
    vision = state.get("vision") or {}
    if vision.get("stopped_early"):
        refuse(f"holds a stage 1 stopped by the time limit at step {vision.get('steps')} of "
               f"{(vision.get('config') or {}).get('steps')}, which cannot be resumed (its tag head "
               "and optimiser are not saved); give --time-limit-min room for stage 1")
    print(f"resuming {state_path} at step {state.get('step')}, {state.get('elapsed', 0) / 60:.1f} "
          "min trained so far (--fresh starts anew)", file=sys.stderr, flush=True)


def _check_steps(before, steps, step, refuse: Callable[[str], None]) -> None:
    """`refuse` a resume whose --steps (`steps`; `before` until now) is below the `step` steps
    done of the main stage (the LMM's stage 2, SAM's half-resolution stage): it would run none
    and write a `training.json` whose config says fewer steps than it did. A run past its main
    stage (SAM's refinement: `step` above `before`) cannot change --steps at all, which would
    count refinement steps done as main-stage ones."""
    if not isinstance(step, int) or not isinstance(steps, int) or steps == before:
        return
    done = min(step, before) if isinstance(before, int) else step
    if steps < done:
        refuse(f"has done {done} steps of the main stage, more than --steps {steps} (give "
               f"--steps {done} or more)")
    if isinstance(before, int) and step > before:
        refuse(f"is {step - before} steps into the refinement after its --steps {before}, so "
               f"--steps {steps} cannot change its main stage now (give --steps {before})")


def stop_message(desc: str, state: LoopState, time_limit_min: float, resumable: bool = True) -> None:
    """Say on stderr that `state` stopped at the time limit, which counts earlier runs' time, and
    how to go on: the same command with a larger limit, or (not `resumable`: a stage that saves
    no state of its own) a fresh run with one."""
    if state.stopped_early:
        how = ("the same command with a larger --time-limit-min resumes" if resumable else
               "it cannot be resumed: run again with --fresh and a larger --time-limit-min")
        print(f"{desc}: stopped at --time-limit-min {time_limit_min:g} (training time in all, "
              f"earlier runs' included) after step {state.step}; {how}", file=sys.stderr, flush=True)


def resumed_init_from(state: dict, init_from: str | None, state_path: Path) -> str | None:
    """The `init_from` a resumed run started from, as its saved training `state` records it.

    Raises ValueError when `init_from` (this run's --init-from) names another start: the saved
    state would be resumed and the flag silently ignored, and the model card would credit a
    start that was never used. A state saved without the record keeps `init_from`."""
    if "init_from" not in state:
        return init_from
    started = state["init_from"]  # as given then; compared as the directory it named then
    if init_from and (not started or str(Path(init_from).resolve()) != state["init_from_resolved"]):
        raise ValueError(f"the saved training state {str(state_path)!r} started from "
                         f"{started or 'a random initialisation'!r} and would be resumed; pass "
                         f"--fresh to start from {init_from!r} instead")
    return started
