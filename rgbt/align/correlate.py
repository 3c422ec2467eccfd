"""Matching two structure images: normalised cross-correlation searches and ECC refinement.

All functions work on one pyramid level: a thermal structure image ``st`` ``(h, w)`` float32, an
RGB structure image ``sr`` (any size; zero outside its valid mask) with its valid ``mask`` uint8,
and a transform ``H`` from thermal to RGB pixels of that level (see :mod:`rgbt.align.transform`).

The thermal image is always compared over one fixed *region*: the frame minus a ``margin`` on
every side. The pixels that decide the match therefore do not depend on the transform being
tried, so a moved RGB image is compared on the same scene content as the unmoved one: estimates
stay consistent from frame to frame (a full-frame comparison would gain or lose the edge strips
as the shift changes, and drift between depth layers of a scene with parallax).
"""

from __future__ import annotations

import cv2
import numpy as np

from rgbt.align.transform import max_corner_move, nearest_similarity, translation

#: OpenCV ECC motion types per refinement model (a similarity is an affine fit projected back).
ECC_MOTIONS: dict[str, int] = {
    "shift": cv2.MOTION_TRANSLATION,
    "similarity": cv2.MOTION_AFFINE,
    "affine": cv2.MOTION_AFFINE,
    "homography": cv2.MOTION_HOMOGRAPHY,
}
#: Fewest valid pixels a correlation is computed on; fewer give a score of -1.
MIN_PIXELS = 64


class ECCFailed(RuntimeError):
    """OpenCV's ECC iteration diverged or hit a singular system."""


def warp_into_thermal(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int],
                      interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample ``image`` (RGB side) onto the thermal grid of ``size = (h, w)``: ``out(x) = image(H x)``;
    outside ``image`` is 0."""
    height, width = size
    return cv2.warpPerspective(image, np.asarray(matrix, np.float64), (width, height),
                               flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)


def region_mask(size: tuple[int, int], margin: int) -> np.ndarray:
    """``(h, w)`` uint8: 1 inside the frame minus ``margin`` px on every side."""
    height, width = size
    out = np.zeros((height, width), np.uint8)
    out[margin:height - margin, margin:width - margin] = 1
    return out


def masked_ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Zero-mean normalised cross-correlation of ``a`` and ``b`` over ``mask > 0``: in [-1, 1];
    -1 when fewer than :data:`MIN_PIXELS` pixels or either side is constant."""
    keep = (mask > 0).astype(np.uint8)
    if cv2.countNonZero(keep) < MIN_PIXELS:
        return -1.0
    # Masked moments in OpenCV (one pass each, no copies of the selected pixels).
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    (mean_a,), (std_a,) = (v.ravel() for v in cv2.meanStdDev(a, mask=keep))
    (mean_b,), (std_b,) = (v.ravel() for v in cv2.meanStdDev(b, mask=keep))
    if std_a <= 1e-12 or std_b <= 1e-12:
        return -1.0
    mean_ab = cv2.mean(cv2.multiply(a, b), mask=keep)[0]
    return float(np.clip((mean_ab - mean_a * mean_b) / (std_a * std_b), -1.0, 1.0))


def score(st: np.ndarray, sr: np.ndarray, mask: np.ndarray, matrix: np.ndarray, margin: int) -> float:
    """NCC of the thermal region (margin ``margin``) with the RGB structure warped by ``matrix``,
    over the region pixels that land on valid RGB pixels."""
    size = st.shape[:2]
    warped = warp_into_thermal(sr, matrix, size)
    valid = warp_into_thermal(mask.astype(np.float32), matrix, size) > 0.999
    return masked_ncc(st, warped, valid * region_mask(size, margin))


def parabola_peak(minus: float, centre: float, plus: float, limit: float = 0.5) -> float:
    """Offset (in sample spacings, clipped to +-``limit``) of the maximum of the parabola through three
    equally spaced samples; 0 when they do not bend downwards."""
    curvature = minus - 2.0 * centre + plus
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (minus - plus) / curvature, -limit, limit))


def _peak_offset(surface: np.ndarray, x: int, y: int) -> tuple[float, float]:
    """Sub-pixel offset of a correlation maximum at integer ``(x, y)`` (separable parabola fits)."""
    height, width = surface.shape
    ox = parabola_peak(surface[y, x - 1], surface[y, x], surface[y, x + 1]) if 0 < x < width - 1 else 0.0
    oy = parabola_peak(surface[y - 1, x], surface[y, x], surface[y + 1, x]) if 0 < y < height - 1 else 0.0
    return ox, oy


def peaks(surface: np.ndarray, count: int, separation: int) -> list[tuple[int, int, float]]:
    """Up to ``count`` local maxima ``(x, y, value)`` of a correlation surface, best first, each at
    least ``separation + 1`` px (Chebyshev) from the ones before it."""
    work = surface.copy()
    found = []
    for _ in range(count):
        _, value, _, (x, y) = cv2.minMaxLoc(work)
        if value <= -1.0 or not np.isfinite(value):
            break
        found.append((x, y, float(value)))
        work[max(0, y - separation):y + separation + 1, max(0, x - separation):x + separation + 1] = -2.0
    return found


