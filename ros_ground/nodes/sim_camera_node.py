"""sim_camera_node: a PyBullet tabletop camera with ground truth, or a bag replayer.

Publishes `image_raw` (rgb8), `depth` (32FC1 metres along the optical axis, registered to the
image, NaN where nothing was hit), `camera_info` (K of the renderer) and `ground_truth`
(SimGroundTruth, with each object's visible-surface centroid) with one stamp per frame, so a
robot-side graph can be tested, and scored, without hardware. A new scene comes from the
`new_scene` service or from changing `seed` (or the size and object parameters).
With `bag` set it replays a bag's colour topic instead (ros_ground.bags: rosbag2 or ROS 1,
raw or compressed), streaming and looping, and publishes `depth` (32FC1 metres) and
`camera_info` from the bag when it has them: depth keeps its own frame_id when the bag gives it
one other than the colour image's (an unregistered depth topic is then refused by the grounding
node), and a bag whose image topic is mono is republished as mono8.
"""

from __future__ import annotations

import threading

import numpy as np
from geometry_msgs.msg import Point
from rcl_interfaces.msg import SetParametersResult
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_ground_msgs.msg import SimGroundTruth
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from ros_ground import settings
from ros_ground.nodes import params
from ros_ground.nodes.common import LATEST
from ros_ground.nodes.conversions import (
    bbox_to_roi,
    depth_to_image_msg,
    mask_to_msg,
    mono_to_image_msg,
    rgb_to_image_msg,
)
from ros_ground.nodes.process import run_executable

SCENE_PARAMS = ("seed", "scene_set", "width", "height", "num_objects", "objects")
START_PARAMS = ("bag", "bag_topic", "bag_depth_topic")  # read once, when the node starts


