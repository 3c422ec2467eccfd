"""`rgbt train-detector` with `model.align: rfa` on paired synthetic data, then `rgbt detect` on its checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rgbt.cli import main
from rgbt.evaluation.detections import read_aggregated_txt

TINY = Path(__file__).resolve().parents[2] / "configs" / "detector" / "tiny.yaml"
RFA = Path(__file__).resolve().parents[2] / "configs" / "detector" / "kaist_rfa.yaml"


@pytest.fixture(scope="module")
def paired_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training and 2 test frames of 160x128 with KAIST-Paired annotations."""
    from rgbt.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("rfa") / "root", 4, 2, seed=1, width=160, height=128,
                              progress=False)


@pytest.mark.parametrize("align", ["rfa", "rfa_region"])
def test_rfa_trains_on_paired_boxes_with_shift_augmentation_and_detects(paired_root: Path, tmp_path: Path,
                                                                        align: str) -> None:
    """The whole command-line path (train, checkpoint, rebuild, detect): as long as the other CLI training tests."""
    out = tmp_path / "run"
    assert main(["train-detector", "--config", str(TINY), "--data", str(paired_root), "--out", str(out),
                 "--set", f"model.align={align}", "--set", "augment.shift_rgb=3", "--set", "train.max_steps=2",
                 # 160x128 frames: people are under the default 50 px training height.
                 "--set", "ignore.min_height=0", "--set", "model.score_thresh=0.0",
                 "--set", "model.roi_batch_size=64"]) == 0
    with (out / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and "loss_offset" in rows[0]
    # Paired boxes reach the offset loss (it is exactly 0 only without them).
    assert any(float(row["loss_offset"]) > 0 for row in rows)
    results = tmp_path / "det.txt"
    assert main(["detect", "--checkpoint", str(out / "last.pt"), "--data", str(paired_root), "--image-set", "test",
                 "--out", str(results), "--workers", "0"]) == 0
    assert sum(len(rows) for rows in read_aggregated_txt(results, 2)) > 0

    # The offset error against the paired boxes; a head predicting no offset is off by the true offsets.
    import torch

    from rgbt.data.perturbation import Perturbation
    from rgbt.data.source import open_source
    from rgbt.engine.inference import load_detector
    from rgbt.engine.offsets import offset_errors

    detector = load_detector(out / "last.pt", "cpu")
    assert detector.model.align.region == (align == "rfa_region")
    source = open_source(paired_root, "test")
    moved = offset_errors(detector, source, [Perturbation.parse("shift:4,0")])
    assert moved["objects"] == sum(len(source.annotations(i).boxes) for i in range(len(source)))
    assert {"median", "p95", "max", "within_1px", "true_median"} <= set(moved) and moved["true_median"] > 2
    torch.nn.init.zeros_(detector.model.align.offset_out.weight)
    torch.nn.init.zeros_(detector.model.align.offset_out.bias)
    zero = offset_errors(detector, source, [Perturbation.parse("shift:4,0")])
    assert zero["median"] == pytest.approx(zero["true_median"], abs=1e-3)


def test_the_rfa_config_loads() -> None:
    from rgbt.config import DetectorConfig, load_config

    config = load_config(DetectorConfig, RFA)
    assert config.model.align == "rfa" and config.augment.shift_rgb > 0 and config.model.fusion == "concat"
    region = load_config(DetectorConfig, RFA.with_name("kaist_rfa_region.yaml"))
    assert (region.model.align, region.model.align_prior) == ("rfa_region", "registration")
    assert region.augment.shift_rgb_prob == 0.5


def test_offset_errors_need_an_rfa_detector() -> None:
    from types import SimpleNamespace

    from torch import nn

    from rgbt.engine.offsets import _OffsetProbe

    with pytest.raises(ValueError, match="model.align=rfa"):
        _OffsetProbe(SimpleNamespace(model=nn.Linear(1, 1)))  # type: ignore[arg-type]
