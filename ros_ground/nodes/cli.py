"""`ros-ground`, the user command: the core subcommands plus those that talk to ROS.

`ask` sends a goal to a running grounding node; `lifecycle` reads or changes a node's
lifecycle state; `demo` runs the composed graph on the embedded default models. rclpy is
imported only when one of them is chosen.
"""

from __future__ import annotations

import argparse
import sys

from ros_ground.arg_types import positive_seconds

TRANSITIONS = ("configure", "activate", "deactivate", "cleanup", "shutdown")  # lifecycle_cli's


def add_ros_commands(sub) -> None:
    from ros_ground.cli_flags import flag_type
    from ros_ground.settings import GROUNDING, MODES, by_name

    ask = sub.add_parser("ask", help="send a prompt to a running grounding node (ROS action)")
    ask.add_argument("prompt", help="a description request, question or command")
    ask.add_argument("--namespace", default="", help="namespace of the grounding node "
                     "(default: none; sim.launch.py uses /sim, make demo /demo on a private domain)")
    ask.add_argument("--timeout", type=positive_seconds, default=120.0,
                     help="seconds to wait for the result, of which at most 30 for the action "
                          "server (default %(default)g)")
    ask.add_argument("--mode", choices=MODES, default="",  # "" (the node's) is not checked
                     help="grounding mode of this goal (default: the node's `mode` parameter)")
    ask.add_argument("--camera", default="",
                     help="which of the node's `cameras` to ground on (default: the first)")
    ask.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ask.add_argument("--overlay", metavar="OUT.png", help="write the node's overlay image")

    life = sub.add_parser("lifecycle", help="a lifecycle node's state, or a transition of it "
                          "(ros2 lifecycle get/set, for installs without it)")
    life.add_argument("node", help="the node's full name, e.g. /ground/grounding_node")
    life.add_argument("transition", nargs="?", choices=TRANSITIONS,
                      help="the transition to trigger (default: print the state)")
    life.add_argument("--timeout", type=positive_seconds, default=None,
                      help="seconds to wait for the node's services and for the transition's "
                      "answer (default 10; a configure's answer 300: it loads the models)")

    demo = sub.add_parser("demo", help="run the composed graph on the embedded default models")
    demo.add_argument("--out", default="demo_out", help="folder for overlays and the graph log")
    models = by_name(GROUNDING)
    demo.add_argument("--model", type=flag_type(models["model"]), default=None,
                      help="override the model of config/sim.yaml (demo.yaml, layered over it, sets none)")
    demo.add_argument("--sam-model", type=flag_type(models["sam_model"]), default=None,
                      help="override the sam_model of config/sim.yaml (demo.yaml sets none)")


def cmd_ask(args: argparse.Namespace) -> int:
    from ros_ground.nodes.ask import run_ask

    return run_ask(args)


def cmd_lifecycle(args: argparse.Namespace) -> int:
    from ros_ground.nodes.lifecycle_cli import run_lifecycle

    return run_lifecycle(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ros_ground.nodes.demo import run_demo

    return run_demo(args)


def main(argv: list[str] | None = None) -> int:
    # imported here, where Ctrl-C is caught: the core command line imports numpy (~0.1 s), the
    # first moment a user can cut the entry point short
    try:
        from ros_ground import cli as core_cli
    except KeyboardInterrupt:
        args = sys.argv[1:] if argv is None else argv
        command = f" {args[0]}" if args and args[0].isalpha() else ""
        print(f"ros-ground{command}: interrupted", file=sys.stderr)
        return 130
    return core_cli.main(argv, extra_commands=add_ros_commands,
                         handlers={"ask": cmd_ask, "demo": cmd_demo, "lifecycle": cmd_lifecycle})


if __name__ == "__main__":
    sys.exit(main())
