"""Perturbation operators: exact shifts, documented signs, one modality at a time, text forms."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgbt.data.perturbation import (
    Perturbation,
    apply_perturbation,
    blackout,
    border_width,
    rotate_image,
    scale_image,
    shift_image,
    transform_boxes,
)
from rgbt.data.sample import PairSample


def _random(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, size=shape, dtype=np.uint8)


def _reference_shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[y, x] = image[y - dy, x - dx]`` pixel by pixel, 0 outside."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                out[y, x] = image[y - dy, x - dx]
    return out


def _extent(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(col_min, row_min, col_max, row_max)`` of the nonzero pixels."""
    rows, cols = np.nonzero(image if image.ndim == 2 else image.any(axis=-1))
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def _sample(seed: int = 0) -> PairSample:
    boxes = np.array([[10, 8, 30, 48], [40, 10, 60, 40]], dtype=np.float32)
    return PairSample(
        rgb=_random((64, 80, 3), seed), thermal=_random((64, 80), seed + 1), boxes=boxes,
        labels=["person", "person"], ignore=[0, 0], occlusion=[0, 0],
        fake_rgb=_random((64, 80, 3), seed + 2), boxes_rgb=boxes + 1.0,
        meta={"frame_id": "set06/V000/I00001", "period": "day"},
    )


# ------------------------------------------------------------------------------------------
# shift
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(12, 15), (12, 15, 3), (12, 15, 1), (12, 15, 6)])
@pytest.mark.parametrize("dx,dy", [(3, 0), (0, -2), (-4, 5), (2.0, -1.0), (15, 0), (0, -12), (-30, 40)])
def test_integer_shift_is_exact_slicing(shape, dx, dy) -> None:
    image = _random(shape)
    out = shift_image(image, dx, dy)
    assert out.dtype == image.dtype and out.shape == image.shape
    np.testing.assert_array_equal(out, _reference_shift(image, int(dx), int(dy)))


@pytest.mark.parametrize("shape", [(12, 15), (12, 15, 3)])
def test_zero_shift_is_an_identical_copy(shape) -> None:
    image = _random(shape)
    out = shift_image(image, 0, 0.0)
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


@pytest.mark.parametrize("dx,dy", [(5, -3), (-7, 4), (0, 9)])
def test_shift_moves_a_drawn_rectangle_right_and_down(dx, dy) -> None:
    image = np.zeros((64, 80, 3), dtype=np.uint8)
    image[20:30, 30:40] = 200  # cols 30..39, rows 20..29
    assert _extent(shift_image(image, dx, dy)) == (30 + dx, 20 + dy, 39 + dx, 29 + dy)


def test_half_pixel_shift_is_the_bilinear_average() -> None:
    image = np.zeros((8, 10), dtype=np.uint8)
    image[:, 4], image[:, 5], image[:, 6] = 100, 40, 220
    row = shift_image(image, 0.5, 0)[3]
    # out[x] = (in[x - 1] + in[x]) / 2 with zero fill
    np.testing.assert_array_equal(row[3:9], [0, 50, 70, 130, 110, 0])
    # upwards: out[y] = (in[y] + in[y + 1]) / 2
    col = shift_image(image.T.copy(), 0, -0.5)[:, 3]
    np.testing.assert_array_equal(col[2:8], [0, 50, 70, 130, 110, 0])
    odd = np.full((4, 4, 3), 7, dtype=np.uint8)
    odd[:, 1] = 10
    assert abs(int(shift_image(odd, 0.5, 0)[1, 1, 0]) - 8.5) <= 0.5  # uint8 rounds the half


def test_bad_shift_arguments_raise() -> None:
    with pytest.raises(ValueError, match="finite"):
        shift_image(np.zeros((4, 4), np.uint8), float("nan"), 0)
    with pytest.raises(ValueError, match="shape"):
        shift_image(np.zeros((4,), np.uint8), 1, 0)


# ------------------------------------------------------------------------------------------
# rotate, scale, blackout
# ------------------------------------------------------------------------------------------


def test_rotate_turns_counter_clockwise_as_displayed_about_the_centre() -> None:
    image = np.zeros((65, 65), dtype=np.uint8)  # centre pixel (32, 32)
    image[32, 52] = 255  # 20 px right of the centre
    out = rotate_image(image, 90)
    assert out[12, 32] == 255 and out.sum() == 255  # now 20 px above it
    out = rotate_image(image, -90)
    assert out[52, 32] == 255 and out.sum() == 255


