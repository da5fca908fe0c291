"""`ros-ground ask`: send one Ground goal to a running node, stream its text, print the result
in plain words (`--json` for every field)."""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.action import ActionClient
from rclpy.signals import SignalHandlerOptions
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import GroundedResponse

from ros_ground.camera_watch import camera_topics
from ros_ground.nodes.common import check_domain_id, check_ros_name, check_type_support, spin_until
from ros_ground.nodes.conversions import msg_to_phrase, msg_to_result_json
from ros_ground.overlay import where_in_image

STATUS_NAMES = {
    getattr(GroundedResponse, n): n[len("STATUS_"):]
    for n in dir(GroundedResponse) if n.startswith("STATUS_")
}
MODE_WORDS = {  # GroundedResponse.mode, for a reader who has not seen the method
    "entities": "masks picked among the outlines of the objects in the frame",
    "point": "masks cut around the spot the model looked at, not chosen among object outlines",
}


def _elsewhere(node, action: str) -> str:
    """The --namespace of each Ground action server in the graph (servers only: this command's
    own client is on the action too); when one serves `action` itself, that it is there
    unmatched, as naming the namespace asked for would send the user round in a circle."""
    from rclpy.action import get_action_server_names_and_types_by_node

    found = sorted({name.removesuffix("/ask") or "/"
                    for node_name, node_ns in node.get_node_names_and_namespaces()
                    for name, types in get_action_server_names_and_types_by_node(
                        node, node_name, node_ns)
                    if name.endswith("/ask") and "ros_ground_msgs/action/Ground" in types})
    asked = node.resolve_topic_name(action).removesuffix("/ask") or "/"
    if asked in found:
        return (f" A Ground server is at {asked.rstrip('/')}/ask but this client did not match "
                "it: it may be busy starting, or built from another msg/ than this command's "
                "ros_ground_msgs (a workspace's beside the venv's: rebuild both)")
    return f" Ground servers running: --namespace {', '.join(found)}" if found else ""


