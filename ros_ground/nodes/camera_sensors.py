"""The grounding node's sensor streams: each camera's colour frames, mask proposals, registered
depth and camera_info, kept by stamp (ros_ground.frames) for the requests that need them.

`open` makes every sensor subscription (at activate; the node closes what it returns). Frames
are decoded on arrival, depth only when a request uses it. No request logic here.
"""

from __future__ import annotations

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from ros_ground_msgs.msg import EntityProposals
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from ros_ground.camera_watch import camera_topics, stamp_skew_warning
from ros_ground.errors import shorten
from ros_ground.frames import DepthStore, FrameStore, pixel_fingerprint
from ros_ground.image_codec import GREY_ENCODINGS, ImageDecodeError, image_to_depth, image_to_rgb
from ros_ground.nodes.camera_input import CameraInput
from ros_ground.nodes.common import RELIABLE, now_ns, stamp_if_unset
from ros_ground.nodes.conversions import (
    ProposalError,
    msg_to_intrinsics,
    msg_to_proposals,
    stamp_to_ns,
)
from ros_ground.requests import Frame
from ros_ground.scene_change import same_scene
from ros_ground.spatial import check_intrinsics, locate_result, unlocated_phrases

# a frame stamped further than this from the node's clock is warned about (tf lookups fail);
# transport and driver delays are milliseconds, an unsynchronised clock or a bag replayed on
# wall time seconds to years
STAMP_SKEW_WARN_S = 10.0


