"""The registration transform: a 3x3 matrix from thermal pixels to RGB pixels, and what is read off it.

Convention (DESIGN.md): ``H`` maps a thermal pixel ``(x, y, 1)`` (pixel-index coordinates, pixel
centres at integers, as OpenCV) to the RGB pixel showing the same scene point. Its shift
``(dx, dy)`` is where the thermal frame's centre ``((W - 1) / 2, (H - 1) / 2)`` lands in RGB minus
that centre, so an RGB image moved by ``shift:dx,dy`` (:mod:`rgbt.data.perturbation`, +dx moves the
content right) of a registered pair registers to ``(dx, dy)``: a perturbation's forward matrix
*is* the ``H`` of the perturbed pair.

Pyramid level ``l`` halves the coordinates ``l`` times (:func:`cv2.pyrDown` keeps pixel 0 on
pixel 0), so the same transform at level ``l`` is ``S H S^-1`` with ``S = diag(2^-l, 2^-l, 1)``.
"""

from __future__ import annotations

import math

import numpy as np

#: Transform models, from the most constrained to the most general (degrees of freedom 2, 4, 6, 8).
MODELS: tuple[str, ...] = ("shift", "similarity", "affine", "homography")


def check_model(model: str) -> str:
    """``model`` when it is one of :data:`MODELS`; ValueError naming it otherwise."""
    if model not in MODELS:
        raise ValueError(f"unknown registration model {model!r}; expected one of {MODELS}")
    return model


def translation(dx: float, dy: float) -> np.ndarray:
    """The 3x3 matrix moving points by ``(dx, dy)``."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def rotation_scale(angle: float, factor: float, cx: float, cy: float) -> np.ndarray:
    """3x3 matrix turning ``angle`` degrees counter-clockwise as displayed and scaling by ``factor``
    about ``(cx, cy)`` (y down): the forward matrix of :mod:`rgbt.data.perturbation`'s rotate / scale."""
    theta = math.radians(angle)
    a, b = factor * math.cos(theta), factor * math.sin(theta)
    return np.array([[a, b, cx - a * cx - b * cy], [-b, a, cy + b * cx - a * cy], [0.0, 0.0, 1.0]])


def at_level(matrix: np.ndarray, factor: float) -> np.ndarray:
    """``matrix`` (full-resolution pixels) expressed in pixels divided by ``factor`` (2^level)."""
    scale = np.diag([1.0 / factor, 1.0 / factor, 1.0])
    unscale = np.diag([factor, factor, 1.0])
    return scale @ matrix @ unscale


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points through a 3x3 matrix (with the projective division); ``(N, 2)`` float64."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mapped = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ np.asarray(matrix, np.float64).T
    return mapped[:, :2] / mapped[:, 2:3]


def centre(size: tuple[int, int]) -> np.ndarray:
    """The centre ``((W - 1) / 2, (H - 1) / 2)`` of a frame of ``size = (height, width)`` in pixel indices."""
    height, width = size
    return np.array([(width - 1) / 2.0, (height - 1) / 2.0])


def centre_shift(matrix: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """``(dx, dy)``: where the thermal frame's centre lands in RGB, minus the centre."""
    c = centre(size)
    dx, dy = apply(matrix, c[None])[0] - c
    return float(dx), float(dy)


def corners(size: tuple[int, int]) -> np.ndarray:
    """The four corner pixels ``(0, 0), (W-1, 0), (0, H-1), (W-1, H-1)`` of a frame of ``size = (H, W)``."""
    height, width = size
    return np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)


def corner_error(a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> float:
    """Mean distance (pixels) between the four thermal-frame corners mapped through ``a`` and through ``b``."""
    pts = corners(size)
    return float(np.linalg.norm(apply(a, pts) - apply(b, pts), axis=1).mean())


def max_corner_move(a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> float:
    """Largest distance (pixels) between a frame corner mapped through ``a`` and through ``b``."""
    pts = corners(size)
    return float(np.linalg.norm(apply(a, pts) - apply(b, pts), axis=1).max())


def nearest_similarity(matrix: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """The similarity (rotation, uniform scale, shift) closest to ``matrix``'s linear part that maps
    ``pivot`` where ``matrix`` does (projecting about the origin instead would move the frame centre)."""
    a = (matrix[0, 0] + matrix[1, 1]) / 2
    b = (matrix[0, 1] - matrix[1, 0]) / 2
    linear = np.array([[a, b], [-b, a]])
    target = apply(matrix, pivot[None])[0]
    offset = target - linear @ pivot
    return np.array([[a, b, offset[0]], [-b, a, offset[1]], [0.0, 0.0, 1.0]])


def normalised(matrix: np.ndarray) -> np.ndarray:
    """``matrix / matrix[2, 2]`` as float64 (homographies are defined up to scale)."""
    matrix = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(matrix).all() or abs(matrix[2, 2]) < 1e-12:
        raise ValueError(f"not a usable 3x3 transform: {matrix.tolist()}")
    return matrix / matrix[2, 2]
