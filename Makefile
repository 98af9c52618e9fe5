# The two commands of the README: `make demo` (set up + run extract on the embedded sample)
# and `make test` (set up + run the whole test suite: ruff, mypy, pytest; the Ray tests inside `unshare -n`).
PY ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup demo test lint

$(BIN)/trackreid: pyproject.toml requirements-cpu.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-cpu.txt
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/trackreid

setup: $(BIN)/trackreid

demo: setup
	$(BIN)/trackreid demo --output-dir runs/demo --overwrite

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# Ray tests start Ray, which may only talk over loopback: they run in a fresh network
# namespace (only `lo` exists there); a plain `pytest` skips them (CI=true: fails them).
test: lint
	$(BIN)/pytest -q -m "not ray"
	unshare -n -- bash -c 'ip link set lo up; RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 exec $(BIN)/pytest -q -m ray'
