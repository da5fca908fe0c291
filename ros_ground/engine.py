"""The grounding engine: generate text, then ground every noun phrase in pixels.

attend-and-segment: a phrase's map is the mean of its tokens' image-attention maps (normalised
by the mean over the output sequence, optionally also by the answer's other phrase maps); in
`point` mode its peak prompts SAM, in `entities` mode it scores mask proposals (GROUNDHOG-style
selection, one entity per phrase), and `auto` uses proposals when the frame has them, or for a
command about an object the engine's own. One SAM image embedding per frame serves every phrase
and the proposal generator.

This module holds the request path (`GroundingEngine`: generate, read the views, ground, under
one hold on SAM), its settings (`EngineConfig`) and building it (`build_engine`); the steps it
calls live beside it (phrase_grounding, command.grounding, entity_scoring, streaming, errors).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ros_ground import ahead, cores, regions, settings
from ros_ground.command.grounding import ground_command
from ros_ground.command.intent import about_an_object, command_intent
from ros_ground.entity_scoring import EntityScorer
from ros_ground.errors import InputError, check_image, shorten
from ros_ground.lmm import Generation, LMMAdapter, ViewsPrefill
from ros_ground.maps import normalise_maps
from ros_ground.phrase_grounding import entity_phrases, find_phrase_tokens, phrase_heats, point_phrases
from ros_ground.phrases import NounPhrase, noun_phrases, token_char_spans
from ros_ground.regions import Region
from ros_ground.results import GroundedPhrase, GroundingResult, Proposal, Reference
from ros_ground.sam import PROPOSAL_DEFAULTS, SamSegmenter
from ros_ground.sam.predictor import timed_stage
from ros_ground.streaming import PhraseStream, ProgressCallback


def needs_sam(mode: str, proposals) -> bool:
    """Selecting among given `proposals` needs no SAM (no wait behind a node sharing it)."""
    return mode == "point" or not proposals


def _default(name: str):
    return settings.by_name(settings.ENGINE)[name].default


@dataclass
class EngineConfig:
    """Tunable at run time. Defaults, allowed values and meanings are declared once in
    ros_ground.settings (the node parameter of each field is the setting of that `field`)."""

    mode: str = _default("mode")
    normalise: bool = _default("normalise_maps")
    # a phrase's map averages its noun chunk's maps, or its root's (attend-and-segment, app. A)
    phrase_tokens: str = _default("phrase_tokens")
    phrase_contrast: float = _default("phrase_contrast")
    # maps averaged over these views of the image (views.py), others read in one pass after generation
    attention_views: tuple[str, ...] = tuple(_default("attention_views"))
    multimask_choice: str | int = _default("multimask_choice")  # "iou" or a fixed index 0..2
    point_zoom: bool = _default("point_zoom")  # sam/windows.py
    entity_assignment: str = _default("entity_assignment")
    entity_margin: float = _default("entity_margin")
    entity_scoring: str = _default("entity_scoring")
    entity_token_window: float = _default("entity_token_window")  # lmm.tokens.entity_window
    region_token: str = _default("region_token")  # regions.py / region_encoder.py
    max_new_tokens: int = _default("max_new_tokens")
    command_words: bool = _default("command_words")  # command/refer.py picks the command's target
    min_target_score: float = _default("min_target_score")  # command.refer.absent
    amg_params: dict = field(default_factory=lambda: dict(PROPOSAL_DEFAULTS))  # own proposals

    @classmethod
    def from_settings(cls, values) -> EngineConfig:
        """The checked config of setting values keyed by setting name (node parameters, CLI flags)."""
        return cls(**settings.engine_fields(values)).validate()

    def validate(self) -> EngineConfig:
        """Check every field against its setting (ValueError naming it); self, values normalised."""
        for s in settings.ENGINE:
            setattr(self, s.field, s.check(getattr(self, s.field)))
        settings.check(settings.PROPOSAL, self.amg_params)
        settings.check_combination({s.name: getattr(self, s.field) for s in settings.ENGINE})
        return self


class GroundingEngine:
    """Owns no queue: callers (CLI, ROS node) serialise requests per model. `ground` may run the
    work that needs only the frame on the process's ahead worker thread while the LMM generates
    (`prefetch`, ahead.py): SAM's embedding, and the attention views' prompt on a CPU LMM."""

    prefetch: bool | None = None  # None: as ahead.ahead_work decides (a GPU SAM, or spare cores)

    def __init__(self, lmm: LMMAdapter, sam: SamSegmenter, nlp, config: EngineConfig | None = None,
                 torch_threads: int = 0):
        """torch_threads: each request's torch threads (0: leave them); ahead.py on the rest."""
        self.lmm, self.sam, self.nlp = lmm, sam, nlp
        self.torch_threads = cores.check_torch_threads(torch_threads)  # ValueError: out of range
        self.config = (config or EngineConfig()).validate()
        self.entities = EntityScorer(lmm)  # entity_scoring's state: tokens, head

    def warm_up(self, prompt: str, max_new_tokens: int) -> int:
        """`LMMAdapter.warm_up` under the requests' torch threads (why: ahead.py)."""
        with ahead.threads(self.torch_threads):
            return self.lmm.warm_up(prompt, max_new_tokens)

    def ground(self, image: np.ndarray, prompt: str, mode: str | None = None,
               proposals: list[Proposal] | None = None, image_key=None,
               on_progress: ProgressCallback | None = None,
               should_stop: Callable[[], bool] | None = None,
               config: EngineConfig | None = None,
               accepted_at: float | None = None) -> GroundingResult:
        """Ground `prompt`'s answer in `image` (HxWx3 uint8 RGB): `generate`, `ground_generation`.

        `mode` overrides the config's for this request (see `requested_mode`). `proposals` are
        entity masks for this frame (from the proposal node); `image_key` identifies the frame
        so the SAM embedding is computed once per frame. `on_progress` receives the partial
        text and the phrases completed so far while generating. `accepted_at` (perf_counter()
        when a caller queued the request) makes timing_ms["total"] include the wait in that queue.
        Raises InputError for an image or mode it cannot take.
        """
        if mode and mode not in settings.MODES:
            raise InputError(f"mode must be one of {settings.MODES} or empty, got {shorten(mode)!r}")
        cfg = self._config(config, mode)
        check_image(image)
        t_start = time.perf_counter()
        progress = PhraseStream(self, image, image_key, cfg, on_progress) if on_progress else None
        sam_ahead, views_ahead = ahead.ahead_work(self.prefetch, self.sam.device, self.lmm.device,
                                                  self.torch_threads)
        sam_ahead = sam_ahead and needs_sam(cfg.mode, proposals) and not (
            cfg.point_zoom and cfg.mode != "entities" and self.sam.zooms(image))  # windows: no frame
        spare = max(1, ahead.spare_cores(self.torch_threads))
        with ahead.threads(self.torch_threads), self.sam.prefetched(
                image, image_key, sam_ahead, spare), ahead.views_prefill(
                self.lmm, image, prompt, cfg.attention_views, views_ahead, spare) as views:
            gen = self.generate(image, prompt, config=cfg, views=False,
                                on_token=progress.on_token if progress else None,
                                should_stop=should_stop)
            with ahead.joined(self.torch_threads):
                gen = self._timed_views(image, gen, cfg, views)
                result = self.ground_generation(image, gen, config=cfg, proposals=proposals,
                                                image_key=image_key)
        # reading the views is part of grounding the answer, as the response reports it
        result.timing_ms["grounding"] += result.timing_ms.get("views", 0.0)
        start = t_start if accepted_at is None else accepted_at
        result.timing_ms["total"] = (time.perf_counter() - start) * 1e3
        return result

    def generate(self, image: np.ndarray, prompt: str, config: EngineConfig | None = None,
                 views: bool = True, on_token=None,
                 should_stop: Callable[[], bool] | None = None) -> Generation:
        """The LMM's answer to `prompt` about `image` (HxWx3 uint8 RGB), with one image map per
        generated token, ready for `ground_generation` (which may ground it several ways).

        `views`: average the maps over `config.attention_views` (`read_views`); False keeps the
        maps of the image as it is, for callers that read several view sets from one answer.
        `on_token(token_id, text_so_far, partial)` streams tokens; `should_stop()` cancels.
        `timing_ms` gains "generation" (and "views") in milliseconds.
        """
        cfg = self._config(config)
        check_image(image)
        t0 = time.perf_counter()
        gen = self.lmm.generate(image, prompt, max_new_tokens=cfg.max_new_tokens,
                                on_token=on_token, should_stop=should_stop)
        gen.timing_ms["generation"] = (time.perf_counter() - t0) * 1e3
        return self._timed_views(image, gen, cfg) if views else gen

    def _timed_views(self, image: np.ndarray, gen: Generation, cfg: EngineConfig,
                     prefill: Future | None = None) -> Generation:
        """`read_views`; timing_ms["views"] (ms) includes waiting for `prefill`, a future."""
        t0 = time.perf_counter()
        wanted = prefill is not None and gen.token_ids and not gen.canceled
        gen = self.read_views(image, gen, cfg, prefill.result() if wanted else None)
        return replace(gen, timing_ms={**gen.timing_ms, "views": (time.perf_counter() - t0) * 1e3})

    def read_views(self, image: np.ndarray, gen: Generation, config: EngineConfig | None = None,
                   prefill: ViewsPrefill | None = None) -> Generation:
        """`gen` (made on `image` as it is), maps averaged over `config.attention_views` (`prefill`:
        `LMMAdapter.prefill_views` of those but identity); a canceled answer: no extra passes."""
        cfg = self._config(config)
        if cfg.attention_views == ("identity",) or not gen.token_ids or gen.canceled:
            return gen
        others = [view for view in cfg.attention_views if view != "identity"]
        maps = list(self.lmm.view_maps(image, gen.prompt, gen.token_ids, others, prefill)) \
            if others else []
        if "identity" in cfg.attention_views:
            maps.append(gen.image_maps)
        return replace(gen, image_maps=np.mean(maps, axis=0, dtype=np.float32))

    def ground_generation(self, image: np.ndarray, gen: Generation,
                          config: EngineConfig | None = None,
                          proposals: list[Proposal] | None = None, image_key=None,
                          command: bool = True) -> GroundingResult:
        """Ground every noun phrase of `gen` (from `generate` on this `image`) per `config`.

        Grounding one answer under several configs costs no further generation. `proposals`,
        `image_key` as in `ground`. `command`: also ground the prompt's own phrases and pick its
        target (command/parse.py); mode auto is then entities for a command about an object.
        `timing_ms` holds `gen`'s stages, each grounding stage and "grounding" (ms).
        """
        cfg = self._config(config)
        if command and cfg.mode == "auto" and not proposals and about_an_object(self.nlp, gen.prompt_text):
            # its target among whole objects: 0.90 right, 0.20 by SAM at its peak (MEASUREMENTS)
            cfg = replace(cfg, mode="entities")
        check_image(image)
        t0 = time.perf_counter()
        made: list[Proposal] = []
        prompt_phrases, ref = [], Reference()
        # answer and command under one hold on SAM (re-entrant): no other frame made current between
        with self.sam.exclusive() if needs_sam(cfg.mode, proposals) else contextlib.nullcontext():
            waited = (time.perf_counter() - t0) * 1e3
            phrases, timing, used_mode = self.ground_phrases(
                image, gen, cfg, proposals, image_key, proposals_out=made)
            if command:
                with timed_stage(timing, "prompt_grounding"):
                    prompt_phrases, ref = ground_command(
                        self, image, gen, replace(cfg, mode=used_mode), proposals or made, image_key)
                    ref = replace(ref, intent=command_intent(self.nlp, gen.prompt_text))
        if "sam_wait" in timing:
            timing["sam_wait"] += waited
        timing = {**gen.timing_ms, **timing, "grounding": (time.perf_counter() - t0) * 1e3}
        return GroundingResult(
            text=gen.text, phrases=phrases, model=self.lmm.name,
            image_size=(int(image.shape[0]), int(image.shape[1])), timing_ms=timing,
            token_ids=list(gen.token_ids), mode=used_mode, canceled=gen.canceled,
            prompt=gen.prompt_text, prompt_phrases=prompt_phrases, **asdict(ref))

    def requested_mode(self, mode: str | None = None, config: EngineConfig | None = None) -> str:
        """The mode a request runs in: its own, else the config's (`auto`: resolved per frame)."""
        return mode or (config or self.config).mode

    def segment_point(self, image: np.ndarray, point: tuple[float, float], image_key=None, zoom=None):
        """(bool HxW, SAM's IoU) for a point (x, y), prompted as point mode's (zoom None: point_zoom)."""
        return self.sam.segment_points(image, [point], self.config.multimask_choice, image_key,
                                       self.config.point_zoom if zoom is None else zoom)[0]

    def _config(self, config: EngineConfig | None, mode: str | None = None) -> EngineConfig:
        base = config or self.config
        return replace(base, mode=self.requested_mode(mode, base)).validate()

    def ground_phrases(
        self, image: np.ndarray, gen: Generation, cfg: EngineConfig, proposals, image_key,
        text: str | None = None, spans: list[tuple[int, int]] | None = None,
        chunks: list[NounPhrase] | None = None, proposals_out: list[Proposal] | None = None,
        segment_only: set[tuple[int, int]] | None = None,
    ) -> tuple[list[GroundedPhrase], dict[str, float], str]:
        """Ground the noun phrases of `gen`'s tokens from `gen.image_maps` (one map per token).

        `text`, the tokens' char `spans` in it and its `chunks` default to the decoded answer's
        (command/parse.py passes the prompt's). Proposals made here are appended to `proposals_out`,
        so the prompt's phrases reuse them. `segment_only`: point_phrases's `only`. Returns
        (phrases, timing in ms, the mode used).
        """
        timing: dict[str, float] = {}
        t0 = time.perf_counter()
        token_ids = gen.token_ids
        text = self.lmm.decode(token_ids) if text is None else text
        if spans is None:
            spans = token_char_spans(self.lmm.decode, list(token_ids))
        if chunks is None:
            chunks = noun_phrases(self.nlp, text)
        maps = np.asarray(gen.image_maps[: len(token_ids)], dtype=np.float32)
        maps = normalise_maps(maps, enabled=cfg.normalise)
        timing["phrases"] = (time.perf_counter() - t0) * 1e3
        used_mode = cfg.mode
        if used_mode == "auto":
            used_mode = "entities" if proposals else "point"
        if not chunks:
            return [], timing, used_mode

        # one hold on SAM for the whole response: a proposal node sharing it can no longer switch
        # its cached image between our phrases, so we wait for it at most once and encode once
        sam = needs_sam(used_mode, proposals)
        t0 = time.perf_counter()
        with self.sam.exclusive() if sam else contextlib.nullcontext():
            if sam:
                timing["sam_wait"] = ((time.perf_counter() - t0) * 1e3
                                      + self.sam.wait_prefetch(image, image_key))
            if used_mode == "entities" and not proposals:
                with timed_stage(timing, "proposals"):
                    proposals = self.sam.propose(image, key=image_key, **cfg.amg_params)
                if proposals_out is not None:
                    proposals_out.extend(proposals)
                if not proposals:  # nothing to select from: fall back to the point prompt, visibly
                    used_mode = "point"

            with timed_stage(timing, "segment"):
                found = find_phrase_tokens(spans, chunks, cfg.phrase_tokens)
                phrases = []
                if found:
                    heats = phrase_heats(maps, found, contrast=cfg.phrase_contrast, geometry=gen.geometry)
                    if used_mode == "entities" and proposals:
                        ids = [[token_ids[i] for i in ix] for _, ix in found]
                        scores = self.entities.scores(
                            image, heats, proposals, ids, scoring=cfg.entity_scoring,
                            image_key=image_key, token_window=cfg.entity_token_window)
                        phrases = entity_phrases(found, heats, proposals, scores, text=text,
                                                 assignment=cfg.entity_assignment, margin=cfg.entity_margin)
                    else:
                        phrases = point_phrases(self.sam, image, found, heats, image_key=image_key,
                                                multimask_choice=cfg.multimask_choice,
                                                zoom=cfg.point_zoom, only=segment_only)
        return phrases, timing, used_mode

    def ground_region(self, image: np.ndarray, prompt: str, region: Region,
                      proposals: list[Proposal] | None = None, image_key=None,
                      config: EngineConfig | None = None, focus: str = "region",
                      on_progress: ProgressCallback | None = None,
                      should_stop: Callable[[], bool] | None = None) -> GroundingResult:
        """Answer `prompt` about `region` of `image` (HxWx3 uint8 RGB) and ground the answer.

        `region` (regions.resolve_region) holds the entity mask; its token (with `region_token:
        encoder`, plus the trained region encoder's vector) replaces the prompt's referring word
        ("this", "it", `<region>`), and with `focus="region"` the other image tokens show the
        rest's median (regions.py says why). Grounded on its own generation's maps only (the
        other attention_views, read without the region, look elsewhere). `on_progress` and
        `should_stop` as in `ground`. Raises InputError for a bad image, a region covering
        nothing the model sees or `encoder` for a model without one. timing_ms gains "region"
        (pooling the token, ms).
        """
        cfg = self._config(config)
        t0 = time.perf_counter()
        progress = PhraseStream(self, image, image_key, cfg, on_progress) if on_progress else None
        # `torch_threads` holds for this request as for `ground` (nothing runs ahead here)
        with ahead.threads(self.torch_threads):
            gen = self.generate_region(image, prompt, region, image_key, cfg, focus,
                                       on_token=progress.on_token if progress else None,
                                       should_stop=should_stop)
            with ahead.joined(self.torch_threads):
                result = self.ground_generation(image, gen, cfg, proposals, image_key, command=False)
        result.timing_ms["total"] = (time.perf_counter() - t0) * 1e3
        return result

    def generate_region(self, image: np.ndarray, prompt: str, region: Region, image_key=None,
                        config: EngineConfig | None = None, focus: str = "region", on_token=None,
                        should_stop: Callable[[], bool] | None = None) -> Generation:
        """`generate` with `region` in the model's context (see `ground_region`), on the image
        as it is (no views); timing_ms gains "region" (the image tokens and the pooling, ms)."""
        cfg = self._config(config)
        check_image(image)
        encoder = regions.token_encoder(cfg.region_token, self.lmm.name)  # InputError: none
        t0 = time.perf_counter()
        features, geometry = self.entities.image_tokens(image, image_key)
        with regions.region_context(self.lmm, image, prompt, features, geometry, region.mask,
                                    focus, encoder):
            pooled_ms = (time.perf_counter() - t0) * 1e3
            gen = self.generate(image, prompt, cfg, views=False, on_token=on_token,
                                should_stop=should_stop)
        gen.timing_ms["region"] = pooled_ms
        return gen


