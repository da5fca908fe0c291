# ros_ground: two commands for a new user, `make demo` and `make test`; both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup test demo bench lint clean msgs ros2-cli train-sim
# CI has the shared tools beside the clone: ../shared/tools/install-ros2-cli
SHARED ?= ../shared

setup: $(VENV)/.deps-stamp $(VENV)/.package-stamp msgs ros2-cli

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==26.3

# requirements.txt is what a robot with an apt ROS installs; the ROS wheels are for this venv only
$(VENV)/.deps-stamp: requirements.txt requirements-ros-wheels.txt constraints.txt | $(PY)
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

demo: setup
	$(VENV)/bin/ros-ground demo

bench: setup
	$(VENV)/bin/ros-ground bench

# Retrain the embedded sim models (~1 h each on a 2-core CPU) and rewrite their model cards.
train-sim: setup
	$(VENV)/bin/ros-ground train all

lint: setup
	$(VENV)/bin/ruff check ros_ground tests scripts launch bench
	$(VENV)/bin/vermin --target=3.10- --no-tips --violations --eval-annotations ros_ground launch scripts bench tests

clean:
	rm -rf $(VENV) .build-msgs build install log demo_out
