"""Training code of the embedded models: text-only LMM data, determinism, loss goes down."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ros_ground.sim.scene import generate_scene
from ros_ground.train import data as D
from ros_ground.train.configs import LMMArch, LMMTrainConfig, SAMTrainConfig, sim_sam_config
from ros_ground.train.lmm import ConversationEncoder, conversation, train_lmm, where_answer
from ros_ground.train.lmm_model import build_lmm, build_processor
from ros_ground.train.sam import sample_prompts, train_sam

SEED = D.TRAIN_SEED_START + 17


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SEED)


class _Forbidden:
    """Stands in for an object or a scene: names and texts are readable, geometry raises."""

    GEOMETRY = {"mask", "bbox", "position", "depth", "orientation", "body_id", "phrases",
                "layout", "camera", "intrinsics", "margins", "rgb"}

    def __init__(self, wrapped, **override):
        object.__setattr__(self, "_wrapped", wrapped)
        object.__setattr__(self, "_override", override)

    def __getattr__(self, name):
        if name in self._override:
            return self._override[name]
        if name in self.GEOMETRY:
            raise AssertionError(f"LMM training data read {name!r}: grounding supervision")
        return getattr(self._wrapped, name)


def test_lmm_data_never_reads_masks_boxes_or_positions(scene):
    guarded = _Forbidden(scene, objects=[_Forbidden(o) for o in scene.objects])
    with pytest.raises(AssertionError):
        _ = guarded.objects[0].mask  # the guard works
    record = D.text_record(guarded)
    assert record == D.text_record(scene)
    assert set(record) == {"seed", "description", "questions", "referring", "names"}
    assert "mask" not in json.dumps(record)
    turns = conversation(record, np.random.default_rng(0))
    assert turns and all(isinstance(p, str) and isinstance(a, str) for p, a in turns)


def test_conversations_are_in_vocabulary_and_match_the_inference_prompt(scene):
    arch = LMMArch(image_size=32, patch_size=16)
    processor = build_processor(arch)
    encoder = ConversationEncoder(processor, 4)
    record = D.text_record(scene)
    for k in range(20):
        turns = conversation(record, np.random.default_rng(k))
        ids, labels = encoder.encode(turns)  # raises on words outside the vocabulary
        assert len(ids) == len(labels)
        answers = [i for i, lab in zip(ids, labels) if lab != -100]
        assert processor.tokenizer.eos_token_id in answers
        assert processor.tokenizer.convert_tokens_to_ids("<image>") not in answers
    # the first turn's prefix is exactly what the processor builds at inference time
    turns = [("Describe the scene.", record["description"])]
    ids, _ = encoder.encode(turns)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": turns[0][0]}]}],
        add_generation_prompt=True, tokenize=False)
    expected = processor(images=scene.rgb, text=text, return_tensors="pt")["input_ids"][0].tolist()
    assert ids[: len(expected)] == expected


def test_a_table_with_no_object_in_view_is_described_in_the_vocabulary():
    # randomised cameras can frame a table with every object out of view (6 of 12,000 training
    # scenes); their description stopped the LMM's training at a word it could not encode
    from ros_ground.sim.language import default_margins, describe

    text, phrases = describe([], default_margins(320), np.random.default_rng(0))
    assert phrases == []
    ConversationEncoder(build_processor(LMMArch(image_size=32, patch_size=16)), 4).encode(
        [("Describe the scene.", text)])  # raises on words outside the vocabulary


def test_colours_and_categories_are_separate_tokens(scene):
    from ros_ground.train.lmm_model import build_tokenizer

    tok = build_tokenizer()
    pieces = tok.convert_ids_to_tokens(tok("A red mug, two yellow ducks and a soccer ball.",
                                           add_special_tokens=False)["input_ids"])
    assert pieces == ["a", "red", "mug", ",", "two", "yellow", "ducks", "and", "a",
                      "soccer ball", "."]
    assert tok.unk_token_id not in tok(D.text_record(scene)["description"])["input_ids"]
    text = "a red mug, two yellow ducks and a soccer ball."
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


def test_vision_pretraining_targets_are_caption_words_only(scene):
    from ros_ground.train.vision import tag_vocabulary, tags_of

    vocabulary = tag_vocabulary()
    record = D.text_record(_Forbidden(scene, objects=[_Forbidden(o) for o in scene.objects]))
    target = tags_of(record, vocabulary)
    on = {vocabulary[i] for i in np.flatnonzero(target)}
    for obj in scene.objects:
        assert obj.name in on and obj.category in on
    assert target.sum() == len(on)


def test_descriptions_list_objects_alphabetically_without_relations():
    from ros_ground.train.lmm import listed_description

    record = D.text_record(generate_scene(3))  # the simulator lists: teddy bear, two yellow ducks, ...
    assert record["description"].startswith("A teddy bear, two yellow ducks, a red sphere")
    text = listed_description(record)
    assert text == ("A green mug, a red sphere, a teddy bear, a white torus and two yellow ducks on a "
                    "wooden table.")
    assert record["description"].split("wooden table.", 1)[1]  # the simulator's relations dropped
    assert listed_description({**record, "names": []}) == record["description"]


def test_where_answers_name_the_object_and_a_relation():
    record = {"names": ["red mug", "blue cube"],
              "referring": [["the red mug left of the blue cube", 0], ["the leftmost object", 0],
                            ["the blue cube", 1]]}
    rng = np.random.default_rng(0)
    assert where_answer(record, 0, rng) == "The red mug is left of the blue cube."
    assert where_answer(record, 0, rng, "the red mug left of the blue cube") \
        == "The red mug is left of the blue cube."  # no other relation: keep it
    assert where_answer(record, 1, rng) == "The blue cube is on the table."


def test_data_generation_is_deterministic(scene):
    again = generate_scene(SEED)
    assert D.text_record(again) == D.text_record(scene)
    assert np.array_equal(D.label_map(again), D.label_map(scene))
    labels = D.label_map(scene)
    assert set(np.unique(labels)) <= {D.BACKGROUND, D.TABLE} | {
        D.FIRST_OBJECT + k for k in range(len(scene.objects))}
    a = sample_prompts(labels, np.random.default_rng(3), 8, 0.75)
    b = sample_prompts(labels, np.random.default_rng(3), 8, 0.75)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    for (x, y), seg in zip(*a):  # every point lies in its segment (SAM adds 0.5 to coordinates)
        assert labels[int(y + 0.5), int(x + 0.5)] == seg
    first = [next(iter_) for iter_ in [D.batches(10, 3, 0)] for _ in range(5)]
    second = [next(iter_) for iter_ in [D.batches(10, 3, 0)] for _ in range(5)]
    assert first == second and sorted(sum(first[:3], [])[:9]) == sorted(set(sum(first[:3], [])))
    rec1 = conversation(D.text_record(scene), np.random.default_rng([0, 5, SEED]))
    rec2 = conversation(D.text_record(scene), np.random.default_rng([0, 5, SEED]))
    assert rec1 == rec2
    with pytest.raises(ValueError):
        D.check_train_seeds(0, 10)  # evaluation seeds are never trained on


def test_lmm_training_steps_reduce_the_loss(tmp_path):
    from transformers import LlavaForConditionalGeneration

    from ros_ground.train.lmm import make_batch

    arch = LMMArch(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1,
                   vision_heads=2, vision_mlp=64, text_hidden=64, text_layers=2, text_heads=2,
                   text_kv_heads=2, text_mlp=128)
    cfg = LMMTrainConfig(scenes=3, steps=20, batch_size=3, lr=3e-3, warmup=2, max_turns=3,
                         checkpoint_every=10_000, arch=arch, threads=1, vision_steps=3,
                         vision_lr=2e-3)
    store = D.SceneStore(cfg.seed_start, cfg.scenes, tmp_path / "no_cache")
    model, processor = build_lmm(arch, seed=cfg.seed)  # the initialisation train_lmm uses
    batch = make_batch(store, [0, 1, 2], processor, ConversationEncoder(processor, 4), 0, cfg)
    with torch.no_grad():
        before = float(model(**batch).loss)
    summary = train_lmm(cfg, tmp_path / "lmm", cache_dir=tmp_path / "no_cache", progress=False)
    assert summary["steps"] == 20 and summary["vision"]["steps"] == 3
    assert summary["vision"]["config"]["lr"] == 2e-3  # --vision-lr reaches stage 1

    trained = LlavaForConditionalGeneration.from_pretrained(tmp_path / "lmm", dtype=torch.float32)
    with torch.no_grad():
        after = float(trained.eval()(**batch).loss)
    assert after < 0.7 * before, (before, after)

    from ros_ground.lmm import load_lmm

    adapter = load_lmm(str(tmp_path / "lmm"), device="cpu", dtype="float32")
    gen = adapter.generate(store.rgb(0), "Describe the scene.", max_new_tokens=5)
    assert gen.image_maps.shape[1:] == (2, 2) and gen.geometry.fit == "resize"

    # --init-from: a fine-tune starts from the checkpoint's weights, not a fresh initialisation
    # (one step at a negligible learning rate leaves them, and so the loss, where they were)
    tune = LMMTrainConfig(scenes=3, steps=1, batch_size=3, lr=1e-9, warmup=1, max_turns=3,
                          checkpoint_every=10_000, arch=arch, threads=1, vision_steps=0,
                          init_from=str(tmp_path / "lmm"))
    train_lmm(tune, tmp_path / "tuned", cache_dir=tmp_path / "no_cache", progress=False)
    tuned = LlavaForConditionalGeneration.from_pretrained(tmp_path / "tuned", dtype=torch.float32)
    with torch.no_grad():
        resumed = float(tuned.eval()(**batch).loss)
    assert abs(resumed - after) < 0.02 * after, (after, resumed)
    # ... and records the checkpoint's own training (the lineage its model card reports)
    lineage = json.loads((tmp_path / "tuned" / "training.json").read_text())
    assert lineage["base"]["step"] == 20 and lineage["base"]["vision"]["steps"] == 3
    assert lineage["base"]["base"] is None and lineage["vision"] is None


def test_sam_training_steps_reduce_the_loss(tmp_path, monkeypatch):
    from ros_ground.sam import build_sam_from_config, load_sam
    from ros_ground.train.sam import image_loss, make_example

    config = sim_sam_config()
    config.update(encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2,
                  encoder_global_attn_indexes=[0], prompt_embed_dim=32, decoder_mlp_dim=64,
                  decoder_num_heads=2, iou_head_hidden_dim=32, decoder_depth=1)
    cfg = SAMTrainConfig(scenes=2, steps=10, refine_steps=4, refine_lr=1e-3, batch_size=2,
                         prompts=4, lr=3e-3, warmup=2, checkpoint_every=10_000,
                         sam_config=config)
    store = D.SceneStore(cfg.seed_start, cfg.scenes, tmp_path / "no_cache")

    def loss_of(model) -> float:
        total = 0.0
        with torch.no_grad():
            for i in range(cfg.scenes):
                x, size, points, targets = make_example(store, i, 0, cfg, model)
                loss, _ = image_loss(model, model.image_encoder(x), points, targets, size,
                                     cfg.focal_weight)
                total += float(loss)
        return total

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initialisation train_sam uses
        before = loss_of(build_sam_from_config(config))
    summary = train_sam(cfg, tmp_path / "sam", cache_dir=tmp_path / "no_cache", progress=False)
    assert summary["steps"] == 14  # 10 at half resolution, 4 refining at full resolution
    segmenter = load_sam(str(tmp_path / "sam"))
    assert loss_of(segmenter.sam) < before
    mask, score = segmenter.segment_point(store.rgb(0), (160.0, 120.0))
    assert mask.shape == (240, 320) and np.isfinite(score)

    # --init-from: a fine-tune starts from the saved weights (one step at a negligible learning
    # rate leaves them, and so the loss, where they were), not from a fresh initialisation
    trained = loss_of(segmenter.sam)
    tune = replace(cfg, steps=1, refine_steps=0, lr=1e-9, warmup=1,
                   init_from=str(tmp_path / "sam"))
    train_sam(tune, tmp_path / "tuned", cache_dir=tmp_path / "no_cache", progress=False)
    assert abs(loss_of(load_sam(str(tmp_path / "tuned")).sam) - trained) < 0.02 * trained
    lineage = json.loads((tmp_path / "tuned" / "training.json").read_text())
    assert lineage["base"]["step"] == 14 and lineage["base"]["config"]["steps"] == 10

    # a saved state is resumed from where it started: another --init-from is refused, not
    # ignored and then credited in training.json
    state = tmp_path / "state.pt"
    train_sam(tune, tmp_path / "resumable", cache_dir=tmp_path / "no_cache", state_path=state,
              progress=False)
    with pytest.raises(ValueError, match="--fresh"):
        train_sam(replace(tune, init_from=str(tmp_path / "tuned")), tmp_path / "resumable",
                  cache_dir=tmp_path / "no_cache", state_path=state, progress=False)
    monkeypatch.chdir(tmp_path)  # the same directory named from elsewhere is the same start
    train_sam(replace(tune, steps=2, init_from="sam"), tmp_path / "resumable",
              cache_dir=tmp_path / "no_cache", state_path=state, progress=False)
    resumed = json.loads((tmp_path / "resumable" / "training.json").read_text())
    assert resumed["step"] == 2 and resumed["config"]["init_from"] == str(tmp_path / "sam")


def test_a_run_stopped_by_the_time_limit_says_so_and_resumes_only_itself(tmp_path, capsys):
    # helper-130: a stage 1 cut short by the time limit was never finished, training.json said
    # final; a run with another seed and --out silently trained on the saved state
    arch = LMMArch(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1,
                   vision_heads=2, vision_mlp=64, text_hidden=64, text_layers=2, text_heads=2,
                   text_kv_heads=2, text_mlp=128)
    cfg = LMMTrainConfig(scenes=3, steps=2, batch_size=3, warmup=1, max_turns=3, arch=arch,
                         threads=1, vision_steps=40, time_limit_min=1e-6)
    state, out, cache = tmp_path / "state.pt", tmp_path / "lmm", tmp_path / "no_cache"
    summary = train_lmm(cfg, out, cache_dir=cache, state_path=state, progress=False)
    assert summary["vision"]["stopped_early"] and summary["vision"]["steps"] < 40
    record = json.loads((out / "training.json").read_text())
    assert (record["final"], record["stopped_early"], record["step"]) == (False, True, 0)
    # helper-134: it said "the same command ... resumes", which then refused to resume
    assert "it cannot be resumed: run again with --fresh and a larger" in capsys.readouterr().err
    with pytest.raises(ValueError, match="stage 1 stopped by the time limit .*--fresh"):
        train_lmm(replace(cfg, time_limit_min=5.0), out, cache_dir=cache, state_path=state,
                  progress=False)

    done = replace(cfg, vision_steps=0, time_limit_min=5.0)
    train_lmm(done, out, cache_dir=tmp_path / "no_cache", state_path=tmp_path / "done.pt",
              progress=False)
    record = json.loads((out / "training.json").read_text())
    assert (record["final"], record["stopped_early"], record["step"]) == (True, False, 2)
    with pytest.raises(ValueError, match=r"is of another run \(seed 0, now 1\).*--fresh"):
        train_lmm(replace(done, seed=1), out, cache_dir=cache, state_path=tmp_path / "done.pt",
                  progress=False)
    with pytest.raises(ValueError, match="writes to .*--fresh"):
        train_lmm(done, tmp_path / "other", cache_dir=cache, state_path=tmp_path / "done.pt",
                  progress=False)
    capsys.readouterr()
    train_lmm(replace(done, steps=3), out, cache_dir=cache, state_path=tmp_path / "done.pt",
              progress=False)  # a longer run of the same settings resumes, and says so
    assert "resuming" in capsys.readouterr().err
    assert json.loads((out / "training.json").read_text())["step"] == 3


def test_a_resume_below_the_steps_done_is_refused_and_each_resume_is_recorded(tmp_path, capsys):
    # trial137 D5: a run stopped at step 2 resumed with --steps 1 wrote training.json with step
    # 2, final true and config.steps 1; a changed --steps re-plans the cosine schedule unrecorded
    from ros_ground.train.card import lmm_card

    arch = LMMArch(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1,
                   vision_heads=2, vision_mlp=64, text_hidden=64, text_layers=2, text_heads=2,
                   text_kv_heads=2, text_mlp=128)
    cfg = LMMTrainConfig(scenes=3, steps=2, batch_size=3, warmup=1, max_turns=3, arch=arch,
                         threads=1, vision_steps=0, time_limit_min=5.0)
    state, out, cache = tmp_path / "state.pt", tmp_path / "lmm", tmp_path / "no_cache"
    train_lmm(cfg, out, cache_dir=cache, state_path=state, progress=False)
    assert json.loads((out / "training.json").read_text())["resumed"] == []
    with pytest.raises(ValueError, match=r"has done 2 steps of the main stage, more than --steps 1 "
                                         r"\(give --steps 2 or more\).*--fresh"):
        train_lmm(replace(cfg, steps=1), out, cache_dir=cache, state_path=state, progress=False)
    record = json.loads((out / "training.json").read_text())
    assert (record["step"], record["config"]["steps"]) == (2, 2)  # untouched by the refusal
    train_lmm(replace(cfg, steps=4), out, cache_dir=cache, state_path=state, progress=False)
    train_lmm(replace(cfg, steps=4), out, cache_dir=cache, state_path=state, progress=False)
    record = json.loads((out / "training.json").read_text())
    assert (record["step"], record["final"], record["config"]["steps"]) == (4, True, 4)
    assert record["resumed"] == [{"at_step": 2, "steps_before": 2, "steps": 4},
                                 {"at_step": 4, "steps_before": 4, "steps": 4}]
    assert torch.load(state, weights_only=True)["resumed"] == record["resumed"]
    card = lmm_card(out, {"train": {"steps": 4, "wall_s": 1.0}})
    assert ("- schedule changed on resume: at step 2, --steps 2 -> 4 (the cosine re-planned over "
            "4 steps from there)") in card and card.count("schedule changed") == 1


def test_sams_steps_cannot_change_once_its_refinement_started(tmp_path):
    from ros_ground.train.loop import check_resumable

    config = SAMTrainConfig(steps=10, refine_steps=4).to_dict()
    state = {"config": config, "out": str(tmp_path.resolve()), "step": 12}  # 2 refining
    check_resumable(state, config, tmp_path, tmp_path / "s.pt")  # the same: resumed
    for steps, words in ((11, "is 2 steps into the refinement after its --steps 10, so --steps 11"),
                         (9, "has done 10 steps of the main stage, more than --steps 9"),
                         (12, "into the refinement")):
        with pytest.raises(ValueError, match=words):
            check_resumable(state, {**config, "steps": steps}, tmp_path, tmp_path / "s.pt")
    early = {**state, "step": 6}  # in the main stage: any --steps from 6 on
    for steps in (6, 7, 100):
        check_resumable(early, {**config, "steps": steps}, tmp_path, tmp_path / "s.pt")
    with pytest.raises(ValueError, match="has done 6 steps of the main stage, more than --steps 5"):
        check_resumable(early, {**config, "steps": 5}, tmp_path, tmp_path / "s.pt")


@pytest.mark.parametrize("kind", ["lmm", "sam"])
def test_each_out_directory_resumes_its_own_state_and_fresh_removes_only_its_own(kind, monkeypatch, tmp_path):
    # trial137: one state file per model kind for every --out: training into a second directory
    # was refused, and --fresh for it deleted the first run's state
    import ros_ground.train as T
    import ros_ground.train.lmm as L
    import ros_ground.train.sam as S

    given = []

    def train(cfg, out, cache, state, log_path=None):
        given.append((out, state, log_path))
        if not state.exists():
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(str(out))  # a run saves its state
        return {}

    monkeypatch.setattr(L if kind == "lmm" else S, f"train_{kind}", train)
    monkeypatch.setattr(T, "_state_dir", lambda: tmp_path / "states")
    monkeypatch.setattr(T, "_write_summary", lambda *a: None)
    run = T._run_lmm if kind == "lmm" else T._run_sam
    parse = T.build_parser().parse_args
    first, second = tmp_path / "a", tmp_path / "b"
    run(parse([kind, "--out", str(first)]))
    run(parse([kind, "--out", str(second)]))
    monkeypatch.chdir(tmp_path)
    run(parse([kind, "--out", "a/../a"]))  # the same directory named otherwise: the same state
    states = [state for _, state, _ in given]
    assert states[0] != states[1] and states[0] == states[2] and states[0].parent == tmp_path / "states"
    assert states[0].name.startswith(f"{kind}_state_") and states[0].suffix == ".pt"
    assert len({log for _, _, log in given}) == 2 and given[0][2].name.startswith(f"{kind}_log_")
    assert states[0].read_text() == str(first) and states[1].read_text() == str(second)
    states[1].write_text("b's state")
    run(parse([kind, "--out", str(second), "--fresh"]))  # removes b's, and only b's
    assert states[0].read_text() == str(first) and states[1].read_text() == str(second)
    assert T.state_paths(kind, first) == given[0][1:]


def test_the_summary_a_card_quotes_is_the_packaged_models_and_an_old_state_is_named(monkeypatch, tmp_path,
                                                                                    capsys):
    # helper-140: one summary file per model kind: a run into /tmp/x after the packaged run made
    # the next card describe the /tmp/x run; a state of the one-file layout was silently not resumed
    import ros_ground.train as T
    import ros_ground.train.lmm as L

    monkeypatch.setattr(L, "train_lmm", lambda cfg, out, *a, **k: {"out": str(out)})
    monkeypatch.setattr(T, "_state_dir", lambda: tmp_path / "states")
    parse = T.build_parser().parse_args
    T._run_lmm(parse(["lmm"]))  # the packaged model's directory
    T._run_lmm(parse(["lmm", "--out", str(tmp_path / "x")]))
    packaged = json.loads(T.summary_path("lmm", T.LMM_DIR).read_text())
    assert packaged["out"] == str(T.LMM_DIR)
    assert json.loads(T.summary_path("lmm", tmp_path / "x").read_text())["out"] == str(tmp_path / "x")
    assert "earlier version" not in capsys.readouterr().err
    (tmp_path / "states" / "lmm_state.pt").write_text("a state of the one-file layout")
    T._run_lmm(parse(["lmm", "--out", str(tmp_path / "x"), "--fresh"]))
    err = capsys.readouterr().err
    assert "lmm_state.pt' is a training state of an earlier version's layout and is not resumed" in err
    assert str(T.state_paths("lmm", tmp_path / "x")[0]) in err
    assert (tmp_path / "states" / "lmm_state.pt").exists()  # --fresh removes only this layout's


def test_train_is_a_ros_ground_subcommand_with_the_documented_defaults(capsys):
    from ros_ground.cli import main
    from ros_ground.train import build_parser

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "lmm", "--help"])
    assert exit_info.value.code == 0
    assert "--steps" in capsys.readouterr().out
    args = build_parser().parse_args(["lmm"])
    cfg = LMMTrainConfig()
    assert (args.steps, args.scenes, args.threads) == (cfg.steps, cfg.scenes, cfg.threads)
    assert args.seed_start >= D.TRAIN_SEED_START  # never the evaluation seeds
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "nonsense"])
    assert exit_info.value.code == 2  # argparse's usage error, not a traceback


def test_a_resumed_learning_rate_schedule_continues_where_it_stopped():
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    from ros_ground.train.loop import resume_schedule

    def lrs(start: int, count: int) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=123.0)
        scheduler = resume_schedule(get_cosine_with_min_lr_schedule_with_warmup, optimizer, 0.5,
                                    start, num_warmup_steps=4, num_training_steps=20,
                                    min_lr_rate=0.1)
        out = []
        for _ in range(count):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    whole = lrs(0, 20)
    assert whole[:5] == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5])  # warm-up to the peak
    assert whole[12] == pytest.approx(0.5 * (0.1 + 0.9 * 0.5))  # half-way down the cosine
    assert whole[4:] == sorted(whole[4:], reverse=True) and min(whole[4:]) > 0.05  # to 10 %
    assert lrs(13, 7) == pytest.approx(whole[13:])  # a resumed run picks up the same values


def test_a_run_without_a_terminal_still_reports_progress(capsys):
    from ros_ground.train.loop import LoopState, train_steps

    weight = torch.nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    step = lambda i: ((weight ** 2).sum(), {"w": float(weight.detach())})  # noqa: E731
    train_steps(step, optimizer, scheduler, [weight], LoopState(), 4, desc="toy", progress=False,
                report_every_s=3600.0)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("toy: step 4/4, loss ")  # the end, once
    train_steps(step, optimizer, scheduler, [weight], LoopState(), 3, desc="toy", progress=False,
                report_every_s=0.0)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["toy: step 1/3", "toy: step 2/3", "toy: step 3/3"]
    assert all(" min left" in line for line in lines)


def test_lr_flag_reaches_the_training_config_and_refuses_nonsense(monkeypatch, tmp_path):
    import ros_ground.train as T
    import ros_ground.train.lmm as L
    import ros_ground.train.sam as S

    seen = []
    monkeypatch.setattr(L, "train_lmm", lambda cfg, *a, **k: seen.append(cfg) or {})
    monkeypatch.setattr(S, "train_sam", lambda cfg, *a, **k: seen.append(cfg) or {})
    monkeypatch.setattr(T, "_state_dir", lambda: tmp_path)
    monkeypatch.setattr(T, "_write_summary", lambda *a: None)
    parser = T.build_parser()
    T._run_lmm(parser.parse_args(["lmm", "--lr", "2e-4", "--out", str(tmp_path)]))
    T._run_lmm(parser.parse_args(["lmm", "--out", str(tmp_path)]))
    T._run_sam(parser.parse_args(["sam", "--lr", "1e-4", "--out", str(tmp_path)]))
    T._run_lmm(parser.parse_args(["lmm", "--vision-lr", "3e-4", "--out", str(tmp_path)]))
    T._run_sam(parser.parse_args(["sam", "--refine-steps", "0", "--out", str(tmp_path)]))
    assert [cfg.lr for cfg in seen] == [2e-4, LMMTrainConfig.lr, 1e-4, LMMTrainConfig.lr, SAMTrainConfig.lr]
    assert [seen[i].refine_steps for i in (2, 4)] == [SAMTrainConfig.refine_steps, 0]
    assert [seen[i].vision_lr for i in (0, 3)] == [LMMTrainConfig.vision_lr, 3e-4]
    for bad in ("0", "-1e-3", "nan", "inf", "fast"):
        for flag in ("--lr", "--vision-lr"):
            with pytest.raises(SystemExit):
                parser.parse_args(["lmm", flag, bad])


@pytest.mark.parametrize("argv", [["lmm", "--steps", "-1"], ["lmm", "--steps", "0"],
                                  ["sam", "--steps", "-3"], ["sam", "--refine-steps", "-1"],
                                  ["lmm", "--scenes", "0"],
                                  ["lmm", "--vision-steps", "-1"], ["sam", "--threads", "0"],
                                  ["lmm", "--time-limit-min", "nan"], ["data", "--workers", "0"],
                                  ["lmm", "--seed-start", "0"], ["eval", "--scenes", "0"],
                                  ["lmm", "--init-from", "/nonexistent"],
                                  ["sam", "--init-from", "/nonexistent"]])
def test_train_refuses_a_run_that_would_save_an_untrained_or_unnamed_model(argv, capsys):
    from ros_ground.train import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "argument --" in capsys.readouterr().err


def test_python_m_train_reports_errors_in_one_line(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ros_ground.train", "eval", "--seed", "9990",
                          "--scenes", "20"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "got seeds 9990..10009" in out.stderr  # before the models load
    out = subprocess.run([sys.executable, "-m", "ros_ground.train", "lmm", "--init-from",
                          __file__], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "is not a directory (a saved model's)" in out.stderr


@pytest.mark.parametrize("config, field", [(LMMTrainConfig, "steps"), (LMMTrainConfig, "scenes"),
                                           (LMMTrainConfig, "lr"), (SAMTrainConfig, "steps"),
                                           (SAMTrainConfig, "refine_lr")])
def test_training_configs_refuse_counts_and_rates_below_one_step(config, field):
    with pytest.raises(ValueError, match=f"{config.__name__}.{field} must be"):
        config(**{field: -1})
    with pytest.raises(ValueError, match="vision_steps must be"):
        LMMTrainConfig(vision_steps=-1)
    assert LMMTrainConfig(vision_steps=0).vision_steps == 0  # no stage 1 is a valid run
    with pytest.raises(ValueError, match="at least one scene"):
        D.check_train_seeds(D.TRAIN_SEED_START, 0)
