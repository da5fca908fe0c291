"""rviz markers of a grounded response: a box and a label at each phrase's 3-D position.

A pure function of the response message, so the node only publishes what it returns. Answer
phrase i has the overlay's colour i (ros_ground.overlay.phrase_colour); the command's own
phrases follow on in the same palette, the target drawn opaque with a "target:" label and its
landmark labelled with the relation ("landmark, left of:" or, where the target goes,
"destination, behind:"). Phrases at one position (one object) share one box and one label;
phrases without a position (no depth under the mask) get no marker. Every array starts with
one DELETEALL per namespace drawn in, so markers of the previous response never linger. The
response's request_id is the `text` of each DELETEALL and box: rviz draws `text` for text
markers alone (Marker.msg: "only used for text markers"), so a reader matches an array to its
response with no label or namespace changed.
"""

from __future__ import annotations

import math

from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ros_ground.overlay import phrase_colour

NAMESPACE = "ros_ground"
GROUPS = ("answer", "prompt")  # the sub-namespaces drawn in: `namespace`/answer, `namespace`/prompt
MIN_SIZE_M = 0.005  # rviz draws nothing for a zero-size box (a flat or one-point surface)
TEXT_HEIGHT_M = 0.03
ALPHA, TARGET_ALPHA = 0.35, 0.8
# phrases whose positions are this close are one object: phrases grounded on one entity share
# its mask, hence its position exactly; distinct objects' centres are centimetres apart at least
SAME_PLACE_M = 0.001


def response_markers(response, namespace: str = NAMESPACE, text_height: float = TEXT_HEIGHT_M
                     ) -> MarkerArray:
    """MarkerArray for a ros_ground_msgs/GroundedResponse: `clear_markers`, then for each object
    with a finite position a CUBE (centre `position`, edges `size`, at least MIN_SIZE_M) and a
    TEXT_VIEW_FACING label `text_height` metres tall just above it (optical frame: -y is up),
    in `response.header`'s frame. Ids: answer phrase i is boxes 2i / labels 2i+1 in
    `namespace`/answer; prompt phrase j the same in `namespace`/prompt.

    Phrases at one position (within SAME_PLACE_M: one object, e.g. the answer's "the red lego
    brick" and the command's target "the red mug") get one box and one label, "target: the red
    mug / the red lego brick": two boxes and labels at one pose are unreadable; a text already
    there is not repeated. The command's
    phrase, its target first, draws it; an answer's phrase only when no command phrase is there.
    """
    out = clear_markers(response.header, namespace, response.request_id)
    answer, prompt = list(response.phrases), list(response.prompt_phrases)
    target = int(response.target)
    targets = {target, *(int(k) for k in response.more_targets)} - {-1}  # "the mug and the cube"
    landmarks = {int(response.landmark), int(response.second_landmark)} - {-1}  # "between" has two
    role = f"{'destination' if response.destination else 'landmark'}, {response.relation}: "
    located = [(group, i, phrase) for group, phrases in ((GROUPS[0], answer), (GROUPS[1], prompt))
               for i, phrase in enumerate(phrases) if _finite(phrase.position)]

    def precedence(item):  # the command's phrases, its target first, then the answer's
        group, i, _ = item
        return (0, i != target, i) if group == GROUPS[1] else (1, False, i)

    texts = {}  # (group, i) of each drawn phrase -> the label texts of the phrases at its place
    for group, i, phrase in sorted(located, key=precedence):
        text = ("target: " if group == GROUPS[1] and i in targets else role if group == GROUPS[1]
                and i in landmarks else "") + phrase.text
        owner = next((key for key in texts if _same_place(_phrase(key, answer, prompt).position,
                                                         phrase.position)), None)
        said = texts.setdefault(owner or (group, i), {})  # phrase text -> label text, in order
        said.setdefault(phrase.text.strip().lower(), text)  # "Where is the blue cube?": once
    for group, i, phrase in located:
        if (group, i) not in texts:
            continue
        p = phrase.position
        is_target = group == GROUPS[1] and i == target
        r, g, b = (c / 255.0 for c in phrase_colour(i + (len(answer) if group == GROUPS[1] else 0)))
        colour = ColorRGBA(r=r, g=g, b=b, a=TARGET_ALPHA if is_target else ALPHA)
        size = [max(float(v), MIN_SIZE_M) if math.isfinite(v) else MIN_SIZE_M
                for v in (phrase.size.x, phrase.size.y, phrase.size.z)]
        box = Marker(header=response.header, ns=f"{namespace}/{group}", id=2 * i,
                     type=Marker.CUBE, action=Marker.ADD, color=colour, text=response.request_id,
                     scale=Vector3(x=size[0], y=size[1], z=size[2]))
        box.pose.position = Point(x=p.x, y=p.y, z=p.z)
        box.pose.orientation.w = 1.0
        label = Marker(header=response.header, ns=f"{namespace}/{group}", id=2 * i + 1,
                       type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                       text=" / ".join(texts[(group, i)].values()), color=ColorRGBA(r=r, g=g, b=b, a=1.0),
                       scale=Vector3(z=text_height * (1.5 if is_target else 1.0)))
        label.pose.position = Point(x=p.x, y=p.y - size[1] / 2 - text_height, z=p.z)
        label.pose.orientation.w = 1.0
        out.markers.extend([box, label])
    return out


def _finite(p) -> bool:
    return all(math.isfinite(v) for v in (p.x, p.y, p.z))


def _same_place(a, b) -> bool:
    return max(abs(a.x - b.x), abs(a.y - b.y), abs(a.z - b.z)) < SAME_PLACE_M


def _phrase(key, answer, prompt):
    group, i = key
    return (answer if group == GROUPS[0] else prompt)[i]


def clear_markers(header, namespace: str = NAMESPACE, request_id: str = "") -> MarkerArray:
    """A MarkerArray of one DELETEALL per namespace `response_markers` draws in (GROUPS under
    `namespace`), in `header`'s frame, each with `request_id` as its `text`.

    rviz (MarkerCommon::processMessage), as visualization_msgs/Marker documents, deletes only
    the markers of a DELETEALL's `ns` when it is set, and every marker of the display when it
    is empty. One per namespace rather than one empty: the display's other markers (another
    node remapped onto the same topic with its own `namespace`) stay."""
    return MarkerArray(markers=[Marker(header=header, ns=f"{namespace}/{group}", action=Marker.DELETEALL,
                                       text=request_id) for group in GROUPS])
