"""Grounding a command's own phrases in the image: its target and landmark among the proposals.

The prompt's noun phrases (parse.command_phrases: which is the target, which its landmark)
are pooled over the prompt tokens' prefill attention (Generation.prompt_maps, normalised by
their mean as the answer's maps are by theirs) and grounded with the engine's modes (point /
entities / auto); with proposals, the command's words then choose the target and its landmark
among them (refer.resolve_pair), which attention alone does not.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ros_ground.command import phrase_reading as reading
from ros_ground.command.between import resolve_between
from ros_ground.command.colour_words import named_colours, ruled_out_spans
from ros_ground.command.conjoined import more_targets
from ros_ground.command.parse import command_phrases, placement, ruled_out
from ros_ground.command.refer import MAX_PAIR_IOU, absent, resolve_pair
from ros_ground.command.relations import command_relations, held_destination
from ros_ground.command.spatial_words import RELATION_NAMES, ordinal_of, superlative_spans
from ros_ground.geometry import upsample_map
from ros_ground.maps import normalise_maps, phrase_map, point_on_mask
from ros_ground.masks import hottest_piece, self_iou_matrix
from ros_ground.phrases import NounPhrase, tokens_in_span
from ros_ground.results import GroundedPhrase, Reference
from ros_ground.settings import TARGET_SCORE_OFF


def ground_command(engine, image, gen, cfg, proposals=None, image_key=None
                   ) -> tuple[list[GroundedPhrase], Reference]:
    """Ground the prompt's own phrases of `gen` (lmm.Generation with prompt maps) in `image`.

    Returns (phrases with char spans into `gen.prompt_text`, their Reference). Uses the engine's
    grounding of answer phrases with the prompt's tokens, spans and maps in place of the
    answer's, so every mode and option applies unchanged. With proposals and `command_words`,
    the target and its landmark get the proposals the words point to (`_resolve_target`).
    Without prompt maps (a tokenizer without offsets) there is nothing to ground: ([], none).
    """
    if not gen.prompt_token_ids or gen.prompt_maps.shape[0] != len(gen.prompt_token_ids):
        return [], Reference()
    chunks, target = command_phrases(engine.nlp, gen.prompt_text)
    if not chunks:
        return [], Reference()
    prompt_gen = replace(gen, token_ids=list(gen.prompt_token_ids), image_maps=gen.prompt_maps)
    made: list = []  # proposed here when the answer had no phrase to propose for
    phrases, _, _ = engine.ground_phrases(
        image, prompt_gen, cfg, proposals, image_key, text=gen.prompt_text,
        spans=list(gen.prompt_token_spans), chunks=chunks, proposals_out=made)
    proposals = proposals or made
    if target < 0:
        return phrases, _held_destination(engine, image, gen, cfg, chunks, phrases, proposals)
    if (index := _grounded_index(phrases, chunks[target])) < 0:
        return phrases, Reference()
    rescore = _rescorer(engine, image, cfg, image_key)
    ref = _target_reference(engine, image, gen, cfg, chunks, target, index, phrases, proposals, rescore)
    if ref.target < 0:  # nothing to act on: the robot asks, and the other objects wait with it
        return phrases, ref
    more = _more_targets(engine, image, gen, cfg, chunks, target, phrases, proposals, rescore, ref)
    return phrases, replace(ref, more_targets=more)


def _rescorer(engine, image, cfg, image_key):
    """rescore(proposals, heat, token ids, article): the engine's entity scores of those
    proposals (the ones a choice is among) for those tokens of the prompt, [N] (`_resolve_target`)."""
    def rescore(proposals, heat: np.ndarray, token_ids: list[int], article: bool = False) -> np.ndarray:
        # "which mug" scored as "the mug", the wording the model was trained on, not "mug"
        ids = engine.lmm.tokenizer("the", add_special_tokens=False)["input_ids"] if article else []
        return engine.entities.scores(
            image, [heat], proposals, [ids + token_ids], scoring=cfg.entity_scoring,
            image_key=image_key, token_window=cfg.entity_token_window)[0]
    return rescore


def _threshold(engine, gen, cfg, chunk: NounPhrase) -> tuple[bool, float | None]:
    """(whether `chunk` names a kind, the min_target_score that applies to it or None): the
    threshold applies to a phrase that names a kind, in words the model reads."""
    kind = reading.names_a_kind(engine, gen, chunk)
    on = cfg.min_target_score > TARGET_SCORE_OFF and kind and reading.all_known(engine, gen, chunk)
    return kind, cfg.min_target_score if on else None


def _target_reference(engine, image, gen, cfg, chunks, target: int, index: int,
                      phrases: list[GroundedPhrase], proposals, rescore) -> Reference:
    """The Reference of the command whose target is `chunks[target]` (`phrases[index]`): its
    relation's landmark or destination, each grounded in place among the proposals by its words
    (`_resolve_target`), or the phrase the frame holds nothing of (`absent`, no target)."""
    if not reading.readable(engine, gen, chunks[target]):
        # its grounding is that of "the" or "red" alone; a robot must find it absent, not near
        _clear(phrases[index])
        return Reference(absent=index)
    rel = command_relations(gen.prompt_text, chunks, target, placement(engine.nlp, gen.prompt_text))
    roles = {k: (chunks[k], found) for k in (rel.landmark, rel.destination, rel.destination_landmark,
                                             rel.second)
             if k >= 0 and (found := _grounded_index(phrases, chunks[k])) >= 0}
    for chunk, found in roles.values():
        if not reading.readable(engine, gen, chunk):
            # "left of the giraffe" says nothing about which mug, "put it behind the giraffe" where
            return _without_target(phrases, index, found)
    landmark, destination, destination_landmark, second = (
        roles.get(k) for k in (rel.landmark, rel.destination, rel.destination_landmark, rel.second))
    # "between the mug and *the duck*": where the target goes, or which one it is
    put_between = rel.place == "between"
    other = -1 if second is None else second[1]
    if destination is not None:
        ref = Reference(index, destination[1], rel.place, True, second_landmark=other if put_between else -1)
    elif landmark is not None:
        ref = Reference(index, landmark[1], RELATION_NAMES[rel.relation], second_landmark=other)
    else:
        ref = Reference(index)
    if proposals and cfg.command_words and phrases[index].entity_ids:
        kind, min_score = _threshold(engine, gen, cfg, chunks[target])
        shunned = _shunned(engine, gen, chunks, phrases)
        missing = _resolve_target(
            image, gen, cfg, chunks[target], rel.after, index, phrases,
            [p for p in proposals if p.id not in shunned],
            min_score, landmark, destination,
            destination_landmark, any_object=not kind, rescore=rescore,
            second=None if put_between else second, destination_second=second if put_between else None)
        if missing >= 0:
            return _without_target(phrases, index, missing)
    return ref


def _more_targets(engine, image, gen, cfg, chunks, target: int, phrases: list[GroundedPhrase],
                  proposals, rescore, ref: Reference) -> tuple[int, ...]:
    """Indices into `phrases` of the objects joined to the target by "and" ("the blue cube" of
    "pick up the red mug and the blue cube": conjoined.more_targets), each given, in place, the
    proposal its own words point to among those no earlier one took (`_resolve_target`, no
    relation), or emptied when the frame holds nothing it can be."""
    excluded = set(ruled_out(engine.nlp, gen.prompt_text)) | {
        k for k, c in enumerate(chunks) if _grounded_index(phrases, c) in (ref.landmark, ref.second_landmark)}
    # the objects taken, by mask: SAM proposes one object under several ids (helper-110: "the
    # duck and the other duck" gave the one duck twice)
    taken, shunned, out = [phrases[ref.target].mask], _shunned(engine, gen, chunks, phrases), []
    for k in more_targets(gen.prompt_text, chunks, target, excluded):
        if (j := _grounded_index(phrases, chunks[k])) < 0:
            continue
        out.append(j)
        overlaps = self_iou_matrix([p.mask for p in proposals] + taken)[:len(proposals), len(proposals):]
        free = [p for p, o in zip(proposals, overlaps) if p.id not in shunned and (o <= MAX_PAIR_IOU).all()]
        if not reading.readable(engine, gen, chunks[k]) or (proposals and not free):
            _clear(phrases[j])
        elif free and cfg.command_words and phrases[j].entity_ids:
            kind, min_score = _threshold(engine, gen, cfg, chunks[k])
            if _resolve_target(image, gen, cfg, chunks[k], gen.prompt_text[chunks[k].char_end:], j, phrases,
                               free, min_score, any_object=not kind, rescore=rescore) >= 0:
                _clear(phrases[j])
        if phrases[j].mask.any():
            taken.append(phrases[j].mask)
    return tuple(out)


def _shunned(engine, gen, chunks, phrases: list[GroundedPhrase]) -> set[int]:
    """The entity ids the phrases' joint assignment gave those the command rules out, never a
    target's: "the cube, *not the mug*" would otherwise take the mug the sim model's "cube"
    scores highest (a colour ruled out, "not the red one", is the colour rule's: refer.py)."""
    return {e for k in ruled_out(engine.nlp, gen.prompt_text) if not named_colours(chunks[k].text)[0]
            and (j := _grounded_index(phrases, chunks[k])) >= 0 for e in phrases[j].entity_ids}


def _held_destination(engine, image, gen, cfg, chunks, phrases, proposals) -> Reference:
    """The Reference of a command about what the robot holds ("put it on the tray": no target,
    relations.held_destination): the destination grounded by its words and the relation
    after it (with proposals and `command_words`), or absent when the frame holds nothing it
    can be; an empty one for any other command without a target."""
    rel = held_destination(gen.prompt_text, chunks)
    found = -1 if rel is None else _grounded_index(phrases, chunks[rel.destination])
    if found < 0:
        return Reference()
    destination = (chunks[rel.destination], found)
    destination_landmark, second = (
        (chunks[k], at) if k >= 0 and (at := _grounded_index(phrases, chunks[k])) >= 0 else None
        for k in (rel.destination_landmark, rel.second))
    for role in (destination, destination_landmark, second):
        # "between the mug and the giraffe"
        if role is not None and not reading.readable(engine, gen, role[0]):
            _clear(phrases[role[1]])
            return Reference(absent=role[1])
    if proposals and cfg.command_words and phrases[found].entity_ids:
        heats: dict = {}
        missing = _absent_role(image, [p.mask for p in proposals], gen, _heat_of(gen, cfg), heats,
                               destination, destination_landmark, second)
        if missing >= 0:
            _clear(phrases[missing])
            return Reference(absent=missing)
        _resolve_destination(image, gen, cfg, phrases, proposals, destination,
                             destination_landmark, None, heats, second)
    return Reference(landmark=found, relation=rel.place, destination=True,
                     second_landmark=-1 if second is None else second[1])


def _without_target(phrases: list[GroundedPhrase], target: int, missing: int) -> Reference:
    """The Reference of a command whose phrase `phrases[missing]` (its target or landmark) the
    frame holds nothing of: that phrase named absent, and it and the target emptied in place,
    as neither grounding is of what the command names (no mask, 3-D position or marker)."""
    _clear(phrases[missing])
    _clear(phrases[target])
    return Reference(absent=missing)


def _clear(phrase: GroundedPhrase) -> None:
    """Empty `phrase`'s grounding in place: no mask, point, proposal or score (so no 3-D
    position, marker or overlay either)."""
    phrase.mask = np.zeros_like(phrase.mask, dtype=bool)
    phrase.point, phrase.entity_ids, phrase.entity_scores, phrase.score = None, [], {}, 0.0


def _resolve_target(image, gen, cfg, chunk: NounPhrase, after: str, target: int,
                    phrases: list[GroundedPhrase], proposals, min_score: float | None,
                    landmark: tuple[NounPhrase, int] | None = None,
                    destination: tuple[NounPhrase, int] | None = None,
                    destination_landmark: tuple[NounPhrase, int] | None = None,
                    any_object: bool = False, rescore=None,
                    second: tuple[NounPhrase, int] | None = None,
                    destination_second: tuple[NounPhrase, int] | None = None) -> int:
    """Give the target phrase (`phrases[target]`, of `chunk`; `after`: relations') the
    proposal its words and entity scores point to (refer.resolve_pair), in place, and its
    landmark phrase the one the relation was judged against; a destination ("put the cube
    behind *the leftmost tray*") gets the proposal its own words point to, among the others,
    with the relation after it that says which (`destination_landmark`: "the tray *left of the
    duck*"). `landmark`, `destination`, `destination_landmark`: (phrase, index in `phrases`),
    None for none. Returns -1, or, changing nothing, the index in `phrases` of the target or of
    one of these when the frame holds nothing it can be (refer.absent; with `min_score` for the
    target, by its colour words alone for the others, whose wording is seldom the model's own:
    "left of the tray" scores under 0.15 on the sim model's purple trays): "the mug left of
    *the purple duck*" with nothing purple in view says nothing about which mug, and "put the
    mug behind *the purple duck*" nowhere to put it. `second`: the landmark's other one when the
    target is "between" the two (between.resolve_between), the landmark itself when one phrase
    names both ("between *the two mugs*"); `destination_second`: the same of a destination ("put
    the cube between the mug and *the duck*"). `any_object`: the target names no kind
    (refer.resolve_pair). `rescore(proposals, heat, token ids)`: the engine's entity scores of the
    proposals for those tokens, with which a target that rules a colour out ("the *non-red*
    mug") is scored without those words (`phrase_reading.tokens_without`)."""
    heat = _heat_of(gen, cfg)
    target_heat = heat(chunk)
    if target_heat is None:
        return -1  # no maps to score by: the phrase keeps its grounding
    masks = [p.mask for p in proposals]
    stability = np.array([p.stability for p in proposals], dtype=np.float64)
    scores = _role_scores(cfg, phrases, proposals, (chunk, target))
    # the kind's own scores: without ruled-out colours ("non-red") and superlatives ("rightmost")
    kept = reading.tokens_without(gen, cfg, chunk, ruled_out_spans(chunk.text)
                                  + superlative_spans(chunk.text) + reading.question_spans(chunk.text)) \
        if scores is not None and rescore is not None else []
    if kept:
        scores = np.asarray(rescore(proposals, target_heat, [gen.prompt_token_ids[i] for i in kept],
                                    bool(reading.question_spans(chunk.text))), dtype=np.float64)
    # the threshold is a retrieval cosine (settings.check_combination): none without those scores
    if absent(image, masks, chunk.text, scores, None if scores is None else min_score,
              after_text=after):
        return target
    heats: dict = {}
    missing = _absent_role(image, masks, gen, heat, heats, landmark, destination,
                           destination_landmark, second, destination_second)
    if missing >= 0:
        return missing
    landmark_heat = heats.get(landmark[1]) if landmark is not None else None
    # "the cube between the mug and the duck": the three chosen together
    between = [(heats[k], c.text, _role_scores(cfg, phrases, proposals, (c, k)),
                gen.prompt_text[c.char_end:]) for c, k in (landmark, second)[:1 + (second != landmark)]
               ] if second is not None and landmark is not None else []
    if between and all(heat is not None for heat, *_ in between):
        choice, paired, paired_second = resolve_between(
            image, masks, target_heat, chunk.text, after, between, scores=scores, stability=stability,
            any_object=any_object)
    else:
        (choice, paired), paired_second = resolve_pair(
            image, masks, target_heat, chunk.text, after, landmark_heat,
            landmark[0].text if landmark is not None else "", scores=scores,
            landmark_scores=_role_scores(cfg, phrases, proposals, landmark), stability=stability,
            any_object=any_object,  # "left of the cube *that is green*": the landmark's colour
            landmark_after=gen.prompt_text[landmark[0].char_end:] if landmark is not None else ""), None
    if landmark_heat is not None and phrases[landmark[1]].entity_ids:
        both = second is not None and second[1] == landmark[1]  # "the two mugs": its mask holds the two
        _give(phrases[landmark[1]], proposals, paired, landmark_heat, also=paired_second if both else None)
    if between and second[1] != landmark[1] and phrases[second[1]].entity_ids:
        _give(phrases[second[1]], proposals, paired_second, heats[second[1]])
    if choice is None and (paired is not None or ordinal_of(chunk.text, after) > 1):
        # "the mug left of the tray" with none left of it, "the fourth mug from the left" of three
        return target
    _give(phrases[target], proposals, choice, target_heat, one_piece=True)
    if destination is not None:
        _resolve_destination(image, gen, cfg, phrases, proposals, destination,
                             destination_landmark, choice, heats, destination_second)
    return -1


def _heat_of(gen, cfg):
    """A function from a prompt phrase to its attention map at the image's size (None when no
    token of `gen`'s prompt lies in it)."""
    maps = normalise_maps(np.asarray(gen.prompt_maps, dtype=np.float32), enabled=cfg.normalise)

    def heat(chunk: NounPhrase):
        indices = tokens_in_span(list(gen.prompt_token_spans), chunk.char_start, chunk.char_end)
        return upsample_map(phrase_map(maps, indices), gen.geometry) if indices else None
    return heat


def _absent_role(image, masks, gen, heat, heats: dict,
                 *roles: tuple[NounPhrase, int] | None) -> int:
    """The index in the phrases of the first of `roles` ((phrase, index) or None: a landmark, a
    destination, its landmark) the frame holds nothing of (refer.absent, by its colour words
    alone: their wording is seldom the model's own), else -1; each role's attention map goes
    into `heats` on the way (by `heat`, `_heat_of`), for the choice that follows."""
    for role in roles:
        if role is not None and (heats.setdefault(role[1], heat(role[0]))) is not None and absent(
                image, masks, role[0].text, None, after_text=gen.prompt_text[role[0].char_end:]):
            return role[1]
    return -1


def _role_scores(cfg, phrases: list[GroundedPhrase], proposals,
                 role: tuple[NounPhrase, int] | None) -> np.ndarray | None:
    """The entity scores of the role's phrase (`_scores_of`) under the engine's entity_scoring;
    None for none, or for attention scoring: resolve_pair then scores the prefill maps itself."""
    if role is None or cfg.entity_scoring == "attention":
        return None
    return _scores_of(phrases[role[1]], proposals)


def _resolve_destination(image, gen, cfg, phrases: list[GroundedPhrase], proposals,
                         destination: tuple[NounPhrase, int],
                         destination_landmark: tuple[NounPhrase, int] | None,
                         choice: int | None, heats: dict,
                         second: tuple[NounPhrase, int] | None = None) -> None:
    """Give the destination phrase the proposal its words and the relation after it point to
    (refer.resolve_pair), among the proposals other than the target's `choice` (None: no
    target, as "put *it* on the tray"), in place; the destination's landmark the one that
    relation was judged against. With `second`, the other place of "between" ("between the mug
    and *the duck*"; the destination itself for "between *the two mugs*"), the two are chosen
    together, two objects (between.resolve_between with no target; a phrase naming both gets
    the two). `heats`: phrase index -> attention map of each (`_absent_role` fills it)."""
    if heats.get(destination[1]) is None or (second is not None and heats.get(second[1]) is None):
        return
    masks = [p.mask for p in proposals]
    stability = np.array([p.stability for p in proposals], dtype=np.float64)
    ious = None if choice is None else self_iou_matrix(masks)[choice]
    others = [i for i in range(len(masks)) if ious is None or (i != choice and ious[i] <= MAX_PAIR_IOU)]
    if second is not None:
        roles = [destination, second][:1 + (second[1] != destination[1])]
        _, a, b = resolve_between(image, [masks[i] for i in others], None, "", "", [
            (heats[k], c.text, None if (r := _role_scores(cfg, phrases, proposals, (c, k))) is None
             else r[others], gen.prompt_text[c.char_end:]) for c, k in roles], stability=stability[others])
        a, b = (None if x is None else others[x] for x in (a, b))
        k = destination[1]
        if phrases[k].entity_ids:  # "between the two mugs": its mask holds the two
            _give(phrases[k], proposals, a, heats[k], also=b if len(roles) == 1 else None)
        if len(roles) == 2 and phrases[second[1]].entity_ids:
            _give(phrases[second[1]], proposals, b, heats[second[1]])
        return
    of = destination_landmark
    of_heat = heats.get(of[1]) if of is not None else None
    d_scores = _role_scores(cfg, phrases, proposals, destination)
    of_scores = _role_scores(cfg, phrases, proposals, of)
    found, found_of = resolve_pair(
        image, [masks[i] for i in others], heats[destination[1]], destination[0].text,
        gen.prompt_text[destination[0].char_end:], of_heat, of[0].text if of is not None else "",
        scores=None if d_scores is None else d_scores[others],
        landmark_scores=None if of_scores is None else of_scores[others],
        stability=stability[others])
    if phrases[destination[1]].entity_ids:
        _give(phrases[destination[1]], proposals, None if found is None else others[found],
              heats[destination[1]])
    if of_heat is not None and found_of is not None and phrases[of[1]].entity_ids:
        _give(phrases[of[1]], proposals, others[found_of], of_heat)


def _give(phrase: GroundedPhrase, proposals, choice: int | None, heat: np.ndarray,
          one_piece: bool = False, also: int | None = None) -> None:
    """Ground `phrase` with `proposals[choice]` in place (nothing when `choice` is None), and
    with `proposals[also]` too when given (the union: "the two mugs"); its point is the hottest
    pixel of `heat` on the mask, as entity mode gives; `one_piece` keeps only the mask's
    `hottest_piece` (a command's target)."""
    if choice is None:
        return
    chosen = proposals[choice]
    mask = hottest_piece(chosen.mask, heat) if one_piece else chosen.mask.copy()
    phrase.mask, phrase.score, phrase.entity_ids = mask, float(chosen.score), [chosen.id]
    if also is not None and also != choice:
        phrase.mask, phrase.entity_ids = mask | proposals[also].mask, [chosen.id, proposals[also].id]
    phrase.entity_scores = {}
    if mask.any():
        phrase.point = point_on_mask(heat, mask)


def _grounded_index(phrases: list[GroundedPhrase], chunk: NounPhrase) -> int:
    """Index of the grounded phrase of `chunk` (same char span) in `phrases`, -1 if none."""
    span = (chunk.char_start, chunk.char_end)
    return next((i for i, p in enumerate(phrases) if (p.char_start, p.char_end) == span), -1)


def _scores_of(phrase: GroundedPhrase | None, proposals) -> np.ndarray | None:
    """float [N]: `phrase`'s entity score of each proposal (the engine's entity_scoring), None
    when it has none for some proposal (then refer.resolve_pair scores by attention)."""
    if phrase is None or any(p.id not in phrase.entity_scores for p in proposals):
        return None
    return np.array([phrase.entity_scores[p.id] for p in proposals], dtype=np.float64)
