"""`python -m ros_ground.train lmm|sam|data|eval|all` (same as `ros-ground train ...`)."""

import sys

from ros_ground.train import main_train

sys.exit(main_train(sys.argv[1:]))
