"""What a command asks of the robot: to act on its target, only to find or tell about it, or
neither, read from its words alone.

A robot client acts on `target` only when the command asks it to: "Where is the blue cube?"
and "Pick up the blue cube." ground the same phrase as the target, and a client forwarding its
user's words cannot tell them apart by `target`. So `act` is given only to a request, and
anything else fails safe, to `locate` or `none`:

- `act`: a verb that acts on things (`ACTING_VERBS`: "pick up", "grab", "hand me", "put",
  "push") asked of the robot, on the target or on "it" standing for it ("find the mug and pick
  *it* up"), or, naming no target, on what the robot holds ("put it on the tray"); or the
  target asked for ("I want the mug", "can I have the mug?"). Asked: the verb in its base form
  with no subject ("pick up the mug", "please grab the mug", "go get the mug"), with "you"
  after "can / could / will / would" ("can you grab the mug?") or before "should / must" ("you
  should grab it"), or what "I want / need" wants ("I want you to pick up the mug"), and
  neither it nor a verb above it negated ("don't", "never", "under no circumstances") or
  stopping ("stop", "refrain from"), with no question word ("how would you pick up ...?"), not
  put off ("if I say so", "later", "after lunch", "if Bob comes back", "whenever I clap", "on
  monday"), said to someone else ("john, grab the mug", "hey mike hand me ..."), words to
  repeat or note ("repeat after me: ...", "todo: ..."), doubted or supposed
  ("can you even lift it", "hypothetically") nor asked of a kind by its examples ("things like
  the box"), with no relation that no reading honours ("the mug *not next to* the tray",
  "*farthest from* the tray": the target would be any mug), and with an object that is some
  thing ("neither the mug nor the duck", "none of
  them", "a second" are none);
- `none`: no target and nothing to put ("Describe the scene.", "How many mugs are there?"),
  an act forbidden ("Don't pick up the mug.", "I don't want you to touch the knife."), or a
  request taken back after it ("Pick up the mug. Actually, don't.", "... nah, leave it");
- `locate`: every other command with a target: looked for, asked about, described ("where is",
  "find", "describe", "is there"), a bare phrase ("the red mug"), and a question or statement
  about acting ("did you pick up the mug?", "should I grab it?", "I'll grab the mug myself").

The intent is the words', whatever the image holds: a command whose target is `absent` keeps
`act`, and the robot cannot act on it. Measured on 1684 commands four trials wrote to break it
(tests/data/intent_commands.yaml): docs/MEASUREMENTS.md, "What a command asks of the robot".
"""

from __future__ import annotations

import functools
import re

from ros_ground.command import corrections
from ros_ground.command.parse import (
    CARRYING_VERBS,
    LOOKING_VERBS,
    PLACEMENT_VERBS,
    TRAILING_PLEASE,
    command_phrases,
    command_pieces,
    placement,
    ruled_out,
    target_rule,
)
from ros_ground.command.piece_phrases import NOT_OBJECTS, blank_symbols
from ros_ground.command.relations import held_destination

INTENTS = ("none", "locate", "act")  # GroundedResponse.INTENT_* are their indices
# verbs are matched by their words, not lemmas (phrases.load_spacy leaves the lemmatizer out): a
# verb asked of the robot is in its base form, and the verbs above it are checked as said
# verbs that act on a thing; any other verb ("detect", "track", "inspect") only looks at it
ACTING_VERBS = (PLACEMENT_VERBS | frozenset(CARRYING_VERBS) | frozenset(
    "pick pickup grab take fetch get bring hand give pass push pull lift hold grasp grip touch raise lower "
    "remove knock tip flip turn rotate open close stack sort clear empty throw toss drop move "
    "deliver collect gather retrieve return squeeze press pour wipe clean wash fill shake screw "
    "unscrew catch kick hit cut slice peel fold hang release swap tidy approach go come".split())
                ) - LOOKING_VERBS - {"leave"}  # "leave it": don't touch it; "leave it on the tray" places
