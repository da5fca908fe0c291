"""`ros-ground ask`: send one Ground goal to a running node, stream its text, print the result."""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.action import ActionClient
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import GroundedResponse

from ros_ground.nodes.conversions import msg_to_phrase, msg_to_result_json

STATUS_NAMES = {
    getattr(GroundedResponse, n): n[len("STATUS_"):]
    for n in dir(GroundedResponse) if n.startswith("STATUS_")
}


def ask(node, prompt: str, namespace: str = "", mode: str = "", timeout: float = 120.0,
        on_feedback=None) -> GroundedResponse:
    """Send the goal and wait; raises TimeoutError when no server or no result in time."""
    action = f"{namespace.rstrip('/')}/ask" if namespace else "ask"
    client = ActionClient(node, Ground, action)
    deadline = time.monotonic() + timeout
    try:
        if not client.wait_for_server(timeout_sec=min(timeout, 30.0)):
            raise TimeoutError(f"no action server at {action!r}: is grounding_node running?")
        send = client.send_goal_async(Ground.Goal(prompt=prompt, mode=mode),
                                      feedback_callback=on_feedback)
        _spin_until(node, send.done, deadline)
        handle = send.result()
        if handle is None or not handle.accepted:
            raise RuntimeError("the goal was rejected")
        result = handle.get_result_async()
        try:
            _spin_until(node, result.done, deadline)
        except TimeoutError:
            handle.cancel_goal_async()
            raise
        return result.result().result.response
    finally:
        client.destroy()


def _spin_until(node, done, deadline: float, raise_on_timeout: bool = True) -> None:
    while not done():
        if time.monotonic() > deadline:
            if raise_on_timeout:
                raise TimeoutError("timed out waiting for the grounding node")
            return
        rclpy.spin_once(node, timeout_sec=0.05)


def run_ask(args) -> int:
    rclpy.init()
    node = rclpy.create_node("ros_ground_ask")
    shown = [0]

    def stream(feedback_msg):
        text = feedback_msg.feedback.partial_text
        if not args.json and len(text) > shown[0]:
            sys.stdout.write(text[shown[0]:])
            sys.stdout.flush()
            shown[0] = len(text)

    overlays = []
    if args.overlay:
        from sensor_msgs.msg import Image

        from ros_ground.nodes.common import RELIABLE

        topic = f"{args.namespace.rstrip('/')}/overlay" if args.namespace else "overlay"
        node.create_subscription(Image, topic, overlays.append, RELIABLE)
    try:
        response = ask(node, args.prompt, args.namespace, args.mode, args.timeout, stream)
        if args.overlay:  # the node publishes the overlay right before it answers
            _spin_until(node, lambda: overlays, time.monotonic() + 2.0, raise_on_timeout=False)
    except (TimeoutError, RuntimeError) as exc:
        print(f"\nros-ground ask: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if shown[0]:
        print()
    if args.overlay:
        _write_overlay(args.overlay, response, overlays[-1] if overlays else None)
    if args.json:
        print(json.dumps(msg_to_result_json(response)))
    else:
        _print_response(response)
    return 0 if response.status == GroundedResponse.STATUS_OK else 1


def _print_response(response: GroundedResponse) -> None:
    status = STATUS_NAMES.get(response.status, str(response.status))
    print(f"[{status}] {response.text}" + (f"  ({response.error})" if response.error else ""))
    for p in response.phrases:
        area = sum(p.mask.counts[1::2])
        print(f"  - {p.text!r} [{p.char_start}:{p.char_end}] area={area}px box=({p.bbox.x_offset},"
              f"{p.bbox.y_offset},{p.bbox.width},{p.bbox.height}) score={p.score:.2f}")
    print(f"  timing: total={response.total_ms:.0f}ms generation={response.generation_ms:.0f}ms "
          f"grounding={response.grounding_ms:.0f}ms" + (f"  mode: {response.mode}" if response.mode else ""))


def _write_overlay(path: str, response: GroundedResponse, overlay_msg) -> None:
    """The node's own overlay when it publishes one, else the masks drawn on a black canvas."""
    import numpy as np

    from ros_ground.nodes.conversions import image_msg_to_rgb
    from ros_ground.overlay import draw_overlay, save_png

    if overlay_msg is not None and overlay_msg.header.stamp == response.header.stamp:
        save_png(path, image_msg_to_rgb(overlay_msg))
        return
    phrases = [msg_to_phrase(p) for p in response.phrases]
    if not phrases:
        print("ros-ground ask: no phrases and no overlay image: nothing written", file=sys.stderr)
        return
    height, width = phrases[0].mask.shape
    save_png(path, draw_overlay(np.zeros((height, width, 3), np.uint8), phrases))
