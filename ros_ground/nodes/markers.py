"""rviz markers of a grounded response: a box and a label at each phrase's 3-D position.

A pure function of the response message, so the node only publishes what it returns. Answer
phrase i has the overlay's colour i (ros_ground.overlay.phrase_colour); the command's own
phrases follow on in the same palette, the target drawn opaque with a "target:" label and its
landmark labelled with the relation ("landmark, left of:" or, where the target goes,
"destination, behind:").
Phrases without a position (no depth under the mask) get no marker. Every array starts with
one DELETEALL per namespace drawn in, so markers of the previous response never linger.
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


def response_markers(response, namespace: str = NAMESPACE, text_height: float = TEXT_HEIGHT_M
                     ) -> MarkerArray:
    """MarkerArray for a ros_ground_msgs/GroundedResponse: `clear_markers`, then for each phrase with
    a finite position a CUBE (centre `position`, edges `size`, at least MIN_SIZE_M) and a
    TEXT_VIEW_FACING label `text_height` metres tall just above it (optical frame: -y is up),
    in `response.header`'s frame. Ids: answer phrase i is boxes 2i / labels 2i+1 in
    `namespace`/answer; prompt phrase j the same in `namespace`/prompt."""
    out = clear_markers(response.header, namespace)
    answer = list(response.phrases)
    groups = ((GROUPS[0], answer, 0, -1), (GROUPS[1], list(response.prompt_phrases), len(answer),
                                          int(response.target)))
    landmarks = {int(response.landmark), int(response.second_landmark)} - {-1}  # "between" has two
    role = f"{'destination' if response.destination else 'landmark'}, {response.relation}: "
    for group, phrases, colour_offset, target in groups:
        for i, phrase in enumerate(phrases):
            p = phrase.position
            if not all(math.isfinite(v) for v in (p.x, p.y, p.z)):
                continue
            is_target = i == target
            r, g, b = (c / 255.0 for c in phrase_colour(colour_offset + i))
            colour = ColorRGBA(r=r, g=g, b=b, a=TARGET_ALPHA if is_target else ALPHA)
            size = [max(float(v), MIN_SIZE_M) if math.isfinite(v) else MIN_SIZE_M
                    for v in (phrase.size.x, phrase.size.y, phrase.size.z)]
            box = Marker(header=response.header, ns=f"{namespace}/{group}", id=2 * i,
                         type=Marker.CUBE, action=Marker.ADD, color=colour,
                         scale=Vector3(x=size[0], y=size[1], z=size[2]))
            box.pose.position = Point(x=p.x, y=p.y, z=p.z)
            box.pose.orientation.w = 1.0
            label = Marker(header=response.header, ns=f"{namespace}/{group}", id=2 * i + 1,
                           type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                           text=("target: " if is_target else role if group == "prompt"
                                 and i in landmarks else "") + phrase.text,
                           color=ColorRGBA(r=r, g=g, b=b, a=1.0),
                           scale=Vector3(z=text_height * (1.5 if is_target else 1.0)))
            label.pose.position = Point(x=p.x, y=p.y - size[1] / 2 - text_height, z=p.z)
            label.pose.orientation.w = 1.0
            out.markers.extend([box, label])
    return out


def clear_markers(header, namespace: str = NAMESPACE) -> MarkerArray:
    """A MarkerArray of one DELETEALL per namespace `response_markers` draws in (GROUPS under
    `namespace`), in `header`'s frame.

    rviz (MarkerCommon::processMessage), as visualization_msgs/Marker documents, deletes only
    the markers of a DELETEALL's `ns` when it is set, and every marker of the display when it
    is empty. One per namespace rather than one empty: the display's other markers (another
    node remapped onto the same topic with its own `namespace`) stay."""
    return MarkerArray(markers=[Marker(header=header, ns=f"{namespace}/{group}", action=Marker.DELETEALL)
                                for group in GROUPS])