def same_frame(a: str, b: str) -> bool:
    """Whether frame_ids `a` and `b` may name one frame: equal but for a leading "/" (ROS 1's
    form, which tf2 drops), or either empty (a driver that leaves it unset)."""
    return not (a and b) or a.lstrip("/") == b.lstrip("/")


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class CameraSensors:
    """Frames, proposals, depth and intrinsics of each camera. `p` holds the node's parameter
    values (the node replaces it on every accepted change)."""

    def __init__(self, node, p: dict):
        self._node, self.p = node, p
        self.frames, self.depth = FrameStore(), DepthStore()
        self.inputs: dict[str, CameraInput] = {}  # camera -> its image subscription
        self.depth_inputs: dict[str, CameraInput] = {}
        self._proposals_topics: dict[str, str] = {}
        self._info_refused: dict[str, str] = {}  # camera -> why its last camera_info was ignored
        self._repeat_said: set[str] = set()  # cameras warned of a header repeated with new pixels
        self._grey_said: set[tuple[str, bool]] = set()  # (camera, mono) warned: no colour

    def open(self, cameras: list[str], callback_group) -> list:
        """Subscribe each camera's image, proposals, proposals_started, depth and camera_info;
        returns the entities (and a timer checking the image streams) for the node to close;
        the cameras of an earlier `open` are forgotten (`cameras` may have changed since)."""
        node, opened = self._node, []
        for table in (self.inputs, self.depth_inputs, self._proposals_topics):
            table.clear()
        topics = (camera_topics(cameras, name) for name in
                  ("image", "proposals", "proposals_started", "depth", "camera_info"))
        for camera, image, proposals, started, depth, info in zip(cameras, *topics):
            sub = node.create_subscription(
                EntityProposals, proposals, lambda m, c=camera: self._on_proposals(c, m),
                RELIABLE, callback_group=callback_group)
            self._proposals_topics[camera] = sub.topic_name  # resolved: namespace, remappings
            opened.append(node.create_subscription(
                Header, started, lambda m, c=camera: self._keep_for_proposals(c, m),
                RELIABLE, callback_group=callback_group))
            self.inputs[camera] = CameraInput(
                node, image, lambda m, c=camera: self._on_image(c, m),
                transport=self.p["image_transport"], qos_name=self.p["image_qos"],
                callback_group=callback_group)
            # depth follows its publishers' reliability (`auto`): a best-effort reader loses
            # large frames of a reliable driver, and a lost depth frame leaves the phrases of
            # its colour frame without positions; camera_info is small, best effort hears all
            self.depth_inputs[camera] = CameraInput(
                node, depth, lambda m, c=camera: self._on_depth(c, m), qos_name="auto",
                callback_group=callback_group, transport=self.p["depth_transport"],
                setting="depth_transport")
            opened += [sub, self.inputs[camera], self.depth_inputs[camera],
                       node.create_subscription(
                           CameraInfo, info, lambda m, c=camera: self._on_camera_info(c, m),
                           qos_profile_sensor_data, callback_group=callback_group)]
        sources = [*self.inputs.values(), *self.depth_inputs.values()]
        opened.append(node.create_timer(1.0, lambda: [s.check() for s in sources],
                                        callback_group=callback_group))
        return opened

    def clear(self) -> None:
        """Forget every stream (cleanup); the once-per-camera warnings are said again after the
        next configure, whose cameras (or the drivers behind them) may be others."""
        self.frames.clear()
        self.depth.clear()
        self._info_refused.clear()
        self._repeat_said.clear()
        self._grey_said.clear()

    def decode(self, msg, what: str, received_ns: int | None = None) -> Frame:
        """A Frame of an Image or CompressedImage message (or the reason it cannot be one)."""
        try:
            return Frame(msg.header, image_to_rgb(msg, self.p["max_image_pixels"]),
                         received_ns=received_ns)
        except ImageDecodeError as exc:
            self._node.get_logger().warning(f"bad image on {what!r}: {exc}",
                                            throttle_duration_sec=5.0)
            return Frame(msg.header, None, f"bad image: {exc}", received_ns)

    def match(self, camera: str, frame: Frame, search_older: bool):
        """The frame to ground and its proposals (FrameStore.match; None when there are none).
        An older frame paired by its proposal run alone is one received within
        max_frame_age_s (0: any age), as the command's own frame must be: the scene may have
        changed since (proposal_max_age_s is the user's word that it has not). Either way an
        older frame pairs only if it shows the same scene as `frame` (scene_change.same_scene):
        a scene changed since it, whatever the settings say, is grounded on `frame` alone."""
        limit, now = _ns(self.p["max_frame_age_s"]), now_ns(self._node)
        paired, proposals = self.frames.match(
            camera, frame, stamp_to_ns(frame.header.stamp), self._decode_proposals,
            tolerance_ns=_ns(self.p["proposal_tolerance_s"]),
            max_age_ns=_ns(self.p["proposal_max_age_s"]), search_older=search_older,
            fresh=lambda older: not limit or older.received_ns is None or now - older.received_ns <= limit)
        if proposals is not None and paired is not frame and not same_scene(paired.rgb, frame.rgb):
            # an object moved, or a new scene: the older frame's answer would be of before
            self._node.get_logger().info(
                f"{camera!r}: the scene changed since the newest frame with proposals; grounding "
                "the newest frame as if none had come", throttle_duration_sec=10.0)
            return frame, None
        return paired, proposals

    def is_camera_frame(self, camera: str, frame: Frame) -> bool:
        """Whether `frame` (a goal's own image) is one of the camera's remembered frames, the
        same stamp and pixels: only then are the camera's proposals and depth for it."""
        rgb = frame.rgb
        return rgb is not None and any(
            f.rgb is not None and np.array_equal(f.rgb, rgb)  # of another shape: not equal
            for f in self.frames.stamped(camera, stamp_to_ns(frame.header.stamp)))

    def registered_depth(self, camera: str, header, size: tuple[int, int]):
        """(depth HxW metres, K) registered to the camera's frame with `header`, whose image is
        `size` (height, width) pixels; LookupError or ValueError (ImageDecodeError included)
        saying what is missing or wrong: the depth's frame_id, then its size, then the
        camera_info's frame_id and resolution. A frame_id differing from the image's is another
        camera's (an empty one, as some drivers leave it, is taken as the image's)."""
        try:
            depth, calibration = self.depth.registered(
                camera, stamp_to_ns(header.stamp), _ns(self.p["depth_tolerance_s"]),
                lambda msg: self._depth_of(msg, header))
        except LookupError:
            refused = self._info_refused.get(camera)
            if refused and self.depth.calibration(camera) is None:
                raise LookupError(f"the camera_info received was ignored: {refused}") from None
            raise
        if tuple(depth.shape[:2]) != tuple(size):
            raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]}, the image {size[1]}x"
                             f"{size[0]}: publish depth registered to the colour image, at its "
                             "size (e.g. RealSense aligned_depth_to_color)")
        k, width, height, frame = calibration
        if not same_frame(frame, header.frame_id):
            # another camera's K (the depth sensor's): every position would be off, silently
            raise ValueError(f"camera_info is in frame {shorten(frame)!r}, the image in "
                             f"{shorten(header.frame_id)!r}: "
                             "publish the colour camera's camera_info (e.g. RealSense "
                             "color/camera_info), whose K is the image's")
        if width and height and (height, width) != tuple(size):
            # K scales with the image: from another resolution every position is off by the ratio
            raise ValueError(f"camera_info is for {width}x{height}, the depth and image are "
                             f"{size[1]}x{size[0]}: publish the camera_info "
                             "of the image's own resolution (resize it with the image), or the full "
                             "sensor's with binning_x/binning_y and roi saying how the image was cut")
        return depth, k

    def _depth_of(self, msg, header):
        """The depth message's HxW metres. ValueError when its frame_id is not the colour
        image's: a depth camera's own frame (RealSense depth/image_rect_raw) is not registered
        to it, and at the same size would give positions tens of centimetres off."""
        if not same_frame(msg.header.frame_id, header.frame_id):
            raise ValueError(
                f"depth is in frame {shorten(msg.header.frame_id)!r}, the image in "
                f"{shorten(header.frame_id)!r}: "
                "publish depth registered to the colour image, in its frame (e.g. RealSense "
                "aligned_depth_to_color/image_raw, align_depth.enable:=true)")
        return image_to_depth(msg, self.p["max_image_pixels"])

    def pin_depth(self, camera: str, header, size: tuple[int, int]):
        """`registered_depth` of the frame with `header` (of `size`) when it is there now, else
        None: taken before the model runs, as the depth store keeps only the newest frames (a
        few tenths of a second of a 30 Hz camera with proposal_max_age_s 0) and a request takes
        seconds. The ValueError, returned, when the depth found does not fit the frame (its
        frame_id or size, the camera_info's, an undecodable depth): looked up again after the model ran,
        that depth may be gone and the reason would read as a timing problem."""
        if not self.depth.has_depth(camera):
            return None
        try:
            return self.registered_depth(camera, header, size)
        except LookupError:
            return None  # the depth may come after its colour frame: `locate` looks again
        except ValueError as exc:
            return exc

    def locate(self, camera: str, result, header, pinned=None) -> str:
        """3-D position and size of every phrase of `result` (grounded on the frame with
        `header`) from the `pinned` depth (`pin_depth`; its ValueError is the reason there are
        none), else the depth registered to it now.

        Returns "" when the phrases were located, else why they keep NaN positions (also
        warned when the camera publishes depth), for the response's `position_error`.
        """
        if pinned is None and not self.depth.has_depth(camera):
            source = self.depth_inputs.get(camera)
            return f"no depth frame received on {getattr(source, 'topic', 'depth')!r}"
        try:
            if isinstance(pinned, ValueError):
                raise pinned
            locate_result(result, *(pinned or self.registered_depth(camera, header,
                                                                   result.image_size)))
        except (LookupError, ValueError) as exc:
            self._node.get_logger().warning(f"phrases without 3-D positions: {exc}",
                                            throttle_duration_sec=5.0)
            return str(exc)
        return unlocated_phrases(result)

    def _on_image(self, camera: str, msg) -> None:
        source = self.inputs[camera]
        stamp = stamp_to_ns(msg.header.stamp)
        now = now_ns(self._node)
        skew = stamp_skew_warning(source.topic, stamp, now, STAMP_SKEW_WARN_S,
                                  self._node.get_parameter("use_sim_time").value)
        if skew and stamp == 0:
            self._node.get_logger().warning(skew, throttle_duration_sec=60.0)
            stamp_if_unset(msg.header, self._node)
            stamp = stamp_to_ns(msg.header.stamp)
        elif skew and stamp > now:  # a call site each: rclpy throttles each apart
            self._node.get_logger().warning(skew, throttle_duration_sec=60.0)
        elif skew:
            self._node.get_logger().warning(skew, throttle_duration_sec=60.0)
        keep = self._node.count_publishers(self._proposals_topics[camera]) > 0  # else no pairs
        self._say_if_grey(camera, source.topic, msg)
        frame = self.decode(msg, source.topic, source.last_received_ns)
        self._say_if_header_repeated(camera, source.topic, frame)
        self.frames.add_frame(camera, stamp, frame, _ns(self.p["proposal_max_age_s"]), keep)

    def _say_if_grey(self, camera: str, topic: str, msg) -> None:
        """Warn, once per camera, when its image encoding carries no colour (mono8, mono16: colour
        words are not judged on its frames) or is a depth encoding (16UC1, 32FC1: probably a
        depth topic remapped onto `image`)."""
        encoding = getattr(msg, "encoding", None)
        if encoding is None:  # a CompressedImage: "mono8; jpeg compressed mono8"
            encoding = msg.format.split(";")[0].strip()
        if encoding.lower() not in GREY_ENCODINGS:
            return
        mono = encoding.lower() in ("mono8", "mono16", "8uc1")
        if (camera, mono) in self._grey_said:  # a mono camera, then depth on its topic: both said
            return
        self._grey_said.add((camera, mono))
        if mono:
            why = "a mono camera's frames carry no colour"
        else:
            why = "a depth or sensor encoding: is a depth topic remapped onto the colour image?"
        self._node.get_logger().warning(
            f"images on {topic!r} are {encoding} ({why}): colour words ('the green mug') are not "
            "judged on them, the rest of a command's words are (said once)")

    def _say_if_header_repeated(self, camera: str, topic: str, frame: Frame) -> None:
        """Warn, once per camera, of a frame with its previous frame's frame_id and stamp but
        other pixels (a driver that stamps once, or reuses a stamp): SAM tells the two apart by
        their pixels, but proposals and depth are paired with frames by stamp alone."""
        last = self.frames.latest(camera)
        if (camera in self._repeat_said or frame.rgb is None or last is None or last.rgb is None
                or last.header.frame_id != frame.header.frame_id
                or stamp_to_ns(last.header.stamp) != stamp_to_ns(frame.header.stamp)
                or pixel_fingerprint(last.rgb) == pixel_fingerprint(frame.rgb)):
            return
        self._repeat_said.add(camera)
        self._node.get_logger().warning(
            f"a frame on {topic!r} has the previous frame's frame_id {shorten(frame.header.frame_id)!r} "
            f"and stamp ({stamp_to_ns(frame.header.stamp)} ns) but other pixels: stamp each frame "
            "with its capture time, or its proposals and depth may be paired with another picture "
            "(said once)")

    def _on_depth(self, camera: str, msg) -> None:
        stamp_if_unset(msg.header, self._node)  # as its colour frames are
        self.depth.add_depth(camera, stamp_to_ns(msg.header.stamp), msg,  # decoded when used
                             _ns(self.p["proposal_max_age_s"]))

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        stamp_if_unset(msg.header, self._node)  # as its colour frames are
        stamp_ns = stamp_to_ns(msg.header.stamp)
        try:
            intrinsics = msg_to_intrinsics(msg)  # width and height 0: refused
            height, width = intrinsics.image_size  # binned and cropped, as published
            # by stamp: a frame taken before a zoom or a recalibration keeps its own K
            calibration = (check_intrinsics(intrinsics.rectified_k), width, height, msg.header.frame_id)
            self.depth.set_calibration(camera, calibration, stamp_ns)
            self._info_refused.pop(camera, None)
        except ValueError as exc:
            # the frames from its stamp on have no K until a valid one comes: position_error
            # names the refusal rather than positions coming silently from the K before it
            self.depth.set_calibration(camera, None, stamp_ns)
            self._info_refused[camera] = str(exc)
            self._node.get_logger().warning(f"ignoring camera_info: {exc}",
                                            throttle_duration_sec=5.0)

    def _on_proposals(self, camera: str, msg: EntityProposals) -> None:
        run = self.frames.add_proposals(camera, stamp_to_ns(msg.header.stamp), msg)
        self._keep_for_proposals(camera, msg.header, run)

    def _keep_for_proposals(self, camera: str, header, run_ns: int | None = None) -> None:
        """Keep the frame stamped like `header` and its depth: proposals for it are coming (the
        proposal node's proposals_started) or have come after a run of `run_ns`."""
        stamp = stamp_to_ns(header.stamp)
        self.frames.keep_near(camera, stamp, _ns(self.p["proposal_tolerance_s"]), run_ns)
        self.depth.keep_near(camera, stamp, _ns(self.p["depth_tolerance_s"]), run_ns)

    def _decode_proposals(self, msg, frame: Frame):
        """The message's proposals for `frame`, or None (logged) if they do not fit it."""
        if frame.rgb is None:
            return None
        try:
            return msg_to_proposals(msg, *frame.rgb.shape[:2])
        except ProposalError as exc:
            self._node.get_logger().warning(f"ignoring proposals for this frame: {exc}",
                                            throttle_duration_sec=5.0)
            return None
