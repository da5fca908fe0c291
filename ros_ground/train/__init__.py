"""Training of the embedded "sim" models: `ros-ground train data|lmm|sam|eval|all`.

* `data`  renders the training scenes once into .cache/sim_data (optional: without the cache
          every scene is rendered on the fly from its seed, with identical results); the
          scenes are domain-randomised over sim.ranges.TRAINING_RANGES (`--scene-set randomised`,
          the default) or the fixed first setting (`--scene-set classic`);
* `lmm`   trains the LLaVA-architecture LMM on images + texts only -> ros_ground/models/sim_lmm;
* `sam`   trains the SAM-architecture model on point -> mask pairs -> ros_ground/models/sim_sam;
* `eval`  measures both on held-out seeds (0..199) and writes each MODEL_CARD.md;
* `all`   the shipped models' recipe, which `make train-sim` runs (`train_sim_steps`): data,
          LMM and SAM from scratch on classic scenes, both fine-tuned on mixed scenes, the
          retrieval head and the region encoder on the result, evaluation by scene set, the cards.

Training seeds are >= 100000; evaluation seeds are below 10000. Same arguments, same models
(up to floating-point summation order across thread counts).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODELS_DIR = PACKAGE_DIR / "models"
LMM_DIR = MODELS_DIR / "sim_lmm"
SAM_DIR = MODELS_DIR / "sim_sam"


def _state_dir() -> Path:
    from ros_ground.train.data import default_cache_dir

    return default_cache_dir().parent / "train_state"


def state_paths(kind: str, out: Path) -> tuple[Path, Path]:
    """(training state, JSON-lines log) of a `kind` ("lmm" or "sam") run into `out`, in
    .cache/train_state and named by the first 12 hex digits of the sha256 of `out` resolved
    (`lmm_state_<key>.pt`, `lmm_log_<key>.jsonl`): two runs into two directories each resume
    their own, and `--fresh` removes only its own. A state copied to another key is still
    refused by the out it records (loop.check_resumable)."""
    key = _out_key(out)
    return _state_dir() / f"{kind}_state_{key}.pt", _state_dir() / f"{kind}_log_{key}.jsonl"


def summary_path(kind: str, out: Path) -> Path:
    """The summary (`lmm_summary_<key>.json`, keyed as `state_paths`) of the last `kind` run into
    `out`, which `train eval` quotes in the card of the model in `out`: a run into another
    directory does not replace the packaged model's record."""
    return _state_dir() / f"{kind}_summary_{_out_key(out)}.json"


def _out_key(out: Path) -> str:
    import hashlib

    return hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:12]


def _prepared_state(kind: str, out: Path, fresh: bool) -> tuple[Path, Path]:
    """`state_paths(kind, out)`, the state removed with `fresh`; says on stderr when a state of
    the earlier single-file layout (`lmm_state.pt`) is there, as it is not resumed."""
    state, log = state_paths(kind, out)
    if fresh and state.exists():
        state.unlink()
    old = _state_dir() / f"{kind}_state.pt"
    if old.exists():
        print(f"ros-ground train {kind}: {str(old)!r} is a training state of an earlier version's "
              f"layout and is not resumed: to resume it into {str(out)!r}, move it to "
              f"{str(state)!r} (without --fresh); else delete it", file=sys.stderr)
    return state, log


