"""Loading a model from its spec: "tiny", "sim", a checkpoint directory or a Hugging Face id
(from the local cache; downloads only when allowed), on a resolved device and dtype."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
from pathlib import Path

import torch

from ros_ground.device import resolve_device
from ros_ground.errors import pickle_refusal
from ros_ground.geometry import IMAGE_FITS
from ros_ground.lmm.adapter import LMMAdapter
from ros_ground.lmm.errors import ModelLoadError

# "sim": the embedded default, trained in simulation (ros_ground/train), loaded as a directory.
SIM_LMM_DIR = Path(__file__).resolve().parent.parent / "models" / "sim_lmm"
LOG = logging.getLogger(__name__)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' -> bf16 (or fp16) on cuda, fp32 on cpu; or an explicit float32|float16|bfloat16."""
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
             "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in names:
        raise ValueError(f"dtype must be auto|float32|float16|bfloat16, got {dtype!r}")
    return names[dtype]


def half_on_cpu(dtype: str, device: torch.device) -> str:
    """What a half-precision `dtype` (float16 / bfloat16, as the `dtype` setting names it) costs
    on `device` when that is the CPU, as a warning; "" otherwise. Allowed, as it halves the
    weights' memory, but the CPU runs much of a half-precision model slower than float32."""
    if device.type != "cpu" or resolve_dtype(dtype, device) not in (torch.float16, torch.bfloat16):
        return ""
    return (f"dtype {dtype} on the CPU: the LMM's weights take half the memory, but many CPU "
            f"ops have no fast {dtype} path, so answers are slower than in float32 (the sim "
            "model on 2 CPU cores: float16 2.6 times float32's time, bfloat16 1.3 times); dtype "
            "auto is float32 on the CPU")


def _looks_like_path(spec: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything else path-shaped is a directory."""
    return (spec.startswith(("/", "./", "../", "~", "."))
            or spec.count("/") > 1 or os.sep != "/" and os.sep in spec
            or Path(spec).expanduser().exists())


_OFFLINE_LOCK = threading.Lock()
_offline = {"holds": 0, "saved": False}


@contextlib.contextmanager
def hub_offline_held():
    """huggingface_hub's offline switch on for the block, so a cache-only load makes no network
    call: with `local_files_only` alone the hub still asks huggingface.co for its list of agent
    harnesses while it builds request headers (utils/_detect_agent.py). The hub and transformers
    read the switch from `huggingface_hub.constants.HF_HUB_OFFLINE`, set from HF_HUB_OFFLINE
    once at import, so the constant is set, not the variable; restored when the last of the
    holds running at once in threads ends (a download in another thread meanwhile is offline too)."""
    from huggingface_hub import constants

    with _OFFLINE_LOCK:  # loads at once in threads: on while any holds it, restored by the last
        if _offline["holds"] == 0:
            _offline["saved"] = constants.HF_HUB_OFFLINE
        _offline["holds"] += 1
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        with _OFFLINE_LOCK:
            _offline["holds"] -= 1
            if _offline["holds"] == 0:
                constants.HF_HUB_OFFLINE = _offline["saved"]


def _from_pretrained(source: str, local_only: bool, dtype: torch.dtype, device: torch.device,
                     trust_remote_code: bool, progress: bool = True):
    """`progress`: transformers' "Loading weights" bar, worth showing for real weights (minutes)
    and noise on every run for the embedded sim model (a fraction of a second)."""
    # One path for every device: load on the host, then move. `device_map` would load straight
    # onto a GPU, but transformers 5 refuses it without the `accelerate` package.
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        with hub_offline_held() if local_only else contextlib.nullcontext():
            processor = AutoProcessor.from_pretrained(
                source, local_files_only=local_only, trust_remote_code=trust_remote_code)
            model = AutoModelForImageTextToText.from_pretrained(
                source, local_files_only=local_only, trust_remote_code=trust_remote_code,
                dtype=dtype, attn_implementation="sdpa")
    finally:
        if shown and not progress:
            hf_logging.enable_progress_bar()
    return model.to(device), processor


def hub_cache_dir(model_id: str) -> Path:
    """Where the Hugging Face cache keeps `model_id` (HF_HUB_CACHE / HF_HOME decide the root)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=model_id, repo_type="model")


