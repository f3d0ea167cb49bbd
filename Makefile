# Developer entry points. Every target creates the virtualenv itself on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test test-slow bench sandbox clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed  ## the main job on the embedded sandbox
	$(PY) -m reconciler demo

test: $(VENV)/.installed  ## the default test suite (fast; long runs are marked slow)
	$(PY) -m pytest

test-slow: $(VENV)/.installed  ## soak, crash and large-corpus runs
	$(PY) -m pytest -m slow

bench: $(VENV)/.installed  ## every benchmark; figures are the last lines of each
	$(PY) bench/run_all.py

sandbox: $(VENV)/.installed  ## the four simulators on 8701-8704 until Ctrl-C
	$(VENV)/bin/reconcile sandbox

clean:
	rm -rf $(VENV) .reconciler .pytest_cache
