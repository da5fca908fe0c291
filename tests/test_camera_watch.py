"""camera_watch: per-camera topic names, frame age, auto reliability, the silence warning."""

import pytest

from ros_ground.camera_watch import (
    BEST_EFFORT,
    RELIABLE,
    auto_reliability,
    camera_topics,
    silence_warning,
    stale_frame_error,
    stale_reason,
)


def test_camera_topics_prefix_named_cameras_and_keep_the_single_camera_plain():
    assert camera_topics([""], "image") == ["image"]
    assert camera_topics(["left", "right"], "command") == ["left/command", "right/command"]
    assert camera_topics(["arm/wrist"], "image") == ["arm/wrist/image"]


@pytest.mark.parametrize("cameras", [[], ["a", "a"], ["1cam"], ["bad-name"], ["a//b"], ["", ""]])
def test_camera_topics_refuse_bad_lists(cameras):
    with pytest.raises(ValueError, match="camera"):
        camera_topics(cameras, "image")


def test_stale_frame_error_says_how_old_the_frame_is():
    assert stale_frame_error(0.4, 1.0, "/cam/image") is None
    assert stale_frame_error(21.3, 0.0, "/cam/image") is None  # 0: no limit
    error = stale_frame_error(21.3, 1.0, "/cam/image")
    assert "21.3 s ago" in error and "max_frame_age_s=1" in error and "/cam/image" in error


def test_a_stale_frame_says_whether_the_camera_stopped_or_its_frames_come_slowly():
    # 5 MP frames on a busy CPU can reach the node 1-2.4 s apart while the camera publishes at
    # 5 Hz: the refusal says which, rather than always asking "is the camera still publishing?"
    assert stale_reason(0, None, 1.0) == "nothing publishes on it now"
    assert stale_reason(1, None, 1.0) == "1 publisher(s) on it: is the camera still publishing?"
    assert stale_reason(2, 0.2, 1.0).startswith("2 publisher(s)")
    slow = stale_reason(1, 2.4, 1.0)
    assert slow.startswith("its frames reach this node 2.4 s apart lately: raise max_frame_age_s")
    assert stale_frame_error(3.0, 1.0, "/cam/image", lambda: slow).endswith(slow)


def test_auto_reliability_follows_the_publishers():
    assert auto_reliability([], RELIABLE) == RELIABLE
    assert auto_reliability([], BEST_EFFORT) == BEST_EFFORT  # nobody publishes: keep it
    assert auto_reliability([RELIABLE, RELIABLE], BEST_EFFORT) == RELIABLE
    # one best-effort publisher would never match a reliable reader
    assert auto_reliability([RELIABLE, BEST_EFFORT], RELIABLE) == BEST_EFFORT


def test_silence_warning_only_with_publishers_after_the_delay_naming_both_qos():
    assert silence_warning("/image", [], RELIABLE, 60.0, 5.0) is None
    assert silence_warning("/image", [RELIABLE], BEST_EFFORT, 4.0, 5.0) is None
    text = silence_warning("/image", [RELIABLE], BEST_EFFORT, 12.0, 5.0)
    assert "1 publisher(s) on '/image'" in text and "12 s" in text
    assert "publisher QoS reliable differs from this subscription's best_effort" in text
    same = silence_warning("/image", [RELIABLE], RELIABLE, 12.0, 5.0)
    assert "differs" not in same and "same QoS" in same


