"""The values the config's choice keys allow, in one module that imports nothing heavy: the
schema checks a command line against them before torch loads, so that a bad value stops in a
fraction of a second, and the modules that act on a choice take their tuple from here."""

DECODERS = ("pyav", "torchcodec")  # dataset.decoder: data/video.py
SYNTHETIC_CLASSES = 10  # dataset.num_classes at most: the motions of data/synthetic.py
PRECISIONS = ("fp32", "bf16")  # train.precision, finetune.precision: engine/train.py
SCOPES = ("local", "global")  # prune.scope: pruning/plan.py
TARGETS = ("bn", "weights", "activation", "all", "span")  # relocation.target: relocation/penalty.py
SCHEDULES = ("linear", "cosine", "exponential")  # relocation.schedule: relocation/schedule.py
BALANCES = ("none", "gradnorm")  # relocation.balance: relocation/objective.py
LOWRANK_PHASES = ("pretrain", "relocation", "finetune")  # lowrank.phases: pipeline/lowrank.py
MODES = ("offline", "online", "disabled")  # logger.mode: tracking/wandb_run.py
