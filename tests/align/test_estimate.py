"""Per-frame registration: recovered shifts and transforms, the sign convention, statuses on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rgbt.align import Registration, estimate
from rgbt.align.transform import centre_shift, corner_error, rotation_scale, translation
from rgbt.data.perturbation import Perturbation, apply_perturbation
from rgbt.data.sample import PairSample


def _moved(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    return cv2.warpAffine(rgb, matrix[:2], (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# ---- sign convention ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["shift:3.5,-2", "shift:-4,1.25"])
def test_perturbing_rgb_by_d_registers_d(synthetic_day_pair, spec):
    """The operator of `rgbt misalign` moves RGB by (dx, dy); registration reports (dx, dy)."""
    rgb, thermal = synthetic_day_pair
    p = Perturbation.parse(spec)
    sample = apply_perturbation(PairSample(rgb=rgb, thermal=thermal), p)
    result = estimate(sample.rgb, sample.thermal)
    assert result.status == "ok"
    assert result.dx == pytest.approx(p.dx, abs=0.3)
    assert result.dy == pytest.approx(p.dy, abs=0.3)
    # H maps a thermal pixel to the RGB pixel of the same point: the perturbation's forward matrix.
    assert np.allclose(result.H, translation(p.dx, p.dy), atol=0.3)


def test_rotation_sign_matches_the_perturbation(synthetic_day_pair):
    rgb, thermal = synthetic_day_pair
    p = Perturbation.parse("rotate:2")
    result = estimate(p.apply_to_image(rgb), thermal, "similarity")
    height, width = thermal.shape
    truth = rotation_scale(2.0, 1.0, (width - 1) / 2, (height - 1) / 2)
    assert result.ok
    assert corner_error(result.H, truth, thermal.shape) < 1.0


def test_identical_modalities_give_the_identity(synthetic_day_pair):
    _rgb, thermal = synthetic_day_pair
    result = estimate(np.repeat(thermal[..., None], 3, axis=2), thermal)
    assert result.status == "ok"
    assert abs(result.dx) < 0.05 and abs(result.dy) < 0.05
    assert result.score > 0.9


# ---- synthetic pairs with known offsets -----------------------------------------------------------


@pytest.mark.parametrize("frame_id", ["set06/V000/I00003", "set09/V000/I00003"])
def test_recovers_the_offset_of_synthetic_frames(frame_id):
    from rgbt.data.synthetic import render_frame

    for shift in ((2.25, -1.5), (-3.0, 0.75)):
        frame = render_frame(1, frame_id, width=240, height=192, max_shift=4.0, shift=shift)
        result = estimate(frame.rgb, frame.thermal)
        assert result.ok, result.status
        assert math.hypot(result.dx - shift[0], result.dy - shift[1]) < 0.5, (frame_id, shift, result.shift)


def test_a_night_frame_with_little_shared_structure_is_not_confidently_wrong():
    """A dark, noisy night RGB frame whose only clear structure is a few lit windows of a facade with a
    regular window grid: the grid offers near-equal candidates a window apart, and the noise hides
    the outlines that tell them apart. Wherever the estimate is off by more than a pixel, its score
    says so (below the low-confidence threshold the summary reports)."""
    from rgbt.data.synthetic import render_frame
    from rgbt.engine.align import LOW_CONFIDENCE

    scores = []
    for shift in ((2.25, -1.5), (-3.0, 0.75), (0.0, 0.0), (1.5, 1.5)):
        frame = render_frame(1, "set09/V000/I00004", width=240, height=192, max_shift=4.0, shift=shift)
        result = estimate(frame.rgb, frame.thermal)
        assert result.ok, result.status
        error = math.hypot(result.dx - shift[0], result.dy - shift[1])
        assert error < 1.0 or result.score < LOW_CONFIDENCE, (shift, result.shift, result.score)
        scores.append(result.score)
    # Not a frame the tool is sure about: no score reaches that of a day frame.
    assert max(scores) < 0.6, scores


def test_noise_level_and_the_coarse_blur():
    from rgbt.align.features import MAX_BLUR, SIGMA, coarse_sigma, noise_level

    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(20, 200, 128, dtype=np.float32), (96, 1))
    assert noise_level(ramp.astype(np.uint8)) < 0.5  # smooth content is not noise
    noisy = np.clip(ramp + rng.normal(0, 6, ramp.shape), 0, 255).astype(np.uint8)
    assert noise_level(noisy) == pytest.approx(6.0, rel=0.15)
    assert coarse_sigma(ramp.astype(np.uint8)) == SIGMA
    assert SIGMA < coarse_sigma(noisy) <= MAX_BLUR


# ---- real registered pairs moved by known transforms ----------------------------------------------


def test_real_pairs_moved_by_known_shifts(roadscene):
    """Each RoadScene pair moved by shifts up to 16 px: the estimate moves by the shift (0.5 px)."""
    rng = np.random.default_rng(5)
    for stem, rgb, thermal in roadscene:
        base = estimate(rgb, thermal)
        assert base.ok, stem
        for dx, dy in rng.uniform(-16, 16, size=(2, 2)):
            moved = estimate(_moved(rgb, translation(dx, dy)), thermal)
            error = math.hypot(moved.dx - base.dx - dx, moved.dy - base.dy - dy)
            assert error < 0.5, (stem, dx, dy, moved.shift, base.shift)


def test_real_pair_moved_by_a_similarity(roadscene):
    stem, rgb, thermal = roadscene[2]
    height, width = thermal.shape
    base = estimate(rgb, thermal, "affine")
    truth = rotation_scale(-2.5, 1.04, (width - 1) / 2, (height - 1) / 2) @ translation(6, -4)
    result = estimate(_moved(rgb, truth), thermal, "affine")
    assert result.ok
    assert corner_error(result.H, truth @ base.H, thermal.shape) < 2.5, stem


def test_rgb_of_another_size_uses_the_scale_path(roadscene):
    """An RGB frame 2.6x larger than the thermal frame, as FLIR ADAS v1.3's raw RGB, with an offset."""
    import cv2

    stem, rgb, thermal = roadscene[3]
    height, width = thermal.shape
    factor = 2.6
    big = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    # The big frame's pixel x shows the content of rgb pixel (x + 0.5) / factor - 0.5; shift it too.
    big = _moved(big, translation(25, -12))
    result = estimate(big, thermal, "similarity")
    base = estimate(rgb, thermal, "similarity")
    scale_up = np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1.0]])
    truth = translation(25, -12) @ scale_up @ base.H
    assert result.ok, result.status
    assert corner_error(result.H, truth, thermal.shape) < 3.0 * factor, stem
    assert centre_shift(result.H, (height, width)) == pytest.approx(centre_shift(truth, (height, width)), abs=3.0)


