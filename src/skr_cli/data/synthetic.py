"""Built-in data: procedurally generated action clips written as real encoded video files.

Every class is the *motion* of one object — its direction, speed, rhythm or trajectory — never its
appearance: colour, size, background and start position are drawn independently of the class, so a
single frame says little and a 3D network has to look across time. Smaller distractors wander about
at random and every frame carries sensor noise.

The files follow the UCF101 layout (``UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` plus
``ucfTrainTestlist/`` with ``classInd.txt``, ``trainlist01.txt`` and ``testlist01.txt``) and are
read back by the same code that reads UCF101. Like UCF101, clips of one group share a scene
(background, object colour and size), and the test split holds whole groups, so no scene is seen in
both splits; unlike UCF101, every scene appears in every class, so the scene is no shortcut.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from skr_cli.data.video import write_video

FORMAT_VERSION = 3  # bump when the rendering changes, so old caches are not reused

# A trajectory maps (t, params) to the object's centre (x, y) and radius scale for frames t.
Trajectory = Callable[[np.ndarray, dict], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _linear(axis: int, direction: int) -> Trajectory:
    def path(t: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Distance from the edge the motion leaves from; the start keeps the path in frame.
        along = p["start"] + p["speed"] * t
        along = along if direction > 0 else p["size"] - along
        across = np.full_like(t, p["cy"] if axis == 0 else p["cx"])
        return (along, across, np.ones_like(t)) if axis == 0 else (across, along, np.ones_like(t))

    return path


def _circle(direction: float) -> Trajectory:
    def path(t: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        angle = p["phase"] + direction * p["omega"] * t
        return p["cx"] + p["orbit"] * np.cos(angle), p["cy"] + p["orbit"] * np.sin(angle), 1 + 0 * t

    return path


def _swing(axis: int) -> Trajectory:
    def path(t: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        offset = p["orbit"] * np.sin(p["phase"] + p["omega"] * t)
        x = p["cx"] + (offset if axis == 0 else 0 * t)
        y = p["cy"] + (offset if axis == 1 else 0 * t)
        return x, y, np.ones_like(t)

    return path


def _stop_and_go(t: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Moves along a diagonal in bursts (on for half the period, still for the other half); the
    # path is centred on (cx, cy).
    moving = (np.floor((t + p["phase_frames"]) / p["half_period"]) % 2 == 0).astype(float)
    travelled = np.cumsum(moving) * 2 * p["speed"]
    travelled -= travelled[-1] / 2
    return p["cx"] + p["dx"] * travelled, p["cy"] + p["dy"] * travelled, np.ones_like(t)


def _pulse(t: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Stays in place; its size beats in a rhythm.
    scale = 1 + 0.6 * np.sin(p["phase"] + p["omega"] * t)
    return p["cx"] + 0 * t, p["cy"] + 0 * t, scale


CLASSES: dict[str, Trajectory] = {
    "MoveRight": _linear(0, 1),
    "MoveLeft": _linear(0, -1),
    "MoveUp": _linear(1, -1),
    "MoveDown": _linear(1, 1),
    "CircleClockwise": _circle(1),
    "CircleCounterClockwise": _circle(-1),
    "SwingHorizontal": _swing(0),
    "SwingVertical": _swing(1),
    "StopAndGo": _stop_and_go,
    "Pulse": _pulse,
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated files (and therefore the cache key)."""

    num_classes: int
    groups: int
    clips_per_group: int
    test_groups: int
    video_frames: int
    video_size: int
    fps: int
    noise: float
    distractors: int
    seed: int
    # frames per cycle of the periodic motions (a turn, a swing, a beat, a burst and a rest),
    # drawn per clip from [low, high]; a clip at least ``high`` frames long holds a whole cycle
    period: tuple[float, float] = (6.0, 8.0)

    def __post_init__(self) -> None:
        low, high = (float(value) for value in self.period)
        if not 2 <= low <= high:
            raise ValueError(
                f"generator.period={list(self.period)}: [low, high] with 2 <= low <= high"
            )
        object.__setattr__(self, "period", (low, high))

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def class_names(num_classes: int) -> list[str]:
    """The first ``num_classes`` motion classes, in label order."""
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be in 2..{len(CLASSES)}, got {num_classes}")
    return list(CLASSES)[:num_classes]


def _motion_params(
    rng: np.random.Generator, size: int, frames: int, period: tuple[float, float]
) -> dict:
    """Random, class-independent motion parameters that keep the object inside the frame; the
    periodic motions take ``period`` (low, high) frames per cycle."""
    cycle = rng.uniform(*period)
    speed = rng.uniform(0.6, 1.0) * 0.7 * size / frames  # crosses 42–70 % of the frame
    margin = 0.15 * size
    return {
        "size": size,
        "speed": speed,
        "start": rng.uniform(margin, max(margin, size - margin - speed * frames)),
        "cx": rng.uniform(0.35, 0.65) * size,
        "cy": rng.uniform(0.35, 0.65) * size,
        "orbit": rng.uniform(0.15, 0.25) * size,
        "omega": 2 * np.pi / cycle,  # one turn, swing or beat per cycle
        "phase": rng.uniform(0, 2 * np.pi),
        "half_period": max(1, round(cycle / 2)),  # stop-and-go: a burst, then as long a rest
        "phase_frames": int(rng.integers(0, max(2, round(cycle)))),
        "dx": rng.choice([-1, 1]) * 0.7,
        "dy": rng.choice([-1, 1]) * 0.7,
    }


