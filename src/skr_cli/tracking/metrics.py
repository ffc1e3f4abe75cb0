"""metrics.json: the run's result, in the shape ``skr-report`` and users rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skr_cli.engine.checkpoint import write_json

# Keys that vary between identical runs (wall-clock measurements).
TIMING_KEYS = frozenset({"latency_ms", "speedup", "timings_s"})


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Writes metrics.json atomically; it is the run's last output."""
    write_json(path, metrics)


def without_timings(metrics: Any) -> Any:
    """A copy with wall-clock measurements removed, for comparing runs."""
    if isinstance(metrics, dict):
        return {k: without_timings(v) for k, v in metrics.items() if k not in TIMING_KEYS}
    return metrics
