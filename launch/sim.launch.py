"""The simulated tabletop camera plus the grounding graph on the embedded default models.

    ros2 launch ros_ground sim.launch.py
    ros2 run ros_ground ros-ground ask "Describe the scene." --namespace /sim

Without a ROS install:

    ground_container --sim --ros-args --params-file config/sim.yaml -r __ns:=/sim -r image:=image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

ARGUMENTS = {
    "namespace": ("sim", "namespace of the camera and grounding nodes"),
    "seed": ("", "scene seed (empty = from params_file)"),
    "composed": ("true", "grounding + proposal nodes in one process"),
    # declared here, before ground.launch.py's (default /camera/image_raw), so --show-args
    # shows the topic this file passes
    "image": ("image_raw", "image topic the grounding graph reads (the simulated camera's, "
              "relative to the namespace)"),
}


def _stop_if_failed(event, context):
    """The camera exited with an error (a bad parameter, a bag it cannot read): with no frames
    the grounding graph has nothing to do, so the launch fails. Raised here, the error makes
    launch stop every process and `ros2 launch` exit 1 (a Shutdown action exits 0, which
    systemd or CI would take for a good bring-up)."""
    if event.returncode and not context.is_shutdown:
        raise RuntimeError(f"sim_camera_node exited with code {event.returncode}: the grounding "
                           "graph would have no camera, stopping it")
    return None


def _camera(context, *args, **kwargs):
    """The simulated camera; `seed` overrides the params file's only when given, as
    ground.launch.py's `model` does (a default here would always replace the file's)."""
    overrides = {"seed": LaunchConfiguration("seed")} if LaunchConfiguration("seed").perform(context) else {}
    return [Node(
        package="ros_ground", executable="sim_camera_node", name="sim_camera_node",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        on_exit=_stop_if_failed,
    )]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("ros_ground")
    declared = [DeclareLaunchArgument(name, default_value=default, description=doc)
                for name, (default, doc) in ARGUMENTS.items()]
    declared.append(DeclareLaunchArgument(
        "params_file", default_value=os.path.join(share, "config", "sim.yaml"),
        description="ROS parameters file (default: the package's config/sim.yaml)"))
    params_file = LaunchConfiguration("params_file")
    grounding = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "ground.launch.py")),
        launch_arguments={
            "namespace": LaunchConfiguration("namespace"),
            "image": LaunchConfiguration("image"),
            "composed": LaunchConfiguration("composed"),
            "params_file": params_file,
        }.items(),
    )
    # the include first: launch visits it (and refuses a bad argument such as composed:=nope)
    # before it starts the camera, which would otherwise be left running after the error
    return LaunchDescription(declared + [grounding, OpaqueFunction(function=_camera)])
