"""grounding_node: camera frames + language commands in, grounded responses out.

A lifecycle node (ros_ground.nodes.lifecycle): configure loads the models, activate opens
topics, the `ask` action and the `describe` service, deactivate answers what is queued, clears
the latched markers and closes them, cleanup frees the models. Requests are queued and run one at a time by a
ros_ground.scheduler.Scheduler, round-robin across each camera's `command`, `describe`, `ask`
and `clicked_point` (`cameras`: one model serves them all; one flooding source delays another
by one request at most); every request gets exactly one GroundedResponse, on its camera's
`response`. A command is answered NO_IMAGE when its camera's newest frame was received more
than `max_frame_age_s` ago; one whose frame grew older while it was queued grounds the newest
frame when it starts (requests.at_start). An accepted goal holds no executor thread while it
waits: it is executed (`goal_handle.execute`) when it starts. A goal's region, or a point
clicked in rviz, makes the request about the entity there (ros_ground.regions); the sensor
streams are kept by nodes/camera_sensors.py, the answers published by nodes/outputs.py.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable

from geometry_msgs.msg import PointStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import GroundedResponse
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ros_ground import requests, settings
from ros_ground.camera_watch import ProposalFlow, camera_topics
from ros_ground.engine import EngineConfig, build_engine_from_settings
from ros_ground.errors import InputError
from ros_ground.model_specs import check_model_specs
from ros_ground.nodes import params
from ros_ground.nodes.camera_sensors import CameraSensors
from ros_ground.nodes.common import RELIABLE, check_type_support, frame_key, now_ns, release_memory, say_twins
from ros_ground.nodes.conversions import error_response, msg_to_mask, result_to_msg
from ros_ground.nodes.goals import PendingGoals
from ros_ground.nodes.lifecycle import ModelNode
from ros_ground.nodes.outputs import CameraOutputs
from ros_ground.nodes.process import run_executable
from ros_ground.regions import click_region, goal_region
from ros_ground.requests import Request
from ros_ground.scheduler import Closed, Rejected, Scheduler, Ticket

Status = GroundedResponse
CAMERA = ""  # the default camera's name; FrameStore and Scheduler are keyed by camera name
# the position_error of a goal's own image that is none of the camera's frames
OWN_IMAGE_UNLOCATED = ("the goal's own image is none of the camera's recent frames (same stamp and "
                       "pixels), so no depth frame is registered to it")
_STATUS = {requests.BAD_INPUT: Status.STATUS_BAD_INPUT, requests.NO_IMAGE: Status.STATUS_NO_IMAGE}


class GroundingNode(ModelNode):
    """Answers commands, goals and clicks about its cameras' frames with grounded text.

    One Scheduler turn per request (one at a time, fair between cameras and sources); each gets
    exactly one GroundedResponse or goal result. Topics, parameters: README, "Nodes".
    """
    def __init__(self, name: str = "grounding_node", sam_provider: Callable | None = None,
                 **kwargs):
        super().__init__(name, settings.GROUNDING, **kwargs)
        self._sam_provider = sam_provider
        self._engine = None
        self._ask = None  # the `ask` action server, from the first activate to cleanup
        self._eager_said = 0  # requests decoded eagerly with compile on, already logged
        self._p = params.values(self, settings.GROUNDING)  # checked at configure
        self._cameras: list[str] = []
        self._flows: dict[str, ProposalFlow] = {}  # camera -> its proposals' flow, while active
        self._no_frame_id_said: set[str] = set()
        self.sensors = CameraSensors(self, self._p)
        self.frames = self.sensors.frames
        self._ids = itertools.count(1)
        # names this node and this start: request ids stay unique across namespaces and restarts
        self._id_prefix = f"{self.get_fully_qualified_name()}-{secrets.token_hex(3)}"
        self.goals = PendingGoals()
        self.outputs = CameraOutputs(self.goals)
        deliver = lambda ticket, response: self.outputs.deliver(ticket.payload, response)  # noqa: E731
        self.scheduler = Scheduler(self._run, deliver, self._canceled, self._failed,
                                   queue_size=self._p["queue_size"], name=f"{name}-worker",
                                   started=self._started)

    # ---- lifecycle -------------------------------------------------------------------------
    def load(self, p: dict) -> None:
        check_type_support(GroundedResponse)  # a msg/ mismatch fails at once, not after the models load
        sam = None
        # both models' specs before the shared SAM loads: every problem in one error
        check_model_specs(p["model"], p["sam_model"], p["sam_checkpoint"] or None, p["device"],
                          p["allow_download"], p["spacy_model"])
        if self._sam_provider is not None:
            sam = self._sam_provider(p["sam_model"], p["sam_checkpoint"] or None, p["device"])
        started = time.perf_counter()
        self._engine = build_engine_from_settings(p, sam=sam)
        self._cameras = list(p["cameras"])
        self.outputs.create(self, self._cameras)
        self.apply(p)
        self.get_logger().info(f"loaded model {p['model']!r} and SAM {p['sam_model']!r} on "
                               f"{self._engine.lmm.device} in {time.perf_counter() - started:.1f} s")
        self.warm_up(p)

    def warm_up(self, p: dict) -> None:
        """With compiled decoding, compile the decode step now rather than in the first request."""
        lmm = self._engine.lmm
        if lmm.decoder is None:
            return
        self.get_logger().info(f"compile={p['compile']}: compiling the decode step (~30-60 s on a "
                               "2-core CPU the first time, seconds once inductor has cached it)")
        started = time.perf_counter()
        self._eager_said = 0
        try:
            length = self._engine.warm_up(p["default_prompt"], p["max_new_tokens"])
        except Exception as exc:  # e.g. no C++ compiler for inductor: same answers, eagerly
            lmm.decoder = None
            self.get_logger().warning(f"compiling the decode step failed ({type(exc).__name__}: "
                                      f"{exc}); decoding eagerly")
            return
        self.get_logger().info(f"decode step compiled in {time.perf_counter() - started:.1f} s "
                               f"for up to {length} tokens (prompt + answer); longer requests "
                               "decode eagerly")

    def unload(self) -> None:
        if self._engine is not None and self._engine.lmm.decoder is not None:
            self._engine.lmm.decoder.release()
        self._engine = self._ask = None  # the server was destroyed with the configured ones
        self.outputs.clear()
        self.sensors.clear()

    def open(self, p: dict) -> None:
        sensors, commands = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        for entity in self.sensors.open(self._cameras, sensors):
            self.opened(entity)
        self._flows = {camera: ProposalFlow(self.resolve_topic_name(topic)) for camera, topic
                       in zip(self._cameras, camera_topics(self._cameras, "proposals"))}
        self._no_frame_id_said.clear()
        self.opened(self.create_timer(2.0, self._watch_proposals, callback_group=sensors))
        for camera, command in zip(self._cameras, camera_topics(self._cameras, "command")):
            self.opened(self.create_subscription(
                String, command, lambda m, c=camera: self._on_command(c, m), RELIABLE,
                callback_group=commands))
        self.opened(self.create_subscription(PointStamped, "clicked_point", self._on_click,
                                             RELIABLE, callback_group=commands))
        self.opened(self.create_service(Trigger, "describe", self._on_describe,
                                        callback_group=commands))
        if self._ask is None:  # made at the first activate, kept until cleanup: see configured
            self._ask = self.configured(ActionServer(
                # every goal is executed by self.goals with its own callback: this one never runs
                self, Ground, "ask", execute_callback=lambda handle: Ground.Result(),
                goal_callback=self._on_goal_request, handle_accepted_callback=self._on_goal,
                cancel_callback=self._on_cancel,
                # keep-all, as for commands: the default history (10) drops a burst of goals
                goal_service_qos_profile=RELIABLE, result_service_qos_profile=RELIABLE,
                cancel_service_qos_profile=RELIABLE, callback_group=ReentrantCallbackGroup()))
        self.scheduler.open()
        say_twins(self, "each command, click and describe gets a response from each")
        self.get_logger().info(f"active: send a std_msgs/String on {camera_topics(self._cameras, 'command')},"
                               " a goal to 'ask' or a point on 'clicked_point'")

    def before_close(self) -> None:
        self.scheduler.close("node deactivated")
        self.goals.wait_finished(timeout=10.0)  # let the answered goals' results go out
        self.outputs.withdraw(self.get_clock().now().to_msg())

    def before_release(self) -> None:
        self.goals.settle(timeout=10.0)

    def apply(self, p: dict) -> None:
        self._p = self.sensors.p = p
        self.scheduler.queue_size = p["queue_size"]
        if self._engine is not None:
            self._engine.config = EngineConfig.from_settings(p)

    def shutdown_worker(self) -> None:
        self.scheduler.stop("node shutting down")
        self.goals.give_up("node shut down before the request ended")  # ran past stop's timeout

    # ---- requests --------------------------------------------------------------------------
    def _on_command(self, camera: str, msg: String) -> None:
        self._submit(Request(self._next_id(), msg.data, "", self.frames.latest(camera),
                             camera=camera), "command")

    def _on_click(self, msg: PointStamped) -> None:
        """rviz's Publish Point: `region_prompt` about the entity under the point (regions.click_region)."""
        latest = {camera: self.frames.latest(camera) for camera in self._cameras}
        camera = requests.camera_of(msg.header.frame_id, latest)
        frames = {c: f.header.frame_id for c, f in latest.items() if f is not None}
        alike = [c for c, f in frames.items() if f == msg.header.frame_id]
        if len(alike) > 1:
            self.get_logger().warning(
                f"cameras {', '.join(map(repr, alike))} all publish images in frame "
                f"{msg.header.frame_id!r}: a click there goes to {camera!r} (give each camera "
                "its own optical frame)", throttle_duration_sec=30.0)
        request = Request(self._next_id(), self._p["region_prompt"], "", latest[camera],
                          camera=camera)
        others = [f for c, f in frames.items() if c != camera]
        self._submit(request, "clicked_point", lambda frame: click_region(
            msg, frame, lambda: self.sensors.registered_depth(camera, frame.header, frame.rgb.shape[:2]),
            others))

    def _on_describe(self, request, response):
        request = Request(self._next_id(), self._p["default_prompt"], "",
                          self.frames.latest(self._cameras[0]), camera=self._cameras[0])
        error = self._submit(request, "describe")[1]
        response.success = not error
        response.message = error or request.request_id
        return response

    def _on_goal_request(self, goal) -> GoalResponse:
        # the server lives from the first activate to cleanup, so that the results of goals
        # answered at deactivate reach their clients; while inactive it takes no goal
        if self.scheduler.is_open():
            return GoalResponse.ACCEPT
        self.get_logger().warning("ask goal rejected: the node is not active",
                                  throttle_duration_sec=5.0)
        return GoalResponse.REJECT

    def _on_goal(self, goal_handle) -> None:
        goal = goal_handle.request
        own = bool(goal.image.width or goal.image.height or len(goal.image.data))
        camera = goal.camera or self._cameras[0]
        frame = self.sensors.decode(goal.image, "ask") if own else self.frames.latest(camera)
        request_id = f"goal-{bytes(goal_handle.goal_id.uuid).hex()[:12]}"
        request = Request(request_id, goal.prompt, goal.mode, frame, goal_handle, not own, camera)
        region = lambda frame: goal_region(goal, msg_to_mask)  # noqa: E731
        self.goals.track(goal_handle, lambda: self._submit(request, "ask", region)[0])

    def _on_cancel(self, goal_handle) -> CancelResponse:
        ticket = self.goals.ticket(goal_handle)
        if ticket is not None:
            self.scheduler.cancel(ticket)
        return CancelResponse.ACCEPT

    def _next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def _submit(self, request: Request, kind: str,
                region: Callable | None = None) -> tuple[Ticket | None, str]:
        """Queue a request (its ticket, ""), or answer it at once (None, why: bad input, busy).
        `region(frame)` gives the resolve_region keywords of a request about a region."""
        problem = self._precheck(request, region)
        if problem is None:
            try:
                return self.scheduler.submit(request, f"{request.camera}/{kind}"), ""
            except Closed as exc:  # deactivating: as a request queued then is answered
                problem = (Status.STATUS_CANCELED, str(exc))
            except Rejected as exc:
                problem = (Status.STATUS_REJECTED_BUSY, str(exc))
        self.outputs.deliver(request, self._answer(request, *problem))
        return None, problem[1]

    def _why_stale(self, camera: str) -> str:  # asked of known cameras only: precheck's order
        return self.sensors.inputs[camera].stale_reason(self._p["max_frame_age_s"])

    def _precheck(self, request: Request, region: Callable | None) -> tuple[int, str] | None:
        problem = requests.precheck(
            request, cameras=self._cameras, now_ns=now_ns(self),
            topics={camera: source.topic for camera, source in self.sensors.inputs.items()},
            max_prompt_chars=self._p["max_prompt_chars"],
            max_frame_age_s=self._p["max_frame_age_s"],
            clean_prompt=self._engine.lmm.clean_prompt if self._engine is not None else None,
            why_stale=self._why_stale)
        problem = self._with_input_hint(request, problem)
        if problem is None and region is not None:
            problem = requests.attach_region(request, region)
        if problem is not None:
            return _STATUS[problem[0]], problem[1]
        if self._engine is None:
            return Status.STATUS_MODEL_ERROR, "no model loaded (configure failed or not run)"
        return None

    def _with_input_hint(self, request: Request, problem):
        """A NO_IMAGE `problem` with what its camera's input can tell (CameraInput.no_image_hint)."""
        source = self.sensors.inputs.get(request.camera)
        if problem is None or problem[0] != requests.NO_IMAGE or source is None:
            return problem
        return problem[0], problem[1] + source.no_image_hint(request.frame is not None)

    def _watch_proposals(self) -> None:
        now = time.monotonic()
        for camera, flow in self._flows.items():
            source = self.sensors.inputs.get(camera)
            change = flow.update(now, self.frames.proposals_received(camera),
                                 self.count_publishers(flow.topic), source and source.age_s())
            # one call site per severity: rclpy refuses a call site whose severity changes
            if change and flow.stopped:
                self.get_logger().warning(change)
            elif change:
                self.get_logger().info(change)

    def _say_no_frame_id(self, request: Request, camera_frame: bool) -> None:
        """Warn once per source (a camera's topic, goals' own images) of frames without a
        frame_id: they are grounded, but their responses, positions and markers name no tf
        frame (rviz drops the markers, a tf lookup fails)."""
        source = self.sensors.inputs.get(request.camera)
        what = (f"frames on {source.topic!r}" if camera_frame and source else
                f"ask goals' own images for camera {request.camera!r}")
        if what not in self._no_frame_id_said:
            self._no_frame_id_said.add(what)
            self.get_logger().warning(
                f"{what} have an empty header.frame_id: their responses, 3-D positions and markers "
                "name no tf frame; set it to the camera's optical frame")

    def _say_if_eager(self, engine) -> None:
        decoder = engine.lmm.decoder
        if decoder is not None and decoder.eager_requests > self._eager_said:
            self._eager_said = decoder.eager_requests
            self.get_logger().warning(
                f"{decoder.eager_requests} request(s) did not fit the compiled decode step "
                f"({decoder.cache_length} tokens of prompt + max_new_tokens, one image size) and "
                "were decoded eagerly: same answers, slower (a raised max_new_tokens or a longer "
                "default_prompt is compiled for at the next configure)",
                throttle_duration_sec=60.0)

    # ---- the scheduler's callbacks (run on its worker) ---------------------------------------
    def _started(self, ticket: Ticket) -> None:
        if ticket.payload.goal_handle is not None:
            self.goals.start(ticket.payload.goal_handle)  # now EXECUTING, until its answer

    def _run(self, ticket: Ticket) -> GroundedResponse:
        request, engine = ticket.payload, self._engine
        if engine is None:
            return self._answer(request, Status.STATUS_MODEL_ERROR, "model unloaded")
        source = self.sensors.inputs.get(request.camera)
        problem = requests.at_start(
            request, self.frames.latest(request.camera), now_ns=now_ns(self),
            max_frame_age_s=self._p["max_frame_age_s"], topic=getattr(source, "topic", "image"),
            why_stale=self._why_stale)
        problem = self._with_input_hint(request, problem)
        if problem is not None:
            return self._answer(request, _STATUS[problem[0]], problem[1])
        # only `auto` may ground an older frame that has proposals; never a goal's own image,
        # nor a region whose pixels were given on this frame. A goal's own image takes the
        # camera's proposals and depth only when it is one of the camera's frames: a client's
        # own picture stamped near a camera frame is not that frame
        older = (request.camera_frame and request.region is None
                 and engine.requested_mode(request.mode) == "auto")
        camera_frame = request.camera_frame or self.sensors.is_camera_frame(request.camera, request.frame)
        frame, proposals = (self.sensors.match(request.camera, request.frame, older) if camera_frame
                            else (request.frame, None))
        if not frame.header.frame_id:
            self._say_no_frame_id(request, camera_frame)
        depth = (self.sensors.pin_depth(request.camera, frame.header, frame.rgb.shape[:2])
                 if camera_frame else None)
        try:
            result = requests.ground(
                engine, request, frame, proposals, accepted_at=ticket.accepted_at,
                # a goal's own image is named by its pixels: clients send one header for all
                image_key=(frame_key(frame.header, frame.rgb, source.topic)
                           if request.camera_frame and source is not None else None),
                on_progress=self.goals.feedback(request.goal_handle),
                should_stop=lambda: self.scheduler.should_stop(ticket))
        except InputError as exc:
            return self._answer(request, Status.STATUS_BAD_INPUT, str(exc))
        self._say_if_eager(engine)
        unlocated = (self.sensors.locate(request.camera, result, frame.header, depth)
                     if camera_frame else OWN_IMAGE_UNLOCATED)
        if unlocated and camera_frame and request.camera in self.sensors.depth_inputs:
            unlocated += self.sensors.depth_inputs[request.camera].transport_hint()  # depth_transport
        response = result_to_msg(result, frame.header, request.request_id, request.prompt)
        response.position_error = unlocated
        if result.canceled:
            response.status = Status.STATUS_CANCELED
            response.error = ("canceled" if self.scheduler.is_open() else
                              f"{self.scheduler.closed_because} during generation")
        self.outputs.show(request.camera, frame, result, response, self._p["publish_overlay"])
        return response

    def _canceled(self, ticket: Ticket, reason: str) -> GroundedResponse:
        # a queued request's reason is the scheduler's ("node deactivated") or the client's
        return self._answer(ticket.payload, Status.STATUS_CANCELED,
                            reason if self.scheduler.is_open() else f"{reason} before the request ran")

    def _failed(self, ticket: Ticket, exc: BaseException) -> GroundedResponse:
        try:
            release_memory()
        except Exception as freeing:  # noqa: BLE001 - the request is answered whatever the allocator says
            self.get_logger().warning(f"freeing memory after a failed request: {freeing}")
        self.get_logger().error(f"request {ticket.payload.request_id} failed: "
                                f"{type(exc).__name__}: {exc}")
        return self._answer(ticket.payload, Status.STATUS_MODEL_ERROR,
                            f"{type(exc).__name__}: {exc}")

    def _answer(self, request: Request, status: int, error: str) -> GroundedResponse:
        header = request.frame.header if request.frame is not None else None
        model = self._engine.lmm.name if self._engine is not None else ""
        if status != Status.STATUS_OK:
            # one line per 5 s: a flood of bad commands must not flood /rosout; each is answered
            self.get_logger().warning(f"request {request.request_id}: {error}", throttle_duration_sec=5.0)
        prompt = requests.echoed_prompt(request.prompt, self._p["max_prompt_chars"])
        return error_response(status, error, request.request_id, prompt, header, model)


def main(args=None) -> None:
    run_executable([GroundingNode], args)


if __name__ == "__main__":
    main()
