"""`ros-ground`: the user command line.

`ground` runs the engine offline (no ROS); `ask` talks to a running node; `eval` measures
grounding on simulated scenes; `demo` runs the composed graph on the embedded default models;
`bench` runs the benchmarks. Subcommands import their heavy modules only when chosen.
"""

from __future__ import annotations

import argparse
import json
import sys

from ros_ground.engine import MODES


def _add_model_args(parser: argparse.ArgumentParser, model: str = "tiny", sam: str = "tiny") -> None:
    parser.add_argument("--model", default=model,
                        help="LMM: Hugging Face id, local directory, 'tiny' or 'sim' (default %(default)s)")
    parser.add_argument("--sam-model", default=sam,
                        help="SAM: vit_h|vit_l|vit_b (with --sam-checkpoint), a directory, 'tiny' or 'sim'")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM weights (.pth or .safetensors)")
    parser.add_argument("--mode", choices=MODES, default="auto")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default %(default)s)")
    parser.add_argument("--dtype", default="auto", help="auto|float32|float16|bfloat16")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow model repositories to run their own code (off by default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ros-ground", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ground = sub.add_parser("ground", help="ground a prompt's answer in one image file (no ROS)")
    ground.add_argument("--image", required=True, help="PNG/JPEG file")
    ground.add_argument("--prompt", default="Describe the image in detail.")
    _add_model_args(ground)
    ground.add_argument("--json", action="store_true", help="print one JSON object")
    ground.add_argument("--overlay", metavar="OUT.png", help="write the image with masks and labels")

    ask = sub.add_parser("ask", help="send a prompt to a running grounding node (ROS action)")
    ask.add_argument("prompt")
    ask.add_argument("--namespace", default="", help="namespace of the grounding node")
    ask.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the result")
    ask.add_argument("--mode", choices=("",) + MODES, default="")
    ask.add_argument("--json", action="store_true")
    ask.add_argument("--overlay", metavar="OUT.png")

    evaluate = sub.add_parser("eval", help="grounding metrics on simulated scenes")
    evaluate.add_argument("--scenes", type=int, default=20)
    evaluate.add_argument("--seed", type=int, default=0)
    _add_model_args(evaluate)
    evaluate.add_argument("--prompt", choices=("describe", "refer", "both"), default="describe")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--dump", metavar="DIR", help="write overlays and per-scene records")

    demo = sub.add_parser("demo", help="run the composed graph on the embedded default models")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--model", default=None)
    demo.add_argument("--sam-model", default=None)

    bench = sub.add_parser("bench", help="benchmarks; writes bench/RESULTS.md and results.json")
    bench.add_argument("--quick", action="store_true")
    bench.add_argument("--json", action="store_true")
    return parser


def cmd_ground(args: argparse.Namespace) -> int:
    from ros_ground.engine import EngineConfig, build_engine
    from ros_ground.overlay import draw_overlay, load_rgb, save_png

    image = load_rgb(args.image)
    engine = build_engine(
        model=args.model, sam_model=args.sam_model, sam_checkpoint=args.sam_checkpoint,
        device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
        config=EngineConfig(mode=args.mode, max_new_tokens=args.max_new_tokens),
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "ground":
            return cmd_ground(args)
        if args.command == "ask":
            from ros_ground.nodes.ask import run_ask

            return run_ask(args)
        if args.command == "eval":
            from ros_ground.evaluate import run_eval

            return run_eval(args)
        if args.command == "demo":
            from ros_ground.nodes.demo import run_demo

            return run_demo(args)
        if args.command == "bench":
            sys.path.insert(0, ".")
            from bench.run import run_bench

            return run_bench(args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"ros-ground {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
