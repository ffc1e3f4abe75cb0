# `make run` and `make test` install first when needed; `make install` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: install
	$(BIN)/skr-run $(ARGS)

test: install
	$(BIN)/python -m pytest -q tests

bench: install
	for script in scripts/bench_*.py; do $(BIN)/python $$script || exit 1; done

lint: install
	$(BIN)/ruff check src tests scripts

clean:
	rm -rf $(VENV) outputs multirun .cache
