"""Fault injection for the reliability tests: the one place where a run can be made to die.

``SKR_FAULT=<point>`` makes the process kill itself with SIGKILL (nothing is flushed, no handler
runs: the same as a preempted job or ``kill -9``) the first time it reaches ``<point>``:

- ``<phase>:step:<n>``: in a training phase (``pretrain``, ``relocation 1``, ``step 1``,
  ``finetune``, ``factorised``), right before its optimiser step ``n`` (counted from the
  phase's start, across epochs);
- ``write:<file name>``: in an atomic write of ``<file name>`` (``dense.pt``, ``metrics.json``,
  ``final.pt.partial``, ...), once the temporary file is complete and before it is renamed
  into place.

Unset (the normal case) it does nothing.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "SKR_FAULT"


def fault_point(point: str) -> None:
    """Dies here with SIGKILL when ``SKR_FAULT`` names ``point``."""
    if os.environ.get(VARIABLE) == point:
        os.kill(os.getpid(), signal.SIGKILL)
