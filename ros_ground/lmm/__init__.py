"""The image-text model (LMM): loading it, and one image + prompt in, generated text and one
image-attention map per generated token out.

Modules, one job each:

- `adapter`: `LMMAdapter`, a loaded model with attention capture: prompts, inputs, greedy
  generation with maps, maps read again on flipped views;
- `generation`: `Generation`, one request's output, and the hook that streams it;
- `fit`: how the camera frame is fitted to the model's image input (`image_fit`);
- `layout`: where each model family puts the image tokens and what grid they form;
- `text`: the tokenizer's special strings and where the user's own text sits in the input;
- `loading`: `load_lmm`, a model from its spec ("tiny", "sim", a directory, a Hub id);
- `errors`: `ModelLoadError`, `BadPromptError`;
- `attention`: the attention capture alongside SDPA (the last query row's image attention);
- `compiled`: compiled greedy decoding with the capture inside the compiled graph;
- `tokens`: entity tokens mask-pooled from the LMM's own image tokens (of the frame or a window);
- `fingerprint`: which LMM weights a trained add-on (retrieval head, region encoder) was trained for;
- `tiny`: the deterministic tiny random LLaVA the tests and demos build in-process.
"""

from ros_ground.geometry import IMAGE_FITS
from ros_ground.lmm.adapter import LMMAdapter, ViewsPrefill
from ros_ground.lmm.errors import BadPromptError, ModelLoadError
from ros_ground.lmm.generation import Generation
from ros_ground.lmm.loading import (
    SIM_LMM_DIR,
    check_lmm_spec,
    half_on_cpu,
    hub_cache_dir,
    load_lmm,
    resolve_device,
    resolve_dtype,
)

__all__ = [
    "IMAGE_FITS",
    "SIM_LMM_DIR",
    "BadPromptError",
    "Generation",
    "LMMAdapter",
    "ViewsPrefill",
    "ModelLoadError",
    "hub_cache_dir",
    "load_lmm",
    "check_lmm_spec",
    "half_on_cpu",
    "resolve_device",
    "resolve_dtype",
]
