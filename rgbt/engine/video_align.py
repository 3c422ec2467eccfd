"""Registering a pair of videos (``rgbt align --rgb-video A --thermal-video B``).

The two streams are paired by time (:class:`~rgbt.data.video.VideoPairSource`: the thermal video
is the clock, ``offset`` in seconds), and every pair is registered with the same estimator, cache,
pooling and tables as a dataset root (:mod:`rgbt.engine.align`):

* ``OUT/alignment.json`` and ``OUT/alignment.csv`` in the format of :func:`~rgbt.engine.align.align_dataset`,
  one entry per pair in thermal-frame order, frame ids ``frame_IIIIII`` (the thermal frame number),
  ``sequence`` the thermal video's file name (``pool="sequence"`` pools the whole video), ``period``
  ``unknown``;
* ``OUT/registrations.json``: the estimates as they are made (an interrupted run resumes);
* with ``write_aligned``, ``OUT/aligned_rgb.mp4``: frame ``k`` is pair ``k``'s RGB frame warped into
  the thermal frame (thermal size, zero where the RGB camera saw nothing; an all-zero frame where
  the pair has no transform, so the video stays in step with ``alignment.json``), at the thermal
  frame rate; written under a temporary name and renamed when complete.

RGB and thermal frames of different sizes are registered as for roots (the ``similarity``,
``affine`` and ``homography`` models search the scale; :func:`rgbt.align.estimate`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rgbt.align.warp import warp_to_thermal
from rgbt.data.video import VideoPairSource
from rgbt.data.video_writer import VideoWriter
from rgbt.engine.align import (
    ALIGNMENT_CSV,
    ALIGNMENT_JSON,
    CACHE_JSON,
    ESTIMATOR_VERSION,
    check_arguments,
    frame_entry,
    pooled_entries,
    register_all,
    register_pair,
    summarise,
    write_tables,
)

log = logging.getLogger(__name__)

#: The registered RGB video written with ``write_aligned``.
ALIGNED_VIDEO = "aligned_rgb.mp4"


def _write_aligned_video(source: VideoPairSource, frames: list[dict[str, Any]], path: Path,
                         progress: bool) -> dict[str, int]:
    """Every pair's RGB frame warped into the thermal frame, as one video (see the module docstring)."""
    width, height = source.thermal_size
    untransformed = 0
    bar = tqdm(total=len(frames), unit="frame", desc="write aligned", disable=None if progress else True, leave=False)
    try:
        with VideoWriter(path, source.thermal_fps) as writer:
            for index, frame in enumerate(frames):
                if frame["H"] is None:
                    untransformed += 1
                    writer.write(np.zeros((height, width, 3), np.uint8))
                else:
                    rgb = source[index].rgb
                    writer.write(warp_to_thermal(rgb, np.asarray(frame["H"], np.float64), (height, width)))
                bar.update(1)
    finally:
        bar.close()
    return {"written": len(frames) - untransformed, "skipped": 0, "without_transform": untransformed}


def align_video(
    rgb_video: str | os.PathLike[str],
    thermal_video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    offset: float = 0.0,
    model: str = "shift",
    pool: str = "frame",
    write_aligned: bool = False,
    workers: int = 2,
    max_shift: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Register every frame pair of two videos into ``out`` (see the module docstring).

    Args:
        rgb_video, thermal_video: the two streams; ``offset``: see :class:`VideoPairSource`.
        out: output folder (created).
        model, pool, workers, max_shift, progress: as :func:`~rgbt.engine.align.align_dataset`.
        write_aligned: also write ``OUT/aligned_rgb.mp4``.

    Returns:
        :func:`~rgbt.engine.align.align_dataset`'s summary (``root`` the thermal video, ``format``
        ``video``), plus ``aligned_video`` (its path, or ``None``).

    Raises:
        FileNotFoundError, rgbt.data.errors.DataFormatError: unreadable or unpairable videos (named).
        ValueError: bad arguments.
    """
    check_arguments(model, pool, workers)
    source = VideoPairSource(rgb_video, thermal_video, offset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = {"version": ESTIMATOR_VERSION, "rgb_video": str(source.rgb_video.resolve()),
                "thermal_video": str(source.thermal_video.resolve()), "offset": source.offset, "model": model,
                "max_shift": max_shift}

    def tasks(todo: list[int]) -> Iterator[tuple]:
        # Decoded in order, one pair at a time: a long video is never held in memory.
        for index in todo:
            sample = source[index]
            yield sample.rgb, sample.thermal, model, max_shift

    log.info("registering %d frame pairs of %s + %s (model %s)", len(source), source.rgb_video,
             source.thermal_video, model)
    ordered, estimated, seconds_estimating = register_all(source.frame_ids, tasks, register_pair, settings,
                                                          out / CACHE_JSON, workers, progress)
    frames = [frame_entry(frame_id, reg, source.thermal_video.name, source.period(index))
              for index, (frame_id, reg) in enumerate(zip(source.frame_ids, ordered))]
    outliers = pooled_entries(frames, ordered, model) if pool == "sequence" else []
    write_tables(out, frames)
    aligned = _write_aligned_video(source, frames, out / ALIGNED_VIDEO, progress) if write_aligned else None
    return {"root": str(source.thermal_video), "format": "video", "model": model, "pool": pool,
            **summarise(frames, outliers, None, aligned, time.perf_counter() - started, estimated,
                        seconds_estimating),
            "alignment_json": str(out / ALIGNMENT_JSON), "alignment_csv": str(out / ALIGNMENT_CSV),
            "aligned_video": str(out / ALIGNED_VIDEO) if write_aligned else None}
