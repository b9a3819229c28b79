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

# The default suite leaves out the long end-to-end tests marked `slow` (every other
# recipe, torchrun end to end, parallel sweep jobs); `make test SLOW=1` runs them too.
SLOW ?=
MARK := $(if $(SLOW),,-m "not slow")

test: $(BIN)/zspace
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(MARK)

# a quick loop while editing: lint and the suite without coverage and the type check
test-fast: $(BIN)/zspace
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow" --no-cov

.PHONY: install demo test test-fast