def ask(node, prompt: str, namespace: str = "", mode: str = "", timeout: float = 120.0,
        on_feedback=None, camera: str = "") -> GroundedResponse:
    """Send the goal (about `camera`, one of the node's `cameras`; "" the first) and wait;
    raises TimeoutError when no server or no result in time (the goal, once sent, canceled)."""
    action = f"{namespace.rstrip('/')}/ask" if namespace else "ask"
    client = ActionClient(node, Ground, action)
    deadline = time.monotonic() + timeout
    answering = []  # feedback came: the node had begun answering

    def feedback(msg):
        answering.append(True)
        if on_feedback is not None:
            on_feedback(msg)
    stage = "before a goal was sent"  # what a Ctrl-C leaves behind, said by the caller
    try:
        wait_s = min(timeout, 30.0)
        if not client.wait_for_server(timeout_sec=wait_s):
            raise TimeoutError(f"no action server at {action!r} within {wait_s:g} s (discovery "
                               "can take a second): is grounding_node running and active "
                               "(configured; a failed configure is in its log)?"
                               + _elsewhere(node, action))
        send = client.send_goal_async(Ground.Goal(prompt=prompt, mode=mode, camera=camera),
                                      feedback_callback=feedback)
        stage = "after the goal was sent, before the node accepted it (it may still run it)"
        _wait(node, send.done, deadline, f"timed out after {timeout:g} s before the grounding node "
              "accepted the goal")
        handle = send.result()
        if handle is None or not handle.accepted:
            # the server takes no goal while the node is inactive (deactivated, not reactivated)
            node_name = f"{namespace.rstrip('/')}/grounding_node" if namespace else "grounding_node"
            raise RuntimeError(f"the goal was rejected: is the node active? (`ros-ground lifecycle "
                               f"{node_name}` says its state)")
        result = handle.get_result_async()
        stage = "the goal was canceled"
        try:
            _wait(node, result.done, deadline, "")
        except TimeoutError:
            _cancel(node, handle)
            how = "while the node was still answering" if answering else "before an answer began"
            raise TimeoutError(f"timed out after {timeout:g} s {how}; the goal was canceled") from None
        except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C, or the reader of the text left
            _cancel(node, handle)
            raise
        return result.result().result.response
    except KeyboardInterrupt:
        raise Interrupted(stage) from None
    finally:
        client.destroy()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `ask`; its message says what became of the goal."""


def _wait(node, done, deadline: float, why: str) -> None:
    if not spin_until(node, done, deadline - time.monotonic()):
        raise TimeoutError(why)


def _cancel(node, handle, wait_s: float = 2.0) -> None:
    """Ask the server to cancel the goal, and spin until it answers (at most `wait_s`): a client
    that leaves at once never sends the request, and the node generates on for nobody."""
    spin_until(node, handle.cancel_goal_async().done, wait_s)


def run_ask(args) -> int:
    """`ros-ground ask`: 0 for STATUS_OK, 1 for another status, 2 for no answer, 130 on Ctrl-C."""
    from ros_ground.errors import check_utf8

    check_utf8(args.prompt)  # before any ROS: a ROS string cannot hold undecodable bytes
    if args.namespace:
        check_ros_name(args.namespace, "--namespace")
    if getattr(args, "camera", ""):  # as the node checks its `cameras`: the error names a camera
        camera_topics([args.camera], "image")
    if args.overlay:  # before the node spends a generation on the command
        from ros_ground.image_files import check_writable

        check_writable(args.overlay)
    # Ctrl-C raises KeyboardInterrupt with the context alive, so the goal can still be canceled
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    check_domain_id()  # ValueError: a usage error, 2
    node = rclpy.create_node("ros_ground_ask")
    shown = [0]

    def stream(feedback_msg):
        text = feedback_msg.feedback.partial_text
        if not args.json and len(text) > shown[0]:
            sys.stdout.write(("" if shown[0] else "Answer: ") + text[shown[0]:])
            sys.stdout.flush()
            shown[0] = len(text)

    overlays = []
    if args.overlay:
        from sensor_msgs.msg import Image

        from ros_ground.nodes.common import RELIABLE

        # a named camera's overlay is <camera>/overlay (camera_watch.camera_topics)
        name = f"{args.camera}/overlay" if getattr(args, "camera", "") else "overlay"
        topic = f"{args.namespace.rstrip('/')}/{name}" if args.namespace else name
        node.create_subscription(Image, topic, overlays.append, RELIABLE)
    try:
        check_type_support(GroundedResponse)  # else a mismatched msg/ reads as a server that never matches
        response = ask(node, args.prompt, args.namespace, args.mode, args.timeout, stream,
                       getattr(args, "camera", ""))
        if args.overlay:  # the node publishes the overlay right before it answers
            spin_until(node, lambda: overlays, 2.0)
    except (TimeoutError, RuntimeError) as exc:
        _end_line(shown[0])
        print(f"ros-ground ask: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        _end_line(shown[0])
        print(f"ros-ground ask: interrupted ({exc})", file=sys.stderr)
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if not args.json:
        _print_response(response, shown[0])
    if args.overlay:
        _write_overlay(args.overlay, response, overlays[-1] if overlays else None)
    if args.json:
        print(json.dumps(msg_to_result_json(response)))
    return 0 if response.status == GroundedResponse.STATUS_OK else 1


def _end_line(streamed: int) -> None:
    """End the streamed answer's line on stdout, where it is (it ends without one), so that an
    error on stderr starts a line of its own in a terminal and the saved text ends in one."""
    if streamed:
        print(flush=True)


def _phrase_words(p) -> str:
    """One phrase of a response (a GroundedPhrase message) in plain words: where its mask lies
    in the picture and how much of it it covers."""
    phrase = msg_to_phrase(p)
    area = int(phrase.mask.sum())
    share = 100.0 * area / phrase.mask.size
    where = where_in_image(phrase.mask) if area else "nowhere (empty mask)"
    return f"\"{p.text}\": {where}; {area} pixels ({share:.1f}% of the picture)"


def _print_response(response: GroundedResponse, shown: int = 0) -> None:
    """The answer (what is left of it after the `shown` characters streamed) and its phrases."""
    if response.status == GroundedResponse.STATUS_OK:
        rest = response.text[shown:] if response.text.strip() else "(none: the model generated no text)"
        print(("" if shown else "Answer: ") + rest)
    elif shown:
        print()
    print_phrases(response)


def print_phrases(response: GroundedResponse) -> None:
    """How long the answer took and where each of its phrases is, in plain words; why there is
    no answer when the response has none."""
    if response.status != GroundedResponse.STATUS_OK:
        status = STATUS_NAMES.get(response.status, str(response.status))
        print(f"  No answer ({status}): {response.error}")
        return
    count = len(response.phrases)
    took = f"  Answered in {response.total_ms / 1000:.1f} s; "
    if not count:
        print(took + "no phrase of it was found in the picture.")
    else:
        how = MODE_WORDS.get(response.mode, response.mode)
        print(took + f"{count} phrase{'s' * (count != 1)} found in the picture"
              + (f" ({how})" if how else "") + ":")
        for p in response.phrases:
            print(f"   - {_phrase_words(p)}")
    if 0 <= response.target < len(response.prompt_phrases):
        print(f"  The command is about "
              f"{_target_words(response.prompt_phrases[response.target], response.position_error)}")
        for k in response.more_targets:  # "the red mug and the blue cube"
            if 0 <= k < len(response.prompt_phrases):
                print(f"  and about {_target_words(response.prompt_phrases[k], response.position_error)}")
    elif 0 <= response.absent < len(response.prompt_phrases):
        print(f"  Found nothing that is {response.prompt_phrases[response.absent].text!r}: "
              "the command has no target (target -1).")
    elif response.destination and 0 <= response.landmark < len(response.prompt_phrases):
        print("  The command is about what the robot holds (target -1).")  # "put it on the tray"
    elif response.prompt_phrases:  # "what is behind the mug?": a landmark, a place
        print("  None of the command's phrases is the object it is about (target -1).")
    if intent := INTENT_WORDS.get(response.intent):
        print(f"  It asks the robot {intent}.")
    if 0 <= response.landmark < len(response.prompt_phrases):
        how = "It goes" if response.destination else "It is"
        print(f"  {how} {response.relation} "
              f"{_target_words(response.prompt_phrases[response.landmark], response.position_error)}")
        second = int(response.second_landmark)
        if second != response.landmark and 0 <= second < len(response.prompt_phrases):  # "between"
            print(f"  and {_target_words(response.prompt_phrases[second], response.position_error)}")


# what GroundedResponse.intent asks, in the sentence "It asks the robot ..."
INTENT_WORDS = {GroundedResponse.INTENT_ACT: "to act on it (INTENT_ACT)",
                GroundedResponse.INTENT_LOCATE: "only to find or tell about it (INTENT_LOCATE)"}


def target_where(p) -> str:
    """The command's target (a GroundedPhrase message) in plain words: its phrase, where its
    mask lies, its area and its box in pixels (x, y of the top-left corner, width, height)."""
    x, y, w, h = msg_to_phrase(p).bbox
    return f"{_phrase_words(p)}, box x={x} y={y} width={w} height={h}"


def _target_words(p, position_error: str = "") -> str:
    """`target_where` and, with depth, the target's position in metres in the camera's optical
    frame (x right, y down, z forward); without, why not (the response's `position_error`)."""
    where = target_where(p)
    if position_error:
        return where + f"; no 3-D position: {position_error}"
    if not p.depth_points:
        return where + "; no depth under its mask"
    return (where + f"; at ({p.position.x:.3f}, {p.position.y:.3f}, {p.position.z:.3f}) m "
            "from the camera (right, down, forward)")


def _write_overlay(path: str, response: GroundedResponse, overlay_msg) -> None:
    """The node's own overlay when it publishes one, else the masks drawn on a black canvas."""
    import numpy as np

    from ros_ground.image_codec import image_to_rgb
    from ros_ground.image_files import save_png
    from ros_ground.overlay import draw_overlay, with_target

    if overlay_msg is not None and overlay_msg.header.stamp == response.header.stamp:
        save_png(path, image_to_rgb(overlay_msg))
        return
    phrases = with_target([msg_to_phrase(p) for p in response.phrases],
                          [msg_to_phrase(p) for p in response.prompt_phrases], response.target)
    if not phrases:
        print("ros-ground ask: no phrases and no overlay image: nothing written", file=sys.stderr)
        return
    height, width = phrases[0].mask.shape
    save_png(path, draw_overlay(np.zeros((height, width, 3), np.uint8), phrases))
