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
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $(STAMP)

repro: setup
	$(BIN)/dvc repro

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/bench_sine.py
	$(BIN)/python benchmarks/bench_ball.py

clean:
	rm -rf $(VENV)
