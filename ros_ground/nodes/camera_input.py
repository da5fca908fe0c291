"""One camera's image subscription: transport, QoS (`auto` follows the publishers), receive
times, and a warning when publishers exist but no frame arrives.

Used by both model nodes; the decisions are ros_ground.camera_watch's (no ROS there).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ros_ground import camera_watch
from ros_ground.nodes.common import now_ns, qos_by_name

SILENCE_WARN_S = 5.0  # publishers but no frame for this long: warn, then again after twice as long
SILENCE_WARN_MAX_S = 300.0  # ... up to every this long, while it lasts
_WORDS = {ReliabilityPolicy.RELIABLE: camera_watch.RELIABLE,
          ReliabilityPolicy.BEST_EFFORT: camera_watch.BEST_EFFORT}


class CameraInput:
    """Subscribes `topic` (relative, resolved like any topic: namespace and remappings) as
    `transport` says: "raw" takes sensor_msgs/Image on it, "compressed" takes
    sensor_msgs/CompressedImage on `<resolved topic>/compressed`, as image_transport names it, and
    "compressedDepth" on `<resolved topic>/compressedDepth` (for depth: `setting`
    "depth_transport", the node parameter its hints name).

    Keyword args:
      callback: called with each message, on `callback_group`.
      qos_name: sensor_data / reliable / best_effort, or auto: the publishers' reliability
        (reliable until one is seen; switched by `check`, and as soon as DDS reports a
        publisher this subscription cannot match).
      warn_after_s: seconds without a frame, while publishers exist, before `check` warns
        (then after twice as long each time, up to SILENCE_WARN_MAX_S, until a frame comes);
        with none, it warns when the other transport's topic has one (`transport_hint`).
    `last_received_ns` is the node clock's time of the newest message (None before one).
    """

    def __init__(self, node, topic: str, callback, *, transport: str = "raw",
                 qos_name: str = "auto", callback_group=None,
                 warn_after_s: float = SILENCE_WARN_S, setting: str = "image_transport"):
        # the transports of the image (raw / compressed) or of depth (raw / compressedDepth), by
        # the node parameter that chooses them, each with the suffix image_transport gives it
        choices = ("raw", "compressed") if setting == "image_transport" else ("raw", "compressedDepth")
        if transport not in choices:
            raise ValueError(f"{setting} must be {' or '.join(choices)}, got {transport!r}")
        self._node, self._callback, self._group = node, callback, callback_group
        self._auto = qos_name == "auto"
        self._qos_name = qos_name
        base = node.resolve_topic_name(topic)
        self.compressed = transport != "raw"
        self.topic = base if transport == "raw" else f"{base}/{transport}"
        self.msg_type = CompressedImage if self.compressed else Image
        # the other transport's topic -> what to set when only it has a publisher
        self._others = {(base if other == "raw" else f"{base}/{other}"): f"set {setting} to {other}"
                        for other in choices if other != transport}
        self.warn_after_s = warn_after_s
        self.last_received_ns: int | None = None  # node clock: frame ages are judged on it
        self._gaps_ns: deque[int] = deque(maxlen=8)  # between the latest arrivals, wall time
        self._last_mono_ns: int | None = None
        # the silence warning is about wall time, whatever clock the node runs on (sim time)
        self._arrived_mono_ns = self._opened_mono_ns = time.monotonic_ns()
        self._warned_ns: int | None = None
        self._warn_every_s = warn_after_s  # doubles with each warning, until a frame arrives
        self.reliability = (camera_watch.auto_reliability(self.publishers(), camera_watch.RELIABLE)
                            if self._auto else _WORDS.get(qos_by_name(qos_name).reliability, ""))
        self._sub = None
        self._closed = False
        self._lock = threading.Lock()  # close() (lifecycle thread) against a check re-subscribing
        self._subscribe()

    def publishers(self) -> list[str]:
        """The reliability of each publisher on the topic now."""
        return [_WORDS.get(info.qos_profile.reliability, str(info.qos_profile.reliability))
                for info in self._node.get_publishers_info_by_topic(self.topic)]

    def transport_hint(self) -> str:
        """What to do when nothing publishes on the topic but something does on another
        transport's ("; ... set image_transport to raw"), else ""."""
        if self._node.count_publishers(self.topic):
            return ""
        other = next((t for t in self._others if self._node.count_publishers(t)), None)
        if other is None:
            return ""
        return f"; nothing publishes on {self.topic!r} but {other!r} has a publisher: {self._others[other]}"

    def no_image_hint(self, any_frame: bool) -> str:
        """What a NO_IMAGE answer about this camera adds: which image_transport to set when only
        the other transport's topic has a publisher now, also after frames came on this one (a
        driver restarted with compression only leaves its last raw frame); else, when no frame
        (`any_frame` False) came at all, why (`no_frame_reason`)."""
        return self.transport_hint() or ("" if any_frame else f" ({self.no_frame_reason()})")

    def no_frame_reason(self) -> str:
        """Why no frame has come yet, from the graph now (camera_watch.no_frame_reason); the
        topics this node publishes itself, and any grounding node's overlay, are no camera."""
        type_name = f"sensor_msgs/msg/{self.msg_type.__name__}"
        own = {name for name, _ in self._node.get_publisher_names_and_types_by_node(
            self._node.get_name(), self._node.get_namespace())}
        others = [name for name, types in self._node.get_topic_names_and_types()
                  if type_name in types and name != self.topic and name not in own
                  and not name.endswith("/overlay") and self._node.count_publishers(name)]
        return camera_watch.no_frame_reason(self.topic, self._node.count_publishers(self.topic),
                                            others, type_name)

    def age_s(self) -> float | None:
        """Seconds since the newest message arrived (None before the first)."""
        if self.last_received_ns is None:
            return None
        return (self._now_ns() - self.last_received_ns) / 1e9

    def check(self) -> str | None:
        """Follow the publishers' reliability (auto) and warn (returned, and logged at most
        every `warn_after_s`) when they publish but nothing arrives."""
        if self._closed:  # a check or QoS event queued before close(): nothing to follow
            return None
        publishers = self.publishers()
        if self._auto:
            wanted = camera_watch.auto_reliability(publishers, self.reliability)
            if wanted != self.reliability:
                self._node.get_logger().info(
                    f"image_qos auto: {self.topic!r} publishers are {'/'.join(publishers)}: "
                    f"subscribing {wanted}")
                self.reliability = wanted
                self._subscribe()
                return None
        now = time.monotonic_ns()
        if publishers:
            warning = camera_watch.silence_warning(self.topic, publishers, self.reliability,
                                                   (now - self._arrived_mono_ns) / 1e9,
                                                   self.warn_after_s)
        else:  # silence counts from when a publisher appears, not from the start
            self._arrived_mono_ns = max(self._arrived_mono_ns, now)
            # ... but a camera on the other transport is worth a word after as long
            hint = (self.transport_hint()
                    if (now - self._opened_mono_ns) / 1e9 >= self.warn_after_s else "")
            warning = f"no image on {self.topic!r}{hint}" if hint else None
        if warning and (self._warned_ns is None
                        or now - self._warned_ns >= self._warn_every_s * 1e9):
            if self._warned_ns is not None:  # a stream that stays silent says so less often
                self._warn_every_s = min(2 * self._warn_every_s, SILENCE_WARN_MAX_S)
            self._warned_ns = now
            self._node.get_logger().warning(warning)
        return warning

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._unsubscribe()

    def _unsubscribe(self) -> None:
        if self._sub is not None:
            self._node.destroy_subscription(self._sub)
            self._sub = None

    def _subscribe(self) -> None:
        with self._lock:
            if not self._closed:
                self._unsubscribe()
                self._sub = self._create()

    def _create(self):
        """A subscription with the QoS `reliability` (auto) or `qos_name` says."""
        qos = (QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE
                          if self.reliability == camera_watch.RELIABLE
                          else ReliabilityPolicy.BEST_EFFORT)
               if self._auto else qos_by_name(self._qos_name))
        return self._node.create_subscription(
            self.msg_type, self.topic, self._on_msg, qos, callback_group=self._group,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible))

    def stale_reason(self, max_age_s: float) -> str:
        """What a frame of this topic older than `max_age_s` says of the camera
        (camera_watch.stale_reason): none publishes, or they arrive too far apart."""
        gaps = list(self._gaps_ns)
        gap_s = statistics.median(gaps) / 1e9 if len(gaps) >= 2 else None
        return camera_watch.stale_reason(self._node.count_publishers(self.topic), gap_s, max_age_s)

    def _on_msg(self, msg) -> None:
        self.last_received_ns = self._now_ns()
        now = time.monotonic_ns()
        if self._last_mono_ns is not None:
            self._gaps_ns.append(now - self._last_mono_ns)
        self._arrived_mono_ns = self._last_mono_ns = now
        self._warned_ns, self._warn_every_s = None, self.warn_after_s
        self._callback(msg)

    def _on_incompatible(self, info) -> None:
        if self._auto:
            # follow the publisher now rather than at the next check: a camera started after
            # this node would otherwise lose its first frames, up to a check period of them
            self.check()
        else:
            self._node.get_logger().warning(
                f"a publisher on {self.topic!r} has a QoS incompatible with this subscription's "
                f"{self.reliability} ({info.last_policy_kind}): set image_qos to match, or "
                "'auto'", throttle_duration_sec=10.0)

    def _now_ns(self) -> int:
        return now_ns(self._node)