# ---- bad input ---------------------------------------------------------------------------------------


def test_flat_black_and_structureless_images_get_a_status(synthetic_day_pair):
    rgb, thermal = synthetic_day_pair
    black = np.zeros_like(rgb)
    assert estimate(black, thermal).status == "flat_rgb"
    assert estimate(rgb, np.full_like(thermal, 128)).status == "flat_thermal"
    dark = np.zeros((256, 256, 3), np.uint8)
    dark[100:103, 100:103] = 255  # one light in a black night frame
    result = estimate(dark, np.asarray(np.random.default_rng(0).integers(0, 255, (256, 256)), np.uint8))
    assert result.status == "no_structure_rgb"
    for failed in (estimate(black, thermal), result):
        assert failed.H is None and failed.score == 0.0 and math.isnan(failed.dx)
        assert failed.to_json()["H"] is None and failed.to_json()["dx"] is None


def test_tiny_images_and_wrong_arrays():
    assert estimate(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.uint8)).status == "too_small"
    with pytest.raises(ValueError, match="uint8"):
        estimate(np.zeros((64, 64, 3), np.float32), np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        estimate(np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="unknown registration model"):
        estimate(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8), "perspective")


def test_registration_refuses_inconsistent_states():
    with pytest.raises(ValueError, match="needs"):
        Registration(None, (10, 10), 0.5, "ok")
    with pytest.raises(ValueError, match="unknown registration status"):
        Registration(np.eye(3), (10, 10), 0.5, "fine")


def test_a_search_range_beyond_a_quarter_of_the_frame_is_refused(synthetic_day_pair):
    """A range the frame cannot hold is an error naming the largest one, never an OpenCV assertion."""
    from rgbt.align.estimate import max_searchable_shift

    rgb, thermal = synthetic_day_pair  # 240x192: a quarter of 192 is 48
    assert max_searchable_shift(thermal.shape) == 48
    assert estimate(rgb, thermal, max_shift=48).ok
    for too_large in (49, 150, 1000):
        with pytest.raises(ValueError, match="at most 48 px"):
            estimate(rgb, thermal, max_shift=too_large)
    with pytest.raises(ValueError, match="max_shift > 0"):
        estimate(rgb, thermal, max_shift=0)


def test_rgb_of_another_size_records_where_its_search_started(synthetic_day_pair):
    import cv2

    rgb, thermal = synthetic_day_pair
    same = estimate(rgb, thermal)
    assert "init" not in same.details
    big = cv2.resize(rgb, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)
    result = estimate(big, thermal)
    assert result.ok, result.status
    start = np.asarray(result.details["init"])
    assert start[0, 0] == pytest.approx(2.0) and start[1, 1] == pytest.approx(2.0)
    # the shift model keeps the size ratio: H is the start composed with a translation
    rest = np.linalg.inv(start) @ result.H
    assert rest[:2, :2] == pytest.approx(np.eye(2), abs=1e-9)

