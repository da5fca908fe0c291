"""ros_ground benchmark suite: `ros-ground bench [--quick] [--json]` (see bench/run.py)."""
