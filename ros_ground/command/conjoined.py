"""The other objects a command is about beside its target: "pick up the red mug *and the blue cube*".

A command names one target (parse.command_phrases), but people join several: "grab the mug
and the duck", "bring me the mug, the cube and the duck", "put the mug and the cube on the
tray". A robot given only the first would drop the others without a word, so they are read
here, from the words between the phrases alone: the dependency parse attaches a second object
now to the first ("cube" conj of "mug"), now to the verb ("... and then the cube"), or as a
second direct object ("... as well as the cube"), while the words between the two phrases say
the same thing every time.
"""

from __future__ import annotations

import re

from ros_ground.command.spatial_words import side_after
from ros_ground.phrases import NounPhrase

# words that join objects: "and" ("an", "n" of speech to text), "plus", "as well as"; "or" joins
# alternatives, one of which is the target, so it joins none
_JOINING = r"and|an|n|plus|as\s+well\s+as|along\s+with|together\s+with"
# what may stand between two joined objects: a comma, a joining word or "&" (with "then",
# "also", "too")
_FILLERS = r"(?:(?:uh+|um+|erm?|ah+)\b[\s,]*)*"  # speech's: "the mug and *uh* and the ball"
_JOINER = re.compile(r"\s*(?:,\s*)?" + _FILLERS + r"(?:(?:" + _JOINING + r"|&)(?:\s+(?:then|also|too))?"
                     r"[\s,]*)?" + _FILLERS + r"(?:(?:" + _JOINING + r")\s*)?(?:both\s+)?", re.IGNORECASE)
# at least one of the gaps must say "and": a comma alone also sets off an apposition ("the mug,
# the red one") or a correction ("the mug, the cube I mean")
_AND = re.compile(r"\b(?:" + _JOINING + r")\b|&", re.IGNORECASE)
# a phrase that is the subject of a clause of its own: "grab the mug and *the cube stays* here"
_OWN_CLAUSE = re.compile(r"[\s,]*(?:is|are|was|were|stays?|remains?|will|would|can|could|should|must|may|"
                         r"might|has|have|goes|sits?|whichever|whatever)\b", re.IGNORECASE)
_DETERMINERS = frozenset("the a an this that these those".split())
# the words that may follow an object a command joins: what joins, places, qualifies or times it
# ("... and the cube *on* the tray", "*too*", "*please*", "*if* you can"); any other word right
# after it is most likely its own verb ("and *the ball falls*", "and *Sara grabs* the ball")
_MAY_FOLLOW = frozenset(
    "and or n an nor plus but then also too as well please pls plz now first next last again instead "
    "quickly carefully gently slowly here there together both all right left on onto in into inside "
    "at from with without for of by near beside behind under underneath beneath above below over to "
    "towards toward next between that which who whose if when once unless so because i you me us it "
    "them thanks thank thx ty asap one ones".split())
_NEXT_WORD = re.compile(r"[ \t]*([A-Za-z']+)")
# a second clause that takes another object into the robot's hand: "pick up the mug *and grab* the
# cube", "grab the mug*, then pick up* the ball". Only verbs of taking: a clause that moves or
# places its object ("and push the cube", "and put the cube on the tray") asks for a destination
# of its own, and a response holds one
_TAKING = (r"pick\s+up|pick|grab|take|get|fetch|bring(?:\s+me)?|hand\s+me|give\s+me|pass\s+me|lift|"
           r"grasp|collect|retrieve")
_AGAIN = re.compile(r"\s*(?:[,.;]\s*)?(?:(?:and|an|n|&)\s+)?(?P<then>then|also|next|after\s+that)?[,\s]*"
                    r"(?:please\s+)?(?:" + _TAKING + r")(?:\s+(?:up|out|too|also))?\s*", re.IGNORECASE)
# a clause that takes an object back: "grab the mug, and then grab the cube *instead*"
_INSTEAD = re.compile(r"[\s,]*(?:instead|rather)\b", re.IGNORECASE)


def more_targets(text: str, chunks: list[NounPhrase], target: int,
                 excluded: tuple[int, ...] | set[int] = (), clauses: bool = True) -> tuple[int, ...]:
    """Indices into `chunks` (the command's phrases in order, char spans into `text`) of the
    objects joined to `chunks[target]` by "and": "the blue cube" of "pick up the red mug and the
    blue cube", "the cube" and "the duck" of "bring me the mug, the cube and the duck"; () when
    none, or when `target` is -1.

    The phrases after the target are taken while only a comma or a joining word stands between
    each and the one before it (not a space alone: "hand the man the mug"), after a side of the
    picture that is its own words ("the mug *on the left* and the cube": spatial_words.side_after),
    or a second clause of taking ("the mug *and grab* the cube", "the mug. *Then pick up* the
    cube"; not "... the cube instead"), and only if some gap says "and" or "then" (a comma alone
    also sets off "the mug, the red one"). `excluded`: indices never
    taken, nor read past: the phrases the command rules out (parse.ruled_out: "the cube, *not
    the mug*", whose gap is no joiner anyway), its landmark and destination. A phrase after a
    relation ("the mug left of the tray and the duck": of the tray, or of the mug?) is not
    taken: the gap before it holds the relation. `clauses`: False takes no second clause's
    object, only the phrases joined to the target's own (what a ruled-out phrase takes with it:
    "don't grab the mug *and the cube*", not "leave the mug and take *the cube*").
    """
    if not 0 <= target < len(chunks):
        return ()
    taken: list[int] = []
    said_and = False
    previous = chunks[target]
    for k in range(target + 1, len(chunks)):
        gap = " ".join(text[previous.char_end:chunks[k].char_start].split())
        gap = gap[side_after(gap.lower()):]  # "the mug *on the left* and the cube": its own words
        again = clauses and _AGAIN.fullmatch(gap)
        after = _NEXT_WORD.match(text, chunks[k].char_end)
        if k in excluded or not gap.strip() or not (_JOINER.fullmatch(gap) or again) or _OWN_CLAUSE.match(
                text, chunks[k].char_end) or again and _INSTEAD.match(text, chunks[k].char_end) or (
                after and after.group(1).lower() not in _MAY_FOLLOW):
            break
        said_and |= bool(_AND.search(gap) or again and (again.group("then") or _AND.search(gap)))
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
