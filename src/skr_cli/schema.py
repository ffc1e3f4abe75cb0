"""What every config key may hold: one pydantic model per config group, checked on the resolved
config before any work. A value outside its type, range or choices, an unknown key or a missing
one stops the run in one line naming the key, the value and what is allowed.

The rules here look at one key at a time (a list's elements count as one key); rules that relate
several keys (``warmup_epochs <= epochs``, the relocation phase within the fine-tuning budget) and
rules that look at the machine (folders, files, devices) are written out in ``cli.validate``.
A key that a group may leave out (an optimiser's ``betas``) takes the default of the code it goes
to; the schema restates no default.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from skr_cli.choices import (
    BALANCES,
    DECODERS,
    LOWRANK_PHASES,
    MODES,
    PRECISIONS,
    SCHEDULES,
    SCOPES,
    SYNTHETIC_CLASSES,
    TARGETS,
)
from skr_cli.configs import config_dir


def _allowed(text: str) -> WrapValidator:
    """Replaces whatever pydantic says about a bad value by ``text``, what the key allows."""

    def wrap(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except (ValidationError, ValueError):
            raise PydanticCustomError("not_allowed", text) from None

    return WrapValidator(wrap)


def rule(kind: Any, allowed: str, *checks: Any, **bounds: Any) -> Any:
    """A key's type: ``kind`` within ``bounds`` (pydantic's ``ge``, ``lt``, ...) that passes
    ``checks`` (functions that raise ``ValueError``), described to the user as ``allowed``."""
    return Annotated[(kind, Field(**bounds), *map(AfterValidator, checks), _allowed(allowed))]


def choice(options: tuple[str, ...]) -> Any:
    return rule(Literal[options], " | ".join(options))


def _low_high(lowest: float) -> Any:
    def check(pair: list[float]) -> list[float]:
        if not lowest <= pair[0] <= pair[1]:
            raise ValueError
        return pair

    return check


Count0 = rule(int, "an integer >= 0", ge=0)
Count1 = rule(int, "an integer >= 1", ge=1)
AnyInt = rule(int, "an integer")
NonNegative = rule(float, "a number >= 0", ge=0)
Positive = rule(float, "a number > 0", gt=0)
PositiveOrNull = rule(float | None, "a number > 0 or null", gt=0)
ShareOpenTop = rule(float, "a number in [0, 1)", ge=0, lt=1)
Share = rule(float, "a number in [0, 1]", ge=0, le=1)
Switch = rule(bool, "true | false")
Text = rule(str, "a string")
TextOrNull = rule(str | None, "a string or null")
PathOrNull = rule(str | None, "a path or null")
Numbers = rule(list[float], "a non-empty list of numbers", min_length=1)


class Group(BaseModel):
    """A config group: strict types (no "3" for 3, no true for 1), no keys beyond its own."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------------------------------
# dataset: the keys every source shares, then each source's own (chosen by _target_)


class Dataset(Group):
    convert: Literal["all"] = Field(alias="_convert_")
    num_classes: Count1
    frames: Count1
    fps: PositiveOrNull
    size: Count1
    scale: rule(
        list[float], "[low, high] with 1 <= low <= high", _low_high(1), min_length=2, max_length=2
    )
    flip: Switch
    mean: Numbers
    std: rule(list[Annotated[float, Field(gt=0)]], "a non-empty list of numbers > 0", min_length=1)
    eval_clips: Count1
    decoder: choice(DECODERS)
    cache_decoded: Switch
    num_workers: Count0
    max_skip_fraction: Share
    val_fraction: ShareOpenTop


class Generator(Group):
    groups: Count1
    clips_per_group: Count1
    test_groups: Count1
    video_frames: Count1
    video_size: Count1
    fps: Count1
    noise: NonNegative
    distractors: Count0
    seed: AnyInt
    period: rule(
        list[float], "[low, high] with 2 <= low <= high", _low_high(2), min_length=2, max_length=2
    )


class SyntheticDataset(Dataset):
    target: Literal["skr_cli.data.sources.SyntheticSource"] = Field(alias="_target_")
    num_classes: rule(int, f"an integer in [2, {SYNTHETIC_CLASSES}]", ge=2, le=SYNTHETIC_CLASSES)
    cache_dir: Text
    generator: Generator


class FoldedDataset(Dataset):
    target: Literal["skr_cli.data.sources.Ucf101Source", "skr_cli.data.sources.Hmdb51Source"] = (
        Field(alias="_target_")
    )
    root: PathOrNull
    splits: PathOrNull
    fold: rule(Literal[1, 2, 3], "1 | 2 | 3")


