"""Grounding node and mask-proposal node, composed in one process or as separate processes.

    ros2 launch ros_ground ground.launch.py image:=/camera/image_raw namespace:=ground
    ros2 launch ros_ground ground.launch.py image:=/camera/color/image_raw \
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info \
        clicked_point:=/clicked_point
    ros2 launch ros_ground ground.launch.py model:=/models/llava-1.5-7b-hf composed:=false
    ros2 launch ros_ground ground.launch.py cameras:="[left, right]"   # left/image, right/image
    ros2 launch ros_ground ground.launch.py cameras:="[left, right]" \
        image:="{left: /stereo/left/image_rect, right: /stereo/right/image_rect}" \
        camera_info:="{left: /stereo/left/camera_info, right: /stereo/right/camera_info}"
    ros2 launch ros_ground ground.launch.py use_sim_time:=true   # beside `ros2 bag play --clock`

Model arguments left empty take their values from params_file (config/default.yaml).
`image`, `depth` and `camera_info` are one topic for one camera, or a mapping camera: topic for
the cameras of `cameras` (or, without it, of params_file); a single topic other than the
default with several cameras, or a mapping naming another camera, is refused.
"""

import difflib
import os
import sys

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import evaluate_condition_expression
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.utilities import make_namespace_absolute, prefix_namespace
from rclpy.exceptions import InvalidTopicNameException
from rclpy.validate_topic_name import validate_topic_name

from launch import LaunchDescription
from ros_ground import camera_watch, param_files, settings

ARGUMENTS = {
    "namespace": ("", "namespace of the nodes and their topics"),
    "image": ("/camera/image_raw", "the camera's image topic (sensor_msgs/Image); with several "
              "cameras a mapping camera: topic, e.g. \"{left: /stereo/left/image_rect, right: "
              "/stereo/right/image_rect}\" (a camera left out reads its own, right/image; "
              "named cameras do not read the default)"),
    "depth": ("", "depth registered to the image, e.g. /camera/aligned_depth_to_color/image_raw, "
              "or a mapping camera: topic as for image (empty = `depth` in the namespace, "
              "left/depth for a camera left)"),
    "camera_info": ("", "the image's sensor_msgs/CameraInfo, e.g. /camera/color/camera_info, or "
                    "a mapping camera: topic as for image (empty = `camera_info` in the "
                    "namespace, left/camera_info for a camera left)"),
    "clicked_point": ("", "rviz's Publish Point topic, e.g. /clicked_point, one for all the "
                      "cameras (empty = `clicked_point` in the namespace)"),
    "model": ("", "LMM: Hugging Face id, local directory, sim (embedded) or tiny (random, for "
              "tests) (empty = from params_file)"),
    "sam_model": ("", "vit_h | vit_l | vit_b | directory | sim (embedded) | tiny (random, for "
                  "tests) (empty = from params_file)"),
    "sam_checkpoint": ("", "SAM weights file (empty = from params_file, or none when "
                       "sam_model is given here: a checkpoint belongs to its model)"),
    "use_proposals": ("true", "run the mask-proposal node (entities / auto mode)"),
    "composed": ("true", "one process sharing SAM and its embedding, or separate processes"),
    "params_file": ("", "ROS parameters file (empty = the package's config/default.yaml)"),
    "cameras": ("", "camera names, e.g. [left, right]: topics left/image, left/command, ... "
                "(empty = from params_file; default one camera on `image`)"),
    "use_sim_time": ("false", "the nodes' clock is /clock (a bag replayed with `ros2 bag play "
                     "--clock`), not the system's"),
}
# the arguments that name a camera's own topic (each camera reads `<camera>/image`, ...: one
# topic, or a mapping camera -> topic); clicked_point is one topic for all the cameras
PER_CAMERA = ("image", "depth", "camera_info")


