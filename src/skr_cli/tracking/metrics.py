"""metrics.json: the run's result, in the shape ``skr-report`` and users rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skr_cli.engine.checkpoint import write_json

# Keys that vary between identical runs (wall-clock measurements).
TIMING_KEYS = frozenset({"latency_ms", "speedup", "timings_s", "job_s"})


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Writes metrics.json atomically; it is the run's last output."""
    write_json(path, metrics)


def comparable(metrics: Any) -> Any:
    """A copy without what varies between identical runs, for comparing runs: wall-clock
    measurements, and where the shared dense model lies and whether this attempt found it in the
    cache (a resumed or later run finds it) — its key stays."""
    if not isinstance(metrics, dict):
        return metrics
    kept = {k: comparable(v) for k, v in metrics.items() if k not in TIMING_KEYS}
    if isinstance(kept.get("dense_cache"), dict):
        kept["dense_cache"] = {"key": kept["dense_cache"].get("key")}
    return kept
