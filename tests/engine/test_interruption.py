"""Nothing lost on interruption, exact resume, and no code run from a checkpoint file.

A run killed at any moment (kill -9: no chance to save) resumes from the last periodic save and
ends bit-identical to an uninterrupted run, for both trainers and whatever the worker count;
SIGTERM is handled like Ctrl-C; checkpoints are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rgbt.cli import main
from rgbt.config import DetectorConfig, TranslatorConfig, load_config
from rgbt.engine.checkpoint import load_checkpoint, save_checkpoint
from rgbt.engine.detector_training import train_detector
from rgbt.engine.trainer import Trainer
from rgbt.engine.translator_training import train_translator

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class Killed(RuntimeError):
    """Stands in for kill -9: raised inside a step, so the trainer gets no chance to save."""


def _kill_before_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = Trainer._train_step

    def step_or_die(self, batch):  # type: ignore[no-untyped-def]
        if self.state.step == step:
            raise Killed(f"killed before step {step + 1}")
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", step_or_die)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}"


def _log_steps(run: Path) -> list[int]:
    with (run / "log.csv").open(newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("trainer", ["detector", "translator"])
def test_killed_run_resumes_bit_identical_with_other_workers(trainer: str, kaist_root: Path, synthetic_root: Path,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if trainer == "detector":
        # hflip + scale + colour augmentation on: every augmentation generator has to come back.
        cls, train, root = DetectorConfig, train_detector, kaist_root
        overrides = ["train.max_steps=4", "train.save_every=2", "train.epochs=2", "augment.hflip=0.5",
                     "augment.color=0.5", "augment.shift_rgb=3"]
        path = CONFIGS / "detector" / "tiny.yaml"
    else:
        cls, train, root = TranslatorConfig, train_translator, synthetic_root
        overrides = ["train.max_steps=6", "train.save_every=2", "train.epochs=3"]
        path = CONFIGS / "translator" / "tiny.yaml"
    config = load_config(cls, path, overrides)
    config.data.root = str(root)
    reference = tmp_path / "reference"
    train(config, reference)

    run = tmp_path / "run"
    kill_at = config.train.max_steps - 1
    with monkeypatch.context() as patch:
        _kill_before_step(patch, kill_at)
        with pytest.raises(Killed):
            train(config, run)
    saved = load_checkpoint(run / "last.pt")
    assert saved["step"] == kill_at - kill_at % config.train.save_every
    # The killed run logged steps past its last save: the resumed run drops them before continuing.
    assert max(_log_steps(run)) == kill_at
    # Two DataLoader workers now: what an item looks like must not depend on who loads it.
    assert main([f"train-{trainer}", "--out", str(run), "--resume", "--set", "data.workers=2"]) == 0
    assert _log_steps(run) == _log_steps(reference)
    _assert_identical(_weights(reference / "last.pt"), _weights(run / "last.pt"))


def test_resume_refuses_other_settings_and_keeps_the_run_config(kaist_root: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    tiny = str(CONFIGS / "detector" / "tiny.yaml")
    assert main(["train-detector", "--config", tiny, "--data", str(kaist_root), "--out", str(run),
                 "--set", "train.max_steps=1"]) == 0
    saved_yaml = (run / "config.yaml").read_text()
    before = (run / "last.pt").read_bytes()
    assert main(["train-detector", "--out", str(run), "--resume", "--set", "train.lr=0.5"]) == 1
    err = capsys.readouterr().err
    assert "last.pt: cannot resume with other settings" in err and "train.lr: 0.005 -> 0.5" in err
    assert (run / "config.yaml").read_text() == saved_yaml
    assert (run / "last.pt").read_bytes() == before
    # Another architecture: the same clear refusal, no traceback.
    assert main(["train-detector", "--config", tiny, "--data", str(kaist_root), "--out", str(run), "--resume",
                 "--set", "model.trunk=resnet34"]) == 1
    assert "model.trunk: 'resnet18' -> 'resnet34'" in capsys.readouterr().err
    # A translator run is not resumed as a detector.
    translator_run = tmp_path / "translator"
    save_checkpoint(translator_run / "last.pt", {"model": {}, "step": 1, "config": {"model": {"model": "flow"}}})
    assert main(["train-detector", "--out", str(translator_run), "--resume"]) == 1
    assert "is a translator checkpoint (model.model=flow, from rgbt train-translator)" in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["train.epochs=0", "train.epochs=-1", "train.batch_size=0", "data.workers=-2",
                                     "train.save_every=-5", "train.lr=0"])
def test_nonsense_loop_settings_are_refused(setting: str, kaist_root: Path, tmp_path: Path, capsys) -> None:
    code = main(["train-detector", "--config", str(CONFIGS / "detector" / "tiny.yaml"), "--data", str(kaist_root),
                 "--out", str(tmp_path / "run"), "--set", setting])
    assert code == 1
    key, value = setting.split("=")
    assert f"{key} must be" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_sigterm_saves_last_pt_and_exits_non_zero(kaist_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-c", "import sys; from rgbt.cli import main; sys.exit(main(sys.argv[1:]))",
               "train-detector", "--config", str(CONFIGS / "detector" / "tiny.yaml"), "--data", str(kaist_root),
               "--out", str(run), "--set", "train.max_steps=400", "train.save_every=0", "train.epochs=100"]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while not ((run / "log.csv").is_file() and len(_log_steps(run)) >= 2):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert "terminated (SIGTERM)" in err and "run again with --resume" in err
    saved = load_checkpoint(run / "last.pt")
    assert saved["step"] >= 2 and saved["step"] == max(_log_steps(run))


def test_malicious_checkpoint_is_refused_without_running_it(tmp_path: Path, kaist_root: Path, capsys) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "config": {}}, evil)
    with pytest.raises(ValueError, match=r"evil.pt: refused: .*posix.system|evil.pt: refused: .*os.system"):
        load_checkpoint(evil)
    assert main(["detect", "--checkpoint", str(evil), "--data", str(kaist_root), "--out",
                 str(tmp_path / "det.txt")]) == 1
    assert "refused" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(evil.read_bytes())
    assert main(["train-detector", "--out", str(run), "--resume"]) == 1
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()
