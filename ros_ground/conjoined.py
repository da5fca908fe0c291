"""The other objects a command is about beside its target: "pick up the red mug *and the blue cube*".

A command names one target (command.command_phrases), but people join several: "grab the mug
and the duck", "bring me the mug, the cube and the duck", "put the mug and the cube on the
tray". A robot given only the first would drop the others without a word, so they are read
here, from the words between the phrases alone: the dependency parse attaches a second object
now to the first ("cube" conj of "mug"), now to the verb ("... and then the cube"), or as a
second direct object ("... as well as the cube"), while the words between the two phrases say
the same thing every time.
"""

from __future__ import annotations

import re

from ros_ground.phrases import NounPhrase

# words that join objects: "and" ("an", "n" of speech to text), "plus", "as well as"; "or" joins
# alternatives, one of which is the target, so it joins none
_JOINING = r"and|an|n|plus|as\s+well\s+as|along\s+with|together\s+with"
# what may stand between two joined objects: a comma, a joining word or "&" (with "then",
# "also", "too")
_JOINER = re.compile(r"\s*(?:,\s*)?(?:(?:" + _JOINING + r"|&)(?:\s+(?:then|also|too))?\s*)?(?:both\s+)?",
                     re.IGNORECASE)
# at least one of the gaps must say "and": a comma alone also sets off an apposition ("the mug,
# the red one") or a correction ("the mug, the cube I mean")
_AND = re.compile(r"\b(?:" + _JOINING + r")\b|&", re.IGNORECASE)
# a phrase that is the subject of a clause of its own: "grab the mug and *the cube stays* here"
_OWN_CLAUSE = re.compile(r"[\s,]*(?:is|are|was|were|stays?|remains?|will|would|can|could|should|must|may|"
                         r"might|has|have|goes|sits?|whichever|whatever)\b", re.IGNORECASE)
_DETERMINERS = frozenset("the a an this that these those".split())


def more_targets(text: str, chunks: list[NounPhrase], target: int,
                 excluded: tuple[int, ...] | set[int] = ()) -> tuple[int, ...]:
    """Indices into `chunks` (the command's phrases in order, char spans into `text`) of the
    objects joined to `chunks[target]` by "and": "the blue cube" of "pick up the red mug and the
    blue cube", "the cube" and "the duck" of "bring me the mug, the cube and the duck"; () when
    none, or when `target` is -1.

    The phrases after the target are taken while only a comma or a joining word stands between
    each and the one before it (not a space alone: "hand the man the mug"), and only if some gap
    says "and" (a comma alone also sets off "the mug, the red one"). `excluded`: indices never
    taken, nor read past: the phrases the command rules out (command.ruled_out: "the cube, *not
    the mug*", whose gap is no joiner anyway), its landmark and destination. A phrase after a
    relation ("the mug left of the tray and the duck": of the tray, or of the mug?) is not
    taken: the gap before it holds the relation.
    """
    if not 0 <= target < len(chunks):
        return ()
    taken: list[int] = []
    said_and = False
    previous = chunks[target]
    for k in range(target + 1, len(chunks)):
        gap = text[previous.char_end:chunks[k].char_start]
        if k in excluded or not gap.strip() or not _JOINER.fullmatch(gap) or _OWN_CLAUSE.match(
                text, chunks[k].char_end):
            break
        said_and |= bool(_AND.search(gap))
        taken.append(k)
        previous = chunks[k]
    if not said_and:
        return ()
    # ruled out later by its words ("the mug and the cube, *not the cube*"), or the target said
    # again alone ("the mug and the cube? no, *just the mug*")
    ruled = {_words(chunks[k].text) for k in excluded}
    said_again = r"\b(?:just|only)\s+(?:the\s+|a\s+|an\s+)?" + r"\s+".join(map(re.escape, _words(
        chunks[target].text))) + r"\b"
    if re.search(said_again, text[chunks[taken[-1]].char_end:], re.IGNORECASE):
        return ()
    return tuple(k for k in taken if _words(chunks[k].text) not in ruled)


def _words(phrase: str) -> tuple[str, ...]:
    """The words of `phrase`, lower-cased, without determiners: "the cube" and "a Cube" are one."""
    return tuple(w for w in re.findall(r"\w+", phrase.lower()) if w not in _DETERMINERS)
