"""refer.py: a command's words pick its target among proposals, where attention alone does not."""

import numpy as np
import pytest

from ros_ground.command.colour_words import colour_share
from ros_ground.command.refer import absent, colour_match, object_sized, resolve_pair
from ros_ground.command.spatial_words import relation_after, relation_only, superlative_of

H, W = 60, 90
COLOURS = {"red": (200, 20, 20), "blue": (25, 60, 230), "white": (170, 170, 170),
           "black": (15, 15, 15), "yellow": (240, 215, 25), "green": (25, 160, 40)}


def _scene(layout):
    """An image with one coloured square per (colour, column, row) and their masks."""
    rgb = np.full((H, W, 3), (200, 170, 130), np.uint8)  # a wooden table
    masks = []
    for colour, x, y in layout:
        mask = np.zeros((H, W), bool)
        mask[y:y + 10, x:x + 10] = True
        rgb[mask] = COLOURS[colour]
        masks.append(mask)
    return rgb, masks


def target_index(*args, **kwargs):
    """resolve_pair's target index alone: most tests here judge only the target."""
    return resolve_pair(*args, **kwargs)[0]


def _heat_on(mask, strength=1.0):
    return mask.astype(np.float32) * strength


@pytest.mark.parametrize("word", sorted(COLOURS))
def test_colour_share_names_each_colour_and_only_it(word):
    rgb, masks = _scene([(c, 5 + 14 * i, 20) for i, c in enumerate(sorted(COLOURS))])
    shares = [colour_share(rgb, m, word) for m in masks]
    assert shares[sorted(COLOURS).index(word)] == 1.0
    assert sorted(shares)[-2] == 0.0
    with pytest.raises(ValueError):
        colour_share(rgb, masks[0], "wooden")


def test_white_in_shade_is_white_and_black_is_not():
    # A white object's side in shade renders mid-grey (median value 0.33-0.78 per white object
    # on the ood frames); it is still "white", and "grey" too, while black stays neither.
    rgb, masks = _scene([("red", 10, 20), ("black", 30, 20), ("red", 50, 20)])
    rgb[masks[2]] = (98, 100, 104)  # value 0.41, saturation 0.06
    assert colour_share(rgb, masks[2], "white") == 1.0
    assert colour_share(rgb, masks[2], "grey") == 1.0
    rgb[masks[2]] = (84, 85, 86)  # value 0.34: the darkest white objects' median
    assert colour_share(rgb, masks[2], "white") == 1.0
    assert colour_share(rgb, masks[1], "white") == 0.0 and colour_share(rgb, masks[1], "grey") == 0.0
    rgb[masks[2]] = (60, 60, 60)  # value 0.24: dark grey, not white
    assert colour_share(rgb, masks[2], "white") == 0.0
    rgb[masks[2]] = (98, 100, 104)
    heat = _heat_on(masks[0])  # the model looked at the red one
    assert target_index(rgb, masks, heat, "the white mug") == 2


def test_a_superlative_next_to_a_landmark_chooses_among_those_next_to_it():
    rgb = np.full((200, 400, 3), 90, np.uint8)
    masks = []
    for r0, r1, c0, c1 in ((100, 140, 40, 120), (105, 135, 125, 155), (110, 130, 10, 30),
                           (100, 140, 330, 370)):  # a tray, a mug either side of it, a big mug far off
        mask = np.zeros(rgb.shape[:2], bool)
        mask[r0:r1, c0:c1] = True
        masks.append(mask)
    heat = np.zeros(rgb.shape[:2])
    kinds = dict(scores=np.array([0.0, 1.0, 1.0, 1.0]), landmark_scores=np.array([1.0, 0.0, 0.0, 0.0]))
    for phrase, after, target in (("the big mug", " next to the tray", 1),
                                  ("the bigger mug", " by the tray", 1),
                                  ("the little mug", " beside the tray", 2), ("the big mug", "", 3)):
        assert resolve_pair(rgb, masks, heat, phrase, after, heat, "the tray" if after else "",
                            **kinds)[0] == target, phrase + after


def test_brown_is_dark_or_dull_orange_not_a_lit_orange_or_a_red_in_shade():
    rgb, masks = _scene([("red", 10, 20), ("yellow", 30, 20), ("red", 50, 20), ("red", 70, 20)])
    rgb[masks[0]] = (130, 12, 12)  # a red in shade: value 0.51, hue 0
    rgb[masks[1]] = (240, 140, 20)  # a lit orange: saturation 0.92, value 0.94
    rgb[masks[2]] = (110, 65, 30)  # dark brown: hue 26 degrees, value 0.43
    rgb[masks[3]] = (200, 160, 110)  # cardboard: saturation 0.45, value 0.78
    assert [colour_share(rgb, m, "brown") for m in masks] == [0.0, 0.0, 1.0, 1.0]
    assert target_index(rgb, masks, _heat_on(masks[0]), "the brown box") in (2, 3)


def test_colour_word_beats_attention_on_the_wrong_object():
    rgb, masks = _scene([("blue", 10, 20), ("red", 50, 20)])
    heat = _heat_on(masks[0])  # the model looked at the blue one
    assert target_index(rgb, masks, heat, "the red cube") == 1
    assert target_index(rgb, masks, heat, "the cube") == 0  # no colour word: attention decides


