"""grounding_node: camera frames + language commands in, grounded responses out.

A lifecycle node: configure loads the models, activate opens topics, the action and the
service, deactivate closes them (answering anything still queued), cleanup frees the models.
Requests run one at a time on a worker thread; a bounded queue holds the rest, and every
command gets exactly one GroundedResponse, whether OK or an explicit rejection.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import EntityProposals, GroundedResponse
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from ros_ground.engine import MODES, EngineConfig
from ros_ground.image_codec import ImageDecodeError
from ros_ground.nodes import params
from ros_ground.nodes.common import (
    RELIABLE,
    autostart,
    frame_key,
    freeze_loaded_objects,
    qos_by_name,
    spin_nodes,
    thaw_loaded_objects,
)
from ros_ground.nodes.conversions import (
    ProposalError,
    error_response,
    image_msg_to_rgb,
    msg_to_proposals,
    phrase_to_msg,
    result_to_msg,
    rgb_to_image_msg,
    stamp_to_ns,
)
from ros_ground.overlay import draw_overlay

Status = GroundedResponse
RECENT_FRAMES_MAX = 256  # memory bound on the frames kept for `proposal_max_age_s`


@dataclass
class Frame:
    """The latest camera frame, decoded once on arrival (or the reason it could not be)."""

    header: Header
    rgb: object = None  # HxWx3 uint8, or None when decoding failed
    error: str = ""


@dataclass
class Request:
    request_id: str
    prompt: str
    mode: str
    frame: Frame
    goal_handle: object = None
    camera_frame: bool = True  # False for a goal's own image: never swapped for another frame
    done: threading.Event = field(default_factory=threading.Event)
    response: GroundedResponse | None = None
    accepted_at: float = field(default_factory=time.perf_counter)


class GroundingNode(LifecycleNode):
    def __init__(self, name: str = "grounding_node", sam_provider: Callable | None = None,
                 **kwargs):
        super().__init__(name, **kwargs)
        params.declare(self, params.GROUNDING_PARAMS)
        self._sam_provider = sam_provider
        self._engine = None
        self._frame: Frame | None = None
        self._proposals: deque[EntityProposals] = deque(maxlen=16)
        # camera frames of the last `proposal_max_age_s`, to pair with proposals that arrive
        # after newer frames (the proposal node takes seconds a frame on a CPU)
        self._recent: deque[Frame] = deque(maxlen=RECENT_FRAMES_MAX)
        self._recent_lock = threading.Lock()
        self._proposals_topic = "proposals"
        self._queue: deque[Request] = deque()
        self._cond = threading.Condition()
        self._active = False
        self._busy = False
        self._stopping = False
        self._ids = itertools.count(1)
        self._io = []
        self._worker = threading.Thread(target=self._work, name=f"{name}-worker", daemon=True)
        self._worker.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ---- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        from ros_ground.engine import build_engine

        p = params.values(self, params.GROUNDING_PARAMS)
        try:
            qos_by_name(p["image_qos"])
            config = self._engine_config(p)
            sam = None
            if self._sam_provider is not None:
                sam = self._sam_provider(p["sam_model"], p["sam_checkpoint"] or None, p["device"])
            started = time.perf_counter()
            self._engine = build_engine(
                model=p["model"], sam_model=p["sam_model"],
                sam_checkpoint=p["sam_checkpoint"] or None, device=p["device"],
                dtype=p["dtype"], trust_remote_code=p["trust_remote_code"],
                allow_download=p["allow_download"],
                spacy_model=p["spacy_model"], config=config, sam=sam,
            )
        except Exception as exc:  # any load failure must leave the node up and reconfigurable
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._engine = None
            return TransitionCallbackReturn.FAILURE
        freeze_loaded_objects()
        self.get_logger().info(
            f"loaded model {p['model']!r} and SAM {p['sam_model']!r} on "
            f"{self._engine.lmm.device} in {time.perf_counter() - started:.1f} s"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        p = params.values(self, params.GROUNDING_PARAMS)
        sensors = MutuallyExclusiveCallbackGroup()
        commands = MutuallyExclusiveCallbackGroup()
        self._response_pub = self.create_publisher(GroundedResponse, "response", RELIABLE)
        self._overlay_pub = self.create_publisher(Image, "overlay", RELIABLE)
        proposals = self.create_subscription(EntityProposals, "proposals", self._on_proposals,
                                             RELIABLE, callback_group=sensors)
        self._proposals_topic = proposals.topic_name  # resolved: namespace and remappings
        self._io = [
            self._response_pub,
            self._overlay_pub,
            self.create_subscription(Image, "image", self._on_image, qos_by_name(p["image_qos"]),
                                     callback_group=sensors),
            proposals,
            self.create_subscription(String, "command", self._on_command, RELIABLE,
                                     callback_group=commands),
            self.create_service(Trigger, "describe", self._on_describe, callback_group=commands),
        ]
        self._action = ActionServer(
            self, Ground, "ask", execute_callback=self._execute_goal,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda handle: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        with self._cond:
            self._active = True
        self.get_logger().info("active: send a std_msgs/String on 'command' or a goal to 'ask'")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        with self._cond:
            self._active = False
            pending = list(self._queue)
            self._queue.clear()
        for request in pending:
            self._finish(request, self._failure(request, Status.STATUS_CANCELED,
                                                "node deactivated before the request ran"))
        with self._cond:  # the running request stops at its next token; let it answer first
            self._cond.wait_for(lambda: not self._busy, timeout=60.0)
        self._close_io()
        self._response_pub = None
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._engine = None
        self._frame = None
        self._proposals.clear()
        with self._recent_lock:
            self._recent.clear()
        _free_memory(models_dropped=True)
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.shutdown_worker()
        return TransitionCallbackReturn.SUCCESS

    def shutdown_worker(self) -> None:
        with self._cond:
            self._active = False
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for request in pending:
            self._finish(request, self._failure(request, Status.STATUS_CANCELED,
                                                "node shutting down"))
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=30.0)  # the running request stops at its next token

    def _close_io(self) -> None:
        for entity in self._io:
            if hasattr(entity, "topic_name") and hasattr(entity, "publish"):
                self.destroy_publisher(entity)
            elif hasattr(entity, "srv_type"):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._io = []
        if getattr(self, "_action", None) is not None:
            self._action.destroy()
            self._action = None

    # ---- parameters ------------------------------------------------------------------------
    def _engine_config(self, p: dict) -> EngineConfig:
        choice = p["multimask_choice"]
        choice = int(choice) if str(choice).isdigit() else choice
        return EngineConfig(
            mode=p["mode"], normalise=p["normalise_maps"], phrase_tokens=p["phrase_tokens"],
            phrase_contrast=float(p["phrase_contrast"]),
            attention_views=tuple(p["attention_views"]), multimask_choice=choice,
            entity_assignment=p["entity_assignment"], entity_margin=float(p["entity_margin"]),
            max_new_tokens=int(p["max_new_tokens"]),
        ).validate()

    def _on_set_parameters(self, changes) -> SetParametersResult:
        p = params.values(self, params.GROUNDING_PARAMS)
        p.update({c.name: c.value for c in changes})
        try:
            config = self._engine_config(p)
            qos_by_name(p["image_qos"])
            if int(p["queue_size"]) < 0 or int(p["max_image_pixels"]) < 1:
                raise ValueError("queue_size must be >= 0 and max_image_pixels >= 1")
            if float(p["proposal_tolerance_s"]) < 0 or float(p["proposal_max_age_s"]) < 0:
                raise ValueError("proposal_tolerance_s and proposal_max_age_s must be >= 0")
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if self._engine is not None:
            self._engine.config = config
        return SetParametersResult(successful=True)

    def _param(self, name: str):
        return self.get_parameter(name).value

    # ---- inputs ----------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_msg_to_rgb(msg, int(self._param("max_image_pixels")))
            self._frame = Frame(msg.header, rgb)
            self._remember(self._frame)
        except ImageDecodeError as exc:
            self._frame = Frame(msg.header, None, f"bad image: {exc}")
            self.get_logger().warning(f"bad image on 'image': {exc}", throttle_duration_sec=5.0)

    def _remember(self, frame: Frame) -> None:
        max_age_ns = float(self._param("proposal_max_age_s")) * 1e9
        newest = stamp_to_ns(frame.header.stamp)
        with self._recent_lock:
            # nothing to pair frames with while no proposal node publishes: keep none
            if max_age_ns <= 0 or not self.count_publishers(self._proposals_topic):
                self._recent.clear()
                return
            self._recent.append(frame)
            while self._recent and (newest - stamp_to_ns(self._recent[0].header.stamp) > max_age_ns
                                    or stamp_to_ns(self._recent[0].header.stamp) > newest):
                self._recent.popleft()  # too old, or from before the clock jumped back

    def _on_proposals(self, msg: EntityProposals) -> None:
        self._proposals.append(msg)

    def _on_command(self, msg: String) -> None:
        request_id = f"{self.get_name()}-{next(self._ids)}"
        self._submit(request_id, msg.data, "", self._frame, None)

    def _on_describe(self, request, response):
        request_id = f"{self.get_name()}-{next(self._ids)}"
        _, rejected = self._submit(request_id, self._param("default_prompt"), "", self._frame, None)
        response.success = rejected is None
        response.message = request_id if rejected is None else rejected.error
        return response

    def _execute_goal(self, goal_handle):
        goal = goal_handle.request
        request_id = f"goal-{bytes(goal_handle.goal_id.uuid).hex()[:12]}"
        frame = self._frame
        own_image = bool(goal.image.width or goal.image.height or len(goal.image.data))
        if own_image:
            try:
                frame = Frame(goal.image.header,
                              image_msg_to_rgb(goal.image, int(self._param("max_image_pixels"))))
            except ImageDecodeError as exc:
                frame = Frame(goal.image.header, None, f"bad goal image: {exc}")
        request, immediate = self._submit(request_id, goal.prompt, goal.mode, frame, goal_handle,
                                          camera_frame=not own_image)
        if immediate is not None:
            goal_handle.abort()
            return Ground.Result(response=immediate)
        request.done.wait()
        response = request.response
        if response.status == Status.STATUS_OK:
            goal_handle.succeed()
        elif response.status == Status.STATUS_CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return Ground.Result(response=response)

    def _submit(self, request_id, prompt, mode, frame, goal_handle, camera_frame=True):
        """Queue a request or answer it at once: returns (request, immediate answer or None)."""
        request = Request(request_id, prompt, mode, frame, goal_handle, camera_frame=camera_frame)
        problem = self._precheck(request)
        if problem is None:
            with self._cond:
                limit = int(self._param("queue_size"))
                if not self._active:
                    problem = (Status.STATUS_REJECTED_BUSY, "node is not active")
                # one request runs, `queue_size` wait; an idle worker takes the next at once
                elif len(self._queue) >= limit + (0 if self._busy else 1):
                    problem = (Status.STATUS_REJECTED_BUSY,
                               f"busy: {len(self._queue)} request(s) waiting (queue_size={limit})")
                else:
                    self._queue.append(request)
                    self._cond.notify()
                    return request, None
        response = self._failure(request, *problem)
        self._publish(response)
        return request, response

    def _precheck(self, request: Request) -> tuple[int, str] | None:
        prompt = request.prompt
        if not isinstance(prompt, str) or not prompt.strip():
            return Status.STATUS_BAD_INPUT, "empty prompt"
        limit = int(self._param("max_prompt_chars"))
        if len(prompt) > limit:
            return Status.STATUS_BAD_INPUT, f"prompt has {len(prompt)} characters, limit is {limit}"
        if request.mode and request.mode not in MODES:
            return Status.STATUS_BAD_INPUT, f"mode must be one of {MODES} or empty"
        if request.frame is None:
            return Status.STATUS_NO_IMAGE, "no image received yet on 'image'"
        if request.frame.rgb is None:
            return Status.STATUS_BAD_INPUT, request.frame.error
        if self._engine is None:
            return Status.STATUS_MODEL_ERROR, "no model loaded (configure failed or not run)"
        return None

    # ---- worker ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                request = self._queue.popleft()
                self._busy = True
            try:
                try:
                    response = self._run(request)
                except Exception as exc:  # noqa: BLE001 - the worker must outlive any request
                    response = self._failure(request, Status.STATUS_MODEL_ERROR,
                                             f"internal error: {type(exc).__name__}: {exc}")
                self._finish(request, response)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _run(self, request: Request) -> GroundedResponse:
        handle = request.goal_handle
        if handle is not None and handle.is_cancel_requested:
            return self._failure(request, Status.STATUS_CANCELED, "canceled while queued")
        engine = self._engine
        if engine is None:
            return self._failure(request, Status.STATUS_MODEL_ERROR, "model unloaded")
        frame, proposals = self._frame_and_proposals(request, engine.config.mode)
        key = frame_key(frame.header, frame.rgb.shape)

        def should_stop() -> bool:
            return (not self._active) or (handle is not None and handle.is_cancel_requested)

        on_progress = None
        if handle is not None:
            def on_progress(text, phrases):
                handle.publish_feedback(Ground.Feedback(
                    partial_text=text, phrases=[phrase_to_msg(p) for p in phrases]))

        config = replace(engine.config, mode=request.mode or engine.config.mode)
        try:
            result = engine.ground(frame.rgb, request.prompt, proposals=proposals, image_key=key,
                                   on_progress=on_progress, should_stop=should_stop,
                                   config=config)
        except ValueError as exc:  # the model's own validation: prompt or image it cannot take
            return self._failure(request, Status.STATUS_BAD_INPUT, str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed request must never stop the node
            _free_memory(models_dropped=False)
            self.get_logger().error(f"request {request.request_id} failed: "
                                    f"{type(exc).__name__}: {exc}")
            return self._failure(request, Status.STATUS_MODEL_ERROR, f"{type(exc).__name__}: {exc}")
        result.timing_ms["total"] = (time.perf_counter() - request.accepted_at) * 1e3
        response = result_to_msg(result, frame.header, request.request_id, request.prompt)
        if result.canceled:
            response.status = Status.STATUS_CANCELED
            response.error = "canceled" if self._active else "node deactivated during generation"
        # drawing costs ~10% of a small model's frame: only when someone is listening
        if (self._param("publish_overlay") and self._active
                and self._overlay_pub.get_subscription_count() > 0):
            self._overlay_pub.publish(rgb_to_image_msg(draw_overlay(frame.rgb, result.phrases),
                                                       frame.header))
        return response

    def _frame_and_proposals(self, request: Request, default_mode: str):
        """The frame to ground and its proposals: the request's frame, or in `auto` mode the
        newest camera frame within `proposal_max_age_s` before it that has proposals.

        Why: a proposal node on a CPU takes seconds a frame, so the newest frame almost never has
        proposals yet and `auto` would always fall back to point prompts. In a scene that holds
        still, a slightly older frame with entity masks grounds better. The response's header
        names the frame actually used.
        """
        frame = request.frame
        proposals = self._proposals_for(frame)
        if (proposals is not None or not request.camera_frame
                or (request.mode or default_mode) != "auto"):
            return frame, proposals
        max_age_ns = float(self._param("proposal_max_age_s")) * 1e9
        tolerance_ns = float(self._param("proposal_tolerance_s")) * 1e9
        stamp = stamp_to_ns(frame.header.stamp)
        with self._recent_lock:
            recent = [f for f in self._recent if f.rgb is not None]
        for msg in sorted(self._proposals, key=lambda m: stamp_to_ns(m.header.stamp), reverse=True):
            proposed = stamp_to_ns(msg.header.stamp)
            if not 0 <= stamp - proposed <= max_age_ns:
                continue
            older = [f for f in recent if abs(stamp_to_ns(f.header.stamp) - proposed) <= tolerance_ns]
            if not older:
                continue
            older_frame = min(older, key=lambda f: abs(stamp_to_ns(f.header.stamp) - proposed))
            found = self._decode_proposals(msg, older_frame)
            if found is not None:
                return older_frame, found
        return frame, None

    def _proposals_for(self, frame: Frame):
        tolerance_ns = float(self._param("proposal_tolerance_s")) * 1e9
        stamp = stamp_to_ns(frame.header.stamp)
        candidates = [m for m in list(self._proposals)
                      if abs(stamp_to_ns(m.header.stamp) - stamp) <= tolerance_ns]
        if not candidates:
            return None
        best = min(candidates, key=lambda m: abs(stamp_to_ns(m.header.stamp) - stamp))
        return self._decode_proposals(best, frame)

    def _decode_proposals(self, msg, frame: Frame):
        """The message's proposals for `frame`, or None (logged) if they do not fit it."""
        try:
            return msg_to_proposals(msg, *frame.rgb.shape[:2])
        except ProposalError as exc:
            self.get_logger().warning(f"ignoring proposals for this frame: {exc}",
                                      throttle_duration_sec=5.0)
            return None

    def _failure(self, request: Request, status: int, error: str) -> GroundedResponse:
        header = request.frame.header if request.frame is not None else None
        model = self._engine.model_name if self._engine is not None else ""
        if status != Status.STATUS_OK:
            self.get_logger().warning(f"request {request.request_id}: {error}")
        return error_response(status, error, request.request_id, request.prompt, header, model)

    def _finish(self, request: Request, response: GroundedResponse) -> None:
        request.response = response
        self._publish(response)
        request.done.set()

    def _publish(self, response: GroundedResponse) -> None:
        publisher = getattr(self, "_response_pub", None)
        if publisher is not None:
            publisher.publish(response)


def _free_memory(models_dropped: bool) -> None:
    """Collect garbage and return cached CUDA blocks. Only when the models were dropped
    (cleanup) is their exemption from full collections lifted; after a failed request they are
    still loaded, and what the request left behind was made after the freeze anyway."""
    if models_dropped:
        thaw_loaded_objects()
    else:
        gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def main(args=None) -> None:
    rclpy.init(args=args)
    node = GroundingNode()
    autostart(node)
    spin_nodes([node])


if __name__ == "__main__":
    main()
