"""Per-frame registration of an RGB image to its thermal frame: :func:`estimate`.

The method, and why (measured on real registered RoadScene / KAIST pairs moved by known shifts,
rotations and scales; see the README's "Aligning RGB and thermal"):

1. **Structure images** (:mod:`rgbt.align.features`): contrast-normalised gradient magnitudes,
   which the two modalities share, on a pyramid of levels ``0..L`` (the coarsest about 240 px
   wide; reducing the image first averages sensor noise away).
2. **Coarse search, exhaustive**: normalised cross-correlation of the thermal structure with the
   RGB structure at every integer shift within ``max_shift`` at the coarsest level
   (:func:`cv2.matchTemplate`), and for the similarity / affine / homography models also over a
   grid of rotations (1 degree steps within ``max_angle``) and scales (2 % steps within
   ``max_scale``). Several distinct correlation peaks are kept as candidates: the highest coarse
   peak is often not the right one (repeated structure, parallax, a dark RGB frame). On a noisy
   image (a dark, amplified night RGB frame) this search runs on structure images blurred in
   proportion to the measured noise (:func:`~rgbt.align.features.coarse_sigma`): the noise otherwise
   hides the faint outlines that tell apart the repeated candidates of a few bright structures (lit
   windows of a facade); the verification below uses the sharp images again. A plain
   gradient phase correlation (:func:`cv2.phaseCorrelate`) followed by ECC is the baseline this
   replaces: it whitens the spectrum, so noise and fine texture decide its peak, and its
   full-frame window is thrown off by the zero-filled border of a moved image.
3. **Coarse-to-fine verification**: each candidate is refined level by level with a local
   exhaustive search (+-2 px of translation; for the general models also +-half a grid step of
   rotation and scale, with a parabolic sub-step fit); the two best at the level below the
   coarsest are carried down to full resolution and the one with the highest full-resolution
   correlation wins. Correlations are always taken over the same fixed region of the thermal
   frame (:mod:`rgbt.align.correlate`), so the estimate does not drift as the shift changes which
   border strips overlap.
4. **ECC polish** (:func:`cv2.findTransformECC` on the structure images, the RGB valid mask as
   its input mask): translation for ``shift``, similarity (an affine ECC projected to the nearest
   similarity), then affine, then homography for the general models. A refinement is kept only if
   it raises the correlation (by a small margin for the extra degrees of freedom of
   affine / homography, which otherwise overfit parallax), and never moves a corner by more than
   4 px; the simpler model's estimate is always a candidate of the general ones.
5. **Confidence**: ``score`` in [0, 1] combines how well the structures correlate at the solution
   with how clearly it beats the best *different* candidate (an ambiguous frame with two equally
   good solutions gets a low score even when its correlation is high). See :func:`confidence`.

RGB frames of another size than the thermal frame (FLIR ADAS v1.3: 1800x1600 or 2048x1536 against
640x512) are first resampled into the thermal frame by an initial transform (``init``; by default
the centre-to-centre scaling by the ratio of the frame sizes), and the search range of scale and
shift is widened (``max_scale`` 1.25, ``max_shift`` 10 % of the frame); the result is ``init`` composed
with the estimated correction.

This module is a pure function of its arguments: no configuration, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rgbt.align.correlate import ecc_step, local_shift, parabola_peak, peaks, shift_surface, warp_into_thermal
from rgbt.align.correlate import score as region_score
from rgbt.align.features import StructurePyramid, build_pyramid, is_flat, luminance, structure_fraction, valid_mask
from rgbt.align.result import Registration
from rgbt.align.transform import (
    at_level,
    centre_shift,
    check_model,
    max_corner_move,
    normalised,
    rotation_scale,
    translation,
)
from rgbt.align.warp import warp_to_thermal

#: Width (px) the coarsest pyramid level is closest to.
COARSE_WIDTH = 240
#: Default search range as a fraction of the larger thermal dimension (at least :data:`MIN_SHIFT` px).
SHIFT_FRACTION = 0.05
MIN_SHIFT = 8
#: Default rotation (degrees) and scale (factor) search range of the similarity / affine / homography models.
MAX_ANGLE = 4.0
MAX_SCALE = 1.06
#: Wider defaults when the RGB frame has another size than the thermal frame (other lens, other field of view).
RESIZED_MAX_SCALE = 1.25
RESIZED_SHIFT_FRACTION = 0.10
#: Coarse grid steps: degrees, and the relative scale step.
ANGLE_STEP = 1.0
SCALE_STEP = 0.02
#: Candidates refined per stage, and finalists carried down to full resolution.
CANDIDATES = 5
FINALISTS = 2
#: NCC a more general model must add to replace a simpler one's estimate.
MODEL_GAIN = 0.002
#: Fewest structure pixels (fraction of the frame, see ``structure_fraction``) an image needs.
MIN_STRUCTURE = 0.005
#: Smallest thermal frame side (px) that is registered.
MIN_SIDE = 32
#: Least fraction of the thermal frame the (pre-warped) RGB image must cover.
MIN_COVERAGE = 0.25
#: Confidence calibration (see :func:`confidence`): NCC at which the correlation term saturates,
#: and the NCC lead over the runner-up at which the distinctness term saturates.
NCC_FULL = 0.25
LEAD_FULL = 0.02
#: Candidates whose frame corners end this far (full-resolution px) from the winner's are distinct alternatives.
DISTINCT = 2.0


@dataclass
class _Candidate:
    """A transform at some level and its NCC there."""

    H: np.ndarray
    ncc: float


def default_max_shift(size: tuple[int, int], resized: bool = False) -> float:
    """The default search range (px) for a thermal frame of ``size = (h, w)``."""
    fraction = RESIZED_SHIFT_FRACTION if resized else SHIFT_FRACTION
    return float(max(MIN_SHIFT, round(fraction * max(size))))


def max_searchable_shift(size: tuple[int, int]) -> float:
    """The largest search range (px) for a thermal frame of ``size = (h, w)``: a quarter of its smaller
    side (at least :data:`MIN_SHIFT`), so that the correlated central region keeps half of the frame."""
    return float(max(MIN_SHIFT, min(size) // 4))


def confidence(ncc: float, lead: float | None) -> float:
    """Confidence in [0, 1] of an estimate whose full-resolution structure NCC is ``ncc`` and whose NCC
    at the verification level beats the best distinct alternative (corners more than
    :data:`DISTINCT` px away) by ``lead`` (``None``: every candidate ended at the winner).

    ``min(1, ncc / NCC_FULL) * min(1, lead / LEAD_FULL)``, each term clipped at 0, the second 0.5
    without an alternative (nothing to compare with says little). Registered day pairs correlate
    at 0.25-0.6, dark or noisy night RGB frames at 0.05-0.15; a lead below 0.02 means another,
    different transform fits almost as well. Measured on RoadScene and KAIST pairs moved by known
    shifts, no estimate scoring 0.3 or more was off by more than 1 px (88 % of the frames scored so).
    """
    corr = min(1.0, max(0.0, ncc / NCC_FULL))
    distinct = 0.5 if lead is None else min(1.0, max(0.0, lead / LEAD_FULL))
    return corr * distinct


def _check_images(rgb: np.ndarray, thermal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    for name, image in (("rgb", rgb), ("thermal", thermal)):
        if not isinstance(image, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8, got {image.dtype}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise ValueError(f"{name} must be (H, W) or (H, W, 3), got shape {image.shape}")
    thermal = thermal[..., 0] if thermal.ndim == 3 and thermal.shape[2] == 1 else thermal
    thermal = luminance(thermal) if thermal.ndim == 3 else thermal
    rgb = rgb[..., 0] if rgb.ndim == 3 and rgb.shape[2] == 1 else rgb
    return rgb, thermal


def size_ratio_transform(rgb_size: tuple[int, int], thermal_size: tuple[int, int]) -> np.ndarray:
    """The initial thermal -> RGB transform of frames of different sizes: centre onto centre, scaled by
    the geometric mean of the width and height ratios (the same field of view on both axes)."""
    factor = math.sqrt((rgb_size[0] / thermal_size[0]) * (rgb_size[1] / thermal_size[1]))
    (th, tw), (rh, rw) = thermal_size, rgb_size
    return np.array([[factor, 0.0, (rw - 1) / 2 - factor * (tw - 1) / 2],
                     [0.0, factor, (rh - 1) / 2 - factor * (th - 1) / 2], [0.0, 0.0, 1.0]])


def _prewarp(rgb: np.ndarray, mask: np.ndarray, init: np.ndarray,
             size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RGB image and valid mask resampled into the thermal frame through ``init``."""
    warped = warp_to_thermal(rgb, init, size)
    warped_mask = warp_to_thermal(mask.astype(np.float32), init, size)
    return warped, (warped_mask > 0.999).astype(np.uint8)


