"""`load_sam`: a SamSegmenter from a spec string (a node's `sam_model` parameter)."""

from __future__ import annotations

from pathlib import Path

from segment_anything import sam_model_registry

from ros_ground.device import resolve_device
from ros_ground.sam.build import REGISTRY_SPECS, build_tiny_sam
from ros_ground.sam.errors import SamLoadError
from ros_ground.sam.io import WEIGHTS_NAME, checkpoint_path, load_saved_sam, load_weights, saved_sam_files
from ros_ground.sam.segmenter import SamSegmenter

# "sim": the embedded default, trained in simulation (ros_ground/train), loaded as a directory.
SIM_SAM_DIR = Path(__file__).resolve().parents[1] / "models" / "sim_sam"


def check_sam_spec(spec: str, checkpoint: str | None = None, device: str = "cpu",
                   pair_checks: bool = True) -> Path | None:
    """The checks of `load_sam` that read no weights, so a caller can make them before loading
    anything else for seconds (build_engine: before the LMM). Returns the saved model's
    directory for "sim" or a path, else None; raises SamLoadError as `load_sam` says, and for
    an empty spec (Path("") is the current directory). `pair_checks` False leaves out the two
    checks of `spec` and `checkpoint` together (a released architecture without a checkpoint,
    one with its own weights given one): a node's parameters are set one at a time, in any
    order (`ros2 param dump` writes them sorted, sam_checkpoint before sam_model)."""
    if not str(spec).strip():
        raise SamLoadError(f"sam_model {spec!r} is empty: give {', '.join(REGISTRY_SPECS)}, "
                           "'tiny', 'sim' or a directory save_sam wrote")
    resolve_device(device, SamLoadError)
    if spec in (*REGISTRY_SPECS, "tiny"):
        if checkpoint is None and spec != "tiny" and pair_checks:
            raise SamLoadError(
                f"SAM {spec!r} needs its checkpoint (sam_checkpoint / --sam-checkpoint, e.g. "
                f"Meta's sam_{spec}_*.pth): without one it has random weights and its masks "
                "mean nothing. Use sam_model 'sim' for the embedded model."
            )
        if checkpoint is not None:
            checkpoint_path(checkpoint)
        return None
    path = SIM_SAM_DIR if spec == "sim" else Path(str(spec)).expanduser()
    if spec == "sim" and not (path / WEIGHTS_NAME).is_file():
        raise SamLoadError(f"the embedded 'sim' SAM is missing from {str(path)!r} "
                           "(train it with `ros-ground train sam`)")
    if not path.exists():
        if "/" in str(spec) or "\\" in str(spec) or str(spec).startswith(("~", ".")):
            raise SamLoadError(f"sam_model {spec!r}: no such directory {str(path)!r} (give a "
                               f"directory save_sam wrote, {', '.join(REGISTRY_SPECS)}, 'tiny' "
                               "or 'sim')")
        raise SamLoadError(
            f"unknown SAM spec {spec!r}: expected {', '.join(REGISTRY_SPECS)}, 'tiny', "
            "'sim' or the path of a model saved by save_sam"
        )
    if checkpoint is not None and pair_checks:
        raise SamLoadError(
            f"sam_model {spec!r} carries its own weights (the embedded model, or a directory "
            f"save_sam wrote); sam_checkpoint is for {' / '.join(REGISTRY_SPECS)}: leave it empty"
        )
    if checkpoint is not None:  # set beside it before the model it is for: the path is checked now
        checkpoint_path(checkpoint)
    saved_sam_files(path)  # a directory without save_sam's files: load_sam's own error
    return path


def load_sam(spec: str, checkpoint: str | None = None, device: str = "cpu") -> SamSegmenter:
    """A SamSegmenter for one of:

    - "vit_h" | "vit_l" | "vit_b" with `checkpoint` (safetensors or a plain-tensor .pth, e.g.
      the official sam_vit_h_4b8939.pth), built by segment-anything's registry;
    - "tiny" (random weights, for tests; `checkpoint` optional);
    - "sim" (the packaged model) or the path of a model saved by `save_sam` (no `checkpoint`);

    on `device` ("auto": CUDA when torch sees a GPU, device.resolve_device). Raises
    SamLoadError for an unknown spec, a released architecture without its checkpoint (random
    weights would give meaningless masks after minutes of loading), missing or unfitting
    weights, and a CUDA device without CUDA (`check_sam_spec`, first).
    """
    path = check_sam_spec(spec, checkpoint, device)
    device = str(resolve_device(device, SamLoadError))
    if spec in REGISTRY_SPECS:
        sam = sam_model_registry[spec](checkpoint=None)
        load_weights(sam, checkpoint)
    elif spec == "tiny":
        sam = build_tiny_sam()
        if checkpoint is not None:
            load_weights(sam, checkpoint)
    else:
        sam = load_saved_sam(path)
    return SamSegmenter(sam, device=device)
