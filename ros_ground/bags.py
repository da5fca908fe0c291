"""Streaming replay of a recorded camera's bag (a RealSense or any driver's), without ROS.

Reading goes through rosbags' AnyReader, so ROS 1 bags, rosbag2 directories, single .db3/.mcap
files and directories of .mcap files without metadata.yaml all replay; messages are decoded one
at a time (memory does not grow with the bag's length) and undecodable ones are skipped and
reported. Message definitions come from the ROS 2 Humble typestore (TYPESTORE); sensor_msgs/Image,
CompressedImage and CameraInfo are identical (same RIHS01 hash) in Humble and Jazzy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from ros_ground.image_codec import image_to_depth, image_to_rgb

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)  # immutable message definitions, built once


class BagError(ValueError):
    """The bag cannot be replayed: missing, unreadable, or without a usable image topic."""


class CameraInfo(NamedTuple):
    """The sensor_msgs/CameraInfo fields a replayer republishes."""

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]  # 3x3 row-major
    r: tuple[float, ...]
    p: tuple[float, ...]  # 3x4 row-major


class BagFrame(NamedTuple):
    stamp_ns: int  # header stamp; the bag's log time when the header stamp is zero
    frame_id: str
    rgb: np.ndarray  # HxWx3 uint8
    depth: np.ndarray | None = None  # HxW float32 metres, NaN = no return
    camera_info: CameraInfo | None = None


class BagTopics(NamedTuple):
    """The topics a replay uses ("" = none) and every image topic's message count."""

    image: str
    depth: str
    camera_info: str
    counts: dict[str, int]

    def describe(self) -> str:
        parts = [f"colour {self.image} ({self.counts.get(self.image, 0)} messages)"]
        if self.depth:
            parts.append(f"depth {self.depth}")
        if self.camera_info:
            parts.append(f"camera_info {self.camera_info}")
        return ", ".join(parts)


DEPTH_ENCODINGS = ("16uc1", "32fc1")
AUTO = None  # pick the topic; "" turns depth or camera_info off
SkipCallback = Callable[[str, int, str], None]  # (topic, log time ns, reason)


