"""3-D position and size from a mask, registered depth and K, on scenes with known answers."""

import cv2
import numpy as np
import pytest

from ros_ground.image_codec import depth_to_metres
from ros_ground.spatial import (
    back_project,
    check_intrinsics,
    depth_at,
    load_camera_info,
    locate,
    pinhole_matrices,
    project,
)

W, H = 640, 480
K = pinhole_matrices(500.0, 520.0, 319.5, 241.0)[0]


def _pixels():
    return np.mgrid[0:H, 0:W].astype(np.float64)


def _box_scene(centre=(0.05, -0.02), half=(0.1, 0.05), z=1.0, background=3.0):
    """A fronto-parallel face (its centre at (x, y, z)) in front of a far wall, and its mask."""
    rows, cols = _pixels()
    x_at, y_at = (cols - K[0, 2]) / K[0, 0] * z, (rows - K[1, 2]) / K[1, 1] * z
    mask = (np.abs(x_at - centre[0]) <= half[0]) & (np.abs(y_at - centre[1]) <= half[1])
    depth = np.where(mask, z, background).astype(np.float32)
    return mask, depth


def _with_flying_pixels(mask, depth, near=1.0, far=3.0):
    """A one-pixel ring around the mask at depths between the face and the wall (as a depth
    camera's edge interpolation gives them), inside a mask drawn one pixel too large."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ring = grown & ~mask
    noisy = depth.copy()
    noisy[ring] = np.random.default_rng(0).uniform(near + 0.2, far - 0.2, int(ring.sum()))
    return grown, noisy


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_box_face_centre_and_size(encoding):
    face, depth = _box_scene()
    mask, depth = _with_flying_pixels(face, depth)
    raw = depth if encoding == "32FC1" else np.round(depth * 1000).astype(np.uint16)
    metres = depth_to_metres(raw, encoding)
    got = locate(mask, metres, K)
    np.testing.assert_allclose(got.position, [0.05, -0.02, 1.0], atol=0.002)
    # 5-95 % of a uniform 0.2 x 0.1 m face, flat in z
    np.testing.assert_allclose(got.size, [0.9 * 0.2, 0.9 * 0.1, 0.0], atol=0.006)
    assert got.depth_points == face.sum()  # the whole face, rim included; no flying pixel

    full = locate(mask, metres, K, percentiles=(0, 100))
    np.testing.assert_allclose(full.size, [0.2, 0.1, 0.0], atol=0.005)


def test_mask_overshooting_onto_the_background():
    """A predicted mask 4 px too large all round: the wall it covers is not the object."""
    face, depth = _box_scene()
    grown = cv2.dilate(face.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    got = locate(grown, depth, K)
    np.testing.assert_allclose(got.position, [0.05, -0.02, 1.0], atol=0.001)
    assert got.depth_points == face.sum()


def test_flying_pixels_would_drag_without_erosion_and_rejection():
    mask, depth = _box_scene()
    mask, depth = _with_flying_pixels(mask, depth)
    naive = back_project(*np.nonzero(mask), depth[mask], K).mean(axis=0)
    assert abs(naive[2] - 1.0) > 0.05  # the estimate the robust one is protected from
    robust = locate(mask, depth, K)
    assert abs(robust.position[2] - 1.0) < 0.001


def test_holes_do_not_move_the_centre():
    mask, depth = _box_scene()
    holes = np.random.default_rng(1).random(depth.shape) < 0.4
    depth_mm = np.round(depth * 1000).astype(np.uint16)
    depth_mm[holes] = 0  # no return
    depth_nan = depth.copy()
    depth_nan[holes] = np.nan
    for raw in (depth_mm, depth_nan):
        got = locate(mask, depth_to_metres(raw), K)
        np.testing.assert_allclose(got.position, [0.05, -0.02, 1.0], atol=0.003)
        assert 0.5 * mask.sum() < got.depth_points < 0.65 * mask.sum()


def test_an_inside_without_returns_is_not_placed_on_its_border():
    """A black or shiny face returns little depth; the mask's 2-px overshoot all round lies on
    the wall behind. The returns inside, however few, are the face's; with none inside there
    is no position, not the wall's (helper-120's D1: 0.9 m behind the object, unflagged)."""
    face, depth = _box_scene()
    grown = cv2.dilate(face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    sparse = np.where(face, np.nan, depth).astype(np.float32)
    rows, cols = np.nonzero(face)
    picked = np.random.default_rng(2).choice(rows.size, 9, replace=False)
    sparse[rows[picked], cols[picked]] = 1.0
    got = locate(grown, sparse, K)
    assert got.depth_points == 9
    assert got.position[2] == pytest.approx(1.0)
    np.testing.assert_allclose(got.position, back_project(
        rows[picked].astype(float), cols[picked].astype(float), np.ones(9), K).mean(axis=0))
    none = locate(grown, np.where(face, np.nan, depth).astype(np.float32), K)
    assert none.depth_points == 0 and np.all(np.isnan(none.position))


def test_a_mask_half_past_the_object_keeps_one_surface():
    """A mask shifted half off its object onto the wall behind: the median of the two depths
    lies between them, on neither, and their spread widens the band to keep both (helper-120's
    D2: 47 cm off, in free space). Half and half, the nearer is taken."""
    face, depth = _box_scene()
    rows, cols = np.nonzero(face)
    shift = (cols.max() - cols.min() + 1) // 2
    shifted = np.zeros_like(face)
    shifted[rows.min():rows.max() + 1, cols.min() + shift:cols.max() + 1 + shift] = True
    got = locate(shifted, depth, K)
    seen = shifted & face
    np.testing.assert_allclose(got.position, back_project(*np.nonzero(seen), depth[seen], K).mean(axis=0),
                               atol=1e-6)
    assert got.depth_points == seen.sum()


def test_three_surfaces_give_the_largest_not_their_median():
    """A face (40% of the mask) before a wall and a farther wall (30% each): the median is on
    the first wall and the spread keeps all three, so the old centre was in mid-air."""
    face, depth = _box_scene()
    rows, cols = np.nonzero(face)
    mask = np.zeros_like(face)
    width = cols.max() - cols.min() + 1
    mask[rows.min():rows.max() + 1, cols.min():cols.min() + int(width / 0.4)] = True
    layered = depth.copy()
    split = cols.max() + 1 + int((mask & ~face).sum() / (rows.max() - rows.min() + 1)) // 2
    layered[:, split:] = 4.0
    got = locate(mask, layered, K)
    assert got.position[2] == pytest.approx(1.0)
    assert got.depth_points == face.sum()


def test_a_nearer_part_of_the_mask_does_not_take_the_object():
    """A mask reaching over a nearer neighbour, a stacked box or a saucer's mug (a tenth, then
    two fifths of it) keeps the object it mostly covers (helper-123: a rule preferring the
    nearer surface put 4-17 of 1464 simulated objects 26-38 cm off, on the neighbour)."""
    face, depth = _box_scene()
    rows, cols = np.nonzero(face)
    for share in (0.1, 0.4):
        occluded = depth.copy()
        occluded[:, :cols.min() + int((cols.max() - cols.min()) * share)] = 0.6
        got = locate(face, occluded, K)
        assert got.position[2] == pytest.approx(1.0), share


def test_main_surface_splits_at_depth_jumps_that_grow_with_distance():
    from ros_ground.spatial import main_surface

    two = np.r_[np.full(40, 1.0), np.full(60, 1.5)]
    np.testing.assert_array_equal(main_surface(two), np.full(60, 1.5))
    tie = np.r_[np.full(50, 1.0), np.full(50, 1.5)]
    np.testing.assert_array_equal(main_surface(tie), np.full(50, 1.0))  # the nearer of equals
    receding = np.linspace(1.0, 1.6, 300)  # a table top seen at a slant: one surface
    np.testing.assert_array_equal(main_surface(receding), receding)
    far = np.r_[np.full(50, 3.0), np.full(50, 3.1)]  # 10 cm apart at 3 m: within the noise
    assert main_surface(far).size == 100


def test_tilted_plane_known_centre():
    """A plane z = 1.2 + 0.5 y (seen from above at a slant): a mask of the points with
    |x| <= 0.1 and |y| <= 0.1 on it has its mean at (0, ~0, ~1.2) and a z extent of ~0.09 m."""
    rows, cols = _pixels()
    a, b = (cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1]  # ray directions x/z, y/z
    z = 1.2 / (1 - 0.5 * b)  # ray (a z, b z, z) meets the plane where z = 1.2 + 0.5 b z
    x, y = a * z, b * z
    mask = (np.abs(x) <= 0.1) & (np.abs(y) <= 0.1)
    got = locate(mask, z.astype(np.float32), K)
    want = np.stack([x[mask], y[mask], z[mask]], -1).mean(axis=0)  # the surface's own mean
    np.testing.assert_allclose(got.position, want, atol=0.002)
    assert abs(got.position[2] - (1.2 + 0.5 * got.position[1])) < 0.001  # on the plane
    np.testing.assert_allclose(got.size, [0.18, 0.18, 0.09], atol=0.01)


def test_no_depth_and_small_masks():
    mask, depth = _box_scene()
    none = locate(mask, np.full(depth.shape, np.nan, np.float32), K)
    assert np.all(np.isnan(none.position)) and np.all(none.size == 0) and none.depth_points == 0
    assert locate(np.zeros_like(mask), depth, K).depth_points == 0

    tiny = np.zeros_like(mask)
    tiny[200:203, 300:302] = True  # 3x2: erosion would empty it
    flat = np.full(mask.shape, 0.7, np.float32)
    got = locate(tiny, flat, K)
    assert got.depth_points == 6
    assert got.position[2] == pytest.approx(0.7)
    np.testing.assert_allclose(got.position[:2], back_project(201.0, 300.5, 0.7, K)[:2])


def test_bad_inputs_raise():
    mask, depth = _box_scene()
    with pytest.raises(ValueError, match="same HxW"):
        locate(mask[:10], depth, K)
    with pytest.raises(ValueError, match="camera matrix"):
        locate(mask, depth, np.eye(3) * -1)
    with pytest.raises(ValueError, match="encoding"):
        depth_to_metres(depth, "8UC1")
    with pytest.raises(ValueError, match="uint16"):
        depth_to_metres(np.zeros((4, 4), np.uint8) > 0)
    with pytest.raises(ValueError, match=r"K must be a 3x3 matrix, got shape \(3, 4\)"):
        check_intrinsics(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"K must be finite, got \[nan, 0.0"):
        check_intrinsics(np.where(np.eye(3) > 0, np.nan, 0.0))
    with pytest.raises(ValueError, match=r"fx, fy > 0: \[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0\]"):
        check_intrinsics(np.zeros((3, 3)))


def test_depth_conversion_marks_no_return():
    mm = np.array([[0, 1000], [65535, 250]], np.uint16)
    np.testing.assert_array_equal(depth_to_metres(mm, "16UC1"),
                                  np.array([[np.nan, 1.0], [65.535, 0.25]], np.float32))
    f = np.array([[0.0, np.inf], [-1.0, 2.5]], np.float32)
    out = depth_to_metres(f, "32FC1")
    assert np.isnan(out[0]).all() and np.isnan(out[1, 0]) and out[1, 1] == 2.5
    assert f[0, 0] == 0.0  # the input is left as it was


def test_pinhole_matrices_are_camera_infos_k_and_p():
    k, p = pinhole_matrices(500.0, 520.0, 319.5, 241.0)
    assert k.ravel().tolist() == [500.0, 0.0, 319.5, 0.0, 520.0, 241.0, 0.0, 0.0, 1.0]
    assert p.ravel().tolist() == [500.0, 0.0, 319.5, 0.0, 0.0, 520.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_camera_info_from_a_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is not a regular file"):
        load_camera_info(tmp_path)


CALIBRATION_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [615.1, 0, 322.4, 0, 615.9, 238.2, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.1, -0.2, 0.001, 0.002, 0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [600.0, 0, 320.0, 0, 0, 601.0, 240.0, 0, 0, 0, 1, 0]
"""


