"""Per-person contrast: hand-built frames with a known d', the hot-background share, the real fixture."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rgbt.data.sample import PairSample
from rgbt.evaluation.contrast import (
    FrameContrast,
    box_regions,
    d_prime,
    frame_contrast,
    grey_levels,
    measure_contrast,
    summarise,
)

#: 128x128 frames, so the scaled reasonable setup keeps persons of 13.75 px and up; this box is
#: 16 wide and 32 high: core x 24..32, ring x 12..44 and y 2..50.
H, W = 128, 128
BOX = (20.0, 10.0, 36.0, 42.0)


def checker(shape: tuple[int, int]) -> np.ndarray:
    """+1 / -1 checkerboard: every even-sized rectangle holds as many of each (mean 0, variance 1)."""
    yy, xx = np.indices(shape)
    return np.where((yy + xx) % 2 == 0, 1.0, -1.0)


def known_contrast_image(contrast: float) -> np.ndarray:
    """Background 100 +- 10 everywhere, the core 100 + ``contrast`` +- 10, the box sides (neither core nor
    ring) 255 so that counting them would show: d' = contrast / 10 exactly."""
    image = 100.0 + 10.0 * checker((H, W))
    image[10:42, 20:24] = 255
    image[10:42, 32:36] = 255
    image[10:42, 24:32] += contrast
    return np.clip(image, 0, 255).astype(np.uint8)


def sample(thermal: np.ndarray | None, rgb: np.ndarray | None, boxes=(BOX,), labels=None, period="day") -> PairSample:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    frame_id = "set06/V000/I00000" if period == "day" else "set09/V000/I00000"
    n = len(boxes)
    return PairSample(rgb, thermal, boxes, labels or ["person"] * n, ignore=[False] * n, occlusion=[0] * n,
                      meta={"frame_id": frame_id, "period": period})


def test_regions_are_the_central_half_and_a_half_width_ring() -> None:
    core, ring = box_regions(BOX, (H, W))
    ys, xs = np.nonzero(core)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (24, 31, 10, 41)
    ys, xs = np.nonzero(ring)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (12, 43, 2, 49)
    assert ring.sum() == 32 * 48 - 16 * 32 and not (ring & core).any()
    # Clipped at the frame edge.
    _core, ring = box_regions((0.0, 0.0, 16.0, 32.0), (H, W))
    assert ring.sum() == 24 * 40 - 16 * 32


@pytest.mark.parametrize("contrast", [30.0, -20.0, 5.0])
def test_d_prime_of_a_hand_built_thermal_frame(contrast: float) -> None:
    measured = frame_contrast(sample(known_contrast_image(contrast), None))
    assert measured.d_prime["thermal"] == [pytest.approx(contrast / 10.0)]
    assert "rgb" not in measured.d_prime


def test_rgb_is_measured_on_its_luma() -> None:
    grey = known_contrast_image(30.0)
    rgb = np.stack([grey] * 3, axis=-1)
    np.testing.assert_array_equal(grey_levels(rgb), grey.astype(np.float32))
    measured = frame_contrast(sample(grey, rgb))
    assert measured.d_prime["rgb"] == [pytest.approx(3.0)] and measured.d_prime["thermal"] == [pytest.approx(3.0)]
    # Pure red and pure blue of the same sum differ in luma (BT.601 weighs red 0.299, blue 0.114).
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 2] = 200
    assert grey_levels(red).mean() == pytest.approx(60, abs=1) and grey_levels(blue).mean() == pytest.approx(23, abs=1)
    with pytest.raises(ValueError, match="shape"):
        grey_levels(np.zeros((4, 4, 2), np.uint8))


def test_flat_or_empty_regions_give_nan() -> None:
    assert math.isnan(d_prime(np.full(10, 5.0), np.full(10, 5.0)))
    assert math.isnan(d_prime(np.zeros(0), np.ones(3)))
    assert d_prime(np.array([1.0, 3.0]), np.array([0.0, 2.0])) == pytest.approx(1.0)


def test_only_reasonable_persons_are_measured() -> None:
    image = known_contrast_image(30.0)
    boxes = [BOX, (60, 10, 66, 22), (80, 10, 96, 42), (1, 60, 17, 92)]  # person, too small, people, at border
    measured = frame_contrast(sample(image, None, boxes, ["person", "person", "people", "person"]))
    assert measured.d_prime["thermal"] == [pytest.approx(3.0)]


def test_background_as_hot_as_a_person() -> None:
    thermal = np.full((H, W), 50, np.uint8)
    thermal[10:42, 24:32] = 150  # the person's core: 90th percentile 150
    thermal[100:110, 100:120] = 160  # 200 hot background pixels
    thermal[100:110, 60:80] = 150  # as hot, not hotter: not counted
    thermal[12:20, 80:90] = 200  # inside another annotated box: not background
    measured = frame_contrast(sample(thermal, None, [BOX, (78, 10, 94, 42)], ["person", "cyclist"]))
    assert measured.background == H * W - 16 * 32 - 16 * 32
    assert measured.hot_background == 200
    empty = frame_contrast(sample(thermal, None, [], []))
    assert empty.background == 0 and empty.d_prime == {"thermal": []}


def test_summary_per_period() -> None:
    frames = [
        FrameContrast("a", "day", {"thermal": [0.5, 2.0, math.nan], "rgb": [-0.4, -0.2, 1.5]}, 10, 1000),
        FrameContrast("b", "day", {"thermal": [0.7], "rgb": [0.6]}, 30, 1000),
        FrameContrast("c", "night", {"thermal": [3.0]}, 0, 1000),
    ]
    summary = summarise(frames)
    day = summary["day"]
    assert day["thermal"].persons == 3 and day["thermal"].median_d == pytest.approx(0.7)
    assert day["thermal"].low_contrast == pytest.approx(2 / 3) and day["thermal"].hot_background == pytest.approx(0.02)
    assert day["rgb"].median_d == pytest.approx(0.2) and day["rgb"].median_abs_d == pytest.approx(0.5)
    assert day["rgb"].hot_background is None
    assert set(summary["night"]) == {"thermal"} and summary["night"]["thermal"].hot_background == 0.0
    assert summary["all"]["thermal"].persons == 4
    assert summary["day"]["thermal"].as_dict()["persons"] == 3


def test_real_kaist_fixture_frames(shared_data: Path) -> None:
    """The numbers the benchmark's targets are stated in (datasets/synthetic/README.md)."""
    from rgbt.data.source import open_source

    source = open_source(shared_data / "kaist", "fixture-test")
    summary = measure_contrast(source[i] for i in range(len(source)))
    day, night = summary["day"], summary["night"]
    assert (day["thermal"].persons, night["thermal"].persons) == (26, 9)
    assert day["thermal"].median_d == pytest.approx(0.67, abs=0.01)
    assert night["thermal"].median_d == pytest.approx(0.93, abs=0.01)
    assert day["thermal"].low_contrast == pytest.approx(19 / 26)
    assert day["rgb"].median_abs_d == pytest.approx(0.45, abs=0.01)
    assert day["thermal"].hot_background == pytest.approx(0.044, abs=0.001)
