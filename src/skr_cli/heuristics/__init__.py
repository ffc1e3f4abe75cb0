"""Channel-importance heuristics: one registry entry per ``conf/heuristic/<name>.yaml``."""

from skr_cli.heuristics.base import HEURISTICS, Heuristic, register_heuristic
from skr_cli.heuristics.magnitude import L1
from skr_cli.heuristics.random import RandomScores
from skr_cli.heuristics.taylor import Taylor

__all__ = ["HEURISTICS", "Heuristic", "L1", "RandomScores", "Taylor", "register_heuristic"]