# an acting verb asked again, alone before a phrase: "(never mind), *grab* (the mug)"
_ACTING_BEFORE = re.compile(r"[\s,.;:!?-]*(?:(?:just|please|then)\s+)*(?:" + "|".join(sorted(ACTING_VERBS))
                            + r")(?:\s+(?:up|me|us|out))?\s*", re.IGNORECASE)
# modals of a request: "can you grab ...?", "you should pick up ..."
_REQUEST_MODALS = frozenset("can could will would should must".split())
# verbs whose object or object clause the speaker asks for: "I want the mug", "I want you to
# pick up the mug", "help me pick up", "go get the mug"
_WANTING = frozenset("want need like wish".split())
_LEADING = frozenset("help go come try".split())
# verbs that stop or forbid what they govern: "stop grabbing", "refrain from touching"
_STOPPING = frozenset("stop quit cease refrain avoid forget forbid prohibit".split())
# words that negate a clause wherever they stand in it: "*never* touch", "under *no* circumstances"
_NEGATING = frozenset("not n't never no nobody none nothing neither nor".split())
# a request taken back after it: "Pick up the mug. Actually, don't.", "... just kidding"
_TAKEN_BACK = re.compile(
    r"(?:^|[\s.,;:!?])(?:(?:actually|wait|no|nah|oh|sorry|hmm+|um+|uh+|lol|haha|on\s+second\s+thoughts?)[\s,.]+)*"
    r"(?:don'?t(?:\s+(?:do\s+(?:it|that)|bother))?|do\s+not(?:\s+do\s+(?:it|that))?|stop|never\s*mind|"
    r"cancel(?:\s+(?:it|that))?|(?:just\s+)?kidding|forget\s+(?:about\s+)?(?:it|that)|scratch\s+that|"
    r"belay\s+that|abort|nah|no|leave\s+it(?:\s+alone)?|i'?ll\s+do\s+it\s+myself|j/?k|yeah\s+right|"
    r"not\s+really|nvm|not\s+yet|(?:i'?ve\s+|i\s+have\s+)?changed\s+my\s+mind|said\s+no\s*(?:one|body)\s+ever|"
    r"leave\s+(?:them|everything|it\s+all|all\s+of\s+it)(?:\s+alone)?)\s*[.!]*\s*$",
    re.IGNORECASE)
