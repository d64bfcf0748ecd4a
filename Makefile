# Two commands on a fresh machine:  make repro   and   make test
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Stage commands say `python`: they must find the venv's interpreter first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@# Bytecode, compiled here on every core: pip compiles serially (install 71 s; without it 32 s,
	@# then compileall on two cores 18 s).
	@# It matters where PYTHONDONTWRITEBYTECODE is set, as on this machine: no process would cache
	@# it, and each of a test run's hundreds would compile what it imports. As pip does, a file that
	@# does not compile (torch ships one in Python 3.12 syntax) is left to its source.
	$(BIN)/pip install --quiet --no-compile --constraint constraints.txt --editable '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	$(BIN)/python -m compileall -q src
	@# compile the numba kernels once into their cache beside the source, which every stage,
	@# queued experiment and test then loads in milliseconds: two halves, one process per core
	$(BIN)/python -m rnnlab.warm one_layer & half=$$!; \
	$(BIN)/python -m rnnlab.warm rest && wait $$half
	touch $(STAMP)

repro: setup
	$(BIN)/dvc repro
	@$(BIN)/rnnlab status

# pytest-xdist: one worker per core; a test file stays on one worker, so its module fixtures run once
test: setup
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/bench_sine.py
	$(BIN)/python benchmarks/bench_ball.py

clean:
	rm -rf $(VENV)
