"""How long the test suite takes: ``make test`` and ``make test-fast``, as a developer runs them.

Runs the whole suite and its fast subset (marker ``slow`` left out) with the Makefile's own
pytest command lines (its ``test`` and ``test-fast`` targets: pytest-xdist, ``--dist
loadgroup``), one after the other, and reports
pytest's own time for each (collection and every test, not the install), the number of tests
that passed, and each time against its target: 6 minutes for the whole suite, 90 s for the
fast subset, on 2 cores. Writes benchmarks/tests.md and benchmarks/tests.json. Run it on idle
cores: the suite's end-to-end tests start real ``skr-run`` processes, and anything else on the
machine slows them.

    .venv/bin/python scripts/bench_tests.py
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from summarise_bench import machine, write_headlines

ROOT = Path(__file__).resolve().parents[1]
# (make target, target seconds on 2 cores)
SUITES = (("test", 360.0), ("test-fast", 90.0))
# pytest's last line, e.g. "721 passed, 4 skipped, 4 warnings in 325.04s (0:05:25)"
SUMMARY = re.compile(r"(?P<passed>\d+) passed.* in (?P<seconds>[\d.]+)s")


def pytest_line(target: str) -> list[str]:
    """The pytest command line of the Makefile's ``target``, run with this Python."""
    makefile = (ROOT / "Makefile").read_text()
    rule = rf"^{re.escape(target)}:.*\n\t\$\(BIN\)/python (?P<args>-m pytest .*)$"
    match = re.search(rule, makefile, re.M)
    if match is None:
        sys.exit(f"Makefile: no `{target}` target running `$(BIN)/python -m pytest ...`")
    return [sys.executable, *shlex.split(match["args"])]


def timed(argv: list[str]) -> dict:
    """Runs one pytest command; its passed tests, pytest's own seconds and the wall seconds."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    found = SUMMARY.search(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    if done.returncode != 0 or found is None:
        sys.exit(f"{' '.join(argv[1:])} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return {"passed": int(found["passed"]), "pytest_s": float(found["seconds"]), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tests.md")
    args = parser.parse_args()
    cores = machine()["cores"]
    records = []
    for target, limit in SUITES:
        record = {"command": f"make {target}", "target_s": limit} | timed(pytest_line(target))
        records.append(record)
        print(
            f"{record['command']}: {record['passed']} passed in {record['pytest_s']:.0f} s",
            flush=True,
        )
    lines = [
        "# The test suite's time",
        "",
        f"pytest's own time (collection and every test; not the install) of `make test` and "
        f"`make test-fast` on {cores} cores (pytest-xdist, `--dist loadgroup`), run one after "
        "the other on idle cores. Written by `scripts/bench_tests.py`.",
        "",
        "| command | tests passed | pytest s | target s | ÷ target |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        share = r["pytest_s"] / r["target_s"]
        lines.append(
            f"| `{r['command']}` | {r['passed']} | {r['pytest_s']:.0f} | {r['target_s']:.0f} "
            f"| {share:.2f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    found = [
        {
            "text": f"`{r['command']}` runs {r['passed']} tests in {r['pytest_s']:.0f} s of "
            f"pytest on {cores} cores, x{r['pytest_s'] / r['target_s']:.2f} its target of "
            f"{r['target_s']:.0f} s",
            "value": r["pytest_s"] / r["target_s"],
        }
        for r in records
    ]
    write_headlines(args.out, found, {"records": records, "cores": cores})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