def test_a_frame_stamped_far_from_the_nodes_clock_is_warned_about():
    from ros_ground.camera_watch import stamp_skew_warning

    now = 1_764_000_000 * 10**9
    assert stamp_skew_warning("/cam", now - 2 * 10**9, now, 10.0) is None  # a slow driver
    assert stamp_skew_warning("/cam", now + 10**9, now, 10.0) is None  # clocks a second apart
    old = stamp_skew_warning("/cam", 1000 * 10**9, now, 10.0)  # a bag's stamp, on wall time
    assert old.startswith(f"frames on '/cam' are stamped {(now // 10**9) - 1000} s behind this "
                          "node's clock") and "use_sim_time" in old
    assert "3600 s ahead of this node's clock" in stamp_skew_warning("/cam", now + 3600 * 10**9,
                                                                     now, 10.0)
    assert "zero header stamp" in stamp_skew_warning("/cam", 0, now, 10.0)
    # on sim time already (use_sim_time set, as the warning above advises): is /clock the bag's?
    assert "ros2 bag play --clock" in stamp_skew_warning("/cam", 1000 * 10**9, now, 10.0, True)


def test_proposals_that_stop_while_frames_come_are_said_once_and_again_when_back():
    from ros_ground.camera_watch import ProposalFlow

    flow = ProposalFlow("/proposals", stall_s=10.0)
    assert flow.update(0.0, 0, 0, None) is None  # none yet: nothing to miss
    assert flow.update(1.0, 0, 1, 0.1) is None
    for second in range(2, 8):  # one a second
        assert flow.update(float(second), second, 1, 0.1) is None
    assert flow.update(16.0, 7, 1, 0.1) is None  # 9 s silent: within stall_s
    said = flow.update(17.0, 7, 1, 0.1)
    assert said.startswith("proposals on '/proposals' stopped (none for 10 s while frames still "
                           "arrive): is the mask_proposal_node running?"), said
    assert flow.stopped
    assert flow.update(18.0, 7, 1, 0.1) is None  # once per change
    assert flow.update(19.0, 8, 1, 0.1) == "proposals on '/proposals' arrive again"
    assert not flow.stopped


def test_proposals_whose_publisher_left_are_said_to_stop_at_once_and_not_when_frames_stop_too():
    from ros_ground.camera_watch import ProposalFlow

    flow = ProposalFlow("/p", stall_s=10.0)
    flow.update(0.0, 1, 1, 0.1)
    assert "stopped (nothing publishes on it now)" in flow.update(1.0, 1, 0, 0.1)
    quiet = ProposalFlow("/p", stall_s=10.0)
    quiet.update(0.0, 1, 1, 0.1)
    assert quiet.update(60.0, 1, 1, 55.0) is None  # the camera stopped too: nothing to pair with
    slow = ProposalFlow("/p", stall_s=10.0)  # a proposal node on a CPU: one every 5 s
    for n, t in enumerate(range(0, 30, 5)):
        slow.update(float(t), n + 1, 1, 0.1)
    assert slow.update(25.0 + 15, 6, 1, 0.1) is None  # 15 s: three gaps, not yet four
    assert "none for 20 s" in slow.update(25.0 + 20, 6, 1, 0.1)


def test_proposals_of_a_minute_long_run_are_not_said_to_stop_and_a_stopped_node_still_is():
    from ros_ground.camera_watch import ProposalFlow

    flow = ProposalFlow("/p", stall_s=10.0)  # the node's 2 s timer, frames every 0.1 s
    flow.update(0.0, 1, 1, 0.1)  # the first run's proposals; the next run takes 60 s after a 5 s rest
    assert all(flow.update(float(t), 1, 1, 0.1) is None for t in range(2, 65, 2))
    assert flow.update(65.0, 2, 1, 0.1) is None  # a gap of 65 s measured: 4 of them is the limit
    assert all(flow.update(65.0 + t, 2, 1, 0.1) is None for t in range(2, 259, 2))
    assert "none for 260 s while frames still arrive" in flow.update(65.0 + 260, 2, 1, 0.1)
    stopped = ProposalFlow("/p", stall_s=10.0)  # stopped after its first proposals: no gap yet
    stopped.update(0.0, 1, 1, 0.1)
    assert stopped.update(299.0, 1, 1, 0.1) is None
    assert "stopped (none for 300 s" in stopped.update(300.0, 1, 1, 0.1)
