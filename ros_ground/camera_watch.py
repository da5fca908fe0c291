"""Camera stream health without ROS: how old a frame is, which reliability to subscribe with,
and what to say when publishers exist but no frame arrives.

Why: a reliable camera publishing large frames (1080p, 5 MP) reaches a best-effort reader
rarely or never over Fast DDS's default transport (bench/RESULTS.md section 6), and a camera
that stops leaves its last frame looking current. The nodes ask these functions, per camera,
on each command and on a slow timer. Times are seconds; reliabilities are the words
"reliable" / "best_effort".
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Sequence

RELIABLE, BEST_EFFORT = "reliable", "best_effort"
# proposals silent this long (or 4 of their usual gaps, if longer) while frames come: stopped
PROPOSALS_STALL_S = 10.0
# ... and this long before two proposal messages give a gap: the node publishes nothing during a
# run, and a first run on a CPU takes a minute or more (800x450, 8 zoom crops, sim SAM: 60 s)
PROPOSALS_FIRST_GAP_S = 300.0


def camera_topics(cameras: Sequence[str], name: str) -> list[str]:
    """The relative topic `name` of each camera: `name` for the unnamed camera "", else
    `<camera>/<name>`. Raises ValueError on a duplicate or an invalid camera name."""
    if not cameras:
        raise ValueError("cameras must name at least one camera ([''] = the single camera)")
    if len(set(cameras)) != len(cameras):
        raise ValueError(f"cameras must be distinct, got {list(cameras)}")
    for camera in cameras:
        if camera and not all(part and (part[0].isalpha() or part[0] == "_")
                              and all(c.isalnum() or c == "_" for c in part)
                              for part in camera.split("/")):
            raise ValueError(f"camera {camera!r} is not a valid ROS name (letters, digits, _ "
                             "and / between parts, not starting with a digit)")
    return [f"{camera}/{name}" if camera else name for camera in cameras]


def stale_frame_error(age_s: float, max_age_s: float, topic: str,
                      why: Callable[[], str] | None = None) -> str | None:
    """Why a frame received `age_s` ago may not be grounded, or None when it is fresh enough
    (`max_age_s` <= 0: any age); `why()`, asked only of a stale frame, ends it (`stale_reason`)."""
    if max_age_s <= 0 or age_s <= max_age_s:
        return None
    return (f"the newest frame on {topic!r} was received {age_s:.1f} s ago "
            f"(max_frame_age_s={max_age_s:g}): {why() if why else 'is the camera still publishing?'}")


def stale_reason(publishers: int, gap_s: float | None, max_age_s: float) -> str:
    """What a stale frame says of its camera, from the topic's `publishers` now and `gap_s`,
    the typical time between the frames this node received lately (None: too few yet). A
    camera that publishes but whose frames arrive further apart than `max_age_s` is not
    stopped: it is slow, or its frames reach this node late (large raw frames on a busy CPU
    take seconds to deserialise), and each command about it would be refused."""
    if not publishers:
        return "nothing publishes on it now"
    if gap_s is not None and gap_s > max_age_s:
        return (f"its frames reach this node {gap_s:.1f} s apart lately: raise max_frame_age_s "
                "for a slow camera; large raw frames on a busy CPU arrive late (use the "
                "compressed transport, or a smaller image)")
    return f"{publishers} publisher(s) on it: is the camera still publishing?"


def no_frame_reason(topic: str, publishers: int, others: Sequence[str], type_name: str) -> str:
    """Why no frame has come yet on `topic`, for a command that finds none: `publishers` on it
    now, and `others`, the topics of the same `type_name` that something else publishes (a
    mistyped or unremapped topic is the usual cause; five are named, those with this topic's
    last name first)."""
    if publishers:
        return (f"{publishers} publisher(s) on it, but no frame has arrived yet (a QoS this "
                "node cannot match is logged as a warning)")
    if not others:
        return f"nothing publishes on it, nor on any other {type_name} topic"
    # those named as this one is first ('/camera/color/image_raw' for 'image_raw')
    last = topic.rsplit("/", 1)[-1]
    shown = ", ".join(repr(t) for t in sorted(others, key=lambda t: (t.rsplit("/", 1)[-1] != last, t))[:5])
    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
    return f"nothing publishes on it; {type_name} topics published now: {shown}{more}"


def auto_reliability(publishers: Sequence[str], current: str) -> str:
    """The reliability an `image_qos=auto` subscription should have for these publishers.

    Reliable when every publisher is reliable (a best-effort reader loses most large frames
    of a reliable writer), best effort as soon as one publisher is best effort (a reliable
    reader would not match it at all); `current` while nobody publishes.
    """
    if not publishers:
        return current
    return RELIABLE if all(p == RELIABLE for p in publishers) else BEST_EFFORT


def silence_warning(topic: str, publishers: Sequence[str], subscribed: str,
                    silent_s: float, after_s: float) -> str | None:
    """A warning when `publishers` (their reliabilities) exist on `topic` but no frame has
    arrived for `silent_s` >= `after_s` seconds; names both ends' QoS when they differ."""
    if not publishers or silent_s < after_s:
        return None
    text = (f"{len(publishers)} publisher(s) on {topic!r} but no frame received for "
            f"{silent_s:.0f} s")
    differing = sorted({p for p in publishers if p != subscribed})
    if differing:
        text += (f"; publisher QoS {'/'.join(differing)} differs from this subscription's "
                 f"{subscribed} (set image_qos to match, or 'auto')")
        if subscribed == BEST_EFFORT:
            text += ": large frames from a reliable publisher rarely reach a best-effort reader"
    else:
        text += " (same QoS at both ends: check image_transport, the topic type and the network)"
    return text


