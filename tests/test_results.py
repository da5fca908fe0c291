"""The result types' bounds (ros_ground.results)."""

import pytest

from ros_ground import results
from ros_ground.results import MAX_PROPOSAL_PIXELS, MAX_PROPOSALS, proposals_allowed


def test_proposals_allowed_is_defined_for_every_frame_size():
    # trial137: proposals_allowed(0, 0) divided by zero
    assert proposals_allowed(0, 0) == proposals_allowed(0, 640) == proposals_allowed(480, 0) == MAX_PROPOSALS
    assert proposals_allowed(1, 1) == MAX_PROPOSALS
    assert proposals_allowed(4096, 4096) == MAX_PROPOSAL_PIXELS // (4096 * 4096) == 64
    assert proposals_allowed(1024, 1024) == MAX_PROPOSALS
    with pytest.raises(ValueError, match="-1x2"):
        proposals_allowed(2, -1)


def test_proposals_allowed_says_what_a_message_may_hold(monkeypatch):
    """The count it gives is the one msg_to_proposals' pixel budget lets through, empty frames too."""
    monkeypatch.setattr(results, "MAX_PROPOSAL_PIXELS", 24 * 7)
    assert proposals_allowed(4, 6) == 7
    assert proposals_allowed(0, 6) == MAX_PROPOSALS  # 0 mask pixels: the pixel budget never binds
