"""Train the sim model's region encoder (ros_ground.region_encoder), the LMM frozen.

`python -m ros_ground.train.region_encoder [--scenes N] [--steps N] [--out PATH]`. Mask and
label supervision, unlike the captions-only LMM: every simulated object's ground-truth mask is
the region of a "What is this?" prompt, asked as `GroundingEngine.generate_region` asks it (the
pooled token at "this", the other image tokens hidden), and the encoder's vector, added to the
token and the region's own image tokens, is trained so the frozen LMM answers with the object's
name ("A red mug."): next-token cross-entropy on the answer tokens, plus two auxiliary linear
heads (the object's category and colour) on the encoder's features, trained alone first. Only
the encoder's weights are kept. Training seeds 100000.. are the LMM's own, so the held-out
evaluation seeds 0..199 stay unseen.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from ros_ground.region_encoder import SIM_REGION_ENCODER_PATH, RegionEncoder, region_crop, save_encoder
from ros_ground.regions import RegionInputs, apply_region

TRAIN_SEED = 100000
HELD_OUT_SEED = 900000
PROMPTS = ("What is this?", "What is that?", "What is it?")
IGNORE = -100


@dataclass
class Sample:
    embeds: torch.Tensor  # float16 [L, D]: the prefill, focus applied, the token not yet placed
    region: RegionInputs  # its token and cells (rest None: the focus is in `embeds` already)
    position: int  # where the region's token goes
    image_positions: torch.Tensor  # the image tokens' sequence indices
    crop: np.ndarray  # float32 [4, S, S]: region_encoder.region_crop
    answer: list[int]  # the answer's token ids, end-of-sequence last
    labels: tuple[int, int]  # (category, colour) indices in label_names(), for the auxiliary heads


def label_names() -> tuple[list[str], list[str]]:
    """The auxiliary heads' classes: the simulator's categories, and its colours + "own"."""
    from ros_ground.sim.assets import CATEGORIES
    from ros_ground.sim.language import COLORS

    return list(CATEGORIES), [*COLORS, "own"]


def answer_text(obj) -> str:
    """The answer trained for an object: its name with an article, "A red mug."."""
    from ros_ground.sim.language import indefinite

    text = indefinite(obj.name)
    return text[:1].upper() + text[1:] + "."


def region_samples(lmm, seeds, rng: np.random.Generator, scene_set: str = "classic",
                   progress: bool | None = None) -> list[Sample]:
    """A Sample per ground-truth object of each training scene of `seeds`."""
    from ros_ground.errors import InputError
    from ros_ground.lmm.tokens import prefill_embeddings
    from ros_ground.regions import region_inputs, region_position
    from ros_ground.train.data import training_scene

    categories, colors = label_names()
    samples = []
    for seed in tqdm(seeds, desc="region samples", unit="scene", disable=None if progress is None
                     else not progress):
        scene = training_scene(seed, scene_set)
        prompt = str(rng.choice(PROMPTS))
        inputs, layout, geometry = lmm.prepare(scene.rgb, prompt)
        base, positions = prefill_embeddings(lmm, inputs), layout.positions.cpu()
        _, position = region_position(lmm, prompt, inputs["input_ids"])
        if position is None:
            raise RuntimeError(f"the prompt {prompt!r} has no token for the region")
        for obj in scene.objects:
            try:
                region = region_inputs(base[positions], geometry, obj.mask, "region")
            except InputError:  # the object lies outside the window the model sees
                continue
            answer = lmm.tokenizer(answer_text(obj), add_special_tokens=False)["input_ids"]
            samples.append(Sample(apply_region(base, region, None, positions).half(),
                                  replace(region, rest=None), position, positions,
                                  region_crop(scene.rgb, obj.mask),
                                  [*answer, lmm.tokenizer.eos_token_id],
                                  (categories.index(obj.category),
                                   colors.index(obj.color or "own"))))
    return samples


def _crops(batch: list[Sample]) -> torch.Tensor:
    return torch.as_tensor(np.stack([s.crop for s in batch]))


def aux_loss(encoder: RegionEncoder, heads: torch.nn.ModuleList, batch: list[Sample],
             features: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the category and colour heads on the encoder's hidden features."""
    features = encoder.hidden_features(_crops(batch)) if features is None else features
    labels = torch.tensor([s.labels for s in batch])
    return sum(torch.nn.functional.cross_entropy(head(features), labels[:, k])
               for k, head in enumerate(heads))


def batch_loss(lmm, encoder: RegionEncoder, batch: list[Sample],
               heads: torch.nn.ModuleList | None = None) -> tuple[torch.Tensor, float]:
    """(mean cross-entropy over the batch's answer tokens, plus the auxiliary heads' when given;
    share of answers all of whose tokens are the argmax). The samples share one prefill length."""
    length = batch[0].embeds.shape[0]
    longest = max(len(s.answer) for s in batch)
    embedding = lmm.model.get_input_embeddings()
    features = encoder.hidden_features(_crops(batch))
    offsets = encoder.out[-1](features)
    rows, labels = [], torch.full((len(batch), longest), IGNORE)
    for i, sample in enumerate(batch):
        prefill = apply_region(sample.embeds.float(), replace(sample.region, offset=offsets[i]),
                               sample.position, sample.image_positions)
        # teacher forcing: the answer's tokens but the last are inputs (padded with the last)
        ids = sample.answer[:-1] + [sample.answer[-1]] * (longest - len(sample.answer) + 1)
        rows.append(torch.cat([prefill, embedding(torch.tensor(ids)).detach()]))
        labels[i, :len(sample.answer)] = torch.tensor(sample.answer)
    hidden = lmm.model.model.language_model(inputs_embeds=torch.stack(rows)).last_hidden_state
    logits = lmm.model.lm_head(hidden[:, length - 1:length - 1 + longest])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             labels.reshape(-1), ignore_index=IGNORE)
    if heads is not None:
        loss = loss + aux_loss(encoder, heads, batch, features)
    right = ((logits.argmax(-1) == labels) | (labels == IGNORE)).all(1).float().mean()
    return loss, float(right)


