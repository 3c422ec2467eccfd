"""Writing an MP4 that appears under its name only when complete.

The video commands (``rgbt detect``, ``rgbt translate`` and ``rgbt align`` on videos) write their
frames one by one over a long run. :class:`VideoWriter` encodes them (OpenCV, ``mp4v``) into a
hidden temporary file next to the target, ``.<name>.<random>.mp4``, and renames it over the target
when the run finishes (``os.replace``: atomic on POSIX), so an interrupted or failed run leaves no
half-written video under the final name (and an earlier complete one stays as it was).

Frames are uint8 ``(H, W, 3)`` in RGB order or ``(H, W)`` grey; the first frame fixes the size,
and every later frame must have it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np


class VideoWriter:
    """An MP4 at ``fps`` frames per second, written to a temporary file and renamed when complete.

    Use it as a context manager: a clean exit keeps the video (when at least one frame was written),
    an exception discards it. Without ``with``, call :meth:`close` with ``keep``.

    Raises:
        OSError: OpenCV cannot write an ``mp4v`` video in the folder (named).
        ValueError: a frame that is not uint8 grey or RGB, or not the first frame's size.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path, self.fps = Path(path), float(fps)
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)

    def write(self, picture: np.ndarray) -> None:
        """Append one frame: ``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 grey."""
        if picture.dtype != np.uint8 or picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
            raise ValueError(f"{self.path}: frames must be uint8 (H, W) grey or (H, W, 3) RGB, got {picture.dtype} "
                             f"{picture.shape}")
        size = (int(picture.shape[1]), int(picture.shape[0]))
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write an mp4v video here")
            self._size = size
        elif size != self._size:
            raise ValueError(f"{self.path}: frame {self.frames} is {size[0]}x{size[1]}, the video "
                             f"{self._size[0]}x{self._size[1]}")
        code = cv2.COLOR_GRAY2BGR if picture.ndim == 2 else cv2.COLOR_RGB2BGR
        self._writer.write(cv2.cvtColor(picture, code))
        self.frames += 1

    def close(self, keep: bool) -> None:
        """Finish: with ``keep`` (and at least one frame) rename the video to its name, else delete it."""
        if self._writer is not None:
            self._writer.release()
        if keep and self._writer is not None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
        self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close(keep=kind is None)
