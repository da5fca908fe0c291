"""geometry_for against a real transformers CLIPImageProcessor (built from a config dict, no
download): a frame whose colour encodes its own pixel coordinates is fitted (lmm.fit) and
processed, and the frame coordinate read back at each patch centre of pixel_values must be where
the geometry puts that grid cell, within half a patch, for every image_fit and for processors
that resize (shortest edge, or a fixed height x width) and then centre-crop to a smaller size."""

import numpy as np
import pytest
from PIL import Image

from ros_ground.geometry import geometry_for, trim_to_crop
from ros_ground.lmm.fit import fit_image

PATCH = 14
BLUE = 200  # the frame's blue channel; the pad fill (the processor's mean colour) is not this
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
SIZES = {
    "edge336_crop336": {"shortest_edge": 336},  # llava-hf/llava-1.5-7b-hf: must stay as it was
    "edge384_crop336": {"shortest_edge": 384},
    "fixed384_crop336": {"height": 384, "width": 384},
}
FRAMES = [(480, 640), (640, 480), (720, 1280)]


def _processor(size: dict, backend: str = "torchvision"):
    from transformers import CLIPImageProcessor, CLIPImageProcessorPil

    cls = CLIPImageProcessor if backend == "torchvision" else CLIPImageProcessorPil
    return cls(size=size, crop_size={"height": 336, "width": 336}, do_center_crop=True,
               do_resize=True, image_mean=MEAN, image_std=STD, resample=3)


def _coordinate_frame(height: int, width: int, exact: bool = False) -> np.ndarray:
    """HxWx3: red = x / (W - 1) * 255, green = y / (H - 1) * 255, blue = BLUE; uint8 (as a
    camera's), or float32 (exact: no 8-bit steps, for frames whose patches are a few px)."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.float64)
    frame[..., 0] = x / (width - 1) * 255
    frame[..., 1] = y / (height - 1) * 255
    frame[..., 2] = BLUE
    return frame.astype(np.float32) if exact else frame.round().astype(np.uint8)


def patch_centre_error(processor, height: int, width: int, image_fit: str,
                       exact: bool = False) -> tuple[float, float]:
    """(max error, half a patch), both in frame pixels: over every grid cell whose centre the
    model sees on the frame (not on the pad fill), the distance (max over x and y) between the
    frame coordinate read at the cell's centre in pixel_values and the cell's centre in the
    geometry's window. `exact`: a float32 frame, given to the processor as an array."""
    frame = _coordinate_frame(height, width, exact)
    fitted = fit_image(frame, image_fit, "llava", processor)
    image = fitted if exact else Image.fromarray(fitted)
    pixels = processor(images=image, return_tensors="np",
                       input_data_format="channels_last")["pixel_values"][0]
    pixels = (pixels * np.asarray(STD)[:, None, None] + np.asarray(MEAN)[:, None, None]) * 255
    grid = pixels.shape[1] // PATCH
    geometry = geometry_for(processor, height, width, grid, grid, image_fit)
    x0, y0, x1, y1 = geometry.window()
    cell_w, cell_h = (x1 - x0) / grid, (y1 - y0) / grid
    # the cell centre lies between its two middle pixel rows / columns: their mean
    a, b = PATCH // 2 - 1, PATCH // 2
    centre = (pixels[:, a::PATCH, a::PATCH] + pixels[:, a::PATCH, b::PATCH]
              + pixels[:, b::PATCH, a::PATCH] + pixels[:, b::PATCH, b::PATCH]) / 4
    on_frame = np.abs(centre[2] - BLUE) < 0.6
    true_x = centre[0] / 255 * (width - 1)  # pixel index, as encoded
    true_y = centre[1] / 255 * (height - 1)
    rows, cols = np.mgrid[0:grid, 0:grid]
    mapped_x = x0 + (cols + 0.5) * cell_w - 0.5  # continuous edge coordinate -> pixel index
    mapped_y = y0 + (rows + 0.5) * cell_h - 0.5
    assert on_frame.sum() >= grid * grid // 2
    error = np.maximum(np.abs(mapped_x - true_x), np.abs(mapped_y - true_y))[on_frame]
    return float(error.max()), min(cell_w, cell_h) / 2


@pytest.mark.parametrize("image_fit", ["processor", "pad"])
@pytest.mark.parametrize("height,width", FRAMES)
@pytest.mark.parametrize("name", list(SIZES))
def test_grid_lands_on_the_window_the_processor_keeps(name, height, width, image_fit):
    error, half_patch = patch_centre_error(_processor(SIZES[name]), height, width, image_fit)
    assert error < half_patch, f"{name} {height}x{width} {image_fit}: {error:.1f} px"


@pytest.mark.parametrize("image_fit", ["processor", "pad"])
@pytest.mark.parametrize("name", ["edge384_crop336", "fixed384_crop336"])
def test_the_pil_backend_keeps_the_same_window(name, image_fit):
    error, half_patch = patch_centre_error(_processor(SIZES[name], "pil"), 480, 640, image_fit)
    assert error < half_patch, f"{name} 480x640 {image_fit}: {error:.1f} px"


def test_the_llava_1_5_window_is_unchanged():
    processor = _processor(SIZES["edge336_crop336"])
    assert geometry_for(processor, 480, 640, 24, 24).window() == (80, 0, 560, 480)
    assert geometry_for(processor, 720, 1280, 24, 24, "pad").window() == (0, -280, 1280, 1000)


@pytest.mark.parametrize("height,width", [(100, 700), (700, 100), (40, 4000)])
@pytest.mark.parametrize("name", list(SIZES))
def test_a_long_frame_cut_before_the_processor_keeps_its_window(name, height, width):
    # lmm.fit cuts a long frame to the crop window first (trim_to_crop); the grid must still
    # land where geometry_for on the whole frame puts it (float frames: patches of 2-4 px)
    processor = _processor(SIZES[name])
    error, half_patch = patch_centre_error(processor, height, width, "processor", exact=True)
    assert error < half_patch, f"{name} {height}x{width}: {error:.2f} px"
    cut = trim_to_crop(np.zeros((height, width, 3), np.uint8), processor)
    if name.startswith("fixed"):  # a squash would rescale a cut frame differently: never cut
        assert cut.shape[:2] == (height, width)
    else:  # only the long side is cut, and not below the short side
        short, long = sorted((height, width))
        assert min(cut.shape[:2]) == short and short <= max(cut.shape[:2]) < long