_PRONOUNS = frozenset("it them that this one".split())
# an act put off until a signal, or supposed: "only pick up the mug if I say so", "could you lift
# it if you wanted to"
_NOT_NOW = re.compile(r"\b(?:if|when|until|once|after)\s+i\s+(?:say|tell|give|ask)\b|"
                      r"\bif\s+you\s+(?:wanted|had\s+to|were|could)\b|"
                      # put off to a time or an event: "grab the mug later", "after lunch", "in an
                      # hour", "at 3 pm", "wait for my signal then ...", "if Bob comes back, ..."
                      r"\b(?:later|tomorrow|tonight|eventually|some\s*day|next\s+(?:week|time|month)|"
                      r"after\s+(?:lunch|dinner|breakfast|work|school|(?:i|we|he|she|they)\b)|"
                      r"in\s+(?:an?|one|two|three|five|ten|a\s+few|a\s+couple\s+of|\d+)\s+"
                      r"(?:sec(?:ond)?|min(?:ute)?|hour|day|week)s?|in\s+a\s+(?:bit|while|moment|sec(?:ond)?)|"
                      r"at\s+\d+(?::\d+\s*(?:am|pm)?|\s*(?:am|pm|o'?clock))|(?:wait|hold\s+on)\s+(?:for|until|till)|"
                      r"(?:if|when|once|unless)\s+(?!you\b|you'|possible\b|so\b|needed\b|necessary\b|there\b|it'?s\s+not\b|"
                      r"ready\b|that'?s\b|that\s+is\b)\w+)\b|"
                      # doubted or supposed, not asked: "can you even lift it", "hypothetically, could you"
                      r"\b(?:can|could)\s+you\s+(?:even|actually|really)\b|"
                      r"\b(?:hypothetically|theoretically|in\s+(?:principle|theory))\b|^\s*(?:pretty\s+)?soon\b|"
                      # an event or a day: "as soon as the light turns green", "whenever I clap",
                      # "in case of fire", "should the alarm go off", "after the meeting", "on monday"
                      r"\b(?:as\s+soon\s+as|whenever|in\s+case(?:\s+of)?)\s+(?!you\b|you'|possible\b)\w+|"
                      r"^\s*should\s+(?!i\b|we\b|you\b)\w+|\bafter\s+(?!you\b|that\b|this\b|it\b|which\b|\w+ing\b)\w+|"
                      r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|yesterday)\b|"
                      r"\bat\s+(?:noon|midnight|night|dawn|dusk)\b|\bthis\s+(?:morning|afternoon|evening)\b|"
                      # sarcasm with words for it, and the request of a game or of words to repeat
                      r"^\s*(?:yeah|ya)\s+right\b|\blike\s+i'?d\s+(?:want|ask)\b|"
                      r"^\s*(?:(?:let'?s\s+play\s+)?simon\s+says|to-?do(?:\s+list)?|note\s+to\s+self|"
                      r"repeat\s+after\s+me|say|reminder)\s*:|^\s*(?:here'?s\s+how|how\s+to)\b",
                      re.IGNORECASE)
# said to someone else in the room: "hey mike hand me the bottle", "I'm talking to Anna: ..."
_GREETINGS = ("hey", "hi", "yo", "oi")
_TO_SOMEONE_ELSE = re.compile(r"^\s*(?:" + "|".join(_GREETINGS) + r")\s+(?P<name>\w+)|"
                              r"\btalking\s+to\s+(?!you\b)\w+", re.IGNORECASE)
_ROBOT_NAMES = frozenset("robot ros bot there you guys can could would will please pls so um uh".split())
# a request broken off for a question: "pick up the red mug, no, where is the blue one?"
# a relation that rules its landmark's neighbours out, or ranks by distance the other way, which
# no reading of the command honours (relations.py reads no landmark in them): the target
# would be any object of its kind, the one excluded included ("pick up the mug *that is not next
# to* the tray", "*other than the one by* the tray", "the mug *farthest from* the tray"); of a
# placed object they say where it goes ("put it in the box, not next to the tray"), and "on" /
# "in" choose no object anyway
_UNHONOURED = re.compile(
    r"(?:\bnot|n['\u2019]?t|\bnever|\b(?:other\s+than|except(?:\s+for)?|but\s+not|not)\s+(?:the|that|those)\s+"
    r"ones?(?:\s+(?:that|which)\s+(?:is|are|'s))?)\s+(?:(?:directly|right|just|immediately)\s+)?(?:next\s+to|"
    r"beside|near|close\s+to|by|(?:to\s+the\s+)?(?:left|right)\s+of|in\s+front\s+of|behind|"
    r"between)\s+(?:the|a|an|my|your|this|that)\b|\b(?:farthest|furthest|farther|further)\s+(?:away\s+)?"
    r"from\s+(?!(?:the\s+)?(?:camera|robot)\b|you\b)", re.IGNORECASE)