def shift_surface(st: np.ndarray, sr: np.ndarray, radius: int) -> np.ndarray:
    """NCC of the thermal region (margin ``radius``) against ``sr`` (same size as ``st``) at every
    integer shift in ``[-radius, radius]^2``: a ``(2r + 1, 2r + 1)`` float32 surface, ``[r + dy, r + dx]``
    being the shift whose ``H`` is ``translation(dx, dy)``."""
    height, width = st.shape
    template = st[radius:height - radius, radius:width - radius]
    return cv2.matchTemplate(sr, template, cv2.TM_CCOEFF_NORMED)


def local_shift(st: np.ndarray, sr: np.ndarray, matrix: np.ndarray, margin: int, radius: int,
                pure_shift: bool) -> tuple[np.ndarray, float]:
    """Best translation update of ``matrix`` within ``radius`` px, by exhaustive NCC of the thermal
    region (margin ``margin``), refined to sub-pixel by a parabola through the surface.

    ``pure_shift``: ``matrix`` is a translation and ``sr`` is read directly at the offset window (no
    resampling); otherwise ``sr`` is first warped by ``matrix`` into the thermal frame and the residual
    shift is composed on the thermal side (``H' = H @ T(d)``).

    Returns:
        ``(H', ncc)``.
    """
    height, width = st.shape
    if pure_shift:
        cx, cy = int(round(matrix[0, 2])), int(round(matrix[1, 2]))
        template = st[margin:height - margin, margin:width - margin]
        y0, x0 = margin + cy - radius, margin + cx - radius
        y1, x1 = y0 + template.shape[0] + 2 * radius, x0 + template.shape[1] + 2 * radius
        pad = max(0, -y0, -x0, y1 - sr.shape[0], x1 - sr.shape[1])
        source = cv2.copyMakeBorder(sr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) if pad else sr
        window = source[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
        surface = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, value, _, (x, y) = cv2.minMaxLoc(surface)
        ox, oy = _peak_offset(surface, x, y)
        return translation(cx + x - radius + ox, cy + y - radius + oy), float(value)
    warped = warp_into_thermal(sr, matrix, (height, width))
    inner = margin + radius
    template = st[inner:height - inner, inner:width - inner]
    window = warped[margin:height - margin, margin:width - margin]
    surface = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, value, _, (x, y) = cv2.minMaxLoc(surface)
    ox, oy = _peak_offset(surface, x, y)
    return matrix @ translation(x - radius + ox, y - radius + oy), float(value)


def ecc(st: np.ndarray, sr: np.ndarray, mask: np.ndarray, matrix: np.ndarray, model: str, margin: int,
        iterations: int = 30, epsilon: float = 1e-4) -> np.ndarray:
    """One :func:`cv2.findTransformECC` refinement of ``matrix`` on the thermal region.

    The thermal region is the ECC template and the RGB structure the input image (with ``mask`` as
    its valid mask), so the ECC warp is the thermal -> RGB transform offset by the region's corner.
    ``similarity`` runs an affine ECC and projects the result onto the nearest similarity about the
    frame centre.

    Raises:
        ECCFailed: OpenCV reports divergence or a singular system.
    """
    height, width = st.shape
    template = np.ascontiguousarray(st[margin:height - margin, margin:width - margin])
    offset = translation(margin, margin)
    start = matrix @ offset
    motion = ECC_MOTIONS[model]
    if motion == cv2.MOTION_TRANSLATION:
        warp = np.array([[1.0, 0.0, start[0, 2]], [0.0, 1.0, start[1, 2]]])
    elif motion == cv2.MOTION_HOMOGRAPHY:
        warp = start / start[2, 2]
    else:
        warp = start[:2]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, epsilon)
    try:
        _, warp = cv2.findTransformECC(template, sr, warp.astype(np.float32), motion, criteria, mask, 1)
    except cv2.error as err:
        raise ECCFailed(str(err).strip().splitlines()[-1]) from None
    warp = warp.astype(np.float64)
    if warp.shape[0] == 2:
        warp = np.vstack([warp, [0.0, 0.0, 1.0]])
    result = warp @ np.linalg.inv(offset)
    if model == "similarity":
        result = nearest_similarity(result, np.array([(width - 1) / 2.0, (height - 1) / 2.0]))
    return result / result[2, 2]


def ecc_step(st: np.ndarray, sr: np.ndarray, mask: np.ndarray, matrix: np.ndarray, current: float, model: str,
             margin: int, gain: float = 0.0, max_move: float = 4.0) -> tuple[np.ndarray, float, bool]:
    """Try an ECC refinement of ``matrix`` and keep it only when it is an improvement.

    Gauss-Newton steps do not always go uphill (and a more general model can overfit), so the ECC
    result is accepted only when its NCC on the region beats ``current + gain`` and no frame corner
    moved more than ``max_move`` px.

    Returns:
        ``(H, ncc, converged)``: the refined or the original transform, its NCC, and False when ECC
        raised :class:`ECCFailed`.
    """
    try:
        refined = ecc(st, sr, mask, matrix, model, margin)
    except ECCFailed:
        return matrix, current, False
    if not np.isfinite(refined).all() or max_corner_move(refined, matrix, st.shape[:2]) > max_move:
        return matrix, current, True
    value = score(st, sr, mask, refined, margin)
    if value > current + gain:
        return refined, value, True
    return matrix, current, True
