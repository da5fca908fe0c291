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

from ros_ground.nodes.common import autostart, spin_nodes


def shared_sam_provider(spec: str, checkpoint: str | None, device: str):
    from ros_ground.sam import get_shared_sam

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return get_shared_sam(spec, checkpoint, device)


def build_nodes(with_proposals: bool = True, with_sim_camera: bool = False) -> list:
    from ros_ground.nodes.grounding_node import GroundingNode
    from ros_ground.nodes.mask_proposal_node import MaskProposalNode

    nodes = []
    if with_sim_camera:
        from ros_ground.nodes.sim_camera_node import SimCameraNode

        nodes.append(SimCameraNode())
    nodes.append(GroundingNode(sam_provider=shared_sam_provider))
    if with_proposals:
        nodes.append(MaskProposalNode(sam_provider=shared_sam_provider))
    return nodes


def main(args=None) -> None:
    argv = rclpy.utilities.remove_ros_args(args if args is not None else sys.argv)[1:]
    parser = argparse.ArgumentParser(prog="ground_container", description=__doc__.splitlines()[0])
    parser.add_argument("--no-proposals", action="store_true", help="run without the proposal node")
    parser.add_argument("--sim", action="store_true", help="also run the simulated camera")
    options = parser.parse_args(argv)
    rclpy.init(args=args)
    nodes = build_nodes(not options.no_proposals, options.sim)
    for node in nodes:
        if hasattr(node, "trigger_configure"):
            autostart(node)
    spin_nodes(nodes)


if __name__ == "__main__":
    main()
