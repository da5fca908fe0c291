"""LMM adapter: loading, prompt hygiene, per-token maps, streaming and cancel."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from ros_ground import lmm as lmm_module
from ros_ground.lmm import BadPromptError, Generation, ModelLoadError, load_lmm
from ros_ground.lmm import layout as layout_module
from ros_ground.lmm import loading as loading_module
from ros_ground.lmm.tiny import build_tiny_lmm, save_tiny_lmm

PROMPT = "Describe the image in detail."


@pytest.fixture(scope="module")
def tiny():
    # float32 on the CPU even where CUDA exists: these tests compare maps to 1e-6, which holds
    # in float32 only (in bf16 the same weights give maps 0.02 apart through other kernels)
    return load_lmm("tiny", device="cpu")


@pytest.fixture(scope="module")
def image():
    return np.random.RandomState(0).randint(0, 255, (48, 80, 3), dtype=np.uint8)


def _image_token_count(adapter, image, prompt):
    inputs, layout, _ = adapter.prepare(image, prompt)
    return int((inputs["input_ids"][0] == adapter.image_token_id).sum()), layout


def test_generate_returns_one_map_per_token(tiny, image):
    streamed = []
    gen = tiny.generate(image, PROMPT, max_new_tokens=10,
                        on_token=lambda tid, text, partial: streamed.append((tid, text, partial())))
    assert isinstance(gen, Generation) and not gen.canceled
    assert 1 <= len(gen.token_ids) <= 10
    assert gen.image_maps.shape == (len(gen.token_ids), 8, 8)
    assert gen.image_maps.dtype == np.float32 and np.all(gen.image_maps >= 0)
    assert gen.text == tiny.decode(gen.token_ids)
    assert [t for t, _, _ in streamed] == gen.token_ids and streamed[-1][1] == gen.text
    for i, (_, text, partial) in enumerate(streamed):  # partial maps are the final maps' prefix
        assert partial.text == text and len(partial.token_ids) == i + 1
        np.testing.assert_allclose(partial.image_maps, gen.image_maps[: i + 1], atol=1e-6)
    assert gen.geometry.fit == "pad" and (gen.geometry.height, gen.geometry.width) == (48, 80)
    assert {"vision_prefill", "decode"} <= set(gen.timing_ms)
    assert gen.text.strip()  # the word-level tiny model emits words


def test_max_new_tokens_is_capped_at_the_models_context(tiny, image, monkeypatch):
    from ros_ground.errors import InputError
    from ros_ground.lmm.layout import answer_room

    # 2e9 tokens asked a static cache of 2 TB from the compiled decoder
    config = tiny.model.config
    assert config.text_config.max_position_embeddings == 512
    assert answer_room(config, 100, 2_000_000_000) == 412 and answer_room(config, 100, 5) == 5
    with pytest.raises(InputError, match="the prompt takes 512 tokens"):
        answer_room(config, 512, 1)
    with pytest.raises(ValueError, match=">= 1"):
        answer_room(config, 10, 0)
    monkeypatch.setattr(config.text_config, "max_position_embeddings", 80)
    inputs, _, _ = tiny.prepare(image, PROMPT)
    room = 80 - int(inputs["input_ids"].shape[1])
    gen = tiny.generate(image, PROMPT, max_new_tokens=2_000_000_000)
    assert 1 <= len(gen.token_ids) <= room


@pytest.mark.parametrize("view", ["hflip", "vflip", "rot180"])
def test_view_maps_read_the_flipped_image_and_flip_back(tiny, image, view):
    from ros_ground.views import flip_image, unflip_maps

    gen = tiny.generate(image, PROMPT, max_new_tokens=8)
    # read on flip(flip(image)) = image, with the answer generated there: the decode loop's
    # own maps, flipped back
    maps = tiny.view_maps(flip_image(image, view), PROMPT, gen.token_ids, [view])
    assert maps.shape == (1, *gen.image_maps.shape) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[0], unflip_maps(gen.image_maps, view), atol=1e-5)
    other = tiny.view_maps(image, PROMPT, gen.token_ids, [view])
    assert not np.allclose(other[0], gen.image_maps, atol=1e-3)
    with pytest.raises(ValueError, match="token ids"):
        tiny.view_maps(image, PROMPT, [], [view])


def test_view_maps_of_several_views_are_one_batch_each_as_alone(tiny, image):
    gen = tiny.generate(image, PROMPT, max_new_tokens=8)
    views = ["hflip", "identity", "rot180"]
    together = tiny.view_maps(image, PROMPT, gen.token_ids, views)
    assert together.shape == (3, *gen.image_maps.shape)
    for view, maps in zip(views, together):
        alone = tiny.view_maps(image, PROMPT, gen.token_ids, [view])[0]
        np.testing.assert_allclose(maps, alone, atol=1e-5)
    np.testing.assert_allclose(together[1], gen.image_maps, atol=1e-5)
    with pytest.raises(ValueError, match="at least one view"):
        tiny.view_maps(image, PROMPT, gen.token_ids, [])


def test_view_maps_continue_a_prefill_of_the_prompt_exactly(tiny, image):
    """`prefill_views` (what the engine runs while the answer is generated) + `view_maps` from
    it give the maps of the one teacher-forced pass, and the prefill serves one call."""
    gen = tiny.generate(image, PROMPT, max_new_tokens=12)
    views = ["hflip", "vflip", "rot180"]
    prefill = tiny.prefill_views(image, PROMPT, views)
    prompt_len = tiny.prepare(image, PROMPT)[0]["input_ids"].shape[1]
    assert prefill.cache.get_seq_length() == prompt_len - 1
    continued = tiny.view_maps(image, PROMPT, gen.token_ids, views, prefill)
    np.testing.assert_allclose(continued, tiny.view_maps(image, PROMPT, gen.token_ids, views),
                               atol=1e-6)
    with pytest.raises(ValueError, match="one view_maps call"):
        tiny.view_maps(image, PROMPT, gen.token_ids, views, prefill)
    for prompt, wanted, frame in [("Describe it.", views, image), (PROMPT, views[:2], image),
                                  (PROMPT, views, image[:, :60])]:
        with pytest.raises(ValueError, match="another prompt, image or view set"):
            tiny.view_maps(frame, prompt, gen.token_ids, wanted,
                           tiny.prefill_views(image, PROMPT, views))
    one = tiny.view_maps(image, PROMPT, gen.token_ids[:1], ["identity"],
                         tiny.prefill_views(image, PROMPT, ["identity"]))
    np.testing.assert_allclose(one[0], gen.image_maps[:1], atol=1e-5)  # the prompt's last query


def test_same_seed_same_output(tiny, image):
    a = tiny.generate(image, PROMPT, max_new_tokens=6)
    b = load_lmm("tiny", device="cpu").generate(image, PROMPT, max_new_tokens=6)
    assert a.token_ids == b.token_ids
    np.testing.assert_array_equal(a.image_maps, b.image_maps)


def test_load_from_saved_directory_matches_in_process(tiny, image, tmp_path):
    directory = save_tiny_lmm(tmp_path / "tiny_ckpt")
    loaded = load_lmm(str(directory), device="cpu")
    assert loaded.model.config.text_config._attn_implementation == "ros_ground_capture"
    a = tiny.generate(image, PROMPT, max_new_tokens=8)
    b = loaded.generate(image, PROMPT, max_new_tokens=8)
    assert a.token_ids == b.token_ids and a.text == b.text
    # same weights; float32 kernels may reduce in another order in a reloaded model (~1e-6)
    np.testing.assert_allclose(a.image_maps, b.image_maps, atol=1e-5)


def test_missing_directory_raises_clear_error(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ModelLoadError, match="no such directory") as info:
        load_lmm(str(missing))
    assert str(missing) in str(info.value) and isinstance(info.value, ValueError)


def pickled_lmm(directory):
    """A tiny LLaVA checkpoint whose weights are a pickle that builds an object (a path, not
    code: what torch.load(weights_only=True) refuses is the same) in pytorch_model.bin."""
    from pathlib import PurePosixPath

    directory = save_tiny_lmm(directory)
    (directory / "model.safetensors").unlink(missing_ok=True)  # transformers 5 writes it always
    torch.save({"lm_head.weight": torch.zeros(1), "note": PurePosixPath("x")},
               directory / "pytorch_model.bin")
    return directory


def test_pickled_weights_are_refused_in_one_line_naming_the_directory(tmp_path):
    # trial132 D5: torch's UnpicklingError came out whole (a 40-line traceback from the CLI),
    # advising to re-run torch.load with weights_only=False, and named no file
    directory = pickled_lmm(tmp_path / "evil")
    with pytest.raises(ModelLoadError) as info:
        load_lmm(str(directory), device="cpu")
    message = str(info.value)
    assert "\n" not in message and f"local directory {str(directory)!r}" in message, message
    assert "pickled weights are refused, convert them to safetensors" in message
    assert "GLOBAL pathlib.PurePosixPath" in message and "weights_only` set to `False`" not in message


def test_a_tokenizer_that_disagrees_with_the_config_fails_the_load(tmp_path):
    """Else the load passes and every request fails with a token-count error blaming the prompt."""
    import json

    directory = save_tiny_lmm(tmp_path / "tiny_ckpt")
    config = json.loads((directory / "config.json").read_text())
    config["image_token_index"] -= 1  # the tokenizer's "<image>" stays where it was
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="is 3, but the tokenizer gives '<image>' the id 4"):
        load_lmm(str(directory), device="cpu")


def test_a_tokenizer_without_the_image_token_is_named():
    class Tokenizer:  # a Llama tokenizer saved without the processor's added "<image>"
        unk_token_id = 0

        def convert_tokens_to_ids(self, token):
            return {"<s>": 1}.get(token, self.unk_token_id)

    class Config:
        image_token_id = 32000

    with pytest.raises(ModelLoadError, match="is 32000, but the tokenizer has no '<image>' token"):
        layout_module.find_image_token_id(Config(), Tokenizer(), "<image>")
    Config.image_token_id = None  # nothing to go by
    with pytest.raises(ModelLoadError, match="cannot find the image token id"):
        layout_module.find_image_token_id(Config(), Tokenizer(), "<image>")


def _spy_loads(monkeypatch) -> list:
    calls = []
    real = loading_module._from_pretrained

    def spy(source, local_only, *args, **kwargs):
        calls.append(local_only)
        return real(source, local_only, *args, **kwargs)

    monkeypatch.setattr(loading_module, "_from_pretrained", spy)
    return calls


@pytest.mark.parametrize("offline", ["1", None])
def test_hub_id_is_cache_only_by_default_whatever_the_environment(monkeypatch, tmp_path, offline):
    if offline is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    calls = _spy_loads(monkeypatch)
    with pytest.raises(ModelLoadError) as info:
        load_lmm("ros-ground-test/no-such-model", device="cpu")
    assert calls == [True]  # never tried the Hub
    message = str(info.value)
    assert "ros-ground-test/no-such-model" in message and "allow_download" in message
    assert str(tmp_path / "hub" / "models--ros-ground-test--no-such-model") in message
    # transformers says it could not connect, of a cache-only load that contacted nothing
    assert "couldn't connect" not in message, message


_NETWORK: list | None = None  # while a list, the audit hook below records network calls into it


def _audit_network(event, args):
    if _NETWORK is not None and event in ("socket.getaddrinfo", "socket.connect"):
        _NETWORK.append((event, args[:2]))


def test_a_cached_hub_id_loads_without_any_network_call(monkeypatch, tmp_path):
    """Even with HF_HUB_OFFLINE unset: local_files_only alone still lets the hub fetch its
    agent-harness list while building headers."""
    import sys

    global _NETWORK
    from huggingface_hub import constants
    from huggingface_hub.utils import _detect_agent

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"))
    monkeypatch.setattr(_detect_agent, "_registry", None)  # not yet fetched in this process
    repo = loading_module.hub_cache_dir("ros-ground-test/tiny")
    commit = "a" * 40
    save_tiny_lmm(repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    sys.addaudithook(_audit_network)
    _NETWORK = []
    try:
        adapter = load_lmm("ros-ground-test/tiny", device="cpu")
        seen = list(_NETWORK)
    finally:
        _NETWORK = None
    assert adapter.model is not None
    assert seen == []
    assert constants.HF_HUB_OFFLINE is False  # the switch is held for the load only


def test_overlapping_offline_holds_keep_it_on_until_the_last_ends(monkeypatch):
    """Two cache-only loads at once in threads: the first to end must not turn the switch off
    under the second, and the last restores what it was."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    first, second = loading_module.hub_offline_held(), loading_module.hub_offline_held()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert constants.HF_HUB_OFFLINE is True
    second.__exit__(None, None, None)
    assert constants.HF_HUB_OFFLINE is False