def test_the_mask_most_of_the_named_colour_gains():
    rgb, masks = _scene([("red", 10, 20), ("blue", 50, 20)])
    cube_and_table = np.zeros((H, W), bool)
    cube_and_table[20:30, 10:26] = True  # the red cube's 100 px and 60 px of table beside it
    both = [cube_and_table, masks[0], masks[1]]
    assert colour_match(rgb, both, "the red cube") == pytest.approx([0.625, 1.0, 0.0])
    assert colour_match(rgb, both, "the red and blue cube") == pytest.approx([0.3125, 0.5, 0.5])
    assert colour_match(rgb, both, "the cube").tolist() == [0.0, 0.0, 0.0]
    # the scores prefer the mask spilling onto the table; both pass the colour rule (>= 0.4)
    heat = _heat_on(cube_and_table)
    scores = np.array([0.3, 0.2, 0.0])
    assert target_index(rgb, both, heat, "the cube", scores=scores) == 0  # no colour word: scores
    assert target_index(rgb, both, heat, "the red cube", scores=scores) == 1  # 0.2 + 0.5 > 0.3 + 0.31
    assert target_index(rgb, both, heat, "the red cube", scores=np.array([0.5, 0.2, 0.0])) == 0
    # when the colour rules out every mask (a quarter white at most) the words are ignored,
    # the gain too: the scores alone decide
    rgb, masks = _scene([("red", 10, 20), ("white", 50, 20)])
    white_and_table = np.zeros((H, W), bool)
    white_and_table[20:40, 45:65] = True  # 100 white px of 400
    pair = [masks[0], white_and_table]
    assert colour_match(rgb, pair, "the white cube") == pytest.approx([0.0, 0.25])
    assert target_index(rgb, pair, heat, "the white cube", scores=np.array([0.1, 0.0])) == 0
    # a colour word said twice counts once
    assert colour_match(rgb, pair, "the white cube with red and white dots") == pytest.approx(
        [0.5, 0.125])
    # and the landmark: the pure blue tray beats a half-blue mask the scores rank just above it
    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("red", 60, 20), ("blue", 78, 45)])
    half_blue = np.zeros((H, W), bool)
    half_blue[45:55, 70:90] = True
    masks = masks[:3] + [half_blue]
    flat = np.zeros((H, W), np.float32)
    args = (rgb, masks, flat, "the red cube", "left of the blue tray.", flat, "the blue tray")
    pair = dict(scores=np.array([0.5, 0, 0.55, 0]), landmark_scores=np.array([0, 0.2, 0, 0.3]))
    assert target_index(*args, **pair) == 0  # left of the pure blue tray (0.5 + 0.2 + 2 x 0.5)


def test_relation_chooses_target_and_landmark_as_a_pair():
    # two red objects; "left of the blue one" says which
    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("red", 75, 20)])
    flat = np.zeros((H, W), np.float32)
    flat[0, 0] = 1.0
    right = target_index(rgb, masks, flat + _heat_on(masks[2]), "the red cube", "left of the blue tray.",
                    _heat_on(masks[1]), "the blue tray")
    assert right == 0  # attention preferred the right-hand red cube; the relation overrules it
    assert target_index(rgb, masks, flat, "the red cube", "right of the blue tray.",
                   _heat_on(masks[1]), "the blue tray") == 2
    # behind: higher in the picture (its lowest row is above the landmark's)
    rgb, masks = _scene([("red", 10, 5), ("blue", 40, 25), ("red", 70, 45)])
    assert target_index(rgb, masks, flat, "the red cube", "behind the blue tray?",
                   _heat_on(masks[1]), "the blue tray") == 0
    assert target_index(rgb, masks, flat, "the red cube", "in front of the blue tray?",
                   _heat_on(masks[1]), "the blue tray") == 2


def test_a_landmarks_colour_stated_after_it_chooses_the_landmark():
    # "the cube that is left of the cube that is green": the landmark is the green cube, not
    # the one attention prefers (a test on the tiny model passed by its random attention alone)
    rgb, masks = _scene([("red", 5, 20), ("green", 40, 20), ("blue", 75, 20)])
    flat = np.zeros((H, W), np.float32)
    flat[0, 0] = 1.0
    pair = resolve_pair(rgb, masks, flat, "the cube", " that is left of the cube that is green.",
                        _heat_on(masks[2]), "the cube", landmark_after=" that is green.")
    assert pair == (0, 1)
    assert resolve_pair(rgb, masks, flat, "the cube", " that is left of the cube.",
                        _heat_on(masks[2]), "the cube")[1] == 2  # without it, attention's


def test_given_scores_replace_attention_among_what_the_words_allow():
    # retrieval scores (entity_scoring tokens) say the second red cube; attention the first
    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("red", 75, 20)])
    heat = _heat_on(masks[0])
    assert target_index(rgb, masks, heat, "the red cube") == 0
    assert target_index(rgb, masks, heat, "the red cube", scores=np.array([0.1, 0.9, 0.5])) == 2
    # the words still rule: the blue cube's top score cannot make it "the red cube"
    assert target_index(rgb, masks, heat, "the red cube", scores=np.array([0.1, 0.9, 0.05])) == 0
    # a landmark's given scores choose the pair as its attention would
    flat = np.zeros((H, W), np.float32)
    flat[0, 0] = 1.0
    rgb, masks = _scene([("blue", 5, 20), ("red", 30, 20), ("blue", 55, 20), ("red", 80, 20)])
    pick = target_index(rgb, masks, flat, "the red cube", "right of the blue tray.", flat,
                   "the blue tray", scores=np.zeros(4), landmark_scores=np.array([0, 0, 1.0, 0]))
    assert pick == 3  # right of the landmark the scores chose (the second blue), not the first


def test_superlatives_and_large_masks():
    rgb, masks = _scene([("red", 30, 10), ("blue", 5, 45), ("green", 70, 30)])
    table = np.ones((H, W), bool)
    heat = _heat_on(table)
    assert target_index(rgb, masks + [table], heat, "the leftmost object") == 1
    assert target_index(rgb, masks + [table], heat, "the rightmost object") == 2
    assert target_index(rgb, masks, heat, "the object", "closest to the camera.") == 1
    assert target_index(rgb, masks, heat, "the object", "farthest from the camera.") == 0
    # the table is never a target, and a colour nobody has falls back to the size rule
    assert target_index(rgb, [table], heat, "the table") is None
    assert target_index(rgb, masks, _heat_on(masks[2]), "the purple cube") == 2
    assert target_index(rgb, [], heat, "the cube") is None


