"""Markers and conversions of a response with 3-D positions (pure functions, no node)."""

import math
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("rclpy")
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from ros_ground.nodes.conversions import camera_info_to_k, msg_to_result_json, result_to_msg  # noqa: E402
from ros_ground.nodes.markers import response_markers  # noqa: E402
from ros_ground.overlay import phrase_colour  # noqa: E402
from ros_ground.results import GroundedPhrase, GroundingResult  # noqa: E402


def _phrase(text, position=None, size=(0.1, 0.05, 0.02), points=40):
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:12] = True
    p = GroundedPhrase(text, 0, len(text), 0.9, mask)
    if position is not None:
        p.position, p.size, p.depth_points = np.array(position), np.array(size), points
    return p


def _response():
    result = GroundingResult(
        text="a mug and a tray", model="sim", image_size=(20, 30),
        phrases=[_phrase("a mug", (0.1, 0.0, 1.0)), _phrase("a tray")],
        prompt="Pick up the red mug left of the tray.",
        prompt_phrases=[_phrase("the red mug", (0.1, 0.01, 1.0)), _phrase("the tray", (0.3, 0.0, 1.1))],
        target=0, landmark=1, relation="left of")
    return result_to_msg(result, Header(frame_id="cam"), "r1",
                         "USER: Pick up the red mug left of the tray.")


def test_conversions_carry_prompt_phrases_target_and_positions():
    msg = _response()
    assert msg.prompt == "Pick up the red mug left of the tray." and msg.target == 0
    assert (msg.landmark, msg.relation, msg.destination) == (1, msg.RELATION_LEFT_OF, False)
    assert len(msg.prompt_phrases) == 2 and msg.prompt_phrases[0].text == "the red mug"
    assert msg.phrases[0].position.z == pytest.approx(1.0) and msg.phrases[0].depth_points == 40
    assert math.isnan(msg.phrases[1].position.x) and msg.phrases[1].depth_points == 0
    as_json = msg_to_result_json(msg)
    assert as_json["target"] == 0 and as_json["prompt"] == "Pick up the red mug left of the tray."
    assert (as_json["landmark"], as_json["relation"], as_json["destination"]) == (1, "left of", False)
    assert as_json["prompt_phrases"][0]["position"] == pytest.approx([0.1, 0.01, 1.0])
    assert as_json["phrases"][1]["position"] == [None, None, None]
    assert as_json["phrases"][0]["size"] == pytest.approx([0.1, 0.05, 0.02])


def test_ask_json_has_every_field_ground_json_has():
    # `ask --json` and `ground --json` are one schema: a script reading why positions are NaN
    # (position_error) must find it in both (helper-126: ask's had none)
    msg = _response()
    msg.position_error = "depth is in frame 'depth_optical', the image in 'cam'"
    as_json = msg_to_result_json(msg)
    ground_json = {**GroundingResult(text="", phrases=[], model="sim", image_size=(2, 3)).to_json(),
                   "position_error": ""}
    assert set(ground_json) <= set(as_json)
    assert set(as_json) - set(ground_json) == {"status", "error", "request_id", "header"}
    assert as_json["position_error"] == msg.position_error


def test_ask_json_says_which_frame_and_time_its_positions_are_of():
    # helper-129: with several cameras a script had positions and no frame to transform them
    # from, nor the image's time for the tf lookup
    msg = _response()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000000, 250
    assert msg_to_result_json(msg)["header"] == {"frame_id": "cam",
                                                 "stamp": {"sec": 1700000000, "nanosec": 250}}


def _rviz_display(arrays, shown=None) -> dict:
    """The markers an rviz MarkerArray display shows after `arrays`, keyed (ns, id): its rule
    (rviz_default_plugins MarkerCommon::processMessage) is that a DELETEALL with an `ns` deletes
    that namespace's markers only, one with an empty `ns` all of them."""
    shown = {} if shown is None else shown
    for array in arrays:
        for m in array.markers:
            if m.action == Marker.DELETEALL:
                for key in [k for k in shown if not m.ns or k[0] == m.ns]:
                    del shown[key]
            elif m.action == Marker.DELETE:
                shown.pop((m.ns, m.id), None)
            else:
                shown[(m.ns, m.id)] = m
    return shown


