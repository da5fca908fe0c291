"""mask_proposal_node: entity masks and entity tokens for camera frames (GROUNDHOG's proposals).

Runs SAM's automatic mask generator on every N-th frame, resting `min_period_s` between runs,
on a worker thread that always takes the newest frame, and publishes EntityProposals stamped like
the frame so the grounding node can match them. With several `cameras` each camera X has its
own X/image and X/proposals, and the worker takes the cameras in turn. Composable: give it the
grounding node's SAM (`sam_provider`) and both use one image embedding per frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ros_ground_msgs.msg import EntityProposals
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros_ground import settings
from ros_ground.camera_watch import camera_topics
from ros_ground.image_codec import ImageDecodeError, image_to_rgb
from ros_ground.nodes import params
from ros_ground.nodes.camera_input import CameraInput
from ros_ground.nodes.common import LATEST, check_type_support, frame_key, stamp_if_unset
from ros_ground.nodes.conversions import proposals_to_msg
from ros_ground.nodes.lifecycle import ModelNode
from ros_ground.nodes.process import run_executable
from ros_ground.results import proposals_allowed
from ros_ground.sam.windows import zoom_crops_text

SLOW_RUN_S = 20.0  # a proposal run this long is said: commands wait behind it
# deactivate waits this long for the run in flight to stop (it asks between SAM's batches); a
# run still going after it publishes nothing
STOP_WAIT_S = 30.0


class MaskProposalNode(ModelNode):
    """Publishes SAM's entity masks and tokens for its cameras' frames (`proposals`), on its own
    worker thread: every `every_n_frames`-th frame, resting `min_period_s` between runs."""
    def __init__(self, name: str = "mask_proposal_node", sam_provider: Callable | None = None,
                 **kwargs):
        super().__init__(name, settings.PROPOSAL, **kwargs)
        self._sam_provider = sam_provider
        self._sam = None
        self._pubs: dict[str, object] = {}
        self._started_pubs: dict[str, object] = {}
        self._pending: dict[str, Image] = {}  # camera -> newest frame; insertion order = turn
        self.inputs: dict[str, CameraInput] = {}
        self._cond = threading.Condition()
        self._stopping = False
        # set at deactivate: ends the activation's run in flight and forbids its publishing; a
        # new one per activation, so a run of an earlier one never resumes
        self._activation_stop = threading.Event()
        self._run_stop = self._activation_stop  # the flag of the run in flight (or the last)
        self._running = False
        self._frames_seen: dict[str, int] = {}
        self._cameras: list[str] = []
        self._last_run_end = -float("inf")
        self._zoom_logged: dict[str, tuple] = {}  # camera -> the crop plan last logged
        self.runs = 0
        self._worker = threading.Thread(target=self._work, name=f"{name}-worker", daemon=True)
        self._worker.start()

    def load(self, p: dict) -> None:
        from ros_ground.sam import load_sam

        check_type_support(EntityProposals)  # a msg/ mismatch fails at once, not after SAM loads
        provider = self._sam_provider or (lambda spec, ckpt, device: load_sam(
            spec, checkpoint=ckpt, device=device))
        started = time.perf_counter()
        self._sam = provider(p["sam_model"], p["sam_checkpoint"] or None, p["device"])
        # from the container: shared only with a node asking for the same SAM (it warns if not)
        self.get_logger().info(f"{'got from the container' if self._sam_provider else 'loaded'} SAM "
                               f"{p['sam_model']!r} on {getattr(self._sam, 'device', '?')} in "
                               f"{time.perf_counter() - started:.1f} s")
        self._cameras = list(p["cameras"])  # read at configure, like the publishers
        self._pubs = {camera: self.lifecycle_publisher(EntityProposals, topic, LATEST)
                      for camera, topic in zip(self._cameras,
                                               camera_topics(self._cameras, "proposals"))}
        # the header of the frame a run starts on: a run can outlast the frames the grounding
        # node keeps by count, so it keeps this one until the proposals come
        self._started_pubs = {camera: self.lifecycle_publisher(Header, topic, LATEST)
                              for camera, topic in zip(self._cameras, camera_topics(
                                  self._cameras, "proposals_started"))}

    def open(self, p: dict) -> None:
        with self._cond:
            self._activation_stop = threading.Event()
        self.inputs = {}
        for camera, topic in zip(self._cameras, camera_topics(self._cameras, "image")):
            self.inputs[camera] = self.opened(CameraInput(
                self, topic, lambda msg, c=camera: self._on_image(msg, c),
                transport=p["image_transport"], qos_name=p["image_qos"]))
        self.opened(self.create_timer(1.0, lambda: [i.check() for i in self.inputs.values()]))
        self.get_logger().info(
            f"active: proposals for frames on {', '.join(i.topic for i in self.inputs.values())} "
            f"(every_n_frames {p['every_n_frames']}, min_period_s {p['min_period_s']:g})")

    def before_close(self) -> None:
        """Drop the waiting frames, stop the run in flight and wait (at most STOP_WAIT_S) for it
        to end: it holds SAM, and the publishers close next."""
        with self._cond:
            self._pending.clear()
            self._activation_stop.set()
            ended = self._cond.wait_for(lambda: not self._running, timeout=STOP_WAIT_S)
        if not ended:
            self.get_logger().warning(f"the proposal run in flight did not stop within {STOP_WAIT_S:g} s "
                                      "of deactivate; it publishes nothing when it ends")

    def unload(self) -> None:
        self._sam, self._pubs, self._started_pubs = None, {}, {}

    def shutdown_worker(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._worker.join(timeout=30.0)  # a run in flight must not publish after destroy_node

    def _on_image(self, msg, camera: str = "") -> None:
        seen = self._frames_seen[camera] = self._frames_seen.get(camera, 0) + 1
        every = int(self.get_parameter("every_n_frames").value)
        if (seen - 1) % every:
            return
        with self._cond:
            # newest wins (proposals for stale frames help nobody); a camera keeps its turn
            self._pending[camera] = msg
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    rest = self._rest_left()
                    if self._pending and rest <= 0:
                        break
                    self._cond.wait(timeout=rest if rest > 0 else None)
                if self._stopping:
                    return
                camera = next(iter(self._pending))  # the camera waiting longest for its turn
                msg = self._pending.pop(camera)
                self._run_stop, self._running = self._activation_stop, True
            try:
                self._propose(msg, camera)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop proposals
                if self._stopping or not self.context.ok():
                    return  # shut down mid-run: nothing failed, there is nobody to publish to
                if not self._run_stop.is_set():  # else stopped by deactivate: nothing failed
                    self.get_logger().error(f"proposals failed: {type(exc).__name__}: {exc}",
                                            throttle_duration_sec=5.0)
            finally:
                self._last_run_end = time.monotonic()
                with self._cond:
                    self._running = False
                    self._cond.notify_all()

    def _rest_left(self) -> float:
        """Seconds until the next run may start. The rest runs from the END of the last run: in
        the composed graph a run holds the shared SAM for seconds, and back-to-back runs would
        keep the grounding node's commands waiting (a released lock is not handed to waiters)."""
        period = float(self.get_parameter("min_period_s").value)
        return period - (time.monotonic() - self._last_run_end)

    def _propose(self, msg, camera: str = "") -> None:
        sam, stop = self._sam, self._run_stop
        if sam is None:
            return
        p = params.values(self, params.PROPOSAL_PARAMS)
        try:
            rgb = image_to_rgb(msg, int(p["max_image_pixels"]))
        except ImageDecodeError as exc:
            self.get_logger().warning(f"skipping bad image: {exc}", throttle_duration_sec=5.0)
            return
        stamp_if_unset(msg.header, self)  # as the grounding node does: pairs by stamp
        started = self._started_pubs.get(camera)
        if started is not None and not stop.is_set():
            started.publish(msg.header)
        amg = {name: p[name] for name in settings.AMG_NAMES}
        if amg["proposal_zoom"]:
            self._log_zoom(camera, rgb.shape[:2], sam.img_size, int(amg["max_zoom_crops"]),
                           float(amg["zoom_magnification"]))
        # a run takes up to a minute on a CPU: a stop (shutdown, deactivate) ends it between batches
        t0 = time.monotonic()
        source = self.inputs.get(camera)
        key = frame_key(msg.header, rgb, source.topic if source is not None else camera)
        proposals = sam.propose(rgb, key=key,
                                should_stop=lambda: self._stopping or stop.is_set(), **amg)
        took = time.monotonic() - t0
        if took > SLOW_RUN_S:  # in the composed graph the grounding node's commands waited on it
            self.get_logger().warning(
                f"{camera or 'image'}: proposals for a {rgb.shape[1]}x{rgb.shape[0]} frame took "
                f"{took:.0f} s (points_per_side {amg['points_per_side']}, crop_n_layers "
                f"{amg['crop_n_layers']}); a shared SAM answers no command meanwhile: fewer "
                "points or a GPU shorten it", throttle_duration_sec=60.0)
        keep = min(int(p["max_entities"]), proposals_allowed(*rgb.shape[:2]))
        proposals = sorted(proposals, key=lambda q: -q.score)[:keep]  # all the grounding node takes
        self.runs += 1
        publisher = self._pubs.get(camera)
        if publisher is not None and not stop.is_set():  # deactivated: the publishers close
            publisher.publish(proposals_to_msg(proposals, msg.header, sam.feature_source))

    def _log_zoom(self, camera: str, size: tuple[int, int], side: int, max_crops: int,
                  magnification: float) -> None:
        """Say how many zoom crops (encoder passes) a run costs, for a camera's first frame and
        whenever its frame size, the cap or the magnification changes: on a CPU each crop is
        seconds."""
        plan = (size, side, max_crops, magnification)
        if self._zoom_logged.get(camera) != plan:
            self._zoom_logged[camera] = plan
            text = zoom_crops_text(*size, side, max_crops, magnification)
            self.get_logger().info(f"{camera or 'image'}: {text}")


def main(args=None) -> None:
    run_executable([MaskProposalNode], args)


if __name__ == "__main__":
    main()