def test_a_surface_many_times_the_frames_median_mask_is_not_a_target():
    # small far cubes (36 px) and a light table patch of 900 px (a sixth of the image, under
    # MAX_AREA) that the scores and "white" both favour: 25 times the median mask
    rgb = np.full((H, W, 3), (200, 170, 130), np.uint8)
    masks = []
    for colour, x in (("white", 5), ("red", 30), ("blue", 55), ("green", 80)):
        mask = np.zeros((H, W), bool)
        mask[5:11, x:x + 6] = True
        rgb[mask] = COLOURS[colour]
        masks.append(mask)
    patch = np.zeros((H, W), bool)
    patch[25:55, 10:40] = True
    rgb[patch] = COLOURS["white"]
    scores = np.array([0.1, 0.0, 0.0, 0.0, 0.9])
    assert object_sized(masks + [patch]).tolist() == [True] * 4 + [False]
    assert target_index(rgb, masks + [patch], _heat_on(patch), "the white cube", scores=scores) == 0
    assert object_sized(masks + [patch], max_area_over_median=30.0).all()
    # among masks of its own size the patch is one of them: the rule follows the frame's scale
    assert object_sized([patch, np.roll(patch, 45, axis=1)]).all()
    # the whole table is too big whatever the others
    assert object_sized([np.ones((H, W), bool)] + masks).tolist() == [False] + [True] * 4


def test_stability_tips_a_near_tie_towards_the_stable_mask():
    # a stable cube and an unstable texture patch the scores rank just above it
    rgb, masks = _scene([("red", 10, 20), ("red", 50, 20)])
    heat = _heat_on(masks[0])
    scores, stability = np.array([0.40, 0.45]), np.array([0.95, 0.55])
    assert target_index(rgb, masks, heat, "the cube", scores=scores) == 1
    assert target_index(rgb, masks, heat, "the cube", scores=scores, stability=stability) == 0
    # a clear score difference still wins over stability (0.5 x 0.4 = 0.2 < 0.3)
    assert target_index(rgb, masks, heat, "the cube", scores=np.array([0.2, 0.5]),
                   stability=stability) == 1
    # the landmark gains it too: the stable blue tray, not the patch, is what the cube is left of
    rgb, masks = _scene([("red", 5, 20), ("blue", 30, 20), ("red", 55, 20), ("blue", 80, 20)])
    pair = dict(scores=np.array([0.4, 0, 0.5, 0]), landmark_scores=np.array([0, 0.5, 0, 0.55]))
    args = (rgb, masks, heat, "the red cube", "left of the blue tray.", heat, "the blue tray")
    assert target_index(*args, **pair) == 2  # left of the patch at the right edge
    assert target_index(*args, **pair, stability=np.array([0.9, 0.95, 0.9, 0.5])) == 0
    # and the target: one landmark, two red cubes right of it, the stabler one just behind
    rgb, masks = _scene([("blue", 20, 20), ("red", 50, 20), ("red", 75, 20)])
    args = (rgb, masks, heat, "the red cube", "right of the blue tray.", heat, "the blue tray")
    pair = dict(scores=np.array([0, 0.5, 0.45]), landmark_scores=np.array([0.5, 0, 0]))
    assert target_index(*args, **pair) == 1
    assert target_index(*args, **pair, stability=np.array([0.9, 0.5, 0.95])) == 2


def test_superlatives_compare_whole_objects_whatever_the_scores():
    rgb, masks = _scene([("red", 30, 10), ("blue", 5, 45), ("green", 70, 30)])
    heat = _heat_on(masks[0])
    # the table's edge at the left border, and at the bottom one: no object's extreme
    left_edge, bottom_edge = np.zeros((H, W), bool), np.zeros((H, W), bool)
    left_edge[20:40, :3] = True
    bottom_edge[-3:, 40:60] = True
    edges = masks + [left_edge, bottom_edge]
    assert target_index(rgb, edges, heat, "the leftmost object", any_object=True) == 1
    assert target_index(rgb, edges, heat, "the object", "closest to the camera.", any_object=True) == 1
    # when every mask the words allow touches the border, those are compared
    assert target_index(rgb, [bottom_edge, left_edge], heat, "the leftmost object", any_object=True) == 1
    # an empty mask has no extreme: never the pick, whichever way
    empty = np.zeros((H, W), bool)
    for words in ("the leftmost object", "the rightmost object"):
        assert target_index(rgb, [masks[0], empty], heat, words) == 0
        assert target_index(rgb, [empty, left_edge], heat, words) == 1
    # a piece of table texture left of every object: left out when SAM finds it much less
    # stable than the objects, kept within the margin, and the scores never matter
    piece = np.zeros((H, W), bool)
    piece[30:34, 4:7] = True
    pieces = masks + [piece]
    scores = np.array([1.0, 0.0, 1.0, 0.0])
    assert target_index(rgb, pieces, heat, "the leftmost object", scores=scores, any_object=True) == 3
    assert target_index(rgb, pieces, heat, "the leftmost object", scores=scores, any_object=True,
                   stability=np.array([0.9, 0.9, 0.95, 0.6])) == 1
    assert target_index(rgb, pieces, heat, "the leftmost object", scores=scores, any_object=True,
                   stability=np.array([0.9, 0.9, 0.95, 0.85])) == 3
    # the margin counts from the most stable mask off the border, not from a stabler edge
    assert target_index(rgb, pieces + [left_edge], heat, "the leftmost object", any_object=True,
                   stability=np.array([0.8, 0.8, 0.8, 0.7, 1.0])) == 3


