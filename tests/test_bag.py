"""rosbag2 recording of scenes (sim.bag) and replay of any bag's image topics (bags), without ROS."""

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_typestore

from ros_ground.bags import image_topics, read_images
from ros_ground.image_encode import ImageEncodeError
from ros_ground.sim.bag import image_message, write_scenes
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


@pytest.mark.parametrize("image", [np.full((2, 3, 3), 0.8), np.full((2, 3, 3), 300),
                                   np.zeros((2, 3), np.uint8)])
def test_image_message_refuses_what_a_cast_would_corrupt(image):
    # a float image in 0..1 cast to uint8 goes out black, 300 wraps to 44: refuse, as encode_rgb8 does
    with pytest.raises(ImageEncodeError, match="HxWx3 uint8"):
        image_message(image, START, "cam")


def test_image_message_keeps_the_pixels():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)[:, ::-1]  # not contiguous
    msg = image_message(rgb, START, "cam")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (2, 3, 9, "rgb8")
    assert bytes(msg.data) == np.ascontiguousarray(rgb).tobytes()


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


# -- bags as cameras record them: colour + depth + camera_info, compressed, ROS 1, no metadata ---

import struct  # noqa: E402
import tracemalloc  # noqa: E402

from rosbags.rosbag1 import Writer as Writer1  # noqa: E402
from rosbags.rosbag2.enums import StoragePlugin  # noqa: E402

from ros_ground.bags import BagError, bag_topics  # noqa: E402

IMAGE, COMPRESSED, INFO = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                           "sensor_msgs/msg/CameraInfo")


def _colour(k, h=6, w=8):
    return np.full((h, w, 3), (10 * k, 100, 200 - 10 * k), np.uint8)


def _depth_mm(k, h=6, w=8):
    mm = np.full((h, w), 1000 + 100 * k, np.uint16)
    mm[0, 0] = 0  # no return
    return mm


class _Msgs:
    """Builds rosbags message objects of one typestore."""

    def __init__(self, store):
        self.store, self.t = store, store.types

    def header(self, stamp, frame_id="cam"):
        time = self.t["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
        fields = dict(stamp=time, frame_id=frame_id)
        if "seq" in self.t["std_msgs/msg/Header"].__dataclass_fields__:  # ROS 1
            fields["seq"] = 0
        return self.t["std_msgs/msg/Header"](**fields)

    def image(self, stamp, pixels, encoding, data=None, frame_id="cam"):
        h, w = pixels.shape[:2]
        raw = np.ascontiguousarray(pixels).view(np.uint8).reshape(h, -1)
        return self.t[IMAGE](header=self.header(stamp, frame_id), height=h, width=w, encoding=encoding,
                             is_bigendian=0, step=raw.shape[1],
                             data=raw.ravel() if data is None else data)

    def compressed(self, stamp, fmt, payload):
        return self.t[COMPRESSED](header=self.header(stamp), format=fmt,
                                  data=np.frombuffer(payload, np.uint8))

    def info(self, stamp, fx, size=(8, 6), binning=(0, 0), roi=(0, 0, 0, 0)):
        """CameraInfo of a `size` (width, height) camera, `binning` (x, y), `roi` (x_offset,
        y_offset, width, height)."""
        names = self.t[INFO].__dataclass_fields__
        upper = "K" in names  # ROS 1 spells the matrices in capitals
        mats = {"d": np.zeros(5), "k": np.array([fx, 0, 4, 0, fx, 3, 0, 0, 1.0]),
                "r": np.eye(3).ravel(), "p": np.array([fx, 0, 4, 0, 0, fx, 3, 0, 0, 0, 1, 0.0])}
        x, y, w, h = roi
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](x_offset=x, y_offset=y, height=h,
                                                         width=w, do_rectify=False)
        return self.t[INFO](header=self.header(stamp), height=size[1], width=size[0],
                            distortion_model="plumb_bob", binning_x=binning[0],
                            binning_y=binning[1], roi=roi,
                            **{(n.upper() if upper else n): v for n, v in mats.items()})


def _rgbd_messages(m: _Msgs, frames=3, bad_at=1):
    """(topic, msgtype, log_ns, msg): colour, depth (busier: twice per frame), camera_info,
    and one colour frame whose data does not match its size."""
    out = []
    for k in range(frames):
        stamp = START + k * 10**8
        if k == bad_at:
            out.append(("/cam/color/image_raw", IMAGE, stamp,
                        m.image(stamp, _colour(k), "rgb8", data=np.zeros(5, np.uint8))))
        else:
            out.append(("/cam/color/image_raw", IMAGE, stamp, m.image(stamp, _colour(k), "rgb8")))
        # a binned sensor's ROI: 8x6 published of a 20x14 sensor
        out.append(("/cam/color/camera_info", INFO, stamp, m.info(stamp, 500.0 + k, (20, 14), (2, 2),
                                                                  (2, 1, 16, 12))))
        out.append(("/cam/depth/camera_info", INFO, stamp, m.info(stamp, 1.0)))
        for extra in (1, 2):  # depth logged just after the colour frame, the nearer one first
            out.append(("/cam/depth/image_rect_raw", IMAGE, stamp + extra,
                        m.image(stamp + 1000 * (extra - 1), _depth_mm(k), "16UC1")))
    return out