def build_engine(
    model: str = "tiny",
    sam_model: str = "tiny",
    sam_checkpoint: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    spacy_model: str = "en_core_web_sm",
    config: EngineConfig | None = None,
    sam: SamSegmenter | None = None,
    allow_download: bool = False,
    compile: str = "off", image_fit: str = "auto",
    torch_threads: int = 0,
) -> GroundingEngine:
    """Load the three models from their specs; pass `sam` to share one SAM between nodes.
    allow_download: let a Hugging Face model id missing from the local cache be downloaded
    (see `load_lmm`); off by default, so a robot never fetches weights at run time. compile (off
    | auto | on, compiled decoding), image_fit (auto | processor | pad): see `LMMAdapter`.
    torch_threads: each `ground` request's torch threads (0: torch's default; ahead.py).
    """
    from ros_ground.lmm import load_lmm
    from ros_ground.model_specs import check_model_specs
    from ros_ground.phrases import load_spacy
    from ros_ground.sam import load_sam

    config = (config or EngineConfig()).validate()
    cores.check_torch_threads(torch_threads)  # before loading anything, as the models' specs are
    check_model_specs(model, None if sam else sam_model, sam_checkpoint, device, allow_download, spacy_model)
    nlp = load_spacy(spacy_model)
    lmm = load_lmm(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                   allow_download=allow_download, compile=compile, image_fit=image_fit)
    if sam is None:
        sam = load_sam(sam_model, checkpoint=sam_checkpoint, device=str(lmm.device))
    return GroundingEngine(lmm, sam, nlp, config, torch_threads)


LOAD_SETTINGS = ("model", "sam_model", "sam_checkpoint", "device", "dtype", "trust_remote_code",
                 "spacy_model", "allow_download", "compile", "image_fit", "torch_threads")


def build_engine_from_settings(values, sam: SamSegmenter | None = None,
                               config: EngineConfig | None = None) -> GroundingEngine:
    """`build_engine` from setting values keyed by setting name (node parameters or CLI flags):
    LOAD_SETTINGS (an empty `sam_checkpoint` is none), and `config` or the engine's settings."""
    loading = {name: values[name] for name in LOAD_SETTINGS if name in values}
    loading["sam_checkpoint"] = loading.get("sam_checkpoint") or None
    return build_engine(**loading, config=config or EngineConfig.from_settings(values), sam=sam)
