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
import sys

import rclpy

from ros_ground.nodes.process import cannot_start, run_executable


def shared_sam_provider(spec: str, checkpoint: str | None, device: str):
    from ros_ground.device import resolve_device
    from ros_ground.sam import SamLoadError, get_shared_sam

    # resolved first: "auto" and the device it names must share one SAM
    return get_shared_sam(spec, checkpoint, str(resolve_device(device, SamLoadError)))


def node_makers(with_proposals: bool = True, with_sim_camera: bool = False) -> list:
    """A constructor for each node, in the order they are made (and configured). The node
    modules (torch) are imported by the constructors, after the stop-on-signal handlers are in."""

    def sim_camera():
        from ros_ground.nodes.sim_camera_node import make_node

        return make_node()

    def grounding():
        from ros_ground.nodes.grounding_node import GroundingNode

        return GroundingNode(sam_provider=shared_sam_provider)

    def proposals():
        from ros_ground.nodes.mask_proposal_node import MaskProposalNode

        return MaskProposalNode(sam_provider=shared_sam_provider)

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
