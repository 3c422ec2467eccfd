"""Scoring result files: setup scaling, legend names and the metric choice."""

from __future__ import annotations

import pytest

from rgbt.evaluation.missrate import SETUPS, height_scaled
from rgbt.evaluation.scoring import legend_names, score_results


def test_height_scaled_keeps_the_name_at_scale_one() -> None:
    assert height_scaled("reasonable", 1.0) == "reasonable"
    assert height_scaled("no-such-setup", 1.0) == "no-such-setup"  # checked where it is evaluated
    half = height_scaled("reasonable", 0.5)
    assert half.height == (SETUPS["reasonable"].height[0] * 0.5, SETUPS["reasonable"].height[1] * 0.5)
    with pytest.raises(ValueError, match="unknown setup 'near-ish'"):
        height_scaled("near-ish", 0.5)


def test_legend_names_are_short_and_distinct() -> None:
    assert legend_names(["a/x.txt", "b/y.json"]) == ["x", "y"]
    assert legend_names(["a/x.txt", "b/x.json"]) == ["x.txt", "x.json"]
    assert legend_names(["a/x.txt", "b/x.txt"]) == ["a/x.txt", "b/x.txt"]


def test_options_of_the_other_metric_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown metric 'ap'"):
        score_results(tmp_path, [], "ap")
    with pytest.raises(ValueError, match="apply to the miss-rate metric only"):
        score_results(tmp_path, [], "coco", setups=["near"])
    with pytest.raises(ValueError, match="applies to the coco metric only"):
        score_results(tmp_path, [], "missrate", classes=["person"])