def _model_dir(text: str) -> str:
    """argparse type: an existing directory (a saved model, checked for its weights on load)."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory (a saved model's)"
                                         if Path(text).exists() else
                                         f"no such model directory: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    from ros_ground.arg_types import ExactParser, int_at_least, positive_number
    from ros_ground.train.configs import LMMTrainConfig, SAMTrainConfig
    from ros_ground.train.data import DEFAULT_SCENE_SET, TRAIN_SCENE_SETS, TRAIN_SEED_START

    positive, non_negative = int_at_least(1), int_at_least(0)
    parser = ExactParser(prog="ros-ground train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)

    def common(p: argparse.ArgumentParser, steps: int | None = None, scenes: int = LMMTrainConfig.scenes,
               threads: int = 1, lr: float | None = None, name: str = "") -> None:
        p.add_argument("--seed-start", type=int_at_least(TRAIN_SEED_START), default=TRAIN_SEED_START,
                       help="first training scene seed (default %(default)s)")
        p.add_argument("--scenes", type=positive, default=scenes,
                       help="training scenes (seeds; default %(default)s)")
        p.add_argument("--cache", default=None, help="scene cache directory "
                       "(default .cache/sim_data; scenes missing there are rendered on the fly)")
        p.add_argument("--scene-set", choices=TRAIN_SCENE_SETS, default=DEFAULT_SCENE_SET,
                       help="randomised: settings drawn from sim.ranges.TRAINING_RANGES; classic: "
                            "the fixed 320x240 setting; mixed: classic for even seeds, "
                            "randomised for odd ones (default %(default)s)")
        if steps is not None:
            p.add_argument("--steps", type=positive, default=steps,
                           help="optimiser steps of the main stage (the LMM's stage 2; SAM's "
                                "half-resolution stage, before its refinement; default %(default)s)")
            p.add_argument("--seed", type=non_negative, default=0,
                           help="initialisation / sampling seed")
            p.add_argument("--threads", type=positive, default=threads,
                          help="torch CPU threads (default %(default)s)")
            p.add_argument("--out", default=None, help="output directory (default: the package's)")
            p.add_argument("--fresh", action="store_true",
                           help="delete this --out's saved training state (.cache/train_state/"
                                f"{name.removeprefix('sim_')}_state_<hash of --out>.pt) instead "
                                "of resuming from it (a state of other settings is refused, not "
                                "resumed)")
            p.add_argument("--time-limit-min", type=positive_number("minutes"), default=58.0,
                           help="stop, with a checkpoint, after this much training time in all, "
                                "a resumed run's earlier time included; the same command with a "
                                "larger limit resumes (default %(default)s)")
            p.add_argument("--lr", type=positive_number(), default=lr,
                           help="peak learning rate of the main stage (default %(default)s, "
                                "tuned for training from scratch; a fine-tune with --init-from "
                                "may want less)")
            p.add_argument("--init-from", metavar="DIR", type=_model_dir, default=None,
                           help="fine-tune: start from this saved model's weights (same "
                                f"architecture, e.g. ros_ground/models/{name}) instead of a random "
                                "initialisation; a saved training state is resumed instead "
                                "unless --fresh")

    data = sub.add_parser("data", help="render the training scenes into the cache")
    common(data)
    data.add_argument("--workers", type=positive, default=2,
                      help="processes rendering scenes in parallel (default %(default)s)")
    lmm = sub.add_parser("lmm", help="train the LMM (text supervision only)")
    common(lmm, steps=LMMTrainConfig.steps, threads=LMMTrainConfig.threads, lr=LMMTrainConfig.lr,
           name="sim_lmm")
    lmm.add_argument("--vision-steps", type=non_negative, default=LMMTrainConfig.vision_steps,
                     help="stage 1 steps: caption-word pretraining of the vision tower "
                          "(0: none; default %(default)s); --steps counts stage 2")
    lmm.add_argument("--vision-lr", type=positive_number(), default=LMMTrainConfig.vision_lr,
                     help="stage 1's peak learning rate (default %(default)s)")
    sam = sub.add_parser("sam", help="train the SAM model (point -> mask)")
    common(sam, steps=SAMTrainConfig.steps, scenes=SAMTrainConfig.scenes,
           threads=SAMTrainConfig.threads, lr=SAMTrainConfig.lr, name="sim_sam")
    sam.add_argument("--refine-steps", type=non_negative, default=SAMTrainConfig.refine_steps,
                     help="steps of the full-resolution refinement after --steps (0: none; "
                          "default %(default)s)")
    ev = sub.add_parser("eval", help="evaluate both models on held-out seeds; write model cards")
    ev.add_argument("--scenes", type=positive, default=200,
                    help="held-out scenes grounded for the LMM card (default %(default)s)")
    ev.add_argument("--seed", type=non_negative, default=0, help="first held-out scene seed")
    ev.add_argument("--sam-scenes", type=positive, default=40,
                    help="scenes of SAM's point-prompt and proposal quality (default %(default)s)")
    ev.add_argument("--amg-default-scenes", type=positive, default=30,
                    help="scenes grounded with SAM's stock AMG settings (slow: 32x32 prompts)")
    ev.add_argument("--attention-scenes", type=positive, default=60,
                    help="scenes of the attention ablations (default %(default)s)")
    ev.add_argument("--skip", nargs="*", default=[],
                    choices=["ground", "amg-defaults", "attention", "sam"],
                    help="parts of the evaluation not to run")
    ev.add_argument("--threads", type=positive, default=2, help="torch CPU threads")
    ev.add_argument("--cli-run", metavar="FILE", default=None,
                    help="a saved `ros-ground eval ... --json` output to quote in the LMM card "
                         "(its command line on the first line)")
    ev.add_argument("--scene-set-run", metavar="FILE", action="append", default=[],
                    help="a saved `ros-ground eval --scene-set S ... --json` output for the LMM "
                         "card's table by scene set; repeat it, one per set")
    ev.add_argument("--sam-scene-sets", nargs="*", default=["randomised", "ood"],
                    help="scene sets besides `in` for SAM's point-prompt and proposal quality "
                         "(default %(default)s)")
    allp = sub.add_parser("all", help="the shipped models' recipe, which `make train-sim` runs: "
                          "classic-scene LMM and SAM, both fine-tuned on mixed scenes, the "
                          "retrieval head, the region encoder, evaluation by scene set, the cards")
    allp.add_argument("--workers", type=positive, default=2,
                      help="scene-rendering processes (default %(default)s)")
    return parser


def _run_lmm(args) -> dict:
    from ros_ground.train.configs import LMMTrainConfig
    from ros_ground.train.lmm import train_lmm

    cfg = LMMTrainConfig(seed_start=args.seed_start, scenes=args.scenes, scene_set=args.scene_set,
                         steps=args.steps,
                         seed=args.seed, threads=args.threads, vision_steps=args.vision_steps,
                         vision_lr=args.vision_lr,
                         time_limit_min=args.time_limit_min, init_from=args.init_from, lr=args.lr)
    out = Path(args.out) if args.out else LMM_DIR
    state, log = _prepared_state("lmm", out, args.fresh)
    summary = train_lmm(cfg, out, Path(args.cache) if args.cache else None, state,
                        log_path=log)
    summary["command"] = "ros-ground train " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else ["lmm"])
    _write_summary("lmm", out, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    return summary


def _run_sam(args) -> dict:
    from ros_ground.train.configs import SAMTrainConfig
    from ros_ground.train.sam import train_sam

    cfg = SAMTrainConfig(seed_start=args.seed_start, scenes=args.scenes, scene_set=args.scene_set,
                         steps=args.steps, refine_steps=args.refine_steps,
                         seed=args.seed, threads=args.threads,
                         time_limit_min=args.time_limit_min, init_from=args.init_from, lr=args.lr)
    out = Path(args.out) if args.out else SAM_DIR
    state, log = _prepared_state("sam", out, args.fresh)
    summary = train_sam(cfg, out, Path(args.cache) if args.cache else None, state,
                        log_path=log)
    summary["command"] = "ros-ground train " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else ["sam"])
    _write_summary("sam", out, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    return summary


def _write_summary(name: str, out: Path, summary: dict) -> None:
    _state_dir().mkdir(parents=True, exist_ok=True)
    summary_path(name, out).write_text(json.dumps(summary, indent=1))


def _results_path() -> Path:
    return _state_dir() / "eval_results.json"


def evaluate_models(args) -> dict:
    """Evaluate the packaged models on held-out seeds and (re)write both model cards."""
    from ros_ground.train.data import check_eval_seeds

    for scenes in (args.scenes, args.sam_scenes, args.amg_default_scenes, args.attention_scenes):
        check_eval_seeds(args.seed, scenes)  # before torch and the models load
    import torch

    from ros_ground.engine import EngineConfig, build_engine
    from ros_ground.train import evaluation
    from ros_ground.train.card import write_cards

    torch.set_num_threads(args.threads)
    results = json.loads(_results_path().read_text()) if _results_path().is_file() else {}
    results.setdefault("lmm", {})
    results.setdefault("sam", {})
    for name, directory in (("lmm", LMM_DIR), ("sam", SAM_DIR)):
        summary = summary_path(name, directory)
        if summary.is_file():
            data = json.loads(summary.read_text())
            results[name]["train"] = data
            results[name]["command"] = data.get("command", f"ros-ground train {name}")

    def save() -> None:
        _results_path().write_text(json.dumps(results, indent=1))
        write_cards(LMM_DIR, SAM_DIR, results)

    if args.cli_run:
        results["lmm"]["eval_cli"] = Path(args.cli_run).read_text()
    if args.scene_set_run:
        results["lmm"]["scene_set_runs"] = [json.loads(Path(f).read_text())
                                            for f in args.scene_set_run]
    if "sam" not in args.skip:
        from ros_ground.sam import load_sam

        segmenter = load_sam("sim")
        results["sam"]["quality"] = evaluation.sam_quality(segmenter, args.sam_scenes, args.seed)
        results["sam"]["quality_by_set"] = {
            s: evaluation.sam_quality(segmenter, args.sam_scenes, args.seed, scene_set=s,
                                      amg_settings=evaluation.NODE_AMG)
            for s in args.sam_scene_sets}
        save()
    if {"ground", "amg-defaults"} - set(args.skip):
        engine = build_engine(model="sim", sam_model="sim", device="cpu", dtype="float32",
                              config=EngineConfig())
    if "ground" not in args.skip:
        results["lmm"]["ground"] = evaluation.grounding_eval(engine, args.scenes, args.seed)
        save()
    if "amg-defaults" not in args.skip:
        variants = {k: v for k, v in evaluation.ABLATIONS.items() if v.get("mode") != "point"}
        results["lmm"]["ground_amg_defaults"] = evaluation.grounding_eval(
            engine, args.amg_default_scenes, args.seed, variants=variants, amg_params={},
            refer=False)
        save()
    if "attention" not in args.skip:
        results["lmm"]["attention"] = evaluation.attention_analysis(
            str(LMM_DIR), args.attention_scenes, args.seed)
        save()
    save()
    return results


def train_sim_steps(workers: int = 2) -> list[tuple[list[str], Path | None]]:
    """The shipped models' recipe, in order: (arguments after `python -m`, the file that takes
    the command's stdout or None). Both models from scratch on the classic setting, each
    fine-tuned from those weights on mixed scenes, the retrieval head and the region encoder
    on the fine-tuned LMM (they record its fingerprint), `ros-ground eval` per scene set, then
    `train eval` to write the model cards quoting those runs."""
    state = _state_dir()
    cli = ["ros_ground.cli"]  # as `ros-ground`, so a summary's recorded command reads as typed
    data = ["--workers", str(workers)]
    steps: list[tuple[list[str], Path | None]] = [
        ([*cli, "train", "data", "--scene-set", "classic", *data], None),
        ([*cli, "train", "lmm", "--scene-set", "classic", "--fresh"], None),
        ([*cli, "train", "sam", "--scene-set", "classic", "--fresh"], None),
        ([*cli, "train", "data", "--scene-set", "mixed", *data], None),
        ([*cli, "train", "lmm", "--init-from", "ros_ground/models/sim_lmm", "--scene-set", "mixed",
          "--vision-steps", "0", "--steps", "4000", "--lr", "2e-4", "--fresh",
          "--time-limit-min", "60"], None),
        ([*cli, "train", "sam", "--init-from", "ros_ground/models/sim_sam", "--scene-set", "mixed",
          "--steps", "400", "--fresh"], None),
        (["ros_ground.train.retrieval_head", "--scenes", "120", "--epochs", "30",
          "--scene-set", "mixed"], None),
        (["ros_ground.train.region_encoder"], None),
    ]
    runs = []
    for scene_set in ("in", "randomised", "ood"):
        runs += ["--scene-set-run", str(state / f"eval_{scene_set}.json")]
        steps.append(([*cli, "eval", "--scenes", "200", "--seed", "0", "--mode", "auto",
                       "--scene-set", scene_set, "--torch-threads", "1", "--json"],
                      state / f"eval_{scene_set}.json"))
    steps.append(([*cli, "train", "eval", *runs], None))
    return steps


def run_all(args) -> int:
    """`ros-ground train all`, which `make train-sim` runs: each of `train_sim_steps` in its own
    process, in the repository root (the steps name ros_ground/models/... relative to it), one
    after the other (each uses the machine's cores, and each model's card reports its own wall
    time); the first that fails ends the run with its exit status."""
    _state_dir().mkdir(parents=True, exist_ok=True)
    for argv, out in train_sim_steps(args.workers):
        print("+ python -m " + " ".join(argv) + (f" > {out}" if out else ""), flush=True)
        t0 = time.perf_counter()
        if out is None:
            code = subprocess.call([sys.executable, "-m", *argv], cwd=PACKAGE_DIR.parent)
        else:
            with open(out, "w") as stdout:
                code = subprocess.call([sys.executable, "-m", *argv], cwd=PACKAGE_DIR.parent,
                                       stdout=stdout)
        print(f"  wall time {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        if code:
            return code
    return 0


def main_train(argv: list[str] | None = None) -> int:
    """Entry point of `ros-ground train ...` (argv without the leading 'train')."""
    args = build_parser().parse_args(argv)
    if getattr(args, "out", None):  # before hours of training
        from ros_ground.out_paths import check_output_folder

        check_output_folder(args.out, "--out")
    if args.what == "data":
        from ros_ground.train.data import build_cache

        build_cache(args.seed_start, args.scenes, Path(args.cache) if args.cache else None,
                    workers=args.workers, scene_set=args.scene_set)
        return 0
    if args.what == "lmm":
        _run_lmm(args)
        return 0
    if args.what == "sam":
        _run_sam(args)
        return 0
    if args.what == "eval":
        evaluate_models(args)
        return 0
    if args.what == "all":
        return run_all(args)
    return 1