class _Search:
    """The coarse-to-fine search of one pair (see the module docstring); all state of one call."""

    def __init__(self, rgb: np.ndarray, mask: np.ndarray, thermal: np.ndarray, max_shift: float) -> None:
        height, width = thermal.shape
        self.size = (height, width)
        self.max_shift = max_shift
        self.top = max(0, int(round(math.log2(width / COARSE_WIDTH))))
        # The coarse level must keep the search window well inside the frame.
        while self.top > 0 and self._radius(self.top) * 4 > min(height, width) >> self.top:
            self.top -= 1
        self.mid = max(0, self.top - 1)
        levels = self.top + 1
        self.thermal: StructurePyramid = build_pyramid(thermal, levels)
        self.rgb: StructurePyramid = build_pyramid(rgb, levels, mask)
        self.ecc_failed = False

    def _radius(self, level: int) -> int:
        return int(math.ceil(self.max_shift / 2 ** level)) + 1

    def margin(self, level: int) -> int:
        return max(2, int(math.ceil(self.max_shift / 2 ** level / 2)))

    def in_range(self, matrix: np.ndarray) -> bool:
        """Whether a full-resolution transform's centre shift lies within the search range (+1 px)."""
        dx, dy = centre_shift(matrix, self.size)
        return max(abs(dx), abs(dy)) <= self.max_shift + 1.0

    def _level(self, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.thermal.structure[level], self.rgb.structure[level], self.rgb.mask[level]

    def score(self, level: int, matrix: np.ndarray) -> float:
        st, sr, mask = self._level(level)
        return region_score(st, sr, mask, matrix, self.margin(level))

    # ---- coarse candidates ------------------------------------------------------------------

    def coarse(self, grid: list[tuple[float, float]], per_pose: int) -> list[_Candidate]:
        """Distinct coarse candidates (level ``top`` transforms) over rotation/scale ``grid``."""
        st, sr = self.thermal.coarse, self.rgb.coarse
        size = st.shape[:2]
        radius = self._radius(self.top)
        pivot = ((size[1] - 1) / 2, (size[0] - 1) / 2)
        found: list[_Candidate] = []
        for angle, factor in grid:
            pose = rotation_scale(angle, factor, *pivot)
            posed = sr if (angle, factor) == (0.0, 1.0) else warp_into_thermal(sr, pose, size)
            surface = shift_surface(st, posed, radius)
            for x, y, value in peaks(surface, per_pose, 2):
                found.append(_Candidate(pose @ translation(x - radius, y - radius), value))
        found.sort(key=lambda c: -c.ncc)
        kept: list[_Candidate] = []
        for cand in found:
            if all(max_corner_move(cand.H, other.H, size) > 1.5 for other in kept):
                kept.append(cand)
            if len(kept) == CANDIDATES:
                break
        return kept

    # ---- refinement ---------------------------------------------------------------------------

    def refine(self, level: int, matrix: np.ndarray, general: bool, angle_step: float,
               scale_step: float) -> _Candidate:
        """Local exhaustive refinement at one level: translation (+-2 px), and for ``general`` also
        rotation (+-``angle_step``) and scale (x (1 +- ``scale_step``)) with a parabolic fit."""
        st, sr, _mask = self._level(level)
        margin = self.margin(level)
        if not general:
            matrix, value = local_shift(st, sr, matrix, margin, 2, pure_shift=True)
            return _Candidate(matrix, value)
        pivot = ((st.shape[1] - 1) / 2, (st.shape[0] - 1) / 2)
        table = np.zeros((3, 3))
        tried: list[_Candidate] = []
        for i, angle in enumerate((-angle_step, 0.0, angle_step)):
            for j, power in enumerate((-1, 0, 1)):
                pose = rotation_scale(angle, (1 + scale_step) ** power, *pivot)
                moved, value = local_shift(st, sr, matrix @ pose, margin, 2, pure_shift=False)
                table[i, j] = value
                tried.append(_Candidate(moved, value))
        da = parabola_peak(*table[:, 1], limit=1.0)
        ds = parabola_peak(*table[1, :], limit=1.0)
        pose = rotation_scale(da * angle_step, (1 + scale_step) ** ds, *pivot)
        moved, value = local_shift(st, sr, matrix @ pose, margin, 2, pure_shift=False)
        tried.append(_Candidate(moved, value))
        return max(tried, key=lambda c: c.ncc)

    def descend(self, candidates: list[_Candidate], general: bool) -> tuple[_Candidate, float | None]:
        """Refine ``candidates`` (level ``top``) to full resolution and pick the best.

        Returns:
            the winner (level 0, its NCC there) and its NCC lead at level ``mid`` over the best
            candidate that ended elsewhere (``None`` when all ended at the same transform).
        """
        angle_step, scale_step = ANGLE_STEP / 2, SCALE_STEP / 2
        middle: list[tuple[_Candidate, _Candidate]] = []
        for cand in candidates:
            refined = self.refine(self.top, cand.H, general, angle_step, scale_step)
            if self.mid != self.top:
                refined = self.refine(self.mid, at_level(refined.H, 0.5), general, angle_step / 2, scale_step / 2)
            middle.append((refined, cand))
        middle.sort(key=lambda pair: -pair[0].ncc)
        finals: list[tuple[_Candidate, _Candidate, _Candidate]] = []
        for cand, origin in middle[:FINALISTS]:
            matrix, a_step, s_step = cand.H, angle_step / 4, scale_step / 4
            for level in range(self.mid - 1, -1, -1):
                matrix = self.refine(level, at_level(matrix, 0.5), general, a_step, s_step).H
                a_step, s_step = a_step / 2, s_step / 2
            # Refinement can walk a candidate from the edge of the search window out of it; such a
            # transform was never searched around, so it is not a solution.
            value = self.score(0, matrix) if self.in_range(matrix) else -1.0
            finals.append((_Candidate(matrix, value), cand, origin))
        finals.sort(key=lambda triple: -triple[0].ncc)
        winner, winner_mid, origin = finals[0]
        return winner, self._lead(winner_mid, origin, middle)

    def _lead(self, winner: _Candidate, origin: _Candidate,
              middle: list[tuple[_Candidate, _Candidate]]) -> float | None:
        """NCC lead of the winner (at level ``mid``) over the best refined candidate that ended at least
        :data:`DISTINCT` px away; without one, the lead of its coarse peak over the distinct coarse peaks;
        ``None`` when there is no distinct candidate at all."""
        size = self.thermal.structure[self.mid].shape[:2]
        others = [c.ncc for c, _ in middle if max_corner_move(c.H, winner.H, size) > DISTINCT / 2 ** self.mid]
        if others:
            return winner.ncc - max(others)
        size = self.thermal.structure[self.top].shape[:2]
        coarse = [o.ncc for _, o in middle if max_corner_move(o.H, origin.H, size) > DISTINCT / 2 ** self.top]
        return origin.ncc - max(coarse) if coarse else None

    def polish(self, cand: _Candidate, model: str, gain: float) -> _Candidate:
        if cand.ncc <= -1.0:  # no valid solution to polish
            return cand
        st, sr, mask = self._level(0)
        matrix, value, converged = ecc_step(st, sr, mask, cand.H, cand.ncc, model, self.margin(0), gain)
        if not converged and model in ("affine", "homography"):
            self.ecc_failed = True
        if not self.in_range(matrix):
            return cand
        return _Candidate(matrix, value)

    # ---- the whole search ----------------------------------------------------------------------

    def run(self, model: str, max_angle: float, max_scale: float) -> tuple[_Candidate, float | None]:
        best, lead = self.descend(self.coarse([(0.0, 1.0)], 3), general=False)
        best = self.polish(best, "shift", 0.0)
        if model == "shift":
            return best, lead
        steps_a = int(round(max_angle / ANGLE_STEP))
        steps_s = int(round(math.log(max_scale) / math.log(1 + SCALE_STEP))) if max_scale > 1 else 0
        grid = [(i * ANGLE_STEP, (1 + SCALE_STEP) ** j) for i in range(-steps_a, steps_a + 1)
                for j in range(-steps_s, steps_s + 1)]
        general, general_lead = self.descend(self.coarse(grid, 2), general=True)
        general = self.polish(general, "similarity", 0.0)
        if general.ncc > best.ncc + MODEL_GAIN:
            best, lead = general, general_lead
        if model in ("affine", "homography"):
            best = self.polish(best, "affine", MODEL_GAIN)
        if model == "homography":
            best = self.polish(best, "homography", MODEL_GAIN)
        return best, lead


def estimate(
    rgb: np.ndarray,
    thermal: np.ndarray,
    model: str = "shift",
    *,
    max_shift: float | None = None,
    max_angle: float | None = None,
    max_scale: float | None = None,
    init: np.ndarray | None = None,
    rgb_mask: np.ndarray | None = None,
) -> Registration:
    """Register one RGB image to its thermal frame (see the module docstring).

    Args:
        rgb: ``(H', W', 3)`` uint8 RGB (or ``(H', W')`` grey), any size.
        thermal: ``(H, W)`` uint8 (a 3-channel image is reduced to luminance).
        model: ``shift``, ``similarity``, ``affine`` or ``homography``.
        max_shift: search range of the shift in thermal pixels (default: 5 % of the larger thermal
            dimension, at least 8 px; 10 % when the frames differ in size), at most
            :func:`max_searchable_shift` (a quarter of the smaller thermal side).
        max_angle: rotation search range in degrees (general models; default 4).
        max_scale: scale search range, a factor > 1 (general models; default 1.06; 1.25 when the frames
            differ in size).
        init: optional initial thermal -> RGB ``(3, 3)`` transform, composed with the estimated
            correction (default: identity for frames of one size, else :func:`size_ratio_transform`).
        rgb_mask: optional ``(H', W')`` mask of the valid RGB pixels (default: :func:`valid_mask`,
            which drops a zero-filled border).

    Returns:
        a :class:`Registration`; frames that cannot be registered (flat, black or structureless
        images, too small, no overlap) come back with ``H = None`` and a status saying why, never
        as an identity.

    Raises:
        ValueError: arrays of the wrong type, dtype or shape, an unknown model or bad search ranges
            (``max_shift`` beyond :func:`max_searchable_shift`).
    """
    check_model(model)
    rgb, thermal = _check_images(rgb, thermal)
    size = (int(thermal.shape[0]), int(thermal.shape[1]))
    resized = rgb.shape[:2] != thermal.shape[:2] or init is not None
    largest = max_searchable_shift(size)
    if max_shift is None:
        max_shift = min(default_max_shift(size, resized), largest)
    else:
        max_shift = float(max_shift)
    max_angle = MAX_ANGLE if max_angle is None else float(max_angle)
    max_scale = (RESIZED_MAX_SCALE if resized else MAX_SCALE) if max_scale is None else float(max_scale)
    if not (math.isfinite(max_shift) and max_shift > 0 and math.isfinite(max_angle) and max_angle >= 0
            and math.isfinite(max_scale) and max_scale >= 1):
        raise ValueError(f"need max_shift > 0, max_angle >= 0, max_scale >= 1; got {max_shift}, {max_angle}, "
                         f"{max_scale}")
    if min(size) < MIN_SIDE or min(rgb.shape[:2]) < MIN_SIDE:
        return Registration.failed("too_small", size, model, thermal_size=size, rgb_size=rgb.shape[:2])
    if max_shift > largest:
        raise ValueError(f"max_shift {max_shift:g} px is too large for a {size[1]}x{size[0]} thermal frame: at "
                         f"most {largest:g} px (a quarter of its smaller side, so the shifted frames still "
                         "share half of it)")
    mask = valid_mask(rgb) if rgb_mask is None else (np.asarray(rgb_mask) > 0).astype(np.uint8)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"rgb_mask has shape {mask.shape}, the RGB image {rgb.shape[:2]}")
    if is_flat(thermal):
        return Registration.failed("flat_thermal", size, model)
    if is_flat(rgb, mask):
        return Registration.failed("flat_rgb", size, model)
    if structure_fraction(thermal) < MIN_STRUCTURE:
        return Registration.failed("no_structure_thermal", size, model)
    if structure_fraction(rgb, mask) < MIN_STRUCTURE:
        return Registration.failed("no_structure_rgb", size, model)
    start = np.eye(3)
    if resized:
        start = normalised(init) if init is not None else size_ratio_transform(rgb.shape[:2], size)
        rgb, mask = _prewarp(rgb, mask, start, size)
        coverage = float(mask.mean())
        if coverage < MIN_COVERAGE:
            return Registration.failed("no_overlap", size, model, coverage=round(coverage, 4))
    search = _Search(rgb, mask, thermal, max_shift)
    best, lead = search.run(model, max_angle, max_scale)
    if best.ncc <= 0:
        return Registration.failed("no_match", size, model, ncc=round(best.ncc, 4))
    details = {"ncc": round(best.ncc, 4), "lead": None if lead is None else round(lead, 4),
               "levels": search.top + 1, "max_shift": max_shift}
    if resized:
        # The transform the search started from (the frame-size ratio or ``init``): pooling compares
        # frames after it, in thermal pixels, so the model it fits keeps this part whole.
        details["init"] = [[round(float(v), 9) for v in row] for row in start]
    status = "ecc_not_converged" if search.ecc_failed else "ok"
    return Registration(start @ best.H, size, confidence(best.ncc, lead), status, model, details)
