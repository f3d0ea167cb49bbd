# Developer entry points. Every target creates the virtualenv itself on a fresh clone, from the lock.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# uv installs exactly uv.lock; bootstrapped from PyPI into the user's Python when it is not on PATH.
UV_VERSION ?= 0.13.10
UV     := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
LATEST ?= .venv-latest

.PHONY: demo lint test test-slow test-latest lock bench bench-large bench-peers sandbox clean uv

$(VENV)/.installed: pyproject.toml uv.lock
	@$(MAKE) --no-print-directory uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --extra dev --quiet
	touch $@

uv:  ## make sure uv is there (pip-installs the pinned version when it is not)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"

demo: $(VENV)/.installed  ## the main job on the embedded sandbox
	$(PY) -m reconciler demo

lint: $(VENV)/.installed  ## checked layers (import contracts in pyproject.toml) and types (mypy)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy reconciler

test: lint $(VENV)/.installed  ## the layers and types, then the default test suite (fast; long runs are marked slow)
	$(PY) -m pytest -n 3

test-slow: $(VENV)/.installed  ## soak, crash and large-corpus runs
	$(PY) -m pytest -m slow

lock: uv  ## refresh uv.lock to the newest releases within pyproject.toml (run make test-latest first)
	$(UV) lock --upgrade

test-latest: uv  ## the suite in a throwaway environment of the newest releases, ignoring the lock
	rm -rf $(LATEST)
	$(UV) venv --quiet $(LATEST)
	$(UV) pip install --quiet --refresh --python $(LATEST)/bin/python -e ".[dev]"
	@echo "newest releases resolved:"; $(UV) pip freeze --python $(LATEST)/bin/python | grep -v '^-e'
	$(LATEST)/bin/python -m pytest

bench: $(VENV)/.installed  ## every benchmark; figures are the last lines of each
	$(PY) bench/run_all.py

bench-large: $(VENV)/.installed  ## growth to the large fleet (100k gateways, 1M recipients): 1k, 10k, 100k; docs/growth.svg (~8 min)
	$(PY) bench/growth.py --sizes 1000,10000,100000

bench-peers: $(VENV)/.installed  ## the reconciler and an Ansible playbook on the same fleet, 3 rounds each (~25 min)
	$(PY) bench/peers/run_peers.py --rounds 3

sandbox: $(VENV)/.installed  ## the four simulators on 8701-8704 until Ctrl-C
	$(VENV)/bin/reconcile sandbox

clean:
	rm -rf $(VENV) $(LATEST) .venv-peers .reconciler .pytest_cache .mypy_cache .import_linter_cache .grimp_cache