def test_a_hub_id_is_in_the_cache_when_mains_snapshot_holds_its_config(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = loading_module.hub_cache_dir("owner/model")
    assert repo == tmp_path / "hub" / "models--owner--model"
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        loading_module.check_lmm_spec("owner/model", allow_download=False)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)  # a download that never finished
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        loading_module.check_lmm_spec("owner/model", allow_download=False)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    loading_module.check_lmm_spec("owner/model", allow_download=False)


@pytest.mark.parametrize("value,offline", [("1", True), ("yes", True), (" ON ", True),
                                           ("0", False), ("", False), ("off", False)])
def test_hf_hub_offline_is_read_when_loading_with_huggingface_hubs_true_values(
        monkeypatch, value, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert loading_module.hub_offline() is offline


def test_trust_remote_code_on_is_warned_of(monkeypatch):
    # helper-131: --trust-remote-code, or a params file's, let a repository run its code silently.
    # The logger itself is watched: once `launch` is imported (test_launch_*), records of
    # loggers made before no longer reach caplog's root handler
    said = []
    monkeypatch.setattr(loading_module.LOG, "warning", lambda text, *a: said.append(text % a))
    load_lmm("sim", device="cpu", trust_remote_code=True)
    assert said and said[-1].startswith("trust_remote_code is on: 'sim' may run its repository's own")
    said.clear()
    load_lmm("sim", device="cpu")
    assert not any("trust_remote_code" in text for text in said)


def test_allow_download_still_respects_hf_hub_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = _spy_loads(monkeypatch)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_lmm("ros-ground-test/no-such-model", device="cpu", allow_download=True)
    assert calls == [True]


def test_allow_download_tries_the_hub_after_the_cache(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def refuse(source, local_only, *args, **kwargs):  # no network here: record the attempt only
        calls.append(local_only)
        raise OSError("not reachable")

    monkeypatch.setattr(loading_module, "_from_pretrained", refuse)
    with pytest.raises(ModelLoadError, match="Hub download"):
        load_lmm("ros-ground-test/no-such-model", device="cpu", allow_download=True)
    assert calls == [True, False]


def test_a_load_error_keeps_the_loaders_whole_explanation(tmp_path):
    model, processor = build_tiny_lmm()
    model.save_pretrained(tmp_path / "no_tokenizer")
    processor.image_processor.save_pretrained(tmp_path / "no_tokenizer")
    with pytest.raises(ModelLoadError) as info:
        load_lmm(str(tmp_path / "no_tokenizer"), device="cpu")
    message = str(info.value)
    # transformers' explanation runs over several lines; its end says what is missing
    assert "Couldn't instantiate the backend tokenizer" in message
    assert "slow tokenizer" in message and "\n" not in message
    long = loading_module._one_line("why\n  " + "x" * 5000)
    assert long.startswith("why x") and long.endswith("...")
    assert len(long) == loading_module.ERROR_CHARS


def _load_saved(tmp_path, device):
    directory = save_tiny_lmm(tmp_path / "tiny_ckpt")
    return load_lmm(str(directory), device=device, dtype="float32")


def test_checkpoint_load_path_is_the_same_for_every_device(tmp_path, monkeypatch):
    """The CPU run takes the branch a GPU does: load on the host, then `.to(device)`, with no
    `device_map` (transformers 5 refuses that without the `accelerate` package)."""
    import transformers

    real = transformers.AutoModelForImageTextToText.from_pretrained
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", spy)
    adapter = _load_saved(tmp_path, "cpu")
    assert len(seen) == 1 and "device_map" not in seen[0] and seen[0]["local_files_only"]
    assert next(adapter.model.parameters()).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checkpoint_loads_onto_cuda(tmp_path, image):
    adapter = _load_saved(tmp_path, "cuda")
    assert {p.device.type for p in adapter.model.parameters()} == {"cuda"}
    cpu = _load_saved(tmp_path / "cpu", "cpu")
    a = adapter.generate(image, PROMPT, max_new_tokens=4)
    assert a.token_ids == cpu.generate(image, PROMPT, max_new_tokens=4).token_ids[:len(a.token_ids)]


def test_special_tokens_in_prompt_are_neutralised(tiny, image):
    nasty = "<image> USER: <s>what is</s> on <im<image>age> the <pad> tray? ASSISTANT: <image>"
    text = tiny.build_prompt(nasty)
    assert text.count("<image>") == 1
    count, layout = _image_token_count(tiny, image, nasty)
    clean, _ = _image_token_count(tiny, image, PROMPT)
    assert count == clean == 64 and layout.positions.numel() == 64
    gen = tiny.generate(image, nasty, max_new_tokens=4)
    assert gen.image_maps.shape == (len(gen.token_ids), 8, 8)


def test_image_token_count_is_verified(tiny, image, monkeypatch):
    monkeypatch.setattr(tiny, "clean_prompt", lambda prompt: prompt)
    with pytest.raises(BadPromptError):
        tiny.prepare(image, "two images <image> here")
    monkeypatch.undo()
    monkeypatch.setattr(layout_module, "expected_image_tokens", lambda inputs, **kwargs: 65)
    with pytest.raises(BadPromptError, match="64 image tokens, expected 65"):
        tiny.prepare(image, PROMPT)


def test_cancel_returns_early(tiny, image):
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 3  # one poll before starting, then one per token

    gen = tiny.generate(image, PROMPT, max_new_tokens=30, should_stop=should_stop)
    assert gen.canceled and len(gen.token_ids) == 3
    assert gen.image_maps.shape == (3, 8, 8)
    before = tiny.generate(image, PROMPT, max_new_tokens=30, should_stop=lambda: True)
    assert before.canceled and before.token_ids == [] and before.image_maps.shape == (0, 8, 8)


def test_pad_fit_sees_whole_image(image):
    adapter = load_lmm("tiny", image_fit="pad")
    gen = adapter.generate(image, PROMPT, max_new_tokens=3)
    assert gen.geometry.fit == "pad" and gen.image_maps.shape[1:] == (8, 8)


def test_device_and_dtype_resolution():
    cpu = torch.device("cpu")
    assert lmm_module.resolve_dtype("auto", cpu) == torch.float32
    assert lmm_module.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(ValueError):
        lmm_module.resolve_dtype("int8", cpu)
    assert lmm_module.resolve_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert lmm_module.resolve_device("auto") == cpu


def test_tiny_build_is_deterministic():
    m1, _ = build_tiny_lmm(3)
    m2, _ = build_tiny_lmm(3)
    m3, _ = build_tiny_lmm(4)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def _eager_maps(model, inputs, positions, steps):
    """Reference: eager attention's last query row per generated step, mean over heads+layers."""
    model.set_attn_implementation({"text_config": "eager"})
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=steps, do_sample=False,
                             output_attentions=True, return_dict_in_generate=True,
                             eos_token_id=2, pad_token_id=3)
    maps = torch.stack([torch.stack(step)[:, 0, :, -1, :][..., positions].float().mean((0, 1))
                        for step in out.attentions])
    return out.sequences[0, inputs["input_ids"].shape[1]:].tolist(), maps.cpu().numpy()


def _check_against_eager(adapter, image, prompt):
    inputs, layout, geometry = adapter.prepare(image, prompt)
    gen = adapter.generate(image, prompt, max_new_tokens=6)
    # the teacher-forced pass of an attention view sees what the decode loop saw
    forced = adapter.view_maps(image, prompt, gen.token_ids, ["identity", "hflip"])
    np.testing.assert_allclose(forced[0], gen.image_maps, atol=1e-5)  # a batch row as alone
    prefill = adapter.prefill_views(image, prompt, ["identity", "hflip"])
    if prefill is not None:  # the same pass, continued from the prompt's cache
        continued = adapter.view_maps(image, prompt, gen.token_ids, ["identity", "hflip"], prefill)
        np.testing.assert_allclose(continued, forced, atol=1e-6)
    tokens, maps = _eager_maps(adapter.model, inputs, layout.positions, len(gen.token_ids))
    assert tokens == gen.token_ids
    np.testing.assert_allclose(gen.image_maps.reshape(len(tokens), -1), maps, atol=1e-5)
    return gen


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype,atol", [("float32", 1e-5), ("float16", 5e-3), ("bfloat16", 4e-2)])
def test_capture_matches_eager_on_cuda(image, dtype, atol):
    """The capture agrees with eager attention on the kernels a robot runs. In half precision
    eager's logits are rounded to the dtype and the two runs' hidden states drift apart through
    different kernels, so the bound is the dtype's (measured on an H200: 2.3e-3 fp16, 2.3e-2
    bf16, maps up to 0.24); a wrong head, mask or layer sum is off by the map's own size.
    Compared over the steps where both generated the same tokens."""
    adapter = load_lmm("tiny", device="cuda", dtype=dtype)
    inputs, layout, _ = adapter.prepare(image, PROMPT)
    gen = adapter.generate(image, PROMPT, max_new_tokens=6)
    tokens, maps = _eager_maps(adapter.model, inputs, layout.positions.to("cuda"),
                               len(gen.token_ids))
    same = next((i for i, (a, b) in enumerate(zip(tokens, gen.token_ids)) if a != b),
                len(tokens))
    assert same >= 1  # the first map comes from the shared prefill
    np.testing.assert_allclose(gen.image_maps.reshape(len(gen.token_ids), -1)[:same],
                               maps[:same], atol=atol)


def test_llava_next_base_grid():
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    from ros_ground.lmm import tiny as tiny_module

    tok = tiny_module.build_tokenizer()
    base = tiny_module.build_tiny_config(len(tok), 4, tok.pad_token_id)
    pinpoints = [[64, 64], [64, 128], [128, 64]]
    config = LlavaNextConfig(
        vision_config=base.vision_config.to_dict(), text_config=base.text_config.to_dict(),
        image_token_id=4, image_grid_pinpoints=pinpoints, vision_feature_select_strategy="default",
        vision_feature_layer=-2, image_seq_length=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlavaNextForConditionalGeneration(config)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = 2, 3
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessor(
            size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64},
            image_grid_pinpoints=pinpoints),
        tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=tiny_module.CHAT_TEMPLATE)
    adapter = lmm_module.LMMAdapter("next", model, processor, torch.device("cpu"), torch.float32)
    image = np.random.RandomState(0).randint(0, 255, (48, 100, 3), dtype=np.uint8)
    inputs, layout, geometry = adapter.prepare(image, "Describe <image> it")
    assert int((inputs["input_ids"] == 4).sum()) > 64  # base grid + any-res tiles + newlines
    assert layout.positions.numel() == 64 and geometry.fit == "resize"
    gen = _check_against_eager(adapter, image, "Describe <image> it")
    assert gen.image_maps.shape[1:] == (8, 8)


