"""Commands as a tabletop robot's users type or say them (tests/data/spoken_commands.yaml),
read by the parser as command.grounding.ground_command reads them, field by field against what
a human means. The text alone: no model, so each case is the parser's reading and nothing else."""

from pathlib import Path

import pytest
import yaml

from ros_ground.command.colour_words import named_colours
from ros_ground.command.parse import command_phrases, placement
from ros_ground.command.relations import command_relations, held_destination
from ros_ground.command.spatial_words import RELATION_NAMES, ordinal_of, superlative_of
from ros_ground.phrases import load_spacy

CASES = yaml.safe_load((Path(__file__).parent / "data" / "spoken_commands.yaml").read_text())


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


def read(nlp, text: str) -> dict:
    """What the parser reads in `text`, in the corpus's fields."""
    chunks, target = command_phrases(nlp, text)
    out = {"target": None, "relation": None, "landmark": None, "second": None, "destination": False,
           "superlative": None, "ordinal": 1, "colours": [], "excluded_colours": []}
    if target < 0:
        rel = held_destination(text, chunks)  # "put it in the box": where the held object goes
        if rel is not None:
            out.update(landmark=chunks[rel.destination].text.lower(), relation=rel.place, destination=True,
                       second=chunks[rel.second].text.lower() if rel.second >= 0 else None)
        return out
    rel = command_relations(text, chunks, target, placement(nlp, text))
    phrase = chunks[target].text
    out["target"] = phrase.strip().lower()
    if rel.destination >= 0:
        out.update(landmark=chunks[rel.destination].text.lower(), relation=rel.place, destination=True)
    elif rel.landmark >= 0:
        out.update(landmark=chunks[rel.landmark].text.lower(), relation=RELATION_NAMES[rel.relation])
    after = rel.after
    if rel.second >= 0 and (rel.destination < 0 or rel.place == "between"):  # "and *the duck*"
        out["second"] = chunks[rel.second].text.lower()
        after = after.replace(chunks[rel.second].text, " ", 1)  # its words are its own, as in between.py
    which_landmark = "" if out["destination"] else out["landmark"] or ""
    out["superlative"] = superlative_of(phrase, after, which_landmark)
    out["ordinal"] = ordinal_of(phrase, rel.after)
    named, excluded = named_colours(phrase, rel.after)
    out["colours"], out["excluded_colours"] = sorted(named), sorted(excluded)
    return out


def _expected(case: dict) -> dict:
    return {"target": case.get("target"), "relation": case.get("relation"),
            "landmark": case.get("landmark"), "second": case.get("second"),
            "destination": bool(case.get("destination")),
            "superlative": case.get("superlative"), "ordinal": case.get("ordinal", 1),
            "colours": sorted(case.get("colours", [])),
            "excluded_colours": sorted(case.get("excluded_colours", []))}


def fields(case: dict, got: dict) -> list[str]:
    """The fields `case` decides: with no target either way only the target and a held object's
    destination; colours only where the case names them."""
    decided = ["target", "relation", "landmark", "second", "destination"]
    if got["target"] is not None or case.get("target") is not None:
        decided += ["superlative", "ordinal"]
        decided += [f for f in ("colours", "excluded_colours") if f in case]
    return decided


@pytest.mark.parametrize("case", [
    pytest.param(c, id=f"{i}-{c['kind']}", marks=[pytest.mark.xfail(
        strict=True, reason=f"read wrong: {c['read_wrong']}")] if "read_wrong" in c else [])
    for i, c in enumerate(CASES)])
def test_spoken_command(nlp, case):
    got, expected = read(nlp, case["say"]), _expected(case)
    decided = fields(case, got)
    assert {f: got[f] for f in decided} == {f: expected[f] for f in decided}, case["say"]


def test_corpus_is_well_formed():
    known = {"say", "kind", "target", "relation", "landmark", "second", "destination", "superlative",
             "ordinal", "colours", "excluded_colours", "read_wrong"}
    assert len(CASES) > 400
    assert len({c["say"] for c in CASES}) == len(CASES)
    for c in CASES:
        assert set(c) <= known, c
        assert c.get("target") is None or c["target"] == c["target"].lower(), c


def mark(path: Path = Path(__file__).parent / "data" / "spoken_commands.yaml") -> None:
    """Rewrite each case's `read_wrong` mark from what the parser reads now (after a parser
    change: `.venv/bin/python tests/test_command_corpus.py`), keeping the header comment."""
    text = path.read_text()
    header = text[:text.index("\n- ") + 1]
    nlp_ = load_spacy()
    cases = yaml.safe_load(text)
    for case in cases:
        case.pop("read_wrong", None)
        got, expected = read(nlp_, case["say"]), _expected(case)
        wrong = [f for f in fields(case, got) if got[f] != expected[f]]
        if wrong:
            case["read_wrong"] = "; ".join(f"{f} {got[f]!r}" for f in wrong)
    path.write_text(header + yaml.safe_dump(cases, sort_keys=False, allow_unicode=True, width=110))
    print(f"{sum('read_wrong' in c for c in cases)} of {len(cases)} read wrong")


if __name__ == "__main__":
    mark()
