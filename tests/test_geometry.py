"""Token maps land on the right pixels after inverting the processor's pad / crop / resize."""

import numpy as np
import pytest

from ros_ground.geometry import ImageGeometry, geometry_for, pad_to_square, upsample_map

GRID = 8


def _one_hot(row, col):
    grid = np.zeros((GRID, GRID), dtype=np.float32)
    grid[row, col] = 1.0
    return grid


def _peak(image_map):
    y, x = np.unravel_index(np.argmax(image_map), image_map.shape)
    return int(y), int(x)


@pytest.mark.parametrize("height,width", [(40, 80), (80, 40)])
def test_pad_inversion(height, width):
    side = max(height, width)
    cell = side // GRID
    y_off, x_off = (side - height) // 2, (side - width) // 2
    geometry = ImageGeometry(height, width, GRID, GRID, "pad")
    # choose a cell that lies inside the original image in the padded square
    row, col = (y_off // cell) + 1, (x_off // cell) + 1
    out = upsample_map(_one_hot(row, col), geometry)
    assert out.shape == (height, width) and out.dtype == np.float32
    y, x = _peak(out)
    assert row * cell - y_off <= y < (row + 1) * cell - y_off
    assert col * cell - x_off <= x < (col + 1) * cell - x_off


@pytest.mark.parametrize("height,width", [(40, 80), (80, 40)])
def test_crop_inversion(height, width):
    side = min(height, width)
    cell = side // GRID
    y_off, x_off = (height - side) // 2, (width - side) // 2
    geometry = ImageGeometry(height, width, GRID, GRID, "crop")
    row, col = 2, 7
    grid = _one_hot(row, col) + 0.5
    out = upsample_map(grid, geometry)
    assert out.shape == (height, width)
    y, x = _peak(out)
    assert y_off + row * cell <= y < y_off + (row + 1) * cell
    assert x_off + col * cell <= x < x_off + (col + 1) * cell
    # pixels the model never saw carry the map's minimum
    outside = np.ones((height, width), dtype=bool)
    outside[y_off:y_off + side, x_off:x_off + side] = False
    assert outside.any() and np.all(out[outside] == np.float32(0.5))


def test_resize_inversion():
    geometry = ImageGeometry(30, 90, GRID, GRID, "resize")
    out = upsample_map(_one_hot(0, GRID - 1), geometry)
    y, x = _peak(out)
    assert y < 30 / GRID + 1 and x >= 90 - 90 / GRID - 1


def test_shape_mismatch_and_bad_fit():
    with pytest.raises(ValueError):
        upsample_map(np.zeros((4, 4)), ImageGeometry(10, 10, GRID, GRID, "pad"))
    with pytest.raises(ValueError):
        ImageGeometry(10, 10, GRID, GRID, "squeeze")


def test_pad_to_square_centres_image():
    image = np.full((20, 50, 3), 200, dtype=np.uint8)
    out = pad_to_square(image, (1, 2, 3))
    assert out.shape == (50, 50, 3)
    assert np.all(out[15:35] == 200)
    assert np.all(out[:15] == (1, 2, 3)) and np.all(out[35:] == (1, 2, 3))
    tall = pad_to_square(np.zeros((50, 21, 3), dtype=np.uint8), 9)
    assert tall.shape == (50, 50, 3) and np.all(tall[:, :14] == 9) and np.all(tall[:, 14:35] == 0)


def test_geometry_from_processor_config():
    crop = {"do_resize": True, "size": {"shortest_edge": 336}, "do_center_crop": True,
            "crop_size": {"height": 336, "width": 336}}
    g = geometry_for(crop, 480, 640, 24, 24)
    assert g.fit == "crop" and g.crop_box is None and g.window() == (80, 0, 560, 480)
    # shortest edge larger than the crop: a smaller centred window; 640 px -> int(533.3) = 533
    # resized px, crop from (533 - 336) // 2 = 98: x 98 / 0.8328 .. 434 / 0.8328 = 117.7 .. 521.1
    g = geometry_for({**crop, "size": {"shortest_edge": 400}}, 480, 640, 24, 24)
    assert g.fit == "crop" and g.window() == (118, 38, 521, 442)
    squash = {"do_resize": True, "size": {"height": 336, "width": 336}, "do_center_crop": False}
    assert geometry_for(squash, 480, 640, 24, 24).fit == "resize"
    g = geometry_for(crop, 480, 640, 24, 24, fit="pad")
    assert g.fit == "pad" and g.crop_box is None and g.window() == (0, -80, 640, 560)
    # squashed to 384x384 (x 0.6, y 0.8), then 336 cropped from 24: a rectangle of the frame
    fixed = {**crop, "size": {"height": 384, "width": 384}}
    g = geometry_for(fixed, 480, 640, 24, 24)
    assert g.fit == "crop" and g.window() == (40, 30, 600, 450)
    # padded to 640x640 at y -80, whose central 7/8 (40 .. 600) the crop keeps
    for size in ({"height": 384, "width": 384}, {"shortest_edge": 384}):
        g = geometry_for({**crop, "size": size}, 480, 640, 24, 24, fit="pad")
        assert g.fit == "pad" and g.window() == (40, -40, 600, 520)


def test_geometry_from_tiny_processor():
    from ros_ground.lmm.tiny import build_tiny_processor

    g = geometry_for(build_tiny_processor().image_processor, 48, 80, GRID, GRID)
    assert g.fit == "crop" and g.window() == (16, 0, 64, 48)
