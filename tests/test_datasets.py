"""UCF101, HMDB51 and Kinetics in their official layouts: split parsing, decoding real-world
files, clip sampling, bad files, and one end-to-end ``skr-run`` per data set."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch
from torch.utils.data import DataLoader

from skr_cli.data import video
from skr_cli.data.clips import (
    DamagedPath,
    SeededSampler,
    VideoClips,
    collate_clips,
    frame_indices,
)
from skr_cli.data.hmdb51 import hmdb51_samples
from skr_cli.data.kinetics import kinetics_samples
from skr_cli.data.sources import Hmdb51Source, KineticsSource, Ucf101Source, held_out
from skr_cli.data.transforms import eval_transform, train_transform
from skr_cli.data.ucf101 import ucf101_samples
from skr_cli.data.video import (
    DamagedVideoError,
    VideoDecodeError,
    VideoInfo,
    decode_all,
    read_frames,
    shortfall,
)
from tests import video_fixtures as fx

HALF = [0.5, 0.5, 0.5]


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("official")
    return {
        "ucf101": fx.make_ucf101(base),
        "hmdb51": fx.make_hmdb51(base),
        "kinetics400": fx.make_kinetics(base),
    }


def torchcodec_loads() -> bool:
    try:
        from torchcodec._core.ops import load_core_libraries

        load_core_libraries()
    except Exception:  # FFmpeg libraries missing: torchcodec cannot decode on this machine
        return False
    return True


DECODERS = [
    "pyav",
    pytest.param(
        "torchcodec",
        marks=pytest.mark.skipif(not torchcodec_loads(), reason="torchcodec finds no FFmpeg"),
    ),
]


# ------------------------------------------------------------------------------ split files


def test_ucf101_lists_give_labels_and_find_the_handstand_files(trees) -> None:
    root, lists = trees["ucf101"]
    train, classes = ucf101_samples(root, lists, "train", fold=1)
    test, _ = ucf101_samples(root, lists, "test", fold=1)
    assert classes == fx.UCF_CLASSES  # classInd.txt order, label = index - 1
    assert len(train) == 3 * 2 + 3 and len(test) == 3 * 2
    handstand = [path for path, label in test if label == 1]
    assert [p.name for p in handstand] == [f"v_HandStandPushups_g0{g}_c01.avi" for g in (1, 2)]
    assert all(path.exists() for path, _ in test)
    assert {label for _, label in train} == {0, 1, 2}


def test_hmdb51_tags_pick_train_and_test_and_skip_unused(trees) -> None:
    root, splits = trees["hmdb51"]
    train, classes = hmdb51_samples(root, splits, "train", fold=1)
    test, _ = hmdb51_samples(root, splits, "test", fold=1)
    assert classes == sorted(fx.HMDB_CLASSES)
    assert len(train) == 9 and len(test) == 3  # the tag-0 video of each class is in neither
    assert test[0][0].name == fx.hmdb_name("brush_hair", 3) and test[0][0].exists()
    second, _ = hmdb51_samples(root, splits, "train", fold=2)
    assert {p.name for p, _ in second} != {p.name for p, _ in train}  # fold 2 is another list


def test_kinetics_csv_quoted_labels_and_both_file_namings(trees) -> None:
    root, notes = trees["kinetics400"]
    train, classes = kinetics_samples(root, notes, "train")
    test, _ = kinetics_samples(root, notes, "test")
    assert classes == sorted(fx.KINETICS_CLASSES)  # "air drumming" has a space, CSV-quoted
    assert len(train) == 9 and len(test) == 3
    names = {path.name for path, _ in train}
    assert "id10-_Ab.mp4" in names and "id00-_Ab_000000_000010.mp4" in names
    assert all(path.exists() for path, _ in train + test)
    assert all(path.parent.parent.name == "val" for path, _ in test)


def test_missing_root_names_the_key_and_the_layout(tmp_path: Path, make_cfg) -> None:
    from hydra.utils import instantiate

    cfg = make_cfg("dataset=ucf101", f"dataset.root={tmp_path / 'nowhere'}")
    source = instantiate(cfg.dataset)
    with pytest.raises(FileNotFoundError, match="dataset.root .*nowhere not found; expected"):
        source.prepare()


def test_num_classes_must_match_the_class_list(trees, make_cfg) -> None:
    from hydra.utils import instantiate

    root, splits = trees["hmdb51"]
    cfg = make_cfg("dataset=hmdb51", f"dataset.root={root}", f"dataset.splits={splits}")
    with pytest.raises(ValueError, match="lists 3 classes but dataset.num_classes=51"):
        instantiate(cfg.dataset).prepare()


# --------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("decoder", DECODERS)
def test_real_world_files_decode_in_presentation_order(trees, decoder: str) -> None:
    ucf, _ = trees["ucf101"]
    files = [
        ucf / fx.ucf_name("ApplyEyeMakeup", 1, 1),  # non-UTF-8 metadata
        next(trees["kinetics400"][0].rglob("id00*.mp4")),  # H.264 with B-frames and AAC audio
    ]
    if decoder == "pyav":  # torchcodec loses the last frame of MPEG-4 AVIs with B-frames
        files.append(ucf / fx.ucf_name("YoYo", 3, 1))
    for path in files:
        video, info = decode_all(path, decoder)
        assert video.shape == (fx.FRAMES, fx.HEIGHT, fx.WIDTH, 3) and info.fps == 25
        green = video[:, :, :, 1].float().mean(dim=(1, 2))
        assert (green.diff() > 6).all(), path.name  # the ramp: frames are in order


def test_seeking_reads_the_same_frames_as_a_full_decode(trees) -> None:
    paths = [trees["ucf101"][0] / fx.ucf_name("YoYo", 3, 1), trees["hmdb51"][0]]
    paths[1] = next(paths[1].rglob("*goo_1.avi"))
    for path in paths:
        full, _ = decode_all(path, "pyav")
        for indices in ([0], [11], [5, 6, 7, 8], [11, 0, 6, 6]):
            assert torch.equal(read_frames(path, lambda info, i=indices: i, "pyav"), full[indices])


def encode_gops(path: Path, frames: int, *, b_frames: int) -> None:
    """A ``frames``-long ramp video with a keyframe every 8 frames (AVI: MPEG-4, MP4: H.264)."""
    codec = "mpeg4" if path.suffix == ".avi" else "libx264"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = fx.WIDTH, fx.HEIGHT, "yuv420p"
        stream.codec_context.gop_size, stream.codec_context.max_b_frames = 8, b_frames
        for image in fx.ramp_video(0, frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


@pytest.mark.parametrize("name", ["v.avi", "v.mp4", "b.avi", "b.mp4"])
def test_seeking_across_keyframes_reads_the_frames_of_a_full_decode(tmp_path, name) -> None:
    path = tmp_path / name
    encode_gops(path, 30, b_frames=2 if name.startswith("b") else 0)
    full, _ = decode_all(path, "pyav")
    assert len(full) == 30
    for indices in ([0], [7], [8], [9, 10, 11, 12], [16, 3, 3, 25], [28, 29]):
        assert torch.equal(read_frames(path, lambda info, i=indices: i, "pyav"), full[indices])


def test_frame_stamps_come_from_the_index_only_where_it_is_exact(tmp_path, monkeypatch) -> None:
    for name, b_frames in (("v.avi", 0), ("v.mp4", 0), ("b.mp4", 2)):
        encode_gops(tmp_path / name, 20, b_frames=b_frames)
    whole = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(whole[:-400])  # AVI's index (idx1) and a frame are gone

    def stamps(name: str) -> tuple[list[int], list[int]]:
        with av.open(str(tmp_path / name)) as container:
            size = (tmp_path / name).stat().st_size
            listed = video._frame_stamps(container, container.streams.video[0], size)
        with av.open(str(tmp_path / name)) as container:
            return listed, video._packet_stamps(container, container.streams.video[0])

    for name in ("v.avi", "v.mp4", "b.mp4", "cut.avi"):
        listed, read = stamps(name)
        assert listed == read, name
    assert 0 < len(stamps("cut.avi")[0]) < 20  # not the partial index the demuxer rebuilt
    monkeypatch.setattr(video, "_packet_stamps", lambda *_: [])
    assert len(stamps("v.avi")[0]) == len(stamps("v.mp4")[0]) == 20  # from the index alone
    assert stamps("b.mp4")[0] == []  # B-frames: the packets are always read


@pytest.mark.parametrize("decoder", DECODERS)
def test_bad_files_raise_a_decode_error(trees, decoder: str) -> None:
    ucf = trees["ucf101"][0]
    bad = [
        ucf / fx.ucf_name("YoYo", 5, 1),  # corrupt
        ucf / fx.ucf_name("YoYo", 5, 2),  # zero bytes
        trees["hmdb51"][0] / "clap" / fx.hmdb_name("clap", 0),  # an HTML page
        next(trees["kinetics400"][0].rglob("id21*.mp4")),  # truncated download
        ucf / "missing.avi",
    ]
    for path in bad:
        with pytest.raises(VideoDecodeError, match=path.name.replace("(", r"\(").split("!")[0]):
            read_frames(path, lambda info: [0], decoder)


@pytest.mark.parametrize("name", ["cut.avi", "cut.mp4"])
def test_a_file_cut_short_is_reported_as_damaged(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    fx.cut_short(path, 0, frames=100, keep=3)  # still opens; 3 frames decode
    message = f"{name}: decodes 3 of 100 frames its header declares"
    with pytest.raises(DamagedVideoError, match=message):
        read_frames(path, lambda info: [0], "pyav")
    with pytest.raises(DamagedVideoError, match=message):
        decode_all(path, "pyav")


def test_intact_files_and_one_frame_short_of_the_header_are_not_damaged(trees, tmp_path) -> None:
    cut = tmp_path / "cut.avi"
    fx.cut_short(cut, 0, frames=20, keep=19)  # one frame fewer than the header declares
    files = [
        cut,
        trees["ucf101"][0] / fx.ucf_name("YoYo", 3, 1),  # packed B-frames
        next(trees["kinetics400"][0].rglob("id00*.mp4")),
    ]
    for path in files:
        assert len(read_frames(path, lambda info: [info.frames - 1], "pyav")) == 1
        assert len(decode_all(path, "pyav")[0]) >= 12


def test_shortfall_counts_against_the_header_and_one_clip() -> None:
    assert shortfall(VideoInfo(11, 25.0, 12), needed=16) is None  # off by one: not damage
    assert shortfall(VideoInfo(3, 25.0, 0), needed=16) is None  # the header counts nothing
    assert shortfall(VideoInfo(7, 25.0, 12)) is None  # over half, enough for a frame
    assert shortfall(VideoInfo(7, 25.0, 12), needed=8) == (
        "decodes 7 of 12 frames its header declares (cut short?)"
    )


def test_torchcodec_that_cannot_load_warns_once_and_pyav_decodes(trees, monkeypatch, caplog):
    reason = "torchcodec cannot load FFmpeg 8 (libavutil.so.60 not found)"
    monkeypatch.setattr(video, "torchcodec_error", lambda: reason)
    video.torchcodec_problem.cache_clear()
    path = trees["ucf101"][0] / fx.ucf_name("YoYo", 4, 1)
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        frames = [read_frames(path, lambda info: [0, 5], "torchcodec") for _ in range(2)]
        whole, _ = decode_all(path, "torchcodec")
    video.torchcodec_problem.cache_clear()
    assert [record.getMessage() for record in caplog.records] == [
        f"dataset.decoder=torchcodec falls back to PyAV: {reason}"
    ]
    assert torch.equal(frames[0], whole[[0, 5]]) and torch.equal(frames[1], whole[[0, 5]])


@pytest.mark.skipif(torchcodec_loads(), reason="torchcodec loads here")
def test_torchcodec_error_names_the_library_it_misses() -> None:
    problem = video.torchcodec_error()
    assert problem == "torchcodec is not installed" or re.fullmatch(
        r"torchcodec cannot load FFmpeg \d+ \(lib\S+\.so\.\d+ not found\)", problem
    ), problem


PYAV_FFMPEG_CHECK = """
import sys
from pathlib import Path
from skr_cli.data import video
assert video.torchcodec_problem() is None, video.torchcodec_problem()
for name in sys.argv[1:]:
    ours, _ = video._torchcodec_all(Path(name))
    clip = video._torchcodec_frames(Path(name), lambda info: [11, 0, 6])
    pyav, _ = video._pyav_all(Path(name))
    assert ours.shape == pyav.shape, (ours.shape, pyav.shape)
    assert (ours.int() - pyav.int()).abs().max() <= 2, name
    assert (clip.int() - pyav[[11, 0, 6]].int()).abs().max() <= 2, name
