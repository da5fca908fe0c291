"""The training runs' settings: the embedded models' sizes and each stage's hyperparameters.

Plain dataclasses, free of torch, so that `ros-ground train -h` shows their defaults without
loading it; the stages that use them are lmm.py, vision.py and sam.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ros_ground.train.data import DEFAULT_SCENE_SET, TRAIN_SEED_START


def check_run(cfg, positive: tuple[str, ...], non_negative: tuple[str, ...] = ()) -> None:
    """ValueError naming the first field of `cfg` not > 0 (`positive`) or not >= 0
    (`non_negative`): a run of -1 steps would save an untrained model as if trained."""
    for name in positive + non_negative:
        value = getattr(cfg, name)
        low_ok = value >= 0 if name in non_negative else value > 0
        if not (low_ok and value != float("inf")):
            bound = ">= 0" if name in non_negative else "> 0"
            raise ValueError(f"{type(cfg).__name__}.{name} must be a finite number {bound}, "
                             f"got {value!r}")


@dataclass
class LMMArch:
    """Sizes of the embedded LMM (see lmm_model.build_config)."""

    image_size: int = 192
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_mlp: int = 512
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 4
    text_mlp: int = 768
    max_positions: int = 512
    vision_feature_layer: int = -1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VisionPretrainConfig:
    """Stage 1 of the LMM: caption-word pretraining of its vision tower (vision.py)."""

    steps: int = 400
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 30
    weight_decay: float = 0.05
    pool_sharpness: float = 5.0  # log-mean-exp temperature: large = max, small = mean
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LMMTrainConfig:
    """The LMM's training run (lmm.py): data, stage 2's schedule, and stage 1's share."""

    seed_start: int = TRAIN_SEED_START
    scenes: int = 12000
    scene_set: str = DEFAULT_SCENE_SET  # data.TRAIN_SCENE_SETS
    steps: int = 3400
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    max_turns: int = 3  # turns per sequence (see `conversation`)
    describe_share: float = 0.7  # sequences that start with the description
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 300
    time_limit_min: float = 58.0  # stop early (and say so) rather than exceed the hour
    # stage 1: caption-word pretraining of the vision tower (0: none). The frozen tower's features
    # bound what the language model can name, so stage 1 gets about half of the hour
    vision_steps: int = 3400
    vision_lr: float = VisionPretrainConfig.lr  # stage 1's peak (a fine-tune may want less)
    freeze_vision: bool = True  # stage 2 keeps the tower frozen, as LLaVA-1.5 does with CLIP
    # fine-tuning: start both stages from this checkpoint directory's weights (same arch), e.g.
    # ros_ground/models/sim_lmm, instead of a random initialisation (None)
    init_from: str | None = None
    arch: LMMArch = field(default_factory=LMMArch)

    def __post_init__(self) -> None:
        check_run(self, ("scenes", "steps", "batch_size", "lr", "threads", "time_limit_min",
                         "vision_lr"), ("vision_steps", "warmup"))

    def to_dict(self) -> dict:
        return {**asdict(self), "arch": self.arch.to_dict()}


def sim_sam_config(img_size: int = 320) -> dict:
    """Architecture of the embedded SAM: 4-layer ViT-128 encoder at 320 px (a 20x20 embedding,
    80x80 low-res masks), 128-d prompts and a 2-layer two-way decoder."""
    from ros_ground.sam import CONFIG_FORMAT, PIXEL_MEAN, PIXEL_STD

    return {
        "format": CONFIG_FORMAT,
        "img_size": img_size,
        "patch_size": 16,
        "encoder_embed_dim": 128,
        "encoder_depth": 4,
        "encoder_num_heads": 4,
        "encoder_global_attn_indexes": [1, 3],
        "encoder_mlp_ratio": 4.0,
        "window_size": 10,
        "use_rel_pos": True,
        "prompt_embed_dim": 128,
        "mask_in_chans": 16,
        "decoder_depth": 2,
        "decoder_mlp_dim": 512,
        "decoder_num_heads": 4,
        "iou_head_depth": 3,
        "iou_head_hidden_dim": 128,
        "pixel_mean": list(PIXEL_MEAN),
        "pixel_std": list(PIXEL_STD),
    }


@dataclass
class SAMTrainConfig:
    """The SAM model's training run (sam.py): data, point prompts, loss and schedule."""

    seed_start: int = TRAIN_SEED_START
    scenes: int = 8000
    scene_set: str = DEFAULT_SCENE_SET  # data.TRAIN_SCENE_SETS
    steps: int = 1000
    batch_size: int = 4  # images per step
    prompts: int = 8  # point prompts per image
    object_share: float = 0.75  # of prompts on objects; the rest on the table / background
    lr: float = 8e-4
    min_lr_ratio: float = 0.05
    warmup: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    focal_weight: float = 20.0
    refine_steps: int = 400  # then this many steps with the full-resolution loss
    refine_lr: float = 3e-4
    seed: int = 0
    threads: int = 1
    checkpoint_every: int = 300
    time_limit_min: float = 58.0
    sam_config: dict = field(default_factory=sim_sam_config)
    # fine-tuning: start from this saved model's weights (a `save_sam` directory of the same
    # config, e.g. ros_ground/models/sim_sam) instead of a random initialisation (None)
    init_from: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        check_run(self, ("scenes", "steps", "batch_size", "prompts", "lr", "refine_lr", "threads",
                         "time_limit_min"), ("refine_steps", "warmup"))
