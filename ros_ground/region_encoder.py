"""A trained region encoder for the sim model: the region's pixels at the camera's resolution.

Groma encodes a region by ROIAlign over the vision tower's high-resolution features. The sim
LMM's tower sees the image at 192x192 in 16-pixel patches, where a tabletop object covers about
one patch; mask-pooled projector tokens then tell an object's colour but not its category (a
logistic probe on them: 0.75 category accuracy on held-out scenes against 1.00 for colour,
docs/MEASUREMENTS.md). This encoder reads the region's crop from the camera image instead
(`region_crop`: the mask's box, squared with a margin, RGB and the mask, `CROP_SIZE` pixels a
side) and adds a learned vector to the pooled token and to the region's own image tokens
(`RegionEncoder`, zero at initialisation, so an untrained encoder changes nothing;
regions.apply_region). It is trained in the simulator with mask and label supervision and the
LMM frozen (`ros_ground.train.region_encoder`); the LMM itself stays captions-only.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ros_ground.errors import InputError
from ros_ground.lmm.fingerprint import KEY, lmm_sha256, trained_for
from ros_ground.masks import mask_bbox

CROP_SIZE = 32
CROP_MARGIN = 1.5  # the crop's side over the mask box's longer side: some surroundings in view
SIM_REGION_ENCODER_PATH = (Path(__file__).resolve().parent / "models" / "sim_region"
                           / "encoder.pt")


def region_crop(image: np.ndarray, mask: np.ndarray, size: int = CROP_SIZE,
                margin: float = CROP_MARGIN) -> np.ndarray:
    """float32 [4, size, size]: RGB in [0, 1] and the mask (0/1) of the square around `mask`.

    image: HxWx3 uint8 RGB; mask: HxW bool, not empty. The square is centred on the mask's
    box, its side `margin` times the box's longer side (at least 4 pixels); parts outside the
    image are black and unmasked. Resized with cv2.INTER_AREA (down) or INTER_LINEAR (up).
    Raises ValueError for an empty mask or one whose shape is not the image's.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} differs from the image's {image.shape[:2]}")
    x, y, w, h = mask_bbox(mask)
    if w == 0:
        raise ValueError("region mask is empty")
    side = max(4, int(np.ceil(margin * max(h, w))))
    top = (2 * y + h) // 2 - side // 2
    left = (2 * x + w) // 2 - side // 2
    stack = np.dstack([image, mask.astype(np.uint8) * 255])
    pad = [max(0, -top), max(0, top + side - mask.shape[0]),
           max(0, -left), max(0, left + side - mask.shape[1])]
    stack = cv2.copyMakeBorder(stack, *pad, cv2.BORDER_CONSTANT, value=0)
    square = stack[top + pad[0]:top + pad[0] + side, left + pad[2]:left + pad[2] + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    resized = cv2.resize(square, (size, size), interpolation=interpolation)
    return (resized.astype(np.float32) / 255.0).transpose(2, 0, 1)


class RegionEncoder(nn.Module):
    """A small CNN from `region_crop` crops ([B, 4, S, S]) to vectors in the LMM's input
    space ([B, hidden]), added to the region's pooled token and its own image tokens. The last
    layer starts at zero. `hidden`: the LMM's input width; `size`: the crop's side in pixels;
    `width`: the first convolution's channels (doubled twice)."""

    def __init__(self, hidden: int, size: int = CROP_SIZE, width: int = 32):
        super().__init__()
        self.size, self.hidden = size, hidden
        self.features = nn.Sequential(
            nn.Conv2d(4, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(4 * width, 4 * width, 3, stride=2, padding=1), nn.GELU(),
            nn.Flatten(),
        )
        cells = (size // 8) ** 2
        self.out = nn.Sequential(nn.Linear(4 * width * cells, 2 * hidden), nn.GELU(),
                                 nn.Linear(2 * hidden, hidden))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def hidden_features(self, crops: torch.Tensor) -> torch.Tensor:
        """[B, 2 * hidden]: the features before the last layer (training's auxiliary heads)."""
        return self.out[:-1](self.features(crops))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.out[-1](self.hidden_features(crops))

    def encode(self, image: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        """float32 [hidden]: the vector for one region of `image` (see `region_crop`)."""
        crop = torch.as_tensor(region_crop(image, mask, self.size))[None]
        with torch.no_grad():
            return self(crop.to(next(self.parameters()).device))[0].float().cpu()


RETRAIN_ENCODER = "python -m ros_ground.train.region_encoder, as `ros-ground train all` does"


def save_encoder(encoder: RegionEncoder, path: str | Path, lmm_sha256: str | None = None) -> None:
    """Write `encoder`'s sizes and weights to `path` (a torch file `load_encoder` reads with
    weights_only), with `lmm_sha256`: the fingerprint of the LMM it was trained for
    (lmm.fingerprint.lmm_sha256), None for none."""
    torch.save({"hidden": encoder.hidden, "size": encoder.size, KEY: lmm_sha256,
                "state_dict": encoder.state_dict()}, path)


def load_encoder(path: str | Path | None = None,
                 lmm_sha256: str | None = None) -> RegionEncoder | None:
    """The encoder saved at `path` (default: the sim model's), None when the file is absent.
    Given `lmm_sha256` (the fingerprint of the LMM it would serve), also None, with a warning,
    unless the file records that LMM: a vector fitted to other weights means nothing to them."""
    path = Path(path or SIM_REGION_ENCODER_PATH)
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if lmm_sha256 is not None and not trained_for(saved.get(KEY), lmm_sha256, path, RETRAIN_ENCODER):
        return None
    encoder = RegionEncoder(int(saved["hidden"]), int(saved["size"]))
    encoder.load_state_dict(saved["state_dict"])
    return encoder.eval()


_LOADED: dict[str, RegionEncoder | None] = {}
_LOCK = threading.Lock()


def encoder_for(model: str) -> RegionEncoder:
    """The trained region encoder of LMM `model` (loaded once, then shared: it is read-only).
    Raises InputError for a model that ships none (only "sim" does) or whose encoder was
    trained for other weights of it (lmm.fingerprint)."""
    with _LOCK:
        if model not in _LOADED:
            # once: load_encoder warns of one trained for other weights
            _LOADED[model] = load_encoder(lmm_sha256=lmm_sha256() or "") if model == "sim" else None
        encoder = _LOADED[model]
        if encoder is None:
            why = (f"the sim model's ({str(SIM_REGION_ENCODER_PATH)!r}) is absent or was trained "
                   f"for other weights: retrain it with `{RETRAIN_ENCODER.split(',')[0]}`, or"
                   if model == "sim" else f"model {model!r} has none (only the sim model ships one):")
            raise InputError(f"region_token 'encoder' needs a region encoder trained for the "
                             f"model; {why} use 'pooled'")
        return encoder
