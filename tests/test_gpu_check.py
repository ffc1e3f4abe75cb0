"""scripts/gpu_check.py: its dry run writes every section of the report; without a CUDA device
(and without --dry) it stops in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "Training throughput",
    "Dense against pruned",
    "Loader against consumption",
    "End to end: skr-run debug=smoke",
)


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    result = gpu_check("--out", str(tmp_path))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "no CUDA device is available" in line and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_dry_run_writes_every_section_marked_as_a_dry_run(tmp_path: Path) -> None:
    result = gpu_check("--dry", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "gpu.md").read_text()
    record = json.loads((tmp_path / "gpu.json").read_text())
    assert "DRY RUN" in text.splitlines()[0] and "FAILED" not in text
    assert all(f"## {title}" in text for title in SECTIONS)
    assert record["details"]["dry"] is True and set(SECTIONS) <= set(record["details"])
    assert len(record["headlines"]) >= len(SECTIONS)
    assert all(h["text"].startswith("DRY RUN") and not h["gpu"] for h in record["headlines"])
