"""Overlay image for people: each phrase's mask in its own colour, outlined and labelled."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from ros_ground.results import GroundedPhrase


def phrase_colour(index: int) -> tuple[int, int, int]:
    """Distinct, stable RGB colours (golden-ratio hue steps) so phrase i looks the same everywhere."""
    hue = (0.61803398875 * index + 0.1) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_overlay(image: np.ndarray, phrases: list[GroundedPhrase], alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 copy of `image` with the phrases' masks, outlines, prompt points and labels."""
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    height, width = out.shape[:2]
    scale = max(0.35, min(width, height) / 700.0)
    for i, phrase in enumerate(phrases):
        colour = np.array(phrase_colour(i), dtype=np.float32)
        mask = np.asarray(phrase.mask, dtype=bool)
        if mask.shape != (height, width) or not mask.any():
            continue
        out[mask] = (out[mask] * (1 - alpha) + colour * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 1)
    for i, phrase in enumerate(phrases):
        colour = phrase_colour(i)
        if phrase.point is not None:
            centre = (int(round(phrase.point[0])), int(round(phrase.point[1])))
            cv2.drawMarker(out, centre, (255, 255, 255), cv2.MARKER_CROSS, 9, 3)
            cv2.drawMarker(out, centre, colour, cv2.MARKER_CROSS, 9, 1)
        x, y, w, h = phrase.bbox
        if w == 0:
            continue
        _label(out, phrase.text, (x, max(y, 12)), colour, scale)
    return out


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour, scale: float) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    x = int(np.clip(origin[0], 0, max(0, image.shape[1] - tw - 2)))
    y = int(np.clip(origin[1], th + 2, image.shape[0] - base))
    cv2.rectangle(image, (x, y - th - 2), (x + tw + 2, y + base), colour, -1)
    cv2.putText(image, text, (x + 1, y - 1), font, scale, (0, 0, 0), 1, cv2.LINE_AA)


def save_png(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def load_rgb(path: str) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"could not read an image from {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
