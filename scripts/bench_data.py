"""How fast does skr load clips? Its loader against pytorchvideo's and torchvision's, side by side.

Writes a small data set in UCF101's layout (320x240 MPEG-4 AVI at 25 fps, like UCF101's XviD
files), then loads one random clip per video, in turns, with:

- skr's ``VideoClips`` (PyAV with seeking; torchcodec; PyAV with the decoded-clip cache, warm);
- pytorchvideo's ``Ucf101`` (``labeled_video_dataset``, PyAV, audio off) with its transforms;
- torchvision's ``datasets.UCF101`` (which decodes through torchcodec since torchvision 0.22),
  with torchvision's transforms, and again with skr's (which normalise in one pass): the second
  row tells decoding speed from transform speed.

Every loader cuts the same clip shape from the same files, decodes uint8 frames, scales the short
side to 112 (antialiased), centre crops 112x112 and normalises; single process, one thread.
Reports clips per second of CPU time (median of the rounds) for two clip shapes and writes
benchmarks/data.md.

Beside them, timed in the same turns, the decode-only floor: the very frames skr's loader cuts
(same files, same clips; checked equal before timing) decoded by PyAV and by torchcodec with
nothing else done. PyAV seeks to the keyframe before the clip and decodes up to its last frame,
once keeping the frames as the codec gives them (YUV) and once converting the clip's frames to
one uint8 RGB array (T, H, W, 3), which is what torchcodec's decoding returns and what skr's
transform starts from; torchcodec decodes them with ``get_frames_at``. The frame timestamps and
the clip's frame indices are worked out before the clock starts. Each skr loader is reported as
a share of its floor (clips/s of the loader over clips/s of the floor; 1: the loader costs
nothing beyond decoding), and of the floor followed by skr's transform (which tells the cost
of the transform from that of the rest of the loader).

torchcodec (and so torchvision's UCF101) needs the system's FFmpeg libraries. Where there are
none, ``--ffmpeg-from-pyav`` links the FFmpeg libraries that PyAV's wheel bundles into a temporary
folder and runs the benchmark again with ``LD_LIBRARY_PATH`` pointing there (and says so in the
notes), so that every row is measured in the same run (on by default; ``--no-ffmpeg-from-pyav``
leaves the torchcodec rows out instead).

    .venv/bin/python scripts/bench_data.py [--videos 12] [--rounds 15] [--no-ffmpeg-from-pyav]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torchvision
from torchvision.transforms import v2

from skr_cli.data.clips import VideoClips, frame_indices
from skr_cli.data.transforms import eval_transform
from skr_cli.data.ucf101 import ucf101_samples
from skr_cli.data.video import (
    VideoInfo,
    pyav_ffmpeg_folder,
    torchcodec_error,
    write_video,
)
from summarise_bench import write_headlines

# pytorchvideo 0.1.5 imports a torchvision module under its old name.
sys.modules.setdefault(
    "torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor
)

CLASSES = ("Drumming", "Fencing", "JumpRope", "YoYo")
FRAMES, FPS, HEIGHT, WIDTH, SIZE = 100, 25, 240, 320, 112
MEAN, STD = [0.45] * 3, [0.225] * 3
# (label, clip frames T, temporal stride): consecutive frames, and every 4th frame
SHAPES = [("16 consecutive frames", 16, 1), ("8 frames, every 4th (dataset.fps=6.25)", 8, 4)]


# ------------------------------------------------------------------------------------ files


def scene(rng: np.random.Generator) -> np.ndarray:
    """(T, H, W, 3) uint8: a textured background with a few moving discs, mildly noisy."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = 0.5 + 0.2 * np.sin(xx / rng.uniform(8, 30)) * np.cos(yy / rng.uniform(8, 30))
    video = np.repeat(base[None, :, :, None], 3, axis=3) * rng.uniform(0.6, 1.2, size=3)
    video = np.repeat(video, FRAMES, axis=0)
    for _ in range(3):
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        vx, vy = rng.normal(0, 3, size=2)
        for t in range(FRAMES):
            mask = (xx - x - vx * t) ** 2 + (yy - y - vy * t) ** 2 < 30**2
            video[t][mask] = rng.uniform(0, 1, size=3)
    video += rng.normal(0, 0.02, size=video.shape)
    return (np.clip(video, 0, 1) * 255).astype(np.uint8)