def _write2(path, messages, version=9, storage="sqlite3"):
    store = get_typestore(Stores.ROS2_HUMBLE)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=version, storage_plugin=plugin) as writer:
        conns = {}
        for topic, msgtype, log_ns, msg in messages:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], log_ns, store.serialize_cdr(msg, msgtype))


def _check_rgbd(frames, skipped):
    assert [f.stamp_ns for f in frames] == [START, START + 2 * 10**8]
    for frame, k in zip(frames, (0, 2)):
        assert np.array_equal(frame.rgb, _colour(k)) and frame.frame_id == "cam"
        assert frame.depth.dtype == np.float32 and np.isnan(frame.depth[0, 0])
        assert frame.depth[1, 1] == pytest.approx((1000 + 100 * k) / 1000)
        assert frame.camera_info.k[0] == 500.0 + k  # the colour camera's, not the depth one's
        assert frame.camera_info.width == 20 and len(frame.camera_info.p) == 12
        info = frame.camera_info  # binning and ROI travel: K is the full sensor's
        assert (info.binning_x, info.binning_y, info.roi) == (2, 2, (2, 1, 16, 12))
    assert [s[0] for s in skipped] == ["/cam/color/image_raw"] and "bytes" in skipped[0][2]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("version", [8, 9])
def test_colour_depth_bag_with_a_bad_frame(tmp_path, storage, version):
    path = tmp_path / "rgbd"
    _write2(path, _rgbd_messages(_Msgs(get_typestore(Stores.ROS2_HUMBLE))), version, storage)
    topics = bag_topics(path)
    # the depth topic is the busiest; the colour one is replayed
    assert topics.counts["/cam/depth/image_rect_raw"] > topics.counts["/cam/color/image_raw"]
    assert (topics.image, topics.depth, topics.camera_info) == (
        "/cam/color/image_raw", "/cam/depth/image_rect_raw", "/cam/color/camera_info")
    assert "colour /cam/color/image_raw" in topics.describe()
    skipped = []
    frames = list(read_images(path, on_skip=lambda *a: skipped.append(a)))
    _check_rgbd(frames, skipped)
    plain = list(read_images(path, depth_topic="", info_topic=""))
    assert len(plain) == 2 and plain[0].depth is None and plain[0].camera_info is None
    grey = list(read_images(path, topic="/cam/depth/image_rect_raw", depth_topic=""))
    assert len(grey) == 6 and grey[0].rgb.shape == (6, 8, 3)


def test_compressed_and_compressed_depth_bag(tmp_path):
    import cv2

    m = _Msgs(get_typestore(Stores.ROS2_HUMBLE))
    messages = []
    for k in range(3):
        stamp = START + k * 10**8
        png = cv2.imencode(".png", _colour(k)[:, :, ::-1])[1].tobytes()
        depth = struct.pack("<iff", 0, 0.0, 0.0) + cv2.imencode(".png", _depth_mm(k))[1].tobytes()
        if k == 1:
            png = b"\x89PNG broken"
        messages += [("/cam/image/compressed", COMPRESSED, stamp,
                      m.compressed(stamp, "rgb8; png compressed bgr8", png)),
                     ("/cam/depth/compressedDepth", COMPRESSED, stamp + 1,
                      m.compressed(stamp, "16UC1; compressedDepth png", depth))]
    path = tmp_path / "compressed"
    _write2(path, messages, storage="mcap")
    topics = bag_topics(path)
    assert (topics.image, topics.depth) == ("/cam/image/compressed", "/cam/depth/compressedDepth")
    skipped = []
    frames = list(read_images(path, on_skip=lambda *a: skipped.append(a)))
    assert [f.stamp_ns for f in frames] == [START, START + 2 * 10**8]
    assert np.array_equal(frames[1].rgb, _colour(2))
    assert frames[1].depth[1, 1] == pytest.approx(1.2) and np.isnan(frames[1].depth[0, 0])
    assert len(skipped) == 1 and skipped[0][0] == "/cam/image/compressed"