def test_scale_about_the_centre_with_zero_fill() -> None:
    image = np.zeros((65, 65), dtype=np.uint8)
    image[32, 40] = 255
    out = scale_image(image, 2.0)
    assert out[32, 48] == 255
    shrunk = scale_image(np.full((64, 80, 3), 90, np.uint8), 0.5)
    assert (shrunk[:10] == 0).all() and (shrunk[:, -15:] == 0).all() and (shrunk[32, 40] == 90).all()
    with pytest.raises(ValueError, match="> 0"):
        scale_image(image, 0)


@pytest.mark.parametrize("operator,neutral", [(rotate_image, 0), (scale_image, 1)])
def test_neutral_rotation_and_scale_are_identical_copies(operator, neutral) -> None:
    image = _random((16, 20, 3))
    out = operator(image, neutral)
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


@pytest.mark.parametrize("p", [Perturbation("scale", scale=1.5), Perturbation("scale", scale=0.7),
                               Perturbation("rotate", angle=90), Perturbation("shift", dx=6, dy=-4)])
def test_transform_boxes_follows_the_image_content(p) -> None:
    image = np.zeros((64, 80), dtype=np.uint8)
    image[16:46, 26:50] = 255  # the box [26, 16, 50, 46] in continuous pixel coordinates
    box = np.array([[26, 16, 50, 46]], dtype=np.float32)
    moved = transform_boxes(box, p, (64, 80))[0]
    c0, r0, c1, r1 = _extent(p.apply_to_image(image) > 127)
    np.testing.assert_allclose(moved, [c0, r0, c1 + 1, r1 + 1], atol=1.0)


def test_blackout_regions() -> None:
    image = _random((64, 80, 3))
    assert not blackout(image, "all").any()
    left = blackout(image, "left")  # round(80 / 3) = 27 columns
    assert not left[:, :27].any() and np.array_equal(left[:, 27:], image[:, 27:])
    right = blackout(image, "right")
    assert not right[:, 53:].any() and np.array_equal(right[:, :53], image[:, :53])
    border = blackout(image, "border")
    b = border_width(64, 80)
    assert b == 8 and border_width(512, 640) == 64
    assert not border[:b].any() and not border[-b:].any() and not border[:, :b].any() and not border[:, -b:].any()
    np.testing.assert_array_equal(border[b:-b, b:-b], image[b:-b, b:-b])
    assert image.all()  # the input is untouched
    with pytest.raises(ValueError, match="middle"):
        blackout(image, "middle")


# ------------------------------------------------------------------------------------------
# Perturbation text form
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("shift:4,-2", Perturbation("shift", "rgb", dx=4, dy=-2)),
    ("shift:0.5,0:thermal", Perturbation("shift", "thermal", dx=0.5)),
    (" rotate:2 ", Perturbation("rotate", angle=2)),
    ("rotate:-1.5:fake_rgb", Perturbation("rotate", "fake_rgb", angle=-1.5)),
    ("scale:1.05:rgb", Perturbation("scale", scale=1.05)),
    ("blackout:border:thermal", Perturbation("blackout", "thermal", region="border")),
    ("blackout:all", Perturbation("blackout", region="all")),
])
def test_parse_and_str_round_trip(text, expected) -> None:
    p = Perturbation.parse(text)
    assert p == expected
    assert Perturbation.parse(str(p)) == p
    assert str(p).endswith(":" + p.modality)


def test_str_is_compact() -> None:
    assert str(Perturbation.parse("shift:4.0,-2")) == "shift:4,-2:rgb"
    assert str(Perturbation.parse("scale:0.95:thermal")) == "scale:0.95:thermal"


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.sampled_from(["rgb", "thermal", "fake_rgb"]))
def test_shift_text_round_trips_exactly(dx, dy, modality) -> None:
    p = Perturbation("shift", modality, dx=dx, dy=dy)
    assert Perturbation.parse(str(p)) == p


@pytest.mark.parametrize("text", [
    "", "shift", "shift:4", "shift:a,b", "shift:1,2,3", "shift:1,2:ir", "shift:1,2:rgb:x", "twist:3",
    "rotate:nan", "rotate:", "scale:0", "scale:-1", "blackout:middle", "blackout:1",
])
def test_parse_errors_name_the_text(text) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        Perturbation.parse(text)