class SimCameraNode(Node):
    def __init__(self, name: str = "sim_camera_node", **kwargs):
        super().__init__(name, **kwargs)
        refused = params.declare(self, params.SIM_CAMERA_PARAMS, read_only=START_PARAMS)
        if refused:  # a plain node: no unconfigured state to wait in (make_node logs, exits 1)
            raise ValueError("; ".join(f"parameter {k}: {v}" for k, v in refused.items()))
        # reliable, as REP 2003 asks of sensor drivers: every reader matches, a best-effort one
        # included (a grounding node's `auto` follows it)
        self.image_pub = self.create_publisher(Image, "image_raw", LATEST)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", LATEST)
        self.depth_pub = self.create_publisher(Image, "depth", LATEST)
        self.truth_pub = self.create_publisher(SimGroundTruth, "ground_truth", LATEST)
        self.create_service(Trigger, "new_scene", self._on_new_scene)
        self._lock = threading.Lock()
        self.scene = None
        self._bag_frames = None
        self._bag_topics = None
        bag = self.get_parameter("bag").value
        if bag:
            self._open_bag(bag, self.get_parameter("bag_topic").value,
                           self.get_parameter("bag_depth_topic").value)
        else:
            self._load_scene(settings.check(params.SIM_CAMERA_PARAMS,
                                            params.values(self, params.SIM_CAMERA_PARAMS)))
        self.add_pre_set_parameters_callback(params.retype_changes(self, params.SIM_CAMERA_PARAMS))
        self.add_on_set_parameters_callback(params.refusing_on_error(self._on_set_parameters))
        self._timer = self.create_timer(1.0 / float(self.get_parameter("rate_hz").value),
                                        self._publish)

    def _load_scene(self, p: dict) -> None:
        from ros_ground.sim.scene import scene_in_set

        objects = [o.strip() for o in str(p["objects"]).split(",") if o.strip()] or None
        count = int(p["num_objects"]) if objects is None else len(objects)
        scene = scene_in_set(int(p["seed"]), p["scene_set"], int(p["width"]), int(p["height"]),
                             num_objects=count, objects=objects)
        # said before the scene is shown: a failure leaves the old scene and the old parameters
        self.get_logger().info(f"scene {p['seed']}: {scene.description}")
        lost = []
        if scene.unplaced:
            lost.append(f"scene {p['seed']}: no room on the table for {len(scene.unplaced)} of "
                        f"{count} objects ({', '.join(scene.unplaced)}); ask for fewer")
        if scene.dropped:
            lost.append(f"scene {p['seed']}: {', '.join(scene.dropped)} placed but hidden from the "
                        "camera (too few pixels to keep), so left out of the ground truth")
        # objects the user named and will not see are worth a warning; a random draw's, a note.
        # One call site per severity: rclpy refuses a call site whose severity changes
        for text in lost:
            if objects:
                self.get_logger().warning(text)
            else:
                self.get_logger().info(text)
        with self._lock:
            self.scene = scene

    def _open_bag(self, path: str, topic: str, depth_topic: str = "") -> None:
        """Stream the bag, looping; raises BagError when it has no decodable colour frame or a
        named topic is not in it."""
        from ros_ground.bags import BagError, bag_topics

        self._bag_path = path
        self._bag_topics = bag_topics(path, topic or None, depth_topic or None)
        self._bag_frames = self._loop_bag()
        self._first_frame = next(self._bag_frames, None)
        if self._first_frame is None:
            raise BagError(f"no decodable frame on {self._bag_topics.image} in {path}")
        self.get_logger().info(f"replaying {path}: {self._bag_topics.describe()}")
        if self._bag_topics.grey:
            self.get_logger().warning(f"{self._bag_topics.image} in {path} carries no colour: "
                                      "republished as mono8")

    def _loop_bag(self):
        """The bag's frames, over and over; reopened at each pass so memory stays flat."""
        from ros_ground.bags import read_images

        t = self._bag_topics
        while True:
            count = 0
            for frame in read_images(self._bag_path, t.image, t.depth, t.camera_info,
                                     on_skip=self._on_skip):
                count += 1
                yield frame
            if count == 0:
                return

    def _on_skip(self, topic: str, log_ns: int, reason: str) -> None:
        self.get_logger().warning(f"skipped an undecodable message on {topic} "
                                  f"(log time {log_ns}): {reason}", throttle_duration_sec=5.0)

    def _on_set_parameters(self, changes) -> SetParametersResult:
        result, p = params.check_changes(self, params.SIM_CAMERA_PARAMS, changes)
        if not result.successful:
            return result
        if any(c.name in SCENE_PARAMS for c in changes) and self._bag_frames is None:
            try:
                self._load_scene(p)
            except (ValueError, KeyError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        if any(c.name == "rate_hz" for c in changes):
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / float(p["rate_hz"]), self._publish)
        return result

    def _on_new_scene(self, request, response):
        if self._bag_frames is not None:
            response.success = False
            response.message = (f"replaying the bag {self._bag_path!r}: new_scene renders "
                                "simulated scenes only (start the node without `bag`)")
            return response
        seed = int(self.get_parameter("seed").value) + 1
        result = self.set_parameters([Parameter("seed", value=seed)])[0]
        response.success = result.successful
        response.message = self.scene.description if result.successful else result.reason
        return response

    def _publish(self) -> None:
        stamp = self.get_clock().now().to_msg()
        frame_id = self.get_parameter("frame_id").value
        if self._bag_frames is not None:
            self._publish_bag_frame(stamp, frame_id)
            return
        with self._lock:
            scene = self.scene
        image = rgb_to_image_msg(scene.rgb)
        image.header.stamp, image.header.frame_id = stamp, frame_id
        self.image_pub.publish(image)
        self.depth_pub.publish(depth_to_image_msg(scene.sensor_depth(), image.header))
        self.info_pub.publish(camera_info(scene, image.header))
        self.truth_pub.publish(ground_truth(scene, image.header))

    def _publish_bag_frame(self, stamp, frame_id: str) -> None:
        frame, self._first_frame = self._first_frame, None
        if frame is None:
            frame = next(self._bag_frames, None)
        if frame is None:  # the bag changed under us and has no frame left
            self.get_logger().error(f"no decodable frame left in {self._bag_path}",
                                    throttle_duration_sec=10.0)
            return
        if self._bag_topics.grey:  # keep it mono, so the grounding node can say it has no colour
            image = mono_to_image_msg(frame.rgb[:, :, 0])
        else:
            image = rgb_to_image_msg(frame.rgb)
        image.header.stamp, image.header.frame_id = stamp, frame_id
        self.image_pub.publish(image)
        if frame.depth is not None:
            # the colour's stamp (frames and depth pair by stamp), but the depth's own frame_id
            # when the bag says it is not the colour image's (both set): an unregistered depth
            # topic is then refused by the grounding node rather than passed off as registered
            depth = depth_to_image_msg(frame.depth, image.header)
            if frame.depth_frame_id and frame.frame_id and frame.depth_frame_id != frame.frame_id:
                depth.header = Header(stamp=stamp, frame_id=frame.depth_frame_id)
            self.depth_pub.publish(depth)
        if frame.camera_info is not None:
            c = frame.camera_info
            info = CameraInfo(header=image.header, height=c.height, width=c.width,
                              distortion_model=c.distortion_model, binning_x=c.binning_x,
                              binning_y=c.binning_y)
            info.d, info.k, info.r, info.p = list(c.d), list(c.k), list(c.r), list(c.p)
            info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = c.roi
            self.info_pub.publish(info)


def camera_info(scene, header) -> CameraInfo:
    """The distortion-free CameraInfo of a sim.Scene's camera (its rendered image's size)."""
    from ros_ground.sim.camera import intrinsics
    from ros_ground.spatial import pinhole_matrices

    k, p = pinhole_matrices(*intrinsics(scene.camera, scene.width, scene.height))
    info = CameraInfo(header=header, height=scene.height, width=scene.width,
                      distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k, info.p = k.ravel().tolist(), p.ravel().tolist()
    info.r = np.eye(3).ravel().tolist()
    return info


def ground_truth(scene, header) -> SimGroundTruth:
    return SimGroundTruth(
        header=header,
        names=[o.name for o in scene.objects],
        categories=[o.category for o in scene.objects],
        masks=[mask_to_msg(o.mask) for o in scene.objects],
        boxes=[bbox_to_roi(o.bbox) for o in scene.objects],
        centroids=[Point(x=float(x), y=float(y), z=float(z))
                   for x, y, z in (o.centroid for o in scene.objects)],
        description=scene.description,
    )


def make_node() -> SimCameraNode:
    """The node; a bag it cannot replay or a bad parameter is logged and ends the process (1)."""
    from ros_ground.bags import BagError

    try:
        return SimCameraNode()
    except (BagError, ValueError, OSError) as exc:
        get_logger("sim_camera_node").error(str(exc))
        raise SystemExit(1) from None


def main(args=None) -> None:
    run_executable([make_node], args)


if __name__ == "__main__":
    main()
