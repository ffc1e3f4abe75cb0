"""Does the loader keep the model busy? The share of training time spent waiting for batches.

Runs skr's training loop with skr's own training loader (``pipeline.loaders.train_loader``) on
the default run's config (the built-in synthetic set, generated into the cache on first use,
i3d_tiny, ``train.batch_size``), on the GPU when there is one (with ``train.precision=bf16``),
else on the CPU. Each ``next(loader)`` is timed: the wait share is the time spent waiting for
batches over the epoch's wall time (0: the loader is never the bottleneck). The first epoch
decodes every video; later epochs read the decoded-clip cache (``dataset.cache_decoded``).
On a GPU, also the device's mean utilisation over the epochs (``torch.cuda.utilization``, where
the NVIDIA management library is installed). Extra config overrides can be passed, e.g.
``dataset=ucf101 dataset.root=... model=i3d``. Writes benchmarks/feed.md and benchmarks/feed.json.

    .venv/bin/python scripts/bench_feed.py [--epochs 2] [override ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from skr_cli.configs import config_dir
from skr_cli.data.clips import Batch
from skr_cli.engine.train import train
from skr_cli.pipeline.loaders import train_loader
from skr_cli.pipeline.runcontext import build_context
from summarise_bench import write_headlines


class TimedLoader:
    """Wraps a loader: the wall time each epoch spends in ``next()``, and the epoch's wall
    time; on a GPU, samples of its utilisation between batches."""

    def __init__(self, loader: torch.utils.data.DataLoader, gpu: bool) -> None:
        self.loader, self.gpu = loader, gpu
        self.waits: list[float] = []
        self.walls: list[float] = []
        self.utilisation: list[float] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        wait, start = 0.0, time.perf_counter()
        iterator = iter(self.loader)
        while True:
            before = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            wait += time.perf_counter() - before
            if self.gpu:
                self.sample()
            yield batch
        if self.gpu:
            torch.cuda.synchronize()
        self.waits.append(wait)
        self.walls.append(time.perf_counter() - start)

    def sample(self) -> None:
        try:
            self.utilisation.append(float(torch.cuda.utilization()))
        except (ModuleNotFoundError, RuntimeError):  # no NVIDIA management library
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/feed.md"))
    parser.add_argument("overrides", nargs="*", help="skr-run config overrides")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    overrides = ["logger.mode=disabled", *(["train.precision=bf16"] if gpu else [])]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=overrides + args.overrides)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build_context(cfg, Path(tmp))
    torch.manual_seed(0)
    model = instantiate(cfg.model).to("cuda" if gpu else "cpu")
    loader = TimedLoader(train_loader(ctx, cfg.train.batch_size, seed=0), gpu)
    settings = cfg.train
    train(
        model,
        loader,
        epochs=args.epochs,
        make_optimizer=instantiate(settings.optimizer),
        phase="bench",
        on_skipped=ctx.note_skipped,
        progress=False,
        precision=settings.precision,
        channels_last=settings.channels_last,
    )
    device = torch.cuda.get_device_name() if gpu else "CPU"
    shares = [wait / wall for wait, wall in zip(loader.waits, loader.walls, strict=True)]
    lines = [
        "# Feeding: the share of training time spent waiting for the loader",
        "",
        f"skr's training loop and training loader, default run's config "
        f"({' '.join(overrides + args.overrides)}), {device}, "
        f"dataset.num_workers={cfg.dataset.num_workers}, batch {cfg.train.batch_size}, "
        f"{len(loader)} steps per epoch, wall time. Epoch 1 decodes every video; later epochs "
        "read the decoded-clip cache where `dataset.cache_decoded=true`.",
        "",
        "| epoch | wall s | waiting for batches s | wait share |",
        "|---|---|---|---|",
        *(
            f"| {i} | {wall:.2f} | {wait:.2f} | {share:.2f} |"
            for i, (wall, wait, share) in enumerate(
                zip(loader.walls, loader.waits, shares, strict=True), 1
            )
        ),
        "",
    ]
    util = sum(loader.utilisation) / len(loader.utilisation) if loader.utilisation else None
    if gpu:
        lines.append(
            f"GPU utilisation: {util:.0f} % (mean of samples between batches)."
            if util is not None
            else "GPU utilisation: not sampled (no NVIDIA management library, pynvml)."
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    text = (
        f"training on the {device} with skr's loader waits for batches {100 * shares[-1]:.0f} % "
        f"of an epoch once the cache is warm ({100 * shares[0]:.0f} % in the first, decoding)"
        + (f"; GPU utilisation {util:.0f} %" if util is not None else "")
    )
    write_headlines(
        args.out,
        [{"text": text, "value": shares[-1], "gpu": gpu}],
        {"device": device, "walls": loader.walls, "waits": loader.waits, "utilisation": util},
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
