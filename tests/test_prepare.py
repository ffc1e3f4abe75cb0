"""The preparation scripts' checks, on an official-layout tree with broken files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import video_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]


def test_ucf101_check_names_the_broken_files_and_missing_folds(tmp_path: Path) -> None:
    fx.make_ucf101(tmp_path)
    script = ROOT / "scripts" / "prepare_ucf101.py"
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), "--check-only"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1  # three classes, not 101; three bad files; folds 2-3 absent
    assert "3 classes in classInd.txt" in result.stdout
    assert "3 of the first 9 do not decode" in result.stdout
    assert "v_YoYo_g05_c02.avi: empty file" in result.stdout
    assert "v_YoYo_g05_c03.avi: decodes 2 of 48 frames its header declares" in result.stdout
    assert "trainlist02.txt is missing" in result.stdout
    assert "fold 1 test: 6 listed, 0 missing, 0 of the first 6 do not decode" in result.stdout