def length_groups(samples: list[Sample]) -> list[list[int]]:
    """Indices of `samples` grouped by prefill length (one prompt each): a batch's rows stack."""
    groups: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(sample.embeds.shape[0], []).append(i)
    return list(groups.values())


def train_encoder(lmm, samples: list[Sample], steps: int = 500, batch_size: int = 32,
                  lr: float = 1e-3, seed: int = 0, pretrain_steps: int = 500,
                  progress: bool | None = None) -> RegionEncoder:
    """A RegionEncoder trained on `samples`, the LMM frozen: first `pretrain_steps` of the
    category and colour heads alone on its features (the crop tells the category; the answer
    loss through the frozen LMM teaches it slowly), then `steps` of the answer loss plus the
    heads'. AdamW, cosine schedule; batches keep to one prefill length (one prompt)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    for p in lmm.model.parameters():
        p.requires_grad_(False)
    encoder = RegionEncoder(int(samples[0].region.token.shape[0]))
    width = encoder.out[-1].in_features
    heads = torch.nn.ModuleList(torch.nn.Linear(width, len(names)) for names in label_names())
    parameters = [*encoder.parameters(), *heads.parameters()]
    encoder.train()
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
    for _ in tqdm(range(pretrain_steps), desc="region encoder heads", unit="step",
                  disable=None if progress is None else not progress):
        batch = [samples[i] for i in rng.choice(len(samples), min(64, len(samples)), replace=False)]
        loss = aux_loss(encoder, heads, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1), eta_min=lr * 0.05)
    groups = length_groups(samples)
    bar = tqdm(range(steps), desc="region encoder", unit="step",
               disable=None if progress is None else not progress)
    for step in bar:
        group = groups[int(rng.integers(len(groups)))]
        batch = [samples[i] for i in rng.choice(group, min(batch_size, len(group)), replace=False)]
        loss, right = batch_loss(lmm, encoder, batch, heads)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", right=f"{right:.2f}")
    return encoder.eval()


def held_out_accuracy(lmm, encoder: RegionEncoder, samples: list[Sample]) -> float:
    """Share of held-out samples whose whole answer is the teacher-forced argmax."""
    batches = [[samples[i] for i in group[k:k + 64]]
               for group in length_groups(samples) for k in range(0, len(group), 64)]
    with torch.no_grad():
        right = [batch_loss(lmm, encoder, batch)[1] * len(batch) for batch in batches]
    return sum(right) / max(len(samples), 1)


def main(argv=None) -> int:
    from ros_ground.lmm import SIM_LMM_DIR, load_lmm
    from ros_ground.lmm.fingerprint import lmm_sha256
    from ros_ground.train.data import TRAIN_SCENE_SETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=800,
                        help="training scenes (seeds from 100000) the regions come from "
                             "(default %(default)s)")
    parser.add_argument("--steps", type=int, default=500,
                        help="optimiser steps on the answer loss through the frozen LMM (plus the "
                             "heads'), after --pretrain-steps (default %(default)s)")
    parser.add_argument("--pretrain-steps", type=int, default=500,
                        help="steps of the category and colour heads alone, first")
    parser.add_argument("--out", default=str(SIM_REGION_ENCODER_PATH),
                        help="where the encoder goes (a torch file; default: the sim model's)")
    parser.add_argument("--scene-set", choices=TRAIN_SCENE_SETS, default="classic",
                        help="the scenes it trains on (default %(default)s, as the shipped "
                             "encoder was, on the shipped LMM's tokens)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads (default %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lmm = load_lmm("sim", device="cpu")
    fingerprint = lmm_sha256(SIM_LMM_DIR)  # of the weights just loaded
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    train = region_samples(lmm, range(TRAIN_SEED, TRAIN_SEED + args.scenes), rng, args.scene_set,
                           progress=True)
    held = region_samples(lmm, range(HELD_OUT_SEED, HELD_OUT_SEED + 100), rng, args.scene_set)
    untrained = held_out_accuracy(lmm, RegionEncoder(int(train[0].region.token.shape[0])), held)
    encoder = train_encoder(lmm, train, steps=args.steps, pretrain_steps=args.pretrain_steps,
                            progress=True)
    trained = held_out_accuracy(lmm, encoder, held)
    save_encoder(encoder, args.out, lmm_sha256=fingerprint)
    print(f"{len(train)} regions from {args.scenes} scenes, {args.steps} steps; held-out answers "
          f"right (teacher-forced, {len(held)} regions): encoder {trained:.3f}, untrained "
          f"{untrained:.3f}; {time.perf_counter() - t0:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
