"""What does compression-aware training cost, and what does truncation buy? Side by side, on CPU.

1. Training step of the default run's model and clip (i3d_tiny, train.batch_size clips of
   frames x size x size, AdamW) and the low-rank proximal step, timed apart in one loop so that
   both see the same load; the overhead is reported amortised at the default lowrank.prox_every
   and at prox_every=1.
   Then a plain step against relocation-phase steps (Soft Knowledge Relocation), the same way,
   the ``target=span`` step against a plain one on the default model and a wider one (the term
   costs per consumer, the step per activation), and a Taylor scoring batch (hooks keeping
   every layer's activation gradient) against a plain forward and backward pass.
2. Factorised network: each chosen layer truncated to a share of its full rank, against its
   parameter and MAC reduction and its median batch-1 latency measured in turns with the dense one.

Writes benchmarks/train.md and benchmarks/train.json (a full run only; ``--only`` prints the
chosen tables). Uses every CPU thread, or OMP_NUM_THREADS of them when it is set.

    .venv/bin/python scripts/bench_train.py [--steps 40] [--rounds 8] [--runs 30]
    .venv/bin/python scripts/bench_train.py --only relocation   # one table, printed, no files
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from skr_cli.engine.evaluate import latency_ms
from skr_cli.heuristics import Taylor
from skr_cli.lowrank import (
    ProximalStep,
    factorise,
    output_positions,
    select_convs,
    singular_values,
    truncation_plan,
)
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.relocation import (
    Distillation,
    Penalty,
    Ramp,
    Relocation,
    SpanPenalty,
    find_consumers,
    target_terms,
)
from summarise_bench import write_headlines

CONF = Path(__file__).resolve().parents[1] / "conf"
WARMUP = 5  # iterations not timed (allocator, kernel selection, LAPACK initialisation)
BLOCK = 8  # steps per timed block when variants take turns (relocation steps)
FRACTIONS = (0.5, 0.25, 0.125)
HEADLINES: list[dict] = []  # filled by the tables: the figures of benchmarks/summary.md
# (label, width, clip T x H x W) for the latency of the factorised network
CASES = [("i3d_tiny (default run)", 0.125, (8, 32, 32)), ("i3d width 0.25", 0.25, (16, 64, 64))]


def defaults() -> dict:
    """The default run's settings, read from the config files (no second default here)."""
    data = OmegaConf.load(CONF / "dataset" / "synthetic.yaml")
    train = OmegaConf.load(CONF / "train" / "default.yaml")
    relocation = OmegaConf.load(CONF / "relocation" / "default.yaml")
    return {
        "width": OmegaConf.load(CONF / "model" / "i3d_tiny.yaml").width,
        "classes": data.num_classes,
        "clip": (data.frames, data.size, data.size),
        "batch": train.batch_size,
        "lr": train.optimizer.lr,
        "weight_decay": train.optimizer.weight_decay,
        "prox_every": OmegaConf.load(CONF / "lowrank" / "default.yaml").prox_every,
        "ridge": relocation.ridge,
        "span_positions": relocation.span_positions,
    }