def _tiny_qwen2_vl():
    """A random Qwen2-VL of the tiny tokenizer: (model, processor)."""
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from ros_ground.lmm import tiny as tiny_module

    tok = tiny_module.build_tokenizer()
    tok.add_tokens(["<|vision_start|>", "<|vision_end|>", "<|im_start|>", "<|im_end|>"],
                   special_tokens=True)
    start, end = tok.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>"])
    template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% for item in message['content'] %}{% if item['type'] == 'image' %}"
        "<|vision_start|><image><|vision_end|>{% else %}{{ item['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                             "mrope_section": [2, 3, 3]},
            bos_token_id=1, eos_token_id=2, pad_token_id=3, initializer_range=0.5),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=4, vision_start_token_id=start, vision_end_token_id=end, video_token_id=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = 2, 3
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
        tokenizer=tok, video_processor=Qwen2VLVideoProcessor(), chat_template=template)
    return model, processor


def test_qwen2_vl_grid():
    model, processor = _tiny_qwen2_vl()
    adapter = lmm_module.LMMAdapter("qwen", model, processor, torch.device("cpu"), torch.float32)
    image = np.random.RandomState(0).randint(0, 255, (60, 120, 3), dtype=np.uint8)
    prompt = "Describe <|vision_start|> the <image> <|im_end|>"
    _, layout, geometry = adapter.prepare(image, prompt)
    assert (layout.grid_h, layout.grid_w) == (2, 4) and geometry.fit == "resize"
    gen = _check_against_eager(adapter, image, prompt)
    assert gen.image_maps.shape[1:] == (2, 4)
    # M-RoPE keeps rope_deltas on the model between passes: no prefill on another thread
    assert adapter.prefill_views(image, prompt, ["hflip"]) is None


def test_qwen2_vl_never_decodes_through_the_compiled_step():
    # the compiled step passes 1-D cache positions; M-RoPE's are cache position + rope_deltas,
    # so its tokens would differ from the second on: neither compile auto (on for CUDA) nor
    # compile on may build it, nor may the step itself run (compiled=False is its eager twin)
    from ros_ground.lmm.compiled import CompiledDecoder

    model, processor = _tiny_qwen2_vl()
    with pytest.raises(ValueError, match="positions tokens for llava / llava_next only"):
        CompiledDecoder(model, model.config.image_token_id)
    with pytest.raises(ValueError, match="compile on: .*'qwen2_vl'.*set compile to auto or off"):
        lmm_module.LMMAdapter("qwen", model, processor, torch.device("cpu"), torch.float32,
                              compile="on")
    cuda = lmm_module.LMMAdapter("qwen", model, processor, torch.device("cuda"), torch.float32,
                                 compile="auto")
    assert cuda.decoder is None
