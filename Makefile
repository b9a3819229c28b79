# Two entry points: `make demo` (train the demo models) and `make test` (the whole suite).
# Both create .venv and install zspace into it first. torch comes from
# `pip install torch==2.13.0` (the CPU build; a plain `pip install torch` would pull CUDA).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/zspace: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/zspace

demo: $(BIN)/zspace
	$(BIN)/zspace demo

test: $(BIN)/zspace
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# the same without the end-to-end tests marked slow (a minute or two)
test-fast: $(BIN)/zspace
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow"

.PHONY: install demo test test-fast
