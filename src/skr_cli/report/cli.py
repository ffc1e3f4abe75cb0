"""``skr-report PATH... [--out DIR] [--wandb] [--bootstrap N] [--seed S]``: a sweep's report.

Reads every run under the paths, groups them into cells, measures how much the final accuracy
depends on the heuristic (and whether relocation reduces that), and writes report.md, report.csv,
report.json and PNG plots into ``--out`` (default: the first path). ``skr-report --replot DIR``
redraws the plots of a report folder from its report.json alone (no runs needed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from skr_cli.report.collect import ReportError, Sweep, collect

if TYPE_CHECKING:
    from skr_cli.report.write import Report


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line, like the rest of ``skr-report``'s errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ReportError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="skr-report", description=__doc__.splitlines()[0])
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="sweep folders or run folders, read recursively",
    )
    p.add_argument(
        "--replot",
        type=Path,
        default=None,
        metavar="DIR",
        help="redraw the plots of the report in DIR from its report.json (instead of PATHs)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the report goes (default: the first PATH if it is a folder)",
    )
    p.add_argument(
        "--wandb",
        action="store_true",
        help="log the table and plots as a wandb run (job_type=report)",
    )
    p.add_argument(
        "--wandb-mode",
        choices=("offline", "online"),
        default="offline",
        help="wandb mode with --wandb (default: offline)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap resamples of the spread ratio's interval (default: 2000)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the bootstrap's generator (default: 0)",
    )
    return p


def output_dir(paths: Sequence[Path], out: Path | None) -> Path:
    """``--out``, or else the first path if it is a folder."""
    if out is None:
        if not paths[0].is_dir():
            raise ReportError(f"--out is needed: the first PATH {paths[0]} is not a folder")
        out = paths[0]
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def build(sweep: Sweep, out: Path, *, resamples: int, seed: int) -> Report:
    """Computes every statistic of the sweep's runs and draws the plots into ``out``."""
    # Imported here, after the paths are read: torch and matplotlib take seconds to load, and
    # a mistyped path should be answered at once.
    from skr_cli.report.agreement import sweep_agreement
    from skr_cli.report.cells import analyze, group_cells
    from skr_cli.report.plots import draw
    from skr_cli.report.write import Report, as_json

    cells, duplicates = group_cells(sweep.runs)
    stats = analyze(cells, resamples=resamples, seed=seed)
    agreement = sweep_agreement(cells)
    report = Report(sweep, stats, agreement, [*sweep.problems, *duplicates], resamples, seed)
    # Drawn from report.json's numbers, as --replot draws them: the same files either way.
    report.plots += draw(as_json(report, out), out)
    return report


def replot(folder: Path) -> list[Path]:
    """Redraws the plots of a report folder from its report.json, and the plots section of its
    report.md (the variants' names and keys); the runs are not read.

    Raises:
        ReportError: the folder holds no readable report.json.
    """
    path = folder / "report.json"
    try:
        data = json.loads(path.read_text())
        data["cells"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ReportError(f"--replot {folder}: no readable report.json ({err})") from None
    from skr_cli.report.plots import draw
    from skr_cli.report.write import plot_section, replace_plot_section

    plots = draw(data, folder)
    names = [p.relative_to(folder).as_posix() for p in plots]
    files = list(plots)
    if data.get("plots") != names:
        data["plots"] = names
        path.write_text(json.dumps(data, indent=2) + "\n")
        files.append(path)
    md = folder / "report.md"
    if md.exists():
        md.write_text(replace_plot_section(md.read_text(), plot_section(data)))
        files.append(md)
    return files


def report_main(args: argparse.Namespace) -> None:
    """Builds and writes the report, prints it, and logs it to wandb when asked."""
    if args.replot is not None:
        if args.paths:
            raise ReportError("--replot DIR takes no PATH: it reads DIR/report.json only")
        print("written: " + ", ".join(str(f) for f in replot(args.replot)))
        return
    if not args.paths:
        raise ReportError("a PATH is needed (or --replot DIR)")
    if args.bootstrap < 1:
        raise ReportError(f"--bootstrap {args.bootstrap} is not allowed: an integer >= 1")
    sweep = collect(args.paths)  # before --out is created: a bad path leaves nothing behind
    out = output_dir(args.paths, args.out)
    report = build(sweep, out, resamples=args.bootstrap, seed=args.seed)
    from skr_cli.report.write import csv_rows, markdown, terminal, write_csv, write_json

    md = out / "report.md"
    md.write_text(markdown(report, out))
    files = [md, write_csv(report, out / "report.csv"), write_json(report, out / "report.json")]
    files += report.plots
    print(terminal(report, files))
    if args.wandb:
        from skr_cli.report.tracking import log_report

        columns, rows = csv_rows(report)
        summary = {"cells": len(report.stats), "runs": len(report.sweep.runs)}
        folder = log_report(
            mode=args.wandb_mode,
            runs=report.sweep.runs,
            columns=columns,
            rows=rows,
            plots=report.plots,
            summary=summary,
            out=out,
        )
        print(f"wandb ({args.wandb_mode}): {folder}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``skr-report``; a user mistake prints one line and exits with code 2."""
    try:
        args = parser().parse_args(argv)
        report_main(args)
    except ReportError as err:
        if os.environ.get("SKR_DEBUG"):
            raise
        print(f"skr-report: error: {err}", file=sys.stderr)
        sys.exit(2)
