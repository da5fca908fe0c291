"""grounding_node: camera frames + language commands in, grounded responses out.

A lifecycle node (ros_ground.nodes.lifecycle): configure loads the models, activate opens
topics, the `ask` action and the `describe` service, deactivate answers what is queued and
closes them, cleanup frees the models. Requests are queued and run one at a time by a
ros_ground.scheduler.Scheduler (round-robin across `command`, `describe` and `ask`); every
request gets exactly one GroundedResponse. An accepted goal holds no executor thread while it
waits: it is executed (`goal_handle.execute`) once its answer exists.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from geometry_msgs.msg import PointStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import EntityProposals, GroundedResponse
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from ros_ground import settings
from ros_ground.engine import EngineConfig, build_engine, check_prompt
from ros_ground.errors import InputError
from ros_ground.frames import FrameStore
from ros_ground.image_codec import ImageDecodeError
from ros_ground.nodes import params
from ros_ground.nodes.common import RELIABLE, autostart, frame_key, qos_by_name, release_memory, spin_nodes
from ros_ground.nodes.conversions import (
    ProposalError,
    error_response,
    image_msg_to_rgb,
    msg_to_mask,
    msg_to_proposals,
    result_to_msg,
    rgb_to_image_msg,
    stamp_to_ns,
)
from ros_ground.nodes.goals import PendingGoals
from ros_ground.nodes.lifecycle import ModelNode
from ros_ground.overlay import draw_overlay
from ros_ground.regions import click_region, goal_region, resolve_region
from ros_ground.scheduler import Rejected, Scheduler, Ticket

Status = GroundedResponse
CAMERA = "image"  # the one camera source today; FrameStore and Scheduler are keyed by source


@dataclass
class Frame:
    """A camera frame, decoded once on arrival (or the reason it could not be)."""

    header: Header
    rgb: object = None  # HxWx3 uint8, or None when decoding failed
    error: str = ""


@dataclass
class Request:
    request_id: str
    prompt: str
    mode: str
    frame: Frame | None
    goal_handle: object = None
    camera_frame: bool = True  # False for a goal's own image: never swapped for another frame
    region: Callable | None = None  # () -> regions.resolve_region keywords, or None


class GroundingNode(ModelNode):
    def __init__(self, name: str = "grounding_node", sam_provider: Callable | None = None,
                 **kwargs):
        super().__init__(name, settings.GROUNDING, **kwargs)
        self._sam_provider = sam_provider
        self._engine = None
        self._p = params.values(self, settings.GROUNDING)  # checked at configure
        self._response_pub = self._overlay_pub = None
        self.frames = FrameStore()
        self._proposals_topic = "proposals"
        self._ids = itertools.count(1)
        self.goals = PendingGoals()
        self.scheduler = Scheduler(self._run, self._deliver, self._canceled, self._failed,
                                   queue_size=self._p["queue_size"], name=f"{name}-worker")

    # ---- lifecycle -------------------------------------------------------------------------
    def load(self, p: dict) -> None:
        qos_by_name(p["image_qos"])
        sam = None
        if self._sam_provider is not None:
            sam = self._sam_provider(p["sam_model"], p["sam_checkpoint"] or None, p["device"])
        started = time.perf_counter()
        self._engine = build_engine(
            model=p["model"], sam_model=p["sam_model"], sam_checkpoint=p["sam_checkpoint"] or None,
            device=p["device"], dtype=p["dtype"], trust_remote_code=p["trust_remote_code"],
            allow_download=p["allow_download"],
            spacy_model=p["spacy_model"], config=EngineConfig.from_settings(p), sam=sam)
        self._response_pub = self.lifecycle_publisher(GroundedResponse, "response", RELIABLE)
        self._overlay_pub = self.lifecycle_publisher(Image, "overlay", RELIABLE)
        self.apply(p)
        self.get_logger().info(f"loaded model {p['model']!r} and SAM {p['sam_model']!r} on "
                               f"{self._engine.lmm.device} in {time.perf_counter() - started:.1f} s")

    def unload(self) -> None:
        self._engine = self._response_pub = self._overlay_pub = None
        self.frames.clear()

    def open(self, p: dict) -> None:
        sensors, commands = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        proposals = self.opened(self.create_subscription(
            EntityProposals, "proposals", self._on_proposals, RELIABLE, callback_group=sensors))
        self._proposals_topic = proposals.topic_name  # resolved: namespace and remappings
        self.opened(self.create_subscription(Image, "image", self._on_image,
                                             qos_by_name(p["image_qos"]), callback_group=sensors))
        self.opened(self.create_subscription(String, "command", self._on_command, RELIABLE,
                                             callback_group=commands))
        self.opened(self.create_subscription(PointStamped, "clicked_point", self._on_click,
                                             RELIABLE, callback_group=commands))
        self.opened(self.create_service(Trigger, "describe", self._on_describe,
                                        callback_group=commands))
        self.opened(ActionServer(
            # every goal is executed by `_deliver` with its answer: this default never runs
            self, Ground, "ask", execute_callback=lambda handle: Ground.Result(),
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            handle_accepted_callback=self._on_goal, cancel_callback=self._on_cancel,
            # keep-all, as for commands: the default history (10) drops a burst of goals
            goal_service_qos_profile=RELIABLE, result_service_qos_profile=RELIABLE,
            cancel_service_qos_profile=RELIABLE, callback_group=ReentrantCallbackGroup()))
        self.scheduler.open()
        self.get_logger().info("active: send a std_msgs/String on 'command' or a goal to 'ask'")

    def before_close(self) -> None:
        self.scheduler.close("node deactivated before the request ran")
        self.goals.wait_finished(timeout=10.0)  # let the answered goals' results go out

    def apply(self, p: dict) -> None:
        self._p = p
        self.scheduler.queue_size = p["queue_size"]
        if self._engine is not None:
            self._engine.config = EngineConfig.from_settings(p)

    def shutdown_worker(self) -> None:
        self.scheduler.stop("node shutting down")

    # ---- inputs ----------------------------------------------------------------------------
    def _decode(self, msg: Image, what: str) -> Frame:
        try:
            return Frame(msg.header, image_msg_to_rgb(msg, self._p["max_image_pixels"]))
        except ImageDecodeError as exc:
            self.get_logger().warning(f"bad image on {what!r}: {exc}", throttle_duration_sec=5.0)
            return Frame(msg.header, None, f"bad image: {exc}")

    def _on_image(self, msg: Image) -> None:
        keep = self.count_publishers(self._proposals_topic) > 0  # else nothing to pair with
        self.frames.add_frame(CAMERA, stamp_to_ns(msg.header.stamp), self._decode(msg, "image"),
                              int(self._p["proposal_max_age_s"] * 1e9), keep)

    def _on_proposals(self, msg: EntityProposals) -> None:
        self.frames.add_proposals(CAMERA, stamp_to_ns(msg.header.stamp), msg)

    def _on_command(self, msg: String) -> None:
        self._submit(Request(self._next_id(), msg.data, "", self.frames.latest(CAMERA)), "command")

    def _on_click(self, msg: PointStamped) -> None:
        """rviz's Publish Point: ask `region_prompt` about the entity under the click. A pixel
        point is (x, y) in a frame_id equal to the camera image's, with z == 0."""
        frame = self.frames.latest(CAMERA)
        request = Request(self._next_id(), self._p["region_prompt"], "", frame,
                          region=lambda: click_region(msg, frame))
        self._submit(request, "clicked_point")

    def _on_describe(self, request, response):
        request = Request(self._next_id(), self._p["default_prompt"], "", self.frames.latest(CAMERA))
        error = self._submit(request, "describe")[1]
        response.success = not error
        response.message = error or request.request_id
        return response

    def _on_goal(self, goal_handle) -> None:
        goal = goal_handle.request
        own = bool(goal.image.width or goal.image.height or len(goal.image.data))
        frame = self._decode(goal.image, "ask") if own else self.frames.latest(CAMERA)
        request_id = f"goal-{bytes(goal_handle.goal_id.uuid).hex()[:12]}"
        request = Request(request_id, goal.prompt, goal.mode, frame, goal_handle, not own,
                          region=lambda: goal_region(goal, msg_to_mask))
        self.goals.track(goal_handle, lambda: self._submit(request, "ask")[0])

    def _on_cancel(self, goal_handle) -> CancelResponse:
        ticket = self.goals.ticket(goal_handle)
        if ticket is not None:
            self.scheduler.cancel(ticket)
        return CancelResponse.ACCEPT

    def _next_id(self) -> str:
        return f"{self.get_name()}-{next(self._ids)}"

    def _submit(self, request: Request, source: str) -> tuple[Ticket | None, str]:
        """Queue a request (its ticket, ""), or answer it at once (None, why: bad input, busy)."""
        problem = self._precheck(request)
        if problem is None:
            try:
                return self.scheduler.submit(request, source), ""
            except Rejected as exc:
                problem = (Status.STATUS_REJECTED_BUSY, str(exc))
        self._deliver(Ticket(request), self._answer(request, *problem))
        return None, problem[1]

    def _precheck(self, request: Request) -> tuple[int, str] | None:
        try:
            check_prompt(request.prompt, self._p["max_prompt_chars"])
        except InputError as exc:
            return Status.STATUS_BAD_INPUT, str(exc)
        if request.frame is None:
            return Status.STATUS_NO_IMAGE, "no image received yet on 'image'"
        if request.frame.rgb is None:
            return Status.STATUS_BAD_INPUT, request.frame.error
        if self._engine is None:
            return Status.STATUS_MODEL_ERROR, "no model loaded (configure failed or not run)"
        return None

    # ---- the scheduler's callbacks (run on its worker) ---------------------------------------
    def _run(self, ticket: Ticket) -> GroundedResponse:
        request, engine = ticket.payload, self._engine
        if engine is None:
            return self._answer(request, Status.STATUS_MODEL_ERROR, "model unloaded")
        frame, proposals = self.frames.match(
            CAMERA, request.frame, stamp_to_ns(request.frame.header.stamp), self._decode_proposals,
            tolerance_ns=int(self._p["proposal_tolerance_s"] * 1e9),
            max_age_ns=int(self._p["proposal_max_age_s"] * 1e9),
            search_older=request.camera_frame and engine.requested_mode(request.mode) == "auto")
        key = frame_key(frame.header, frame.rgb.shape)
        try:
            region = request.region() if request.region else None
            if region is not None:
                result = engine.ground_region(
                    frame.rgb, request.prompt, resolve_region(
                        frame.rgb.shape[:2], proposals,
                        lambda x, y: engine.segment_point(frame.rgb, (x, y), key)[0], **region),
                    proposals, key)
            else:
                result = engine.ground(
                    frame.rgb, request.prompt, mode=request.mode or None, proposals=proposals,
                    image_key=key, on_progress=self.goals.feedback(request.goal_handle),
                    should_stop=lambda: self.scheduler.should_stop(ticket),
                    accepted_at=ticket.accepted_at)
        except InputError as exc:
            return self._answer(request, Status.STATUS_BAD_INPUT, str(exc))
        response = result_to_msg(result, frame.header, request.request_id, request.prompt)
        if result.canceled:
            response.status = Status.STATUS_CANCELED
            response.error = ("canceled" if self.scheduler.is_open()
                              else "node deactivated during generation")
        # drawing costs ~10% of a small model's frame: only when someone is listening
        if self._p["publish_overlay"] and self._overlay_pub.get_subscription_count() > 0:
            self._overlay_pub.publish(rgb_to_image_msg(draw_overlay(frame.rgb, result.phrases),
                                                       frame.header))
        return response

    def _decode_proposals(self, msg, frame: Frame):
        """The message's proposals for `frame`, or None (logged) if they do not fit it."""
        if frame.rgb is None:
            return None
        try:
            return msg_to_proposals(msg, *frame.rgb.shape[:2])
        except ProposalError as exc:
            self.get_logger().warning(f"ignoring proposals for this frame: {exc}",
                                      throttle_duration_sec=5.0)
            return None

    def _canceled(self, ticket: Ticket, reason: str) -> GroundedResponse:
        return self._answer(ticket.payload, Status.STATUS_CANCELED, reason)

    def _failed(self, ticket: Ticket, exc: BaseException) -> GroundedResponse:
        release_memory(models_dropped=False)
        self.get_logger().error(f"request {ticket.payload.request_id} failed: "
                                f"{type(exc).__name__}: {exc}")
        return self._answer(ticket.payload, Status.STATUS_MODEL_ERROR,
                            f"{type(exc).__name__}: {exc}")

    def _answer(self, request: Request, status: int, error: str) -> GroundedResponse:
        header = request.frame.header if request.frame is not None else None
        model = self._engine.model_name if self._engine is not None else ""
        if status != Status.STATUS_OK:
            self.get_logger().warning(f"request {request.request_id}: {error}")
        return error_response(status, error, request.request_id, request.prompt, header, model)

    def _deliver(self, ticket: Ticket, response: GroundedResponse) -> None:
        """The one answer of a request: on 'response', and as the result of its goal."""
        if self._response_pub is not None:
            self._response_pub.publish(response)
        if ticket.payload.goal_handle is not None:
            self.goals.finish(ticket.payload.goal_handle, response)


def main(args=None) -> None:
    rclpy.init(args=args)
    node = GroundingNode()
    autostart(node)
    spin_nodes([node])


if __name__ == "__main__":
    main()
