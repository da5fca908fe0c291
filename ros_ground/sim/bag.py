"""rosbag2 recording of generated scenes (their RGB and camera info), without ROS.

Writing uses `rosbags` with the ROS 2 Humble typestore (ros_ground.bags.TYPESTORE); the bags
play in Humble and Jazzy alike, and ros_ground.bags replays them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin

from ros_ground.bags import CAMERA_INFO, IMAGE, TYPESTORE
from ros_ground.image_encode import encode_rgb8
from ros_ground.spatial import pinhole_matrices


def _header(stamp_ns: int, frame_id: str):
    types = TYPESTORE.types
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image_message(rgb: np.ndarray, stamp_ns: int, frame_id: str):
    """An rgb8 sensor_msgs/Image (rosbags object) of an HxWx3 uint8 image.

    Raises ImageEncodeError (a ValueError) for another shape or dtype, as encode_rgb8 does.
    """
    height, width, step, data = encode_rgb8(rgb)
    return TYPESTORE.types[IMAGE](header=_header(stamp_ns, frame_id), height=height, width=width,
                                   encoding="rgb8", is_bigendian=0, step=step,
                                   data=np.frombuffer(data, dtype=np.uint8))


def camera_info_message(intrinsics: Sequence[float], width: int, height: int, stamp_ns: int, frame_id: str):
    """A distortion-free sensor_msgs/CameraInfo for (fx, fy, cx, cy)."""
    k, p = pinhole_matrices(*(float(v) for v in intrinsics))
    types = TYPESTORE.types
    return types[CAMERA_INFO](
        header=_header(stamp_ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=k.reshape(-1), r=np.eye(3).reshape(-1), p=p.reshape(-1),
        binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                      do_rectify=False))


def write_scenes(path: str | Path, scenes: Sequence, topic: str = "/camera/image_raw",
                 info_topic: str | None = "/camera/camera_info", frame_id: str = "camera_optical_frame",
                 start_ns: int | None = None, period_ns: int = 100_000_000, version: int = 8,
                 storage: str = "sqlite3") -> list[int]:
    """Write each scene's RGB (and camera info) as one message, `period_ns` apart; returns the stamps.

    `scenes` are objects with `rgb` and `intrinsics` (ros_ground.sim.Scene). The bag directory
    must not exist yet. `storage` is "sqlite3" or "mcap"; `version` the rosbag2 format (8 or 9).
    """
    start = time.time_ns() if start_ns is None else int(start_ns)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    stamps = []
    with Writer(Path(path), version=version, storage_plugin=plugin) as writer:
        image_conn = writer.add_connection(topic, IMAGE, typestore=TYPESTORE)
        info_conn = None
        if info_topic:
            info_conn = writer.add_connection(info_topic, CAMERA_INFO, typestore=TYPESTORE)
        for k, scene in enumerate(scenes):
            stamp = start + k * int(period_ns)
            msg = image_message(scene.rgb, stamp, frame_id)
            writer.write(image_conn, stamp, TYPESTORE.serialize_cdr(msg, IMAGE))
            if info_conn is not None:
                info = camera_info_message(scene.intrinsics, msg.width, msg.height, stamp, frame_id)
                writer.write(info_conn, stamp, TYPESTORE.serialize_cdr(info, CAMERA_INFO))
            stamps.append(stamp)
    return stamps