def test_a_compressed_frame_whose_size_is_not_read_before_decoding_is_skipped(tmp_path):
    # trial132 D1: a bag's CompressedImage holding a Radiance .hdr (format "jpeg") was decoded
    # whole before its size was checked (3.4 GB for one declaring 12000x12000)
    import cv2

    m = _Msgs(get_typestore(Stores.ROS2_HUMBLE))
    hdr = cv2.imencode(".hdr", _colour(1).astype(np.float32) / 255)[1].tobytes()
    messages = [("/cam/image/compressed", COMPRESSED, START + k * 10**8,
                 m.compressed(START + k * 10**8, "jpeg", hdr if k == 1 else
                              cv2.imencode(".png", _colour(k)[:, :, ::-1])[1].tobytes())) for k in range(3)]
    path = tmp_path / "hdr"
    _write2(path, messages, storage="mcap")
    skipped = []
    frames = list(read_images(path, on_skip=lambda *a: skipped.append(a)))
    assert [f.stamp_ns for f in frames] == [START, START + 2 * 10**8]
    assert len(skipped) == 1 and "not an image of a format taken" in skipped[0][2]


def test_directory_of_mcap_files_without_metadata(tmp_path):
    store = get_typestore(Stores.ROS2_HUMBLE)
    m = _Msgs(store)
    folder = tmp_path / "split"
    folder.mkdir()
    for part, ks in enumerate([(0, 1), (2, 3)]):
        bag = tmp_path / f"part{part}"
        _write2(bag, [("/cam/image", IMAGE, START + k, m.image(START + k, _colour(k), "rgb8"))
                      for k in ks], storage="mcap")
        (mcap,) = bag.glob("*.mcap")
        mcap.rename(folder / f"split_{part}.mcap")
    assert not (folder / "metadata.yaml").exists()
    frames = list(read_images(folder))
    assert [f.stamp_ns for f in frames] == [START + k for k in range(4)]
    assert all(np.array_equal(f.rgb, _colour(k)) for k, f in enumerate(frames))
    (one,) = sorted(folder.glob("*.mcap"))[:1]
    assert len(list(read_images(one))) == 2  # a single .mcap file


def test_single_db3_file(tmp_path):
    m = _Msgs(get_typestore(Stores.ROS2_HUMBLE))
    _write2(tmp_path / "b", [("/cam/image", IMAGE, START, m.image(START, _colour(1), "rgb8"))])
    (db3,) = (tmp_path / "b").glob("*.db3")
    (frame,) = list(read_images(db3))
    assert np.array_equal(frame.rgb, _colour(1))


def test_ros1_bag(tmp_path):
    store = get_typestore(Stores.ROS1_NOETIC)
    m = _Msgs(store)
    path = tmp_path / "camera.bag"
    with Writer1(path) as writer:
        conns = {}
        for topic, msgtype, log_ns, msg in _rgbd_messages(m):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], log_ns, store.serialize_ros1(msg, msgtype))
    skipped = []
    _check_rgbd(list(read_images(path, on_skip=lambda *a: skipped.append(a))), skipped)


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "not a bag"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no metadata.yaml"),
    (lambda p: (p / "bad.mcap").write_bytes(b"garbage") and p / "bad.mcap", "cannot read bag"),
])
def test_unusable_paths_are_one_clear_error(tmp_path, make, match):
    with pytest.raises(BagError, match=match):
        list(read_images(make(tmp_path)))


def test_depth_only_bag_is_refused_by_default(tmp_path):
    m = _Msgs(get_typestore(Stores.ROS2_HUMBLE))
    path = tmp_path / "depth_only"
    _write2(path, [("/cam/depth", IMAGE, START, m.image(START, _depth_mm(1), "16UC1"))])
    with pytest.raises(BagError, match="only depth"):
        bag_topics(path)
    assert len(list(read_images(path, topic="/cam/depth"))) == 1


COLOR, ALIGNED, UNREG, IR = ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw",
                              "/camera/depth/image_rect_raw", "/camera/infra1/image_rect_raw")
COLOR_FRAME, DEPTH_FRAME = "camera_color_optical_frame", "camera_depth_optical_frame"


def _realsense_messages(m: _Msgs, frames=6, colour=True):
    """A RealSense recording: infra1 (mono8, twice as busy as colour), colour (bgr8), the
    sensor's own depth (unregistered, its own frame, 1.5 m) and aligned depth (the colour's
    frame, 1.0 m + 0.1 m a frame) that dropped two frames, so the unregistered one is busier."""
    out = []
    for k in range(frames):
        stamp = START + k * 10**8
        for half in (0, 5 * 10**7):
            out.append((IR, IMAGE, stamp + half, m.image(stamp + half, _colour(k)[:, :, 0], "mono8",
                                                         frame_id="camera_infra1_optical_frame")))
        if colour:
            out.append((COLOR, IMAGE, stamp, m.image(stamp, _colour(k)[:, :, ::-1], "bgr8",
                                                     frame_id=COLOR_FRAME)))
        out.append((UNREG, IMAGE, stamp + 1, m.image(stamp, np.full((6, 8), 1500, np.uint16), "16UC1",
                                                     frame_id=DEPTH_FRAME)))
        if k not in (2, 4):
            out.append((ALIGNED, IMAGE, stamp + 2, m.image(stamp, _depth_mm(k), "16UC1",
                                                           frame_id=COLOR_FRAME if colour else "")))
    return out


