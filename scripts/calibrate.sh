#!/usr/bin/env bash
# The calibration of the study's instrument, every number of benchmarks/calibration.md:
#   bash scripts/calibrate.sh        (or: make calibrate)
# Runs the 5 dense models with every heuristic's scores on them, the baseline's fine-tuning
# learning rate (over a decade, at the study's budget) and length on the val split, every
# heuristic at ratio 0.5 over 5 seeds, and the spread against the fine-tuning budget (random and
# the best heuristic over 5 seeds at the longest), as skr-run
# sweeps two jobs at a time, then scripts/calibration_tables.py. The runs' small files (metrics,
# configs, with project-relative paths) are kept under benchmarks/calibration/runs/, so a rerun
# skips every finished run.
# SKR_STUDY_JOBS sets the parallel jobs (default 2); extra arguments go to every skr-run.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${SKR_STUDY_JOBS:-2}"
run() { skr-run -m "hydra.launcher.n_jobs=$jobs" "$@"; }

run experiment=calibration_dense "$@"
run experiment=calibration_tune "$@"
run experiment=calibration_tune finetune.optimizer.lr=0.002 finetune.epochs=3,6 "$@"
run experiment=calibration "$@"
run experiment=calibration_budget "$@"
run experiment=calibration_budget prune.ratio=0.3 finetune.epochs=30 "$@"
# random against the best heuristic at 10 epochs (taylor) at the longest budget, over 5 seeds
run experiment=calibration_budget finetune.epochs=30 heuristic=random,taylor seed=1,2,3,4 "$@"
# what a run costs at ratio 0.7 (the fit of benchmarks/calibration.md's cost needs two budgets)
run experiment=calibration_budget prune.ratio=0.7 finetune.epochs=1,3 heuristic=l1 "$@"
python scripts/relative_paths.py benchmarks/calibration/runs  # the kept runs name no machine
python scripts/calibration_tables.py