@pytest.mark.parametrize("bad", [np.array([0.9]), np.array([0.9, np.nan]), np.ones((2, 1)),
                                 np.array([0.5, np.inf]), {"a": 1}, ["x", "y"]])
def test_per_mask_values_are_checked(bad):
    rgb, masks = _scene([("red", 10, 20), ("blue", 50, 20)])
    heat = _heat_on(masks[0])
    for name in ("scores", "landmark_scores", "stability"):
        # checked up front, also where the rule would not read them (no relation here)
        with pytest.raises(ValueError, match=f"^{name} must be"):
            target_index(rgb, masks, heat, "the cube", **{name: bad})
    with pytest.raises(ValueError, match=r"stability must be finite and in \[0.0, 1.0\]; mask 1"):
        target_index(rgb, masks, heat, "the cube", stability=np.array([0.5, 1.5]))


def test_relation_after():
    assert relation_after(" left of the tray.") == "left"
    assert relation_after(" to the right of the mug") == "right"
    assert relation_after(" in front of it") == "front"
    assert relation_after(" behind the duck?") == "behind"
    assert relation_after(".") is None and relation_after(" leftover") is None
    assert relation_after(" that is right of the duck.") == "right"
    assert relation_after(" is behind the tray?") == "behind"
    assert relation_after(" are in front of the mug") == "front"
    assert relation_after(" is red?") is None and relation_after(" this is left of it") is None
    # the camera is the viewpoint of a superlative, no landmark: "nearest (to) the camera"
    assert relation_after(" is nearest to the camera?") is None
    assert relation_after(" nearest the camera") is None and relation_after(" nearest the tray") == "near"
    assert relation_after(" closest to the robot") is None  # the robot sees from its camera


def test_a_relation_after_the_verbs_particle():
    assert relation_after(" up that's next to the duck") == "near"
    assert relation_after(" up that is left of the tray") == "left"
    assert relation_after(" up next to the duck") is None  # where it is picked up to, not which


def test_comparatives_of_a_side_are_relations():
    assert relation_after(" further left than the tray") == "left"
    assert relation_after(" more to the right than the duck") == "right"
    assert relation_after(" further left than the others") is None  # no landmark: "the others"
    assert relation_after(" right from the start") is None


def test_by_is_nearness_unless_it_says_how():
    for after in (" by the duck", " that is by the mug", " close by the tray", " over by the tray",
                  " alongside the mug", " right by the mug"):
        assert relation_after(after) == "near", after
    # how the object is held or how far it moves, not where it is
    for after in (" by its handle", " by the handle", " by the rims", " by 10 cm", " by a bit", " by hand"):
        assert relation_after(after) is None, after


def test_relation_only():
    assert relation_only(" left of ") and relation_only(" that is behind the ")
    assert relation_only(" to the right of ") and relation_only(' in front of "')
    assert not relation_only(" behind and pick up ") and not relation_only(" is ")
    assert not relation_only(" left of the big box by ")


def test_relation_wordings():
    assert relation_after(" on the left of the tray.") == "left"
    assert relation_after(" on the right side of the tray.") == "right"
    assert relation_after(" to the left side of the tray.") == "left"
    assert relation_after(" right behind the duck") == "behind"
    assert relation_after(" just left of the duck") == "left"
    assert relation_after(" that is directly in front of the mug") == "front"
    assert relation_after(" left\nof the tray") == "left" and relation_after(" right  of it") == "right"
    assert relation_after(" right now") is None and relation_after(" just the mug") is None
    assert relation_after(" that's behind the tray") == "behind"
    assert relation_after(", which is left of the tray") == "left"
    assert relation_only(" right behind the ") and relation_only(" on the left of ")
    assert not relation_only(" right behind and then ")


def test_a_superlative_belongs_to_the_target_or_what_follows_it():
    assert superlative_of("the leftmost cube") == "leftmost"
    assert superlative_of("the cube", " closest to the camera.") == "closest to the camera"
    assert superlative_of("which object", " is the closest  to the camera?") == "closest to the camera"
    assert superlative_of("the cube", ", the leftmost one.") == "leftmost"
    assert superlative_of("the cube", " behind the tray, the leftmost one.", "the tray") == "leftmost"
    assert superlative_of("the cube", " left of the leftmost duck.", "the leftmost duck") is None
    assert superlative_of("the cube", " left of the Leftmost\nduck.", "the leftmost duck") is None
    assert superlative_of("the cube", "") is None


