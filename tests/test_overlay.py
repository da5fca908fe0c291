"""The overlay people look at: outlines keeping objects' colours, labels apart, one picture per answer."""

import itertools

import numpy as np
import pytest

from ros_ground.overlay import (
    PALETTE,
    draw_overlay,
    phrase_colour,
    place_labels,
    where_in_image,
    with_target,
)
from ros_ground.results import GroundedPhrase


def _phrase(text, mask, point=None):
    return GroundedPhrase(text, 0, len(text), 0.9, mask, point)


def _square(shape, x, y, size):
    mask = np.zeros(shape, bool)
    mask[y:y + size, x:x + size] = True
    return mask


def test_masks_are_outlined_not_washed_over():
    image = np.full((120, 160, 3), (40, 200, 60), np.uint8)  # a green object everywhere
    mask = _square((120, 160), 50, 40, 40)
    out = draw_overlay(image, [_phrase("a green block", mask)])
    inner = out[44:76, 54:86].astype(int)  # the mask's inside, away from its outline
    assert np.abs(inner - image[44:76, 54:86]).max() <= 0.2 * 255  # a light fill at most
    outline = out[40:80, 50].astype(int)  # the mask's left edge
    assert (np.abs(outline - np.array(phrase_colour(0))).sum(axis=1) < 30).mean() > 0.5
    plain = draw_overlay(image, [_phrase("a green block", mask)], fill_alpha=0.0)
    assert np.array_equal(plain[44:76, 54:86], image[44:76, 54:86])
    assert np.array_equal(out[100:, 100:], image[100:, 100:])  # far from the mask and its label


def test_labels_on_one_crowded_object_do_not_overlap_and_stay_inside():
    boxes = [(300, 200, 20, 20)] * 8 + [(0, 0, 640, 480)]  # many labels on one object, one on all
    sizes = [(90, 18)] * 9
    rects = place_labels(boxes, sizes, (480, 640))
    for (ax, ay, aw, ah), (bx, by, bw, bh) in itertools.combinations(rects, 2):
        assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
    assert all(x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480 for x, y, w, h in rects)
    assert rects[0] == (300, 182, 90, 18)  # the first label sits just above its object


def test_a_label_moved_away_from_its_object_gets_a_leader_line():
    image = np.full((240, 320, 3), 128, np.uint8)
    mask = _square((240, 320), 150, 110, 12)
    centre = (slice(113, 119), slice(153, 159))  # inside the outline: no label is put there

    def leader_ends(count):
        out = draw_overlay(image, [_phrase(f"label number {i}", mask) for i in range(count)],
                           fill_alpha=0.0)
        return [(np.abs(out[centre].astype(int) - phrase_colour(i)).sum(axis=2) < 40).any()
                for i in range(count)]

    assert not any(leader_ends(1))  # its label sits against the object: no line needed
    ends = leader_ends(8)  # the spots around the object run out: later labels move away
    assert not ends[0] and any(ends[4:])


def test_colours_are_distinct():
    colours = [np.array(phrase_colour(i), float) for i in range(len(PALETTE))]
    assert [phrase_colour(i) for i in range(len(PALETTE))] == list(PALETTE)
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(colours, 2)) > 60


def test_zoom_scales_the_picture_and_draws_the_mask_in_place():
    image = np.zeros((60, 80, 3), np.uint8)
    mask = _square((60, 80), 10, 30, 20)
    out = draw_overlay(image, [_phrase("it", mask, (20.0, 40.0))], zoom=3)
    assert out.shape == (180, 240, 3)
    changed = out.any(axis=2)
    assert changed[90:150, 30:90].any() and not changed[170:, 200:].any()
    with pytest.raises(ValueError, match="zoom"):
        draw_overlay(image, [], zoom=0)
    with pytest.raises(ValueError, match="HxWx3"):
        draw_overlay(np.zeros((60, 80), np.uint8), [])


def test_phrases_without_a_fitting_mask_are_left_out():
    image = np.full((60, 80, 3), 90, np.uint8)
    empty, wrong = np.zeros((60, 80), bool), np.ones((30, 40), bool)
    out = draw_overlay(image, [_phrase("nothing", empty), _phrase("elsewhere", wrong)])
    assert np.array_equal(out, image)


@pytest.mark.parametrize("x, y, words", [
    (0, 50, "on the left, near the bottom"), (70, 0, "on the right, near the top"),
    (35, 25, "in the centre"), (35, 0, "in the middle, near the top"), (0, 25, "on the left, halfway down"),
])
def test_where_in_image(x, y, words):
    assert where_in_image(_square((60, 80), x, y, 10)) == words


def test_where_in_image_refuses_an_empty_mask():
    with pytest.raises(ValueError, match="empty"):
        where_in_image(np.zeros((60, 80), bool))


@pytest.mark.ros
def test_two_answers_on_one_frame_give_two_pictures():
    """`make demo` asks twice on one frame: each picture shows its own answer's masks."""
    from std_msgs.msg import Header

    from ros_ground.nodes.conversions import result_to_msg, rgb_to_image_msg
    from ros_ground.nodes.demo import answer_picture
    from ros_ground.results import GroundingResult

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    header = Header(frame_id="camera")
    header.stamp.sec = 7
    frame = rgb_to_image_msg(rgb, header)
    top_left, bottom_right = _square((60, 80), 2, 2, 20), _square((60, 80), 56, 36, 20)

    def response(text, mask, request_id):
        result = GroundingResult(text, [_phrase(text, mask)], "sim", (60, 80))
        return result_to_msg(result, header, request_id, "a question")

    first = answer_picture(response("a cube", top_left, "1"), frame, zoom=2)
    second = answer_picture(response("a tray", bottom_right, "2"), frame, zoom=2)
    plain = draw_overlay(rgb, [], zoom=2)
    assert first.shape == second.shape == (120, 160, 3)
    assert not np.array_equal(first, second)
    inside_second = (slice(80, 112), slice(120, 152))  # the bottom-right mask, inside its outline
    assert np.array_equal(first[inside_second], plain[inside_second])
    assert not np.array_equal(second[inside_second], plain[inside_second])
    # a question's target is drawn too, though the answer does not name it
    result = GroundingResult("a cube", [_phrase("a cube", top_left)], "sim", (60, 80),
                             prompt="Where is the tray?", prompt_phrases=[_phrase("the tray", bottom_right)],
                             target=0)
    asked = answer_picture(result_to_msg(result, header, "3", "Where is the tray?"), frame, zoom=2)
    assert not np.array_equal(asked[inside_second], plain[inside_second])


@pytest.mark.ros
def test_recent_frames_keeps_the_newest_and_finds_the_nearest():
    from sensor_msgs.msg import Image

    from ros_ground.nodes.demo import RecentFrames

    frames = RecentFrames(keep=3)
    assert frames.nearest(0) is None
    for sec in range(5):
        msg = Image()
        msg.header.stamp.sec = sec
        frames.add(msg)
    frame, off = frames.nearest(3 * 10**9)
    assert (frame.header.stamp.sec, off) == (3, 0)
    frame, off = frames.nearest(0)  # seconds 0 and 1 were dropped
    assert (frame.header.stamp.sec, off) == (2, 2 * 10**9)


@pytest.mark.ros
def test_recent_frames_keep_the_frames_the_proposals_are_for():
    """With proposal_max_age_s (config/demo.yaml) an answer may ground a frame long gone from
    the last `keep`: the one a proposal run was on. Its picture is drawn on that frame,
    whether the proposal node's notice came before the frame or after it."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ros_ground.nodes.demo import RecentFrames

    def header(sec):
        h = Header()
        h.stamp.sec = sec
        return h

    frames = RecentFrames(keep=3)
    frames.outlined(header(1))  # the notice before its frame
    for sec in range(10):
        msg = Image()
        msg.header = header(sec)
        frames.add(msg)
        if sec == 5:
            frames.outlined(header(5))  # the notice after its frame
    for sec, nearest, off in ((1, 1, 0), (5, 5, 0), (2, 1, 1), (4, 5, 1)):
        frame, got = frames.nearest(sec * 10**9)
        assert (frame.header.stamp.sec, got) == (nearest, off * 10**9)


def test_a_command_s_target_joins_the_answer_s_phrases_labelled():
    answer = [_phrase("a mug", _square((20, 20), 0, 0, 5))]
    prompt = [_phrase("the cube", _square((20, 20), 10, 10, 5)),
              _phrase("the tray", _square((20, 20), 0, 10, 5))]
    shown = with_target(answer, prompt, 0)
    assert [p.text for p in shown] == ["a mug", "target: the cube"]
    assert shown[1].mask is prompt[0].mask and prompt[0].text == "the cube"  # a copy, relabelled
    assert with_target(answer, prompt, -1) == answer and with_target([], prompt, 5) == []