def _warn_misspelt(context, known) -> None:
    """Warn of each `name:=value` on the command line that is none of `known` but close to one
    (image_topic:= for image:=): launch ignores an argument no file declares, silently. Only
    when this file or sim.launch.py is the one `ros2 launch` runs: a launch file including this
    one declares arguments of its own (`camera:=`), which launch gives no way to list here."""
    if not any(os.path.basename(a) in ("ground.launch.py", "sim.launch.py") for a in sys.argv):
        return
    given = [a.split(":=", 1)[0] for a in context.argv if ":=" in a]
    for name in given:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        if name not in known and close:
            get_logger("ground.launch.py").warning(
                f"launch argument {name!r} is declared by no launch file here, so it is ignored "
                f"(did you mean {' or '.join(map(repr, close))}? `--show-args` lists them)")


def _flag(context, name: str) -> bool:
    """Launch argument `name` as a boolean by launch's own rule (true/1, false/0, any case);
    anything else is an error naming the argument: a typo such as composed:=ture must not
    quietly mean false, and launch's own message names no argument."""
    try:
        return evaluate_condition_expression(context, [LaunchConfiguration(name)])
    except ValueError:
        value = LaunchConfiguration(name).perform(context)
        raise ValueError(f"launch argument {name}: got {value!r}, expected one of true, false, "
                         "1, 0") from None


