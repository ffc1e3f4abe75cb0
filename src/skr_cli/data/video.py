"""Reading encoded video files through PyAV (default) or torchcodec, and writing them.

Reading a clip decodes only the frames it needs: the file's frame timestamps come from the
demuxer's index (streams without B-frames) or its packets (no decoding), the decoder seeks to the
keyframe before the first wanted frame and stops at the last one (a couple of frames later where
B-frames may come out of order), and only the frames kept are converted to RGB, on the calling
thread. Both readers tolerate what real files carry: metadata that is not valid UTF-8 and packed
B-frames (frames come out of presentation order and start at pts 1; the header counts one frame
that never decodes). A file cut short in transfer often still opens and decodes a few frames: it
is reported as damaged (:class:`DamagedVideoError`) when it holds under half of the frames its
header declares, or fewer than one clip needs.

torchcodec loads FFmpeg's shared libraries (4 to 9) by their plain sonames; where it finds none,
:func:`pyav_ffmpeg_folder` offers the ones PyAV's wheel bundles, and where it still cannot load,
``decoder="torchcodec"`` reads with PyAV after one warning (:func:`torchcodec_problem`).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

REORDER_SLACK = 2  # frames decoded past the last wanted one, to catch out-of-order B-frames
HEADER_SLACK = 1  # frames a header may count that never decode (packed B-frames, off-by-one muxers)

log = logging.getLogger(__name__)


class VideoDecodeError(RuntimeError):
    """A file that cannot be decoded into at least one frame."""


class DamagedVideoError(VideoDecodeError):
    """A file that decodes markedly fewer frames than its header declares (cut short)."""


@dataclass(frozen=True)
class VideoInfo:
    """What clip sampling needs to know about a file: its frame count and native frame rate.

    ``declared`` is the frame count the container's header states (0 where it states none).
    """

    frames: int
    fps: float
    declared: int = 0


def shortfall(info: VideoInfo, needed: float = 1.0) -> str | None:
    """Why a file looks cut short, or None: it holds more than ``HEADER_SLACK`` frames fewer
    than its header declares, and under half of them or fewer than ``needed`` (one clip's span).
    """
    if info.declared - info.frames <= HEADER_SLACK:
        return None
    if 2 * info.frames < info.declared or info.frames < needed:
        return f"decodes {info.frames} of {info.declared} frames its header declares (cut short?)"
    return None


def check_whole(path: str | Path, info: VideoInfo, needed: float = 1.0) -> None:
    """Raises :class:`DamagedVideoError` naming ``path`` where :func:`shortfall` finds one."""
    if (reason := shortfall(info, needed)) is not None:
        raise DamagedVideoError(f"{path}: {reason}")


# Picks the frame indices a clip needs, given the file's VideoInfo (duplicates allowed).
FrameChooser = Callable[[VideoInfo], Sequence[int]]


def read_frames(path: str | Path, choose: FrameChooser, decoder: str) -> torch.Tensor:
    """Decodes the frames ``choose(info)`` asks for, in the order asked, and no others.

    Args:
        path: the video file.
        choose: maps the file's :class:`VideoInfo` to frame indices in ``[0, info.frames)``.
        decoder: ``"pyav"`` or ``"torchcodec"``.

    Returns:
        uint8 tensor (len(indices), H, W, 3), RGB.

    Raises:
        VideoDecodeError: the file is missing, empty, corrupt or holds no video.
        DamagedVideoError: it holds under half of the frames its header declares.
    """
    if decoder == "torchcodec" and torchcodec_problem() is None:
        try:
            return _torchcodec_frames(Path(path), choose)
        except (RuntimeError, ValueError, IndexError, OSError):
            pass  # torchcodec trips on some AVIs PyAV reads: PyAV has the last word
    try:
        return _pyav_frames(Path(path), choose)
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, RuntimeError, ValueError, IndexError, OSError) as err:
        raise VideoDecodeError(f"{path}: {err}") from err


def decode_video(path: str | Path, decoder: str = "pyav") -> torch.Tensor:
    """Decodes every frame of a file.

    Returns:
        uint8 tensor (T, H, W, 3) in presentation order.
    """
    return decode_all(path, decoder)[0]


def decode_all(path: str | Path, decoder: str) -> tuple[torch.Tensor, VideoInfo]:
    """Decodes every frame of a file (what the decoded-clip cache keeps).

    Returns:
        uint8 tensor (T, H, W, 3) in presentation order, and its :class:`VideoInfo` (T frames).

    Raises:
        VideoDecodeError: as :func:`read_frames`, and DamagedVideoError likewise.
    """
    if decoder == "torchcodec" and torchcodec_problem() is None:
        try:
            return _torchcodec_all(Path(path))
        except (RuntimeError, ValueError, IndexError, OSError):
            pass  # as in read_frames: PyAV has the last word
    try:
        return _pyav_all(Path(path))
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, RuntimeError, ValueError, IndexError, OSError) as err:
        raise VideoDecodeError(f"{path}: {err}") from err


# ------------------------------------------------------------------------------------- PyAV


def _open(path: Path) -> av.container.InputContainer:
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file")
    return av.open(str(path), metadata_errors="ignore")


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB (H, W, 3) uint8, converted by swscale on the calling thread.

    swscale's default (``threads=0``) starts a pool of threads for every frame: on a 320x240
    frame that costs several times the conversion itself, in CPU time.
    """
    return frame.to_ndarray(format="rgb24", threads=1)


def _image(item: av.VideoFrame | np.ndarray) -> np.ndarray:
    """An RGB array (H, W, 3) from what :func:`_decode_span` returns."""
    return item if isinstance(item, np.ndarray) else _rgb(item)


def _stream_fps(stream: av.video.stream.VideoStream, stamps: list[int]) -> float:
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        return float(rate)
    if len(stamps) > 1 and stream.time_base:  # no rate in the header: from the timestamps
        return (len(stamps) - 1) / float((stamps[-1] - stamps[0]) * stream.time_base)
    return 25.0  # a single frame: any rate samples it the same way


def _frame_stamps(container: av.container.InputContainer, stream, size: int) -> list[int]:
    """Presentation timestamps of the video frames, sorted: frame i is shown at stamps[i].

    A stream free of B-frames shows its frames in decode order, so the index the demuxer read
    when opening the file (AVI ``idx1``, MP4 ``stts``) lists them at no cost. Otherwise, or where
    the index is missing, partial (it must count the header's frames), shifted (it must start
    at the stream's start time) or points past the file's ``size`` bytes (a file cut short
    whose index comes first), the packets are read instead.
    """
    if not stream.codec_context.has_b_frames:
        entries = [entry for entry in stream.index_entries if entry.size]
        inside = [entry.timestamp for entry in entries if entry.pos + entry.size <= size]
        stamps = inside if len(inside) == len(entries) else []
        if stamps and len(stamps) == stream.frames and stamps[0] == (stream.start_time or 0):
            return sorted(stamps)
    return _packet_stamps(container, stream)


def _packet_stamps(container: av.container.InputContainer, stream) -> list[int]:
    """Presentation timestamps of the video packets, sorted: frame i is shown at stamps[i]."""
    stamps = []
    for packet in container.demux(stream):
        stamp = packet.pts if packet.pts is not None else packet.dts
        if packet.size and stamp is not None:
            stamps.append(stamp)
    return sorted(stamps)


def _reorder_slack(stream: av.video.stream.VideoStream) -> int:
    """Frames to decode around a clip so that reordered B-frames are not lost: none for streams
    that the decoder reports free of B-frames (frames then come out in presentation order)."""
    return REORDER_SLACK if stream.codec_context.has_b_frames else 0


def _decode_span(
    container, stream, first: int | None, last: int, slack: int, wanted: set[int]
) -> list[tuple[int, av.VideoFrame | np.ndarray]]:
    """Frames from the keyframe before timestamp ``first`` (None: the file's start) up to
    ``last`` and ``slack`` frames past it, sorted by pts.

    Frames whose pts is in ``wanted`` come back as RGB arrays (H, W, 3), converted as soon as
    they are decoded (while still in the CPU cache); the others as decoded frames.
    """
    if first is None:
        container.seek(0)
    else:
        container.seek(first, stream=stream, backward=True, any_frame=False)
    frames, past = [], 0
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            frames.append((frame.pts, _rgb(frame) if frame.pts in wanted else frame))
            past += frame.pts > last
            if frame.pts >= last and past >= slack:
                break
    except av.error.FFmpegError:
        if not frames:  # a truncated file: keep what decoded before the damage
            raise
    return sorted(frames, key=lambda item: item[0])


def _nearest(pts: list[int], stamp: int) -> int:
    """Index in sorted ``pts`` of the value nearest ``stamp``."""
    right = bisect.bisect_left(pts, stamp)
    if right == 0:
        return 0
    if right == len(pts):
        return len(pts) - 1
    return right if pts[right] - stamp < stamp - pts[right - 1] else right - 1


def _pyav_frames(path: Path, choose: FrameChooser) -> torch.Tensor:
    with _open(path) as container:
        stream = container.streams.video[0]
        stamps = _frame_stamps(container, stream, path.stat().st_size)
        if not stamps:
            raise VideoDecodeError(f"{path}: no video packets")
        info = VideoInfo(len(stamps), _stream_fps(stream, stamps), stream.frames)
        check_whole(path, info)
        indices = list(choose(info))
        wanted = [stamps[i] for i in indices]
        slack = _reorder_slack(stream)
        # AVI seeks by decode time: aim a few frames early so reordered B-frames are not lost.
        target = stamps[max(min(indices) - slack, 0)]
        span = (max(wanted), slack, set(wanted))
        decoded = _decode_span(container, stream, target, *span)
        if not decoded or decoded[0][0] > min(wanted):  # the seek overshot: read from the start
            decoded = _decode_span(container, stream, None, *span)
        if not decoded:
            raise VideoDecodeError(f"{path}: no decodable frame")
        pts = [stamp for stamp, _ in decoded]
        picks = [_nearest(pts, stamp) for stamp in wanted]
        images = {i: _image(decoded[i][1]) for i in set(picks)}
    return torch.from_numpy(np.stack([images[i] for i in picks]))


def _pyav_all(path: Path) -> tuple[torch.Tensor, VideoInfo]:
    with _open(path) as container:
        stream = container.streams.video[0]
        frames = []
        try:
            frames.extend((f.pts or 0, _rgb(f)) for f in container.decode(stream))
        except av.error.FFmpegError:
            if not frames:  # a truncated file: keep what decoded before the damage
                raise
        fps = _stream_fps(stream, [stamp for stamp, _ in frames])
        info = VideoInfo(len(frames), fps, stream.frames)
    if not frames:
        raise VideoDecodeError(f"{path}: no decodable frame")
    check_whole(path, info)
    frames.sort(key=lambda item: item[0])
    return torch.from_numpy(np.stack([image for _, image in frames])), info


# -------------------------------------------------------------------------------- torchcodec


def torchcodec_error() -> str | None:
    """Why torchcodec cannot load here, in a few words (the FFmpeg library it does not find),
    or None when it can; says nothing (see :func:`torchcodec_problem`)."""
    try:
        from torchcodec._core.ops import load_core_libraries
    except ImportError:
        return "torchcodec is not installed"
    try:
        load_core_libraries()
    except Exception as err:  # noqa: BLE001 - whatever stops it, PyAV reads instead
        return _missing_library(str(err))
    return None


def _missing_library(message: str) -> str:
    """The library torchcodec did not find for the FFmpeg version PyAV bundles (else for the
    first version it tried), from its error, which lists each version it tried."""
    missing = {}
    for block in message.split("FFmpeg version ")[1:]:
        found = re.search(r"(\S+): cannot open shared object file", block)
        if found and block.split(":")[0].isdigit():
            missing.setdefault(int(block.split(":")[0]), found.group(1))
    ours = re.match(r"\D*(\d+)", av.ffmpeg_version_info or "")
    version = int(ours.group(1)) if ours else 0
    if version not in missing:
        version = next(iter(missing), 0)
    if version:
        return f"torchcodec cannot load FFmpeg {version} ({missing[version]} not found)"
    return message.strip().splitlines()[0] if message.strip() else "torchcodec cannot load"


@functools.cache
def torchcodec_problem() -> str | None:
    """:func:`torchcodec_error`, found once per process; the first call that finds torchcodec
    cannot load logs one warning line saying so (reads then fall back to PyAV)."""
    problem = torchcodec_error()
    if problem is not None:
        log.warning("dataset.decoder=torchcodec falls back to PyAV: %s", problem)
    return problem


def pyav_ffmpeg_folder() -> Path | None:
    """A folder of links to the FFmpeg libraries that PyAV's wheel bundles, under their bundled
    (hashed) names, which they load each other by, and under their plain sonames, which
    torchcodec loads; None where PyAV bundles none (built against a system FFmpeg).

    Put on ``LD_LIBRARY_PATH`` when a process starts (the dynamic loader reads it only then),
    it lets torchcodec load the same FFmpeg as PyAV. Made once per PyAV install, atomically.
    """
    bundled = Path(av.__file__).resolve().parent.parent / "av.libs"
    libraries = sorted(bundled.glob("*.so*")) if bundled.is_dir() else []
    if not any(library.name.startswith("libavcodec") for library in libraries):
        return None
    names = "\n".join([str(bundled), *(library.name for library in libraries)])
    folder = (
        Path(tempfile.gettempdir())
        / f"skr-pyav-ffmpeg-{hashlib.sha256(names.encode()).hexdigest()[:12]}"
    )
    if folder.is_dir():
        return folder
    staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
    for library in libraries:
        soname = re.sub(r"-[0-9a-f]{8}(\.so\.\d+).*$", r"\1", library.name)
        for name in {library.name, soname}:
            (staging / name).symlink_to(library)
    try:
        staging.rename(folder)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _torchcodec_decoder(path: Path):
    from torchcodec.decoders import VideoDecoder  # imported on use: loads FFmpeg libraries

    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file")
    return VideoDecoder(str(path), dimension_order="NHWC", seek_mode="exact")


def _frames_at(decoder, indices: list[int]) -> torch.Tensor:
    """``decoder``'s frames at ``indices`` (N, H, W, 3); a file whose header counts a frame that
    never decodes (packed B-frames) gets its last decodable frame instead."""
    unique = sorted(set(indices))
    try:
        batch = decoder.get_frames_at(unique).data
    except RuntimeError:
        last = decoder.metadata.num_frames - 2
        if last < 0 or unique[-1] <= last:
            raise
        return _frames_at(decoder, [min(i, last) for i in indices])
    if indices == unique:  # the usual case: no copy
        return batch
    position = {index: i for i, index in enumerate(unique)}
    return batch[[position[i] for i in indices]]


def _torchcodec_info(decoder) -> VideoInfo:
    """The file's frames as the exact scan counted them, and as its header declares."""
    meta = decoder.metadata
    fps = float(meta.average_fps or 25.0)
    return VideoInfo(meta.num_frames or 0, fps, meta.num_frames_from_header or 0)


def _torchcodec_frames(path: Path, choose: FrameChooser) -> torch.Tensor:
    decoder = _torchcodec_decoder(path)
    info = _torchcodec_info(decoder)
    if not info.frames:
        raise VideoDecodeError(f"{path}: no video frames")
    check_whole(path, info)
    return _frames_at(decoder, list(choose(info)))


def _torchcodec_all(path: Path) -> tuple[torch.Tensor, VideoInfo]:
    decoder = _torchcodec_decoder(path)
    count = decoder.metadata.num_frames or 0
    if count == 0:
        raise VideoDecodeError(f"{path}: no decodable frame")
    try:
        frames = decoder.get_frames_at(list(range(count))).data
    except RuntimeError:  # the header counts a frame that never decodes (packed B-frames)
        if count < 2:
            raise
        frames = decoder.get_frames_at(list(range(count - 1))).data
    info = _torchcodec_info(decoder)
    check_whole(path, info)
    return frames, VideoInfo(len(frames), info.fps, info.declared)


# ---------------------------------------------------------------------------------- writing


def write_video(path: str | Path, frames: np.ndarray, fps: int, codec: str) -> None:
    """Encodes RGB frames (T, H, W, 3) uint8 into a file (container from the suffix).

    ``mpeg4`` in ``.avi`` is what UCF101 and HMDB51 ship (XviD); ``libx264`` in ``.mp4`` is
    what Kinetics ships.
    """
    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # Near-transparent quality: tiny frames at default rates turn into macroblock mush.
        stream.options = {"qmax": "3"} if codec == "mpeg4" else {"crf": "18"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder
