"""Tiny data sets in the official layouts of UCF101, HMDB51 and Kinetics, with the kinds of files
real downloads hold: MPEG-4 AVI (with and without B-frames), H.264 MP4 with an AAC audio stream,
non-UTF-8 metadata, and broken files (corrupt, zero-byte, truncated, cut short but still
opening, not a video)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

FRAMES = 12
HEIGHT, WIDTH = 36, 48  # not square: the short side is scaled


def ramp_video(seed: int, frames: int = FRAMES) -> np.ndarray:
    """(T, H, W, 3) uint8: frame t has green level 12 t, so decoded order is checkable; a bar
    whose position depends on ``seed`` moves right."""
    video = np.full((frames, HEIGHT, WIDTH, 3), 60, dtype=np.uint8)
    video[..., 1] = (np.arange(frames) * 12 + 40)[:, None, None].astype(np.uint8)
    for t in range(frames):
        left = (seed * 7 + 3 * t) % (WIDTH - 6)
        video[t, :, left : left + 6, 0] = 230
    return video


def write(
    path: Path,
    video: np.ndarray,
    *,
    codec: str,
    b_frames: int = 0,
    audio: bool = False,
    faststart: bool = False,
):
    """Encodes ``video`` at 25 fps; ``b_frames`` > 0 stores frames out of presentation order;
    ``faststart`` puts an MP4's index before the frames (as web downloads have it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        container.metadata["title"] = "XXXXXXXX"  # a slot for non-UTF-8 bytes, see below
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.max_b_frames = b_frames
        stream.options = {"qmax": "3"} if codec == "mpeg4" else {"crf": "18"}
        sound = container.add_stream("aac", rate=16000) if audio else None
        for image in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
        if sound is not None:
            samples = np.sin(np.linspace(0, 200, 16000 * len(video) // 25, dtype=np.float32))
            frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
            frame.sample_rate = 16000
            container.mux(sound.encode(frame))
            container.mux(sound.encode())


def avi(path: Path, seed: int, b_frames: int = 0) -> None:
    write(path, ramp_video(seed), codec="mpeg4", b_frames=b_frames)


def mp4(path: Path, seed: int) -> None:
    write(path, ramp_video(seed), codec="libx264", b_frames=2, audio=True)


def latin1_metadata_avi(path: Path, seed: int) -> None:
    """An AVI whose title is not valid UTF-8 (plain ``av.open`` raises UnicodeDecodeError)."""
    avi(path, seed)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"XXXXXXXX", b"Caf\xe9 \xff\xfe!"))


def corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x10\x00\x00\x00AVI LIST" + bytes(range(256)) * 4)


def zero_bytes(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def not_a_video(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html>404 Not Found</html>\n")


def truncated(path: Path, seed: int) -> None:
    """An MP4 cut after its first tenth: the index (moov atom, written last) is gone."""
    mp4(path, seed)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 10])


def cut_short(path: Path, seed: int, *, frames: int = 100, keep: int = 3) -> None:
    """A ``frames``-long video (AVI: MPEG-4; MP4: H.264 with its index first) cut in transfer
    right before the packet of frame ``keep``: the header still declares ``frames`` frames, the
    first ``keep`` decode."""
    codec = "mpeg4" if path.suffix == ".avi" else "libx264"
    write(path, ramp_video(seed, frames), codec=codec, faststart=path.suffix == ".mp4")
    with av.open(str(path)) as container:
        starts = [packet.pos for packet in container.demux(video=0) if packet.size]
    path.write_bytes(path.read_bytes()[: starts[keep]])


# ------------------------------------------------------------------------------------- UCF101

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


def ucf_name(name: str, group: int, clip: int) -> str:
    # The archive spells this class's files differently from its folder.
    stem = "HandStandPushups" if name == "HandstandPushups" else name
    return f"{name}/v_{stem}_g{group:02d}_c{clip:02d}.avi"


