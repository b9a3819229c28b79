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
# pytest-xdist: one worker per core (at most 4), each test module whole on one worker so
# its module fixtures are built once (--dist loadscope); `make test XDIST=` runs serially.
XDIST ?= -n auto --maxprocesses=4 --dist loadscope
# Coverage costs the suite 20 % more CPU time (README, Tests): CI (CI=true) and `make cov`
# measure it, the developers' `make test` does not.
COV_ARGS := --cov=zspace --cov-report=term:skip-covered
COV := $(if $(CI),$(COV_ARGS),)

test: $(BIN)/zspace
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(XDIST) $(MARK) $(COV)

# the suite with a coverage report of the package
cov: $(BIN)/zspace
	$(BIN)/python -m pytest -q $(XDIST) $(MARK) $(COV_ARGS)

# a quick loop while editing: lint and the suite without the format and type checks
test-fast: $(BIN)/zspace
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

.PHONY: install demo test cov test-fast