class KineticsDataset(Dataset):
    target: Literal["skr_cli.data.sources.KineticsSource"] = Field(alias="_target_")
    root: PathOrNull
    splits: PathOrNull


# ---------------------------------------------------------------------------------------------
# model: one builder per backbone, each with its own keyword arguments


class Model(Group):
    target: Literal[
        "skr_cli.models.torchvision_video.r3d_18", "skr_cli.models.torchvision_video.r2plus1d_18"
    ] = Field(alias="_target_")
    num_classes: Count1
    width: Positive
    min_channels: Count1
    weights: PathOrNull


class ModelWithDropout(Model):
    target: Literal[
        "skr_cli.models.pytorchvideo_resnet.i3d_r50", "skr_cli.models.torchvision_video.s3d"
    ] = Field(alias="_target_")
    dropout: ShareOpenTop


class I3dModel(ModelWithDropout):
    target: Literal["skr_cli.models.i3d.i3d"] = Field(alias="_target_")
    in_channels: Count1


# ---------------------------------------------------------------------------------------------
# heuristic: most take no argument


class Heuristic(Group):
    target: Literal[
        "skr_cli.heuristics.APoZ",
        "skr_cli.heuristics.BNScale",
        "skr_cli.heuristics.FPGM",
        "skr_cli.heuristics.L1",
        "skr_cli.heuristics.L2",
        "skr_cli.heuristics.MeanActivation",
        "skr_cli.heuristics.SVDEntropy",
        "skr_cli.heuristics.Taylor",
    ] = Field(alias="_target_")


class RandomHeuristic(Group):
    target: Literal["skr_cli.heuristics.RandomScores"] = Field(alias="_target_")
    seed: AnyInt


class TaylorWeightHeuristic(Group):
    target: Literal["skr_cli.heuristics.TaylorWeight"] = Field(alias="_target_")
    parameters: choice(("weight", "bn"))


# ---------------------------------------------------------------------------------------------
# train and finetune: the same keys (fine-tuning can also re-estimate batch norm first)


class Optimizer(Group):
    partial: rule(Literal[True], "true (the parameters come at run time)") = Field(
        alias="_partial_"
    )
    lr: Positive
    weight_decay: NonNegative = None  # a key left out takes the default of the code it goes to


class Adam(Optimizer):
    target: Literal["torch.optim.AdamW", "torch.optim.Adam"] = Field(alias="_target_")
    betas: rule(
        list[Annotated[float, Field(ge=0, lt=1)]],
        "[beta1, beta2], each in [0, 1)",
        min_length=2,
        max_length=2,
    ) = None
    eps: Positive = None
    amsgrad: Switch = None


class Sgd(Optimizer):
    target: Literal["torch.optim.SGD"] = Field(alias="_target_")
    momentum: ShareOpenTop = None
    dampening: Share = None
    nesterov: Switch = None


class Train(Group):
    epochs: Count0
    batch_size: Count1
    optimizer: Annotated[Adam | Sgd, Field(discriminator="target")]
    warmup_epochs: Count0
    label_smoothing: ShareOpenTop
    precision: choice(PRECISIONS)
    compile: Switch
    channels_last: Switch


class Finetune(Train):
    recalibrate_bn: Switch


# ---------------------------------------------------------------------------------------------
# the methods: pruning, relocation, low-rank training


class Prune(Group):
    ratio: ShareOpenTop
    scope: choice(SCOPES)
    min_channels: Count1
    round_to: Count1
    target_macs: rule(float | None, "a share of the dense MACs in (0, 1], or null", gt=0, le=1)
    macs_tolerance: rule(float, "a number in (0, 0.5)", gt=0, lt=0.5)
    steps: Count1
    step_epochs: Count0
    calib_batches: Count1


class Distill(Group):
    weight: NonNegative
    temperature: Positive
    finetune: bool


def _no_repeats(names: str | list[str]) -> str | list[str]:
    if isinstance(names, list) and len(set(names)) < len(names):
        raise ValueError
    return names


class Relocation(Group):
    strength: NonNegative
    epochs: Count0
    schedule: choice(SCHEDULES)
    exp_rate: Positive
    target: rule(
        Literal[TARGETS] | Annotated[list[Literal[TARGETS]], Field(min_length=1)],
        f"{' | '.join(TARGETS)}, or a non-empty list of them without repeats",
        _no_repeats,
    )
    span_positions: Count1
    balance: choice(BALANCES)
    decoupled: Switch
    distill: Distill
    compensate: Switch
    ridge: Positive