def test_a_new_answer_leaves_none_of_the_last_ones_markers_in_rviz():
    first = _response()
    second = GroundingResult(text="a cube", model="sim", image_size=(20, 30),
                             phrases=[_phrase("a cube", (0.0, 0.0, 0.8))])
    second = result_to_msg(second, Header(frame_id="cam"), "r2", "Describe the scene.")
    shown = _rviz_display([response_markers(first)])
    assert len(shown) == 6
    shown = _rviz_display([response_markers(second)], shown)
    assert sorted(m.text for m in shown.values() if m.type == Marker.TEXT_VIEW_FACING) == ["a cube"]
    assert len(shown) == 2


def test_phrases_of_one_object_share_one_box_and_one_label():
    """The answer's "a red brick" and "it" and the command's target "the red mug" resolved to one
    object: one opaque target box, one label naming all three; the landmark keeps its own."""
    result = GroundingResult(
        text="a red brick, it is small", model="sim", image_size=(20, 30),
        phrases=[_phrase("a red brick", (0.1, 0.0, 1.0)), _phrase("it", (0.1, 0.0, 1.0))],
        prompt="Pick up the red mug left of the tray.",
        prompt_phrases=[_phrase("the red mug", (0.1, 0.0, 1.0)), _phrase("the tray", (0.3, 0.0, 1.1))],
        target=0, landmark=1, relation="left of")
    msg = result_to_msg(result, Header(frame_id="cam"), "r1", result.prompt)
    drawn = [m for m in response_markers(msg).markers if m.action != Marker.DELETEALL]
    labels = [m for m in drawn if m.type == Marker.TEXT_VIEW_FACING]
    assert [m.text for m in labels] == ["target: the red mug / a red brick / it",
                                        "landmark, left of: the tray"]
    boxes = [m for m in drawn if m.type == Marker.CUBE]
    assert len(boxes) == 2 and boxes[0].ns.endswith("/prompt") and boxes[0].color.a == pytest.approx(0.8)
    places = [(m.pose.position.x, m.pose.position.y, m.pose.position.z) for m in labels]
    assert len(set(places)) == len(places)


def test_a_phrase_said_again_at_one_place_is_labelled_once():
    # helper-129: "Where is the blue cube?" answered "The blue cube is ..." was labelled
    # "target: the blue cube / the blue cube / the blue cube"
    result = GroundingResult(
        text="The blue cube is left of the tray. The blue cube is small.", model="sim",
        image_size=(20, 30), prompt="Where is the blue cube?",
        phrases=[_phrase("The blue cube", (0.1, 0.0, 1.0)), _phrase("the tray", (0.3, 0.0, 1.1)),
                 _phrase("The blue cube", (0.1, 0.0, 1.0)), _phrase("cube", (0.1, 0.0, 1.0))],
        prompt_phrases=[_phrase("the blue cube", (0.1, 0.0, 1.0))], target=0)
    msg = result_to_msg(result, Header(frame_id="cam"), "r1", result.prompt)
    labels = [m.text for m in response_markers(msg).markers if m.type == Marker.TEXT_VIEW_FACING]
    assert sorted(labels) == ["target: the blue cube / cube", "the tray"]


