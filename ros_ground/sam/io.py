"""SAM weights on disk: reading checkpoints without running pickled code, checking them
against an architecture, and saving / loading a model as weights plus config.

A saved model is a directory with `model.safetensors` and `sam_config.json` (see
`build.sam_config`), or a .safetensors file with its config beside it.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import torch
from segment_anything.modeling import Sam

from ros_ground.errors import pickle_refusal
from ros_ground.sam.build import CONFIG_FORMAT, REGISTRY_SPECS, build_sam_from_config, sam_config
from ros_ground.sam.errors import SamLoadError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "sam_config.json"


def save_sam(sam: Sam, config: dict, directory) -> Path:
    """Write `sam`'s weights (safetensors) and its architecture config (JSON) into `directory`.

    The config is checked against the model (built on the meta device, so even ViT-H costs
    nothing): a saved model always loads back through `load_saved_sam(directory)`. Returns the
    weights path; raises SamLoadError when the config does not describe `sam`.
    """
    from safetensors.torch import save_file

    config = {"format": CONFIG_FORMAT, **dict(config)}
    with torch.device("meta"):
        reference = build_sam_from_config(config)
    state = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}
    check_state_dict(reference, state, "the model being saved")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_NAME
    save_file(state, str(weights), metadata={"format": CONFIG_FORMAT})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return weights


def saved_sam_files(path) -> tuple[Path, Path]:
    """(weights, config) paths of a model written by `save_sam`: its directory, or a
    .safetensors file with a JSON beside it (same stem, else `sam_config.json`). Raises
    SamLoadError when either file is missing; reads neither."""
    path = Path(path).expanduser()
    if path.is_dir():
        weights, config_path = path / WEIGHTS_NAME, path / CONFIG_NAME
    else:
        weights = path
        config_path = path.with_suffix(".json")
        if not config_path.is_file():
            config_path = path.parent / CONFIG_NAME
    if not weights.is_file():
        raise SamLoadError(f"SAM weights not found: {weights}")
    if not config_path.is_file():
        raise SamLoadError(f"no SAM config beside {weights} (looked for {config_path.name})")
    return weights, config_path


def load_saved_sam(path) -> Sam:
    """Model written by `save_sam` (`saved_sam_files`). Raises SamLoadError for missing or
    unreadable files."""
    weights, config_path = saved_sam_files(path)
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise SamLoadError(f"unreadable SAM config {config_path}: {exc}") from exc
    if not isinstance(config, dict):
        raise SamLoadError(f"SAM config {config_path} is not a JSON object")
    sam = build_sam_from_config(config)
    load_weights(sam, weights)
    return sam


def checkpoint_path(path) -> Path:
    """`path` (a user's `~` expanded) as a checkpoint file; SamLoadError when there is none."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise SamLoadError(f"SAM checkpoint {path} is a directory: give the checkpoint file "
                           "(e.g. sam_vit_h_4b8939.pth), or the directory as sam_model")
    if not path.is_file():
        raise SamLoadError(f"SAM checkpoint not found: {path}")
    return path


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint, never executing pickled code.

    safetensors files are read as such (recognised by suffix or header); anything else goes
    through torch.load(weights_only=True), which refuses pickles that build arbitrary objects.
    A dict wrapped as {"model": ...} or {"state_dict": ...} is unwrapped.
    """
    path = checkpoint_path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise SamLoadError(f"cannot read SAM checkpoint {path}: {exc}") from exc
    # a safetensors file starts with an 8-byte header length, then the JSON header
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError as well as OSError
            raise SamLoadError(f"corrupt safetensors file {path}: {exc}") from exc
    elif not head.startswith((b"PK", b"\x80")):  # torch.save's zip archive, or a legacy pickle
        raise SamLoadError(f"{path} is not a SAM checkpoint: neither a PyTorch file nor "
                           f"safetensors (it starts with {head[:8]!r})")
    else:
        try:
            with warnings.catch_warnings():  # our refusal says it; torch's warning repeats it
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise SamLoadError(
                f"refused to load {path}: torch.load(weights_only=True), which takes plain "
                f"tensors only, refused it ({pickle_refusal(str(exc))}). Convert it to safetensors in "
                "an environment you trust."
            ) from exc
        except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
            raise SamLoadError(f"corrupt or unreadable SAM checkpoint {path}: {exc}") from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and set(state) == {wrapper} and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise SamLoadError(f"{path} is not a state dict of named tensors")
    return state


def load_weights(sam: Sam, path) -> None:
    """Load a checkpoint into `sam` after checking every key and shape against the architecture."""
    state = read_state_dict(path)
    check_state_dict(sam, state, str(path))
    sam.load_state_dict(state, strict=True)


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise SamLoadError, naming missing, unexpected and wrong-shape keys, unless `state` fits
    `model` exactly. When the encoder width matches a released architecture, the message says
    which (the usual mistake is a checkpoint of another size)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if not (missing or unexpected or wrong):
        return
    hint = ""
    patch = state.get("image_encoder.patch_embed.proj.weight")
    if patch is not None and patch.ndim == 4:
        found = [s for s in REGISTRY_SPECS if sam_config(s)["encoder_embed_dim"] == patch.shape[0]]
        if found:
            hint = f" (its encoder width {patch.shape[0]} matches {found[0]})"
    details = "; ".join(
        f"{label} {len(keys)}: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        )
        if keys
    )
    raise SamLoadError(f"checkpoint {source} does not fit this SAM architecture{hint}: {details}")
