"""image_fit: the frame a centre-cropping processor would cut is padded to a square by default,
and it is a node parameter, a `ground` flag and a build_engine argument."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from ros_ground import settings
from ros_ground.engine import build_engine_from_settings
from ros_ground.geometry import ImageGeometry, geometry_for
from ros_ground.lmm import SIM_LMM_DIR, load_lmm
from ros_ground.lmm.fit import report_unseen, resolve_image_fit

PROMPT = "Describe the image in detail."


def _side_bands_reach_the_model(adapter, height, width) -> bool:
    """Whether painting the frame's outer tenth each side changes the model's pixel_values."""
    plain = np.full((height, width, 3), 100, np.uint8)
    painted = plain.copy()
    band = width // 10
    painted[:, :band], painted[:, -band:] = 255, 0
    a, _, _ = adapter.prepare(plain, PROMPT)
    b, _, _ = adapter.prepare(painted, PROMPT)
    return not torch.equal(a["pixel_values"], b["pixel_values"])


@pytest.mark.parametrize("height,width", [(480, 640), (720, 1280)])
def test_by_default_the_model_sees_the_whole_frame_of_a_wide_camera(height, width):
    default = load_lmm("tiny", device="cpu")  # a centre-crop processor, as llava-hf's LLaVA-1.5
    assert default.image_fit == "pad"
    assert _side_bands_reach_the_model(default, height, width)
    assert not _side_bands_reach_the_model(load_lmm("tiny", device="cpu", image_fit="processor"),
                                           height, width)


def test_auto_keeps_the_processors_fit_where_it_already_sees_the_whole_frame():
    # the sim model squashes the whole frame: its inputs, and so its numbers, are unchanged
    sim = json.loads((SIM_LMM_DIR / "processor_config.json").read_text())["image_processor"]
    assert resolve_image_fit("auto", "llava", sim) == "processor"
    crop = {"do_center_crop": True, "size": {"shortest_edge": 336},
            "crop_size": {"height": 336, "width": 336}}
    assert resolve_image_fit("auto", "llava", crop) == "pad"
    for model_type in ("llava_next", "qwen2_vl", "qwen2_5_vl"):  # base grid / dynamic resize
        assert resolve_image_fit("auto", model_type, crop) == "processor"
    assert resolve_image_fit("processor", "llava", crop) == "processor"
    with pytest.raises(ValueError, match="image_fit must be one of"):
        resolve_image_fit("crop", "llava", crop)


def test_image_fit_is_a_node_parameter_a_flag_and_reaches_the_model():
    setting = settings.by_name(settings.GROUNDING)["image_fit"]
    assert setting.default == "auto" and setting.cli and not setting.live
    with pytest.raises(ValueError, match="image_fit must be one of"):
        setting.check("squash")
    from ros_ground import cli

    args = cli.build_parser().parse_args(["ground", "--image", "x.png", "--image-fit", "processor"])
    assert args.image_fit == "processor"
    values = {"model": "tiny", "sam_model": "tiny", "device": "cpu", "image_fit": "processor"}
    assert build_engine_from_settings(values).lmm.image_fit == "processor"


def test_a_centre_crop_is_logged_once_per_frame_size(caplog):
    said: set = set()
    with caplog.at_level("WARNING", logger="ros_ground.lmm.fit"):
        for _ in range(3):
            report_unseen(ImageGeometry(720, 1280, 24, 24, "crop"), said)
        report_unseen(ImageGeometry(480, 480, 24, 24, "crop"), said)  # a square loses nothing
        report_unseen(ImageGeometry(720, 1280, 24, 24, "pad"), said)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "1280x720" in messages[0] and "x 280..1000" in messages[0] and "44%" in messages[0]


def test_pad_reports_what_a_processor_cropping_the_padded_square_cuts(caplog):
    # shortest_edge 384 / crop 336 (what auto pads for) keeps the central 7/8 of the padded
    # square: x 40..600 of a 640x480 frame, the whole of its height
    crop = {"do_center_crop": True, "size": {"shortest_edge": 384},
            "crop_size": {"height": 336, "width": 336}}
    said: set = set()
    with caplog.at_level("WARNING", logger="ros_ground.lmm.fit"):
        report_unseen(geometry_for(crop, 480, 640, 24, 24, "pad"), said)
        report_unseen(geometry_for({**crop, "size": {"shortest_edge": 336}}, 720, 1280, 24, 24,
                                   "pad"), said)  # llava-1.5's 336/336: the whole frame
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("image_fit pad:")
    assert "640x480" in messages[0] and "x 40..600, y 0..480" in messages[0]
    assert "12% of the frame" in messages[0]  # 1 - 560 / 640 = 12.5%
