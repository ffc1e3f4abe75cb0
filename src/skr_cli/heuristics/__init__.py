"""Channel-importance heuristics: one registry entry per ``conf/heuristic/<name>.yaml``.

Every heuristic gives one score per channel of every prunable layer; low score = remove first.
"""

from skr_cli.heuristics.activation import APoZ, MeanActivation
from skr_cli.heuristics.base import HEURISTICS, Heuristic, register_heuristic
from skr_cli.heuristics.fpgm import FPGM
from skr_cli.heuristics.magnitude import L1, L2, BNScale
from skr_cli.heuristics.random import RandomScores
from skr_cli.heuristics.svd_entropy import SVDEntropy
from skr_cli.heuristics.taylor import Taylor, TaylorWeight

__all__ = [
    "FPGM",
    "HEURISTICS",
    "L1",
    "L2",
    "APoZ",
    "BNScale",
    "Heuristic",
    "MeanActivation",
    "RandomScores",
    "SVDEntropy",
    "Taylor",
    "TaylorWeight",
    "register_heuristic",
]
