"""Two videos, one RGB and one thermal, read in sync as a frame source.

FLIR ADAS v2 ships its test sequences as ``video_rgb_test`` / ``video_thermal_test``, and a user's
own rig records two streams. :class:`VideoPairSource` pairs their frames by time and serves them as
:class:`~rgbt.data.sample.PairSample` items, so every command that runs over a frame source
(detection, translation) runs over a pair of videos.

Pairing rule: the thermal video is the reference. Thermal frame ``i`` is at time ``t = i / fps_T``
seconds; it is paired with the RGB frame nearest to ``t + offset``, i.e. ``j = round((t + offset) *
fps_RGB)`` (``offset`` > 0 when the RGB recording started earlier, so the same scene appears later
in it). Thermal frames whose RGB partner falls outside the RGB video are left out; frame ids are
``frame_IIIIII`` (the thermal frame number), and ``meta`` records both frame numbers and the time.
Streams that cannot be paired (a file that does not open, no frames, an unknown frame rate, or no
overlap at the given offset) raise :class:`~rgbt.data.errors.DataFormatError` naming the files.

Without an RGB video (``rgb_video=None``, what ``rgbt translate`` reads) every thermal frame is an
item, with ``rgb=None`` and no ``rgb_frame``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rgbt.data.errors import DataFormatError
from rgbt.data.sample import PairSample

#: Suffixes OpenCV's FFmpeg backend reads (others may work too; they are not refused).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


def video_info(path: str | os.PathLike[str]) -> tuple[int, float, int, int]:
    """``(frames, fps, width, height)`` of a video file.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: OpenCV cannot open it, it has no frames, or no (finite, positive) frame rate.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataFormatError(path, None, "not a video OpenCV can read")
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if frames <= 0:
        raise DataFormatError(path, None, "the video has no frames")
    if not math.isfinite(fps) or fps <= 0:
        raise DataFormatError(path, None, f"the video has no frame rate ({fps}); cannot pair it by time")
    return frames, fps, width, height


class _Reader:
    """Sequential-friendly random access to one video: reads on when asked for the next frame,
    seeks otherwise. Opened lazily, once per process (a capture cannot be pickled into workers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._capture: cv2.VideoCapture | None = None
        self._pid: int | None = None
        self._next = 0

    def __getstate__(self) -> dict:
        return {"path": self.path, "_capture": None, "_pid": None, "_next": 0}

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as decoded (BGR or grey uint8)."""
        if self._capture is None or self._pid != os.getpid():
            self._capture, self._pid, self._next = cv2.VideoCapture(str(self.path)), os.getpid(), 0
        if index != self._next:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise DataFormatError(self.path, None, f"frame {index} could not be decoded")
        self._next = index + 1
        return frame


class VideoPairSource:
    """An RGB and a thermal video as a :class:`~rgbt.data.source.FrameSource` (see the module docstring).

    Args:
        rgb_video: the RGB video file; ``None``: the thermal video alone (every frame, no RGB).
        thermal_video: the thermal video file (the reference modality and clock).
        offset: seconds added to a thermal frame's time to find its RGB frame.

    Attributes:
        pairs: ``(thermal frame, RGB frame or None)`` per item.
        rgb_fps, rgb_size: the RGB stream's frame rate and ``(width, height)`` (``None`` without one);
        thermal_fps, thermal_size: the thermal stream's.

    Raises:
        FileNotFoundError, DataFormatError: see :func:`video_info`; also when no thermal frame has
            an RGB partner at this offset.
    """

    name = "video"

    def __init__(self, rgb_video: str | os.PathLike[str] | None, thermal_video: str | os.PathLike[str],
                 offset: float = 0.0) -> None:
        if not math.isfinite(offset):
            raise ValueError(f"the video offset must be a finite number of seconds, got {offset}")
        self.rgb_video = None if rgb_video is None else Path(rgb_video)
        self.thermal_video = Path(thermal_video)
        self.root = self.thermal_video.parent
        self.offset = float(offset)
        thermal_frames, self.thermal_fps, *self.thermal_size = video_info(self.thermal_video)
        pairs: list[tuple[int, int | None]] = []
        if self.rgb_video is None:
            self.rgb_fps, self.rgb_size = None, None
            pairs = [(i, None) for i in range(thermal_frames)]
        else:
            rgb_frames, self.rgb_fps, *self.rgb_size = video_info(self.rgb_video)
            for i in range(thermal_frames):
                j = int(round((i / self.thermal_fps + self.offset) * self.rgb_fps))
                if 0 <= j < rgb_frames:
                    pairs.append((i, j))
            if not pairs:
                raise DataFormatError(
                    self.thermal_video, None,
                    f"{thermal_frames} frames at {self.thermal_fps:g} fps and {self.rgb_video} ({rgb_frames} frames "
                    f"at {self.rgb_fps:g} fps) do not overlap at an offset of {self.offset:g} s: no frame pairs",
                )
        self.pairs = pairs
        self.frame_ids = [f"frame_{i:06d}" for i, _ in pairs]
        self._rgb = None if self.rgb_video is None else _Reader(self.rgb_video)
        self._thermal = _Reader(self.thermal_video)

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"VideoPairSource({self.rgb_video}, {self.thermal_video}, offset={self.offset:g} s, {len(self)} pairs)"

    def frame_record(self, index: int) -> dict[str, Any]:
        """``{"frame": id, "thermal_frame": i, "rgb_frame": j (with an RGB video), "time": s}`` of item
        ``index``: what the ``frames.json`` of the video commands lists per frame."""
        i, j = self.pairs[index]
        record: dict[str, Any] = {"frame": self.frame_ids[index], "thermal_frame": i}
        if j is not None:
            record["rgb_frame"] = j
        record["time"] = round(i / self.thermal_fps, 6)
        return record

    def streams_record(self) -> dict[str, Any]:
        """The pairing as the ``frames.json`` of the video commands records it: both files, their frame
        rates and the offset (``rgb_video`` and ``rgb_fps`` are ``None`` without an RGB video)."""
        return {"rgb_video": None if self.rgb_video is None else str(self.rgb_video),
                "thermal_video": str(self.thermal_video), "rgb_fps": self.rgb_fps, "thermal_fps": self.thermal_fps,
                "offset": self.offset}

    def _meta(self, index: int) -> dict:
        record = self.frame_record(index)
        return {"dataset": self.name, "frame_id": record.pop("frame"), **record, "period": "unknown",
                "paths": {"rgb": None if self.rgb_video is None else str(self.rgb_video),
                          "thermal": str(self.thermal_video)}}

    def annotations(self, index: int) -> PairSample:
        """Frame ``index`` without images (videos carry no annotations)."""
        return PairSample(rgb=None, thermal=None, meta=self._meta(index))

    def __getitem__(self, index: int) -> PairSample:
        i, j = self.pairs[index]
        rgb = None if self._rgb is None or j is None else cv2.cvtColor(self._rgb.read(j), cv2.COLOR_BGR2RGB)
        thermal = self._thermal.read(i)
        if thermal.ndim == 3:
            # Thermal video is written as three equal channels; the library's thermal image is one channel.
            thermal = cv2.cvtColor(thermal, cv2.COLOR_BGR2GRAY)
        return PairSample(rgb=rgb, thermal=thermal, meta=self._meta(index))

    def image_paths(self, index: int) -> dict[str, Path | None]:
        return {"rgb": self.rgb_video, "thermal": self.thermal_video, "fake_rgb": None, "aligned_rgb": None}

    def period(self, index: int) -> str:
        return "unknown"

    def frame_candidates(self, frame: str) -> list[str]:
        return [frame.strip()]
