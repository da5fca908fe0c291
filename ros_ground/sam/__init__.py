"""Segment Anything for grounding: loading, one image embedding per frame, point prompts, mask
proposals and entity tokens.

Words used in this package, one meaning each:

- **entity**: an object in the image that a phrase of the answer can refer to (GROUNDHOG's
  entity); grounding picks entities for phrases.
- **mask proposal** (`results.Proposal`; "proposal" in names such as `propose`,
  `PROPOSAL_DEFAULTS`): one mask SAM proposes for the whole image without any phrase, from a
  grid of point prompts, with its predicted IoU, stability score and entity token. Mask
  proposals are the candidate entities.
- **entity token**: one feature vector per mask, pooled from SAM's image embedding under it.

Modules, one job each:

- `build`: architecture configs and building models from them (released ones through
  segment-anything's `sam_model_registry`);
- `io`: reading checkpoints safely, checking them, saving and loading models;
- `predictor`: `CachingPredictor`, segment-anything's predictor that knows whose embedding it
  holds, and batched point decoding;
- `segmenter`: `SamSegmenter`, the embedding cache shared between threads (and computed ahead),
  point prompts;
- `windows`: windows of a large frame at SAM's input scale, for small objects;
- `proposals`: automatic mask proposals from segment-anything's public pieces;
- `tokens`: entity tokens;
- `load`: `load_sam`, a segmenter from a spec string;
- `shared`: the process-wide cache of segmenters (`get_shared_sam`);
- `errors`: `SamLoadError`.
"""

from ros_ground.sam.build import (
    CONFIG_FORMAT,
    PIXEL_MEAN,
    PIXEL_STD,
    REGISTRY_SPECS,
    build_sam_from_config,
    build_tiny_sam,
    config_of,
    sam_config,
)
from ros_ground.sam.errors import SamLoadError
from ros_ground.sam.io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_saved_sam,
    load_weights,
    read_state_dict,
    save_sam,
)
from ros_ground.sam.load import SIM_SAM_DIR, check_sam_spec, load_sam
from ros_ground.sam.predictor import CachingPredictor
from ros_ground.sam.proposals import AMG_DEFAULTS, PROPOSAL_DEFAULTS, mask_proposals
from ros_ground.sam.segmenter import SamSegmenter
from ros_ground.sam.shared import get_shared_sam
from ros_ground.sam.tokens import entity_tokens, mask_grid_weights

__all__ = [
    "check_sam_spec",
    "AMG_DEFAULTS",
    "CONFIG_FORMAT",
    "CONFIG_NAME",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "PROPOSAL_DEFAULTS",
    "REGISTRY_SPECS",
    "SIM_SAM_DIR",
    "WEIGHTS_NAME",
    "CachingPredictor",
    "SamLoadError",
    "SamSegmenter",
    "build_sam_from_config",
    "build_tiny_sam",
    "config_of",
    "entity_tokens",
    "get_shared_sam",
    "load_sam",
    "load_saved_sam",
    "load_weights",
    "mask_proposals",
    "mask_grid_weights",
    "read_state_dict",
    "sam_config",
    "save_sam",
]