print("ok")
"""


def test_torchcodec_on_pyavs_ffmpeg_decodes_as_pyav_does(trees) -> None:
    pytest.importorskip("torchcodec")
    folder = video.pyav_ffmpeg_folder()
    if folder is None:
        pytest.skip("PyAV bundles no FFmpeg")
    files = [
        trees["ucf101"][0] / fx.ucf_name("YoYo", 4, 1),  # MPEG-4 AVI
        next(trees["kinetics400"][0].rglob("id00*.mp4")),  # H.264 with B-frames and AAC audio
    ]
    env = os.environ | {"LD_LIBRARY_PATH": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", PYAV_FFMPEG_CHECK, *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_frame_indices_resample_and_loop() -> None:
    info = VideoInfo(frames=100, fps=30.0)
    assert frame_indices(info, frames=4, fps=15, starts=[0.0], draw=0) == [0, 2, 4, 6]
    assert frame_indices(info, frames=3, fps=None, starts=[0.0, 1.0], draw=0) == [
        *[0, 1, 2],
        *[97, 98, 99],
    ]
    assert frame_indices(VideoInfo(3, 25.0), frames=5, fps=None, starts=None, draw=0.9) == [
        *[0, 1, 2, 0, 1]
    ]
    last = frame_indices(info, frames=4, fps=None, starts=None, draw=0.999)
    assert last == [96, 97, 98, 99]


# ------------------------------------------------------------------------------ the datasets


def kinetics_clips(trees, *, train: bool, cache: bool = False) -> VideoClips:
    root, notes = trees["kinetics400"]
    samples, _ = kinetics_samples(root, notes, "train")
    transform = (
        train_transform(32, [1.0, 1.25], True, HALF, HALF)
        if train
        else eval_transform(32, HALF, HALF)
    )
    return VideoClips(
        samples,
        frames=4,
        fps=12.5,
        eval_clips=None if train else 2,
        transform=transform,
        decoder="pyav",
        cache_decoded=cache,
    )


@pytest.mark.parametrize("cache", [False, True])
def test_a_damaged_video_is_skipped_as_damaged(trees, cache: bool) -> None:
    damaged = trees["ucf101"][0] / fx.ucf_name("YoYo", 5, 3)
    dataset = VideoClips(
        [(damaged, 0)],
        frames=4,
        fps=None,
        eval_clips=None,
        transform=train_transform(32, [1.0, 1.25], True, HALF, HALF),
        decoder="pyav",
        cache_decoded=cache,
    )
    clips, _, failed = collate_clips([dataset[0]])
    assert len(clips) == 0 and failed == [str(damaged)] and isinstance(failed[0], DamagedPath)


def test_eval_clips_are_the_same_with_and_without_the_cache(trees) -> None:
    plain, cached = (
        kinetics_clips(trees, train=False),
        kinetics_clips(trees, train=False, cache=True),
    )
    for index in (0, 4):
        first, label = plain[index]
        assert first.shape == (2, 3, 4, 32, 32)
        assert torch.equal(first, cached[index][0]) and label == cached[index][1]


def batches(dataset: VideoClips, workers: int) -> list:
    loader = DataLoader(
        dataset,
        batch_size=3,
        sampler=SeededSampler(len(dataset), torch.Generator().manual_seed(7)),
        collate_fn=collate_clips,
        num_workers=workers,
    )
    return list(loader)


def test_training_batches_do_not_depend_on_num_workers(trees) -> None:
    dataset = kinetics_clips(trees, train=True)
    alone, pooled = batches(dataset, 0), batches(dataset, 2)
    assert len(alone) == len(pooled) == 3
    for (clips_a, labels_a, failed_a), (clips_b, labels_b, failed_b) in zip(
        alone, pooled, strict=True
    ):
        assert torch.equal(clips_a, clips_b) and torch.equal(labels_a, labels_b)
        assert failed_a == failed_b
    assert sum(len(failed) for *_, failed in alone) == 1  # the truncated download


def test_sources_build_train_and_test_clips(trees) -> None:
    common = dict(
        frames=4,
        fps=None,
        size=32,
        scale=[1.0, 1.2],
        flip=True,
        mean=HALF,
        std=HALF,
        eval_clips=2,
        decoder="pyav",
        cache_decoded=False,
        num_workers=0,
        max_skip_fraction=0.5,
        num_classes=3,
    )
    sources = [
        Ucf101Source(
            root=str(trees["ucf101"][0]), splits=str(trees["ucf101"][1]), fold=1, **common
        ),
        Hmdb51Source(
            root=str(trees["hmdb51"][0]), splits=str(trees["hmdb51"][1]), fold=1, **common
        ),
        KineticsSource(
            root=str(trees["kinetics400"][0]), splits=str(trees["kinetics400"][1]), **common
        ),
    ]
    for source in sources:
        source.prepare()
        clip, label = source.clips("train", train=True)[1]
        assert clip.shape == (3, 4, 32, 32) and 0 <= label < 3
        clips, _ = source.clips("test", train=False)[0]
        assert clips.shape == (2, 3, 4, 32, 32)


# ------------------------------------------------------------------------------ end to end

SMOKE = ("debug=smoke", "logger.mode=disabled", "dataset.num_classes=3")


def tree_overrides(trees, name: str) -> list[str]:
    root, splits = trees[name]
    return [f"dataset={name}", f"dataset.root={root}", f"dataset.splits={splits}"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "skipped"),
    [
        ("ucf101", {"v_YoYo_g05_c01.avi", "v_YoYo_g05_c02.avi", "v_YoYo_g05_c03.avi"}),
        ("hmdb51", {fx.hmdb_name("clap", 0)}),
        ("kinetics400", {"id21-_Ab_000010_000020.mp4"}),
    ],
)
def test_each_dataset_runs_end_to_end(skr_run, tmp_path, trees, name, skipped) -> None:
    result = skr_run(*SMOKE, *tree_overrides(trees, name), "dataset.max_skip_fraction=0.4")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == name
    damaged = {"v_YoYo_g05_c03.avi"} & skipped  # cut short: 2 of its 48 frames decode
    assert metrics["data"] == {
        "skipped": len(skipped),
        "skipped_files": sorted(skipped),
        "damaged": len(damaged),
        "damaged_files": sorted(damaged),
        "train_videos": metrics["data"]["train_videos"],
        "test_videos": metrics["data"]["test_videos"],
    }
    assert metrics["data"]["train_videos"] > 0 and metrics["data"]["test_videos"] > 0
    for file in damaged:  # the log line names the file and what is wrong with it
        assert f"{file}: decodes 2 of 48 frames its header declares" in result.stdout
    assert 0 <= metrics["final"]["video_top1"] <= 100 and "video_top5" in metrics["final"]
    assert "skipped" in result.stdout


@pytest.mark.slow
def test_decoder_torchcodec_runs_without_falling_back(skr_run, tmp_path, trees) -> None:
    if video.pyav_ffmpeg_folder() is None and not torchcodec_loads():
        pytest.skip("no FFmpeg libraries torchcodec can load")
    overrides = ("dataset.decoder=torchcodec", "dataset.max_skip_fraction=0.4")
    result = skr_run(*SMOKE, *tree_overrides(trees, "ucf101"), *overrides)
    assert result.returncode == 0, result.stderr
    assert "falls back to PyAV" not in result.stdout + result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["damaged_files"] == ["v_YoYo_g05_c03.avi"]


@pytest.mark.slow
def test_a_bad_root_stops_with_one_line(skr_run, tmp_path) -> None:
    result = skr_run(*SMOKE, "dataset=hmdb51", f"dataset.root={tmp_path}/nope", "dataset.splits=x")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    expected = f"dataset.root={tmp_path}/nope is not allowed: a folder that exists"
    assert line == f"skr-run: error: {expected}"


def test_too_many_bad_files_stop_the_run_naming_them(trees, make_cfg, tmp_path) -> None:
    from hydra.utils import instantiate

    from skr_cli.pipeline import RunContext, UserError

    root, splits = trees["ucf101"]
    overrides = [
        "debug=smoke",
        "dataset=ucf101",
        f"dataset.root={root}",
        f"dataset.splits={splits}",
    ]
    cfg = make_cfg(*overrides, "dataset.num_classes=3", "dataset.max_skip_fraction=0.2")
    source = instantiate(cfg.dataset)
    source.prepare()
    train, test = source.clips("train", train=True), source.clips("test", train=False)
    ctx = RunContext(cfg, tmp_path, train, test, torch.zeros(1), torch.device("cpu"))
    corrupt, empty = (str(root / fx.ucf_name("YoYo", 5, clip)) for clip in (1, 2))
    ctx.note_skipped([corrupt])  # 1 of 8 train videos: within 20 %
    with pytest.raises(UserError, match=r"2 of 9 train videos cannot be decoded, more than "):
        ctx.note_skipped([empty, corrupt])
    assert ctx.skipped == {corrupt, empty}


def test_held_out_takes_whole_groups_with_a_fixed_draw() -> None:
    paths = [
        Path(f"UCF-101/{c}/v_{c}_g{g:02d}_c{k:02d}.avi")
        for c in ("Jump", "Run")
        for g in range(1, 6)
        for k in range(1, 3)
    ]
    held = held_out(paths, 0.4)
    groups = {path.stem.split("_")[-2] for path in held}
    assert len(groups) == 2  # 40 % of 5 scenes
    assert held == {path for path in paths if path.stem.split("_")[-2] in groups}  # whole scenes
    assert held_out(paths, 0.4) == held  # the same draw every time
    assert held_out(paths, 0.0) == set()
    assert len({p.stem.split("_")[-2] for p in held_out(paths, 0.99)}) == 4  # one scene stays
    loose = [Path(f"videos/clip{k}.mp4") for k in range(10)]
    assert len(held_out(loose, 0.3)) == 3  # no scenes in the names: single videos


def test_the_val_split_is_carved_from_training(make_cfg, tmp_path: Path) -> None:
    from skr_cli.pipeline.runcontext import build_context

    cfg = make_cfg("debug=smoke", "dataset.val_fraction=0.34", "eval.split=val")
    ctx = build_context(cfg, tmp_path)
    official = build_context(make_cfg("debug=smoke"), tmp_path)
    val, train = set(ctx.test_set.paths), set(ctx.train_set.paths)
    assert val and not val & train
    assert val | train == set(official.train_set.paths)  # the test split is never touched
    assert not val & set(official.test_set.paths)


@pytest.mark.slow
def test_a_run_evaluates_on_the_val_split(skr_run, tmp_path: Path) -> None:
    smoke = ("debug=smoke", "logger.mode=disabled")
    result = skr_run(*smoke, "dataset.val_fraction=0.34", "eval.split=val")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["eval_split"] == "val"
    refused = skr_run(*smoke, "eval.split=val", out="refused")
    expected = "eval.split=val is not allowed: test, or val with dataset.val_fraction > 0"
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [f"skr-run: error: {expected}"]
