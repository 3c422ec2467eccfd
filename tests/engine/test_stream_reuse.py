"""A fusion detector computes an image several samples share once per stream: same detections, fewer
trunk runs; `rgbt misalign` gives identical rows with and without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rgbt.cli import main
from rgbt.data.perturbation import Perturbation, apply_perturbation
from rgbt.data.sample import PairSample
from rgbt.detect.detector import build_fusion_detector
from rgbt.engine.inference import FusionDetector
from rgbt.evaluation.sweep import read_rows

HEIGHT, WIDTH = 64, 80
CONFIGS = Path(__file__).resolve().parents[2] / "configs"



def _assert_same_detections(a: np.ndarray, b: np.ndarray, message: str = "") -> None:
    """The same detections (rows ``[x1, y1, x2, y2, score, ...]``) to float tolerance, in either order
    where scores tie to float rounding (another convolution algorithm for another batch size may
    swap two detections of equal score)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, message
    if len(a) == 0:
        return
    distance = np.abs(a[:, None, :] - b[None, :, :]).max(axis=2)
    match = distance.argmin(axis=1)
    assert sorted(match) == list(range(len(b))), message
    np.testing.assert_allclose(a, b[match], rtol=1e-5, atol=1e-3, err_msg=message)
    order = np.abs(match - np.arange(len(b)))
    assert np.all(np.abs(a[:, 4] - b[np.arange(len(b)), 4])[order > 0] < 1e-4), message  # only ties swap


def _frames(count: int) -> list[PairSample]:
    rng = np.random.default_rng(0)
    return [PairSample(rgb=rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
                       thermal=rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)) for _ in range(count)]


def _detector(fusion: str, reuse: bool) -> FusionDetector:
    torch.manual_seed(0)
    model = build_fusion_detector("fasterrcnn", fusion=fusion, width_mult=0.125, fpn_channels=16,
                                  image_size=(HEIGHT, WIDTH), representation_size=32, score_thresh=0.0)
    return FusionDetector(model, ("rgb", "thermal"), ("person",), torch.device("cpu"), batch_size=3,
                          reuse_streams=reuse)


def _trunk_images(detector: FusionDetector) -> dict[str, int]:
    """Counts the images each trunk of ``detector`` is run on."""
    seen = {name: 0 for name in detector.model.backbone.trunks}
    for name, trunk in detector.model.backbone.trunks.items():
        trunk.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, seen[name] + len(args[0])))
    return seen


@pytest.mark.parametrize("fusion", ["concat", "sum", "gate", "early"])
def test_shared_streams_are_computed_once_with_the_same_detections(fusion: str) -> None:
    # Two frames under four RGB shifts each (a frame's thermal image is shared), then the second
    # under two thermal shifts (its RGB image is shared); chunks of 3 straddle the frames:
    # [f0 f0 f0] [f0 f1 f1] [f1 f1 f1t] [f1t].
    f0, f1 = _frames(2)
    rgb_shifts = [Perturbation("shift", "rgb", dx=d) for d in (-4, -2, 2, 4)]
    samples = [apply_perturbation(frame, p) for frame in (f0, f1) for p in rgb_shifts]
    samples += [apply_perturbation(f1, Perturbation("shift", "thermal", dy=d)) for d in (2, 4)]
    cached, plain = _detector(fusion, True), _detector(fusion, False)
    cached_runs, plain_runs = _trunk_images(cached), _trunk_images(plain)
    with_reuse, without = cached.predict(samples), plain.predict(samples)
    assert [len(r) for r in with_reuse] == [len(r) for r in without] and sum(map(len, without)) > 0
    for a, b in zip(with_reuse, without):
        _assert_same_detections(a, b)
    if fusion == "early":
        assert cached.reusable_streams == () and cached_runs == plain_runs == {"rgb+thermal": 10}
    else:
        assert cached.reusable_streams == ("rgb", "thermal") and plain_runs == {"rgb": 10, "thermal": 10}
        # Thermal: once for f0 and once for f1 in the first two chunks, in full in the third (a
        # shifted thermal image is its own); RGB: shared only in the last chunk (one image).
        assert cached_runs == {"rgb": 10, "thermal": 1 + 1 + 3 + 1}


def test_misalign_gives_identical_rows_with_and_without_stream_reuse(
    kaist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the CLI (about 35 CPU seconds: a training step and two sweeps of 7 points
    over 6 KAIST-size frames, the size the perturbations and the loader work at)."""
    run = tmp_path / "run"
    assert main(["train-detector", "--config", str(CONFIGS / "detector" / "tiny.yaml"), "--data", str(kaist_root),
                 "--out", str(run), "--set", "train.max_steps=1", "--set", "model.score_thresh=0.0"]) == 0
    # Every detection of both runs, keyed by frame and perturbation (the rows of an untrained model
    # are 100 % everywhere; its boxes show any difference).
    seen: dict[str, dict[tuple[str, str], np.ndarray]] = {"reused": {}, "full": {}}
    predict = FusionDetector.predict

    def recording(self: FusionDetector, samples: list[PairSample]) -> list[np.ndarray]:
        out = predict(self, samples)
        for sample, rows in zip(samples, out):
            seen[current][(sample.frame_id, "+".join(sample.meta["perturbations"]))] = rows
        return out

    monkeypatch.setattr(FusionDetector, "predict", recording)
    sweep = ["misalign", "--data", str(kaist_root), "--image-set", "test", "--checkpoint", str(run / "last.pt"),
             "--patterns", "S0", "--shifts=-4,4", "--rotations", "2", "--blackout", "--workers", "1",
             "--batch-size", "6"]
    current = "reused"
    assert main([*sweep, "--out", str(tmp_path / "reused")]) == 0
    current = "full"
    assert main([*sweep, "--recompute-streams", "--out", str(tmp_path / "full")]) == 0
    reused = read_rows(tmp_path / "reused" / "misalignment.csv")
    full = read_rows(tmp_path / "full" / "misalignment.csv")
    assert len(full) == 7 and sorted(reused, key=str) == sorted(full, key=str)
    assert len(seen["full"]) == 6 * 7 and seen["reused"].keys() == seen["full"].keys()
    assert sum(len(rows) for rows in seen["full"].values()) > 0
    for key, rows in seen["full"].items():
        _assert_same_detections(seen["reused"][key], rows, str(key))
