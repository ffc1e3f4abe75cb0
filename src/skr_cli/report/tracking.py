"""Logging the report to Weights & Biases: one run of ``job_type="report"`` in the sweep's group."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import wandb

from skr_cli.report.collect import ReportError, Run


def sweep_group(runs: Sequence[Run]) -> str:
    """The wandb group the runs logged to (``group`` in metrics.json: ``logger.group`` or their
    sweep's name) when they agree on one, else the name of their common folder."""
    groups = {run.metrics.get("group") or run.config.get("logger.group") for run in runs} - {None}
    if len(groups) == 1:
        return str(groups.pop())
    folder = Path(os.path.commonpath([str(run.path.resolve()) for run in runs]))
    if len(runs) > 1 and folder in {run.path.resolve() for run in runs}:
        folder = folder.parent  # runs nested in one another: their common folder is a run
    return folder.name


def sweep_project(runs: Sequence[Run], default: str = "skr") -> str:
    """The ``logger.project`` most runs used."""
    projects = Counter(run.config.get("logger.project") for run in runs)
    projects.pop(None, None)
    return str(projects.most_common(1)[0][0]) if projects else default


def log_report(
    *,
    mode: str,
    runs: Sequence[Run],
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    plots: Sequence[Path],
    summary: dict[str, Any],
    out: Path,
) -> Path | None:
    """Logs the table and the plots; returns the run's folder (None when nothing was written).

    Args:
        mode: ``offline`` (written under ``out/wandb``) or ``online``.
        runs: the sweep's runs (for the group and project).
        columns, rows: report.csv's table.
        plots: PNG files, each logged as an image under its file stem.
        summary: scalars for the run summary.
        out: the report folder.
    """
    try:
        run = wandb.init(
            mode=mode,
            project=sweep_project(runs),
            group=sweep_group(runs),
            job_type="report",
            name=f"report-{sweep_group(runs)}",
            config={"runs": len(runs)},
            dir=str(out),
            settings=wandb.Settings(console="off", quiet=True),
        )
    except wandb.errors.Error as err:  # e.g. online without a key: one line, not a traceback
        raise ReportError(f"--wandb-mode {mode}: {str(err).splitlines()[0]}") from err
    exit_code = 1
    try:
        data = [[row.get(c) for c in columns] for row in rows]
        table = wandb.Table(columns=list(columns), data=[[_cell(v) for v in r] for r in data])
        run.log({"report": table, **{p.stem: wandb.Image(str(p)) for p in plots}})
        run.summary.update(summary)
        folder = Path(run.dir).parent if run.dir else None
        exit_code = 0
        return folder
    finally:
        run.finish(exit_code=exit_code)


def _cell(value: Any) -> Any:
    """A table value wandb accepts in a column of mixed rows: numbers stay, None stays."""
    return value if value is None or isinstance(value, int | float) else str(value)
