"""``skr-report``: how much a sweep's final accuracy depends on the heuristic.

``collect`` finds and reads runs, ``cells`` groups them and computes their statistics with the
pure functions of ``stats``, ``agreement`` compares the heuristics' saved plans, ``plots`` draws
the figures, ``write`` writes report.md/.csv/.json, ``tracking`` logs to wandb, ``cli`` is the
command line.
"""
