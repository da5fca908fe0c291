"""colour_words.py: the colours a referring expression names or rules out, wherever it says them."""

import pytest

from ros_ground.command.colour_words import colours_after, named_colours


@pytest.mark.parametrize("phrase, after, named, ruled_out", [
    ("the red mug", "", ["red"], []),
    ("the green and white mug", " left of the tray.", ["green", "white"], []),
    ("the mug", " that is purple.", ["purple"], []),
    ("the mug", " which is Purple?", ["purple"], []),
    ("the mugs", " that are red and white.", ["red", "white"], []),
    ("the cube", " that's  red", ["red"], []),
    ("the mug", ", which is red,", ["red"], []),
    ("the mug", " in red.", ["red"], []),
    ("the mug", " painted blue", ["blue"], []),
    ("the mug", ", the red one.", ["red"], []),
    ("the non-red mug", "", [], ["red"]),
    ("the mug", " that is not red.", [], ["red"]),
    ("the mug", " that is not red or blue.", [], ["red", "blue"]),
    ("the mug", " that is neither red nor blue.", [], ["red", "blue"]),
    ("the mug", " that is not red but blue.", ["blue"], ["red"]),
    ("the red mug", " that is red", ["red"], []),  # each colour once
    # other words for the colours, and other ways to state one after the noun
    ("the reddish mug", "", ["red"], []),
    ("the crimson mug", "", ["red"], []),
    ("the Scarlet mug", "", ["red"], []),
    ("the mug", " in navy", ["blue"], []),
    ("the non-crimson mug", "", [], ["red"]),
    ("the brown box", "", ["brown"], []),
    ("the gold ring", "", ["yellow"], []),
    ("the aqua cube", "", ["blue"], []),
    ("the cream cheese", "", [], []),  # object names, not colours
    ("the chocolate bar", "", [], []),
    ("the cream-coloured mug", "", ["white"], []),
    ("the beige colored box", "", ["brown"], []),
    ("the reddish-brown cube", "", ["brown"], []),  # an -ish word before a colour shades it
    ("the mug", " that is dark blue", ["blue"], []),  # a shade word does not end the colours
    ("the mug", " the red one", ["red"], []),  # an apposition spoken without its comma
    ("the mug", " the red one is on", [], []),  # ... only at the end: here a clause of another
    ("the mug", " whose colour is red.", ["red"], []),
    ("the mug", " whose color is bluish", ["blue"], []),
    ("the mug", " that is coloured red", ["red"], []),
    ("the mug", " is painted red", ["red"], []),
    # an exclusion of others of the kind rules their colours out
    ("the mug", ", not the red one.", [], ["red"]),
    ("a mug", " but not the red one", [], ["red"]),
    ("any mug", " except the blue or green ones", [], ["blue", "green"]),
    ("any mug", " except for the crimson one, please", [], ["red"]),
    ("a mug", " other than the blue mug", [], ["blue"]),
    ("the mugs", ", not the red mug", [], ["red"]),
    ("the mug", ", not red.", [], ["red"]),
    ("the cube", " that isn't red", [], ["red"]),  # spoken or typed short
    ("the cube", " which aren\u2019t blue", [], ["blue"]),
    ("the cube", " thats not red", [], ["red"]),
    ("the cube", " thats green", ["green"], []),
    ("the blue mug", ", not the green mug", ["blue"], ["green"]),
    ("the lemon", "", [], []),  # an object's name, not a colour of it
    ("the rose", "", [], []),
])
def test_named_colours_reads_colours_before_and_after_the_noun(phrase, after, named, ruled_out):
    assert named_colours(phrase, after) == (named, ruled_out)


@pytest.mark.parametrize("after", [
    " left of the red tray.",            # the landmark's colour
    " that is left of the red tray.",    # a copula before a relation, not a colour
    " in the red box.",                  # "in" before another phrase
    " in front of the blue cube",
    ", the red tray.",                   # an apposition that names another thing
    " and the red cube.",
    " whose handle is red",              # a part's colour, not the object's
    ", not the red tray.",               # another kind excluded
    " except the one on the red tray",
    " not far from the red tray",
    "",
])
def test_colours_of_another_phrase_are_not_the_targets(after):
    assert colours_after(after) == ""
    assert named_colours("the mug", after) == ([], [])