_THEN_ASKED = re.compile(r"[,.;:!]\s*(?:no+|wait|actually|hmm+|sorry|oh)\b[^.!]*\?\s*$", re.IGNORECASE)
# a kind asked about by its examples: "can you pick up heavy things *like* the box"
_EXAMPLES = re.compile(r"\s*(?:like|such\s+as)\b", re.IGNORECASE)
# a command is parsed clause by clause, each in parse.py's pieces: "don't pick up the mug,
# *pick up the cube*" parsed whole hangs the second verb under the negated first, and "put the
# mug left of the tray" makes "left" a verb
_CLAUSE_END = re.compile(r"[,.;:!?]|\bthen\b", re.IGNORECASE)  # "find the mug then grab it"
# spoken fillers, and the robot called by name first, that the tagger would take for the
# sentence's subject: "hey robot grab the mug", "so um could you uh hand me the pen"
_FILLERS = re.compile(r"^\s*(?:(?:hey|ok(?:ay)?|so|well)\s+)?robot\b|\b(?:um+|uh+|erm|hmm+)\b",
                      re.IGNORECASE)
_OBJECTS = ("dobj", "obj", "dative")
# an object that is none: "*no* mug", "*none* of them", "*neither* the mug nor the duck"
_NO_OBJECT = re.compile(r"(?:no|none|neither)\b", re.IGNORECASE)
_A_SECOND = re.compile(r"(?:a|one|a\s+few|\d+)\s+sec(?:ond)?s?", re.IGNORECASE)  # "hold on *a second*"
_NO_OBJECT_BEFORE = re.compile(r"\b(?:neither|none\s+of)\s*$", re.IGNORECASE)


def about_an_object(nlp, text: str) -> bool:
    """Whether the command `text` is about an object in view the robot acts on or asks after: it
    has a target (parse.command_phrases: "pick up the red mug", "where is the tray?") or
    puts what the robot holds somewhere (`held_destination`: "put it on the tray")."""
    phrases, target = command_phrases(nlp, text)
    return target >= 0 or held_destination(text, phrases) is not None


@functools.lru_cache(maxsize=64)
def command_intent(nlp, text: str) -> str:
    """One of INTENTS for the cleaned prompt `text` (the module docstring's rule). Each (nlp,
    text) is read once, as parse.py parses it once: a robot asks the same few commands again
    and again, and this parses each clause anew."""
    rule = target_rule(nlp, text)
    chunks, target = command_phrases(nlp, text)
    held = rule is None and bool(chunks) and held_destination(text, chunks) is not None
    if rule is None and not held:
        return "none"
    if _TAKEN_BACK.search(text):
        return "none"
    unhonoured = _UNHONOURED.search(text) and not placement(nlp, text)  # "put it ..., not next to the tray"
    if _NOT_NOW.search(text) or _THEN_ASKED.search(text) or unhonoured or _said_to_another(
            text) or (
            target >= 0 and _EXAMPLES.match(text, chunks[target].char_end)):
        return "locate" if rule is not None else "none"
    # shouted commands tag as proper nouns ("PICK UP THE MUG"); "the mug please" as please's subject
    said = blank_symbols(text.lower() if text.isupper() else text)
    for words in (TRAILING_PLEASE, _FILLERS, corrections.IDIOMS):  # blanked: every offset stays the text's
        said = words.sub(lambda m: " " * len(m.group()), said)
    ends = [0, *(i for m in _CLAUSE_END.finditer(said) for i in (m.start(), m.end())), len(said)]
    clauses = [(start + a, nlp(said[start + a:start + b])) for start, end in zip(ends[::2], ends[1::2])
               if said[start:end].strip() for a, b in command_pieces(said[start:end])]
    if any(_vocative(doc, start, chunks[target] if target >= 0 else None) for start, doc in clauses):
        return "locate"  # "john, grab the mug", "kids, pick up the duck", "grab the mug, bob"
    tokens = [(start, t) for start, doc in clauses for t in doc]
    if held:  # "put it on the tray": the placing verb must be asked
        return "act" if any(t.lower_ in PLACEMENT_VERBS and _asked(t) for _, t in tokens) else "none"
    said_target = chunks[target].text
    if _NO_OBJECT.match(said_target) or _A_SECOND.fullmatch(said_target) or _NO_OBJECT_BEFORE.search(
            text, 0, chunks[target].char_start):
        return "none"  # "grab neither the mug nor the duck", "pick up none of them", "hang on a sec"
    # "pick up the red mug, no wait, the blue one": the verb said of the phrase the target
    # corrects (parse.ruled_out; a phrase ruled out otherwise has a negated or excluding verb),
    # not of one taken back before it ("pick up the mug. Never mind, *John* will do it")
    cancel = corrections.last_cancel(text)
    cancel = -1 if cancel is None or _ACTING_BEFORE.fullmatch(text, cancel.end(), chunks[target].char_start) \
        else cancel.start()  # "... on second thought, *grab* the mug": asked again, a correction
    roots = [chunks[k].root_start for k in (target, *ruled_out(nlp, text)) if k <= target
             and (k == target or chunks[k].char_end > cancel)]
    named = [t for start, t in tokens if any(start + t.idx <= r < start + t.idx + len(t) for r in roots)]
    verbs = [_governing(t) for t in named]
    # "find the mug and pick *it* up", "if you see a mug, pick *it* up", "the mug, grab it"
    verbs += [t.head for _, t in tokens if t.lower_ in _PRONOUNS and t.dep_ in _OBJECTS]
    verbs = [v for v in verbs if v is not None]
    if any(_asked(v) for v in verbs):
        return "act"
    # "don't touch the knife", "stop grabbing the mug": an act forbidden is no thing to find
    return "none" if any(_negated(v) for v in verbs) else "locate"


