# `make run` and `make test` install first when needed; `make install` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench study calibrate clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The quickstart study: 8 runs (4 heuristics x relocation off/on) two at a time, then its report.
# A second `make run` finds every run finished and only prints the report again.
SWEEP ?= multirun/quickstart
run: install
	$(BIN)/skr-run -m experiment=quickstart hydra.sweep.dir=$(SWEEP) $(ARGS)
	$(BIN)/skr-report $(SWEEP)

# The whole suite on both cores (pytest-xdist; tests that share a module's run carry one
# xdist_group and go to one worker); test-fast leaves out the end-to-end runs of skr-run (marker
# `slow`) for use between changes.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup tests

test-fast: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow" tests

# Every scripts/bench_*.py in turn (each writes benchmarks/<name>.md and .json), then one page
# with the headline figures: benchmarks/summary.md. About 40 minutes on 2 CPU cores (the sum of
# its parts' last runs; the test suite and a 20-run slice of the study are among them).
bench: install
	for script in scripts/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	$(BIN)/python scripts/summarise_bench.py

# The agnosticism study (docs/study.md): equal tuning of the arms, the 405-run study, budgets
# and ablation, then benchmarks/agnosticism.md and the README's answer. Sessions of hours on 2
# CPU cores; resumable (finished runs under benchmarks/study/runs/ are skipped when it is run again).
study: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/study.sh $(ARGS)

# The calibration of the study's instrument (benchmarks/calibration.md): 5 dense models, the
# fine-tuning learning rate on val, 9 heuristics x 5 seeds at ratio 0.5; resumable.
calibrate: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/calibrate.sh $(ARGS)

lint: install
	$(BIN)/ruff check src tests scripts

clean:
	rm -rf $(VENV) outputs multirun .cache