@pytest.mark.parametrize("phrase, after, superlative", [
    # a side, in the phrase or right after it, where no landmark follows
    ("the left mug", "", "leftmost"),
    ("the far-right mug", "", "rightmost"),
    ("the right-hand mug", "", "rightmost"),
    ("the mug", " on the left.", "leftmost"),
    ("the mug", " on the far right", "rightmost"),
    ("the mug", " that is on the right side.", "rightmost"),
    ("the mug", ", to the left", "leftmost"),
    ("the mug", ", the one on the left.", "leftmost"),
    ("the mugs", ", the ones that are on the right", "rightmost"),
    ("the mug", " on the left of the tray", None),         # a relation
    ("the mug", " on the left side of the tray", None),
    ("the mug", " to the right-hand side of the duck", None),
    ("the mug", " left of the tray on the right", None),   # the tray's side, not the mug's
    ("the left-hand side of the box", "", None),
    # size: a superlative or, of two, a comparative
    ("the biggest mug", "", "biggest"),
    ("the largest cube", "", "largest"),
    ("the bigger mug", "", "biggest"),
    ("the smaller cube", "", "smallest"),
    ("the tiniest duck", "", "tiniest"),
    # a size said plainly: of several mugs a user means the biggest by "the big mug"
    ("the big mug", "", "biggest"),
    ("the little ball", "", "smallest"),
    ("the tiny red cube", "", "smallest"),
    ("the mug", " that is large", "biggest"),
    ("the mug", " a little to the left", None),
    ("which mug", " is bigger?", "biggest"),
    ("which cube", " is the smaller one?", "smallest"),
    ("the mug", " that is larger", "biggest"),
    # an ordinal counts from the side after the phrase (ordinal_of gives the rank), or the left
    ("the second mug", " from the left.", "leftmost"),
    ("the 2nd mug", " from the right", "rightmost"),
    ("the third cube", ", counting from the front", "closest to the camera"),
    ("the second mug", " from the back", "farthest from the camera"),
    ("the second mug", "", "leftmost"),
    ("the mug", " from the left of the tray", None),         # a relation's words
    ("the mug", " second from the left.", "leftmost"),
    ("the 10th cube", " from the right", "rightmost"),
    ("the last mug", "", "rightmost"),
    ("the last mug", " from the right", "leftmost"),
    ("the last mug", " on the left", "leftmost"),
    ("the second to last mug", "", "rightmost"),
    ("the next-to-last cube", " from the left", "rightmost"),
    ("the penultimate mug", "", "rightmost"),
    # nearness to the camera: in the phrase, right after it, or compared
    ("the front mug", "", "closest to the camera"),
    ("the frontmost cube", "", "closest to the camera"),
    ("the rearmost cube", "", "farthest from the camera"),
    ("the mug", " in front.", "closest to the camera"),
    ("the one", " at the very front", "closest to the camera"),
    ("the mug", " that is at the back", "farthest from the camera"),
    ("the mug", " in front of the tray", None),           # a relation's words
    ("the mug", " at the back of the table", None),
    ("the back of the mug", "", None),
    ("which mug", " is closer to the camera?", "closest to the camera"),
    ("the mug", " further from the camera", "farthest from the camera"),
    ("which mug", " is nearest to the camera?", "nearest to the camera"),
    # the robot addressed sees from its camera
    ("the mug", " closest to you", "closest to the camera"),
    ("the mug", " nearest you.", "closest to the camera"),
    ("the cube", " closest to the robot", "closest to the camera"),
    ("the mug", " all the way on the left", "leftmost"),
    ("the mug", " on your right", "rightmost"),  # the robot's right: its camera's
    ("the not so big mug", "", None),  # a negated size picks neither end
    ("the mug", " next to you", "closest to the camera"),
    ("the mug", " closest to the robot toy", None),  # a landmark, not the viewpoint
    ("which cube", " is farther from you?", "farthest from the camera"),
    ("the mug", " furthest from yourself", "farthest from the camera"),
    ("the second mug", " from you", "closest to the camera"),
    ("the mug", " closest to your hand", None),          # a landmark
    # halfway along the objects
    ("the middle mug", "", "middle"),
    ("the centre cube", "", "middle"),
    ("the mug", " in the middle.", "middle"),
    ("the mug", " that is in the center", "middle"),
    ("the mug", " in the middle of the table", None),
])
def test_other_wordings_of_a_superlative(phrase, after, superlative):
    assert superlative_of(phrase, after) == superlative


def test_a_size_superlative_compares_areas_in_the_image():
    rgb, masks = _scene([("red", 10, 10), ("red", 40, 10), ("red", 70, 10)])
    masks[1][10:30, 40:60] = True  # the middle one four times the others' area
    masks[2][10:15, 70:80] = False  # the right one half
    heat = np.ones((H, W), np.float32)  # three red cubes alike to the model
    assert target_index(rgb, masks, heat, "the biggest cube") == 1
    assert target_index(rgb, masks, heat, "the smaller cube") == 2
    assert target_index(rgb, masks, heat, "the cube", " on the right.") == 2
    # of one kind: a mask the scores put far below the best is not compared
    assert target_index(rgb, masks, heat, "the biggest cube", scores=[1.0, 0.0, 1.0]) == 0


def _squares_in_a_row(count: int = 3):
    """A black 60 x (20 + 60 `count`) image, `count` equal squares left to right, and a flat
    heat map."""
    image = np.zeros((60, 20 + 60 * count, 3), np.uint8)
    masks = []
    for i in range(count):
        m = np.zeros(image.shape[:2], bool)
        m[20:40, 20 + 60 * i:50 + 60 * i] = True
        masks.append(m)
    return image, masks, np.zeros(image.shape[:2], np.float32)


@pytest.mark.parametrize("words", [" next to the duck.", " beside the duck", " nearest to the duck",
                                   " that is close to the duck", " nearest the duck"])
def test_nearness_picks_the_object_of_the_kind_nearest_the_landmark(words):
    # four squares in a row: cube, cube, duck, cube; "the cube next to the duck" is the one
    # nearest it of those the scores call cubes, not the best-scored cube
    image, masks, heat = _squares_in_a_row(4)
    cubes, duck = [0.5, 0.45, 0.0, 0.48], [0.0, 0.0, 1.0, 0.0]
    pair = resolve_pair(image, masks, heat, "the cube", words, heat, "the duck", scores=cubes,
                        landmark_scores=duck)
    assert pair == (1, 2)  # left of the duck by one square; the right one is as near: the first
    # of its kind only: the landmark itself, and an object scored far below the cubes, are not
    cubes[1] = -1.0
    assert resolve_pair(image, masks, heat, "the cube", words, heat, "the duck", scores=cubes,
                        landmark_scores=duck) == (3, 2)
    # "the object next to the duck" compares every object
    assert resolve_pair(image, masks, heat, "the object", words, heat, "the duck", scores=cubes,
                        landmark_scores=duck, any_object=True)[0] in (1, 3)


