"""Encoded video files, the UCF101 split files, clip sampling and the built-in generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from skr_cli.data.clips import VideoClips, collate_clips
from skr_cli.data.synthetic import CLASSES, SyntheticSpec, _motion_params, ensure_synthetic
from skr_cli.data.transforms import eval_transform, train_transform
from skr_cli.data.ucf101 import read_class_index, ucf101_samples
from skr_cli.data.video import VideoDecodeError, decode_video, write_video

SPEC = SyntheticSpec(
    num_classes=3,
    groups=3,
    clips_per_group=2,
    test_groups=1,
    video_frames=10,
    video_size=32,
    fps=25,
    noise=0.02,
    distractors=1,
    seed=0,
)


def gradient_video(frames: int = 6) -> np.ndarray:
    ramp = np.linspace(0, 255, 32, dtype=np.uint8)
    video = np.zeros((frames, 32, 32, 3), dtype=np.uint8)
    video[..., 0] = ramp[None, None, :]
    video[..., 1] = (np.arange(frames) * 40)[:, None, None]
    return video


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", ".avi"), ("libx264", ".mp4")])
def test_encoded_video_decodes_back(tmp_path: Path, codec: str, suffix: str) -> None:
    video = gradient_video()
    write_video(tmp_path / f"v{suffix}", video, fps=25, codec=codec)
    decoded = decode_video(tmp_path / f"v{suffix}")
    assert decoded.shape == video.shape and decoded.dtype == torch.uint8
    assert np.abs(decoded.numpy().astype(int) - video).mean() < 4


def test_corrupt_file_raises_a_decode_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF\x00\x00not a video at all" * 10)
    with pytest.raises(VideoDecodeError, match="bad.avi"):
        decode_video(bad)


def test_synthetic_layout_and_split_files(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path, SPEC)
    lists = root / "ucfTrainTestlist"
    assert read_class_index(lists / "classInd.txt") == ["MoveRight", "MoveLeft", "MoveUp"]
    train, classes = ucf101_samples(root / "UCF-101", lists, "train", fold=1)
    test, _ = ucf101_samples(root / "UCF-101", lists, "test", fold=1)
    assert len(train) == 3 * 2 * 2 and len(test) == 3 * 1 * 2
    assert all(path.exists() and path.suffix == ".avi" for path, _ in train + test)
    assert {label for _, label in test} == {0, 1, 2}
    assert "v_MoveLeft_g01_c02.avi" in {path.name for path, _ in test}
    assert (lists / "trainlist01.txt").read_text().splitlines()[0].endswith(" 1")


def test_synthetic_is_generated_once_per_setting(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path, SPEC)
    stamp = (root / "spec.json").stat().st_mtime_ns
    assert ensure_synthetic(tmp_path, SPEC) == root
    assert (root / "spec.json").stat().st_mtime_ns == stamp
    other = ensure_synthetic(tmp_path, SyntheticSpec(**{**SPEC.__dict__, "seed": 1}))
    assert other != root


def test_synthetic_generation_is_reproducible(tmp_path: Path) -> None:
    first = ensure_synthetic(tmp_path / "a", SPEC)
    second = ensure_synthetic(tmp_path / "b", SPEC)
    name = "MoveUp/v_MoveUp_g02_c01.avi"
    assert torch.equal(
        decode_video(first / "UCF-101" / name), decode_video(second / "UCF-101" / name)
    )


def turning(path: tuple, params: dict) -> np.ndarray:
    """Sign of the cross product of successive radii: + clockwise on screen (y points down)."""
    x, y, _ = path
    dx, dy = x - params["cx"], y - params["cy"]
    return np.sign(dx[:-1] * dy[1:] - dy[:-1] * dx[1:])


def test_trajectories_move_as_their_class_says() -> None:
    t = np.arange(24, dtype=float)
    for seed in range(5):
        params = _motion_params(np.random.default_rng(seed), 64, 24, (6.0, 8.0))
        path = {name: CLASSES[name](t, params) for name in CLASSES}
        assert (np.diff(path["MoveRight"][0]) > 0).all()
        assert (np.diff(path["MoveLeft"][0]) < 0).all()
        assert (np.diff(path["MoveDown"][1]) > 0).all() and (np.diff(path["MoveUp"][1]) < 0).all()
        for name in ("MoveRight", "MoveLeft", "MoveUp", "MoveDown"):
            x, y, _ = path[name]
            assert (x >= 0).all() and (x <= 64).all() and (y >= 0).all() and (y <= 64).all()
        assert (turning(path["CircleClockwise"], params) > 0).all()
        assert (turning(path["CircleCounterClockwise"], params) < 0).all()
        x, y, scale = path["Pulse"]
        assert np.ptp(x) == 0 and np.ptp(y) == 0 and np.ptp(scale) > 0.5


@pytest.mark.parametrize("period", [(6.0, 8.0), (4.0, 5.0)])
def test_one_clip_as_long_as_the_period_holds_a_whole_cycle(period: tuple) -> None:
    frames = int(period[1])
    t = np.arange(frames + 1, dtype=float)  # frames steps: the cycle closes at the last one
    for seed in range(20):
        params = _motion_params(np.random.default_rng(seed), 64, 24, period)
        assert params["omega"] * frames >= 2 * np.pi - 1e-9  # a full turn, swing or beat
        x, y, _ = CLASSES["StopAndGo"](t[:frames], params)
        moves = np.hypot(np.diff(x), np.diff(y)) > 0
        assert moves.any() and not moves.all()  # a burst and a rest in every clip


def test_a_period_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"generator.period=\[1.0, 8.0\]"):
        SyntheticSpec(**{**SPEC.__dict__, "period": (1.0, 8.0)})
    with pytest.raises(ValueError, match="low <= high"):
        SyntheticSpec(**{**SPEC.__dict__, "period": (9, 8)})


def test_same_scene_looks_alike_in_every_class(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path, SPEC)
    means = [
        decode_video(root / f"UCF-101/{name}/v_{name}_g02_c01.avi").float().mean(dim=(0, 1, 2))
        for name in ("MoveRight", "MoveLeft", "MoveUp")
    ]
    assert all((m - means[0]).abs().max() < 8 for m in means)  # colour averages within 3 %


def clips_of(samples: list, eval_clips: int | None, cache: bool) -> VideoClips:
    half = [0.5, 0.5, 0.5]
    transform = (
        train_transform(16, [1.0, 1.25], True, half, half)
        if eval_clips is None
        else eval_transform(16, half, half)
    )
    return VideoClips(
        samples,
        frames=4,
        fps=None,
        eval_clips=eval_clips,
        transform=transform,
        decoder="pyav",
        cache_decoded=cache,
    )


def test_clips_train_and_eval_shapes(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path, SPEC)
    samples, _ = ucf101_samples(root / "UCF-101", root / "ucfTrainTestlist", "test", fold=1)
    clip, label = clips_of(samples, None, cache=False)[0]
    assert clip.shape == (3, 4, 16, 16) and -1 <= clip.min() and clip.max() <= 1
    clips, _ = clips_of(samples, 3, cache=True)[0]
    assert clips.shape == (3, 3, 4, 16, 16)
    assert not torch.equal(clips[0], clips[-1])  # spread over the video


def test_undecodable_videos_are_skipped_and_named(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path, SPEC)
    samples, _ = ucf101_samples(root / "UCF-101", root / "ucfTrainTestlist", "test", fold=1)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"garbage")
    dataset = clips_of(samples[:2] + [(broken, 0)], None, cache=False)
    clips, labels, failed = collate_clips([dataset[i] for i in range(3)])
    assert clips.shape[0] == 2 and len(labels) == 2 and failed == [str(broken)]


def test_normalisation_equals_torchvisions_to_dtype_and_normalize() -> None:
    from torchvision.transforms import v2

    frames = torch.randint(0, 256, (4, 36, 48, 3), dtype=torch.uint8)  # (T, H, W, 3)
    mean, std = [0.4, 0.45, 0.5], [0.2, 0.25, 0.3]
    reference = v2.Compose(
        [
            v2.Resize(32, antialias=True),
            v2.CenterCrop(32),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )(frames.permute(0, 3, 1, 2))  # (T, 3, 32, 32)
    clip = eval_transform(32, mean, std)(frames)
    assert clip.shape == (3, 4, 32, 32) and clip.is_contiguous()
    torch.testing.assert_close(clip, reference.permute(1, 0, 2, 3), rtol=0, atol=1e-5)


@pytest.mark.parametrize("frame_size", [(36, 48), (48, 36), (40, 40), (32, 32)])
@pytest.mark.parametrize("count", [1, 4])
def test_the_steps_give_torchvisions_pixels_and_draws(frame_size: tuple, count: int) -> None:
    """The clip steps are torchvision's v2 transforms written out in torch: on the same frames
    and the same random state, the same pixels, and the same random numbers used up."""
    from torchvision.transforms import v2

    from skr_cli.data.transforms import (
        center_crop,
        random_crop,
        random_flip,
        random_resize,
        resize_short_side,
    )

    height, width = frame_size
    frames = torch.randint(0, 256, (count, height, width, 3), dtype=torch.uint8)
    planar = frames.permute(0, 3, 1, 2)  # (T, 3, H, W) with the decoder's interleaved layout
    pairs = [
        (v2.Resize(32, antialias=True), lambda f: resize_short_side(f, 32)),
        (v2.CenterCrop(32), lambda f: center_crop(f, 32)),
        (v2.RandomResize(32, 41, antialias=True), lambda f: random_resize(f, 32, 41)),
        (v2.RandomCrop(32), lambda f: random_crop(f, 32)),
        (v2.RandomHorizontalFlip(), random_flip),
    ]
    for draw in range(6):
        for reference, ours in pairs:
            torch.manual_seed(draw)
            expected = reference(planar)
            after_reference = torch.rand(1)
            torch.manual_seed(draw)
            got = ours(planar)
            assert torch.equal(got, expected), (reference, draw)
            assert torch.rand(1) == after_reference  # the same draws were taken
        torch.manual_seed(draw)
        augment = [v2.RandomResize(32, 41, antialias=True), v2.RandomCrop(32)]
        steps = v2.Compose([*augment, v2.RandomHorizontalFlip()])
        expected = steps(planar).permute(1, 0, 2, 3)
        torch.manual_seed(draw)
        clip = train_transform(32, [1.0, 1.25], True, [0.0] * 3, [1 / 255] * 3)(frames)
        assert torch.equal(clip, expected.float()), draw  # mean 0, std 1/255: the pixels


def test_normalisation_rounds_each_value_once() -> None:
    """Every value is ``x / (255 std) - mean / std`` rounded once to float32 (a fused
    multiply-add), whatever the clip's size: the frames here already have the clip's size, so
    the transform only normalises."""
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (5, 33, 33, 3), dtype=torch.uint8, generator=generator)
    mean, std = [0.43216, 0.394666, 0.37645], [0.22803, 0.22145, 0.216989]
    clip = eval_transform(33, mean, std)(frames)  # (3, 5, 33, 33)
    spread = torch.tensor(std).view(3, 1, 1, 1)
    scale, shift = 1 / (255 * spread), -torch.tensor(mean).view(3, 1, 1, 1) / spread
    exact = frames.permute(3, 0, 1, 2).double() * scale.double() + shift.double()  # no rounding
    assert clip.is_contiguous() and torch.equal(clip, exact.float())