def _said_to_another(text: str) -> bool:
    """Whether `text` is said to someone in the room by name: "hey mike hand me the bottle"."""
    found = _TO_SOMEONE_ELSE.search(text)
    name = found and found.group("name")
    return bool(found) and (name is None or (
        name.lower() not in _ROBOT_NAMES | ACTING_VERBS | LOOKING_VERBS | NOT_OBJECTS))


def _vocative(doc, start: int, target) -> bool:
    """Whether the clause `doc` (at `start` in the text) only names whom it is said to, someone
    other than the robot: "*john*, grab the mug", "grab the mug, *kids*" (not the target of
    "Mug, grab it", courtesy or "robot")."""
    words = [t for t in doc if not t.is_punct and t.lower_ not in (*_GREETINGS, "ok", "okay")]
    if len(words) != 1:
        return False
    word = words[0]
    at = start + word.idx
    return (word.pos_ in ("PROPN", "NOUN") and word.lower_ not in _ROBOT_NAMES | NOT_OBJECTS
            and not (target is not None and target.char_start <= at < target.char_end))


def _governing(token):
    """The verb `token` (the target's head noun) is the object of, directly or through a
    preposition ("point *at* the mug", "go to the mug"), or of "want" / "have" ("I want the
    mug", "can I have the mug?"); None for none."""
    if token.dep_ in _OBJECTS:
        verb, on = token.head, any(c.lower_ == "on" and c.i < token.i for c in token.head.children)
    elif token.dep_ == "pobj" and token.head.dep_ == "prep" and token.head.head.pos_ == "VERB":
        verb, on = token.head.head, token.head.lower_ == "on"
    else:
        return None
    return None if on and verb.lower_ == "pass" else verb  # "pass *on* the cube" declines it


def _asked(verb) -> bool:
    """Whether spaCy token `verb` is a verb the command asks the robot to do to a thing."""
    word = verb.lower_
    subject = {t.lower_ for t in verb.children if t.dep_ == "nsubj"}
    if word in _WANTING or (word in ("have", "get") and subject & {"i", "we"}):  # "can I have it?"
        return _wanted(verb)
    if verb.tag_ == "VBG" and verb.head.lower_ == "mind":  # "would you mind picking up ...?"
        stems = {word[:-3], word[:-3] + "e", word[:-4]}  # picking, moving, grabbing
        return bool(stems & ACTING_VERBS) and _requested(verb.head)
    # a command's first word the tagger takes for a noun or an adjective: "Clean the mug."; not
    # the words of one quoted in a question ("*is* grab the mug a valid command?"), nor an
    # infinitive ("*to* grab a mug, you hold the handle")
    base = (verb.tag_ == "VB" or (verb.dep_ == "ROOT" and verb.i == 0)) and not any(
        c.dep_ == "aux" and c.i < verb.i and (c.lower_ in ("is", "are", "was", "were")
                                               or (c.lower_ == "to" and verb.dep_ == "ROOT"))
        for c in verb.children)
    return word in ACTING_VERBS and base and _requested(verb)