def test_camera_calibration_yaml(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text(CALIBRATION_YAML)
    info = load_camera_info(path)
    assert (info.width, info.height, info.camera_name) == (640, 480, "narrow_stereo")
    np.testing.assert_allclose(info.k, [[615.1, 0, 322.4], [0, 615.9, 238.2], [0, 0, 1]])
    assert info.d.shape == (5,) and info.distortion_model == "plumb_bob"
    np.testing.assert_allclose(info.rectified_k, [[600, 0, 320], [0, 601, 240], [0, 0, 1]])
    path.write_text(CALIBRATION_YAML.replace("0.1, -0.2, 0.001, 0.002, 0", "0, 0, 0, 0, 0"))
    np.testing.assert_allclose(load_camera_info(path).rectified_k, info.k)  # no distortion
    path.write_text(CALIBRATION_YAML.replace("data: [615.1, 0, 322.4, 0, 615.9, 238.2, 0, 0, 1]",
                                             "data: [1, 2, 3]"))
    with pytest.raises(ValueError, match="camera_matrix"):
        load_camera_info(path)
    path.write_text("image_width: 640\n")
    with pytest.raises(ValueError):
        load_camera_info(path)
    # what people pass by mistake: broken YAML, letters in a matrix, an image file
    path.write_text(CALIBRATION_YAML.replace("data: [615.1,", "data: [615.1,,]"))
    with pytest.raises(ValueError, match="not a camera_calibration YAML file"):
        load_camera_info(path)
    path.write_text(CALIBRATION_YAML.replace("data: [615.1,", "data: [a,"))
    with pytest.raises(ValueError, match="camera_matrix.*not a list of numbers"):
        load_camera_info(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(ValueError, match="not a camera_calibration YAML file"):
        load_camera_info(path)


def test_locate_phrases_fills_results():
    from ros_ground.results import GroundedPhrase
    from ros_ground.spatial import locate_phrases

    face, depth = _box_scene()
    hit = GroundedPhrase("the box", 0, 7, 1.0, face)
    miss = GroundedPhrase("the sky", 8, 15, 1.0, np.zeros_like(face))
    assert np.isnan(hit.position).all() and hit.depth_points == 0  # before: unknown
    locate_phrases([hit, miss], depth, K)
    np.testing.assert_allclose(hit.position, [0.05, -0.02, 1.0], atol=0.001)
    assert hit.depth_points == face.sum()
    assert np.isnan(miss.position).all() and miss.depth_points == 0
    out = hit.to_json()
    assert out["depth_points"] == int(face.sum()) and len(out["position"]) == 3
    assert miss.to_json()["position"] == [None, None, None]  # JSON has no NaN


def test_project_inverts_back_project():
    skewed = K.copy()
    skewed[0, 1] = 3.0
    for k in (K, skewed):
        point = back_project(np.array(201.0), np.array(300.5), np.array(0.7), k)
        col, row = project(point, k)
        assert (col, row) == pytest.approx((300.5, 201.0))
    with pytest.raises(ValueError, match="front"):
        project((0.1, 0.2, 0.0), K)
    with pytest.raises(ValueError, match="front"):
        project((0.1, 0.2, -1.0), K)
    with pytest.raises(ValueError, match="front"):
        project((np.nan, 0.2, 1.0), K)


def test_depth_at_is_the_median_return_around_a_pixel():
    depth = np.full((10, 10), np.nan, np.float32)
    depth[4:7, 4:7] = [[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 2.0]]
    assert depth_at(depth, 5, 5) == 1.0  # one flying pixel does not move it
    assert depth_at(depth, 5.4, 4.6, radius=0) == 5.0
    assert np.isnan(depth_at(depth, 0, 0))
    assert depth_at(depth, 8, 8) == 2.0  # only the block's corner is within 2 pixels


def test_a_depth_file_and_a_depth_message_give_the_same_metres():
    from ros_ground.image_codec import decode_depth

    mm = np.random.default_rng(0).integers(0, 65536, (6, 7), dtype=np.uint16)
    message = decode_depth("16UC1", 6, 7, 14, False, mm.tobytes())
    np.testing.assert_array_equal(depth_to_metres(mm), message)
    np.testing.assert_array_equal(depth_to_metres(mm, "mono16"), message)


def test_unlocated_phrases_names_each_phrase_once_and_counts_the_others():
    # three "the mug" and a tray: each text is named once, so the tray is named rather than
    # hidden in "'the mug' and 2 more"; past `shown` texts, the others are counted
    from types import SimpleNamespace

    from ros_ground.results import GroundedPhrase
    from ros_ground.spatial import unlocated_phrases

    mask = np.ones((4, 4), bool)
    phrases = [GroundedPhrase(text, 0, len(text), 1.0, mask)
               for text in ("the mug", "the mug", "the tray", "the mug", "the duck", "the cube")]
    said = unlocated_phrases(SimpleNamespace(phrases=phrases[:4], prompt_phrases=[]))
    assert said == ("no valid depth (0, NaN, inf or negative; a black, shiny or transparent surface may "
                    "return none) inside the mask of 'the mug', 'the tray'")
    said = unlocated_phrases(SimpleNamespace(phrases=phrases, prompt_phrases=[]), shown=2)
    assert said.endswith("'the mug', 'the tray' and 2 more")