def bench_steps(settings: dict, steps: int) -> dict[str, float]:
    """Median ms of a plain training step and of one proximal step, timed apart in one loop.

    Each iteration times a forward, backward and AdamW step, then one application of the
    proximal step, so both see the same machine load; the amortised overhead at prox_every=k is
    prox / (k · step).
    """
    torch.manual_seed(0)
    model = InceptionI3d(
        num_classes=settings["classes"], width=settings["width"], dropout=0.0, in_channels=3
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"]
    )
    prox = ProximalStep(
        select_convs(model, "default"), weight=0.1, group_weight=0.0, l1_ratio=0.0, every=1
    )
    clips = torch.randn(settings["batch"], 3, *settings["clip"])
    labels = torch.randint(0, settings["classes"], (settings["batch"],))
    times: dict[str, list[float]] = {"step": [], "prox": []}
    for i in range(steps + WARMUP):
        start = time.perf_counter()
        loss = F.cross_entropy(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        middle = time.perf_counter()
        prox(i, optimizer)
        end = time.perf_counter()
        if i >= WARMUP:
            times["step"].append(1000.0 * (middle - start))
            times["prox"].append(1000.0 * (end - middle))
    return {name: statistics.median(values) for name, values in times.items()}


def bench_truncation(width: float, clip_shape: tuple[int, int, int], fraction: float, runs: int):
    torch.manual_seed(0)
    dense = InceptionI3d(num_classes=10, width=width, dropout=0.0, in_channels=3).eval()
    clip = torch.randn(1, 3, *clip_shape)
    convs = select_convs(dense, "default")
    positions = output_positions(dense, convs, clip)
    plan = truncation_plan(
        convs, singular_values(convs), positions, energy=1.0, rank_fraction=fraction
    )
    ranks = {name: layer["rank"] for name, layer in plan.items() if layer["factorised"]}
    factorised = factorise(copy.deepcopy(dense), ranks)
    latency = latency_ms({"dense": dense, "factorised": factorised}, clip, runs)
    return {
        "layers": f"{len(ranks)}/{len(plan)}",
        "params": count_params(dense) / count_params(factorised),
        "macs": count_macs(dense, clip) / count_macs(factorised, clip),
        "dense_ms": latency["dense"],
        "factorised_ms": latency["factorised"],
        "speedup": latency["dense"] / latency["factorised"],
    }


def step_table(settings: dict, steps: int) -> list[str]:
    times = bench_steps(settings, steps)
    step, prox, every = times["step"], times["prox"], settings["prox_every"]
    clip = "x".join(map(str, settings["clip"]))
    lines = [
        f"## Training step: i3d_tiny, batch {settings['batch']}, clip {clip}, AdamW",
        "",
        f"Median of {steps} iterations; each times one training step and one proximal step "
        "(SVD soft-thresholding of all 56 default layers) apart, under the same load.",
        "",
        "| variant | ms / step | overhead vs plain |",
        "|---|---|---|",
        f"| plain step | {step:.1f} | +0.0 % |",
    ]
    for k in (every, 1):
        label = f"plain + proximal step every {k} (lowrank.prox_every={k})"
        amortised = prox / k
        lines.append(f"| {label} | {step + amortised:.1f} | +{100 * amortised / step:.1f} % |")
    lines.append(f"| proximal step alone | {prox:.1f} | |")
    print("\n".join(lines[-4:]), flush=True)
    overhead = prox / (every * step)
    HEADLINES.append(
        {
            "text": f"low-rank proximal step at lowrank.prox_every={every}: "
            f"{100 * overhead:+.1f} % per training step",
            "value": 1 + overhead,
        }
    )
    return lines


def scoring_table(settings: dict, rounds: int) -> list[str]:
    """Median ms of one Taylor scoring batch (hooks retaining every activation's gradient)
    against a plain forward and backward pass of the same batch, in turns."""
    torch.manual_seed(0)
    model = InceptionI3d(
        num_classes=settings["classes"], width=settings["width"], dropout=0.0, in_channels=3
    )
    clips = torch.randn(settings["batch"], 3, *settings["clip"])
    labels = torch.randint(0, settings["classes"], (settings["batch"],))
    layers = prunable_layers(model)

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(clips), labels).backward()

    variants = {
        "forward + backward": plain,
        "taylor scoring (hooks on every layer)": lambda: Taylor().score(
            model, layers, [(clips, labels)]
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(WARMUP):
        for run in variants.values():
            run()
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(1000.0 * (time.perf_counter() - start))
    ms = {name: statistics.median(values) for name, values in times.items()}
    base = ms["forward + backward"]
    clip = "x".join(map(str, settings["clip"]))
    lines = [
        f"## Scoring: Taylor hooks, i3d_tiny, batch {settings['batch']}, clip {clip}",
        "",
        f"One calibration batch scored by `taylor` against a plain forward and backward pass "
        f"of it; median of {rounds} rounds, in turns.",
        "",
        "| variant | ms / batch | overhead vs plain |",
        "|---|---|---|",
        *(f"| {name} | {v:.1f} | {100 * (v / base - 1):+.1f} % |" for name, v in ms.items()),
    ]
    print("\n".join(lines[-2:]), flush=True)
    taylor = ms["taylor scoring (hooks on every layer)"] / base
    HEADLINES.append(
        {
            "text": f"taylor scoring of a batch: x{taylor:.2f} a plain forward + backward pass",
            "value": taylor,
        }
    )
    return lines


def truncation_table(runs: int) -> list[str]:
    lines = [
        "## Factorised network: latency against MAC reduction",
        "",
        "Every default layer (all Conv3d but the stem and the classifier) truncated to "
        "`rank_fraction` of its full rank where that saves weights; batch 1, median of "
        f"{runs} forward passes, dense and factorised in turns.",
        "",
        "| model | clip | rank_fraction | layers factorised | params ÷ | MACs ÷ | dense ms "
        "| factorised ms | speedup |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, width, clip_shape in CASES:
        for fraction in FRACTIONS:
            r = bench_truncation(width, clip_shape, fraction, runs)
            clip = "x".join(map(str, clip_shape))
            lines.append(
                f"| {label} | {clip} | {fraction} | {r['layers']} | {r['params']:.2f} | "
                f"{r['macs']:.2f} | {r['dense_ms']:.2f} | {r['factorised_ms']:.2f} | "
                f"{r['speedup']:.2f} |"
            )
            print(lines[-1], flush=True)
    return lines


RELOCATION_VARIANTS = {  # label → (target, decoupled, balance, distillation weight)
    "relocation: bn, decoupled (default form)": ("bn", True, "none", 0.0),
    "relocation: bn, in the loss": ("bn", False, "none", 0.0),
    "relocation: all, in the loss, GradNorm": ("all", False, "gradnorm", 0.0),
    "relocation: bn, decoupled, + distillation": ("bn", True, "none", 1.0),
    "relocation: span (in the loss)": ("span", True, "none", 0.0),
    "relocation: [bn, span], bn decoupled": (["bn", "span"], True, "none", 0.0),
}


def relocation_trainer(settings: dict, variant: tuple | None) -> Callable[[], None]:
    """One training step of the default run's model, plain or as in a relocation phase (half
    of every layer planned by filter L1; the objective and its decoupled proximal step)."""
    torch.manual_seed(0)
    model = InceptionI3d(
        num_classes=settings["classes"], width=settings["width"], dropout=0.0, in_channels=3
    )
    clips = torch.randn(settings["batch"], 3, *settings["clip"])
    labels = torch.randint(0, settings["classes"], (settings["batch"],))
    objective = None
    if variant is not None:
        target, decoupled, balance, distill = variant
        layers = prunable_layers(model)
        scores = {n: u.conv.weight.detach().abs().flatten(1).sum(1) for n, u in layers.items()}
        plan = select_local(scores, 0.5)
        example = clips[:1]
        terms = target_terms(target)
        consumers = find_consumers(model, layers, plan, example) if terms != {"bn"} else {}
        span = None
        if "span" in terms:
            span = SpanPenalty(consumers, settings["ridge"], settings["span_positions"])
        teacher = Distillation(copy.deepcopy(model).eval(), distill, 4.0) if distill else None
        objective = Relocation(
            Penalty(layers, plan, consumers, target, span),
            Ramp("linear", 1.0, 5.0, 10_000),
            balance,
            decoupled,
            teacher,
        )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"]
    )
    step = 0

    def run() -> None:
        nonlocal step
        step += 1
        logits = model(clips)
        if objective is None:
            loss = F.cross_entropy(logits, labels)
        else:
            loss = objective(model, clips, labels, logits, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if objective is not None:
            objective.after_step(step, optimizer)

    if objective is None:
        return run
    hooks = objective.penalty.hooks()
    hooks.__enter__()  # the data terms' hooks stay on for the benchmark's life
    run.hooks = hooks  # held by the step: a collected context would remove its hooks
    return run


def in_turns(variants: dict[str, Callable[[], None]], rounds: int, block: int) -> dict[str, float]:
    """Median ms per step of each variant: one untimed block each, then ``rounds`` rounds in
    which every variant runs a timed block of ``block`` steps in turn (the same load for all)."""
    for run in variants.values():  # warm-up
        for _ in range(block):
            run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            for _ in range(block):
                run()
            times[name].append(1000.0 * (time.perf_counter() - start) / block)
    return {name: statistics.median(values) for name, values in times.items()}


def relocation_steps(settings: dict, rounds: int) -> list[str]:
    """Median ms per training step: plain against relocation-phase steps, in turns."""
    variants = {"plain": relocation_trainer(settings, None)}
    variants |= {k: relocation_trainer(settings, v) for k, v in RELOCATION_VARIANTS.items()}
    medians = in_turns(variants, rounds, BLOCK)
    clip = "x".join(map(str, settings["clip"]))
    lines = [
        f"## Relocation phase: training step, i3d_tiny, batch {settings['batch']}, clip {clip}",
        "",
        "Half of every prunable layer planned (filter L1). Median of "
        f"{rounds} blocks of {BLOCK} steps per variant, variants in turns.",
        "",
        "| variant | ms / step | overhead vs plain |",
        "|---|---|---|",
    ]
    for name, ms in medians.items():
        lines.append(f"| {name} | {ms:.1f} | {100 * (ms / medians['plain'] - 1):+.1f} % |")
        print(lines[-1], flush=True)
    default = "relocation: bn, decoupled (default form)"
    ratio = medians[default] / medians["plain"]
    HEADLINES.append(
        {
            "text": f"relocation-phase step (default form): {100 * (ratio - 1):+.1f} % against "
            "a plain training step",
            "value": ratio,
        }
    )
    span = medians["relocation: span (in the loss)"] / medians["plain"]
    HEADLINES.append(
        {
            "text": f"relocation-phase step with target=span: {100 * (span - 1):+.1f} % against "
            "a plain training step",
            "value": span,
        }
    )
    return lines


# (label, width, clip T x H x W, batch) where the span term's cost is timed against the model's size
SPAN_CASES = [
    ("i3d_tiny (default run)", 0.125, (8, 32, 32), 16),
    ("i3d width 0.25", 0.25, (16, 64, 64), 8),
]
SPAN_BLOCK = 2  # steps per timed block: a wider step takes ~5x the default's


def span_scale_table(settings: dict, rounds: int) -> list[str]:
    """Median ms per step, plain against a ``target=span`` phase step, as the model grows: the
    term's cost is per consumer (a Gram matrix, a solve, a product), the step's per activation."""
    lines = [
        "## Relocation phase with target=span against the model's size",
        "",
        "Plain step against a `target=span` phase step (half of every prunable layer planned, "
        f"span_positions={settings['span_positions']}); median of {rounds} blocks of "
        f"{SPAN_BLOCK} steps per variant, in turns.",
        "",
        "| model | clip | batch | plain ms / step | span ms / step | overhead vs plain |",
        "|---|---|---|---|---|---|",
    ]
    span = RELOCATION_VARIANTS["relocation: span (in the loss)"]
    for label, width, clip_shape, batch in SPAN_CASES:
        case = settings | {"width": width, "clip": clip_shape, "batch": batch}
        variants = {"plain": relocation_trainer(case, None), "span": relocation_trainer(case, span)}
        medians = in_turns(variants, rounds, SPAN_BLOCK)
        plain, spanned = medians["plain"], medians["span"]
        clip = "x".join(map(str, clip_shape))
        lines.append(
            f"| {label} | {clip} | {batch} | {plain:.1f} | {spanned:.1f} "
            f"| {100 * (spanned / plain - 1):+.1f} % |"
        )
        print(lines[-1], flush=True)
        if width != settings["width"]:
            HEADLINES.append(
                {
                    "text": f"relocation-phase step with target=span on {label}, clip {clip}, "
                    f"batch {batch}: {100 * (spanned / plain - 1):+.1f} % against a plain step",
                    "value": spanned / plain,
                }
            )
    return lines


SECTIONS = ("steps", "relocation", "span_scale", "scoring", "truncation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/train.md"))
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help="run these tables only and print them; the files are written by a full run only",
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1)
    settings = defaults()
    tables = {
        "steps": lambda: step_table(settings, args.steps),
        "relocation": lambda: relocation_steps(settings, args.rounds),
        "span_scale": lambda: span_scale_table(settings, args.rounds),
        "scoring": lambda: scoring_table(settings, args.rounds),
        "truncation": lambda: truncation_table(args.runs),
    }
    chosen = args.only or SECTIONS
    lines = [
        "# Compression-aware training: cost of the proximal step, latency of truncation",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} CPU threads, "
        f"torch {torch.__version__}.",
        "Command: `.venv/bin/python scripts/bench_train.py`",
    ]
    for name in chosen:
        lines += ["", *tables[name]()]
    if args.only:
        print("\n".join(lines))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    write_headlines(args.out, HEADLINES)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
