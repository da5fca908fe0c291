"""scene_change.same_scene: whether an older frame's proposals fit the newest one."""

import numpy as np
import pytest

from ros_ground.scene_change import same_scene


def _frame(height=480, width=640, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)


def _noisy(frame, seed, levels=6, shift=0):
    noise = np.random.RandomState(seed).randint(-levels, levels + 1, frame.shape)
    return np.clip(frame.astype(int) + noise + shift, 0, 255).astype(np.uint8)


def test_noise_and_an_exposure_step_are_the_same_scene():
    frame = _frame()
    assert same_scene(frame, frame)
    assert same_scene(frame, _noisy(frame, 1))
    assert same_scene(frame, _noisy(frame, 2, shift=20))  # auto-exposure brightens it all


@pytest.mark.parametrize("size", [(30, 30), (20, 15)])
def test_an_object_that_appears_or_goes_is_a_change(size):
    frame = _frame()
    moved = _noisy(frame, 1)
    moved[200:200 + size[1], 300:300 + size[0]] = frame[200:200 + size[1], 300:300 + size[0]] ^ 0x80
    assert not same_scene(frame, moved)


def test_a_speck_is_not_seen_and_other_frames_are_not_the_same():
    frame = _frame()
    speck = frame.copy()
    speck[100:105, 100:105] ^= 0x80  # 25 pixels of 307200: under max_changed
    assert same_scene(frame, speck)
    assert not same_scene(frame, _frame(seed=1))
    assert not same_scene(frame, frame[:, :320])
    assert not same_scene(frame, None) and not same_scene(None, None)
    grey = frame[..., 0]
    assert same_scene(grey, grey.copy()) and not same_scene(grey, 255 - grey)


def test_a_5_mp_frame_is_compared_on_a_grid():
    frame = _frame(1944, 2592)
    assert same_scene(frame, _noisy(frame, 1))
    moved = frame.copy()
    moved[900:960, 1200:1260] ^= 0x80  # 60 x 60 pixels: 0.07 % of the frame
    assert not same_scene(frame, moved)