def test_an_ordinal_counts_objects_in_the_superlatives_order():
    from ros_ground.command.spatial_words import ordinal_of

    assert [ordinal_of(t) for t in ("the mug", "the second mug", "the 3rd cube", "the Fourth one",
                                    "the seventh mug", "the 10th mug")] == [1, 2, 3, 4, 7, 10]
    assert ordinal_of("the mug", " second from the left") == 2
    assert ordinal_of("the mug", " that is third from the right.") == 3
    assert ordinal_of("the mug", " second, please") == 1  # no side: not an ordinal's
    # counted from the other end: the rank is the ordinal's, or 2 for the words that mean it
    assert ordinal_of("the second from last mug") == 2
    assert [ordinal_of(t) for t in ("the second to last mug", "the third-to-last cube",
                                    "the next to last mug", "the last but one mug",
                                    "the penultimate mug", "the last mug")] == [2, 3, 2, 2, 2, 1]
    image, masks, heat = _squares_in_a_row(4)
    cubes = [0.5] * 4
    for words, after, found in [("the second cube", " from the left.", 1),
                                ("the second cube", " from the right.", 2),
                                ("the 2nd cube", "", 1),
                                ("the fourth cube", " from the left", 3),
                                ("the fifth cube", " from the left", None),  # of four: none
                                ("the last cube", "", 3),
                                ("the second to last cube", "", 2),
                                ("the third-to-last cube", "", 1),
                                ("the last but one cube", " from the right", 1),
                                ("the third biggest cube", "", 2)]:
        assert target_index(image, masks, heat, words, after, scores=cubes) == found, (words, after)
    # a second mask of one object (SAM's whole cube and its left half) is not another object
    half = masks[0].copy()
    half[:, 35:] = False
    assert target_index(image, [half] + masks, heat, "the second cube", " from the left",
                   scores=[0.5] * 5) == 2
    # nor are two halves that do not overlap each other, with the whole they make
    top, bottom = masks[1].copy(), masks[1].copy()
    top[30:], bottom[:30] = False, False
    parts = [masks[0], top, bottom, masks[1], masks[2], masks[3]]
    for words, found in [("the second cube", 3), ("the third cube", 4), ("the fourth cube", 5),
                         ("the fifth cube", None)]:
        assert target_index(image, parts, heat, words, " from the left", scores=[0.5] * 6) == found
    # two objects of two colours, one on the other, and SAM's mask of both: two objects
    painted = image.copy()
    painted[top], painted[bottom] = (200, 20, 20), (20, 60, 230)
    assert target_index(painted, parts, heat, "the third cube", " from the left",
                   scores=[0.5] * 6) in (1, 2)
    # of the kind only: the object the scores put far below the cubes is not counted
    assert target_index(image, masks, heat, "the second cube", " from the left",
                   scores=[0.5, -1.0, 0.5, 0.5]) == 2


def test_the_middle_object_is_halfway_from_left_to_right():
    image, masks, heat = _squares_in_a_row(3)
    assert target_index(image, masks, heat, "the middle cube", scores=[0.5] * 3) == 1
    assert target_index(image, masks, heat, "the cube", " in the middle.", scores=[0.5] * 3) == 1
    image, masks, heat = _squares_in_a_row(5)
    assert target_index(image, masks[::-1], heat, "the middle cube", scores=[0.5] * 5) == 2


def test_a_superlative_skips_the_mask_of_two_objects_together():
    # SAM's mask of a mug and the tray it touches is the biggest "mug" and the rightmost, and its
    # position lies between the two: a robot sent there reaches neither
    image, masks, heat = _squares_in_a_row(2)
    masks[1][20:40, 50:80] = True  # the right square widened to touch the left one
    union = masks[0] | masks[1]
    cubes = [0.5, 0.5, 0.5]
    assert target_index(image, masks + [union], heat, "the biggest cube", scores=cubes) == 1
    assert target_index(image, masks + [union], heat, "the rightmost cube", scores=cubes) == 1
    # a part too small to be an object (a mug's handle) makes no union: the whole is compared
    handle = np.zeros_like(masks[0])
    handle[25:35, 20:24] = True
    body = masks[0] & ~handle
    assert target_index(image, [masks[0], body, handle], heat, "the biggest cube",
                   scores=cubes) == 0


def test_closest_to_the_camera_is_a_superlative_not_a_landmark():
    assert relation_after(" closest to the camera.") is None
    assert relation_after(" nearest the camera") is None
    assert relation_after(" closest to the tray") == "near"
    assert superlative_of("the cube", " closest to the camera.") == "closest to the camera"
    assert relation_after(" closest to you.") is None and relation_after(" nearest yourself") is None
    assert relation_after(" closest to your hand") == "near"


def test_a_superlative_on_the_landmark_does_not_pick_the_target():
    """"the cube right of the leftmost cube": the target is right of its landmark, so never the
    leftmost object: the superlative belongs to the landmark, not to the whole text after the
    target."""
    image, masks, heat = _squares_in_a_row()
    got = target_index(image, masks, heat, "the cube", " right of the leftmost cube.", heat,
                  "the leftmost cube", scores=[0.0, 0.0, 0.0], landmark_scores=[1.0, 0.0, 0.0])
    assert got in (1, 2)
    # the target's own superlative picks the extreme of the cubes its scores allow: all three
    # within SUPERLATIVE_KIND_MARGIN of the best, or only the one far above the others
    assert target_index(image, masks, heat, "the leftmost cube", ".", scores=[0.0, 0.0, 0.05]) == 0
    assert target_index(image, masks, heat, "the leftmost cube", ".", scores=[0.0, 0.0, 1.0]) == 2
    # a phrase naming no kind compares every object, whatever the scores
    assert target_index(image, masks, heat, "the leftmost object", ".", scores=[0.0, 0.0, 1.0],
                   any_object=True) == 0


