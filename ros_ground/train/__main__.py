"""`python -m ros_ground.train lmm|sam|data|eval|all` (same as `ros-ground train ...`)."""

import sys

from ros_ground.cli import main

sys.exit(main(["train", *sys.argv[1:]]))  # its errors as one line, as `ros-ground train` has them
