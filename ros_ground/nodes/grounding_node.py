"""grounding_node: camera frames + language commands in, grounded responses out.

A lifecycle node (ros_ground.nodes.lifecycle): configure loads the models, activate opens
topics, the `ask` action and the `describe` service, deactivate answers what is queued and
closes them, cleanup frees the models. Requests are queued and run one at a time by a
ros_ground.scheduler.Scheduler, round-robin across each camera's `command`, `describe` and
`ask` (`cameras`: one model serves them all; one flooding source delays another by one request
at most); every request gets
exactly one GroundedResponse, on its camera's `response`. A command is answered NO_IMAGE when
its camera's newest frame was received more than `max_frame_age_s` ago. An accepted goal holds
no executor thread while it waits: it is executed (`goal_handle.execute`) when it starts.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.qos import qos_profile_sensor_data
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import EntityProposals, GroundedResponse
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ros_ground import requests, settings
from ros_ground.camera_watch import camera_topics
from ros_ground.engine import EngineConfig, build_engine_from_settings
from ros_ground.errors import InputError
from ros_ground.frames import DepthStore, FrameStore
from ros_ground.image_codec import ImageDecodeError, image_to_depth
from ros_ground.nodes import params
from ros_ground.nodes.camera_input import CameraInput
from ros_ground.nodes.common import RELIABLE, autostart, frame_key, qos_by_name, release_memory, spin_nodes
from ros_ground.nodes.conversions import (
    ProposalError,
    camera_info_to_k,
    error_response,
    image_msg_to_rgb,
    msg_to_proposals,
    result_to_msg,
    rgb_to_image_msg,
    stamp_to_ns,
)
from ros_ground.nodes.goals import PendingGoals
from ros_ground.nodes.lifecycle import ModelNode
from ros_ground.nodes.markers import response_markers
from ros_ground.overlay import draw_overlay
from ros_ground.requests import Frame, Request
from ros_ground.scheduler import Rejected, Scheduler, Ticket
from ros_ground.spatial import locate_result

Status = GroundedResponse
CAMERA = ""  # the default camera's name; FrameStore and Scheduler are keyed by camera name
_STATUS = {requests.BAD_INPUT: Status.STATUS_BAD_INPUT, requests.NO_IMAGE: Status.STATUS_NO_IMAGE}


class GroundingNode(ModelNode):
    def __init__(self, name: str = "grounding_node", sam_provider: Callable | None = None,
                 **kwargs):
        super().__init__(name, settings.GROUNDING, **kwargs)
        self._sam_provider = sam_provider
        self._engine = None
        self._p = params.values(self, settings.GROUNDING)  # checked at configure
        # camera -> lifecycle publisher
        self._response_pubs, self._overlay_pubs, self._markers_pubs = {}, {}, {}
        self._cameras: list[str] = []
        self.inputs: dict[str, CameraInput] = {}
        self.frames = FrameStore()
        self.depth = DepthStore()  # registered depth and K per camera, for 3-D positions
        self._proposals_topics: dict[str, str] = {}
        self._ids = itertools.count(1)
        self.goals = PendingGoals()
        self.scheduler = Scheduler(self._run, self._deliver, self._canceled, self._failed,
                                   queue_size=self._p["queue_size"], name=f"{name}-worker",
                                   started=self._started)

    # ---- lifecycle -------------------------------------------------------------------------
    def load(self, p: dict) -> None:
        qos_by_name(p["image_qos"])
        sam = None
        if self._sam_provider is not None:
            sam = self._sam_provider(p["sam_model"], p["sam_checkpoint"] or None, p["device"])
        started = time.perf_counter()
        self._engine = build_engine_from_settings(p, sam=sam)
        self._cameras = list(p["cameras"])
        for camera, response, overlay in zip(self._cameras, camera_topics(self._cameras, "response"),
                                             camera_topics(self._cameras, "overlay")):
            self._response_pubs[camera] = self.lifecycle_publisher(GroundedResponse, response,
                                                                   RELIABLE)
            self._overlay_pubs[camera] = self.lifecycle_publisher(Image, overlay, RELIABLE)
        for camera, markers in zip(self._cameras, camera_topics(self._cameras, "markers")):
            self._markers_pubs[camera] = self.lifecycle_publisher(MarkerArray, markers, RELIABLE)
        self.apply(p)
        self.get_logger().info(f"loaded model {p['model']!r} and SAM {p['sam_model']!r} on "
                               f"{self._engine.lmm.device} in {time.perf_counter() - started:.1f} s")

    def unload(self) -> None:
        self._engine = None
        self._response_pubs, self._overlay_pubs, self._markers_pubs = {}, {}, {}
        self.frames.clear()
        self.depth.clear()

    def open(self, p: dict) -> None:
        sensors, commands = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        names, self.inputs = self._cameras, {}
        for camera, image, proposals, command in zip(
                names, camera_topics(names, "image"), camera_topics(names, "proposals"),
                camera_topics(names, "command")):
            sub = self.opened(self.create_subscription(
                EntityProposals, proposals, lambda m, c=camera: self._on_proposals(c, m),
                RELIABLE, callback_group=sensors))
            self._proposals_topics[camera] = sub.topic_name  # resolved: namespace, remappings
            self.inputs[camera] = self.opened(CameraInput(
                self, image, lambda m, c=camera: self._on_image(c, m),
                transport=p["image_transport"], qos_name=p["image_qos"], callback_group=sensors))
            self.opened(self.create_subscription(
                String, command, lambda m, c=camera: self._on_command(c, m), RELIABLE,
                callback_group=commands))
        # depth follows its publishers' reliability (image_qos `auto`): a best-effort reader
        # loses large frames of a reliable driver, and a lost depth frame leaves the phrases
        # of its colour frame without positions; camera_info is small, best effort hears all
        self.depth_inputs = {}
        for camera, depth, info in zip(names, camera_topics(names, "depth"),
                                       camera_topics(names, "camera_info")):
            self.depth_inputs[camera] = self.opened(CameraInput(
                self, depth, lambda m, c=camera: self._on_depth(c, m), qos_name="auto",
                callback_group=sensors))
            self.opened(self.create_subscription(
                CameraInfo, info, lambda m, c=camera: self._on_camera_info(c, m),
                qos_profile_sensor_data, callback_group=sensors))
        sources = [*self.inputs.values(), *self.depth_inputs.values()]
        self.opened(self.create_timer(
            1.0, lambda: [source.check() for source in sources], callback_group=sensors))
        self.opened(self.create_service(Trigger, "describe", self._on_describe,
                                        callback_group=commands))
        self.opened(ActionServer(
            # every goal is executed by self.goals with its own callback: this default never runs
            self, Ground, "ask", execute_callback=lambda handle: Ground.Result(),
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            handle_accepted_callback=self._on_goal, cancel_callback=self._on_cancel,
            # keep-all, as for commands: the default history (10) drops a burst of goals
            goal_service_qos_profile=RELIABLE, result_service_qos_profile=RELIABLE,
            cancel_service_qos_profile=RELIABLE, callback_group=ReentrantCallbackGroup()))
        self.scheduler.open()
        self.get_logger().info(f"active: send a std_msgs/String on {camera_topics(names, 'command')} "
                               "or a goal to 'ask'")

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
    def _decode(self, msg, what: str, received_ns: int | None = None) -> Frame:
        try:
            return Frame(msg.header, image_msg_to_rgb(msg, self._p["max_image_pixels"]),
                         received_ns=received_ns)
        except ImageDecodeError as exc:
            self.get_logger().warning(f"bad image on {what!r}: {exc}", throttle_duration_sec=5.0)
            return Frame(msg.header, None, f"bad image: {exc}", received_ns)

    def _on_image(self, camera: str, msg) -> None:
        source = self.inputs[camera]
        keep = self.count_publishers(self._proposals_topics[camera]) > 0  # else nothing to pair
        self.frames.add_frame(camera, stamp_to_ns(msg.header.stamp),
                              self._decode(msg, source.topic, source.last_received_ns),
                              int(self._p["proposal_max_age_s"] * 1e9), keep)

    def _on_depth(self, camera: str, msg: Image) -> None:
        self.depth.add_depth(camera, stamp_to_ns(msg.header.stamp), msg,  # decoded when used
                             int(self._p["proposal_max_age_s"] * 1e9))

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        try:
            self.depth.set_intrinsics(camera, camera_info_to_k(msg))
        except ValueError as exc:
            self.get_logger().warning(f"ignoring camera_info: {exc}", throttle_duration_sec=5.0)

    def _on_proposals(self, camera: str, msg: EntityProposals) -> None:
        self.frames.add_proposals(camera, stamp_to_ns(msg.header.stamp), msg)

    def _on_command(self, camera: str, msg: String) -> None:
        self._submit(Request(self._next_id(), msg.data, "", self.frames.latest(camera),
                             camera=camera), "command")

    def _on_describe(self, request, response):
        request = Request(self._next_id(), self._p["default_prompt"], "",
                          self.frames.latest(self._cameras[0]), camera=self._cameras[0])
        error = self._submit(request, "describe")[1]
        response.success = not error
        response.message = error or request.request_id
        return response

    def _on_goal(self, goal_handle) -> None:
        goal = goal_handle.request
        own = bool(goal.image.width or goal.image.height or len(goal.image.data))
        camera = goal.camera or self._cameras[0]
        frame = self._decode(goal.image, "ask") if own else self.frames.latest(camera)
        request_id = f"goal-{bytes(goal_handle.goal_id.uuid).hex()[:12]}"
        request = Request(request_id, goal.prompt, goal.mode, frame, goal_handle, not own, camera)
        self.goals.track(goal_handle, lambda: self._submit(request, "ask")[0])

    def _on_cancel(self, goal_handle) -> CancelResponse:
        ticket = self.goals.ticket(goal_handle)
        if ticket is not None:
            self.scheduler.cancel(ticket)
        return CancelResponse.ACCEPT

    def _next_id(self) -> str:
        return f"{self.get_name()}-{next(self._ids)}"

    def _submit(self, request: Request, kind: str) -> tuple[Ticket | None, str]:
        """Queue a request (its ticket, ""), or answer it at once (None, why: bad input, busy)."""
        problem = self._precheck(request)
        if problem is None:
            try:
                return self.scheduler.submit(request, f"{request.camera}/{kind}"), ""
            except Rejected as exc:
                problem = (Status.STATUS_REJECTED_BUSY, str(exc))
        self._deliver(Ticket(request), self._answer(request, *problem))
        return None, problem[1]

    def _precheck(self, request: Request) -> tuple[int, str] | None:
        problem = requests.precheck(
            request, cameras=self._cameras, now_ns=self.get_clock().now().nanoseconds,
            topics={camera: source.topic for camera, source in self.inputs.items()},
            max_prompt_chars=self._p["max_prompt_chars"],
            max_frame_age_s=self._p["max_frame_age_s"])
        if problem is not None:
            return _STATUS[problem[0]], problem[1]
        if self._engine is None:
            return Status.STATUS_MODEL_ERROR, "no model loaded (configure failed or not run)"
        return None

    # ---- the scheduler's callbacks (run on its worker) ---------------------------------------
    def _started(self, ticket: Ticket) -> None:
        if ticket.payload.goal_handle is not None:
            self.goals.start(ticket.payload.goal_handle)  # now EXECUTING, until `_deliver`

    def _run(self, ticket: Ticket) -> GroundedResponse:
        request, engine = ticket.payload, self._engine
        if engine is None:
            return self._answer(request, Status.STATUS_MODEL_ERROR, "model unloaded")
        frame, proposals = self.frames.match(
            request.camera, request.frame, stamp_to_ns(request.frame.header.stamp),
            self._decode_proposals,
            tolerance_ns=int(self._p["proposal_tolerance_s"] * 1e9),
            max_age_ns=int(self._p["proposal_max_age_s"] * 1e9),
            search_older=request.camera_frame and engine.requested_mode(request.mode) == "auto")
        try:
            result = engine.ground(
                frame.rgb, request.prompt, mode=request.mode or None, proposals=proposals,
                image_key=frame_key(frame.header, frame.rgb.shape),
                on_progress=self.goals.feedback(request.goal_handle),
                should_stop=lambda: self.scheduler.should_stop(ticket),
                accepted_at=ticket.accepted_at)
        except InputError as exc:
            return self._answer(request, Status.STATUS_BAD_INPUT, str(exc))
        self._locate(request.camera, result, frame.header)
        response = result_to_msg(result, frame.header, request.request_id, request.prompt)
        if result.canceled:
            response.status = Status.STATUS_CANCELED
            response.error = ("canceled" if self.scheduler.is_open()
                              else "node deactivated during generation")
        # drawing costs ~10% of a small model's frame: only when someone is listening
        overlay = self._overlay_pubs.get(request.camera)
        if self._p["publish_overlay"] and overlay and overlay.get_subscription_count() > 0:
            overlay.publish(rgb_to_image_msg(draw_overlay(frame.rgb, result.phrases), frame.header))
        markers = self._markers_pubs.get(request.camera)
        if markers and markers.get_subscription_count() > 0:
            markers.publish(response_markers(response))
        return response

    def _locate(self, camera: str, result, header: Header) -> None:
        """3-D position and size of every phrase from the camera's depth frame matched to the
        grounded frame by stamp; without depth or camera_info the phrases keep NaN positions."""
        if not self.depth.has_depth(camera):
            return
        depth = self.depth.depth_near(camera, stamp_to_ns(header.stamp),
                                      int(self._p["depth_tolerance_s"] * 1e9))
        k = self.depth.intrinsics(camera)
        if depth is None or k is None:
            what = "no depth within depth_tolerance_s" if depth is None else "no camera_info yet"
            self.get_logger().warning(f"phrases without 3-D positions: {what}",
                                      throttle_duration_sec=5.0)
            return
        try:
            locate_result(result, image_to_depth(depth, self._p["max_image_pixels"]), k)
        except ValueError as exc:  # ImageDecodeError included
            self.get_logger().warning(f"phrases without 3-D positions: {exc}",
                                      throttle_duration_sec=5.0)

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
        """The one answer of a request: on its camera's 'response', and as its goal's result."""
        publisher = self._response_pubs.get(ticket.payload.camera)
        if publisher is not None:
            publisher.publish(response)
        if ticket.payload.goal_handle is not None:
            self.goals.finish(ticket.payload.goal_handle, response)


def main(args=None) -> None:
    rclpy.init(args=args)
    node = GroundingNode()
    autostart(node)
    spin_nodes([node])


if __name__ == "__main__":
    main()
