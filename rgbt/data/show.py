"""Draw one frame pair with its annotations (``rgbt show``).

The picture is the RGB, thermal and (when loaded) fake-RGB panels side by side, each scaled to
the thermal height. Each panel gets the boxes of its own frame: ``boxes_rgb`` on the RGB panel
when the dataset has them (KAIST-Paired), otherwise the thermal-frame boxes, which are only drawn
on an RGB image of the thermal size (an unregistered RGB frame of another size gets none).
Ignore regions (the file's ignore flag, or a KAIST ``people`` / ``cyclist`` / ``person?`` label)
are dashed.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from rgbt.data.imageio import write_image
from rgbt.data.sample import KAIST_LABELS, PairSample
from rgbt.data.source import FrameSource, open_source

#: RGB colours: person boxes, ignore regions, panel title background.
PERSON_COLOUR = (0, 230, 0)
IGNORE_COLOUR = (255, 160, 0)
_PALETTE = ((0, 170, 255), (255, 64, 160), (255, 255, 0), (160, 96, 255), (0, 255, 200), (255, 96, 64))
_IGNORE_LABELS = frozenset(KAIST_LABELS) - {"person"}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour(label: str) -> tuple[int, int, int]:
    if label == "person":
        return PERSON_COLOUR
    return _PALETTE[zlib.crc32(label.encode("utf-8")) % len(_PALETTE)]


def _dashed_rectangle(
    image: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    (x1, y1), (x2, y2) = p1, p2
    dash, gap = 5, 4
    for start in range(x1, x2 + 1, dash + gap):
        end = min(start + dash, x2)
        cv2.line(image, (start, y1), (end, y1), colour, 1)
        cv2.line(image, (start, y2), (end, y2), colour, 1)
    for start in range(y1, y2 + 1, dash + gap):
        end = min(start + dash, y2)
        cv2.line(image, (x1, start), (x1, end), colour, 1)
        cv2.line(image, (x2, start), (x2, end), colour, 1)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: list[str], ignore: np.ndarray) -> None:
    """Draw ``xyxy`` boxes (pixels of ``image``) with small labels, in place; ignore regions dashed."""
    for box, label, ign in zip(boxes, labels, ignore):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        dashed = bool(ign) or label in _IGNORE_LABELS
        colour = IGNORE_COLOUR if dashed else _colour(label)
        if dashed:
            _dashed_rectangle(image, (x1, y1), (x2, y2), colour)
        else:
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1)
        ty = y1 - 3 if y1 >= 10 else y2 + 10
        cv2.putText(image, label, (x1, ty), _FONT, 0.35, colour, 1, cv2.LINE_AA)


def _panel(
    image: np.ndarray | None, height: int, width: int, boxes: np.ndarray | None, sample: PairSample, title: str
) -> np.ndarray:
    """One panel of height ``height``: the image scaled (aspect kept) or a grey placeholder."""
    if image is None:
        panel = np.full((height, width, 3), 64, dtype=np.uint8)
        title = f"{title}: missing"
        scale = 1.0
    else:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        scale = height / image.shape[0]
        size = (max(1, int(round(image.shape[1] * scale))), height)
        panel = image.copy() if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if boxes is not None:
            draw_boxes(panel, boxes * scale, sample.labels, sample.ignore)
    cv2.putText(panel, title, (3, 11), _FONT, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def render_frame(sample: PairSample) -> np.ndarray:
    """The RGB | thermal (| fake RGB) (| aligned RGB) picture of a decoded sample.

    Args:
        sample: a sample with images (``rgb``, ``thermal`` may be ``None``: a grey panel stands in).

    Returns:
        ``(H, W_total, 3)`` uint8 RGB where ``H`` is the thermal height (RGB height without thermal)
        and ``W_total`` the sum of the scaled panel widths: ``2 * W`` to ``4 * W`` for registered pairs.
    """
    height, width = sample.size
    rgb_boxes = sample.boxes_rgb
    if rgb_boxes is None and sample.rgb is not None and sample.rgb.shape[:2] == (height, width):
        rgb_boxes = sample.boxes
    panels = [
        _panel(sample.rgb, height, width, rgb_boxes, sample, "RGB"),
        _panel(sample.thermal, height, width, sample.boxes, sample, "thermal"),
    ]
    if sample.fake_rgb is not None:
        panels.append(_panel(sample.fake_rgb, height, width, sample.boxes, sample, "fake RGB"))
    if sample.aligned_rgb is not None:
        panels.append(_panel(sample.aligned_rgb, height, width, sample.boxes, sample, "aligned RGB"))
    return np.concatenate(panels, axis=1)


def find_frame(source: FrameSource, frame: str) -> int:
    """Index of ``frame`` in ``source``: a frame id in any spelling the source's layout accepts (its
    ``frame_candidates``: a KAIST id as ``set06_V001_I00459`` or an image path, a FLIR file name or stem ...).

    Raises:
        ValueError: no frame matches.
    """
    index = {frame_id: i for i, frame_id in enumerate(source.frame_ids)}
    for candidate in source.frame_candidates(frame):
        if candidate in index:
            return index[candidate]
    examples = ", ".join(source.frame_ids[:3])
    raise ValueError(f"frame {frame!r} not found in {source.root} ({len(source)} frames, e.g. {examples})")


def show_frame(
    root: str | os.PathLike[str],
    frame: str,
    image_set: str | None = None,
    out: str | os.PathLike[str] | None = None,
    format: str = "auto",
    fake_rgb_root: str | os.PathLike[str] | None = None,
    aligned_rgb_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Render one frame of a dataset root to a PNG (default ``./<frame id with / as _>.png``); returns its path.
    ``fake_rgb_root`` / ``aligned_rgb_root`` add a fake-RGB / aligned-RGB panel."""
    source = open_source(root, image_set=image_set, format=format, fake_rgb_root=fake_rgb_root,
                         aligned_rgb_root=aligned_rgb_root)
    sample = source[find_frame(source, frame)]
    path = Path(out) if out is not None else Path.cwd() / (sample.frame_id.replace("/", "_") + ".png")
    return write_image(path, render_frame(sample))
