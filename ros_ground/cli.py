"""`ros-ground`: the user command line.

`ground` runs the engine offline (no ROS); `eval` measures grounding on simulated scenes;
`bench` runs the benchmarks; `train` trains the embedded sim models (ros_ground.train). The ROS
subcommands (`ask`, `demo`) are added by ros_ground.nodes.cli, the `ros-ground` entry point, so
the core never imports ROS. Subcommands import their heavy modules only when chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from ros_ground import settings
from ros_ground.arg_types import ExactParser, int_at_least, ints, positive_seconds, scene_set
from ros_ground.cli_flags import add_model_args, add_proposal_args, engine_config, file_flags

_positive = int_at_least(1)
_non_negative = int_at_least(0)  # a scene seed


def build_parser(extra_commands: Callable | None = None, ground_defaults: dict | None = None
                 ) -> argparse.ArgumentParser:
    """The core subcommands; `extra_commands(subparsers)` adds the ROS ones (ros_ground.nodes.cli);
    `ground_defaults`: setting values (a `--params-file`'s) in place of the node's defaults."""
    parser = ExactParser(prog="ros-ground", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)  # ExactParsers too

    ground = sub.add_parser("ground", help="ground a prompt's answer in one image file (no ROS)")
    ground.add_argument("--image", required=True, help="PNG/JPEG file")
    ground.add_argument("--prompt", default=settings.by_name(settings.GROUNDING)["default_prompt"].default,
                        help="a description request, question or command (default: the node's "
                             "default_prompt, a --params-file's if it sets one: %(default)r)")
    ground.add_argument("--params-file", metavar="FILE.yaml", action="append",
                        help="the grounding_node's parameters, and the mask_proposal_node's "
                             "proposal settings, from a ROS 2 parameter file (e.g. "
                             "config/sim.yaml, as the launch file gives the nodes; not compile); "
                             "again for more files, a later one winning; flags win")
    add_model_args(ground)
    add_proposal_args(ground)
    ground.add_argument("--depth", metavar="FILE",
                        help="depth registered to the image: a 16-bit PNG in millimetres or a "
                             ".npy in metres (0/NaN = no return); gives each phrase a 3-D "
                             "position and size (needs --camera-info)")
    ground.add_argument("--camera-info", metavar="FILE",
                        help="the image's calibration, the YAML ROS camera_calibration writes "
                             "(needs --depth)")
    ground.add_argument("--json", action="store_true", help="print one JSON object")
    ground.add_argument("--overlay", metavar="OUT.png", help="write the image with masks and labels")
    where = ground.add_mutually_exclusive_group()
    where.add_argument("--region", type=ints(4), metavar="X,Y,W,H",
                       help="ask about the entity in this box of the image (pixels: top-left "
                            "X,Y, width W, height H; the prompt's 'this' / <region>)")
    where.add_argument("--point", type=ints(2), metavar="X,Y",
                       help="ask about the entity under this pixel (column X, row Y)")
    ground.add_argument("--max-image-pixels", type=_positive,
                        default=settings.by_name(settings.GROUNDING)["max_image_pixels"].default,
                        help="larger images are refused (default %(default)s; the node's "
                             "max_image_pixels)")
    ground.add_argument("--max-prompt-chars", type=_positive,
                        default=settings.by_name(settings.GROUNDING)["max_prompt_chars"].default,
                        help="longer prompts are refused (default %(default)s; the node's "
                             "max_prompt_chars)")

    # after every flag is added (an explicit default wins over set_defaults); strings are
    # parsed by each flag's type
    ground.set_defaults(**(ground_defaults or {}))

    evaluate = sub.add_parser("eval", help="grounding metrics on simulated scenes")
    evaluate.add_argument("--scenes", type=_positive, default=20,
                          help="scenes to render and ground (default %(default)s)")
    evaluate.add_argument("--seed", type=_non_negative, default=0,
                          help="seed of the first scene; the scenes are SEED..SEED+SCENES-1, "
                               "disjoint from the training seeds (default %(default)s)")
    add_model_args(evaluate)
    evaluate.add_argument("--prompt", default="describe", choices=(
        "describe", "refer", "both", "command", "region", "absent"), help=(
        "describe: every object; refer: 'Where is X?'; command: 'Pick up X.' / 'Where is X?', "
        "scored as commands (target_accuracy, 3-D error); both: describe and refer; region: 'What "
        "is this?' about each object's region (region_naming_accuracy); absent: the command, then "
        "commands about what the scene lacks, scored by whether they get no target"))
    add_proposal_args(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    evaluate.add_argument("--dump", metavar="DIR",
                          help="write overlays and per-scene records into this folder (created; "
                               "--prompt region: each region labelled with its answer; not with "
                               "--prompt absent)")
    evaluate.add_argument("--scene-set", type=scene_set, default="in", metavar="SET[:AXIS,...]",
                          help="in: the classic 320x240 scenes (inside the training ranges); "
                               "randomised: drawn over the training ranges; ood: outside them "
                               "(lower, farther camera, 800x450, held-out colours). SET:AXIS,... "
                               "draws those axes from the training ranges instead, to measure "
                               "what each costs (e.g. ood:distance,elevation_deg; axes: the "
                               "fields of ros_ground.sim.ranges.SceneRanges but color_jitter, "
                               "which palette brings)")

    bench = sub.add_parser("bench", help="benchmarks; writes bench/RESULTS.md and results.json")
    bench.add_argument("--quick", action="store_true",
                       help="smaller counts, ~1.5 min of CPU (4 min on a busy 2-core CPU); writes "
                            "bench/RESULTS.quick.md and "
                            "results.quick.json, leaving the full run's files")
    bench.add_argument("--json", action="store_true", help="print the results as one JSON line")
    bench.add_argument("--gpu", action="store_true",
                       help="on a CUDA machine: the LLaVA-1.5-7B-shaped fp16 row")
    bench.add_argument("--soak", type=positive_seconds, metavar="SECONDS",
                       help="only the streaming soak, for this long (memory trend); merged "
                            "into bench/results.json and RESULTS.md as the soak row")
    bench.add_argument("--threads", type=_positive, help="torch threads for CPU models (default 1)")
    train = sub.add_parser("train", add_help=False,
                           help="train the embedded sim models: train lmm|sam|data|eval|all (-h)")
    train.add_argument("train_args", nargs=argparse.REMAINDER,
                       help="lmm|sam|data|eval|all and its flags (`ros-ground train -h`)")
    if extra_commands is not None:
        extra_commands(sub)
    # each subcommand's parser: an error of its flags shows its usage, not the subcommands
    parser.subcommands = sub.choices
    return parser


def cmd_ground(args: argparse.Namespace) -> int:
    """`ros-ground ground`: ground one prompt on one image file and print the result; 0."""
    from ros_ground.errors import check_prompt
    from ros_ground.image_files import check_writable, load_rgb, save_png
    from ros_ground.overlay import draw_overlay, with_target
    from ros_ground.regions import box_mask, check_point, resolve_region

    check_prompt(args.prompt, args.max_prompt_chars)  # before any model loads
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our error names the file's fault
    if args.overlay:
        check_writable(args.overlay)
        inputs = [f for f in (args.image, args.depth, args.camera_info) if f]
        if os.path.exists(args.overlay) and any(os.path.exists(f) and os.path.samefile(f, args.overlay)
                                                for f in inputs):
            raise OSError(f"--overlay {args.overlay} is one of the input files: it would be overwritten")
    image = load_rgb(args.image, args.max_image_pixels)
    depth_k = _load_depth_args(args, image.shape[:2])
    # checked against the image before the models load
    boxed = box_mask(image.shape[:2], *args.region) if args.region else None
    if args.point:
        check_point(image.shape[:2], *args.point)
    from dataclasses import replace

    import numpy as np

    from ros_ground.engine import build_engine_from_settings  # torch: after the inputs are read

    engine = build_engine_from_settings(vars(args), config=engine_config(args))
    entities = engine.requested_mode() == "entities"
    if args.region or args.point:
        # as the node does with its proposal node's masks: a box becomes the proposal of highest
        # IoU with it, a pixel the smallest one holding it; without proposals (modes auto and
        # point here) the box itself, and SAM's mask under the pixel
        proposals = engine.sam.propose(image, **engine.config.amg_params) if entities else None
        region = resolve_region(
            image.shape[:2], proposals,
            segment_point=lambda x, y: engine.segment_point(image, (x, y))[0],
            **({"box": args.region} if args.region else {"point": args.point}))
        if proposals and args.region and np.array_equal(region.mask, boxed):
            print("ros-ground ground: no proposal matches the box (IoU >= 0.3); the box itself "
                  "is the region", file=sys.stderr)
        # no proposals in entities mode: point mode, not a second proposal pass that finds none
        config = replace(engine.config, mode="point") if proposals == [] else None
        result = engine.ground_region(image, args.prompt, region, proposals=proposals or None,
                                      config=config)
    else:
        result = engine.ground(image, args.prompt)
    if entities and result.mode == "point":
        print("ros-ground ground: SAM proposed no entity masks in this image; grounded in point "
              "mode instead", file=sys.stderr)
    # why the phrases have no 3-D position, as the node's response says it
    position_error = "no --depth and --camera-info given"
    if depth_k is not None:
        from ros_ground.spatial import locate_result, unlocated_phrases

        locate_result(result, *depth_k)
        position_error = unlocated_phrases(result)
    if args.overlay:
        save_png(args.overlay, draw_overlay(image, with_target(result.phrases, result.prompt_phrases,
                                                               result.target)))
    if args.json:
        print(json.dumps({**result.to_json(), "position_error": position_error}))
    else:
        print(format_result(result) + (f"\nNo 3-D positions: {position_error}"
                                       if position_error and depth_k is not None else ""))
    return 0


def _load_depth_args(args: argparse.Namespace, shape: tuple[int, int]):
    """(depth in metres, K) from --depth and --camera-info, None without them; ValueError when
    only one is given or they do not fit the image (checked before the models load)."""
    if not args.depth and not args.camera_info:
        return None
    if not (args.depth and args.camera_info):
        raise ValueError("--depth and --camera-info go together: positions need both")
    from ros_ground.image_files import load_depth
    from ros_ground.spatial import load_camera_info

    depth = load_depth(args.depth, args.max_image_pixels)
    info = load_camera_info(args.camera_info)
    height, width = shape
    if depth.shape != (height, width):
        raise ValueError(f"depth {args.depth!r} is {depth.shape[1]}x{depth.shape[0]}, the image "
                         f"{width}x{height}: it must be registered to the image")
    if (info.height, info.width) != (height, width):
        raise ValueError(f"camera info {args.camera_info!r} is for {info.width}x{info.height}, "
                         f"the image is {width}x{height}")
    return depth, info.rectified_k


def _where(p) -> str:
    if not p.depth_points:
        return ""
    x, y, z = p.position
    return f" xyz=({x:.3f},{y:.3f},{z:.3f})m"


def _landmark_role(result) -> str:
    """"destination behind" / "landmark left of": what the landmark phrase is to the target."""
    return f"{'destination' if result.destination else 'landmark'} {result.relation}"


def format_result(result) -> str:
    """Human-readable summary: the text, then one line per phrase with its mask's area and box."""
    lines = [f"[{result.model}] {result.text}"]
    for p in result.phrases:
        x, y, w, h = p.bbox
        point = "" if p.point is None else f" point=({p.point[0]:.0f},{p.point[1]:.0f})"
        ents = f" entities={p.entity_ids}" if p.entity_ids else ""
        lines.append(f"  - {p.text!r} [{p.char_start}:{p.char_end}] area={int(p.mask.sum())}px "
                     f"box=({x},{y},{w},{h}) score={p.confidence:.2f}{point}{ents}{_where(p)}")
    for i, p in enumerate(result.prompt_phrases):
        x, y, w, h = p.bbox
        role = ("target" if i == result.target
                else "also a target" if i in result.more_targets
                else _landmark_role(result) if i in (result.landmark, result.second_landmark)
                else "absent (no proposal can be this; no target)" if i == result.absent
                else "prompt phrase")
        lines.append(f"  {role}: {p.text!r} area={int(p.mask.sum())}px box=({x},{y},{w},{h})"
                     f"{_where(p)}")
    if result.prompt_phrases or result.intent != "none":
        lines.append(f"  intent: {result.intent}")
    timing = ", ".join(f"{k}={v:.0f}ms" for k, v in result.timing_ms.items())
    lines.append(f"  timing: {timing}")
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    """`ros-ground eval`: grounding metrics on simulated scenes; the evaluation's exit status."""
    from ros_ground.train.data import check_eval_seeds

    check_eval_seeds(args.seed, args.scenes)  # before torch and the models load
    if args.dump:
        from ros_ground.out_paths import check_output_folder

        check_output_folder(args.dump, "--dump")
    from ros_ground.evaluate.cli import run_eval

    return run_eval(args, engine_config(args))


def cmd_bench(args: argparse.Namespace) -> int:
    """`ros-ground bench`: bench/run.py from a source checkout (RuntimeError outside one)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "run.py").is_file():
        raise RuntimeError("benchmarks live in bench/ of a source checkout; run from the repository")
    sys.path.insert(0, str(root))
    from bench.run import run_bench

    return run_bench(args)


def cmd_train(args: argparse.Namespace) -> int:
    """`ros-ground train`: the training command named by its arguments; its exit status."""
    from ros_ground.train import main_train

    return main_train(args.train_args)


ROS_COMMANDS = ("ask", "demo", "lifecycle")  # added by ros_ground.nodes.cli, the `ros-ground` entry point
CORE_COMMANDS = {"ground": cmd_ground, "eval": cmd_eval, "bench": cmd_bench, "train": cmd_train}


def _attach_negative_values(argv: list[str], flags=("--region", "--point")) -> list[str]:
    """argv with a pixel list that starts with "-" joined to its flag ("--region -5,10,20,20"
    -> "--region=-5,10,20,20"): argparse reads it as an option and said "expected one
    argument", where the region check says the pixel is outside the image."""
    out = []
    for arg in argv:
        if out and out[-1] in flags and re.fullmatch(r"-\d[\d,.-]*", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None, extra_commands: Callable | None = None,
         handlers: dict | None = None) -> int:
    """Run a subcommand; errors users can fix print one line and exit 2; Ctrl-C prints one line
    and exits 130, from the first line on: parsing reads and checks --params-file files, and a
    ROS subcommand imports rclpy before it runs."""
    argv = _attach_negative_values(sys.argv[1:] if argv is None else list(argv))
    try:
        return _parse_and_run(argv, extra_commands, handlers)
    except KeyboardInterrupt:
        known = (*CORE_COMMANDS, *ROS_COMMANDS)
        command = f" {argv[0]}" if argv and argv[0] in known else ""
        print(f"ros-ground{command}: interrupted", file=sys.stderr)
        return 130


def _parse_and_run(argv: list[str], extra_commands: Callable | None, handlers: dict | None) -> int:
    parser = build_parser(extra_commands)
    if extra_commands is None and argv and argv[0] in ROS_COMMANDS:
        parser.error(f"{argv[0]} needs ROS: run it from the `ros-ground` entry point "
                     f"(`python -m ros_ground.nodes.cli {argv[0]} ...`), not ros_ground.cli")
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "params_file", None):  # the files' values become the flags' defaults
        found = {}
        try:
            for path in args.params_file:
                found.update(file_flags(path))
        except (ValueError, OSError) as exc:  # the file's fault, not the command line's: no usage
            parser.subcommands[args.command].exit(2, f"ros-ground {args.command}: error: {exc}\n")
        parser = build_parser(extra_commands, found)
        args, unknown = parser.parse_known_args(argv)
    if args.command == "train":  # argparse's REMAINDER leaves a leading option ("train -h") out
        args.train_args = unknown + args.train_args
    elif unknown:
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    commands = {**CORE_COMMANDS, **(handlers or {})}
    try:
        return commands[args.command](args)
    except BrokenPipeError:  # the reader left (`| head -3`): end quietly, as CLI tools do
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the signal ended
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"ros-ground {args.command}: error: {exc}", file=sys.stderr)
        return 2

def _silence_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it again at exit, and a closed pipe would say
    so in a traceback (the `signal` module's recipe for SIGPIPE)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (captured by a test): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
