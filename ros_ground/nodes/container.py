"""ground_container: grounding + proposal nodes (optionally the sim camera) in one process.

One SAM model serves both nodes, and one image embedding per frame serves the proposal
generator and every phrase: the container's point. `rclpy_components` is not available as a
wheel, so this is a plain process that builds the nodes on a multi-threaded executor; on a ROS
install, ground.launch.py with composed:=true runs the same nodes. Parameters given on the
command line reach every node, so `--ros-args -p "cameras:=[left, right]"` gives both model
nodes the same cameras.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable

import rclpy

from ros_ground.nodes.process import cannot_start, run_executable

log = logging.getLogger(__name__)


def _sam_key(spec: str, checkpoint: str | None, device: str) -> tuple:
    from ros_ground.device import resolve_device
    from ros_ground.sam import SamLoadError

    # resolved first: "auto" and the device it names must share one SAM
    return spec, checkpoint, str(resolve_device(device, SamLoadError))


class SharedSam:
    """The container's one SAM, asked for by each model node at configure (`provider`).

    Sharing is the container's point, and holds only while both nodes ask for the same SAM
    (sam_model, sam_checkpoint, device). A node reconfigured with another (`ros2 param set
    /mask_proposal_node sam_model tiny`, then configure) gets its own, as it asked; that is
    warned about, naming both, since nothing else shows it: the proposals then come from
    another model than the one grounding the phrases, and each frame is encoded twice. A model
    lives while a node holds it (sam.get_shared_sam): the last node's cleanup frees it.
    """

    def __init__(self):
        self._asked: dict[str, tuple] = {}  # node -> the (spec, checkpoint, device) it has now
        self._lock = threading.Lock()

    def provider(self, node: str) -> Callable:
        """A `sam_provider` for the node named `node`."""
        def provide(spec: str, checkpoint: str | None, device: str):
            key = _sam_key(spec, checkpoint, device)
            with self._lock:
                self._asked[node] = key
                others = {n: k for n, k in self._asked.items() if n != node and k != key}
            for other, theirs in others.items():
                log.warning(f"{node} uses SAM {_sam(key)}, {other} {_sam(theirs)}: the composed "
                            "nodes share SAM and its image embedding only with the same sam_model, "
                            "sam_checkpoint and device; proposals now come from another SAM than "
                            f"the grounding node's, each frame encoded by both. Set {other}'s (or "
                            f"{node}'s) to match and reconfigure it")
            from ros_ground.sam import get_shared_sam

            return get_shared_sam(*key)  # the key resolved above: its device named once
        return provide


def _sam(key: tuple) -> str:
    spec, checkpoint, device = key
    return f"{spec!r}" + (f" ({checkpoint})" if checkpoint else "") + f" on {device}"


def node_makers(with_proposals: bool = True, with_sim_camera: bool = False) -> list:
    """A constructor for each node, in the order they are made (and configured). The node
    modules (torch) are imported by the constructors, after the stop-on-signal handlers are in."""
    sam = SharedSam()

    def sim_camera():
        from ros_ground.nodes.sim_camera_node import make_node

        return make_node()

    def grounding():
        from ros_ground.nodes.grounding_node import GroundingNode

        return GroundingNode(sam_provider=sam.provider("grounding_node"))

    def proposals():
        from ros_ground.nodes.mask_proposal_node import MaskProposalNode

        return MaskProposalNode(sam_provider=sam.provider("mask_proposal_node"))

    return ([sim_camera] if with_sim_camera else []) + [grounding] + ([proposals] if with_proposals else [])


def main(args=None) -> None:
    try:
        argv = rclpy.utilities.remove_ros_args(args if args is not None else sys.argv)[1:]
    except RuntimeError as exc:  # rcl's RCLInvalidROSArgsError: the --ros-args do not parse
        cannot_start(exc)
    parser = argparse.ArgumentParser(prog="ground_container", description=__doc__.splitlines()[0])
    parser.add_argument("--no-proposals", action="store_true", help="run without the proposal node")
    parser.add_argument("--sim", action="store_true", help="also run the simulated camera")
    options = parser.parse_args(argv)
    run_executable(node_makers(not options.no_proposals, options.sim), args)


if __name__ == "__main__":
    main()