def test_markers_box_and_label_per_located_phrase_target_highlighted():
    msg = _response()
    markers = response_markers(msg).markers
    drawn = [m for m in markers if m.action != Marker.DELETEALL]
    assert drawn == markers[2:] and {m.action for m in markers[:2]} == {Marker.DELETEALL}
    # "a tray" has no depth: no marker; "a mug" (answer 0), "the red mug" (prompt 0, target) and
    # "the tray" (prompt 1, the landmark)
    assert [m.type for m in drawn] == [Marker.CUBE, Marker.TEXT_VIEW_FACING] * 3
    box, label, target_box, target_label, _, landmark_label = drawn
    assert landmark_label.text == "landmark, left of: the tray"
    assert (box.pose.position.x, box.pose.position.z) == pytest.approx((0.1, 1.0))
    assert (box.scale.x, box.scale.y, box.scale.z) == pytest.approx((0.1, 0.05, 0.02))
    assert label.text == "a mug" and target_label.text == "target: the red mug"
    assert label.pose.position.y < box.pose.position.y  # above the box (optical y is down)
    r, g, b = phrase_colour(0)
    assert (box.color.r, box.color.g, box.color.b) == pytest.approx((r / 255, g / 255, b / 255))
    r, g, b = phrase_colour(2)  # prompt phrases follow the answer's two in the palette
    assert (target_box.color.r, target_box.color.g) == pytest.approx((r / 255, g / 255))
    assert target_box.color.a > box.color.a
    assert len({(m.ns, m.id) for m in drawn}) == 6
    assert all(m.header.frame_id == "cam" for m in markers)


