"""Grounding node and mask-proposal node, composed in one process or as separate processes.

    ros2 launch ros_ground ground.launch.py image:=/camera/image_raw namespace:=ground
    ros2 launch ros_ground ground.launch.py image:=/camera/color/image_raw \
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info \
        clicked_point:=/clicked_point
    ros2 launch ros_ground ground.launch.py model:=/models/llava-1.5-7b-hf composed:=false
    ros2 launch ros_ground ground.launch.py cameras:="[left, right]"   # left/image, right/image
    ros2 launch ros_ground ground.launch.py use_sim_time:=true   # beside `ros2 bag play --clock`

Model arguments left empty take their values from params_file (config/default.yaml).
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

from launch import LaunchDescription
from ros_ground import camera_watch, param_files

ARGUMENTS = {
    "namespace": ("", "namespace of the nodes and their topics"),
    "image": ("/camera/image_raw", "camera image topic (sensor_msgs/Image)"),
    "depth": ("", "depth registered to the image, e.g. /camera/aligned_depth_to_color/image_raw "
              "(empty = `depth` in the namespace)"),
    "camera_info": ("", "the image's sensor_msgs/CameraInfo, e.g. /camera/color/camera_info "
                    "(empty = `camera_info` in the namespace)"),
    "clicked_point": ("", "rviz's Publish Point topic, e.g. /clicked_point "
                      "(empty = `clicked_point` in the namespace)"),
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


def _cameras(text: str) -> list[str]:
    """The `cameras` launch argument ("[left, right]", or one bare name) as a list of names,
    checked as the node checks its parameter (camera_watch.camera_topics); an error naming the
    argument, not launch's or YAML's own (an empty list has no type launch can pass)."""
    try:
        cameras = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"launch argument cameras: {text!r} is no YAML list of names, e.g. "
                         f"\"[left, right]\" ({str(exc).splitlines()[0]})") from None
    names = [str(c) for c in (cameras if isinstance(cameras, list) else [cameras])]
    try:
        camera_watch.camera_topics(names, "image")
    except ValueError as exc:
        raise ValueError(f"launch argument cameras: {exc}") from None
    return names


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
    remap = [("image", arg["image"])] + [(name, arg[name]) for name in
                                         ("depth", "camera_info", "clicked_point") if arg[name]]
    if _flag(context, "composed"):
        # no `name=`: launch_ros passes it as `-r __node:=NAME`, which renames every node in
        # the process, and the params file's /**/grounding_node sections would never apply
        return [Node(
            package="ros_ground", executable="ground_container",
            namespace=arg["namespace"], output="screen",
            arguments=[] if use_proposals else ["--no-proposals"],
            parameters=[params_file, overrides], remappings=remap,
        )]
    nodes = [Node(
        package="ros_ground", executable="grounding_node", name="grounding_node",
        namespace=arg["namespace"], output="screen",
        parameters=[params_file, overrides], remappings=remap,
    )]
    if use_proposals:
        nodes.append(Node(
            package="ros_ground", executable="mask_proposal_node", name="mask_proposal_node",
            namespace=arg["namespace"], output="screen",
            parameters=[params_file, sam_overrides], remappings=remap,
        ))
    return nodes


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=doc)
                for name, (default, doc) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
