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
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)  # x_offset, y_offset, width, height


class BagFrame(NamedTuple):
    stamp_ns: int  # header stamp; the bag's log time when the header stamp is zero
    frame_id: str
    rgb: np.ndarray  # HxWx3 uint8
    depth: np.ndarray | None = None  # HxW float32 metres, NaN = no return
    camera_info: CameraInfo | None = None
    depth_frame_id: str = ""  # the depth message's own header frame_id


class BagTopics(NamedTuple):
    """The topics a replay uses ("" = none) and every image topic's message count."""

    image: str
    depth: str
    camera_info: str
    counts: dict[str, int]
    grey: bool = False  # the image topic carries no colour (mono, or depth replayed as grey)
    why: tuple[str, ...] = ()  # why the automatic choices fell where they did

    def describe(self) -> str:
        parts = [f"colour {self.image} ({self.counts.get(self.image, 0)} messages)"]
        if self.depth:
            parts.append(f"depth {self.depth} ({self.counts.get(self.depth, 0)} messages)")
        if self.camera_info:
            parts.append(f"camera_info {self.camera_info}")
        return ", ".join(parts) + "".join(f"; {why}" for why in self.why)


DEPTH_ENCODINGS = ("16uc1", "32fc1")
# an encoding (or a CompressedImage format) naming one of these carries colour
COLOUR_WORDS = ("rgb", "bgr", "yuv", "yuyv", "uyvy", "nv12", "nv21", "nv24", "bayer", "8uc3", "8uc4")
REGISTERED_WORDS = ("aligned", "registered")  # aligned_depth_to_color, depth_registered
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


def _first_message(reader: AnyReader, topic: str):
    """The topic's first deserializable message, or None."""
    connections = [c for c in reader.connections if c.topic == topic]
    for _, _, raw in reader.messages(connections=connections):
        try:
            return reader.deserialize(raw, connections[0].msgtype)
        except Exception:  # noqa: BLE001 - an unreadable first message: look at the next
            continue
    return None


def _kind(msg, topic: str) -> tuple[str, str]:
    """("depth" | "colour" | "mono", encoding) of an image topic from its first message.

    Depth is 16UC1 / 32FC1 or compressedDepth; colour an encoding naming rgb / bgr / yuv /
    bayer (a CompressedImage's format too, and a bare "jpeg" / "png", which image_transport
    writes for colour); anything else (mono8, mono16, 8UC1) is mono. A topic without a readable
    message is depth when its name says so, else colour.
    """
    if msg is None:
        return ("depth" if "depth" in topic.lower() else "colour"), "?"
    if hasattr(msg, "format"):
        fmt = str(msg.format).strip().lower()
        if "compresseddepth" in fmt:
            return "depth", str(msg.format)
        encoding = fmt.split(";")[0].strip()
        if encoding in DEPTH_ENCODINGS:
            return "depth", str(msg.format)
        grey = encoding.startswith("mono") or encoding in ("8uc1", "16uc1")
        return ("mono" if grey else "colour"), str(msg.format)
    encoding = str(msg.encoding).strip().lower()
    if encoding in DEPTH_ENCODINGS:
        return "depth", str(msg.encoding)
    return ("colour" if any(w in encoding for w in COLOUR_WORDS) else "mono"), str(msg.encoding)


def _frame_of(msg) -> str:
    return str(msg.header.frame_id) if msg is not None else ""


