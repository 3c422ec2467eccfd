"""Detection on a pair of videos (``rgbt detect --rgb-video A --thermal-video B``).

The two streams are paired by time (:class:`~rgbt.data.video.VideoPairSource`), run through the
same batched detection loop as a dataset (:func:`~rgbt.engine.inference.detect_source`), and give

* ``OUT/detections.json``: a COCO results json of every class (``image_id`` = the 0-based pair
  index, ``category_id`` = the 1-based class index, ``bbox`` = ``[x, y, w, h]`` thermal pixels);
* ``OUT/frames.json``: per ``image_id`` the frame id, the thermal and RGB frame numbers and the time (s), plus
  the pairing (fps of both streams, offset) and the class names;
* ``OUT/annotated.mp4`` (unless ``video=False``): RGB | thermal side by side at the thermal frame
  rate, detections above ``draw_threshold`` drawn on both (the RGB panel only when its frames are
  registered to thermal, i.e. the same size).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rgbt.atomic import atomic_write_text
from rgbt.data.sample import PairSample
from rgbt.data.show import draw_boxes
from rgbt.data.video import VideoPairSource
from rgbt.data.video_writer import VideoWriter
from rgbt.engine.inference import detect_source, load_detector
from rgbt.evaluation.detections import write_coco_results

log = logging.getLogger(__name__)


def _annotate(sample: PairSample, rows: np.ndarray, classes: list[str], threshold: float) -> np.ndarray:
    """RGB | thermal of one pair with the detections above ``threshold``; ``(H, 2W, 3)`` uint8."""
    keep = rows[rows[:, 4] >= threshold]
    labels = [f"{classes[int(label) - 1]} {score:.2f}" for score, label in zip(keep[:, 4], keep[:, 5])]
    ignore = np.zeros(len(keep), dtype=bool)
    thermal = cv2.cvtColor(sample.thermal, cv2.COLOR_GRAY2RGB)
    height, width = thermal.shape[:2]
    rgb = sample.rgb
    registered = rgb is not None and rgb.shape[:2] == (height, width)
    rgb = rgb.copy() if registered else cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    draw_boxes(thermal, keep[:, :4], labels, ignore)
    if registered:
        draw_boxes(rgb, keep[:, :4], labels, ignore)
    return np.concatenate([rgb, thermal], axis=1)


def detect_video(
    checkpoint: str | os.PathLike[str],
    rgb_video: str | os.PathLike[str],
    thermal_video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    offset: float = 0.0,
    video: bool = True,
    draw_threshold: float = 0.5,
    batch_size: int = 8,
    workers: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Run a detector checkpoint over a pair of videos; see the module docstring for the outputs.

    Args:
        checkpoint: a ``rgbt train-detector`` checkpoint.
        rgb_video, thermal_video: the two streams; ``offset``: see :class:`VideoPairSource`.
        out: output folder (created).
        video: also write ``annotated.mp4``.
        draw_threshold: score from which a detection is drawn (all are written to the json).
        batch_size, workers, device: see :func:`detect_source` and :func:`load_detector`.

    Returns:
        ``{'pairs', 'detections', 'files', 'rgb_fps', 'thermal_fps', 'offset'}``.

    Raises:
        ValueError: a detector that stacks RGB with thermal on frames of different sizes (the
            streams are not registered), or a ``draw_threshold`` outside [0, 1].
        FileNotFoundError, rgbt.data.errors.DataFormatError: unreadable or unpairable videos.
    """
    if not 0.0 <= draw_threshold <= 1.0:
        raise ValueError(f"the draw threshold must be in [0, 1], got {draw_threshold}")
    source = VideoPairSource(rgb_video, thermal_video, offset)
    detector = load_detector(checkpoint, device, batch_size)
    stacked = [m for m in detector.modalities if m in ("rgb", "fake_rgb", "aligned_rgb")]
    if "rgb" in stacked and tuple(source.rgb_size) != tuple(source.thermal_size):
        rgb_w, rgb_h = source.rgb_size
        thermal_w, thermal_h = source.thermal_size
        raise ValueError(
            f"{checkpoint} stacks RGB with thermal, but {source.rgb_video} is {rgb_w}x{rgb_h} and "
            f"{source.thermal_video} {thermal_w}x{thermal_h}: register the RGB frames to thermal first, or use a "
            "thermal-only detector"
        )
    if "fake_rgb" in stacked:
        raise ValueError(f"{checkpoint} reads fake RGB, which videos do not carry: translate the frames first")
    if "aligned_rgb" in stacked:
        raise ValueError(f"{checkpoint} reads aligned RGB, which videos do not carry: register the frames first "
                         "(`rgbt align --write-aligned`)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(detector.classes)
    writer = VideoWriter(out / "annotated.mp4", source.thermal_fps) if video else None
    pending: list[np.ndarray] = []

    def detect(samples: list[PairSample]) -> list[np.ndarray]:
        rows = detector.predict(samples)
        pending[:] = rows
        return rows

    def draw(samples: list[PairSample]) -> None:
        if writer is not None:
            for sample, rows in zip(samples, pending):
                writer.write(_annotate(sample, rows, classes, draw_threshold))

    log.info("detecting on %d frame pairs of %s + %s", len(source), source.rgb_video, source.thermal_video)
    finished = False
    try:
        rows = detect_source(detect, source, None, batch_size, workers, columns=6, on_batch=draw)
        finished = True
    finally:
        if writer is not None:
            writer.close(keep=finished)
    results = write_coco_results(out / "detections.json", rows, category_id=None)
    frames = {
        **source.streams_record(), "classes": classes,
        "frames": [{"image_id": k, **source.frame_record(k)} for k in range(len(source))],
    }
    index = atomic_write_text(out / "frames.json", json.dumps(frames, indent=1) + "\n")
    files = [str(results), str(index)] + ([str(out / "annotated.mp4")] if video else [])
    return {"pairs": len(source), "detections": int(sum(len(r) for r in rows)), "files": files,
            "rgb_fps": source.rgb_fps, "thermal_fps": source.thermal_fps, "offset": source.offset}