def test_constructor_rejects_fields_of_another_kind() -> None:
    with pytest.raises(ValueError, match="angle"):
        Perturbation("shift", angle=3)
    with pytest.raises(ValueError, match="region"):
        Perturbation("rotate", angle=3, region="all")
    with pytest.raises(ValueError, match="kind"):
        Perturbation("twist")
    with pytest.raises(ValueError, match="modality"):
        Perturbation("shift", "ir", dx=1)


# ------------------------------------------------------------------------------------------
# apply_perturbation
# ------------------------------------------------------------------------------------------


def test_rgb_shift_moves_rgb_and_its_boxes_only() -> None:
    sample = _sample()
    rgb, boxes, boxes_rgb = sample.rgb.copy(), sample.boxes.copy(), sample.boxes_rgb.copy()
    out = apply_perturbation(sample, Perturbation.parse("shift:4,-2:rgb"))
    np.testing.assert_array_equal(out.rgb, shift_image(rgb, 4, -2))
    np.testing.assert_array_equal(out.boxes_rgb, boxes_rgb + [4, -2, 4, -2])
    np.testing.assert_array_equal(out.boxes, boxes)
    assert out.thermal is sample.thermal and out.fake_rgb is sample.fake_rgb
    assert out.meta["perturbations"] == ["shift:4,-2:rgb"]
    # the input sample is untouched
    np.testing.assert_array_equal(sample.rgb, rgb)
    np.testing.assert_array_equal(sample.boxes_rgb, boxes_rgb)
    assert "perturbations" not in sample.meta


@pytest.mark.parametrize("text", ["rotate:3", "scale:1.1", "shift:0.5,1.5"])
def test_rgb_perturbation_leaves_thermal_and_fake_rgb_bit_identical(text) -> None:
    sample = _sample()
    thermal, fake = sample.thermal.copy(), sample.fake_rgb.copy()
    out = apply_perturbation(sample, Perturbation.parse(text))
    np.testing.assert_array_equal(out.thermal, thermal)
    np.testing.assert_array_equal(out.fake_rgb, fake)
    assert not np.array_equal(out.rgb, sample.rgb)


@pytest.mark.parametrize("text", ["rotate:3:thermal", "scale:0.9:thermal", "shift:-3,2:thermal"])
def test_thermal_perturbation_moves_fake_rgb_too_but_no_boxes(text) -> None:
    sample = _sample()
    rgb = sample.rgb.copy()
    p = Perturbation.parse(text)
    out = apply_perturbation(sample, p)
    np.testing.assert_array_equal(out.rgb, rgb)
    np.testing.assert_array_equal(out.thermal, p.apply_to_image(sample.thermal))
    np.testing.assert_array_equal(out.fake_rgb, p.apply_to_image(sample.fake_rgb))
    np.testing.assert_array_equal(out.boxes, sample.boxes)
    np.testing.assert_array_equal(out.boxes_rgb, sample.boxes_rgb)


def test_fake_rgb_perturbation_touches_only_fake_rgb() -> None:
    sample = _sample()
    out = apply_perturbation(sample, Perturbation.parse("shift:2,0:fake_rgb"))
    assert out.rgb is sample.rgb and out.thermal is sample.thermal
    np.testing.assert_array_equal(out.fake_rgb, shift_image(sample.fake_rgb, 2, 0))


def test_blackout_keeps_boxes_and_missing_parts_stay_missing() -> None:
    sample = _sample()
    out = apply_perturbation(sample, Perturbation.parse("blackout:left"))
    np.testing.assert_array_equal(out.boxes_rgb, sample.boxes_rgb)
    assert not out.rgb[:, :27].any()
    bare = PairSample(rgb=None, thermal=sample.thermal, boxes=sample.boxes, labels=sample.labels,
                      ignore=sample.ignore, occlusion=sample.occlusion)
    out = apply_perturbation(bare, Perturbation.parse("rotate:2"))
    assert out.rgb is None and out.boxes_rgb is None
    twice = apply_perturbation(apply_perturbation(sample, Perturbation.parse("blackout:left:rgb")),
                               Perturbation.parse("blackout:right:thermal"))
    assert twice.meta["perturbations"] == ["blackout:left:rgb", "blackout:right:thermal"]
    assert not twice.thermal[:, 53:].any() and twice.thermal[:, :53].all()
