"""rosbag2 recording of generated scenes and replay of any bag's camera images, without ROS.

Uses `rosbags` with the ROS 2 Humble typestore; sensor_msgs/Image and CameraInfo are identical
(same RIHS01 hash) in Humble and Jazzy, so the bags play in either and any ROS 2 bag reads back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys import Stores, get_typestore

from ros_ground.image_codec import decode_image

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
_TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)  # immutable message definitions, built once


class BagFrame(NamedTuple):
    stamp_ns: int  # header stamp; the bag's log time when the header stamp is zero
    frame_id: str
    rgb: np.ndarray  # HxWx3 uint8


def _header(stamp_ns: int, frame_id: str):
    types = _TYPESTORE.types
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image_message(rgb: np.ndarray, stamp_ns: int, frame_id: str):
    """An rgb8 sensor_msgs/Image (rosbags object) of an HxWx3 uint8 image."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    return _TYPESTORE.types[IMAGE](header=_header(stamp_ns, frame_id), height=height, width=width,
                                   encoding="rgb8", is_bigendian=0, step=width * 3, data=rgb.reshape(-1))


def camera_info_message(intrinsics: Sequence[float], width: int, height: int, stamp_ns: int, frame_id: str):
    """A distortion-free sensor_msgs/CameraInfo for (fx, fy, cx, cy)."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    types = _TYPESTORE.types
    return types[CAMERA_INFO](
        header=_header(stamp_ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], dtype=np.float64),
        r=np.eye(3).reshape(-1), p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], dtype=np.float64),
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
        image_conn = writer.add_connection(topic, IMAGE, typestore=_TYPESTORE)
        info_conn = None
        if info_topic:
            info_conn = writer.add_connection(info_topic, CAMERA_INFO, typestore=_TYPESTORE)
        for k, scene in enumerate(scenes):
            stamp = start + k * int(period_ns)
            msg = image_message(scene.rgb, stamp, frame_id)
            writer.write(image_conn, stamp, _TYPESTORE.serialize_cdr(msg, IMAGE))
            if info_conn is not None:
                info = camera_info_message(scene.intrinsics, msg.width, msg.height, stamp, frame_id)
                writer.write(info_conn, stamp, _TYPESTORE.serialize_cdr(info, CAMERA_INFO))
            stamps.append(stamp)
    return stamps


def image_topics(path: str | Path) -> dict[str, int]:
    """Image and CompressedImage topics of a bag with their message counts."""
    with Reader(Path(path)) as reader:
        return _image_topics(reader)


def _image_topics(reader: Reader) -> dict[str, int]:
    topics = reader.topics.items()
    return {name: info.msgcount for name, info in topics if info.msgtype in (IMAGE, COMPRESSED)}


def _pick_topic(topics: dict[str, int], path: Path) -> str:
    if not topics:
        raise ValueError(f"{path} has no sensor_msgs/Image or CompressedImage topic")
    return sorted(topics, key=lambda t: (-topics[t], t))[0]  # the busiest, then by name


def _decode(msg, msgtype: str) -> np.ndarray:
    if msgtype == COMPRESSED:
        import cv2

        bgr = cv2.imdecode(np.frombuffer(np.asarray(msg.data, dtype=np.uint8), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode compressed image (format {msg.format!r})")
        return np.ascontiguousarray(bgr[:, :, ::-1])
    return decode_image(encoding=msg.encoding, height=msg.height, width=msg.width, step=msg.step,
                        is_bigendian=msg.is_bigendian, data=msg.data)


def read_images(path: str | Path, topic: str | None = None) -> Iterator[BagFrame]:
    """Yield (stamp_ns, frame_id, HxWx3 uint8 RGB) for each image on `topic`, in log order.

    Without `topic`, the image topic with the most messages. Handles the encodings of
    ros_ground.image_codec (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1, 32FC1, ...) and
    sensor_msgs/CompressedImage (JPEG/PNG).
    """
    path = Path(path)
    with Reader(path) as reader:
        topics = _image_topics(reader)
        if topic is None:
            topic = _pick_topic(topics, path)
        elif topic not in topics:
            raise ValueError(f"{path} has no image topic {topic!r}; image topics: {sorted(topics)}")
        connections = [c for c in reader.connections if c.topic == topic]
        for connection, log_ns, raw in reader.messages(connections=connections):
            msg = _TYPESTORE.deserialize_cdr(raw, connection.msgtype)
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            yield BagFrame(int(stamp or log_ns), str(msg.header.frame_id), _decode(msg, connection.msgtype))
