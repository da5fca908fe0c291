"""Images from 1x1 up to the pixel limit are grounded, larger ones refused naming the limit."""

import json

import cv2
import numpy as np
import pytest

from ros_ground.cli import main
from ros_ground.engine import build_engine
from ros_ground.image_codec import ImageDecodeError, decode_image

pytestmark = pytest.mark.slow

SHAPES = [(1, 1), (1, 4), (4, 1), (1, 300), (300, 1), (1, 4096)]


@pytest.fixture(scope="module")
def engine():
    return build_engine("tiny", "tiny", device="cpu")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["point", "entities"])
def test_thin_and_tiny_images_are_grounded(engine, shape, mode):
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    result = engine.ground(image, "Describe the image.", mode=mode)
    assert result.image_size == shape and result.text
    assert result.phrases, "the tiny LMM always names some phrases"
    for phrase in result.phrases:
        assert phrase.mask.shape == shape
        if phrase.point is not None:
            assert 0 <= phrase.point[0] < shape[1] and 0 <= phrase.point[1] < shape[0]


def test_decoder_refuses_above_the_limit_naming_it():
    with pytest.raises(ImageDecodeError, match="above the limit of 4 .max_image_pixels."):
        decode_image("rgb8", 1, 5, 15, 0, b"\0" * 15, max_pixels=4)
    assert decode_image("rgb8", 1, 4, 12, 0, b"\0" * 12, max_pixels=4).shape == (1, 4, 3)


@pytest.mark.parametrize("shape", [(1, 4), (4, 1), (1, 1)])
def test_cli_grounds_thin_images_and_draws_the_overlay(tmp_path, capsys, shape):
    path, overlay = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(path), np.full((*shape, 3), 90, np.uint8))
    code = main(["ground", "--image", str(path), "--model", "tiny", "--sam-model", "tiny",
                 "--device", "cpu", "--json", "--overlay", str(overlay)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] and result["phrases"]
    assert cv2.imread(str(overlay)).shape[:2] == shape


def test_cli_refuses_an_image_above_the_limit(tmp_path, capsys):
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), np.zeros((2, 50, 3), np.uint8))
    code = main(["ground", "--image", str(path), "--model", "tiny", "--sam-model", "tiny",
                 "--device", "cpu", "--max-image-pixels", "99"])
    err = capsys.readouterr().err
    assert code == 2 and "above the limit of 99" in err and "Traceback" not in err
    assert "prompt" not in err


def test_a_line_image_reaches_the_processor_cut_to_its_centre(engine, monkeypatch):
    # resize-shortest-edge + centre-crop (llava-hf's CLIP processor) would first build a
    # 64 x 262144 image from a 1x4096 line (336 x 1376256 at LLaVA-1.5's size) to keep its centre
    seen = []
    processor = engine.lmm.processor
    original = type(processor).__call__

    def spy(self, images=None, **kwargs):
        seen.append(images.size)
        return original(self, images=images, **kwargs)

    monkeypatch.setattr(type(processor), "__call__", spy)
    line = np.zeros((1, 4096, 3), np.uint8)
    line[0, 2040:2056] = 255  # the centre the processor keeps
    # image_fit pad (tiny's auto): shrunk before it is padded, not a 4096 x 4096 square
    engine.lmm.prepare(line, "Describe the image.")
    assert seen[-1] == (2048, 2048)
    monkeypatch.setattr(engine.lmm, "image_fit", "processor")
    engine.lmm.prepare(line, "Describe the image.")
    assert seen and seen[-1][0] <= 3 and seen[-1][1] == 1  # PIL size is (width, height)
    square = np.zeros((40, 60, 3), np.uint8)  # an ordinary frame goes through whole
    engine.lmm.prepare(square, "Describe the image.")
    assert seen[-1] == (60, 40)
