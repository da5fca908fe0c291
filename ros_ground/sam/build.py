"""SAM architectures: a flat config dict, building a model from one, and reading one back.

The released architectures (vit_h, vit_l, vit_b) are built by segment-anything's own
`sam_model_registry`; their configs are read back from those models (`config_of`), so this
package keeps no copy of segment-anything's tables. "tiny" is this package's own small
architecture for tests; trained models carry their config beside their weights (see `io`).
"""

from __future__ import annotations

from functools import partial

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from ros_ground.sam.errors import SamLoadError

CONFIG_FORMAT = "ros_ground.sam/1"
# The registry's "default" is another name for vit_h.
REGISTRY_SPECS = tuple(spec for spec in sam_model_registry if spec != "default")
# ImageNet's per-channel mean and standard deviation on 0-255 pixels, SAM's input normalisation.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)

CONFIG_KEYS = frozenset({
    "img_size",
    "patch_size",
    "encoder_embed_dim",
    "encoder_depth",
    "encoder_num_heads",
    "encoder_global_attn_indexes",
    "encoder_mlp_ratio",
    "window_size",
    "use_rel_pos",
    "prompt_embed_dim",
    "mask_in_chans",
    "decoder_depth",
    "decoder_mlp_dim",
    "decoder_num_heads",
    "iou_head_depth",
    "iou_head_hidden_dim",
    "pixel_mean",
    "pixel_std",
})


def sam_config(spec: str = "tiny", img_size: int = 256) -> dict:
    """Full architecture config of "tiny" (at `img_size`, a multiple of 16 in [32, 256]) or of
    a released "vit_h" / "vit_l" / "vit_b" (read from segment-anything's builder; `img_size`
    is then ignored: they are 1024). Raises SamLoadError for anything else."""
    if spec == "tiny":
        if img_size % 16 or not 32 <= img_size <= 256:
            raise SamLoadError(
                f"tiny SAM img_size must be a multiple of 16 in [32, 256], got {img_size}"
            )
        return {
            "format": CONFIG_FORMAT,
            "img_size": img_size,
            "patch_size": 16,
            "encoder_embed_dim": 64,
            "encoder_depth": 2,
            "encoder_num_heads": 2,
            "encoder_global_attn_indexes": [1],
            "encoder_mlp_ratio": 2.0,
            "window_size": 4,
            "use_rel_pos": True,
            "prompt_embed_dim": 32,
            "mask_in_chans": 4,
            "decoder_depth": 2,
            "decoder_mlp_dim": 64,
            "decoder_num_heads": 2,
            "iou_head_depth": 3,
            "iou_head_hidden_dim": 32,
            "pixel_mean": list(PIXEL_MEAN),
            "pixel_std": list(PIXEL_STD),
        }
    if spec in REGISTRY_SPECS:
        with torch.device("meta"):  # the architecture only: no memory, no initialisation cost
            return config_of(sam_model_registry[spec](checkpoint=None))
    raise SamLoadError(
        f"no built-in SAM config {spec!r}: expected 'tiny', {', '.join(REGISTRY_SPECS)}"
    )


