"""Does physical channel removal make I3D faster? Dense, pruned and masked, side by side.

For each prune ratio, removes that share of every prunable layer's channels (a seeded random
plan: speed does not depend on which channels go) and times, in turns in one process, the dense
network, the physically pruned one, and the dense one with the same channels masked to zero by
``torch.nn.utils.prune`` (what mask-based toolkits measure). Reports the MAC reduction beside
the measured speedup at batch 1 and 8. Then three forms side by side at batch 8: as trained,
deployed (``skr_cli.engine.deploy.deployed``: batch norm folded into the convolutions) and
deployed and compiled (``compiled``: inductor with freezing), each pruned network against the
dense one in the same form, without channel rounding and with ``prune.round_to``
(``--round-to``). With a CUDA device, also the dense and the pruned network's
GPU latency at ratio 0.5. Writes benchmarks/prune.md and benchmarks/prune.json.

    .venv/bin/python scripts/bench_prune.py [--runs 10] [--width 1.0] [--clip 16 112 112]
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
import torch.nn.utils.prune as torch_prune
from torch import nn

from skr_cli.engine.deploy import compiled, deployed
from skr_cli.engine.evaluate import latency_ms
from skr_cli.heuristics import RandomScores
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan, select, select_local
from skr_cli.pruning.remove import remove_channels
from summarise_bench import write_headlines

RATIOS = (0.3, 0.5, 0.7)
GPU_RATIO = 0.5  # the ratio of the headline and of the GPU rows
BATCHES = (1, 8)
FORMS_BATCH = 8  # the batch of the train-vs-deployed table
# untimed passes of a model right before each of its timed ones (evaluate.latency_ms's warm):
# each model is timed warm, as it serves request after request, the models still in turns
WARM = 1
LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last_3d": torch.channels_last_3d}


def masked(dense: nn.Module, plan: Plan) -> nn.Module:
    """The dense network with the planned channels' filters and BN scale/shift masked to zero."""
    model = copy.deepcopy(dense)
    for name, layer in prunable_layers(model).items():
        for module, parameter in ((layer.conv, "weight"), (layer.bn, "weight"), (layer.bn, "bias")):
            mask = torch.ones_like(getattr(module, parameter))
            mask[plan[name]] = 0
            torch_prune.custom_from_mask(module, parameter, mask)
    return model