def bag_paths(path: str | Path) -> list[Path]:
    """The files or directory AnyReader opens for `path`; raises BagError when there are none.

    `path` is a rosbag2 directory (with metadata.yaml), a .db3 / .mcap file, a ROS 1 .bag
    file, or a directory of .mcap (or .bag) files without metadata.yaml (read as one bag).
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if path.is_file():
        if path.suffix not in (".db3", ".mcap", ".bag"):
            raise BagError(f"{path} is not a bag (expected a .db3, .mcap or ROS 1 .bag file, "
                           "or a bag directory)")
        return [path]
    if (path / "metadata.yaml").is_file():
        return [path]
    for suffix in (".mcap", ".bag", ".db3"):
        files = sorted(p for p in path.iterdir() if p.suffix == suffix and p.is_file())
        if files:
            return files
    raise BagError(f"{path} has no metadata.yaml and no .mcap, .db3 or .bag files")


def _open(path: str | Path) -> AnyReader:
    paths = bag_paths(path)
    try:
        reader = AnyReader(paths, default_typestore=TYPESTORE)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds for unreadable files
        raise BagError(f"cannot read bag {path}: {exc}") from exc
    return reader


def image_topics(path: str | Path) -> dict[str, int]:
    """Image and CompressedImage topics of a bag with their message counts."""
    reader = _open(path)
    try:
        return _image_topics(reader)
    finally:
        reader.close()


def _image_topics(reader: AnyReader) -> dict[str, int]:
    return {name: info.msgcount for name, info in reader.topics.items()
            if info.msgtype in (IMAGE, COMPRESSED)}


def _is_depth(reader: AnyReader, topic: str) -> bool:
    """A topic is depth when its first decodable message is 16UC1/32FC1 or compressedDepth."""
    connections = [c for c in reader.connections if c.topic == topic]
    for _, _, raw in reader.messages(connections=connections):
        try:
            msg = reader.deserialize(raw, connections[0].msgtype)
        except Exception:  # noqa: BLE001 - an unreadable first message: look at the next
            continue
        if hasattr(msg, "format"):
            return "compresseddepth" in str(msg.format).lower()
        return str(msg.encoding).strip().lower() in DEPTH_ENCODINGS
    return "depth" in topic.lower()


def select_topics(reader: AnyReader, path, topic: str | None = AUTO,
                  depth_topic: str | None = AUTO, info_topic: str | None = AUTO) -> BagTopics:
    """The colour, depth and camera_info topics to replay; raises BagError when none fits.

    By default the colour topic is the busiest image topic that is not depth (16UC1 / 32FC1
    images or compressedDepth), then the first by name; depth the busiest depth topic; and
    camera_info the CameraInfo topic sharing the longest name prefix with the colour topic.
    """
    counts = _image_topics(reader)
    if not counts:
        raise BagError(f"{path} has no sensor_msgs/Image or CompressedImage topic")
    depth_topics = {t for t in counts if _is_depth(reader, t)}
    colour = {t: n for t, n in counts.items() if t not in depth_topics}
    if topic is None:
        if not colour:
            raise BagError(f"{path} has only depth image topics ({sorted(depth_topics)}); "
                           "set bag_topic to replay one as grey")
        topic = sorted(colour, key=lambda t: (-colour[t], t))[0]
    elif topic not in counts:
        raise BagError(f"{path} has no image topic {topic!r}; image topics: {sorted(counts)}")
    if depth_topic is None:
        candidates = sorted(depth_topics - {topic}, key=lambda t: (-counts[t], t))
        depth_topic = candidates[0] if candidates else ""
    elif depth_topic and depth_topic not in counts:
        raise BagError(f"{path} has no depth topic {depth_topic!r}; image topics: {sorted(counts)}")
    infos = sorted(name for name, info in reader.topics.items() if info.msgtype == CAMERA_INFO)
    if info_topic is None:
        info_topic = max(infos, key=lambda t: len(os.path.commonprefix([t, topic]))) if infos else ""
    elif info_topic and info_topic not in infos:
        raise BagError(f"{path} has no CameraInfo topic {info_topic!r}; CameraInfo topics: {infos}")
    return BagTopics(topic, depth_topic, info_topic, counts)


def bag_topics(path: str | Path, topic: str | None = AUTO, depth_topic: str | None = AUTO,
               info_topic: str | None = AUTO) -> BagTopics:
    """What `read_images` with these arguments replays (see select_topics)."""
    reader = _open(path)
    try:
        return select_topics(reader, path, topic, depth_topic, info_topic)
    finally:
        reader.close()


def _stamp(msg, log_ns: int) -> int:
    stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    return int(stamp or log_ns)


def _camera_info(msg) -> CameraInfo:
    # ROS 1 names the matrices D, K, R, P
    def field(name):
        return tuple(float(v) for v in getattr(msg, name, getattr(msg, name.upper(), ())))

    return CameraInfo(int(msg.width), int(msg.height), str(msg.distortion_model),
                      field("d"), field("k"), field("r"), field("p"))


def read_images(path: str | Path, topic: str | None = AUTO, depth_topic: str | None = AUTO,
                info_topic: str | None = AUTO, on_skip: SkipCallback | None = None,
                ) -> Iterator[BagFrame]:
    """Stream the bag's colour frames in log order, each with its depth and camera_info.

    Topics are chosen by select_topics (None = automatic, "" = no depth / camera_info). Each
    frame is decoded when reached and nothing is kept but the frame being assembled, so memory
    does not grow with the bag. A frame's depth (and camera_info) is the one nearest in stamp
    among the last logged before it and those logged before the next colour frame. Messages that fail to
    deserialize or decode are skipped and passed to `on_skip(topic, log_ns, reason)`. Raises
    BagError when the bag cannot be opened or has no usable image topic.
    """
    reader = _open(path)
    try:
        topics = select_topics(reader, path, topic, depth_topic, info_topic)
        wanted = {topics.image, topics.depth, topics.camera_info} - {""}
        connections = [c for c in reader.connections if c.topic in wanted]
        pending: BagFrame | None = None
        attached: dict[str, int] = {}  # field of `pending` -> stamp of what it holds
        latest: dict[str, tuple[int, object]] = {}  # field -> (stamp, value) last read
        for connection, log_ns, raw in reader.messages(connections=connections):
            name = connection.topic
            try:
                msg = reader.deserialize(raw, connection.msgtype)
                stamp = _stamp(msg, log_ns)
                if name in (topics.depth, topics.camera_info):
                    field = "depth" if name == topics.depth else "camera_info"
                    value = image_to_depth(msg) if field == "depth" else _camera_info(msg)
                    latest[field] = (stamp, value)
                    if pending is not None and (field not in attached or abs(stamp - pending.stamp_ns)
                                                < abs(attached[field] - pending.stamp_ns)):
                        pending, attached[field] = pending._replace(**{field: value}), stamp
                    continue
                frame = BagFrame(stamp, str(msg.header.frame_id), image_to_rgb(msg))
            except Exception as exc:  # noqa: BLE001 - rosbags' and the decoders' errors alike
                if on_skip is not None:
                    on_skip(name, int(log_ns), f"{type(exc).__name__}: {exc}")
                continue
            if pending is not None:
                yield pending
            pending = frame._replace(**{field: value for field, (_, value) in latest.items()})
            attached = {field: ns for field, (ns, _) in latest.items()}
        if pending is not None:
            yield pending
    finally:
        reader.close()
