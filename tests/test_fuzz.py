"""Untrusted message contents: decoding raises only our typed errors, never anything else."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ros_ground_msgs.msg import EntityProposal, EntityProposals, MaskRLE

from ros_ground.nodes.conversions import ProposalError, msg_to_proposals
from ros_ground.rle import RLEError, counts_to_mask

counts = st.lists(st.integers(0, 40), max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.integers(-3, 9), st.integers(-3, 9), counts)
def test_rle_decoding_fuzz(height, width, runs):
    try:
        mask = counts_to_mask(height, width, runs)
    except RLEError:
        return
    assert mask.shape == (height, width) and int(mask.sum()) == sum(runs[1::2])


entity = st.builds(
    lambda i, h, w, runs, score, stability: EntityProposal(
        id=i, mask=MaskRLE(height=h, width=w, counts=runs), score=score, stability=stability),
    st.integers(0, 5), st.integers(0, 8), st.integers(0, 8), counts,
    st.floats(-1e3, 1e3, allow_nan=False, width=32), st.floats(width=32),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(entity, max_size=5), st.integers(0, 4),
       st.lists(st.floats(-1.0, 1.0, width=32), max_size=20), st.integers(1, 8), st.integers(1, 8))
def test_proposal_parsing_fuzz(entities, dim, features, height, width):
    msg = EntityProposals(entities=entities, feature_dim=dim, features=features)
    try:
        proposals = msg_to_proposals(msg, height, width)
    except ProposalError:
        return
    assert len(proposals) == len(entities)
    for p in proposals:
        assert p.mask.shape == (height, width)
        assert p.feature is None or p.feature.shape == (dim,)
    assert len({p.id for p in proposals}) == len(proposals)
    assert np.all([p.mask.dtype == bool for p in proposals])


@pytest.mark.parametrize("score, stability", [(float("nan"), 0.9), (float("inf"), 0.9),
                                              (0.9, float("nan")), (0.9, -0.1), (0.9, 1.5)])
def test_score_and_stability_are_checked(score, stability):
    # refer.resolve_pair adds stability to the command's scores: SAM's is an IoU, in [0, 1]
    pixel = dict(id=0, mask=MaskRLE(height=1, width=1, counts=[0, 1]))
    good = EntityProposals(entities=[EntityProposal(**pixel, score=0.9, stability=0.0)])
    assert msg_to_proposals(good, 1, 1)[0].mask.all()
    bad = EntityProposals(entities=[EntityProposal(**pixel, score=score, stability=stability)])
    with pytest.raises(ProposalError, match="entity 0: score must be finite and stability"):
        msg_to_proposals(bad, 1, 1)


@pytest.mark.parametrize("count, height, width, match", [
    (1025, 1, 1, "1025 proposals, above the limit of 1024 a message"),
    (65, 4096, 4096, r"65 proposals of 4096x4096 masks are 1090519040 mask pixels, above the limit of "
                     r"1073741824 a message \(64 proposals of this frame\)"),
    (600, 1080, 1920, "above the limit of 1073741824 a message \\(517 proposals of this frame\\)")])
def test_too_many_proposals_are_refused_before_any_mask_is_decoded(monkeypatch, count, height, width, match):
    """trial132 D2: each proposal's mask was decoded to a full frame before anything else was
    checked: 20000 masks of a 320x240 frame (1.2 MB on the wire) took a node from 1.3 to 2.4 GB."""
    from ros_ground.nodes import conversions

    decoded = []
    monkeypatch.setattr(conversions, "msg_to_mask",  # a full mask without its frame of memory
                        lambda m: decoded.append(m) or np.broadcast_to(np.True_, (m.height, m.width)))
    full = MaskRLE(height=height, width=width, counts=[0, height * width])
    msg = EntityProposals(entities=[EntityProposal(id=i, mask=full, score=0.9, stability=0.9)
                                    for i in range(count)])
    with pytest.raises(ProposalError, match=match):
        msg_to_proposals(msg, height, width)
    assert not decoded
    del msg.entities[(1024 if height == 1 else (1 << 30) // (height * width)):]
    assert len(msg_to_proposals(msg, height, width)) == len(decoded) == len(msg.entities)


def test_every_proposal_id_reaches_the_phrase_message():
    # a proposal's id is uint32: the phrase that merges it must carry any of them
    from ros_ground.nodes.conversions import phrase_to_msg
    from ros_ground.results import GroundedPhrase

    ids = [0, 2**31 + 5, 2**32 - 1]
    msg = EntityProposals(entities=[EntityProposal(
        id=i, mask=MaskRLE(height=1, width=1, counts=[0, 1]), score=0.9, stability=0.9)
        for i in ids])
    proposals = msg_to_proposals(msg, 1, 1)
    phrase = GroundedPhrase(text="a", char_start=0, char_end=1, score=0.9,
                            mask=proposals[0].mask, entity_ids=[p.id for p in proposals])
    assert list(phrase_to_msg(phrase).entity_ids) == ids


@pytest.mark.parametrize("score, confidence", [(1.016, 1.0), (-0.2, 0.0), (0.5, 0.5),
                                               (float("nan"), 0.0)])
def test_a_phrase_s_score_reaches_messages_and_json_as_a_confidence(score, confidence):
    # SAM's predicted IoU is a regression: a proposal's can be a little above 1
    from ros_ground.nodes.conversions import phrase_to_msg
    from ros_ground.results import GroundedPhrase

    phrase = GroundedPhrase(text="a", char_start=0, char_end=1, score=score,
                            mask=np.ones((1, 1), bool))
    assert phrase_to_msg(phrase).score == confidence == phrase.to_json()["score"]