def config_of(sam: Sam) -> dict:
    """The config (see `sam_config`) that `build_sam_from_config` turns into `sam`'s architecture.

    Works on a model on the meta device. Encoder blocks with window size 0 are the global ones.
    """
    encoder, prompts, decoder = sam.image_encoder, sam.prompt_encoder, sam.mask_decoder
    blocks = encoder.blocks
    embed_dim = encoder.patch_embed.proj.out_channels
    windows = [block.window_size for block in blocks]
    transformer = decoder.transformer
    return {
        "format": CONFIG_FORMAT,
        "img_size": int(encoder.img_size),
        "patch_size": int(encoder.patch_embed.proj.kernel_size[0]),
        "encoder_embed_dim": int(embed_dim),
        "encoder_depth": len(blocks),
        "encoder_num_heads": int(blocks[0].attn.num_heads),
        "encoder_global_attn_indexes": [i for i, w in enumerate(windows) if w == 0],
        "encoder_mlp_ratio": blocks[0].mlp.lin1.out_features / embed_dim,
        "window_size": max(windows),
        "use_rel_pos": bool(blocks[0].attn.use_rel_pos),
        "prompt_embed_dim": int(prompts.embed_dim),
        # mask_downscaling: conv(1 -> chans/4), norm, act, conv(chans/4 -> chans), norm, act, conv
        "mask_in_chans": int(prompts.mask_downscaling[3].out_channels),
        "decoder_depth": len(transformer.layers),
        "decoder_mlp_dim": int(transformer.layers[0].mlp.lin1.out_features),
        "decoder_num_heads": int(transformer.num_heads),
        "iou_head_depth": int(decoder.iou_prediction_head.num_layers),
        "iou_head_hidden_dim": int(decoder.iou_prediction_head.layers[0].out_features),
        # 7 significant digits give back the same float32 and the familiar decimal
        "pixel_mean": [float(f"{v:.7g}") for v in sam.pixel_mean.flatten().tolist()],
        "pixel_std": [float(f"{v:.7g}") for v in sam.pixel_std.flatten().tolist()],
    }


def build_sam_from_config(config: dict) -> Sam:
    """A SAM-architecture model in eval mode with random weights, as `config` describes.

    Raises SamLoadError when keys are missing or unknown, the format is foreign, or the values
    do not make a model.
    """
    unknown = set(config) - CONFIG_KEYS - {"format"}
    missing = CONFIG_KEYS - set(config)
    if unknown or missing or config.get("format", CONFIG_FORMAT) != CONFIG_FORMAT:
        raise SamLoadError(
            f"bad SAM config: missing {sorted(missing)}, unknown {sorted(unknown)}, "
            f"format {config.get('format')!r} (expected {CONFIG_FORMAT!r})"
        )
    c = config
    sizes = c["img_size"], c["patch_size"]
    if not all(type(v) is int and v > 0 for v in sizes) or sizes[0] % sizes[1]:
        raise SamLoadError(f"SAM config: img_size and patch_size must be positive integers, img_size a "
                           f"multiple of patch_size (got {sizes[0]!r} and {sizes[1]!r})")
    grid = c["img_size"] // c["patch_size"]
    dim = c["prompt_embed_dim"]
    try:
        sam = Sam(
            image_encoder=ImageEncoderViT(
                img_size=c["img_size"],
                patch_size=c["patch_size"],
                embed_dim=c["encoder_embed_dim"],
                depth=c["encoder_depth"],
                num_heads=c["encoder_num_heads"],
                mlp_ratio=c["encoder_mlp_ratio"],
                out_chans=dim,
                qkv_bias=True,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_rel_pos=c["use_rel_pos"],
                window_size=c["window_size"],
                global_attn_indexes=tuple(c["encoder_global_attn_indexes"]),
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=dim,
                image_embedding_size=(grid, grid),
                input_image_size=(c["img_size"], c["img_size"]),
                mask_in_chans=c["mask_in_chans"],
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=c["decoder_depth"],
                    embedding_dim=dim,
                    mlp_dim=c["decoder_mlp_dim"],
                    num_heads=c["decoder_num_heads"],
                ),
                transformer_dim=dim,
                iou_head_depth=c["iou_head_depth"],
                iou_head_hidden_dim=c["iou_head_hidden_dim"],
            ),
            pixel_mean=list(c["pixel_mean"]),
            pixel_std=list(c["pixel_std"]),
        )
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise SamLoadError(f"SAM config does not describe a buildable model: {exc}") from exc
    return sam.eval()


def build_tiny_sam(seed: int = 0, img_size: int = 256) -> Sam:
    """A small SAM-architecture model (2-layer ViT, 32-d prompts) for tests and demos.

    Same seed, same weights. Seeded in a forked RNG so building it leaves the caller's random
    state alone.
    """
    config = sam_config("tiny", img_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_sam_from_config(config)