def stamp_skew_warning(topic: str, stamp_ns: int, now_ns: int, max_skew_s: float,
                       sim_time: bool = False) -> str | None:
    """A warning when a frame's header stamp (`stamp_ns`) is more than `max_skew_s` seconds
    from the node clock's `now_ns`: the response carries that stamp, and a tf lookup at it (to
    put a target in the robot's frame) fails or uses the wrong pose. None when it is close.
    `sim_time`: the node's use_sim_time, which changes the advice."""
    if stamp_ns == 0:
        return (f"frames on {topic!r} have a zero header stamp: the driver sets none; each is "
                "stamped with the time it was received, which is late by the transport's latency "
                "for a tf lookup: set the stamp in the driver")
    skew_s = (now_ns - stamp_ns) / 1e9
    if abs(skew_s) <= max_skew_s:
        return None
    how = f"{skew_s:.0f} s behind" if skew_s > 0 else f"{-skew_s:.0f} s ahead of"
    advice = ("is /clock the bag's (ros2 bag play --clock), and are the frames from that bag?"
              if sim_time else "sync the clocks (e.g. chrony), or set use_sim_time when replaying a bag")
    return (f"frames on {topic!r} are stamped {how} this node's clock: a tf lookup at their "
            f"stamps fails; {advice}")


class ProposalFlow:
    """Whether a camera's proposals, once arriving, have stopped: their publisher left the
    graph, or none came for `stall_s` (or 4 of their usual gaps: a proposal node on a CPU takes
    seconds to a minute a frame, and publishes nothing during a run; `first_gap_s` before a
    gap is measured) while frames still arrive. Nothing else shows it: a killed proposal node
    only changes the answers' mode (`auto` grounds commands among the engine's own proposals,
    descriptions by points). `update`, called on a timer, says it once per change."""

    def __init__(self, topic: str, stall_s: float = PROPOSALS_STALL_S,
                 first_gap_s: float = PROPOSALS_FIRST_GAP_S):
        self.topic, self.stall_s, self.first_gap_s = topic, stall_s, first_gap_s
        self.stopped = False
        self._count, self._last_s = 0, None  # proposals received, and when the count last grew
        self._gaps: deque[float] = deque(maxlen=8)

    def update(self, now_s: float, received: int, publishers: int, frame_age_s: float | None) -> str | None:
        """What changed, or None: `received` proposal messages ever, `publishers` on the topic
        now, the newest frame `frame_age_s` old (None: none yet); `now_s` monotonic seconds."""
        if received != self._count:
            if self._last_s is not None:
                self._gaps.append(now_s - self._last_s)
            self._count, self._last_s = received, now_s
            if self.stopped:
                self.stopped = False
                return f"proposals on {self.topic!r} arrive again"
            return None
        if self._last_s is None or self.stopped:
            return None
        silent_s = now_s - self._last_s
        usual_s = 4 * statistics.median(self._gaps) if self._gaps else self.first_gap_s
        limit_s = max(self.stall_s, usual_s)
        if not publishers:
            why = "nothing publishes on it now"
        elif silent_s >= limit_s and frame_age_s is not None and frame_age_s <= limit_s / 2:
            why = f"none for {silent_s:.0f} s while frames still arrive"
        else:
            return None
        self.stopped = True
        return (f"proposals on {self.topic!r} stopped ({why}): is the mask_proposal_node "
                "running? Until they come back, mode auto grounds commands among the engine's "
                "own proposals and descriptions by points")