def write_dataset(base: Path, videos: int) -> tuple[Path, Path]:
    root, lists = base / "UCF-101", base / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for index in range(videos):
        label = index % len(CLASSES)
        name = CLASSES[label]
        relative = f"{name}/v_{name}_g{index // len(CLASSES) + 8:02d}_c01.avi"
        (root / name).mkdir(parents=True, exist_ok=True)
        write_video(root / relative, scene(rng), fps=FPS, codec="mpeg4")
        lines.append(f"{relative} {label + 1}\n")
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(CLASSES)))
    (lists / "trainlist01.txt").write_text("".join(lines))
    (lists / "testlist01.txt").write_text("")
    return root, lists


# ---------------------------------------------------------------------------------- loaders

Loader = Callable[[], Iterator[torch.Tensor]]  # yields clips (3, T, 112, 112) float
# The decode-only floors (they yield decoded frames, not clips) and the floors each skr loader is
# measured against. A "+ skr's transform" floor runs skr's transform on the floor's frames: the
# loader against it is what the loader costs beyond decoding and transforming.
PYAV_YUV = "floor: PyAV, decode only (YUV frames)"
PYAV_RGB = "floor: PyAV, decoded to RGB"
PYAV_RGB_TRANSFORM = "floor: PyAV, decoded to RGB, + skr's transform"
TORCHCODEC = "floor: torchcodec, decoded (RGB)"
TORCHCODEC_TRANSFORM = "floor: torchcodec, decoded (RGB), + skr's transform"
FLOORS = {
    "skr, PyAV, seek (default)": (PYAV_RGB, PYAV_YUV, PYAV_RGB_TRANSFORM),
    "skr, torchcodec": (TORCHCODEC, TORCHCODEC_TRANSFORM),
}


def clip_fps(stride: int) -> float | None:
    """``dataset.fps`` of a clip of every ``stride``-th frame (None: consecutive frames)."""
    return FPS / stride if stride > 1 else None


def skr_clips(root: Path, lists: Path, frames: int, stride: int, **options) -> VideoClips:
    samples, _ = ucf101_samples(root, lists, "train", fold=1)
    options.setdefault("transform", eval_transform(SIZE, MEAN, STD))
    return VideoClips(samples, frames=frames, fps=clip_fps(stride), eval_clips=None, **options)


def skr_loader(root: Path, lists: Path, frames: int, stride: int, **options) -> Loader:
    dataset = skr_clips(root, lists, frames, stride, **options)
    generator = torch.Generator().manual_seed(0)

    def run() -> Iterator[torch.Tensor]:
        for index in torch.randperm(len(dataset), generator=generator).tolist():
            yield dataset[(index, index)][0]

    return run


def pytorchvideo_loader(root: Path, frames: int, stride: int) -> Loader:
    from pytorchvideo.data import Ucf101, make_clip_sampler
    from pytorchvideo.transforms import (
        ApplyTransformToKey,
        Normalize,
        ShortSideScale,
        UniformTemporalSubsample,
    )
    from torchvision.transforms import CenterCrop, Compose, Lambda

    transform = ApplyTransformToKey(
        "video",
        Compose(
            [
                UniformTemporalSubsample(frames),
                Lambda(lambda x: x / 255.0),
                Normalize(MEAN, STD),
                ShortSideScale(SIZE),
                CenterCrop(SIZE),
            ]
        ),
    )
    dataset = Ucf101(
        data_path=str(root),
        clip_sampler=make_clip_sampler("random", frames * stride / FPS),
        transform=transform,
        decode_audio=False,
        decoder="pyav",
    )
    videos = dataset.num_videos

    def run() -> Iterator[torch.Tensor]:
        iterator = iter(dataset)
        for _ in range(videos):
            yield next(iterator)["video"]

    return run


