"""phrase_grounding: point mode's masks and scores."""

from types import SimpleNamespace as NS

import numpy as np

from ros_ground.phrase_grounding import point_phrases


class _Sam:
    """segment_points as SamSegmenter answers it: (mask, predicted IoU) per point."""

    def __init__(self, answers):
        self.answers, self.points = answers, None

    def segment_points(self, image, points, multimask_choice, key=None, zoom=False):
        self.points = points
        return self.answers


def test_a_phrase_whose_mask_is_empty_scores_0_and_keeps_its_prompt_point():
    # SAM predicts an IoU even for a mask with no pixel (as on a 1x1 image); 0.54 there would
    # tell a robot the phrase was found
    empty, found = np.zeros((4, 5), bool), np.zeros((4, 5), bool)
    found[1:3, 2:4] = True
    sam = _Sam([(empty, 0.54), (found, 0.8)])
    heats = [np.zeros((4, 5)), np.zeros((4, 5))]
    heats[0][3, 1] = heats[1][1, 2] = 1.0
    chunks = [(NS(text="the mug", char_start=0, char_end=7), [1]),
              (NS(text="the tray", char_start=12, char_end=20), [4])]
    phrases = point_phrases(sam, np.zeros((4, 5, 3), np.uint8), chunks, heats, multimask_choice="iou")
    assert [p.score for p in phrases] == [0.0, 0.8]
    assert [tuple(p.point) for p in phrases] == [tuple(x) for x in sam.points] == [(1, 3), (2, 1)]
    assert phrases[0].bbox == (0, 0, 0, 0) and phrases[1].bbox == (2, 1, 2, 2)


def _chunks():
    return [(NS(text="the mug", char_start=0, char_end=7, root_start=4, root_end=7, count=1), [1]),
            (NS(text="the tray", char_start=9, char_end=17, root_start=13, root_end=17, count=1),
             [4])]


def test_a_phrase_whose_map_has_no_peak_is_left_ungrounded_and_says_why(caplog):
    # a flat map (a one-token answer's, less its own mean) peaks at pixel (0, 0) by argmax, and
    # a NaN map (fp16 overflow) has no peak: neither may prompt SAM, nor fail the request
    found = np.zeros((4, 5), bool)
    found[1:3, 2:4] = True
    peaked = np.zeros((4, 5))
    peaked[1, 2] = 1.0
    for bad, words in ((np.full((4, 5), 0.25), "is flat"),
                       (np.full((4, 5), np.nan), "has no finite value")):
        sam = _Sam([(found, 0.8)])
        with caplog.at_level("WARNING", logger="ros_ground.phrase_grounding"):
            phrases = point_phrases(sam, np.zeros((4, 5, 3), np.uint8), _chunks(), [bad, peaked],
                                    multimask_choice="iou")
        assert sam.points == [(2.0, 1.0)]  # only the tray is prompted
        mug, tray = phrases
        assert (mug.point, mug.score, mug.mask.shape, mug.mask.any()) == (None, 0.0, (4, 5), False)
        assert tray.point == (2.0, 1.0) and tray.score == 0.8
        assert "'the mug'" in caplog.text and words in caplog.text
        caplog.clear()


def test_with_attention_scoring_a_phrase_without_a_peak_takes_no_entity():
    from ros_ground.phrase_grounding import entity_phrases
    from ros_ground.results import Proposal

    left, right = np.zeros((4, 6), bool), np.zeros((4, 6), bool)
    left[:, :3], right[:, 3:] = True, True
    proposals = [Proposal(id=0, mask=left, score=0.9), Proposal(id=1, mask=right, score=0.7)]
    heat = np.zeros((4, 6))
    heat[:, 4] = 1.0
    flat = np.full((4, 6), np.nan)
    scores = np.array([[np.nan, np.nan], [-0.5, 0.5]])  # EntityScorer's row for `flat`: NaN
    for assignment in ("exclusive", "independent"):
        mug, tray = entity_phrases(_chunks(), [flat, heat], proposals, scores, text="the mug, the tray",
                                   assignment=assignment, margin=0.1)
        assert (mug.point, mug.score, mug.entity_ids, mug.mask.any()) == (None, 0.0, [], False)
        assert tray.entity_ids == [1] and tray.point == (4.0, 0.0)