def make_ucf101(base: Path) -> tuple[Path, Path]:
    """``UCF-101/`` and ``ucfTrainTestlist/``: 3 classes, groups 1-2 test, 3-4 train (one clip
    each), plus a corrupt, a zero-byte and a cut-short train file (2 of its 48 frames decode).
    CRLF line endings, as the official lists."""
    root, lists = base / "UCF-101", base / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    train, test = [], []
    for label, name in enumerate(UCF_CLASSES):
        for group in (1, 2, 3, 4):
            relative = ucf_name(name, group, 1)
            seed = 10 * label + group
            if (label, group) == (0, 1):
                latin1_metadata_avi(root / relative, seed)
            else:
                avi(root / relative, seed, b_frames=2 if group % 2 else 0)
            (test if group <= 2 else train).append(relative)
    corrupt(root / ucf_name("YoYo", 5, 1))
    zero_bytes(root / ucf_name("YoYo", 5, 2))
    cut_short(root / ucf_name("YoYo", 5, 3), 25, frames=48, keep=2)
    train += [ucf_name("YoYo", 5, clip) for clip in (1, 2, 3)]
    label_of = {name: i + 1 for i, name in enumerate(UCF_CLASSES)}
    lines = [f"{path} {label_of[path.split('/')[0]]}" for path in train]
    (lists / "classInd.txt").write_bytes(
        "".join(f"{i + 1} {n}\r\n" for i, n in enumerate(UCF_CLASSES)).encode()
    )
    (lists / "trainlist01.txt").write_bytes("".join(f"{x}\r\n" for x in lines).encode())
    (lists / "testlist01.txt").write_bytes("".join(f"{x}\r\n" for x in test).encode())
    return root, lists


# ------------------------------------------------------------------------------------- HMDB51

HMDB_CLASSES = ["brush_hair", "cartwheel", "clap"]


def hmdb_name(name: str, index: int) -> str:
    return f"Glaring_contest!!!_({index})_{name}_f_nm_np1_ba_goo_{index}.avi"


def make_hmdb51(base: Path) -> tuple[Path, Path]:
    """``hmdb51/<class>/*.avi`` (B-frames) and ``testTrainMulti_7030_splits/``: per class 3
    train (tag 1), 1 test (tag 2), 1 unused (tag 0); blank lines and trailing spaces in the
    lists (fold 2 tags other videos for test); one file is not a video at all."""
    root, splits = base / "hmdb51", base / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for label, name in enumerate(HMDB_CLASSES):
        lines, second = [], []
        for index, tag in enumerate((1, 1, 1, 2, 0)):
            path = root / name / hmdb_name(name, index)
            if (label, index) == (2, 0):
                not_a_video(path)
            else:
                avi(path, 10 * label + index, b_frames=2)
            lines.append(f"{path.name} {tag} ")
            second.append(f"{path.name} {(2, 1, 1, 1, 0)[index]}")
        (splits / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n\n")
        (splits / f"{name}_test_split2.txt").write_text("\n".join(second) + "\n")
    return root, splits


# ----------------------------------------------------------------------------------- Kinetics

KINETICS_CLASSES = ["air drumming", "juggling balls", "yoga"]


def make_kinetics(base: Path) -> tuple[Path, Path]:
    """``kinetics400/{train,val}/<label>/<id>_<start>_<end>.mp4`` (H.264 + AAC) and
    ``annotations/{train,validate}.csv``: per label 3 train clips and 1 validation clip, one
    file named by its bare id, one truncated download."""
    root, notes = base / "kinetics400", base / "annotations"
    notes.mkdir(parents=True)
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    rows = {"train": [header], "val": [header]}
    for label, name in enumerate(KINETICS_CLASSES):
        for index, split in enumerate(("train", "train", "train", "val")):
            youtube_id = f"id{label}{index}-_Ab"
            start = 10 * index
            folder = root / split / name
            stem = (
                youtube_id
                if (label, index) == (1, 0)
                else f"{youtube_id}_{start:06d}_{start + 10:06d}"
            )
            if (label, index) == (2, 1):
                truncated(folder / f"{stem}.mp4", 10 * label + index)
            else:
                mp4(folder / f"{stem}.mp4", 10 * label + index)
            split_name = "train" if split == "train" else "validate"
            rows[split].append(f'"{name}",{youtube_id},{start},{start + 10},{split_name},0\n')
    (notes / "train.csv").write_text("".join(rows["train"]))
    (notes / "validate.csv").write_text("".join(rows["val"]))
    return root, notes
