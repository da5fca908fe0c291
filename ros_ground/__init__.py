"""ros_ground: pixel-grounded language for robots.

The core (this package minus `ros_ground.nodes`) imports neither rclpy nor ROS messages, so it
runs and tests anywhere; the ROS 2 shells in `ros_ground.nodes` import the core, never the reverse.
"""

__version__ = "0.1.0"
