#!/usr/bin/env bash
# The agnosticism study on the precise benchmark (issue "Relocation at its strongest"), every run
# of benchmarks/agnosticism.md, in one command:
#   bash scripts/study.sh        (SKR_STUDY_JOBS=2 by default; extra arguments go to every skr-run)
# 1. the equal tuning of the three arms on the val split (8 random-search trials each),
# 2. the study: 9 heuristics x prune ratios 0.5, 0.3, 0.7 x 3 arms (conf/arm/) x 5 seeds,
# 3. the spread against the budget (3 and 30 epochs after scoring; 10 is the study's) for the
#    baseline and the span arm at ratio 0.5,
# 4. the ablation at ratio 0.5: which ingredient of the span arm carries it, and low-rank
#    pre-training with compensation,
# then the kept runs' paths made relative and skr-report over each part. Every finished run's
# small files stay under benchmarks/study/runs/, so a rerun (another session, another machine)
# skips them: run it again until it reports nothing left to do.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${SKR_STUDY_JOBS:-2}"
run() { skr-run -m "hydra.launcher.n_jobs=$jobs" "$@"; }
report() { skr-report --bootstrap 2000 "$@" > /dev/null; }

for arm in baseline penalty span; do
  run "experiment=study_tune_$arm" "$@"
done
python scripts/study_arms.py  # conf/arm/*.yaml hold each arm's best trial (--write makes them)
run experiment=study "$@"
run experiment=study_budget "$@"
run experiment=study_ablation "$@"
run experiment=study_ablation arm=baseline,span lowrank.weight=0.02 "lowrank.phases=[pretrain]" \
  lowrank.truncate=false "$@"
python scripts/relative_paths.py benchmarks/study/runs  # the kept runs name no machine

runs=benchmarks/study/runs
report "$runs/tune_baseline" "$runs/tune_penalty" "$runs/tune_span" --out benchmarks/study/tune
report "$runs/study" "$runs/budget" --out benchmarks/study/study
report "$runs/study" "$runs/ablation" --out benchmarks/study/ablation
python scripts/study_tables.py  # benchmarks/agnosticism.md (it says how many runs finished)