def test_realsense_bag_replays_colour_and_registered_depth_not_the_busiest(tmp_path):
    path = tmp_path / "realsense"
    _write2(path, _realsense_messages(_Msgs(get_typestore(Stores.ROS2_HUMBLE))))
    topics = bag_topics(path)
    assert topics.counts[IR] > topics.counts[COLOR] and topics.counts[UNREG] > topics.counts[ALIGNED]
    assert (topics.image, topics.depth) == (COLOR, ALIGNED) and not topics.grey
    said = topics.describe()
    assert f"chosen over the busier mono {IR}" in said
    assert f"frame_id {COLOR_FRAME!r} as the colour's" in said and f"over {UNREG}" in said
    frames = list(read_images(path))
    assert len(frames) == 6 and np.array_equal(frames[0].rgb, _colour(0))
    # aligned depth, paired with its own frame (k) and, where it was dropped, the previous one
    assert [round(float(f.depth[1, 1]), 1) for f in frames] == [1.0, 1.1, 1.1, 1.3, 1.3, 1.5]
    assert {f.depth_frame_id for f in frames} == {COLOR_FRAME} == {f.frame_id for f in frames}


def test_bag_depth_topic_chosen_by_hand_keeps_its_own_frame_id(tmp_path):
    path = tmp_path / "realsense"
    _write2(path, _realsense_messages(_Msgs(get_typestore(Stores.ROS2_HUMBLE))))
    assert bag_topics(path, depth_topic=UNREG).depth == UNREG
    frames = list(read_images(path, depth_topic=UNREG))
    assert {f.depth_frame_id for f in frames} == {DEPTH_FRAME} and frames[0].frame_id == COLOR_FRAME
    assert float(frames[0].depth[1, 1]) == pytest.approx(1.5)
    with pytest.raises(BagError, match=r"no depth topic '/nope'.*" + ALIGNED):
        bag_topics(path, depth_topic="/nope")
    with pytest.raises(BagError, match=f"{IR}' is not depth .mono8.; depth topics: .*{UNREG}"):
        bag_topics(path, depth_topic=IR)


def test_unregistered_depth_alone_is_said(tmp_path):
    path = tmp_path / "unregistered"
    m = _Msgs(get_typestore(Stores.ROS2_HUMBLE))
    _write2(path, [msg for msg in _realsense_messages(m) if msg[0] != ALIGNED])
    topics = bag_topics(path)
    assert topics.depth == UNREG and "no depth topic is registered to the colour" in topics.describe()
    # replayed in its own frame, the grounding node refuses it: the start-up line says so
    assert (f"{UNREG} is in frame {DEPTH_FRAME!r}, the colour in {COLOR_FRAME!r}: the grounding "
            "node gives no positions from it") in topics.describe()


def test_unregistered_depth_chosen_by_hand_is_said(tmp_path):
    path = tmp_path / "realsense"
    _write2(path, _realsense_messages(_Msgs(get_typestore(Stores.ROS2_HUMBLE))))
    assert "the grounding node gives no positions from it" in bag_topics(path, depth_topic=UNREG).describe()
    assert "the grounding node gives no positions" not in bag_topics(path).describe()


def test_registered_depth_by_name_and_a_mono_only_bag(tmp_path):
    path = tmp_path / "ir_only"
    _write2(path, _realsense_messages(_Msgs(get_typestore(Stores.ROS2_HUMBLE)), colour=False))
    topics = bag_topics(path)
    # no colour topic: the IR one, said to be grey; the aligned depth by its name (no frame_id)
    assert (topics.image, topics.depth) == (IR, ALIGNED) and topics.grey
    assert "mono8: the bag has no colour image topic" in topics.describe()
    assert "named 'aligned'" in topics.describe()


def _peak_bytes(path) -> int:
    tracemalloc.start()
    try:
        for _ in read_images(path):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_replay_memory_does_not_grow_with_bag_length(tmp_path):
    import cv2

    m = _Msgs(get_typestore(Stores.ROS2_HUMBLE))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # 230 kB decoded
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    peaks = {}
    for count in (4, 40):
        path = tmp_path / f"n{count}"
        _write2(path, [("/cam/image/compressed", COMPRESSED, START + k,
                        m.compressed(START + k, "jpeg", jpeg)) for k in range(count)],
                storage="mcap")
        peaks[count] = _peak_bytes(path)
    # a list of 40 decoded frames would add 36 x 230 kB = 8 MB over the short bag
    assert peaks[40] < peaks[4] + 2_000_000, peaks
