"""Where the grounding node's answers go: each camera's `response`, `overlay` and `markers`
(lifecycle publishers, made at configure: they publish only while the node is active), and an
`ask` goal's result (nodes/goals.py).
"""

from __future__ import annotations

from ros_ground_msgs.msg import GroundedResponse
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ros_ground.camera_watch import camera_topics
from ros_ground.nodes.common import LATCHED, RELIABLE
from ros_ground.nodes.conversions import rgb_to_image_msg
from ros_ground.nodes.markers import NAMESPACE, clear_markers, response_markers
from ros_ground.overlay import draw_overlay, with_target

# the answers whose markers replace those on screen: a grounding, or a failure that says the
# last one no longer holds (no camera frame, the model failed)
_SHOWN = (GroundedResponse.STATUS_OK, GroundedResponse.STATUS_NO_IMAGE, GroundedResponse.STATUS_MODEL_ERROR)


class CameraOutputs:
    """The publishers of each camera (none before `create`) and the node's pending goals."""

    def __init__(self, goals):
        self._goals = goals
        self.responses, self.overlays, self.markers = {}, {}, {}
        self._drawn = {}  # camera -> (request_id, overlay Image) drawn, for deliver to publish
        self._frames = {}  # camera -> frame_id of its last markers, which withdraw clears

    def create(self, node, cameras: list[str]) -> None:
        """Make every camera's publishers with `node.lifecycle_publisher` (ModelNode); the
        grounding node checks their type support first (common.check_type_support)."""
        topics = (camera_topics(cameras, name) for name in ("response", "overlay", "markers"))
        for camera, response, overlay, markers in zip(cameras, *topics):
            self.responses[camera] = node.lifecycle_publisher(GroundedResponse, response, RELIABLE)
            # the pictures latched, for a viewer that starts later; not the response: a client
            # that starts later would take the last answer for the answer to its own command
            self.overlays[camera] = node.lifecycle_publisher(Image, overlay, LATCHED)
            self.markers[camera] = node.lifecycle_publisher(MarkerArray, markers, LATCHED)

    def withdraw(self, stamp) -> None:
        """Publish each camera's markers cleared (markers.clear_markers), while the node is
        still active: latched, the last answer's boxes would show in an rviz started while the
        node is inactive as if current. Stamped `stamp` (builtin_interfaces/Time, now), in the
        frame of the camera's last markers: a bag sorted by stamp keeps them in their place."""
        for camera, publisher in self.markers.items():
            header = Header(stamp=stamp, frame_id=self._frames.get(camera, ""))
            publisher.publish(clear_markers(header, NAMESPACE, ""))

    def clear(self) -> None:
        self.responses, self.overlays, self.markers, self._drawn, self._frames = {}, {}, {}, {}, {}

    def deliver(self, request, response: GroundedResponse) -> None:
        """The one answer of a request (requests.Request): on its camera's `response` and as
        its goal's result, even when publishing raises (a publisher cleanup destroyed under a
        request that outlived the wait for it): its execute callback waits for it. Then its
        markers (markers.response_markers, which carry its request_id) on the camera's
        `markers`, and the overlay `show` drew for it on `overlay`: after the response, so a
        reader has it when its pictures come. An answer that failed for want of a frame or in
        the model clears the markers (the DELETEALLs alone): rviz would otherwise show the last
        answer's boxes as this one's. A request refused (busy, bad input, a click on no object)
        or canceled leaves them: the answer on screen, maybe the one the robot acts on, stands."""
        camera = request.camera
        publisher = self.responses.get(camera)
        try:
            if publisher is not None:
                publisher.publish(response)
        finally:
            if request.goal_handle is not None:
                self._goals.finish(request.goal_handle, response)
        markers, overlays = self.markers.get(camera), self.overlays.get(camera)
        if markers is not None and response.status in _SHOWN:
            markers.publish(response_markers(response))
            self._frames[camera] = response.header.frame_id
        # taken by its own request's answer alone: a request refused meanwhile (busy) is
        # answered from another thread while this one's is on its way
        drawn = self._drawn.get(camera)
        if drawn is not None and drawn[0] == response.request_id:
            self._drawn.pop(camera, None)
            if overlays is not None:
                overlays.publish(drawn[1])

    def show(self, camera: str, frame, result, response: GroundedResponse, overlay: bool) -> None:
        """Draw the overlay of `result` on `frame` (when `overlay`), which `deliver` publishes
        after `response`. Overlay and markers are latched (common.LATCHED), so they are
        published with no subscriber too, for a viewer that starts later: drawing a 640x480
        overlay takes ~12 ms of a 2-core CPU (`publish_overlay` turns it off). A failed answer,
        with no frame to draw on, leaves the last overlay: a picture shows the scene it was
        drawn on, where markers would sit on the live one as current."""
        publisher = self.overlays.get(camera)
        if overlay and publisher is not None:
            phrases = with_target(result.phrases, result.prompt_phrases, result.target)
            self._drawn[camera] = (response.request_id,
                                   rgb_to_image_msg(draw_overlay(frame.rgb, phrases), frame.header))