class _NamesLoader(param_files.no_aliases(yaml.BaseLoader)):
    """BaseLoader refusing a key given twice: PyYAML keeps the last silently, so
    "{left: /a, left: /b}" would drop /a without a word; and aliases, as the
    params file's loader (a "billion laughs" value grows to gigabytes once walked)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(
                None, None, f"camera {', '.join(map(repr, twice))} given twice", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _yaml(text: str):
    """`text` read as YAML with every scalar a string: camera names are names, so "[yes, no]"
    and "{on: /a}" must not become True / False (YAML 1.1's booleans) nor "null" None. A
    mapping giving a key twice raises yaml.YAMLError."""
    return yaml.load(text, Loader=_NamesLoader)


def _cameras(text: str) -> list[str]:
    """The `cameras` launch argument ("[left, right]", or one bare name) as a list of names,
    checked as the node checks its parameter (camera_watch.camera_topics); an error naming the
    argument, not launch's or YAML's own (an empty list has no type launch can pass)."""
    try:
        cameras = _yaml(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"launch argument cameras: {text!r} is no YAML list of names, e.g. "
                         f"\"[left, right]\" ({str(exc).splitlines()[0]})") from None
    names = [str(c) for c in (cameras if isinstance(cameras, list) else [cameras])]
    try:
        camera_watch.camera_topics(names, "image")
    except ValueError as exc:
        raise ValueError(f"launch argument cameras: {exc}") from None
    return names


def _file_cameras(params_file: str, node: str = "grounding_node") -> list[str] | None:
    """The cameras the params file gives `node` (the default [""], one unnamed camera,
    where it gives none), or None where its value is no valid list: the node refuses that
    itself at configure, and launch cannot tell which topics it would read."""
    specs = settings.GROUNDING if node == "grounding_node" else settings.PROPOSAL
    try:
        given = param_files.params_file(params_file, node, specs, required=False).get("cameras", [""])
        if not isinstance(given, list) or not all(isinstance(c, str) for c in given):
            return None  # a string array parameter: the node refuses "left" or [left, 5]
        camera_watch.camera_topics(given, "image")
    except (OSError, TypeError, ValueError):
        return None
    return list(given)


def _topic_or_mapping(name: str, text: str) -> str | dict[str, str]:
    """Launch argument `name` as one topic, or as a YAML mapping {camera: topic}
    ("{left: /stereo/left/image_rect, right: /stereo/right/image_rect}"): a ValueError naming
    the argument for a mapping YAML cannot read or whose topics are not all text."""
    try:
        value = _yaml(text)
    except yaml.YAMLError as exc:
        if not text.lstrip().startswith("{"):
            _check_topic(name, text, "the topic")
            return text
        raise ValueError(f"launch argument {name}: {text!r} is no YAML mapping of camera to topic, "
                         f"e.g. \"{{left: /stereo/left/{name}, right: /stereo/right/{name}}}\" "
                         f"({str(exc).splitlines()[0]})") from None
    if not isinstance(value, dict):
        _check_topic(name, text, "the topic")
        return text
    mapping = {"" if k is None else str(k): v for k, v in value.items()}
    bad = [k for k, v in mapping.items() if not isinstance(v, str) or not v.strip()]
    if bad or not mapping:
        raise ValueError(f"launch argument {name}: {text!r} must map each camera to a topic"
                         + (f" (no topic for {', '.join(map(repr, bad))})" if bad else ""))
    for camera, topic in mapping.items():
        _check_topic(name, topic, f"the topic of camera {camera!r}")
    return mapping


def _check_topic(name: str, topic: str, what: str) -> None:
    """A ValueError naming launch argument `name` when `topic` is no ROS topic name ("[/a, /b]",
    "/a b", "5"): rcl would refuse the remapping and end the node, after launch had started."""
    if not topic:
        return
    try:
        validate_topic_name(topic)
    except InvalidTopicNameException as exc:
        raise ValueError(f"launch argument {name}: {what} {topic!r} is no ROS topic name: "
                         f"{str(exc).splitlines()[0]}") from None


def _camera_remaps(name: str, text: str, cameras: list[str] | None) -> list[tuple[str, str]]:
    """The remappings of launch argument `name` (image, depth or camera_info): each camera's own
    topic (`name`, `left/name`: camera_watch.camera_topics, what the nodes subscribe) to the
    topic given for it. `cameras`: those the nodes run with (None: not known, the params file's
    value is invalid). One topic is the one camera's; the argument's default (the image's
    /camera/image_raw, empty for the others) is only the unnamed camera's, so named cameras keep
    their own topics then. A mapping {camera: topic} remaps the cameras it names; the others
    keep their own topics. ValueError, naming the argument: one topic other than the default
    with several cameras (the nodes would ignore it), or a mapping naming no such camera."""
    value = _topic_or_mapping(name, text)
    default = ARGUMENTS[name][0]
    if isinstance(value, str):
        if not value:
            return []
        if cameras is None or (value == default and "" in cameras):
            return [(name, value)]
        if value == default:
            return []
        if len(cameras) == 1:
            return [(camera_watch.camera_topics(cameras, name)[0], value)]
        example = ", ".join(f"{c or repr('')}: {value if i == 0 else '...'}" for i, c in enumerate(cameras))
        raise ValueError(f"launch argument {name}: one topic {value!r} for the {len(cameras)} cameras "
                         f"{cameras}, each of which reads its own "
                         f"({', '.join(camera_watch.camera_topics(cameras, name))}): give each camera "
                         f"its topic as a mapping, {name}:=\"{{{example}}}\" (given on the command "
                         "line, or by a launch file including this one: sim.launch.py's image is its "
                         "one camera's image_raw)")
    # a mapping never sets the cameras: they are cameras:='s, else the params file's, as for
    # the nodes. Taking its keys for the cameras would drop, silently, a camera the params
    # file names that the mapping leaves out, and give image:= and depth:= a say over which
    # cameras run; a key that is no camera is an error naming the cameras instead
    known = cameras if cameras is not None else list(value)
    unknown = [k for k in value if k not in known]
    if unknown:
        raise ValueError(f"launch argument {name}: no camera named {', '.join(map(repr, unknown))}"
                         f" (the cameras: {known}; name them with cameras:=\"[left, right]\", "
                         "or in the params file)")
    try:
        topics = camera_watch.camera_topics(list(value), name)
    except ValueError as exc:
        raise ValueError(f"launch argument {name}: {exc}") from None
    return list(zip(topics, value.values()))


def _stop_if_failed(event, context):
    """A model process exited with an error (its ROS arguments refused, a crash) while launch was
    not stopping: the graph is gone, so the launch fails. Raised here, the error makes launch
    stop every process and `ros2 launch` exit 1, where it would exit 0 once nothing ran, which
    systemd or CI would take for a good bring-up (sim.launch.py does the same for its camera)."""
    if event.returncode and not context.is_shutdown:
        raise RuntimeError(f"{event.action.name} exited with code {event.returncode}: stopping the "
                           "launch")
    return None


def _nodes(context, *args, **kwargs):
    _warn_misspelt(context, [*ARGUMENTS, "seed"])  # seed: sim.launch.py's own, which includes this
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    params_file = arg["params_file"] or os.path.join(
        get_package_share_directory("ros_ground"), "config", "default.yaml")
    if not os.path.isfile(params_file):
        # launch_ros only warns and starts the nodes on their defaults: the embedded sim models
        # in place of the robot's
        raise FileNotFoundError(f"params_file {params_file!r} is not a file")
    use_proposals = _flag(context, "use_proposals")
    # the nodes' namespace as launch_ros makes it: under an including file's PushRosNamespace
    namespace = make_namespace_absolute(prefix_namespace(
        context.launch_configurations.get("ros_namespace"), arg["namespace"])).rstrip("/")
    started = [f"{namespace}/grounding_node"] + ([f"{namespace}/mask_proposal_node"]
                                                 if use_proposals else [])
    unmatched = param_files.unmatched(params_file, started)
    if unmatched:  # as with no file: the nodes would start on the sim models' defaults
        raise ValueError(f"params_file: {unmatched}")
    overrides = {k: arg[k] for k in ("model", "sam_model", "sam_checkpoint") if arg[k]}
    overrides["use_sim_time"] = _flag(context, "use_sim_time")
    if "sam_model" in overrides:  # the params file's checkpoint was for its own sam_model
        overrides.setdefault("sam_checkpoint", "")
    if arg["cameras"]:
        overrides["cameras"] = _cameras(arg["cameras"])
    sam_overrides = {k: v for k, v in overrides.items()
                     if k.startswith("sam_") or k in ("cameras", "use_sim_time")}
    cameras = overrides.get("cameras") or _file_cameras(params_file)
    # the proposal node's own cameras matter only when it runs and launch does not set them
    proposing = _file_cameras(params_file, "mask_proposal_node") \
        if use_proposals and "cameras" not in overrides and cameras is not None else None
    if proposing is not None and proposing != cameras:  # proposals for frames no command grounds
        raise ValueError(f"params_file gives grounding_node the cameras {cameras} and "
                         f"mask_proposal_node {proposing}: give both the same (a /**: section, or "
                         "cameras:=), or the proposals are made for other frames than the commands'")
    remap = [pair for name in PER_CAMERA for pair in _camera_remaps(name, arg[name], cameras)]
    if arg["clicked_point"]:
        if isinstance(_topic_or_mapping("clicked_point", arg["clicked_point"]), dict):
            raise ValueError("launch argument clicked_point: one topic for all the cameras, not "
                             "a mapping (a click goes to the camera whose image is in its frame_id)")
        remap.append(("clicked_point", arg["clicked_point"]))
    if _flag(context, "composed"):
        # no `name=`: launch_ros passes it as `-r __node:=NAME`, which renames every node in
        # the process, and the params file's /**/grounding_node sections would never apply
        return [Node(
            package="ros_ground", executable="ground_container",
            namespace=arg["namespace"], output="screen",
            arguments=[] if use_proposals else ["--no-proposals"],
            parameters=[params_file, overrides], remappings=remap, on_exit=_stop_if_failed,
        )]
    nodes = [Node(
        package="ros_ground", executable="grounding_node", name="grounding_node",
        namespace=arg["namespace"], output="screen",
        parameters=[params_file, overrides], remappings=remap, on_exit=_stop_if_failed,
    )]
    if use_proposals:
        nodes.append(Node(
            package="ros_ground", executable="mask_proposal_node", name="mask_proposal_node",
            namespace=arg["namespace"], output="screen",
            parameters=[params_file, sam_overrides], remappings=remap, on_exit=_stop_if_failed,
        ))
    return nodes


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=doc)
                for name, (default, doc) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
