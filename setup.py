"""ament_python package `ros_ground`: installable with colcon on a ROS 2 install or pip in a venv."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ros_ground"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["models/*/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="ros_ground maintainers",
    maintainer_email="maintainers@ros-ground.org",
    description="Pixel-grounded language for robots (attend-and-segment on LLaVA-style models).",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            # ros_ground.nodes.process installs the stop-on-signal handlers, then imports the
            # node module (torch): a signal during those seconds ends the process cleanly too
            "grounding_node = ros_ground.nodes.process:grounding_node",
            "mask_proposal_node = ros_ground.nodes.process:mask_proposal_node",
            "sim_camera_node = ros_ground.nodes.process:sim_camera_node",
            "ground_container = ros_ground.nodes.process:ground_container",
            "ros-ground = ros_ground.nodes.cli:main",
        ],
    },
)
