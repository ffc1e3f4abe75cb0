"""Reading and writing encoded video files through PyAV (FFmpeg)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch


class VideoDecodeError(RuntimeError):
    """A file that cannot be decoded into at least one frame."""


def decode_video(path: str | Path) -> torch.Tensor:
    """Decodes every frame of a video file.

    Metadata that is not valid UTF-8 is ignored, and frames are put in presentation order (files
    with packed B-frames deliver them out of order).

    Returns:
        uint8 tensor (T, H, W, 3), RGB.
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            frames = [(f.pts or 0, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError, OSError) as err:  # IndexError: no video stream
        raise VideoDecodeError(f"{path}: {err}") from err
    if not frames:
        raise VideoDecodeError(f"{path}: no decodable frame")
    frames.sort(key=lambda item: item[0])
    return torch.from_numpy(np.stack([image for _, image in frames]))


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