def _blobs(
    grid: tuple[np.ndarray, np.ndarray], x: np.ndarray, y: np.ndarray, radius: np.ndarray
) -> np.ndarray:
    """Anti-aliased discs: coverage (T, H, W) in [0, 1] for centres (T,) and radii (T,)."""
    yy, xx = grid
    dist = np.sqrt((xx[None] - x[:, None, None]) ** 2 + (yy[None] - y[:, None, None]) ** 2)
    return np.clip(radius[:, None, None] - dist + 0.5, 0.0, 1.0)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random texture (H, W, 3) in [0, 1]: a coarse 4x4 noise grid, box-blurred up."""
    coarse = rng.uniform(0.3, 0.7, size=(4, 4, 3))
    reps = int(np.ceil(size / 4))
    fine = np.kron(coarse, np.ones((reps, reps, 1)))[:size, :size]
    kernel = np.ones(reps) / reps
    for axis in (0, 1):
        padded = np.pad(fine, [(reps, reps) if a == axis else (0, 0) for a in range(3)], "edge")
        blurred = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, padded)
        fine = np.take(blurred, range(reps, reps + size), axis=axis)
    return fine


def render_clip(
    rng: np.random.Generator, name: str, spec: SyntheticSpec, scene: dict
) -> np.ndarray:
    """Renders one clip of class ``name`` in a group's ``scene``; returns (T, H, W, 3) uint8."""
    size, frames = spec.video_size, spec.video_frames
    t = np.arange(frames, dtype=float)
    grid = np.mgrid[0:size, 0:size].astype(float)
    params = _motion_params(rng, size, frames, spec.period)
    x, y, scale = CLASSES[name](t, params)
    video = np.broadcast_to(scene["background"], (frames, size, size, 3)).copy()
    radius = scene["radius"] * scale
    coverage = _blobs((grid[0], grid[1]), x, y, radius)[..., None]
    video = video * (1 - coverage) + scene["color"] * coverage
    for _ in range(spec.distractors):
        steps = rng.normal(0, 0.04 * size, size=(frames, 2)).cumsum(axis=0)
        start = rng.uniform(0.1, 0.9, size=2) * size
        cov = _blobs(
            (grid[0], grid[1]),
            start[0] + steps[:, 0],
            start[1] + steps[:, 1],
            np.full(frames, 0.06 * size),
        )[..., None]
        video = video * (1 - cov) + rng.uniform(0, 1, size=3) * cov
    video += rng.normal(0, spec.noise, size=video.shape)
    return (np.clip(video, 0, 1) * 255).round().astype(np.uint8)


def _scene(rng: np.random.Generator, size: int) -> dict:
    """A group's look: background, object colour and size (shared by every class)."""
    return {
        "background": _background(rng, size),
        "color": rng.choice([0.05, 0.95], size=3),  # saturated: stands out of the background
        "radius": rng.uniform(0.10, 0.15) * size,
    }


def _write_dataset(root: Path, spec: SyntheticSpec) -> None:
    names = class_names(spec.num_classes)
    rng = np.random.default_rng(spec.seed)
    # Every class is performed in every scene, so the look of a clip says nothing of its class.
    scenes = [_scene(rng, spec.video_size) for _ in range(spec.groups)]
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    train, test = [], []
    for label, name in enumerate(names):
        (root / "UCF-101" / name).mkdir(parents=True)
        for group, scene in enumerate(scenes, start=1):
            for clip in range(1, spec.clips_per_group + 1):
                relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                video = render_clip(rng, name, spec, scene)
                write_video(root / "UCF-101" / relative, video, fps=spec.fps, codec="mpeg4")
                if group <= spec.test_groups:
                    test.append(relative)
                else:
                    train.append(f"{relative} {label + 1}")
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    (lists / "trainlist01.txt").write_text("".join(f"{line}\n" for line in train))
    (lists / "testlist01.txt").write_text("".join(f"{line}\n" for line in test))


def ensure_synthetic(cache_dir: str | Path, spec: SyntheticSpec) -> Path:
    """Generates the dataset once into ``cache_dir/synthetic-<key>`` and returns that folder.

    Parallel runs wait on a file lock; the folder appears atomically (built aside, then renamed),
    so a killed generation leaves no half-written dataset behind.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"synthetic-{spec.key()}"
    with FileLock(str(root) + ".lock"):
        if not root.exists():
            staging = cache / f".{root.name}.{os.getpid()}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            _write_dataset(staging, spec)
            (staging / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
            staging.rename(root)
    return root
