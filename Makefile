# The two commands of the README: `make demo` (set up + run extract on the embedded sample)
# and `make test` (set up + run the whole test suite: ruff, mypy, pytest; the Ray tests inside `unshare -rn`).
# `make setup` installs exactly what requirements.lock lists (versions and sha256 hashes);
# `make upgrade` moves the lock to today's newest releases on purpose and runs the suite on them.
PY ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin
# The extras of pyproject.toml that the lock (and so `make setup`) covers: all of them.
EXTRAS = dev,export,analysis,av,umap,zoo,mtmc,ray
LOCK_TOOLS ?= .venv-lock
# The lock must install on every Python 3.11 a user may have, so it is resolved on the oldest one at
# hand: Debian 12's /usr/bin/python3.11 is 3.11.2 (an ordinary user's python3.11 there), while a
# newer 3.11 admits releases that need 3.11.5 (soupsieve 4 did, and the lock failed for that user).
LOCK_PY ?= $(shell test -x /usr/bin/python3.11 && echo /usr/bin/python3.11 || echo $(PY))
PIP_COMPILE_FLAGS ?=

.PHONY: setup demo test lint lock upgrade

$(BIN)/trackreid: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(BIN)/trackreid

setup: $(BIN)/trackreid

demo: setup
	$(BIN)/trackreid demo --output-dir runs/demo --overwrite

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# Ray tests start Ray, which may only talk over loopback: they run in a fresh network
# namespace (only `lo` exists there; `-r` maps the caller to root inside it, so an ordinary
# user may create it too); a plain `pytest` skips them (CI=true: fails them).
test: lint
	$(BIN)/pytest -q -m "not ray"
	unshare -rn -- bash -c 'ip link set lo up; RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 exec $(BIN)/pytest -q -m ray'

# Rewrite requirements.lock from pyproject.toml (every extra) and requirements-cpu.txt (the
# CPU build of PyTorch), keeping today's pins where they still satisfy both. pip-tools itself
# comes from requirements-lock-tools.txt.
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || { $(LOCK_PY) -m venv $(LOCK_TOOLS) && \
	  $(LOCK_TOOLS)/bin/pip install -q -r requirements-lock-tools.txt; }
	$(LOCK_TOOLS)/bin/pip-compile --quiet $(PIP_COMPILE_FLAGS) --extra $(EXTRAS) --strip-extras \
	  --allow-unsafe --build-deps-for editable --generate-hashes --no-emit-index-url --no-emit-find-links \
	  -c requirements-cpu.txt -o requirements.lock pyproject.toml

# Move every pin to the newest release, rebuild .venv from scratch and run the whole suite:
# the one command to go forward on purpose (then read `git diff requirements.lock`).
upgrade:
	$(MAKE) lock PIP_COMPILE_FLAGS=--upgrade
	rm -rf $(VENV)
	$(MAKE) test