def torchvision_transform() -> Callable[[torch.Tensor], torch.Tensor]:
    """torchvision's own transforms: uint8 (T, 3, H, W) -> float (3, T, 112, 112)."""
    transform = v2.Compose(
        [
            v2.Resize(SIZE, antialias=True),
            v2.CenterCrop(SIZE),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    return lambda video: transform(video).permute(1, 0, 2, 3)


def torchvision_loader(
    root: Path, lists: Path, frames: int, stride: int, skr_transform: bool = False
) -> tuple[Loader, float]:
    """torchvision's UCF101 with its own transforms, or with skr's (uint8 (T, H, W, 3) frames in,
    one-pass normalisation): that row separates decoding speed from transform speed."""
    start = time.perf_counter()
    dataset = torchvision.datasets.UCF101(
        str(root),
        str(lists),
        frames_per_clip=frames,
        step_between_clips=frames * stride,
        frame_rate=FPS // stride if stride > 1 else None,
        fold=1,
        train=True,
        transform=eval_transform(SIZE, MEAN, STD) if skr_transform else torchvision_transform(),
        output_format="THWC" if skr_transform else "TCHW",
        num_workers=1,
    )
    setup = time.perf_counter() - start
    clips = dataset.video_clips
    generator = torch.Generator().manual_seed(0)

    def run() -> Iterator[torch.Tensor]:
        # One random clip of every video, as the other loaders draw them.
        offsets = np.cumsum([0] + [len(c) for c in clips.clips])
        for video in torch.randperm(len(clips.clips), generator=generator).tolist():
            count = offsets[video + 1] - offsets[video]
            yield dataset[int(offsets[video] + torch.randint(count, (), generator=generator))][0]

    return run, setup


# ------------------------------------------------------------------------ decode-only floors


@dataclass(frozen=True)
class ClipPlan:
    """What the floors know before the clock starts: a file, and the frames of the clip skr's
    loader cuts from it, as indices and as presentation timestamps."""

    path: Path
    indices: list[int]
    stamps: list[int]


def clip_plans(root: Path, lists: Path, frames: int, stride: int) -> list[ClipPlan]:
    """The clip of every video that ``skr_loader`` loads (item ``(i, i)``: seed ``i``), drawn as
    ``VideoClips`` draws it; the timestamps come from the file's packets."""
    samples, _ = ucf101_samples(root, lists, "train", fold=1)
    plans = []
    for index, (path, _) in enumerate(samples):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            packets = container.demux(stream)
            stamps = sorted(p.pts for p in packets if p.size and p.pts is not None)
            info = VideoInfo(len(stamps), float(stream.average_rate), len(stamps))
        draw = float(torch.rand((), generator=torch.Generator().manual_seed(index)))
        chosen = frame_indices(info, frames=frames, fps=clip_fps(stride), starts=None, draw=draw)
        plans.append(ClipPlan(path, chosen, [stamps[i] for i in chosen]))
    return plans


def pyav_floor(plan: ClipPlan, rgb: bool) -> dict | torch.Tensor:
    """The clip's frames decoded by PyAV: a seek to the keyframe before the first, decoding up to
    the last. ``rgb``: those frames as one uint8 array (T, H, W, 3) RGB, converted on this
    thread; else the decoded frames as they come (YUV), by timestamp."""
    first, last, wanted = min(plan.stamps), max(plan.stamps), set(plan.stamps)
    kept = {}
    with av.open(str(plan.path)) as container:
        stream = container.streams.video[0]
        container.seek(first, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts in wanted:
                kept[frame.pts] = frame.to_ndarray(format="rgb24", threads=1) if rgb else frame
            if frame.pts >= last:
                break
    return torch.from_numpy(np.stack([kept[stamp] for stamp in plan.stamps])) if rgb else kept


def torchcodec_floor(plan: ClipPlan) -> torch.Tensor:
    """The clip's frames decoded by torchcodec (its default, exact seeking): uint8 (T, H, W, 3)."""
    from torchcodec.decoders import VideoDecoder

    return VideoDecoder(str(plan.path), dimension_order="NHWC").get_frames_at(plan.indices).data


def floor_loader(plans: list[ClipPlan], decode: Callable[[ClipPlan], object]) -> Loader:
    generator = torch.Generator().manual_seed(0)

    def run() -> Iterator:
        for index in torch.randperm(len(plans), generator=generator).tolist():
            yield decode(plans[index])

    return run


def check_same_frames(
    root: Path, lists: Path, frames: int, stride: int, plans: list[ClipPlan], decoder: str, floor
) -> None:
    """Stops the benchmark unless ``floor`` decodes exactly the frames skr's loader would feed
    its transform, for every video."""
    untouched = skr_clips(
        root, lists, frames, stride, decoder=decoder, cache_decoded=False, transform=lambda x: x
    )
    for index, plan in enumerate(plans):
        skr_frames = untouched[(index, index)][0]  # (T, H, W, 3) uint8
        if not torch.equal(skr_frames, floor(plan)):
            sys.exit(f"the {decoder} floor decodes other frames than skr's loader: {plan.path}")


def floors(root: Path, lists: Path, frames: int, stride: int, torchcodec: bool) -> dict:
    plans = clip_plans(root, lists, frames, stride)
    rgb = functools.partial(pyav_floor, rgb=True)
    check_same_frames(root, lists, frames, stride, plans, "pyav", rgb)
    transform = eval_transform(SIZE, MEAN, STD)
    found = {
        PYAV_YUV: floor_loader(plans, functools.partial(pyav_floor, rgb=False)),
        PYAV_RGB: floor_loader(plans, rgb),
        PYAV_RGB_TRANSFORM: floor_loader(plans, lambda plan: transform(rgb(plan))),
    }
    if torchcodec:
        check_same_frames(root, lists, frames, stride, plans, "torchcodec", torchcodec_floor)
        found[TORCHCODEC] = floor_loader(plans, torchcodec_floor)
        found[TORCHCODEC_TRANSFORM] = floor_loader(
            plans, lambda plan: transform(torchcodec_floor(plan))
        )
    return found


# ------------------------------------------------------------------------------------ bench


def clips_per_second(loader: Loader, shape: tuple[int, ...] | None) -> float:
    """Clips per second of this process's CPU time: every loader runs on one thread, so this is
    its speed on an idle core, whatever else the machine runs meanwhile. ``shape``: what every
    clip must be (None for the floors, which yield decoded frames)."""
    start, count = time.process_time(), 0
    for clip in loader():
        assert shape is None or clip.shape == shape, clip.shape
        count += 1
    return count / (time.process_time() - start)


PYAV_FFMPEG = "SKR_BENCH_PYAV_FFMPEG"  # set in the re-run that loads PyAV's FFmpeg libraries


def rerun_with_pyav_ffmpeg() -> None:
    """Replaces this process by the same command with ``LD_LIBRARY_PATH`` on a folder of links to
    PyAV's bundled FFmpeg libraries (``skr_cli.data.video.pyav_ffmpeg_folder``)."""
    folder = pyav_ffmpeg_folder()
    if folder is None:
        sys.exit("--ffmpeg-from-pyav: PyAV bundles no FFmpeg libraries (not from a wheel?)")
    env = dict(os.environ, **{PYAV_FFMPEG: "1"})
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [str(folder), env.get("LD_LIBRARY_PATH")])
    )
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def loaders(root: Path, lists: Path, frames: int, stride: int, notes: list[str]) -> dict:
    found: dict[str, Loader] = {
        "skr, PyAV, seek (default)": skr_loader(
            root, lists, frames, stride, decoder="pyav", cache_decoded=False
        ),
    }
    cached = skr_loader(root, lists, frames, stride, decoder="pyav", cache_decoded=True)
    for _ in cached():  # fill the cache: this row measures later epochs
        pass
    found["skr, PyAV, decoded-clip cache (warm)"] = cached
    problem = torchcodec_error()
    if problem is None:
        found["skr, torchcodec"] = skr_loader(
            root, lists, frames, stride, decoder="torchcodec", cache_decoded=False
        )
    found["pytorchvideo Ucf101 (PyAV)"] = pytorchvideo_loader(root, frames, stride)
    if problem is None:
        found["torchvision UCF101 (torchcodec)"], setup = torchvision_loader(
            root, lists, frames, stride
        )
        notes.append(f"torchvision's UCF101 spent {setup:.1f} s indexing every clip first.")
        found["torchvision UCF101 (torchcodec), skr's transform"], _ = torchvision_loader(
            root, lists, frames, stride, skr_transform=True
        )
    else:
        notes.append(f"torchcodec cannot load here ({problem}): no torchcodec rows.")
    return found | floors(root, lists, frames, stride, torchcodec=problem is None)


def bench_shape(
    root: Path, lists: Path, frames: int, stride: int, rounds: int, notes: list
) -> dict[str, list[float]]:
    """Every loader's clips/s in each of ``rounds`` rounds; each floor runs right after the
    loader measured against it, so that the pair sees the same machine load."""
    found = loaders(root, lists, frames, stride, notes)
    order = []
    for name in found:
        if not name.startswith("floor:"):
            order += [name, *(floor for floor in FLOORS.get(name, ()) if floor in found)]
    rates: dict[str, list[float]] = {name: [] for name in order}

    def rate(name: str) -> float:
        shape = None if name.startswith("floor:") else (3, frames, SIZE, SIZE)
        return clips_per_second(found[name], shape)

    for name in order:  # warm-up: lazy imports, library loading, file cache
        rate(name)
    for _ in range(rounds):  # loaders take turns, so load changes hit all alike
        for name in order:
            rates[name].append(rate(name))
    return rates


def table(results: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for label, rates in results.items():
        reference = rates["pytorchvideo Ucf101 (PyAV)"]
        vision = rates.get("torchvision UCF101 (torchcodec)")
        lines += [
            f"### {label}",
            "",
            "| loader | clips/s | x pytorchvideo | x torchvision |",
            "|---|---|---|---|",
        ]
        for name, rate in rates.items():
            if not name.startswith("floor:"):
                versus = f"{rate / vision:.2f}" if vision else "n/a"
                lines.append(f"| {name} | {rate:.1f} | {rate / reference:.2f} | {versus} |")
        lines.append("")
    return lines


def floor_shares(rounds: dict[str, list[float]]) -> list[tuple[str, str, float]]:
    """(skr loader, floor, share) for every floor measured: the median over the rounds of the
    loader's clips/s over the floor's, measured one after the other."""

    def share(loader: str, floor: str) -> float:
        pairs = zip(rounds[loader], rounds[floor], strict=True)
        return statistics.median(mine / least for mine, least in pairs)

    return [
        (loader, floor, share(loader, floor))
        for loader, names in FLOORS.items()
        for floor in names
        if loader in rounds and floor in rounds
    ]


def floor_table(rounds: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = [
        "### Against the decode-only floor",
        "",
        "The same frames of the same clips decoded and nothing else (see the script's docstring),",
        "each floor timed right after its loader; share: the median over the rounds of loader",
        "clips/s ÷ floor clips/s (1: the loader costs nothing beyond decoding). The `+ skr's",
        "transform` rows run skr's transform on the floor's frames: against them the loader's",
        "share is what its reading and item plumbing cost beyond decoding and transforming.",
        "",
        "| clip | loader | floor | loader clips/s | floor clips/s | share |",
        "|---|---|---|---|---|---|",
    ]
    for label, rates in rounds.items():
        for loader, floor, share in floor_shares(rates):
            name = floor.removeprefix("floor: ")
            lines.append(
                f"| {label} | {loader} | {name} | {statistics.median(rates[loader]):.1f} "
                f"| {statistics.median(rates[floor]):.1f} | {share:.2f} |"
            )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/data.md"))
    parser.add_argument("--note", action="append", default=[], help="a line to add to the notes")
    parser.add_argument(
        "--ffmpeg-from-pyav",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="where torchcodec finds no FFmpeg, run again on the FFmpeg libraries PyAV bundles",
    )
    args = parser.parse_args()
    if args.ffmpeg_from_pyav and PYAV_FFMPEG not in os.environ and torchcodec_error():
        rerun_with_pyav_ffmpeg()
    torch.set_num_threads(1)
    notes: list[str] = list(args.note)
    if PYAV_FFMPEG in os.environ:
        notes.append(
            "This machine has no system FFmpeg, which torchcodec needs: the torchcodec rows ran on "
            f"the FFmpeg libraries bundled with PyAV {av.__version__} (`--ffmpeg-from-pyav`)."
        )
    with tempfile.TemporaryDirectory() as tmp:
        root, lists = write_dataset(Path(tmp), args.videos)
        rounds = {
            label: bench_shape(root, lists, frames, stride, args.rounds, notes)
            for label, frames, stride in SHAPES
        }
    results = {
        label: {name: statistics.median(values) for name, values in rates.items()}
        for label, rates in rounds.items()
    }
    lines = [
        "# Data loading: clips per second, skr against pytorchvideo, torchvision and the "
        "decode-only floor",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU threads; one process, one thread; "
        "clips per second of CPU time (robust to other jobs on the machine). "
        f"PyAV {av.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}."
        f" {args.videos} MPEG-4 AVI files of {FRAMES} frames, "
        f"{WIDTH}x{HEIGHT} at {FPS} fps (UCF101's format); one random clip per video, short side "
        f"to {SIZE}, centre crop {SIZE}x{SIZE}, normalised (skr in one multiply-add, equal to "
        "the `v2.ToDtype` + `v2.Normalize` pair the torchvision row runs up to float rounding). "
        f"Median of {args.rounds} rounds, loaders in turns. Written by `scripts/bench_data.py`.",
        "",
        *table(results),
        *floor_table(rounds),
        *[f"- {note}" for note in dict.fromkeys(notes)],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    shares = {
        label: {f"{loader} / {floor}": share for loader, floor, share in floor_shares(rates)}
        for label, rates in rounds.items()
    }
    write_headlines(args.out, headlines(results, rounds), results | {"floor shares": shares})
    print("\n".join(lines))


def headlines(
    results: dict[str, dict[str, float]], rounds: dict[str, dict[str, list[float]]]
) -> list[dict]:
    """skr's default loader against pytorchvideo's and torchvision's, and skr's loaders against
    the decode-only floor, per clip shape."""
    found = []
    for label, rates in results.items():
        skr = rates["skr, PyAV, seek (default)"]
        versus = [f"x{skr / rates['pytorchvideo Ucf101 (PyAV)']:.2f} pytorchvideo's"]
        if "torchvision UCF101 (torchcodec)" in rates:
            versus.append(f"x{skr / rates['torchvision UCF101 (torchcodec)']:.2f} torchvision's")
        text = f"{label}: skr's default loader decodes {skr:.0f} clips/s, {', '.join(versus)}"
        found.append({"text": text, "value": skr / rates["pytorchvideo Ucf101 (PyAV)"]})
        found.append(floor_headline(label, rounds[label]))
    return found


def floor_headline(label: str, rounds: dict[str, list[float]]) -> dict:
    """skr's loaders as a share of the decode-only floor (value: the default loader's, against
    PyAV decoding to RGB)."""
    share = {(loader, floor): value for loader, floor, value in floor_shares(rounds)}
    default = share["skr, PyAV, seek (default)", PYAV_RGB]
    text = (
        f"{label}: skr's default loader runs at {default:.2f} of the decode-only floor "
        f"(PyAV decoding the same frames to RGB; "
        f"{share['skr, PyAV, seek (default)', PYAV_YUV]:.2f} of decoding alone, no RGB)"
    )
    if (codec := share.get(("skr, torchcodec", TORCHCODEC))) is not None:
        text += f", its torchcodec loader at {codec:.2f} of torchcodec's"
    return {"text": text, "value": default}


if __name__ == "__main__":
    main()
