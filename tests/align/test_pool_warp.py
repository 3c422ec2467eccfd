"""Sequence pooling, warping into the thermal frame, the transform conventions and the valid mask."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rgbt.align import Registration, boxes_to_thermal, pool_registrations, sequence_of, warp_to_thermal
from rgbt.align.features import valid_mask
from rgbt.align.pool import fit_model
from rgbt.align.transform import (
    at_level,
    centre_shift,
    corner_error,
    corners,
    nearest_similarity,
    rotation_scale,
    translation,
)
from rgbt.data.perturbation import Perturbation, rotate_image, scale_image, shift_image, transform_boxes

SIZE = (60, 80)


def _reg(dx: float, dy: float, score: float = 0.8) -> Registration:
    return Registration(translation(dx, dy), SIZE, score, "ok")


# ---- transform conventions ------------------------------------------------------------------------


def test_centre_shift_and_levels():
    height, width = SIZE
    rot = rotation_scale(3.0, 1.1, (width - 1) / 2, (height - 1) / 2)
    assert centre_shift(rot, SIZE) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert centre_shift(translation(2, -1) @ rot, SIZE) == pytest.approx((2.0, -1.0))
    half = at_level(translation(4, -2), 2.0)
    assert half[0, 2] == pytest.approx(2.0) and half[1, 2] == pytest.approx(-1.0)
    assert np.allclose(at_level(at_level(rot, 2.0), 0.5), rot)


def test_nearest_similarity_keeps_the_pivot():
    pivot = np.array([39.5, 29.5])
    affine = np.array([[1.02, 0.03, 5.0], [-0.01, 0.99, -2.0], [0, 0, 1.0]])
    similar = nearest_similarity(affine, pivot)
    assert similar[0, 0] == pytest.approx(similar[1, 1]) and similar[0, 1] == pytest.approx(-similar[1, 0])
    assert np.allclose(similar[:2] @ [*pivot, 1], affine[:2] @ [*pivot, 1])


# ---- pooling -----------------------------------------------------------------------------------------


def test_pooling_is_robust_to_a_minority_of_wrong_frames():
    frames = [_reg(2.0 + 0.1 * k, -1.0) for k in range(5)] + [_reg(15.0, 9.0), _reg(-20.0, 3.0, 0.9)]
    pooled = pool_registrations(frames)
    assert pooled.registration.status == "ok"
    assert pooled.registration.dx == pytest.approx(2.2, abs=0.11)
    assert pooled.registration.dy == pytest.approx(-1.0)
    assert pooled.outliers == [5, 6]
    assert 0 < pooled.registration.score < 0.8


def test_pooling_weights_by_confidence_and_skips_failed_frames():
    frames = [_reg(1.0, 0.0, 0.9), _reg(1.0, 0.0, 0.9), _reg(6.0, 0.0, 0.1), _reg(6.0, 0.0, 0.1),
              _reg(6.0, 0.0, 0.1), Registration.failed("flat_rgb", SIZE)]
    pooled = pool_registrations(frames)
    assert pooled.registration.dx == pytest.approx(1.0)
    assert math.isnan(pooled.distances[5]) and 5 not in pooled.used and 5 not in pooled.outliers


def test_pooling_without_any_transform_and_bad_input():
    pooled = pool_registrations([Registration.failed("no_structure_rgb", SIZE)] * 3)
    assert pooled.registration.status == "no_match" and pooled.registration.H is None
    with pytest.raises(ValueError, match="no registrations"):
        pool_registrations([])
    with pytest.raises(ValueError, match="different thermal sizes"):
        pool_registrations([_reg(0, 0), Registration(np.eye(3), (10, 10), 0.5, "ok")])


@pytest.mark.parametrize("model", ["shift", "similarity"])
def test_pooling_rgb_of_another_size_keeps_the_size_ratio(model):
    """Frames whose search started from the size ratio (RGB 2x the thermal frame) pool after it: the
    pooled transform is that start composed with the pooled rest, in thermal pixels."""
    start = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
    shifts = [(3.0, -1.0), (3.2, -1.1), (2.9, -0.8), (3.1, -1.0), (-7.0, 5.0)]  # one wrong frame
    regs = [Registration(start @ translation(dx, dy), SIZE, 0.8, "ok", model, {"init": start.tolist()})
            for dx, dy in shifts]
    pooled = pool_registrations(regs, model)
    assert pooled.registration.H == pytest.approx(start @ translation(3.0, -1.0), abs=1e-6)
    assert pooled.outliers == [4]
    assert pooled.distances[1] == pytest.approx(np.hypot(0.2, 0.1), abs=1e-6)  # thermal pixels, not RGB pixels
    assert pooled.registration.details["init"] == start.tolist()


@pytest.mark.parametrize("model", ["shift", "similarity", "affine", "homography"])
def test_fit_model_recovers_its_own_transform(model):
    height, width = SIZE
    pivot = np.array([(width - 1) / 2, (height - 1) / 2])
    truth = {"shift": translation(3, -2), "similarity": rotation_scale(2, 1.05, *pivot) @ translation(1, 1),
             "affine": np.array([[1.02, 0.01, 3], [0.02, 0.97, -1], [0, 0, 1.0]]),
             "homography": np.array([[1.02, 0.01, 3], [0.02, 0.97, -1], [1e-4, -2e-4, 1.0]])}[model]
    points = corners(SIZE)
    mapped = np.array([truth @ [*p, 1] for p in points])
    fitted = fit_model(points, mapped[:, :2] / mapped[:, 2:], model, pivot)
    assert corner_error(fitted, truth, SIZE) < 1e-3


def test_sequences():
    assert sequence_of("set06/V001/I00459") == "set06/V001"
    assert sequence_of("set06_V001_I00459") == "set06/V001"
    assert sequence_of("video-BzZspxAweF8AnKhWK-frame-000745-SSCRtAHcFjphNPczJ") == "video-BzZspxAweF8AnKhWK"
    assert sequence_of("FLIR_00002", "train") == "train"


# ---- warping -------------------------------------------------------------------------------------------


def test_warping_undoes_a_perturbation():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (*SIZE, 3)).astype(np.uint8)
    p = Perturbation.parse("shift:3,-2")
    moved = p.apply_to_image(rgb)
    back = warp_to_thermal(moved, translation(3, -2), SIZE)
    # back(x) = moved(x + (3, -2)) = rgb(x), exactly, except where that content had left the frame
    assert np.array_equal(back[2:, :-3], rgb[2:, :-3])
    assert not back[:2].any() and not back[:, -3:].any()


def test_boxes_follow_the_warp():
    height, width = SIZE
    boxes = np.array([[10, 12, 30, 40], [50, 5, 60, 25]], np.float32)
    p = Perturbation.parse("scale:1.1")
    moved = transform_boxes(boxes, p, SIZE)  # the boxes of the scaled RGB image
    matrix = rotation_scale(0.0, 1.1, (width - 1) / 2, (height - 1) / 2)
    assert np.allclose(boxes_to_thermal(moved, matrix), boxes, atol=1e-4)
    assert np.allclose(boxes_to_thermal(boxes + [4, -3, 4, -3], translation(4, -3)), boxes)
    assert boxes_to_thermal(np.zeros((0, 4)), np.eye(3)).shape == (0, 4)


def test_warping_a_large_rgb_frame_averages_it_down():
    big = np.zeros((300, 400, 3), np.uint8)
    big[:, 1::2] = 255  # a one-pixel stripe pattern that a plain bilinear warp would alias
    factor = 4.0
    matrix = np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1.0]])
    small = warp_to_thermal(big, matrix, (60, 80))
    assert abs(float(small[5:-5, 5:-5].mean()) - 127.5) < 2 and float(small[5:-5, 5:-5].std()) < 2


# ---- the valid mask -------------------------------------------------------------------------------------


def test_valid_mask_drops_warp_fill_but_not_dark_content():
    rng = np.random.default_rng(1)
    rgb = rng.integers(20, 255, (120, 160, 3)).astype(np.uint8)
    for moved in (shift_image(rgb, 6, -4), rotate_image(rgb, 3), scale_image(rgb, 0.9)):
        mask = valid_mask(moved)
        assert not (mask.astype(bool) & (moved.max(axis=2) == 0)).any()
        assert mask.mean() > 0.6
    night = rgb.copy()
    night[:40] = 0  # a black sky ...
    night[20:40, 30:50] = 200  # ... with a lit building reaching into it
    assert valid_mask(night).all()
    assert valid_mask(rgb).all()