def _wanted(verb) -> bool:
    """"I want / need / would like the mug", "can / could / may I have / get the mug?"."""
    subject = [t.lower_ for t in verb.children if t.dep_ == "nsubj"]
    modals = {t.lower_ for t in verb.children if t.dep_ == "aux"}
    if verb.lower_ in ("have", "get"):  # not an offer: "can I get *you* the mug?"
        offered = any(t.dep_ in _OBJECTS and t.lower_ == "you" for t in verb.children)
        return (subject in (["i"], ["we"]) and bool(modals & {"can", "could", "may"}) and not offered
                and not _negated(verb))
    if verb.lower_ == "like" and not modals & {"would", "'d", "d", "should"}:
        return False  # "I like the mug" says nothing of what to do; "I'd like the mug" asks for it
    return subject in (["i"], ["we"]) and not _negated(verb) and not _asks_why(verb)


def _requested(verb) -> bool:
    """Whether the clause of `verb` asks the robot: an imperative, a "can you" question, what "I
    want" wants, or joined by "and" to one of them, with no negation over it."""
    if _negated(verb) or _asks_why(verb):
        return False
    subject = [t for t in verb.children if t.dep_ in ("nsubj", "nsubjpass")]
    head = verb.head
    led = verb.dep_ in ("xcomp", "ccomp", "advcl") and head.lower_ in _LEADING and _requested(head)
    wanted = led or verb.dep_ in ("xcomp", "ccomp") and (
        (head.lower_ in _WANTING and _wanted(head) and [t.lower_ for t in subject] == ["you"])
        or (head.lower_ in ("need", "have") and any(t.lower_ == "you" for t in head.children)))
    # "can you pick up ...?" and "you should pick up ...", not "should you ...?" or "you will ..."
    asking = {t.lower_ for t in verb.children if t.dep_ == "aux" and (
        (t.lower_ in ("should", "must")) == bool(subject and subject[0].i < t.i))}
    if subject and not (subject[0].lower_ == "you" and (asking & _REQUEST_MODALS or wanted)
                        or led and subject[0].lower_ in ("me", "us")):
        return False
    if verb.dep_ == "ROOT" or wanted:
        return True
    if verb.dep_ == "conj":  # "find the mug and pick it up": as the verb it is joined to
        return _requested(head) if head.pos_ in ("VERB", "AUX") else not subject
    return False


def _asks_why(verb) -> bool:
    """A question word in the clause ("how would you pick up ...?", "why did you grab ...?")."""
    return any(t.tag_ in ("WRB", "WP", "WDT") for t in verb.children)


def _negated(verb) -> bool:
    """A negation on `verb` or on a verb above it, or before it in its clause ("never ever
    grab"), or a stopping verb above it ("stop grabbing")."""
    if any(t.i < verb.i and t.lower_ in _NEGATING and t.dep_ in ("neg", "advmod", "det")
           for t in verb.subtree):
        return True
    for token in (verb, *verb.ancestors):
        if token is not verb and token.lower_ in _STOPPING:
            return True
        if any(t.dep_ == "neg" or (t.lower_ in _NEGATING and t.dep_ in ("det", "advmod"))
               or (t.dep_ == "prep" and any(d.lower_ in _NEGATING for d in t.subtree))
               for t in token.children):
            return True
    return False
