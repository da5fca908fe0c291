"""The sim model's region encoder: the crop it reads, its place in the prefill, its training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ros_ground.lmm.tokens import capture_image_embeddings, image_features
from ros_ground.region_encoder import RegionEncoder, load_encoder, region_crop, save_encoder
from ros_ground.regions import Region, region_context


def test_the_crop_is_the_masks_box_squared_with_its_margin():
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    mask = np.zeros((10, 12), bool)
    mask[2:4, 4:8] = True  # 2 rows x 4 columns: side ceil(1.5 * 4) = 6, centre (3, 6)
    crop = region_crop(image, mask, size=6)
    assert crop.shape == (4, 6, 6) and crop.dtype == np.float32
    np.testing.assert_allclose(crop[:3], image[0:6, 3:9].transpose(2, 0, 1) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(crop[3], mask[0:6, 3:9].astype(np.float32))


def test_the_crop_is_black_and_unmasked_beyond_the_image():
    image = np.full((10, 10, 3), 200, np.uint8)
    mask = np.zeros((10, 10), bool)
    mask[0:4, 0:4] = True  # side 6 centred on (2, 2): rows and columns -1..4
    crop = region_crop(image, mask, size=6)
    assert (crop[:, 0, :] == 0).all() and (crop[:, :, 0] == 0).all()
    np.testing.assert_allclose(crop[:3, 1:, 1:], 200 / 255.0, atol=1e-6)
    np.testing.assert_array_equal(crop[3, 1:5, 1:5], 1.0)


def test_the_crop_refuses_an_empty_or_misshapen_mask():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="empty"):
        region_crop(image, np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="shape"):
        region_crop(image, np.ones((5, 10), bool))


def test_an_untrained_encoder_adds_nothing_and_a_saved_one_loads_the_same(tmp_path):
    torch.manual_seed(0)
    encoder = RegionEncoder(16)
    image = np.random.RandomState(0).randint(0, 255, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), bool)
    mask[5:15, 10:20] = True
    np.testing.assert_array_equal(encoder.encode(image, mask).numpy(), np.zeros(16, np.float32))
    with torch.no_grad():
        encoder.out[-1].bias.fill_(0.5)
    save_encoder(encoder, tmp_path / "encoder.pt")
    loaded = load_encoder(tmp_path / "encoder.pt")
    np.testing.assert_array_equal(loaded.encode(image, mask).numpy(), np.full(16, 0.5, np.float32))
    assert load_encoder(tmp_path / "absent.pt") is None


class _Offset:
    def __init__(self, vector):
        self.vector = vector

    def encode(self, image, mask):
        return self.vector


def test_the_encoders_vector_is_added_to_the_token_and_the_regions_own_image_tokens():
    from ros_ground.lmm import load_lmm

    lmm = load_lmm("tiny", device="cpu")
    image = np.random.RandomState(1).randint(0, 255, (64, 64, 3), dtype=np.uint8)
    features, geometry = image_features(lmm, image)
    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True  # the top-left 4x4 of the 8x8 cells
    prompt = "what is this"
    inputs, layout, _ = lmm.prepare(image, prompt)
    own = lmm.prompt_tokens(prompt, inputs["input_ids"])
    offset = torch.linspace(-1, 1, features.shape[1])
    seen = {}
    for name, encoder in (("pooled", None), ("encoder", _Offset(offset))):
        with region_context(lmm, image, prompt, features, geometry, mask, "region", encoder) as i:
            with capture_image_embeddings(lmm) as box:
                lmm.generate(image, prompt, max_new_tokens=1, prompt_maps=False)
        seen[name] = box["embeds"]
    cells = np.zeros((8, 8), bool)
    cells[:4, :4] = True
    rows = layout.positions.numpy()
    changed = [own.positions[i], *rows[cells.ravel()]]
    np.testing.assert_allclose(seen["encoder"][changed].numpy(),
                               (seen["pooled"][changed] + offset).numpy(), rtol=1e-5, atol=1e-5)
    unchanged = [p for p in range(len(seen["pooled"])) if p not in set(changed)]
    np.testing.assert_array_equal(seen["encoder"][unchanged].numpy(),
                                  seen["pooled"][unchanged].numpy())


def test_region_token_encoder_is_refused_for_a_model_without_one():
    from ros_ground.engine import EngineConfig, build_engine
    from ros_ground.errors import InputError

    engine = build_engine("tiny", "tiny", device="cpu")
    image = np.random.RandomState(2).randint(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[10:30, 10:30] = True
    with pytest.raises(InputError, match="region encoder"):
        engine.generate_region(image, "what is this", Region(mask, "mask"),
                               config=EngineConfig(region_token="encoder"))
    assert engine.generate_region(image, "what is this", Region(mask, "mask")).token_ids  # answered


def test_training_lowers_the_answer_loss_with_the_lmm_frozen():
    from ros_ground.lmm import load_lmm
    from ros_ground.train.region_encoder import TRAIN_SEED, batch_loss, region_samples, train_encoder

    lmm = load_lmm("sim", device="cpu")
    before = [p.detach().clone() for p in lmm.model.parameters()]
    samples = region_samples(lmm, range(TRAIN_SEED, TRAIN_SEED + 4), np.random.default_rng(0),
                             progress=False)
    assert samples and all(s.answer[-1] == lmm.tokenizer.eos_token_id for s in samples)
    group = [s for s in samples if s.embeds.shape[0] == samples[0].embeds.shape[0]][:8]
    with torch.no_grad():
        untrained, _ = batch_loss(lmm, RegionEncoder(int(samples[0].region.token.shape[0])), group)
    encoder = train_encoder(lmm, samples, steps=40, batch_size=8, pretrain_steps=20,
                            progress=False)
    with torch.no_grad():
        trained, _ = batch_loss(lmm, encoder, group)
    assert float(trained) < 0.5 * float(untrained)
    assert all(torch.equal(a, b) for a, b in zip(before, lmm.model.parameters()))
