"""rosbag2 recording of scenes and replay of image topics, without ROS."""

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_typestore

from ros_ground.sim.bag import image_topics, read_images, write_scenes
from ros_ground.sim.scene import generate_scene

START = 1_700_000_000_123_456_789


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(seed) for seed in (1, 2, 3)]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_scenes_round_trip(tmp_path, scenes, storage):
    path = tmp_path / "scenes"
    stamps = write_scenes(path, scenes, start_ns=START, period_ns=50_000_000, storage=storage)
    assert stamps == [START, START + 50_000_000, START + 100_000_000]
    assert image_topics(path) == {"/camera/image_raw": 3}
    frames = list(read_images(path))
    assert [f.stamp_ns for f in frames] == stamps
    assert all(f.frame_id == "camera_optical_frame" for f in frames)
    for frame, scene in zip(frames, scenes):
        assert frame.rgb.dtype == np.uint8 and frame.rgb.tobytes() == scene.rgb.tobytes()


def test_camera_info_written(tmp_path, scenes):
    path = tmp_path / "info"
    write_scenes(path, scenes[:1], start_ns=START, frame_id="cam")
    store = get_typestore(Stores.ROS2_HUMBLE)
    with Reader(path) as reader:
        (conn,) = [c for c in reader.connections if c.topic == "/camera/camera_info"]
        (_, _, raw), = list(reader.messages(connections=[conn]))
        info = store.deserialize_cdr(raw, conn.msgtype)
    fx, fy, cx, cy = scenes[0].intrinsics
    assert list(info.k) == [fx, 0, cx, 0, fy, cy, 0, 0, 1]
    assert (info.width, info.height, info.header.frame_id) == (320, 240, "cam")
    assert info.header.stamp.sec * 10**9 + info.header.stamp.nanosec == START


def _foreign_bag(path, frames):
    """A bag as a camera driver would record it: bgr8 / mono8 images with padded rows."""
    store = get_typestore(Stores.ROS2_JAZZY)
    Image, Header, Time = (store.types[t] for t in
                           ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    with Writer(path, version=9) as writer:
        conn = writer.add_connection("/cam/image", "sensor_msgs/msg/Image", typestore=store)
        other = writer.add_connection("/other/image", "sensor_msgs/msg/Image", typestore=store)
        for k, (encoding, pixels, stamp) in enumerate(frames):
            h, w = pixels.shape[:2]
            rows = pixels.reshape(h, -1)
            rows = np.concatenate([rows, np.zeros((h, 3), np.uint8)], axis=1)  # step padding
            msg = Image(header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="drv"),
                        height=h, width=w, encoding=encoding, is_bigendian=0, step=rows.shape[1],
                        data=rows.reshape(-1))
            writer.write(conn, 1000 + k, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
        writer.write(other, 5000, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def test_reads_other_encodings_and_picks_busiest_topic(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    grey = rgb[:, :, 0]
    path = tmp_path / "foreign"
    _foreign_bag(path, [("bgr8", rgb[:, :, ::-1].copy(), 7 * 10**9 + 5), ("mono8", grey, 0),
                        ("rgb8", rgb, 9 * 10**9)])
    assert image_topics(path) == {"/cam/image": 3, "/other/image": 1}
    frames = list(read_images(path))
    assert [f.stamp_ns for f in frames] == [7 * 10**9 + 5, 1001, 9 * 10**9]  # zero stamp -> log time
    assert np.array_equal(frames[0].rgb, rgb)
    assert np.array_equal(frames[1].rgb, np.repeat(grey[:, :, None], 3, axis=2))
    assert np.array_equal(frames[2].rgb, rgb) and frames[2].frame_id == "drv"
    assert len(list(read_images(path, topic="/other/image"))) == 1
    with pytest.raises(ValueError):
        list(read_images(path, topic="/nope"))


def test_reads_compressed_images(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.random.default_rng(1).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    store = get_typestore(Stores.ROS2_HUMBLE)
    msgtype = "sensor_msgs/msg/CompressedImage"
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    msg = store.types[msgtype](header=Header(stamp=Time(sec=3, nanosec=4), frame_id="c"), format="png",
                               data=np.frombuffer(png.tobytes(), np.uint8))
    path = tmp_path / "compressed"
    with Writer(path, version=8) as writer:
        conn = writer.add_connection("/cam/image/compressed", msgtype, typestore=store)
        writer.write(conn, 10, store.serialize_cdr(msg, msgtype))
    (frame,) = list(read_images(path))
    assert frame.stamp_ns == 3 * 10**9 + 4 and np.array_equal(frame.rgb, rgb)
