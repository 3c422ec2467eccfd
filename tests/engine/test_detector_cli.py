"""`rgbt train-detector`, `rgbt detect` and their use by `rgbt evaluate` / `rgbt misalign`, in-process."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from rgbt.cli import main
from rgbt.evaluation.detections import read_aggregated_txt, read_coco_results

TINY = Path(__file__).resolve().parents[2] / "configs" / "detector" / "tiny.yaml"


@pytest.fixture(scope="module")
def run_dir(kaist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained through the CLI; the score threshold 0 gives every frame detections."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train-detector", "--config", str(TINY), "--data", str(kaist_root), "--out", str(out),
                 "--set", "train.max_steps=3", "--set", "model.score_thresh=0.0"])
    assert code == 0
    return out


def evaluate_json(kaist_root: Path, results: Path, tmp_path: Path) -> dict:
    out = tmp_path / f"{results.name}.eval.json"
    assert main(["evaluate", "--gt", str(kaist_root), "--image-set", "test", "--results", str(results),
                 "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    return row


def test_train_detector_writes_a_run_directory(run_dir: Path, kaist_root: Path, capsys) -> None:
    for name in ("last.pt", "config.yaml", "log.csv", "log.txt", "loss.png", "result.json"):
        assert (run_dir / name).is_file(), name
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["root"] == str(kaist_root) and config["train"]["max_steps"] == 3
    assert config["model"]["score_thresh"] == 0.0
    with (run_dir / "log.csv").open(newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [1, 2, 3]
    assert json.loads((run_dir / "result.json").read_text())["steps"] == 3


def test_train_detector_resume_continues_from_the_saved_config(kaist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train-detector", "--config", str(TINY), "--data", str(kaist_root), "--out", str(out),
                 "--set", "train.epochs=3", "--set", "train.max_steps=2"]) == 0
    # Without --config, --resume reads RUN/config.yaml; --set still applies on top.
    assert main(["train-detector", "--out", str(out), "--resume", "--set", "train.max_steps=4"]) == 0
    with (out / "log.csv").open(newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [1, 2, 3, 4]


def test_train_detector_reports_bad_input(kaist_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["train-detector", "--config", str(TINY), "--data", str(kaist_root), "--out", str(tmp_path / "a"),
                 "--set", "model.fusoin=sum"]) == 1
    assert "did you mean 'model.fusion'" in capsys.readouterr().err
    assert main(["train-detector", "--config", str(TINY), "--out", str(tmp_path / "b")]) == 1
    assert "no dataset root" in capsys.readouterr().err
    assert main(["train-detector", "--out", str(tmp_path / "c")]) == 1  # built-in defaults, still no root
    assert "no dataset root" in capsys.readouterr().err


def test_detect_writes_kaist_txt_and_coco_json_that_evaluate_scores(run_dir: Path, kaist_root: Path,
                                                                     tmp_path: Path) -> None:
    txt, coco = tmp_path / "det.txt", tmp_path / "det.json"
    common = ["detect", "--checkpoint", str(run_dir / "last.pt"), "--data", str(kaist_root), "--image-set", "test",
              "--workers", "0", "--batch-size", "4"]
    assert main([*common, "--out", str(txt)]) == 0
    assert main([*common, "--out", str(coco)]) == 0
    from_txt = read_aggregated_txt(txt, 6)
    from_json = read_coco_results(coco, 6)
    assert all(len(d) > 0 for d in from_txt)
    for a, b in zip(from_txt, from_json):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert {entry["category_id"] for entry in json.loads(coco.read_text())} == {1}
    row_txt, row_json = evaluate_json(kaist_root, txt, tmp_path), evaluate_json(kaist_root, coco, tmp_path)
    assert math.isfinite(row_txt["all"]) and 0 <= row_txt["all"] <= 100
    assert row_txt["all"] == row_json["all"] and row_txt["n_positives"]["all"] > 0


def test_detect_perturbation_changes_the_detections(run_dir: Path, kaist_root: Path, tmp_path: Path) -> None:
    common = ["detect", "--checkpoint", str(run_dir / "last.pt"), "--data", str(kaist_root), "--workers", "0"]
    assert main([*common, "--out", str(tmp_path / "plain.txt")]) == 0
    assert main([*common, "--out", str(tmp_path / "shifted.txt"), "--perturb", "shift:4,0"]) == 0
    assert main([*common, "--out", str(tmp_path / "bad.txt"), "--perturb", "shift:4"]) == 1
    assert (tmp_path / "plain.txt").read_text() != (tmp_path / "shifted.txt").read_text()


def test_checkpoint_drives_the_misalignment_harness(run_dir: Path, kaist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["misalign", "--data", str(kaist_root), "--image-set", "test", "--checkpoint",
                 str(run_dir / "last.pt"), "--shifts", "0,4", "--patterns", "S0", "--workers", "0",
                 "--out", str(out)]) == 0
    with (out / "misalignment.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["detector"], row["perturbation"]) for row in rows] == [("last", "shift:0,0:rgb"),
                                                                        ("last", "shift:4,0:rgb")]
    assert all(0 <= float(row["all"]) <= 100 for row in rows)


def test_detect_on_the_real_kaist_fixture(run_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    root, results = shared_data / "kaist", tmp_path / "real.txt"
    assert main(["detect", "--checkpoint", str(run_dir / "last.pt"), "--data", str(root), "--image-set",
                 "fixture-test", "--workers", "0", "--out", str(results)]) == 0
    detections = read_aggregated_txt(results, 9)
    assert all(len(d) > 0 and (d[:, 2] <= 640).all() and (d[:, 3] <= 512).all() for d in detections)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--gt", str(root), "--image-set", "fixture-test", "--results", str(results),
                 "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert math.isfinite(row["all"]) and row["n_images"]["all"] == 9


def test_torchrun_two_cpu_processes(kaist_root: Path, tmp_path: Path, torchrun_two) -> None:
    out = tmp_path / "ddp"
    done = torchrun_two(["train-detector", "--config", str(TINY), "--data", str(kaist_root), "--out", str(out),
                         "--set", "train.eval_every=1"])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    # 8 frames, 2 ranks x batch 2: 2 steps per epoch.
    assert result["world_size"] == 2 and result["steps"] == 2
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