class Lowrank(Group):
    weight: NonNegative
    group_weight: NonNegative
    l1_ratio: Share
    prox_every: Count1
    phases: rule(
        list[Literal[LOWRANK_PHASES]],
        f"a non-empty list of {' | '.join(LOWRANK_PHASES)}",
        min_length=1,
    )
    layers: rule(
        Literal["default"] | Annotated[list[str], Field(min_length=1)],
        "default or a list of module-name patterns",
    )
    energy: rule(float, "a number in (0, 1]", gt=0, le=1)
    rank_fraction: rule(float | None, "a number in (0, 1] or null", gt=0, le=1)
    truncate: rule(bool | None, "true | false | null (when a weight is > 0)")
    finetune_epochs: Count0


# ---------------------------------------------------------------------------------------------
# the run: logging, evaluation, search, agreement, and the top level


class Logger(Group):
    mode: choice(MODES)
    project: Text
    group: TextOrNull
    timeout: rule(float, "seconds > 0", gt=0)


class Eval(Group):
    split: choice(("test", "val"))
    batch_size: Count1
    latency_runs: Count1
    deploy: Switch
    compile: Switch


class Search(Group):
    trial: rule(int | None, "an integer >= 0 or null", ge=0)
    seed: AnyInt
    space: rule(dict[str, Any], "a mapping of keys to draw")  # its entries: search.flatten_space


HEURISTIC_NAMES = tuple(
    sorted(path.stem for path in (Path(config_dir()) / "heuristic").glob("*.yaml"))
)


class Agreement(Group):
    heuristics: rule(list[Literal[HEURISTIC_NAMES]], f"a list of {' | '.join(HEURISTIC_NAMES)}")
    only: Switch


class Config(Group):
    """The whole resolved config (without Hydra's own ``hydra`` node)."""

    seed: AnyInt
    cache_dir: Text
    required: rule(list[str], "a list of config keys")
    dense_cache: Switch
    device: rule(str, "auto | cpu | cuda | cuda:N", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    threads: rule(int | None, "an integer >= 1 or null", ge=1)
    progress: Switch
    agreement: Agreement
    search: Search
    eval: Eval
    dataset: Annotated[
        SyntheticDataset | FoldedDataset | KineticsDataset, Field(discriminator="target")
    ]
    model: Annotated[Model | ModelWithDropout | I3dModel, Field(discriminator="target")]
    heuristic: Annotated[
        Heuristic | RandomHeuristic | TaylorWeightHeuristic, Field(discriminator="target")
    ]
    prune: Prune
    relocation: Relocation
    train: Train
    finetune: Finetune
    lowrank: Lowrank
    logger: Logger


def first_error(config: dict[str, Any]) -> str | None:
    """The first thing ``config`` (resolved, as plain containers) breaks, as one line:
    ``<key>=<value> is not allowed: <allowed>``; None when every key holds an allowed value."""
    try:
        Config.model_validate(config)
    except ValidationError as err:
        return describe(config, err.errors(include_url=False)[0])
    return None


def describe(config: dict[str, Any], error: Any) -> str:
    """One pydantic error as the user's line, with the key path of the config."""
    key = key_path(config, error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "not_allowed":
        return f"{key}={_shown(value)} is not allowed: {error['msg']}"
    if kind == "extra_forbidden":
        group = key.rpartition(".")[0] or "the top level"
        return f"{key}={_shown(value)} is not allowed: no such key in {group}"
    if kind == "missing":
        return f"{key} is missing: every option of its group sets it"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = str(error.get("ctx", {}).get("expected_tags", "")).replace("'", "")
        target = value.get("_target_") if isinstance(value, dict) else value
        return f"{key}._target_={target} is not allowed: one of {tags.replace(', ', ' | ')}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key}={_shown(value)} is not allowed: a mapping of keys"
    return f"{key}={_shown(value)} is not allowed: {error['msg'].lower()}"


def key_path(config: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """The dotted key of an error's location, leaving out the union tags pydantic inserts."""
    node, parts = config, []
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif not last:
            continue  # the tag of a discriminated union (a _target_ value): not a key
        parts.append(str(part))
    return ".".join(parts)


def _shown(value: Any) -> str:
    """A value as it is written in YAML and on the command line (null, true)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)
