"""Detector training and inference as library calls, on a tiny synthetic KAIST root (CPU, seconds)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rgbt.config import DetectorConfig, config_to_dict, load_config
from rgbt.data.dataset import PairDataset, collate_pairs, kaist_train_ignore
from rgbt.data.perturbation import Perturbation, shift_image
from rgbt.data.source import open_source
from rgbt.engine import detector_training
from rgbt.engine.checkpoint import save_checkpoint
from rgbt.engine.detector_builder import build_detector_from_config
from rgbt.engine.detector_training import build_evaluation, detection_loss, train_detector
from rgbt.engine.inference import FusionDetector, detect_source, load_detector
from rgbt.engine.run import seed_everything

TINY = Path(__file__).resolve().parents[2] / "configs" / "detector" / "tiny.yaml"


def tiny_config(root: Path, *overrides: str) -> DetectorConfig:
    config = load_config(DetectorConfig, TINY, list(overrides))
    config.data.root = str(root)
    return config


def read_log(run: Path) -> list[dict[str, str]]:
    with (run / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------


def test_build_from_config_is_deterministic_and_passes_the_values(kaist_root: Path) -> None:
    config = tiny_config(kaist_root, "model.score_thresh=0.2", "model.detections_per_img=7")
    torch.manual_seed(0)
    a = build_detector_from_config(config.model, ["rgb", "thermal"], 2)
    torch.manual_seed(1)
    b = build_detector_from_config(config.model, ["rgb", "thermal"], 2)
    assert list(a.state_dict()) == list(b.state_dict())
    assert all(a.state_dict()[k].shape == b.state_dict()[k].shape for k in a.state_dict())
    assert a.backbone.modalities == ("rgb", "thermal") and a.backbone.in_channels == 4
    assert a.transform.min_size == (64,) and a.transform.max_size == 80
    assert a.roi_heads.score_thresh == 0.2 and a.roi_heads.detections_per_img == 7

    config.model.fusion, config.model.arch = "late", "fcos"
    late = build_detector_from_config(config.model, ["thermal", "rgb"], 4)
    assert late.modalities == ("thermal", "rgb") and late.in_channels == 4

    config.model.min_size = 100
    with pytest.raises(ValueError, match="min_size"):
        build_detector_from_config(config.model, ["thermal"], 2)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overfit(kaist_root: Path) -> tuple[DetectorConfig, torch.nn.Module, list[float]]:
    """A tiny detector trained 30 steps on one fixed batch: (config, model, losses per step).

    Its score threshold is 0 so that inference tests always see detections."""
    config = tiny_config(kaist_root, "model.score_thresh=0.0")
    seed_everything(0)
    source = open_source(kaist_root, "train")
    dataset = PairDataset(source, ("rgb", "thermal"), ignore_fn=lambda s: kaist_train_ignore(s, min_height=20))
    with_positives = [i for i in range(len(dataset)) if (~dataset[i][1]["ignore"]).any()][:2]
    batch = collate_pairs([dataset[i] for i in with_positives])
    model = build_detector_from_config(config.model, ["rgb", "thermal"], 2)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(30):
        loss = detection_loss(model, batch, torch.device("cpu"), ("rgb", "thermal"))
        assert set(loss) == {"loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
        optimizer.zero_grad()
        loss["loss"].backward()
        optimizer.step()
        losses.append(float(loss["loss"].detach()))
    return config, model.eval(), losses


def test_a_few_dozen_steps_lower_the_loss(overfit) -> None:
    _config, _model, losses = overfit
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_train_detector_writes_the_run_directory_and_selects_best_by_miss_rate(kaist_root: Path,
                                                                                tmp_path: Path) -> None:
    config = tiny_config(kaist_root, "train.eval_every=1", "train.max_steps=3")
    result = train_detector(config, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "log.txt", "log.csv", "loss.png", "eval.csv", "last.pt", "best.pt", "result.json"):
        assert (run / name).is_file(), name
    assert result == json.loads((run / "result.json").read_text())
    assert result["steps"] == 3 and result["metric"] == "mr_all" and result["seconds"] > 0
    assert set(result["final"]) >= {"mr_all", "mr_day", "mr_night"}
    assert 0 <= result["final"]["mr_all"] <= 100 and result["best"] == result["final"]["mr_all"]
    assert {"loss", "loss_classifier", "loss_objectness"} <= set(read_log(run)[0])
    saved = load_config(DetectorConfig, run / "config.yaml")
    assert saved.data.root == str(kaist_root) and saved.train.max_steps == 3


def test_resume_continues_the_step_count(kaist_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train_detector(tiny_config(kaist_root, "train.epochs=5", "train.max_steps=2"), run)
    assert first["steps"] == 2
    second = train_detector(tiny_config(kaist_root, "train.epochs=5", "train.max_steps=5"), run, resume=True)
    assert second["steps"] == 5
    assert [int(row["step"]) for row in read_log(run)] == [1, 2, 3, 4, 5]
    assert torch.load(run / "last.pt", weights_only=False)["step"] == 5


def test_a_non_finite_loss_stops_and_names_the_batch(kaist_root: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []

    def poisoned(model, batch, device, modalities=("rgb", "thermal")):
        calls.append(1)
        losses = detection_loss(model, batch, device, modalities)
        if len(calls) == 2:
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(detector_training, "detection_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at epoch 0, step 1 .*set0[03]/V\d{3}/I\d{5}"):
        train_detector(tiny_config(kaist_root), tmp_path / "run")


def test_training_ignore_rules_follow_the_config(kaist_root: Path, tmp_path: Path, monkeypatch) -> None:
    seen = {}

    class Spy(PairDataset):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            seen["dataset"] = self

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(detector_training, "PairDataset", Spy)
    monkeypatch.setattr(detector_training, "Trainer", stop)
    with pytest.raises(Stop):
        train_detector(tiny_config(kaist_root, "ignore.min_height=60", "ignore.max_occlusion=0"), tmp_path)
    dataset = seen["dataset"]
    sample = dataset.source.annotations(0)
    heights = sample.boxes[:, 3] - sample.boxes[:, 1]
    expected = (heights < 60) | (sample.occlusion > 0) | np.array([label != "person" for label in sample.labels])
    np.testing.assert_array_equal(dataset.ignore_fn(sample) | sample.ignore, expected | sample.ignore)


# --------------------------------------------------------------------------------------------
# validation metrics
# --------------------------------------------------------------------------------------------


def test_validation_reports_miss_rate_for_kaist_and_ap_otherwise(kaist_root: Path, overfit) -> None:
    _config, model, _losses = overfit
    source = open_source(kaist_root, "test")
    evaluate, metric, lower = build_evaluation(source, "kaist", ["rgb", "thermal"], ["person"], torch.device("cpu"), 4)
    metrics = evaluate(model)
    assert metric == "mr_all" and lower
    assert set(metrics) == {"mr_all", "mr_day", "mr_night"} and all(0 <= v <= 100 for v in metrics.values())
    evaluate, metric, lower = build_evaluation(source, "flir-v1", ["rgb", "thermal"], ["person"],
                                               torch.device("cpu"), 4)
    metrics = evaluate(model)
    assert metric == "ap" and not lower
    assert set(metrics) == {"ap", "ap50", "ap75"} and all(0 <= v <= 100 for v in metrics.values())


# --------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_identical_detections(kaist_root: Path, overfit, tmp_path: Path) -> None:
    config, model, _losses = overfit
    source = open_source(kaist_root, "test")
    before = detect_source(FusionDetector(model, ["rgb", "thermal"], ["person"], torch.device("cpu")), source,
                           progress=False)
    save_checkpoint(tmp_path / "model.pt", {"model": model.state_dict(), "config": config_to_dict(config)})
    detector = load_detector(tmp_path / "model.pt", "cpu", batch_size=4)
    after = detect_source(detector, source, batch_size=3, progress=False)
    assert len(after) == len(source) and sum(len(d) for d in after) > 0
    for a, b in zip(before, after):
        assert a.shape[1] == 5
        np.testing.assert_array_equal(a, b)
    labelled = detect_source(detector.predict, source, progress=False)
    assert all(rows.shape[1] == 6 and set(rows[:, 5]) <= {1.0} for rows in labelled)
    assert detector.config is not None and detector.config.model.fpn_channels == config.model.fpn_channels


def test_load_detector_rejects_files_that_are_not_detector_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_detector(tmp_path / "missing.pt", "cpu")
    save_checkpoint(tmp_path / "other.pt", {"model": {}})
    with pytest.raises(ValueError, match="not a detector checkpoint"):
        load_detector(tmp_path / "other.pt", "cpu")


def test_a_perturbation_reaches_the_model(kaist_root: Path, overfit) -> None:
    _config, model, _losses = overfit
    source = open_source(kaist_root, "test")
    detector = FusionDetector(model, ["rgb", "thermal"], ["person"], torch.device("cpu"))
    inputs: list[torch.Tensor] = []
    hook = model.register_forward_pre_hook(lambda module, args: inputs.extend(args[0]))
    try:
        plain = detect_source(detector, source, progress=False)
        shifted = detect_source(detector, source, Perturbation.parse("shift:4,0"), batch_size=4, progress=False)
    finally:
        hook.remove()
    n = len(source)
    assert len(inputs) == 2 * n
    for i in range(n):
        original, moved = inputs[i], inputs[n + i]
        expected_rgb = shift_image(source[i].rgb, 4, 0)
        torch.testing.assert_close(moved[:3], torch.from_numpy(expected_rgb).permute(2, 0, 1).float() / 255)
        assert torch.equal(moved[3], original[3])  # thermal untouched
        assert not torch.equal(moved[:3], original[:3])
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(plain, shifted))


def test_detector_needs_its_modalities(kaist_root: Path, overfit) -> None:
    _config, model, _losses = overfit
    sample = open_source(kaist_root, "test")[0].with_images(rgb=None)
    detector = FusionDetector(model, ["rgb", "thermal"], ["person"], torch.device("cpu"))
    with pytest.raises(ValueError, match=r"set0\d/V\d{3}/I\d{5}.*'rgb'"):
        detector([sample])


def test_evaluate_detector_scores_an_oracle_and_a_blind_detector(kaist_root: Path) -> None:
    from rgbt.engine.inference import evaluate_detector
    from rgbt.evaluation.missrate import with_frame_size

    source = open_source(kaist_root, "test")
    records = [source.annotations(i) for i in range(len(source))]
    assert all("size" not in r.meta for r in records)
    sized = with_frame_size(records, (512, 640))
    assert all(r.meta["size"] == (512, 640) for r in sized) and with_frame_size(sized, (1, 1)) == sized
    boxes = {r.frame_id: r.boxes for r in records}

    def oracle(samples: list) -> list[np.ndarray]:
        return [np.hstack([boxes[s.frame_id], np.ones((len(boxes[s.frame_id]), 1))]) for s in samples]

    def blind(samples: list) -> list[np.ndarray]:
        return [np.zeros((0, 5)) for _ in samples]

    perfect = evaluate_detector(oracle, source, batch_size=4, progress=False)
    assert perfect["all"].n_positives > 0 and perfect["all"].mr == pytest.approx(0.0, abs=1e-9)
    assert evaluate_detector(blind, source, progress=False)["all"].mr == pytest.approx(1.0)