def test_a_superlative_with_a_relation_picks_among_those_it_holds_for():
    """"the leftmost cube behind the tray": the leftmost of the cubes behind it, not of all."""
    image = np.zeros((100, 200, 3), np.uint8)
    boxes = {"front_left": (60, 80, 10, 40), "behind_mid": (10, 30, 80, 110),
             "behind_right": (10, 30, 140, 170), "tray": (40, 70, 90, 160)}
    masks = []
    for top, bottom, left, right in boxes.values():
        m = np.zeros(image.shape[:2], bool)
        m[top:bottom, left:right] = True
        masks.append(m)
    heat = np.zeros(image.shape[:2], np.float32)
    kwargs = dict(scores=[0.0, 0.0, 0.0, 0.0], landmark_scores=[0.0, 0.0, 0.0, 1.0])
    assert target_index(image, masks, heat, "the leftmost cube", " behind the tray.", heat, "the tray",
                   **kwargs) == 1
    assert target_index(image, masks, heat, "the leftmost cube", " in front of the tray.", heat,
                   "the tray", **kwargs) == 0
    # without the relation: the leftmost of all
    assert target_index(image, masks, heat, "the leftmost cube", ".", **kwargs) == 0


def test_the_landmark_is_the_one_the_relation_was_judged_against():
    """resolve_pair's landmark is the pair's, not the landmark phrase's own best: "the cube left
    of the cube" with both phrases' scores on the leftmost square pairs it with the middle one."""
    image, masks, heat = _squares_in_a_row()
    pair = dict(scores=[1.0, 0.0, 0.0], landmark_scores=[1.0, 0.5, 0.0])
    assert resolve_pair(image, masks, heat, "the cube", " left of the cube.", heat, "the cube",
                        **pair) == (0, 1)
    # the words allow no pair the relation holds for: no target (the red cube is left of the
    # blue one; a robot must not act on it), the landmark by its words and scores
    rgb, coloured = _scene([("red", 5, 20), ("blue", 40, 20)])
    assert resolve_pair(rgb, coloured, heat[:H, :W], "the red cube", " right of the blue cube.",
                        heat[:H, :W], "the blue cube") == (None, 1)
    assert resolve_pair(rgb, coloured, heat[:H, :W], "the red cube", " left of the blue cube.",
                        heat[:H, :W], "the blue cube") == (0, 1)
    # a superlative with the relation, none of whose objects it holds for: no target either
    assert resolve_pair(rgb, coloured, heat[:H, :W], "the leftmost red cube", " right of the blue cube.",
                        heat[:H, :W], "the blue cube") == (None, 1)
    # with the target's superlative: the best-scored landmark, the extreme among those it holds for
    assert resolve_pair(image, masks, heat, "the leftmost cube", " right of the cube.", heat,
                        "the cube", scores=[0.0, 0.0, 0.0], landmark_scores=[1.0, 0.0, 0.0]) == (1, 0)
    # no relation, or no landmark map (a destination): no landmark
    assert resolve_pair(image, masks, heat, "the cube", ".", **pair) == (0, None)
    assert resolve_pair(image, masks, heat, "the cube", " left of the cube.", None, "the cube",
                        **pair) == (0, None)
    assert resolve_pair(image, [], heat, "the cube", " left of the cube.", heat, "the cube") == \
        (None, None)


def test_absent_when_the_colour_words_or_the_scores_rule_out_every_object():
    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("green", 70, 40)])
    scores = np.array([0.1, 0.6, 0.3])
    assert absent(rgb, masks, "the purple cube", scores)  # nothing purple in view
    assert absent(rgb, masks, "the yellow cube", scores)
    assert not absent(rgb, masks, "the blue cube", scores)
    assert not absent(rgb, masks, "the cube", scores)  # no colour word, no threshold
    # one of several colours is enough (no mask is 40% of each), a negated one counts for none
    assert not absent(rgb, masks, "the red and white cube", scores)
    assert not absent(rgb, masks, "the non-purple cube", scores)
    assert not absent(rgb, masks, "the cube, not purple", scores)
    assert absent(rgb, masks, "the purple and white cube", scores)
    # the threshold is on the best score among the masks the words allow
    assert not absent(rgb, masks, "the cube", scores, min_score=0.6)
    assert absent(rgb, masks, "the cube", scores, min_score=0.61)
    assert absent(rgb, masks, "the red cube", scores, min_score=0.2)  # the red one scores 0.1
    assert not absent(rgb, masks, "the red cube", scores, min_score=0.1)
    # nothing object-sized to judge by (a close-up): never absent, whatever the words
    close = np.zeros((H, W), bool)
    close[5:55, 5:85] = True
    assert not absent(rgb, [close], "the purple cube", np.array([-1.0]), min_score=1.0)
    # a landmark's colour words are still ignored when they rule out every mask
    assert target_index(rgb, masks, np.zeros((H, W)), "the cube", " left of the purple tray.",
                   np.zeros((H, W)), "the purple tray", scores=scores,
                   landmark_scores=np.zeros(3)) is not None


