"""Image files: colour and depth read, colour written; a file that is not there is an OSError,
one whose content is not what was asked for an ImageDecodeError, from every reader."""

import cv2
import numpy as np
import pytest

from ros_ground.image_codec import ImageDecodeError
from ros_ground.image_files import load_depth, load_rgb, save_png


@pytest.mark.parametrize("load", [load_rgb, load_depth])
def test_every_reader_says_why_a_path_is_no_file_with_an_oserror(tmp_path, load):
    for path, why in [(tmp_path / "missing.png", "no such file"), (tmp_path, "a folder"),
                      ("/dev/zero", "not a regular file")]:
        with pytest.raises(OSError, match=f"could not read .* from {path}: {why}"):
            load(path)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        load(garbage)


def test_a_saved_picture_reads_back_the_same(tmp_path):
    image = np.random.RandomState(1).randint(0, 255, (6, 9, 3), dtype=np.uint8)
    save_png(tmp_path / "a.png", image)
    np.testing.assert_array_equal(load_rgb(tmp_path / "a.png"), image)
    with pytest.raises(OSError, match="could not write"):
        save_png(tmp_path / "none" / "a.png", image)


def test_load_depth_png_and_npy(tmp_path):
    mm = np.array([[0, 1500], [800, 20]], np.uint16)
    png = tmp_path / "d.png"
    cv2.imwrite(str(png), mm)
    np.testing.assert_allclose(load_depth(png), [[np.nan, 1.5], [0.8, 0.02]])
    npy = tmp_path / "d.npy"
    np.save(npy, np.array([[1.25, 0.0]], np.float32))
    np.testing.assert_allclose(load_depth(npy), [[1.25, np.nan]])
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="16-bit"):
        load_depth(rgb)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode depth image"):
        load_depth(garbage)


@pytest.mark.parametrize("side,limit", [(100000, 4096 * 4096), (300, 1000)])
def test_a_depth_file_above_the_limit_is_refused_from_its_header(tmp_path, side, limit):
    # as for colour images: a small PNG declaring a huge image never has its pixels allocated
    from test_image_codec import _declaring

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_declaring(".png", side, side))
    with pytest.raises(ValueError, match=rf"above the limit of {limit}\b"):
        load_depth(bomb, max_pixels=limit)


def test_a_depth_array_is_judged_by_its_header_and_named_when_unreadable(tmp_path):
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((40, 30), np.float32))
    with pytest.raises(ValueError, match=r"has 1200 values, above the limit of 1000\b"):
        load_depth(big, max_pixels=1000)
    assert load_depth(big, max_pixels=1200).shape == (40, 30)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"depth": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"cannot read depth array '.*objects.npy'"):
        load_depth(objects)  # never unpickled
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(big.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"cannot read depth array '.*truncated.npy'"):
        load_depth(truncated)
