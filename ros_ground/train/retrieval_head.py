"""Train the sim model's retrieval head (ros_ground.retrieval) on (phrase, entity) pairs.

`python -m ros_ground.train.retrieval_head [--scenes N] [--out PATH]`. Mask supervision, unlike
the captions-only LMM: each simulated object's entity token is pooled from its ground-truth
mask, and the head learns which one its name (as an answer's noun chunk says it: "a red mug",
"the mug") retrieves among the scene's entities. Training seeds 100000.. are the LMM's own, so
the held-out evaluation seeds 0..199 stay unseen. `--scene-set` should be the LMM's own training
set (train.data.TRAIN_SCENE_SETS), so that the head sees the cameras the LMM saw, and
`--token-window` the engine's `entity_token_window`, so that it learns the tokens it will score.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ros_ground.retrieval import SIM_HEAD_PATH, phrase_vectors, token_scores, unit

TRAIN_SEED = 100000


def train_head(pairs: Sequence[tuple[np.ndarray, np.ndarray, int]], epochs: int = 60,
               lr: float = 1e-3, temperature: float = 0.1, seed: int = 0) -> np.ndarray:
    """A retrieval head [Dv, Dt] from (phrase vector [Dt], scene's entity tokens [N, Dv],
    index of the entity the phrase names): full-batch Adam on the cross-entropy of the
    phrase's cosines with its scene's entities over `temperature`. Mask supervision: the
    entity tokens are pooled from ground-truth masks. `seed` seeds a forked torch RNG, so the
    caller's random state is left as it was."""
    phrases = [torch.from_numpy(unit(p)) for p, _, _ in pairs]
    tokens = [torch.from_numpy(unit(t)) for _, t, _ in pairs]
    targets = torch.tensor([i for _, _, i in pairs])
    dv, dt = tokens[0].shape[1], phrases[0].shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        weight = torch.eye(dv, dt).requires_grad_(True) if dv == dt else \
            (torch.randn(dv, dt) / dt ** 0.5).requires_grad_(True)
    opt = torch.optim.Adam([weight], lr=lr)
    for _ in range(epochs):
        loss = 0.0
        for k, (p, t) in enumerate(zip(phrases, tokens)):
            q = torch.nn.functional.normalize(weight @ p, dim=0)
            loss = loss + torch.nn.functional.cross_entropy(
                (t @ q / temperature)[None], targets[k:k + 1])
        opt.zero_grad()
        (loss / len(pairs)).backward()
        opt.step()
    return weight.detach().numpy().astype(np.float32)


def scene_pairs(lmm, seeds, rng: np.random.Generator, scene_set: str = "classic",
                token_window: float = 0.0) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(phrase vector, the scene's GT-mask entity tokens, index of the named one) per object;
    tokens from a window `token_window` box sides tall around each object, 0: the frame."""
    from ros_ground.entity_scoring import EntityScorer
    from ros_ground.train.data import training_scene

    embedding = lmm.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    scorer = EntityScorer(lmm)  # the engine's own entity tokens
    pairs = []
    for seed in seeds:
        scene = training_scene(seed, scene_set)
        tokens = scorer.entity_tokens(scene.rgb, [o.mask for o in scene.objects],
                                      window=token_window)
        for i, obj in enumerate(scene.objects):
            text = str(rng.choice([obj.name, f"a {obj.name}", f"the {obj.name}",
                                   f"the {obj.category}"]))
            ids = lmm.tokenizer(text, add_special_tokens=False)["input_ids"]
            pairs.append((phrase_vectors(embedding, [ids])[0], tokens, i))
    return pairs


def _checked(setting):
    """argparse type: a float that `setting` allows, else its reason as the usage error."""
    def convert(text: str) -> float:
        try:
            return setting.check(float(text))
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return convert


def main(argv=None) -> int:
    from ros_ground import settings
    from ros_ground.lmm import SIM_LMM_DIR, load_lmm
    from ros_ground.lmm.fingerprint import KEY, lmm_sha256
    from ros_ground.train.data import DEFAULT_SCENE_SET, TRAIN_SCENE_SETS

    window = settings.by_name(settings.GROUNDING)["entity_token_window"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=300,
                        help="training scenes (seeds from 100000) whose phrases and ground-truth "
                             "entities give the pairs (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=40,
                        help="full-batch Adam epochs over the pairs (default %(default)s)")
    parser.add_argument("--out", default=str(SIM_HEAD_PATH),
                        help="where the head goes (.npy; its record beside it as .json; default: "
                             "the sim model's)")
    parser.add_argument("--scene-set", choices=TRAIN_SCENE_SETS, default=DEFAULT_SCENE_SET,
                        help="the LMM's training scene set (default %(default)s)")
    parser.add_argument("--token-window", type=_checked(window), default=window.default,
                        help="the entity_token_window the head will score (default %(default)s)")
    args = parser.parse_args(argv)
    lmm = load_lmm("sim", device="cpu")
    fingerprint = lmm_sha256(SIM_LMM_DIR)  # of the weights just loaded
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    train = scene_pairs(lmm, range(TRAIN_SEED, TRAIN_SEED + args.scenes), rng, args.scene_set,
                        args.token_window)
    held = scene_pairs(lmm, range(900000, 900030), rng, args.scene_set, args.token_window)
    head = train_head(train, epochs=args.epochs)
    hits = [int(np.argmax(token_scores(p[None], t, head))) == i for p, t, i in held]
    plain = [int(np.argmax(token_scores(p[None], t))) == i for p, t, i in held]
    out = Path(args.out)
    out = out if out.suffix == ".npy" else out.with_name(out.name + ".npy")  # as np.save names it
    np.save(out, head)
    # read by the engine, which warns when its entity_token_window is not the one learnt here
    out.with_suffix(".json").write_text(json.dumps({
        "entity_token_window": args.token_window, "scene_set": args.scene_set,
        "scenes": args.scenes, "epochs": args.epochs,
        "held_out_accuracy": round(float(np.mean(hits)), 3),
        # the engine uses the head only with these LMM weights (lmm.fingerprint)
        KEY: fingerprint}, indent=1) + "\n")
    print(f"{len(train)} pairs from {args.scenes} scenes; held-out retrieval accuracy on GT "
          f"masks: head {np.mean(hits):.3f}, no head {np.mean(plain):.3f}; "
          f"{time.perf_counter() - t0:.0f} s; wrote {out} and its record {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
