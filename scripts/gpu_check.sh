#!/usr/bin/env bash
# skr's GPU path in one go (scripts/gpu_check.py): training clips/s, dense against pruned speed,
# loader workers needed, and skr-run debug=smoke on cuda against cpu, into benchmarks/gpu.md and
# benchmarks/gpu.json. Under 8 minutes on one GPU:
#   bash scripts/gpu_check.sh              (exits 2 at once where no CUDA device is available)
#   bash scripts/gpu_check.sh --dry --out /tmp/check   (every code path on the CPU, tiny sizes)
# Runs with .venv/bin/python where there is one (else $PYTHON, else python3), on this checkout's
# sources.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [[ -z "${PYTHON:-}" && -x .venv/bin/python ]]; then
  python=.venv/bin/python
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" scripts/gpu_check.py "$@"
