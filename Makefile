# The two commands of the README: `make demo` (set up + run extract on the embedded sample)
# and `make test` (set up + run the whole test suite: ruff, mypy, pytest).
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

test: lint
	$(BIN)/pytest -q