def pruned_copy(
    dense: nn.Module, scores: dict, ratio: float, round_to: int, example: torch.Tensor
) -> nn.Module:
    """A physically pruned copy of ``dense``: ``ratio`` of every prunable layer's channels
    removed (local scope, the lowest ``scores``), each pruned layer keeping a multiple of
    ``round_to`` channels (``prune.round_to``); ``example`` (B, C, T, H, W) traces the graph."""
    plan = select(scores, ratio, "local", 1, round_to)
    return remove_channels(copy.deepcopy(dense), plan, example)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument(
        "--clip", type=int, nargs=3, default=[16, 112, 112], metavar=("T", "H", "W")
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: CPU time of the process on one torch thread (steady on a shared machine); "
        "wall: wall time on every core",
    )
    parser.add_argument(
        "--round-to", type=int, default=16, help="prune.round_to of the forms table's second rows"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/prune.md"))
    args = parser.parse_args()
    threads = 1 if args.clock == "cpu" else os.cpu_count() or 1
    torch.set_num_threads(threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    dense = InceptionI3d(num_classes=400, width=args.width, dropout=0.0, in_channels=3).eval()
    example = torch.zeros(1, 3, *args.clip)
    scores = RandomScores(seed=0).score(dense, prunable_layers(dense), [])
    clip_text = "x".join(map(str, args.clip))
    lines = [
        "# Pruning speedup: dense vs physically pruned vs masked I3D",
        "",
        f"Inception I3D, width {args.width}, 400 classes, clip {clip_text}. Machine: "
        f"{platform.machine()}, {threads} torch thread(s), torch {torch.__version__}. Median "
        f"{'CPU' if args.clock == 'cpu' else 'wall'} time of {args.runs} forward passes per "
        f"model, the models in turns, each timed pass right after {WARM} untimed pass(es) of "
        "the same model (timed warm, as a model serving request after request).",
        f"Command: `.venv/bin/python scripts/bench_prune.py --width {args.width} "
        f"--clip {' '.join(map(str, args.clip))} --clock {args.clock} --round-to {args.round_to}`",
        "",
        "Memory format: `contiguous` is PyTorch's default (N, C, T, H, W) layout, as `skr-run`",
        "measures latency; `channels_last_3d` is how one would deploy on CPU (oneDNN's layout).",
        "",
        "| memory format | prune.ratio | batch | params ÷ | MACs ÷ | dense ms | pruned ms "
        "| masked ms | speedup pruned | speedup masked | speedup ÷ MAC reduction |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows: list[dict] = []
    for ratio in RATIOS:
        plan = select_local(scores, ratio)
        pruned = remove_channels(copy.deepcopy(dense), plan, example)
        macs = count_macs(dense, example) / count_macs(pruned, example)
        params = count_params(dense) / count_params(pruned)
        models = {"dense": dense, "pruned": pruned, "masked": masked(dense, plan)}
        for layout, memory_format in LAYOUTS.items():
            models = {name: model.to(memory_format=memory_format) for name, model in models.items()}
            for batch in BATCHES:
                clip = torch.randn(batch, 3, *args.clip).contiguous(memory_format=memory_format)
                ms = latency_ms(models, clip, args.runs, clock, warm=WARM)
                speedup, masked_speedup = ms["dense"] / ms["pruned"], ms["dense"] / ms["masked"]
                lines.append(
                    f"| {layout} | {ratio} | {batch} | {params:.2f} | {macs:.2f} | "
                    f"{ms['dense']:.1f} | {ms['pruned']:.1f} | {ms['masked']:.1f} | "
                    f"{speedup:.2f} | {masked_speedup:.2f} | {speedup / macs:.2f} |"
                )
                print(lines[-1], flush=True)
                rows.append(
                    {"layout": layout, "ratio": ratio, "batch": batch, "macs": macs}
                    | {"pruned": speedup, "masked": masked_speedup}
                )
        dense.to(memory_format=torch.contiguous_format)
    form_lines, form_rows = forms(dense, scores, example, args, clock)
    lines += form_lines
    part_lines, part_rows = breakdown(dense, scores, example, args, clock)
    lines += part_lines
    if torch.cuda.is_available():
        lines += ["", *gpu_latency(dense, scores, example, args)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    found = headlines(rows, lines) + form_headlines(form_rows)
    write_headlines(args.out, found, {"rows": rows, "forms": form_rows, "parts": part_rows})
    print(f"wrote {args.out}")


# the forms of the forms table: label -> the network in that form
FORMS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "as trained": lambda model: model,
    "deployed": deployed,
    "deployed + compiled": lambda model: compiled(deployed(model)),
}


def forms(
    dense: nn.Module,
    scores: dict,
    example: torch.Tensor,
    args: argparse.Namespace,
    clock: Callable[[], float],
) -> tuple[list[str], list[dict]]:
    """The forms table: at every ratio, with ``prune.round_to`` 1 and ``args.round_to``, the
    dense and the pruned network in each of :data:`FORMS`, the six timed in turns (contiguous
    layout, batch ``FORMS_BATCH``); each form's speedup is over the dense network in that form."""
    lines = [
        "",
        f"## As trained, deployed and compiled, batch {FORMS_BATCH}",
        "",
        "Deployed: `skr_cli.engine.deploy.deployed` (what `eval.deploy=true` times), batch norm",
        "folded into the convolutions; compiled: `skr_cli.engine.deploy.compiled` on top (what",
        "`eval.compile=true` adds), torch.compile's inductor with freezing (ReLUs fused into the",
        "convolutions, prepacked weights, one kernel per run of elementwise work). Each speedup is",
        "over the dense network in the same form; `÷ MAC` is that speedup divided by the MAC",
        "reduction (1.00: time shrinks with the MACs).",
        "",
        "| prune.round_to | prune.ratio | form | MACs ÷ | dense ms | pruned ms | speedup | ÷ MAC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    clip = torch.randn(FORMS_BATCH, 3, *args.clip)
    dense_forms = {form: make(dense) for form, make in FORMS.items()}  # the same at every ratio
    for round_to in sorted({1, args.round_to}):
        for ratio in RATIOS:
            pruned = pruned_copy(dense, scores, ratio, round_to, example)
            macs = count_macs(dense, example) / count_macs(pruned, example)
            models = {}
            for form, make in FORMS.items():
                models[f"dense {form}"] = dense_forms[form]
                models[f"pruned {form}"] = make(pruned)
            ms = latency_ms(models, clip, args.runs, clock, warm=WARM)  # under no_grad
            row = {"round_to": round_to, "ratio": ratio, "batch": FORMS_BATCH, "macs": macs}
            for form in FORMS:
                speedup = ms[f"dense {form}"] / ms[f"pruned {form}"]
                lines.append(
                    f"| {round_to} | {ratio} | {form} | {macs:.2f} | {ms[f'dense {form}']:.1f} | "
                    f"{ms[f'pruned {form}']:.1f} | {speedup:.2f} | {speedup / macs:.2f} |"
                )
                print(lines[-1], flush=True)
                row[form] = speedup
            rows.append(row | {"ms": ms})
    return lines, rows


CONV_KINDS = ("stem", "1x1x1", "kxkxk")  # the first conv (3 input channels), pointwise, larger


def conv_kind(conv: nn.Conv3d) -> str:
    """Which of ``CONV_KINDS`` a convolution is: shrinks linearly (stem), pointwise, or larger."""
    if conv.in_channels == 3:
        return "stem"
    return "1x1x1" if conv.kernel_size == (1, 1, 1) else "kxkxk"


def conv_times(
    model: nn.Module, clip: torch.Tensor, runs: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Per kind of convolution (and ``total``, and ``rest``: everything else), its MACs on
    ``clip`` and the median over ``runs`` forward passes of its summed time (s), from hooks
    around every Conv3d."""
    found: dict[str, list[float]] = {kind: [0.0, 0.0] for kind in (*CONV_KINDS, "rest", "total")}
    times: dict[str, list[float]] = {kind: [] for kind in found}
    started: dict[nn.Module, float] = {}
    spent: dict[str, float] = {}

    def before(module: nn.Module, _inputs: object) -> None:
        started[module] = clock()

    def after(module: nn.Conv3d, _inputs: object, out: torch.Tensor) -> None:
        kind = conv_kind(module)
        spent[kind] = spent.get(kind, 0.0) + clock() - started[module]
        if counting:
            kernel = module.kernel_size[0] * module.kernel_size[1] * module.kernel_size[2]
            found[kind][0] += out.numel() * module.in_channels // module.groups * kernel

    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    hooks = [
        h
        for m in convs
        for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))
    ]
    counting = True
    with torch.inference_mode():
        for run in range(runs + 1):  # the first pass warms up and counts the MACs
            spent.clear()
            start = clock()
            model(clip)
            total = clock() - start
            counting = False
            if run == 0:
                continue
            for kind in CONV_KINDS:
                times[kind].append(spent.get(kind, 0.0))
            times["rest"].append(total - sum(spent.values()))
            times["total"].append(total)
    for hook in hooks:
        hook.remove()
    found["total"][0] = sum(found[kind][0] for kind in CONV_KINDS)
    return {kind: [macs, statistics.median(times[kind])] for kind, (macs, _) in found.items()}


def breakdown(
    dense: nn.Module,
    scores: dict,
    example: torch.Tensor,
    args: argparse.Namespace,
    clock: Callable[[], float],
) -> tuple[list[str], list[dict]]:
    """Where the deployed forms' time goes at the highest ratio, batch ``FORMS_BATCH``: per kind
    of convolution its MACs and time in the dense and the pruned network (so its own speedup
    against its own MAC reduction, and its rate in GMAC/s), and the rest (pooling, ReLU,
    concatenation, padding, copies), with and without ``prune.round_to``."""
    ratio = max(RATIOS)
    lines = [
        "",
        f"## Where the time goes: deployed, prune.ratio={ratio}, batch {FORMS_BATCH}",
        "",
        "Each Conv3d timed by hooks around it (the summed time of its kind per forward pass, "
        f"median of {args.runs}); `rest` is the forward pass less its convolutions. `stem` is the "
        "first convolution (3 input channels: its MACs shrink only with its output), `1x1x1` "
        "the pointwise ones, `kxkxk` the larger ones.",
        "",
        "| prune.round_to | part | MACs ÷ | time ÷ | time ÷ / MACs ÷ | dense ms (share) "
        "| pruned ms (share) | GMAC/s dense | GMAC/s pruned |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    clip = torch.randn(FORMS_BATCH, 3, *args.clip)
    for round_to in sorted({1, args.round_to}):
        pruned = deployed(pruned_copy(dense, scores, ratio, round_to, example))
        parts = {"dense": conv_times(deployed(dense), clip, args.runs, clock)}
        parts["pruned"] = conv_times(pruned, clip, args.runs, clock)
        for kind in (*CONV_KINDS, "rest", "total"):
            (dm, dt), (pm, pt) = parts["dense"][kind], parts["pruned"][kind]
            macs = dm / pm if pm else None
            speed = dt / pt if pt else None
            rate = f"{dm / dt / 1e9:.1f} | {pm / pt / 1e9:.1f}" if dm and dt and pt else " | "
            share_d = 100 * dt / parts["dense"]["total"][1]
            share_p = 100 * pt / parts["pruned"]["total"][1]
            lines.append(
                f"| {round_to} | {kind} | {num_or(macs)} | {num_or(speed)} | "
                f"{num_or(speed / macs if speed and macs else None)} | {1e3 * dt:.1f} "
                f"({share_d:.0f} %) | {1e3 * pt:.1f} ({share_p:.0f} %) | {rate} |"
            )
            rows.append(
                {"round_to": round_to, "part": kind, "macs": macs, "speedup": speed}
                | {"dense_s": dt, "pruned_s": pt, "dense_macs": dm, "pruned_macs": pm}
            )
    return lines, rows


def num_or(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def form_headlines(rows: list[dict]) -> list[dict]:
    """Per ``prune.round_to`` and form beyond the trained one: the speedup over the MAC
    reduction at every ratio, and the speedup at the highest ratio, where the gap is widest."""
    found = []
    for round_to in sorted({row["round_to"] for row in rows}):
        mine = [row for row in rows if row["round_to"] == round_to]
        top = max(mine, key=lambda row: row["ratio"])
        for form in list(FORMS)[1:]:
            shares = [row[form] / row["macs"] for row in mine]
            text = (
                f"prune.round_to={round_to}, batch {top['batch']}, CPU, {form} form: speedup ÷ "
                f"MAC reduction {' / '.join(f'{x:.2f}' for x in shares)} at prune.ratio "
                f"{' / '.join(str(row['ratio']) for row in mine)}; at {top['ratio']}, "
                f"x{top[form]:.2f} faster than the dense I3D in that form (MACs "
                f"÷{top['macs']:.2f}; as trained: x{top['as trained']:.2f})"
            )
            found.append({"text": text, "value": min(shares)})
    return found


def headlines(rows: list[dict], lines: list[str]) -> list[dict]:
    """The speedup of removal against its MAC reduction and against masking, at ratio 0.5."""
    found = []
    for row in rows:
        if row["ratio"] == GPU_RATIO and row["layout"] == "contiguous":
            text = (
                f"prune.ratio={GPU_RATIO}, batch {row['batch']}, CPU: physically pruned I3D runs "
                f"x{row['pruned']:.2f} faster than dense (MACs ÷{row['macs']:.2f}); the same "
                f"channels masked: x{row['masked']:.2f}"
            )
            found.append({"text": text, "value": row["pruned"]})
    gpu = [line for line in lines if line.startswith("GPU latency")]
    found += [{"text": line, "value": None, "gpu": True} for line in gpu]
    return found


def gpu_latency(
    dense: nn.Module, scores: dict, example: torch.Tensor, args: argparse.Namespace
) -> list[str]:
    """Dense against pruned (ratio ``GPU_RATIO``) forward latency on the CUDA device, batch 1
    and 8, timed with CUDA events after a warm-up, the models in turns."""
    pruned = pruned_copy(dense, scores, GPU_RATIO, 1, example)
    models = {"dense": copy.deepcopy(dense).cuda().eval(), "pruned": pruned.cuda().eval()}
    found = []
    for batch in BATCHES:
        clip = torch.randn(batch, 3, *args.clip, device="cuda")
        times: dict[str, list[float]] = {name: [] for name in models}
        with torch.no_grad():
            for model in models.values():
                for _ in range(3):
                    model(clip)
            for _ in range(args.runs):
                for name, model in models.items():
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
                    start.record()
                    model(clip)
                    end.record()
                    torch.cuda.synchronize()
                    times[name].append(start.elapsed_time(end))
        ms = {name: statistics.median(values) for name, values in times.items()}
        found.append(
            f"GPU latency ({torch.cuda.get_device_name()}), prune.ratio={GPU_RATIO}, batch "
            f"{batch}, clip {'x'.join(map(str, args.clip))}: dense {ms['dense']:.2f} ms, pruned "
            f"{ms['pruned']:.2f} ms (x{ms['dense'] / ms['pruned']:.2f})."
        )
    return found


if __name__ == "__main__":
    main()
