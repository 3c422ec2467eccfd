"""Bringing RGB content into the thermal frame with a registration ``H`` (thermal pixel -> RGB pixel).

:func:`warp_to_thermal` resamples an RGB image onto the thermal grid (``out(x) = rgb(H x)``, zero
where ``H x`` falls outside the RGB image); :func:`boxes_to_thermal` moves RGB-frame boxes (e.g.
KAIST-Paired ``visible`` annotations) the same way, so they describe the warped image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from rgbt.align.transform import apply, normalised


def _reduce(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` averaged down by the integer part of ``matrix``'s scale when that is >= 2 (a plain
    bilinear warp would alias a 1800 px RGB frame resampled to 640 px), with ``matrix`` adjusted."""
    factor = math.sqrt(abs(float(np.linalg.det(matrix[:2, :2]))))
    k = int(factor + 1e-6) if factor >= 2 else 1
    if k == 1:
        return image, matrix
    height, width = image.shape[:2]
    reduced = cv2.resize(image[:height - height % k, :width - width % k], None, fx=1 / k, fy=1 / k,
                         interpolation=cv2.INTER_AREA)
    # Output pixel i averages input pixels k i .. k i + k - 1, so input x = k x' + (k - 1) / 2.
    down = np.array([[1 / k, 0.0, -(k - 1) / (2 * k)], [0.0, 1 / k, -(k - 1) / (2 * k)], [0.0, 0.0, 1.0]])
    return reduced, down @ matrix


def warp_to_thermal(image: np.ndarray, H: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample an RGB-side image into the thermal frame.

    Args:
        image: ``(H', W', 3)`` or ``(H', W')`` array (uint8 images, float32 masks ...).
        H: ``(3, 3)`` thermal -> RGB transform.
        size: ``(height, width)`` of the thermal frame.

    Returns:
        ``(height, width[, 3])`` array of ``image``'s dtype: bilinear, 0 outside ``image``.
    """
    source, matrix = _reduce(image, normalised(H))
    height, width = size
    return cv2.warpPerspective(source, matrix, (int(width), int(height)), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def coverage_mask(rgb_size: tuple[int, int], H: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(height, width)`` uint8 mask of the thermal pixels that :func:`warp_to_thermal` fills from
    inside an RGB image of ``rgb_size = (H', W')``."""
    ones = np.ones(rgb_size, np.float32)
    return (warp_to_thermal(ones, H, size) > 0.999).astype(np.uint8)


def boxes_to_thermal(boxes: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Move RGB-frame boxes into the thermal frame.

    Args:
        boxes: ``(N, 4)`` float ``xyxy`` in RGB-frame box coordinates (pixel ``col`` spans
            ``[col, col + 1)``, so its centre ``col + 0.5`` is pixel index ``col`` of ``H``).
        H: ``(3, 3)`` thermal -> RGB transform.

    Returns:
        ``(N, 4)`` float32: the axis-aligned hull of each box's four corners mapped through ``H^-1``
        (exact for shifts and scales); not clipped to the frame.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return boxes.astype(np.float32)
    inverse = np.linalg.inv(normalised(H))
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x1, y2], -1),
                        np.stack([x2, y2], -1)], axis=1).reshape(-1, 2)
    moved = (apply(inverse, corners - 0.5) + 0.5).reshape(-1, 4, 2)
    return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1).astype(np.float32)