def test_a_colour_after_the_noun_or_ruled_out_is_read_as_the_targets():
    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("green", 70, 40)])
    heat = _heat_on(masks[0])  # the model looked at the red one
    assert target_index(rgb, masks, heat, "the cube", " that is blue.") == 1
    assert target_index(rgb, masks, heat, "the cube", ", the green one.") == 2
    assert target_index(rgb, masks, heat, "the non-red cube") == 1  # the best of the rest
    assert target_index(rgb, masks, heat, "the cube", " that is not red or blue.") == 2
    # a colour after a relation is the landmark's: the target is chosen by its own scores
    assert target_index(rgb, masks, heat, "the cube", " left of the green tray.") == 0
    scores = np.array([0.1, 0.6, 0.3])
    assert absent(rgb, masks, "the cube", scores, after_text=" that is purple.")
    assert not absent(rgb, masks, "the cube", scores, after_text=" left of the purple tray.")
    assert not absent(rgb, masks, "the cube", scores, after_text=" that is blue.")


def test_a_target_that_names_no_kind_is_a_whole_object_not_a_strip_the_border_cuts():
    """"Pick up the object.": the strip of floor beyond the table, which the frame's top edge
    cuts, must not be the target however the phrase scores on it; with a kind named, the
    scores still decide (an object may stand at the border)."""
    rgb, masks = _scene([("red", 5, 30), ("blue", 40, 30), ("green", 70, 40)])
    strip = np.zeros((H, W), bool)
    strip[:8] = True  # 13% of the frame, under MAX_AREA, touching the border
    masks = [strip] + masks
    heat = _heat_on(strip, 5.0)
    assert target_index(rgb, masks, heat, "the mug") == 0
    assert target_index(rgb, masks, heat, "the object", any_object=True) in (1, 2, 3)
    scores = np.array([0.9, 0.1, 0.3, 0.2])
    assert target_index(rgb, masks, heat, "it", scores=scores, any_object=True) == 2


def test_colour_words_are_not_judged_on_a_frame_without_colour():
    # a mono camera's frame (decode_image gives it three equal channels): the green cube is as
    # grey as the others, and its colour word made it absent; the other words still apply
    import cv2

    from ros_ground.command.colour_words import has_colour

    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("green", 70, 40)])
    grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    scores = np.array([0.1, 0.6, 0.3])
    assert not has_colour(grey) and has_colour(rgb)
    assert not absent(grey, masks, "the green cube", scores)
    assert not absent(grey, masks, "the cube that is purple", scores)
    assert absent(grey, masks, "the green cube", scores, min_score=0.61)  # the scores still judge
    # the green cube's grey is light enough for "white": on grey the heat chooses, not the word
    assert target_index(grey, masks, _heat_on(masks[0]), "the white cube") == 0
    assert colour_match(grey, masks, "the green cube").tolist() == [0.0, 0.0, 0.0]
    # a grey scene through a colour pipeline (a YUV camera in night mode: chroma one level off
    # 128) or with a coloured overlay of a few pixels is no colour either
    from ros_ground.image_codec import decode_image

    uyvy = np.zeros((H, W, 2), np.uint8)
    uyvy[..., 1] = grey[..., 0]
    uyvy[..., 0] = 128 + np.random.default_rng(1).integers(-1, 2, (H, W))
    jittered = decode_image("uyvy", H, W, W * 2, 0, uyvy.tobytes())
    assert (jittered.max(2).astype(int) - jittered.min(2)).max() > 0
    assert not has_colour(jittered) and not absent(jittered, masks, "the green cube", scores)
    frame = np.full((240, 320, 3), 128, np.uint8)
    frame[:8, :48] = (10, 200, 10)  # a coloured timestamp: 0.5% of the pixels
    assert not has_colour(frame)
    frame[100:140, 100:140] = (200, 30, 30)  # a red mug: 2% more
    assert has_colour(frame)


def test_a_superlative_takes_the_best_landmark_some_object_stands_so_to():
    """"the biggest mug behind the tray": a thing at the very back scoring a little better as
    "the tray" has no mug behind it, so the tray (next best) is the landmark, not 'absent'."""
    rgb, masks = _scene([("black", 40, 40), ("red", 10, 15), ("red", 70, 15), ("yellow", 45, 0)])
    masks[2][15:25, 60:70] = True  # the mug at the right is the bigger one
    rgb[masks[2]] = COLOURS["red"]
    ts, ls = np.array([0.1, 0.6, 0.6, 0.1]), np.array([0.50, 0.1, 0.1, 0.52])
    args = (rgb, masks, _heat_on(masks[1]))
    assert resolve_pair(*args, "the biggest mug", " behind the tray.", _heat_on(masks[0]), "the tray",
                        scores=ts, landmark_scores=ls) == (2, 0)
    # no mug behind the duck, the one yellow thing: absent
    assert resolve_pair(*args, "the biggest mug", " behind the yellow duck.", _heat_on(masks[3]),
                        "the yellow duck", scores=ts, landmark_scores=ls)[0] is None


def test_a_landmark_whose_colour_matches_nothing_leaves_the_target_its_own_choice():
    """"the red mug in front of the green tray" where no object-sized mask is green (the tray
    fills too much of the frame to be one): any object could be taken for the landmark, so a
    relation that holds for no pair says nothing of the target, which its own words choose."""
    rgb, masks = _scene([("red", 40, 30), ("blue", 10, 50)])  # the blue cube nearest the camera
    tray = np.zeros((H, W), bool)
    tray[2:26, 20:85] = True  # 29% of the frame: over MAX_AREA
    rgb[tray & ~masks[1]] = COLOURS["green"]
    masks.append(tray)
    got = resolve_pair(rgb, masks, _heat_on(masks[0]), "the red mug", " in front of the green tray.",
                       _heat_on(tray), "the green tray")
    assert got[0] == 0
    # a landmark named in a colour some object has: no pair, no target
    assert resolve_pair(rgb, masks, _heat_on(masks[0]), "the red mug", " in front of the blue cube.",
                        _heat_on(masks[1]), "the blue cube")[0] is None
