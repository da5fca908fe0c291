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