def in_hub_cache(model_id: str) -> bool:
    """Whether the Hugging Face cache holds `model_id`'s config.json at the revision a
    cache-only load reads (main): huggingface_hub's own lookup, as transformers makes it."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it (its true values), but read now: its
    constants.HF_HUB_OFFLINE is read once, at import, and would miss a later setting."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in constants.ENV_VARS_TRUE_VALUES


ERROR_CHARS = 600  # of a loader's message kept in ModelLoadError: transformers' run to a few lines


def _one_line(message: str, limit: int = ERROR_CHARS) -> str:
    """`message` with its whitespace collapsed to single spaces, cut to `limit` characters
    (ending in "...") where longer: a loader's whole explanation, on the one line a log keeps."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def check_lmm_spec(spec: str, allow_download: bool | None = None) -> None:
    """The checks of `load_lmm` that read no weights, so a caller can make them before loading
    anything for seconds (build_engine, beside SAM's): ModelLoadError for the embedded 'sim'
    model missing, a path that is no directory, and, when `allow_download` is False (None: not
    checked), a Hugging Face id whose config.json is not in the cache (`in_hub_cache`:
    nothing, or a download that never finished), and an empty spec (Path("") is the current
    directory)."""
    if not str(spec).strip():
        raise ModelLoadError(f"model {spec!r} is empty: give a checkpoint directory, a Hugging "
                             "Face id, 'sim' or 'tiny'")
    if spec == "tiny":
        return
    if spec == "sim" and not (SIM_LMM_DIR / "config.json").is_file():
        raise ModelLoadError(f"the embedded 'sim' model is missing from {str(SIM_LMM_DIR)!r} "
                             f"(train it with `ros-ground train lmm`)")
    location = str(SIM_LMM_DIR) if spec == "sim" else spec
    if _looks_like_path(location):
        path = Path(location).expanduser()
        if not path.is_dir():
            raise ModelLoadError(f"model {spec!r}: no such directory {str(path)!r} "
                                 f"(give a checkpoint directory, a Hugging Face id, 'sim' or 'tiny')")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model {spec!r}: {str(path)!r} holds no config.json, so it is no "
                                 "Hugging Face checkpoint directory (save_pretrained writes one)")
    elif allow_download is False and not in_hub_cache(spec):
        raise ModelLoadError(f"model {spec!r} is not in the Hugging Face cache "
                             f"{str(hub_cache_dir(spec))!r}, and downloads are off (allow_download "
                             "is false): put the model in that cache or give a local directory")


def load_lmm(spec: str, device: str = "auto", dtype: str = "auto",
             trust_remote_code: bool = False, image_fit: str = "auto",
             allow_download: bool = False, compile: str = "off") -> LMMAdapter:
    """Load "tiny", "sim" (the packaged directory), a local checkpoint directory, or a Hugging
    Face id from the local cache. `image_fit`, `compile`: see `LMMAdapter`.

    allow_download: only then may a Hugging Face id missing from the cache be downloaded from
    the Hub (and only while HF_HUB_OFFLINE is unset); by default nothing is fetched, whatever
    the environment says. Without a network huggingface_hub retries each file 5 times (its
    retries are fixed, not a setting), so a download fails only after minutes (about 2.5 for a
    LLaVA checkpoint). Raises ModelLoadError naming every place searched (for a Hub id, its
    cache directory) when the model cannot be loaded.
    """
    torch_device = resolve_device(device, ModelLoadError)
    torch_dtype = resolve_dtype(dtype, torch_device)
    costly = half_on_cpu(dtype, torch_device)
    if costly:
        LOG.warning(costly)
    if image_fit not in IMAGE_FITS:
        raise ValueError(f"image_fit must be one of {IMAGE_FITS}, got {image_fit!r}")
    if spec == "tiny":
        from ros_ground.lmm.tiny import build_tiny_lmm

        model, processor = build_tiny_lmm()
        model = model.to(torch_device, torch_dtype)
        return LMMAdapter("tiny", model, processor, torch_device, torch_dtype, image_fit,
                          compile)

    offline = hub_offline()
    tried: list[str] = []
    errors: list[str] = []
    note = ""
    location = str(SIM_LMM_DIR) if spec == "sim" else spec
    check_lmm_spec(spec)
    if trust_remote_code:
        LOG.warning("trust_remote_code is on: %r may run its repository's own Python code in this "
                    "process; use it only with weights you trust", spec)
    if _looks_like_path(location):
        path = Path(location).expanduser()
        attempts = [(str(path), True, f"local directory {str(path)!r}")]
    else:
        attempts = [(spec, True, f"Hugging Face cache {str(hub_cache_dir(spec))!r}")]
        if not allow_download:
            note = (" Downloads are off (allow_download is false): put the model in that cache "
                    "or give a local directory.")
        elif offline:
            note = " HF_HUB_OFFLINE is set, so the Hub was not contacted."
        else:
            attempts.append((spec, False, f"Hugging Face Hub download of {spec!r}"))
    for source, local_only, what in attempts:
        tried.append(what)
        try:
            model, processor = _from_pretrained(source, local_only, torch_dtype, torch_device,
                                                trust_remote_code, progress=spec != "sim")
        except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) refused a pickle
            raise ModelLoadError(
                f"model {spec!r}: refused the pickled weights (.bin) in {what}: "
                f"torch.load(weights_only=True), which takes plain tensors only, refused them "
                f"({_one_line(pickle_refusal(str(exc)), 200)}); pickled weights are refused, convert "
                "them to safetensors (save_pretrained's default) in an environment you trust") from None
        except (OSError, ValueError, KeyError, ImportError) as exc:
            said = _one_line(str(exc))
            if local_only and "couldn't connect" in said:
                # transformers says so of local_files_only too, where nothing was contacted
                said = "the files are not there"
            errors.append(f"{type(exc).__name__}: {said}")
            continue
        return LMMAdapter(spec, model, processor, torch_device, torch_dtype, image_fit,
                          compile)
    raise ModelLoadError(f"could not load model {spec!r}; tried: {'; '.join(tried)}.{note} "
                         f"Errors: {' | '.join(errors)}")
