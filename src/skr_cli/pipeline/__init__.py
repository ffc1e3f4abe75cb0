"""The phase narrative of one run, and the only code besides ``cli.py`` that reads the config.

    pretrain → (score → select → relocate → remove) × prune.steps → fine-tune → evaluate
    → (truncate) → metrics.json

Every phase hands typed values to the packages (data, models, heuristics, pruning, relocation,
lowrank, engine). Each writes its output into the run directory before the next starts, and a
rerun into the same directory picks up the phases that already finished.

- ``runcontext``: the run context (config, output folder, data sets, example clip, device)
  and the seed of each phase;
- ``loaders``: the training and test loaders and the calibration batches;
- ``training``: a phase's training, saved, resumed after its last finished epoch, reloaded;
- ``measure``: test accuracy, MACs and parameters, re-estimated batch norm, latency, timings;
- ``outputs``: the run directory's phase outputs, read back on a rerun, and its config key;
- ``prune``: scoring, selection, rounds of removal, agreement between heuristics;
- ``relocation``: Soft Knowledge Relocation and the (compensating) removal;
- ``lowrank``: the proximal step during training and truncation afterwards;
- ``dense``: the dense model, pretrained once per seed into a shared cache;
- ``run``: fine-tuning and the run from start to metrics.json.
"""

from skr_cli.choices import LOWRANK_PHASES
from skr_cli.errors import UserError
from skr_cli.pipeline.dense import build_model
from skr_cli.pipeline.lowrank import truncation_enabled
from skr_cli.pipeline.run import finished, run
from skr_cli.pipeline.runcontext import RunContext

__all__ = [
    "LOWRANK_PHASES",
    "RunContext",
    "UserError",
    "build_model",
    "finished",
    "run",
    "truncation_enabled",
]
