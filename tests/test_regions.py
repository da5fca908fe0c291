"""Region prompts: a box, mask or pixel becomes an entity mask whose token enters the context."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch

from ros_ground.errors import InputError
from ros_ground.lmm.tokens import capture_image_embeddings, image_features
from ros_ground.regions import (
    click_region,
    goal_region,
    referring_position,
    region_context,
    resolve_region,
)
from ros_ground.results import Proposal

SHAPE = (40, 60)


def _box(x0, y0, x1, y1):
    m = np.zeros(SHAPE, bool)
    m[y0:y1, x0:x1] = True
    return m


PROPOSALS = [Proposal(1, _box(0, 0, 60, 40)), Proposal(2, _box(10, 10, 30, 30)),
             Proposal(3, _box(40, 5, 55, 20))]


def test_a_point_takes_the_smallest_proposal_under_it_else_sam():
    np.testing.assert_array_equal(resolve_region(SHAPE, PROPOSALS, point=(15, 15)).mask,
                                  PROPOSALS[1].mask)
    sam = _box(0, 30, 5, 40)
    region = resolve_region(SHAPE, [], lambda x, y: sam, point=(2, 35))
    assert region.kind == "point"
    np.testing.assert_array_equal(region.mask, sam)
    with pytest.raises(InputError, match="outside"):
        resolve_region(SHAPE, PROPOSALS, point=(60, 5))


def test_a_box_takes_the_best_fitting_proposal_else_itself():
    np.testing.assert_array_equal(resolve_region(SHAPE, PROPOSALS, box=(39, 4, 17, 17)).mask,
                                  PROPOSALS[2].mask)
    np.testing.assert_array_equal(resolve_region(SHAPE, PROPOSALS, box=(0, 30, 5, 10)).mask,
                                  _box(0, 30, 5, 40))
    assert resolve_region(SHAPE, box=(55, 35, 5, 5)).mask.sum() == 25  # up to the corner


@pytest.mark.parametrize("box,words", [
    ((70, 0, 5, 5), "reaches outside the 60x40 image"),  # wholly outside
    ((58, 0, 5, 5), "reaches outside"),  # partly: clipping would ask about another box
    ((-5, 10, 20, 20), "reaches outside"),
    ((0, 0, 2**32 - 1, 2**32 - 1), "reaches outside"),  # an overflowed size, not the whole image
    ((5, 5, 0, 0), "is empty"), ((5, 5, 10, -3), "is empty"),
])
def test_a_box_not_wholly_in_the_image_is_refused(box, words):
    with pytest.raises(InputError, match=words):
        resolve_region(SHAPE, PROPOSALS, box=box)


def test_exactly_one_region_and_a_mask_of_the_image_size():
    with pytest.raises(InputError, match="exactly one"):
        resolve_region(SHAPE, PROPOSALS)
    with pytest.raises(InputError, match="exactly one"):
        resolve_region(SHAPE, PROPOSALS, point=(1, 1), box=(0, 0, 3, 3))
    with pytest.raises(InputError):
        resolve_region(SHAPE, mask=np.ones((3, 3), bool))
    with pytest.raises(InputError, match="empty"):
        resolve_region(SHAPE, mask=np.zeros(SHAPE, bool))


def _goal(counts=(), roi=(0, 0, 0, 0), x=-1, y=-1):
    return NS(region_mask=NS(counts=list(counts)),
              region=NS(x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3]),
              region_x=x, region_y=y)


def test_goal_fields_become_region_keywords():
    decode = lambda msg: np.ones(SHAPE, bool)  # noqa: E731
    assert goal_region(_goal(), decode) is None
    assert goal_region(_goal(x=3, y=4), decode) == {"point": (3, 4)}
    assert goal_region(_goal(roi=(1, 2, 3, 4), x=3, y=4), decode) == {"box": (1, 2, 3, 4)}
    assert goal_region(_goal(counts=[0, 5], roi=(1, 2, 3, 4)), decode)["mask"].all()
    assert goal_region(_goal(roi=(5, 5, 0, 0)), decode) == {"box": (5, 5, 0, 0)}  # refused later
    for x, y in [(3, -1), (-1, 3), (-5, -7), (-1, -2)]:  # only (-1, -1) means no pixel
        with pytest.raises(InputError, match="both -1 for no pixel"):
            goal_region(_goal(x=x, y=y), decode)

    def broken(msg):
        raise ValueError("counts do not sum to height x width")
    with pytest.raises(InputError, match="region_mask"):
        goal_region(_goal(counts=[1]), broken)


def _click(x, y, z, frame_id="cam"):
    return NS(header=NS(frame_id=frame_id), point=NS(x=x, y=y, z=z))


def _no_depth():
    raise LookupError("no depth received yet")


def test_a_click_at_z_0_in_the_cameras_frame_is_a_pixel():
    frame = NS(header=NS(frame_id="cam"), rgb=np.zeros((*SHAPE, 3), np.uint8))
    assert click_region(_click(5.0, 6.0, 0.0), frame, _no_depth) == {"point": (5.0, 6.0)}
    for click, words in [(_click(5.0, 6.0, 0.0, "map"), "in frame 'map'"),
                         (_click(5.0, 6.0, 0.0, ""), "without a frame_id"),
                         (_click(60.0, 6.0, 0.0), "outside the 60x40 image"),
                         (_click(5.0, 6.0, -0.5), "not in front of the camera"),
                         (_click(float("nan"), 6.0, 1.0), "not in front of the camera")]:
        with pytest.raises(InputError, match=words):
            click_region(click, frame, _no_depth)
    with pytest.raises(InputError, match="no image"):
        click_region(_click(5.0, 6.0, 0.0), None, _no_depth)
    # several cameras: a point in none of their frames names them all, not the first alone
    with pytest.raises(InputError, match=r"the image is in 'cam' \(the other cameras' in "
                                         r"'lcam', 'rcam'\): points are not transformed"):
        click_region(_click(5.0, 6.0, 0.0, "map"), frame, _no_depth, ["rcam", "lcam", "cam"])


def test_a_3d_click_is_projected_with_k_onto_the_surface_depth_sees():
    from ros_ground.spatial import back_project, pinhole_matrices

    frame = NS(header=NS(frame_id="cam"), rgb=np.zeros((*SHAPE, 3), np.uint8))
    k = pinhole_matrices(50.0, 50.0, 29.5, 19.5)[0]
    depth = np.full(SHAPE, 2.0, np.float32)  # a wall at 2 m ...
    depth[10:30, 10:30] = 1.0  # ... behind a box 1 m away
    on_box = back_project(np.array(15.0), np.array(20.0), np.array(1.0), k)
    x, y, z = (float(v) for v in on_box)
    col, row = click_region(_click(x, y, z), frame, lambda: (depth, k))["point"]
    assert (col, row) == pytest.approx((20.0, 15.0))
    # within CLICK_SURFACE_M of the surface: an object's centre, a little behind its face
    assert click_region(_click(x * 1.05, y * 1.05, 1.05), frame, lambda: (depth, k))["point"] == \
        pytest.approx((20.0, 15.0))
    for click, words in [(_click(x * 1.5, y * 1.5, 1.5), "surface at 1.000 m"),  # hidden
                         (_click(x * 0.5, y * 0.5, 0.5), "surface at 1.000 m"),  # free space
                         (_click(3.0, 0.0, 1.0), "outside")]:
        with pytest.raises(InputError, match=words):
            click_region(click, frame, lambda: (depth, k))
    with pytest.raises(InputError, match="no depth received yet"):
        click_region(_click(x, y, z), frame, _no_depth)
    holes = np.full(SHAPE, np.nan, np.float32)
    with pytest.raises(InputError, match="no depth return"):
        click_region(_click(x, y, z), frame, lambda: (holes, k))
    with pytest.raises(InputError, match="not registered"):
        click_region(_click(x, y, z), frame, lambda: (depth[:20], k))


def test_referring_word_position():
    spans = [(0, 4), (5, 7), (8, 12), (12, 13)]  # What is this ?
    assert referring_position("What is this?", spans) == 2
    assert referring_position("what is <region> next to", [(0, 4), (5, 7), (8, 16)]) == 2
    assert referring_position("Describe the scene.", [(0, 8)]) is None


@pytest.fixture(scope="module")
def lmm():
    from ros_ground.lmm import load_lmm

    return load_lmm("tiny", device="cpu")


def test_the_region_token_replaces_the_referring_word_in_the_prefill(lmm):
    image = np.random.RandomState(1).randint(0, 255, (64, 64, 3), dtype=np.uint8)
    features, geometry = image_features(lmm, image)
    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True
    prompt = "what is this"
    inputs, layout, _ = lmm.prepare(image, prompt)
    own = lmm.prompt_tokens(prompt, inputs["input_ids"])
    with capture_image_embeddings(lmm) as plain:
        lmm.generate(image, prompt, max_new_tokens=1, prompt_maps=False)
    with region_context(lmm, image, prompt, features, geometry, mask, "region") as index:
        with capture_image_embeddings(lmm) as seen:
            lmm.generate(image, prompt, max_new_tokens=1, prompt_maps=False)
    assert index is not None
    position = own.positions[index]
    cells = np.zeros((8, 8), bool)
    cells[:4, :4] = True
    expected = features[cells.ravel()].mean(0)
    np.testing.assert_allclose(seen["embeds"][position].numpy(), expected, rtol=1e-5, atol=1e-5)
    image_rows = layout.positions.numpy()
    # focus: the region's own image tokens stay, the others show the rest's median
    np.testing.assert_allclose(seen["embeds"][image_rows[cells.ravel()]].numpy(),
                               features[cells.ravel()], rtol=1e-5, atol=1e-5)
    rest = torch.from_numpy(features[~cells.ravel()]).median(0).values.numpy()
    np.testing.assert_allclose(seen["embeds"][image_rows[~cells.ravel()]].numpy(),
                               np.broadcast_to(rest, (48, features.shape[1])),
                               rtol=1e-5, atol=1e-5)
    others = [p for p in range(len(plain["embeds"])) if p != position
              and p not in set(image_rows.tolist())]
    np.testing.assert_allclose(seen["embeds"][others].numpy(), plain["embeds"][others].numpy())


def test_a_masks_box_is_its_set_pixels_extent():
    from ros_ground.masks import mask_bbox
    from ros_ground.regions import box_mask

    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True
    assert mask_bbox(mask) == (2, 1, 3, 2)
    assert mask_bbox(np.zeros((4, 4), bool)) == (0, 0, 0, 0)
    assert mask_bbox(box_mask((40, 50), 7, 3, 20, 11)) == (7, 3, 20, 11)
    rng = np.random.default_rng(0)
    for _ in range(20):  # scattered pixels, several parts: the extent of them all
        scattered = rng.random((30, 40)) > 0.995
        if scattered.any():
            rows, cols = np.nonzero(scattered)
            assert mask_bbox(scattered) == (cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1)



def test_a_point_outside_the_image_is_named_in_plain_numbers():
    import numpy as np

    from ros_ground.errors import InputError
    from ros_ground.regions import check_point

    with pytest.raises(InputError, match=r"^region point \(1660, 120.5\) is outside the 320x240 image$"):
        check_point((240, 320), np.float64(1660.0), np.float64(120.5))
