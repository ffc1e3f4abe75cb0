#!/usr/bin/env bash
# The agnosticism study, every number of benchmarks/agnosticism.md, in one command:
#   bash scripts/agnosticism.sh        (or: make study)
# Runs the tuning (random search on the validation split), the study, its ablation and the
# budgets as skr-run sweeps (two jobs at a time), then skr-report over each and
# scripts/agnosticism_tables.py, which writes benchmarks/agnosticism.md. Sweeps are resumable:
# run it again after an interruption and finished runs are skipped. SKR_STUDY_JOBS sets the
# parallel jobs (default 2); extra arguments go to every skr-run (e.g. hydra/launcher=slurm).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${SKR_STUDY_JOBS:-2}"
run() { skr-run -m "hydra.launcher.n_jobs=$jobs" "$@"; }
report() { skr-report --bootstrap 2000 "$@" > /dev/null; }
lowrank="$(python -c 'import yaml; print(yaml.safe_load(open("conf/experiment/agnosticism.yaml"))["hydra"]["sweeper"]["params"]["lowrank.weight"].split(",")[-1])')"

start=$SECONDS
# 1. tuning on the validation split: 12 random relocation settings x 3 heuristics, the baseline,
#    and the low-rank weight (with the tuned relocation)
run experiment=agnosticism_tune "$@"
run experiment=agnosticism_tune search.trial=null "$@"
run experiment=agnosticism_tune search.trial=null relocation=skr "lowrank.weight=0.02,0.1" \
  "lowrank.phases=[pretrain]" lowrank.truncate=false "$@"
# 2. the study: 9 heuristics x 3 ratios x relocation off/tuned x low-rank 0/tuned x 3 seeds
run experiment=agnosticism "$@"
# 3. the ablation at ratio 0.5 (compensation with and without relocation also with low-rank)
run experiment=agnosticism_ablation "$@"
run experiment=agnosticism_ablation relocation=compensate,skr_compensate "lowrank.weight=$lowrank" "$@"
# 4. budgets after scoring of 1 and 10 epochs at ratio 0.5 (a 1-epoch budget holds a 1-epoch phase)
run experiment=agnosticism_budget "$@"
run experiment=agnosticism_budget finetune.epochs=1 relocation.epochs=1 "$@"
elapsed=$((SECONDS - start))

report multirun/agnosticism_tune --out benchmarks/agnosticism/tune
report multirun/agnosticism multirun/agnosticism_ablation --out benchmarks/agnosticism/study
report multirun/agnosticism_budget multirun/agnosticism --out benchmarks/agnosticism/budget
python scripts/agnosticism_tables.py --lowrank "$lowrank" --wall-seconds "$elapsed"
