"""`ros-ground`: the user command line.

`ground` runs the engine offline (no ROS); `eval` measures grounding on simulated scenes;
`bench` runs the benchmarks; `train` trains the embedded sim models (ros_ground.train). The ROS
subcommands (`ask`, `demo`) are added by ros_ground.nodes.cli, the `ros-ground` entry point, so
the core never imports ROS. Subcommands import their heavy modules only when chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ros_ground.engine import ENTITY_ASSIGNMENTS, MODES, PHRASE_TOKENS, EngineConfig
from ros_ground.views import VIEWS, check_views


def _views(text: str) -> tuple[str, ...]:
    try:
        return check_views(v.strip() for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig the model options of `_add_model_args` describe."""
    return EngineConfig(mode=args.mode, max_new_tokens=args.max_new_tokens,
                        phrase_tokens=args.phrase_tokens, phrase_contrast=args.phrase_contrast,
                        attention_views=args.attention_views,
                        entity_assignment=args.entity_assignment,
                        entity_margin=args.entity_margin)


def _add_model_args(parser: argparse.ArgumentParser, model: str = "sim", sam: str = "sim") -> None:
    parser.add_argument("--model", default=model,
                        help="LMM: Hugging Face id, local directory, 'tiny' or 'sim' (default %(default)s)")
    parser.add_argument("--sam-model", default=sam,
                        help="SAM: vit_h|vit_l|vit_b (with --sam-checkpoint), a directory, 'tiny' or 'sim' "
                             "(default %(default)s)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM weights (.pth or .safetensors)")
    parser.add_argument("--mode", choices=MODES, default="auto")
    parser.add_argument("--phrase-tokens", choices=PHRASE_TOKENS, default="chunk",
                        help="tokens whose attention forms a phrase's map: the whole noun chunk "
                             "or its root noun (default %(default)s; the node's phrase_tokens)")
    parser.add_argument("--phrase-contrast", type=float, default=EngineConfig.phrase_contrast,
                        help="share (0..1) of the mean of the answer's other phrase maps subtracted "
                             "from each phrase's map; 0 turns it off (default %(default)s; the "
                             "node's phrase_contrast)")
    parser.add_argument("--attention-views", type=_views,
                        default=",".join(EngineConfig.attention_views),
                        metavar="VIEW[,VIEW...]",
                        help=f"views of the image whose attention maps are averaged, of {VIEWS}; "
                             "those but identity are re-read in one batched teacher-forced LMM "
                             "pass (default %(default)s; the node's attention_views)")
    parser.add_argument("--entity-assignment", choices=ENTITY_ASSIGNMENTS,
                        default=EngineConfig.entity_assignment,
                        help="in entities mode: one entity per phrase (as many as a plural "
                             "names), none shared (exclusive), or each phrase on its own "
                             "(independent) (default %(default)s; the node's entity_assignment)")
    parser.add_argument("--entity-margin", type=float, default=EngineConfig.entity_margin,
                        help="merge the proposals scoring within this share of the score range "
                             "of the best: every phrase's when independent, a plural's without a "
                             "number when exclusive (default %(default)s; the node's "
                             "entity_margin)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default %(default)s)")
    parser.add_argument("--dtype", default="auto", help="auto|float32|float16|bfloat16")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow model repositories to run their own code (off by default)")
    parser.add_argument("--allow-download", action="store_true",
                        help="fetch a Hugging Face model missing from the local cache (off by "
                             "default: models load from the cache or a directory only)")


def build_parser(extra_commands: Callable | None = None) -> argparse.ArgumentParser:
    """The core subcommands; `extra_commands(subparsers)` adds the ROS ones (ros_ground.nodes.cli)."""
    parser = argparse.ArgumentParser(prog="ros-ground", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ground = sub.add_parser("ground", help="ground a prompt's answer in one image file (no ROS)")
    ground.add_argument("--image", required=True, help="PNG/JPEG file")
    ground.add_argument("--prompt", default="Describe the image in detail.")
    _add_model_args(ground)
    ground.add_argument("--json", action="store_true", help="print one JSON object")
    ground.add_argument("--overlay", metavar="OUT.png", help="write the image with masks and labels")

    evaluate = sub.add_parser("eval", help="grounding metrics on simulated scenes")
    evaluate.add_argument("--scenes", type=int, default=20)
    evaluate.add_argument("--seed", type=int, default=0)
    _add_model_args(evaluate)
    evaluate.add_argument("--prompt", choices=("describe", "refer", "both"), default="describe")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--dump", metavar="DIR", help="write overlays and per-scene records")

    bench = sub.add_parser("bench", help="benchmarks; writes bench/RESULTS.md and results.json")
    bench.add_argument("--quick", action="store_true")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--gpu", action="store_true",
                       help="on a CUDA machine: the LLaVA-1.5-7B-shaped fp16 row")
    bench.add_argument("--soak", type=float, metavar="SECONDS",
                       help="only the streaming soak, for this long")
    bench.add_argument("--threads", type=int, help="torch threads for CPU models (default 1)")
    train = sub.add_parser("train", add_help=False,
                           help="train the embedded sim models: train lmm|sam|data|eval|all (-h)")
    train.add_argument("train_args", nargs=argparse.REMAINDER)
    if extra_commands is not None:
        extra_commands(sub)
    return parser


def cmd_ground(args: argparse.Namespace) -> int:
    from ros_ground.engine import build_engine
    from ros_ground.overlay import draw_overlay, load_rgb, save_png

    image = load_rgb(args.image)
    engine = build_engine(
        model=args.model, sam_model=args.sam_model, sam_checkpoint=args.sam_checkpoint,
        device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
        allow_download=args.allow_download,
        config=engine_config(args),
    )
    result = engine.ground(image, args.prompt)
    if args.overlay:
        save_png(args.overlay, draw_overlay(image, result.phrases))
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(format_result(result))
    return 0


def format_result(result) -> str:
    """Human-readable summary: the text, then one line per phrase with its mask's area and box."""
    lines = [f"[{result.model}] {result.text}"]
    for p in result.phrases:
        x, y, w, h = p.bbox
        point = "" if p.point is None else f" point=({p.point[0]:.0f},{p.point[1]:.0f})"
        ents = f" entities={p.entity_ids}" if p.entity_ids else ""
        lines.append(
            f"  - {p.text!r} [{p.char_start}:{p.char_end}] area={int(p.mask.sum())}px "
            f"box=({x},{y},{w},{h}) score={p.score:.2f}{point}{ents}"
        )
    timing = ", ".join(f"{k}={v:.0f}ms" for k, v in result.timing_ms.items())
    lines.append(f"  timing: {timing}")
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from ros_ground.evaluate import run_eval

    return run_eval(args, engine_config(args))


def cmd_bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "run.py").is_file():
        raise RuntimeError("benchmarks live in bench/ of a source checkout; run from the repository")
    sys.path.insert(0, str(root))
    from bench.run import run_bench

    return run_bench(args)


def cmd_train(args: argparse.Namespace) -> int:
    from ros_ground.train import main_train

    return main_train(args.train_args)


CORE_COMMANDS = {"ground": cmd_ground, "eval": cmd_eval, "bench": cmd_bench, "train": cmd_train}


def main(argv: list[str] | None = None, extra_commands: Callable | None = None,
         handlers: dict | None = None) -> int:
    """Run a subcommand; errors users can fix print one line and exit 2."""
    args = build_parser(extra_commands).parse_args(argv)
    commands = {**CORE_COMMANDS, **(handlers or {})}
    try:
        return commands[args.command](args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"ros-ground {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
