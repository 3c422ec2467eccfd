"""The commands refuse bad input with exit code 1 (2 for a bad command line) and a message naming
the option, file, key and value: never a Python traceback, never a wrong result with exit code 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rgbt.atomic import file_sha256
from rgbt.cli import main
from rgbt.config import DetectorConfig, TranslatorConfig, config_to_dict, load_config
from rgbt.data.synthetic import generate_synthetic
from rgbt.engine.checkpoint import save_checkpoint
from rgbt.engine.detector_builder import build_detector_from_config
from rgbt.engine.translation_eval import evaluate_translator
from rgbt.engine.translator_builder import build_translator_from_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DETECTOR_TINY = CONFIGS / "detector" / "tiny.yaml"
TRANSLATOR_TINY = CONFIGS / "translator" / "tiny.yaml"
#: The first test frame (detect's default list) and the first day training frame (the translator's).
TEST_THERMAL = Path("images/set06/V000/lwir/I00000.jpg")
TRAIN_THERMAL = Path("images/set00/V000/lwir/I00000.jpg")


@pytest.fixture(scope="module")
def commands_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic KAIST-layout root: 4 train + 4 test frames of 80x64."""
    return generate_synthetic(tmp_path_factory.mktemp("commands") / "root", 4, 4, seed=0, width=80, height=64,
                              progress=False)


