"""The domains of annotation and detection fields, checked by every reader.

A value outside its domain is refused where it is read (the reader names the file, line or key
and the value), never clipped or rounded:

* coordinates (box corners, sizes, visible boxes) are finite and representable in float32
  (``|v| <= 3.4028235e38``; boxes are float32 in memory, where ``1e39`` would become ``inf``),
  corner + size included; widths and heights are ``>= 0``;
* KAIST occlusion levels are 0 (none), 1 (partial) or 2 (heavy); ignore flags are 0 or 1;
* KAIST labels are ``person``, ``people``, ``cyclist`` and ``person?`` (:data:`KAIST_LABELS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The largest float32: a coordinate beyond it would turn into ``inf`` in a float32 box array.
FLOAT32_MAX: float = float(np.finfo(np.float32).max)

#: KAIST occlusion levels: 0 none, 1 partial, 2 heavy.
OCCLUSION_LEVELS: tuple[int, ...] = (0, 1, 2)

#: Values of an ignore flag (bbGt ``ign``, KAIST json ``ignore``, COCO ``iscrowd``, VOC ``difficult``).
FLAG_VALUES: tuple[int, ...] = (0, 1)

#: The labels of the KAIST release (bbGt files, ``KAIST_annotation.json`` categories).
KAIST_LABELS: tuple[str, ...] = ("person", "people", "cyclist", "person?")


def coordinate_problem(values: Sequence[float], names: Sequence[str]) -> str | None:
    """Why some coordinates are out of their domain (finite float32), or ``None`` when they are in it."""
    for name, value in zip(names, values):
        if not abs(value) <= FLOAT32_MAX:  # also catches NaN
            return f"{name}={value!r} is not a finite float32 coordinate"
    return None


def xywh_problem(box: Sequence[float], names: Sequence[str] = ("x", "y", "w", "h")) -> str | None:
    """Why an ``x y w h`` box is out of its domain, or ``None``.

    Each value and the far corners ``x + w``, ``y + h`` are finite float32; ``w, h >= 0``.
    """
    problem = coordinate_problem(box, names)
    if problem is not None:
        return problem
    x, y, w, h = box
    if w < 0 or h < 0:
        return f"negative box size {names[2]}={w!r} {names[3]}={h!r}"
    return coordinate_problem((x + w, y + h), (f"{names[0]} + {names[2]}", f"{names[1]} + {names[3]}"))


def xyxy_problem(box: Sequence[float], names: Sequence[str] = ("x1", "y1", "x2", "y2")) -> str | None:
    """Why an ``x1 y1 x2 y2`` box is out of its domain (finite float32, ``x2 >= x1``, ``y2 >= y1``), or ``None``."""
    problem = coordinate_problem(box, names)
    if problem is not None:
        return problem
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        return f"negative box size: {names[0]}={x1!r} {names[1]}={y1!r} {names[2]}={x2!r} {names[3]}={y2!r}"
    return None


def xywh_in_domain(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: which rows of an ``(N, 4)`` float64 ``x y w h`` array pass :func:`xywh_problem`
    (the vectorised check of the fast readers; a row that fails is then located by the exact one)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    corners = boxes[:, :2] + boxes[:, 2:]
    with np.errstate(invalid="ignore"):
        finite = (np.abs(boxes) <= FLOAT32_MAX).all(axis=1) & (np.abs(corners) <= FLOAT32_MAX).all(axis=1)
        return finite & (boxes[:, 2:] >= 0).all(axis=1)
