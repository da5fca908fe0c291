# ros_ground: two commands for a new user, `make demo` and `make test`; both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup test demo bench lint clean msgs train-sim

setup: $(VENV)/.deps-stamp $(VENV)/.package-stamp msgs

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==26.3

$(VENV)/.deps-stamp: requirements.txt constraints.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt -c constraints.txt
	touch $@

msgs: $(VENV)/.deps-stamp
	$(PY) scripts/build_msgs.py

$(VENV)/.package-stamp: setup.py package.xml $(VENV)/.deps-stamp
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

clean:
	rm -rf $(VENV) .build-msgs build install log demo_out
