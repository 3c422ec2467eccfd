"""Validation inside train-detector scores the persons KAIST would keep, at any frame size."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rgbt.data.source import open_source
from rgbt.data.synthetic import generate_synthetic
from rgbt.engine.detector_training import build_evaluation
from rgbt.evaluation.missrate import SETUPS, evaluate_periods, frame_setup, with_frame_size


class Replay(nn.Module):
    """A stand-in detector answering frame after frame with given ``(M, 4)`` boxes (score 1, label 1)."""

    def __init__(self, boxes: list[np.ndarray]) -> None:
        super().__init__()
        self.boxes = boxes
        self.calls = 0
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for _image in images:
            boxes = torch.as_tensor(self.boxes[self.calls % len(self.boxes)], dtype=torch.float32).reshape(-1, 4)
            self.calls += 1
            out.append({"boxes": boxes, "scores": torch.ones(len(boxes)),
                        "labels": torch.ones(len(boxes), dtype=torch.int64)})
        return out


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 test frames of 160x128: KAIST's unscaled 55 px threshold keeps few of their persons."""
    return generate_synthetic(tmp_path_factory.mktemp("val") / "root", 0, 12, seed=3, width=160, height=128,
                              progress=False)


def test_validation_scales_the_reasonable_setup_to_the_frame(small_root: Path, caplog) -> None:
    source = open_source(small_root, "test")
    records = with_frame_size([source.annotations(i) for i in range(len(source))], (128, 160))
    none = [np.zeros((0, 5))] * len(records)
    scaled = evaluate_periods(records, none, frame_setup("reasonable", 128))["all"].n_positives
    unscaled = evaluate_periods(records, none, "reasonable")["all"].n_positives
    assert scaled > 2 * max(unscaled, 1)

    # The detector finds exactly the persons shorter than 55 px: positives only once the setup is scaled.
    small = [r.boxes[[label == "person" and b[3] - b[1] < 55 for label, b in zip(r.labels, r.boxes)]]
             for r in records]
    expected = evaluate_periods(records, [np.hstack([b, np.ones((len(b), 1))]) for b in small],
                                frame_setup("reasonable", 128))
    with caplog.at_level(logging.INFO, logger="rgbt.engine.detector_training"):
        evaluate, metric, lower = build_evaluation(source, "kaist", ["rgb", "thermal"], ["person"],
                                                   torch.device("cpu"), 4)
    assert metric == "mr_all" and lower
    assert f"validation: {scaled} 'reasonable' positives (heights >= 13.8 px" in caplog.text
    metrics = evaluate(Replay(small))
    assert metrics["mr_all"] == pytest.approx(expected["all"].mr * 100)
    assert metrics["mr_day"] == pytest.approx(expected["day"].mr * 100)
    assert metrics["mr_all"] < 60
    # The blind detector misses every scaled positive.
    assert evaluate(Replay([np.zeros((0, 4))]))["mr_all"] == pytest.approx(100.0)
    assert SETUPS["reasonable"].height[0] == 55.0  # the named setup itself is unchanged