def test_camera_info_k_uses_p_for_a_distorted_camera():
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=30, height=20)
    info.k = [100.0, 0.0, 15.0, 0.0, 100.0, 10.0, 0.0, 0.0, 1.0]
    info.p = [90.0, 0.0, 14.0, 0.0, 0.0, 90.0, 9.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert camera_info_to_k(info)[0, 0] == 100.0
    info.d = [0.1, 0.0, 0.0, 0.0, 0.0]
    assert camera_info_to_k(info)[0, 0] == 90.0
    with pytest.raises(ValueError):
        camera_info_to_k(CameraInfo())


def test_camera_info_k_of_a_binned_or_roi_camera_is_the_published_images():
    from sensor_msgs.msg import CameraInfo

    from ros_ground.nodes.conversions import msg_to_intrinsics

    # K and P are the full 640x480 sensor's; the image published is the ROI (x 100.., y 40..,
    # 400x300) binned 2x by 4: 200x75 pixels
    info = CameraInfo(width=640, height=480, binning_x=2, binning_y=4)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 40, 400, 300
    info.k = [600.0, 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0]
    info.p = [590.0, 0.0, 322.0, 0.0, 0.0, 596.0, 236.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    expected = [[300.0, 0.0, 110.0], [0.0, 152.5, 50.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(camera_info_to_k(info), expected)
    assert msg_to_intrinsics(info).image_size == (75, 200)
    info.d = [0.1, 0.0, 0.0, 0.0, 0.0]  # rectified: P's left 3x3, binned and shifted alike
    np.testing.assert_allclose(camera_info_to_k(info), [[295.0, 0.0, 111.0], [0.0, 149.0, 49.0],
                                                        [0.0, 0.0, 1.0]])
    # binning 0 is no binning; an ROI of all zeros is the full image
    info = CameraInfo(width=640, height=480)
    info.k = [600.0, 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0]
    np.testing.assert_allclose(camera_info_to_k(info), np.reshape(info.k, (3, 3)))
    assert msg_to_intrinsics(info).image_size == (480, 640)
    info.binning_x = info.binning_y = 2
    np.testing.assert_allclose(camera_info_to_k(info), [[300.0, 0.0, 160.0], [0.0, 305.0, 120.0],
                                                        [0.0, 0.0, 1.0]])
    assert msg_to_intrinsics(info).image_size == (240, 320)
    # a bad entry is refused as given: binning must not spread it over the matrix it names
    info.k = [float("nan"), 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0]
    given = r"got \[nan, 0\.0, 160\.0, 0\.0, 305\.0, 120\.0, 0\.0, 0\.0, 1\.0\]"
    with pytest.raises(ValueError, match=given):
        camera_info_to_k(info)


@pytest.mark.parametrize("roi, binning, said", [
    ((100, 50, 0, 0), 1, "is not a window of its 640x480"),  # image_geometry: a 0x0 image
    ((600, 0, 200, 100), 1, "is not a window of its 640x480"),  # past the sensor's right edge
    ((0, 0, 1, 1), 2, "leaves no pixel of its 1x1 image"),
    ((0, 0, 0, 0), 1000, "leaves no pixel of its 640x480 image")])
def test_camera_info_with_an_roi_or_binning_no_image_can_have_is_refused(roi, binning, said):
    # a published size of 0 would turn the node's resolution check off (helper-127), and an
    # ROI read field by field (0: the full one) is not how image_geometry reads it
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=640, height=480, binning_x=binning, binning_y=binning)
    info.k = [600.0, 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0]
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
    with pytest.raises(ValueError, match=said):
        camera_info_to_k(info)


def test_camera_info_k_needs_the_resolution_it_is_for():
    from sensor_msgs.msg import CameraInfo

    # a valid K with width and height left 0 (CameraInfo()'s defaults): no resolution to check
    # the image against, so it is refused rather than used for an image of any size
    for width, height in ((0, 0), (30, 0), (0, 20)):
        info = CameraInfo(width=width, height=height)
        info.k = [100.0, 0.0, 15.0, 0.0, 100.0, 10.0, 0.0, 0.0, 1.0]
        with pytest.raises(ValueError, match="set width and height to the image's resolution"):
            camera_info_to_k(info)


def test_rviz_config_shows_the_markers_of_the_sim_namespace():
    from pathlib import Path

    import yaml

    rviz = yaml.safe_load((Path(__file__).parent.parent / "config" / "ground.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = [d["Topic"]["Value"] for d in displays
              if d["Class"] == "rviz_default_plugins/MarkerArray"]
    assert topics == ["/sim/markers"]


def test_the_relation_names_match_the_message_constants():
    from ros_ground_msgs.msg import GroundedResponse

    from ros_ground.command.relations import PLACE_WORDS
    from ros_ground.command.spatial_words import RELATION_NAMES

    constants = {v for k, v in vars(GroundedResponse).items() if k.startswith("RELATION_")}
    assert set(RELATION_NAMES.values()) | set(PLACE_WORDS.values()) == constants


def test_between_reports_and_labels_both_landmarks():
    """"between the mug and the tray": the second landmark travels in the message and the JSON,
    and rviz labels it as it labels the first."""
    result = GroundingResult(
        text="", model="sim", image_size=(20, 30), phrases=[],
        prompt="Pick up the cube between the mug and the tray.",
        prompt_phrases=[_phrase("the cube", (0.2, 0.0, 1.0)), _phrase("the mug", (0.1, 0.0, 1.0)),
                        _phrase("the tray", (0.3, 0.0, 1.0))],
        target=0, landmark=1, relation="between", second_landmark=2)
    msg = result_to_msg(result, Header(frame_id="cam"), "r1", result.prompt)
    assert (msg.landmark, msg.second_landmark, msg.relation) == (1, 2, msg.RELATION_BETWEEN)
    assert msg_to_result_json(msg)["second_landmark"] == 2
    assert (msg.intent, msg_to_result_json(msg)["intent"]) == (msg.INTENT_NONE, "none")
    picked = result_to_msg(replace(result, intent="act"), Header(frame_id="cam"), "r2", result.prompt)
    assert (picked.intent, msg_to_result_json(picked)["intent"]) == (msg.INTENT_ACT, "act")
    labels = [m.text for m in response_markers(msg).markers if m.type == Marker.TEXT_VIEW_FACING]
    assert labels == ["target: the cube", "landmark, between: the mug", "landmark, between: the tray"]
    empty = GroundingResult(text="", model="sim", image_size=(1, 1), phrases=[])
    assert empty.to_json()["second_landmark"] == -1
