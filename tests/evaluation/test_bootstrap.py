"""The bootstrap of the miss rate: each replicate is the evaluator run on a resampled test set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rgbt.evaluation import missrate
from tests.evaluation.test_missrate import frame


def random_test_set(n: int, seed: int):
    """``n`` frames (day and night) with 0-3 persons each and noisy detections: hits, misses, false positives."""
    rng = np.random.default_rng(seed)
    records, detections = [], []
    for i in range(n):
        set_id = 0 if i % 2 == 0 else 3  # set00 is day, set03 night
        boxes = []
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(20, 500), rng.uniform(20, 300)
            boxes.append((x, y, x + 40, y + 100))
        records.append(frame(boxes, frame_id=f"set{set_id:02d}/V000/I{i:05d}"))
        rows = []
        for box in boxes:
            if rng.random() < 0.7:
                jitter = rng.normal(0, 3, 4)
                rows.append([*(np.array(box) + jitter), rng.uniform(0.3, 1.0)])
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(20, 500), rng.uniform(20, 300)
            rows.append([x, y, x + 40, y + 100, rng.uniform(0.0, 0.8)])
        detections.append(np.asarray(rows, dtype=np.float64).reshape(-1, 5))
    return records, detections


def test_a_replicate_equals_the_evaluator_on_the_expanded_frames() -> None:
    records, detections = random_test_set(40, seed=1)
    rng = np.random.default_rng(7)
    weights = rng.integers(0, 4, size=(5, len(records)))
    matching = missrate._match(records, detections, missrate.SETUPS["reasonable"])
    got = missrate._weighted_mr(matching, np.ones(len(records), dtype=bool), weights)
    for r in range(len(weights)):
        index = [i for i in range(len(records)) for _ in range(weights[r, i])]
        want = missrate.evaluate_miss_rate([records[i] for i in index], [detections[i] for i in index]).mr
        assert got[r] == pytest.approx(want, abs=1e-12)


def test_periods_resample_their_own_frames() -> None:
    records, detections = random_test_set(60, seed=2)
    result = missrate.bootstrap_periods(records, detections, replicates=50, seed=3)
    assert set(result.samples) == {"all", "day", "night"}
    assert all(len(v) == 50 for v in result.samples.values())
    point = missrate.evaluate_periods(records, detections)
    for period in ("all", "day", "night"):
        samples = result.samples[period]
        assert 0.0 < result.sd(period) < 0.5
        # The replicates scatter around the point estimate.
        assert samples.min() <= point[period].mr + 0.05 and samples.max() >= point[period].mr - 0.05


def test_same_seed_same_spread_and_another_seed_differs() -> None:
    records, detections = random_test_set(30, seed=4)
    a = missrate.bootstrap_periods(records, detections, replicates=20, seed=0)
    b = missrate.bootstrap_periods(records, detections, replicates=20, seed=0)
    c = missrate.bootstrap_periods(records, detections, replicates=20, seed=1)
    np.testing.assert_array_equal(a.samples["all"], b.samples["all"])
    assert not np.array_equal(a.samples["all"], c.samples["all"])


def test_identical_frames_have_no_spread() -> None:
    records = [frame([(100, 100, 140, 200)], frame_id=f"set00/V000/I{i:05d}") for i in range(10)]
    detections = [np.array([[100, 100, 140, 200, 0.9], [300, 100, 340, 200, 0.5]])] * 10
    result = missrate.bootstrap_periods(records, detections, replicates=10)
    assert result.sd("all") == 0.0
    assert math.isnan(result.sd("night"))  # no night frame


def test_no_detection_is_a_full_miss_in_every_replicate() -> None:
    records, _ = random_test_set(20, seed=5)
    result = missrate.bootstrap_periods(records, [np.zeros((0, 5))] * 20, replicates=5)
    finite = result.samples["all"][np.isfinite(result.samples["all"])]
    np.testing.assert_array_equal(finite, 1.0)


def test_needs_two_replicates() -> None:
    records, detections = random_test_set(4, seed=6)
    with pytest.raises(ValueError, match="at least 2 replicates"):
        missrate.bootstrap_periods(records, detections, replicates=1)