def select_topics(reader: AnyReader, path, topic: str | None = AUTO,
                  depth_topic: str | None = AUTO, info_topic: str | None = AUTO) -> BagTopics:
    """The colour, depth and camera_info topics to replay; raises BagError when none fits.

    By default the colour topic is the busiest image topic whose encoding carries colour
    (rgb / bgr / yuv / bayer, compressed colour), then the first by name; a mono one (mono8,
    8UC1, an IR stream) only when the bag has no colour topic, and then `grey` is set. Depth is
    16UC1 / 32FC1 or compressedDepth; by default the depth topic registered to the colour one
    (the same header frame_id as the colour topic's first message, else a name with "aligned"
    or "registered"), then the busiest. camera_info is the CameraInfo topic sharing the longest
    name prefix with the colour topic. `why` says why each automatic choice fell as it did, and
    when the depth is in another frame than the colour (both set), which the grounding node
    refuses. A
    named topic the bag lacks, or a named depth topic that is not depth, raises BagError
    listing the bag's topics.
    """
    counts = _image_topics(reader)
    if not counts:
        raise BagError(f"{path} has no sensor_msgs/Image or CompressedImage topic")
    firsts = {t: _first_message(reader, t) for t in counts}
    kinds = {t: _kind(firsts[t], t) for t in counts}
    depth_topics = {t for t in counts if kinds[t][0] == "depth"}
    why = []
    if topic is None:
        colour = {t: n for t, n in counts.items() if kinds[t][0] == "colour"}
        mono = {t: n for t, n in counts.items() if kinds[t][0] == "mono"}
        if not colour and not mono:
            raise BagError(f"{path} has only depth image topics ({sorted(depth_topics)}); "
                           "set bag_topic to replay one as grey")
        topic = sorted(colour or mono, key=lambda t: (-counts[t], t))[0]
        busier = sorted(t for t in mono if counts[t] > counts[topic])
        if not colour:
            why.append(f"{topic} is {kinds[topic][1]}: the bag has no colour image topic, so "
                       "the frames carry no colour")
        elif busier:
            why.append(f"colour ({kinds[topic][1]}) chosen over the busier mono {', '.join(busier)}")
    elif topic not in counts:
        raise BagError(f"{path} has no image topic {topic!r}; image topics: {sorted(counts)}")
    colour_frame = _frame_of(firsts[topic])
    unregistered = False  # the depth topic was taken though none is registered to the colour
    if depth_topic is None:
        candidates = depth_topics - {topic}

        def registered(t):
            if colour_frame and _frame_of(firsts[t]) == colour_frame:
                return f"frame_id {colour_frame!r} as the colour's"
            return next((f"named {w!r}" for w in REGISTERED_WORDS if w in t.lower()), "")

        ranked = sorted(candidates, key=lambda t: (not registered(t), -counts[t], t))
        depth_topic = ranked[0] if ranked else ""
        if depth_topic and registered(depth_topic):
            if len(ranked) > 1:
                why.append(f"depth registered to the colour ({registered(depth_topic)}) chosen "
                           f"over {', '.join(ranked[1:])}")
        elif depth_topic:
            unregistered = True
            why.append(f"no depth topic is registered to the colour (frame_id {colour_frame!r})")
    elif depth_topic and depth_topic not in counts:
        raise BagError(f"{path} has no depth topic {depth_topic!r}; image topics: {sorted(counts)}")
    elif depth_topic and depth_topic not in depth_topics:
        raise BagError(f"{path}: {depth_topic!r} is not depth ({kinds[depth_topic][1]}); depth "
                       f"topics: {sorted(depth_topics)}")
    depth_frame = _frame_of(firsts[depth_topic]) if depth_topic else ""
    if colour_frame and depth_frame and depth_frame != colour_frame:
        # replayed in its own frame, as the grounding node refuses depth of another camera
        why.append(f"{depth_topic} is in frame {depth_frame!r}, the colour in {colour_frame!r}: the "
                   "grounding node gives no positions from it (record depth registered to the "
                   "colour, e.g. RealSense align_depth.enable:=true, or set bag_depth_topic)")
    elif unregistered:  # a frame_id is empty: nothing says it is another camera's
        why.append(f"{depth_topic} (frame_id {depth_frame!r}) is taken as registered: positions "
                   "are off unless it is (set bag_depth_topic)")
    infos = sorted(name for name, info in reader.topics.items() if info.msgtype == CAMERA_INFO)
    if info_topic is None:
        info_topic = max(infos, key=lambda t: len(os.path.commonprefix([t, topic]))) if infos else ""
    elif info_topic and info_topic not in infos:
        raise BagError(f"{path} has no CameraInfo topic {info_topic!r}; CameraInfo topics: {infos}")
    grey = kinds[topic][0] != "colour"
    return BagTopics(topic, depth_topic, info_topic, counts, grey, tuple(why))


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

    roi = msg.roi
    return CameraInfo(int(msg.width), int(msg.height), str(msg.distortion_model),
                      field("d"), field("k"), field("r"), field("p"),
                      int(msg.binning_x), int(msg.binning_y),
                      (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)))


def read_images(path: str | Path, topic: str | None = AUTO, depth_topic: str | None = AUTO,
                info_topic: str | None = AUTO, on_skip: SkipCallback | None = None,
                ) -> Iterator[BagFrame]:
    """Stream the bag's colour frames in log order, each with its depth and camera_info.

    Topics are chosen by select_topics (None = automatic, "" = no depth / camera_info). Each
    frame is decoded when reached and nothing is kept but the frame being assembled, so memory
    does not grow with the bag. A frame's depth (and camera_info) is the one nearest in stamp
    among the last logged before it and those logged before the next colour frame; the frame keeps
    the depth message's own frame_id (depth_frame_id). Messages that fail to
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
                    value = ({"depth": image_to_depth(msg), "depth_frame_id": str(msg.header.frame_id)}
                             if field == "depth" else {"camera_info": _camera_info(msg)})
                    latest[field] = (stamp, value)
                    if pending is not None and (field not in attached or abs(stamp - pending.stamp_ns)
                                                < abs(attached[field] - pending.stamp_ns)):
                        pending, attached[field] = pending._replace(**value), stamp
                    continue
                frame = BagFrame(stamp, str(msg.header.frame_id), image_to_rgb(msg))
            except Exception as exc:  # noqa: BLE001 - rosbags' and the decoders' errors alike
                if on_skip is not None:
                    on_skip(name, int(log_ns), f"{type(exc).__name__}: {exc}")
                continue
            if pending is not None:
                yield pending
            pending = frame._replace(**{k: v for _, value in latest.values() for k, v in value.items()})
            attached = {field: ns for field, (ns, _) in latest.items()}
        if pending is not None:
            yield pending
    finally:
        reader.close()