@pytest.fixture(scope="module")
def corrupt_root(commands_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``commands_root`` with the first test and the first training thermal image overwritten by junk."""
    root = tmp_path_factory.mktemp("corrupt") / "root"
    shutil.copytree(commands_root, root)
    for image in (TEST_THERMAL, TRAIN_THERMAL):
        (root / image).write_bytes(b"not a jpeg")
    return root


def _detector_checkpoint(path: Path, seed: int) -> Path:
    """An untrained tiny detector saved as `rgbt train-detector` saves it (config + model weights)."""
    config = load_config(DetectorConfig, DETECTOR_TINY)
    torch.manual_seed(seed)
    model = build_detector_from_config(config.model, config.data.modalities, len(config.data.classes) + 1)
    return save_checkpoint(path, {"model": model.state_dict(), "config": config_to_dict(config), "step": 0})


@pytest.fixture(scope="module")
def commands_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different detectors that are both called ``last.pt``, and a translator."""
    folder = tmp_path_factory.mktemp("checkpoints")
    config = load_config(TranslatorConfig, TRANSLATOR_TINY)
    translator = build_translator_from_config(config.model, config.loss, seed=0)
    return {
        "detector_a": _detector_checkpoint(folder / "a" / "last.pt", seed=0),
        "detector_b": _detector_checkpoint(folder / "b" / "last.pt", seed=1),
        "translator": save_checkpoint(folder / "translator.pt", {"model": translator.state_dict(),
                                                                 "config": config_to_dict(config), "step": 0}),
    }


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------------------------
# misalign: a name means one detector in one --out
# --------------------------------------------------------------------------------------------


def _misalign(root: Path, out: Path, *detectors: str) -> list[str]:
    return ["misalign", "--data", str(root), "--image-set", "test", "--patterns", "S0", "--shifts", "0",
            "--device", "cpu", "--workers", "0", "--out", str(out), *detectors]


def test_misalign_refuses_another_checkpoint_under_the_same_name(
    commands_root: Path, commands_checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    first, second = commands_checkpoints["detector_a"], commands_checkpoints["detector_b"]
    assert main(_misalign(commands_root, out, "--checkpoint", str(first))) == 0
    assert main(_misalign(commands_root, out, "--checkpoint", str(first))) == 0  # the same detector resumes
    rows = (out / "misalignment.csv").read_text()
    capsys.readouterr()
    # Both files are called last.pt: the default name 'last' now means another detector.
    assert main(_misalign(commands_root, out, "--checkpoint", str(second))) == 1
    err = _error(capsys)
    assert str(out) in err and "'last'" in err
    assert f"sha256:{file_sha256(first)}" in err and f"sha256:{file_sha256(second)}" in err
    assert (out / "misalignment.csv").read_text() == rows
    recorded = json.loads((out / "misalignment_run.json").read_text())["detectors"]
    assert recorded == {"last": f"sha256:{file_sha256(first)}"}
    # Under its own name the second detector joins the folder.
    assert main(_misalign(commands_root, out, "--checkpoint", str(second), "--names", "other")) == 0


def test_misalign_refuses_another_reference_under_the_same_name(
    commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    assert main(_misalign(commands_root, out, "--reference", "thermal", "--names", "ref")) == 0
    capsys.readouterr()
    assert main(_misalign(commands_root, out, "--reference", "rgb", "--names", "ref")) == 1
    err = _error(capsys)
    assert str(out) in err and "'ref'" in err and "reference:thermal" in err and "reference:rgb" in err


def test_misalign_refuses_rows_without_a_recorded_detector(
    commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    assert main(_misalign(commands_root, out, "--reference", "thermal")) == 0
    sidecar = out / "misalignment_run.json"
    described = json.loads(sidecar.read_text())
    del described["detectors"]  # what rgbt wrote before it recorded detectors
    sidecar.write_text(json.dumps(described))
    capsys.readouterr()
    assert main(_misalign(commands_root, out, "--reference", "thermal")) == 1
    err = _error(capsys)
    assert str(out) in err and "'gt-thermal'" in err and "do not record which detector" in err


# --------------------------------------------------------------------------------------------
# nonsense values on the command line and in configs
# --------------------------------------------------------------------------------------------

_MODEL_RUN = ["--checkpoint", "c.pt", "--data", "root"]


@pytest.mark.parametrize(("command", "option", "value"), [
    (["synth", "--out", "o"], "--workers", "-2"),
    (["synth", "--out", "o"], "--train", "-1"),
    (["synth", "--out", "o"], "--test", "-1"),
    (["synth", "--out", "o"], "--width", "0"),
    (["synth", "--out", "o"], "--height", "-64"),
    (["synth", "--out", "o"], "--seed", "-1"),
    (["synth", "--out", "o"], "--max-shift", "-3"),
    (["translate-eval", *_MODEL_RUN, "--json", "o.json"], "--max-frames", "-1"),
    (["detect", *_MODEL_RUN, "--out", "o.txt"], "--batch-size", "0"),
    (["detect", *_MODEL_RUN, "--out", "o.txt"], "--workers", "-1"),
    (["translate", *_MODEL_RUN, "--out", "o"], "--batch-size", "-4"),
    (["translate", *_MODEL_RUN, "--out", "o"], "--workers", "-2"),
    (["translate", *_MODEL_RUN, "--out", "o"], "--style-seed", "-1"),
    (["misalign", "--data", "root", "--reference", "thermal", "--out", "o"], "--batch-size", "0"),
    (["misalign", "--data", "root", "--reference", "thermal", "--out", "o"], "--workers", "-1"),
    (["misalign", "--data", "root", "--reference", "thermal", "--out", "o"], "--height-scale", "0"),
    (["evaluate", "--gt", "gt", "--results", "r.txt"], "--height-scale", "nan"),
    (["export", "--checkpoint", "c.pt", "--out", "m.onnx"], "--height", "0"),
    (["export", "--checkpoint", "c.pt", "--out", "m.onnx"], "--opset", "-1"),
    (["detect", *_MODEL_RUN, "--out", "o.txt"], "--batch-size", "two"),
])
def test_negative_and_zero_counts_are_usage_errors(
    command: list[str], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, f"{option}={value}"])
    assert exit_info.value.code == 2
    err = _error(capsys)
    assert f"argument {option}: expected " in err and f"got {value!r}" in err


def test_translate_eval_refuses_negative_max_frames_in_the_library(
    commands_root: Path, commands_checkpoints: dict[str, Path]
) -> None:
    with pytest.raises(ValueError, match="max_frames must be >= 0 .*got -1"):
        evaluate_translator(commands_checkpoints["translator"], commands_root, max_frames=-1, device="cpu")


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:0", "gpu"])
def test_an_unknown_device_lists_the_accepted_ones(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", *_MODEL_RUN, "--out", "o.txt", "--device", device])
    assert exit_info.value.code == 2
    err = _error(capsys)
    assert f"argument --device: unknown device {device!r}; expected one of auto, cpu, cuda, cuda:N" in err


def test_a_config_file_with_a_repeated_key_is_refused(
    commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "twice.yaml"
    config.write_text("train:\n  lr: 0.01\n  epochs: 2\n  lr: 0.5\n", encoding="utf-8")
    code = main(["train-detector", "--config", str(config), "--data", str(commands_root), "--out",
                 str(tmp_path / "run")])
    assert code == 1
    assert f"{config}:4: duplicate key 'lr' (first given on line 2)" in _error(capsys)
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize(("override", "expected"), [
    ("train.device=tpu", "unknown device 'tpu'; expected one of auto, cpu, cuda, cuda:N"),
    ("model.weights={rgb: a.pt, rgb: b.pt}", "override 'model.weights={rgb: a.pt, rgb: b.pt}': duplicate key 'rgb'"),
])
def test_training_refuses_an_unknown_device_or_a_repeated_key_in_an_override(
    override: str, expected: str, commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train-detector", "--config", str(DETECTOR_TINY), "--data", str(commands_root), "--out",
                 str(tmp_path / "run"), "--set", override])
    assert code == 1
    assert expected in _error(capsys)


# --------------------------------------------------------------------------------------------
# errors that used to be tracebacks
# --------------------------------------------------------------------------------------------


def test_detect_reports_a_corrupt_image_the_same_with_and_without_workers(
    corrupt_root: Path, commands_checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = []
    for workers in ("0", "2"):
        code = main(["detect", "--checkpoint", str(commands_checkpoints["detector_a"]), "--data", str(corrupt_root),
                     "--out", str(tmp_path / "dets.txt"), "--device", "cpu", "--workers", workers])
        assert code == 1
        messages.append(_error(capsys).strip().splitlines()[-1])
    assert messages[0] == messages[1]
    assert messages[1] == (f"rgbt detect: error: {corrupt_root / TEST_THERMAL}: cannot decode image (10 bytes; "
                           "corrupt or not an image)")


@pytest.mark.parametrize("command", ["translate", "train-detector"])
def test_translate_and_training_report_a_corrupt_image_under_workers(
    command: str, corrupt_root: Path, commands_checkpoints: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if command == "translate":  # its default --workers 2
        args = ["--checkpoint", str(commands_checkpoints["translator"]), "--style", "paired", "--device", "cpu"]
    else:
        # The detector reads its first training image in a worker (the flow translator's ActNorm start reads
        # frames in the training process first).
        args = ["--config", str(DETECTOR_TINY), "--set", "data.workers=2"]
    assert main([command, *args, "--data", str(corrupt_root), "--out", str(tmp_path / "out")]) == 1
    err = _error(capsys)
    assert f"rgbt {command}: error: {corrupt_root / TRAIN_THERMAL}: cannot decode image" in err
    assert "DataLoader worker" not in err


def test_a_non_finite_loss_is_reported_with_its_epoch_step_and_frames(
    commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A learning rate of 1e30 without clipping blows the weights up after the first step (a few seconds: two
    # steps of the tiny translator are the cheapest way to a diverging run through the command).
    code = main(["train-translator", "--config", str(TRANSLATOR_TINY), "--data", str(commands_root), "--out",
                 str(tmp_path / "run"), "--set", "train.lr=1e30", "train.grad_clip=0"])
    assert code == 1
    err = _error(capsys)
    assert "rgbt train-translator: error: non-finite loss at epoch " in err
    assert ", step 1 (batch " in err and "set00/V000/I0000" in err


_TRANSLATOR_GIVEN = ("is a translator checkpoint (model.model=flow, from rgbt train-translator); this needs a "
                     "detector checkpoint from rgbt train-detector")
_DETECTOR_GIVEN = ("is a detector checkpoint (model.arch=fasterrcnn, from rgbt train-detector); this needs a "
                   "translator checkpoint from rgbt train-translator")


@pytest.mark.parametrize(("command", "output", "given", "expected"), [
    ("detect", ["--out", "dets.txt"], "translator", _TRANSLATOR_GIVEN),
    ("misalign", ["--out", "sweep"], "translator", _TRANSLATOR_GIVEN),
    ("translate", ["--out", "fake"], "detector_a", _DETECTOR_GIVEN),
    ("translate-eval", ["--json", "eval.json"], "detector_a", _DETECTOR_GIVEN),
])
def test_a_checkpoint_of_the_other_kind_says_what_it_is(
    command: str, output: list[str], given: str, expected: str, commands_root: Path,
    commands_checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoint = commands_checkpoints[given]
    option, name = output
    assert main([command, "--checkpoint", str(checkpoint), "--data", str(commands_root), "--device", "cpu", option,
                 str(tmp_path / name)]) == 1
    assert f"{checkpoint} {expected}" in _error(capsys)


def test_resume_with_an_empty_config_file_is_refused_as_other_settings(
    commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    config = load_config(TranslatorConfig, TRANSLATOR_TINY)
    config.data.root = str(commands_root)
    save_checkpoint(run / "last.pt", {"model": {}, "step": 1, "config": config_to_dict(config)})
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    code = main(["train-translator", "--config", str(empty), "--data", str(commands_root), "--out", str(run),
                 "--resume"])
    assert code == 1
    err = _error(capsys)
    assert "last.pt: cannot resume with other settings" in err and "model.hidden: 8 -> " in err
