"""between.py: "the cube between the mug and the duck" picks the target and both landmarks among
proposals, and "put it between the two mugs" the two places."""

import numpy as np
import pytest
from test_refer import _heat_on, _scene

from ros_ground.command.between import between, resolve_between


@pytest.mark.parametrize("point, want", [
    ((50, 20), True), ((50, 44), True),  # on the line, and off it by under half the distance
    ((50, 61), False), ((5, 20), False), ((95, 20), False),  # too far off it; beyond either end
    ((np.nan, 20), False)])
def test_between_is_within_the_segment_and_near_its_line(point, want):
    assert between(np.array(point, float), np.array([10.0, 20.0]), np.array([90.0, 20.0])) is want
    assert not between(np.array([10.0, 20.0]), np.array([10.0, 20.0]), np.array([10.0, 20.0]))


def _between_scene():
    """Red, blue, green, blue squares left to right: the first blue lies between the red and
    the green one, the second right of both."""
    return _scene([("red", 5, 20), ("blue", 30, 24), ("green", 55, 20), ("blue", 78, 20)])


def _landmark(masks, k, text):
    return (_heat_on(masks[k]), text, None, "")


def test_resolve_between_picks_the_object_between_its_two_landmarks():
    rgb, masks = _between_scene()
    # the other blue square draws more of the target's attention: the words still decide
    heat = _heat_on(masks[1], 0.5) + _heat_on(masks[3])
    landmarks = [_landmark(masks, 0, "the red cube"), _landmark(masks, 2, "the green cube")]
    assert resolve_between(rgb, masks, heat, "the blue cube", " between the red cube and the green cube",
                           landmarks) == (1, 0, 2)
    # the landmark the relation holds for: the green square is between the red and the right
    # blue one, though "the blue cube" draws more attention on the left one
    blue = _landmark(masks, 1, "the blue cube")
    assert resolve_between(rgb, masks, heat, "the green cube", "", [landmarks[0], blue]) == (2, 0, 3)
    # the red one is between no two: with no three that fit, no target, the landmarks by their
    # own words and scores
    assert resolve_between(rgb, masks, heat, "the red cube", "", [landmarks[1], blue]) == (None, 2, 1)
    assert resolve_between(rgb, [], heat, "the blue cube", "", landmarks) == (None, None, None)


def test_one_plural_landmark_names_both_objects():
    """"between the two red cubes": two objects of the one phrase are the landmarks."""
    rgb, masks = _scene([("red", 5, 20), ("blue", 30, 20), ("red", 55, 20), ("blue", 78, 20)])
    heat = _heat_on(masks[3])
    red = _heat_on(masks[0]) + _heat_on(masks[2])
    target, a, b = resolve_between(rgb, masks, heat, "the blue cube", " between the two red cubes",
                                   [(red, "the two red cubes", None, "")])
    assert target == 1 and {a, b} == {0, 2}


def test_a_superlative_chooses_among_the_objects_between():
    rgb, masks = _scene([("red", 2, 20), ("blue", 22, 20), ("blue", 42, 20), ("green", 62, 20),
                         ("blue", 80, 20)])
    heat = _heat_on(masks[4])
    landmarks = [_landmark(masks, 0, "the red cube"), _landmark(masks, 3, "the green cube")]
    assert resolve_between(rgb, masks, heat, "the rightmost blue cube", "", landmarks)[0] == 2
    assert resolve_between(rgb, masks, heat, "the second blue cube", " from the left", landmarks)[0] == 2
    with pytest.raises(ValueError, match="^landmark scores must be"):
        resolve_between(rgb, masks, heat, "the cube", "", [(None, "the red cube", [1.0], "")] * 2)


def test_a_mask_mostly_inside_a_landmark_is_no_third_object():
    """SAM's mask of a duck with a piece of the cube beside it overlaps the cube little by IoU
    but lies half in it: the target is the duck alone, never a piece of a landmark."""
    rgb, masks = _scene([("red", 5, 20), ("blue", 40, 20), ("green", 75, 20)])
    piece = np.zeros_like(masks[0])
    piece[20:30, 12:22] = True  # 3 px of the red square's 10 and 7 px of table right of it
    masks.append(piece)
    heat = _heat_on(piece) * 2 + _heat_on(masks[1])
    landmarks = [_landmark(masks, 0, "the red cube"), _landmark(masks, 2, "the green cube")]
    assert resolve_between(rgb, masks, heat, "the object", "", landmarks)[0] == 1
    # with no object between, the landmarks and no target: the green cube lies beyond them
    rgb, masks = _scene([("red", 5, 20), ("blue", 20, 20), ("green", 75, 20)])
    far = [_landmark(masks, 0, "the red cube"), _landmark(masks, 1, "the blue cube")]
    assert resolve_between(rgb, masks, _heat_on(masks[0]), "the cube", "", far) == (None, 0, 1)
    assert resolve_between(rgb, masks, _heat_on(masks[0]), "the biggest cube", "", far) == (None, 0, 1)


def test_without_a_target_the_two_places_are_two_objects():
    """"put it between the red cube and the cube": the places are chosen together, so "the
    cube" is not the red one again; one plural phrase gets its two best objects."""
    rgb, masks = _scene([("red", 5, 20), ("blue", 30, 20), ("red", 55, 20), ("green", 78, 20)])
    red = _heat_on(masks[0])
    places = [(red, "the red cube", None, ""), (red, "the cube", None, "")]
    _, a, b = resolve_between(rgb, masks, None, "", "", places)
    assert a in (0, 2) and b is not None and b != a
    both = _heat_on(masks[0]) + _heat_on(masks[2]) + _heat_on(masks[1]) * 0.5
    plural = [(both, "the two red cubes", None, "")]
    assert set(resolve_between(rgb, masks, None, "", "", plural)[1:]) == {0, 2}
    assert resolve_between(rgb, [], None, "", "", places) == (None, None, None)


def test_a_superlative_takes_the_best_pair_some_object_stands_between():
    """"the biggest cube between the mug and the duck": a red thing scoring a little better as
    "the mug" has nothing between it and the duck, so the pair with the real mug is taken
    (the best pair alone made the cube absent)."""
    rgb, masks = _scene([("red", 2, 20), ("yellow", 78, 20), ("blue", 40, 22), ("red", 78, 45)])
    heat = _heat_on(masks[2])
    mug = (_heat_on(masks[0]), "the mug", np.array([0.5, 0.0, 0.0, 0.55]), " and the duck.")
    duck = (_heat_on(masks[1]), "the duck", np.array([0.0, 0.6, 0.0, 0.0]), ".")
    scores = np.array([0.0, 0.0, 0.6, 0.0])
    assert resolve_between(rgb, masks, heat, "the biggest cube", "", [mug, duck], scores=scores) == (2, 0, 1)
    assert resolve_between(rgb, masks, heat, "the cube", "", [mug, duck], scores=scores) == (2, 0, 1)
