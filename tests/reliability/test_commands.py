"""The commands refuse bad input with exit code 1 (2 for a bad command line) and a message naming
the option, file, key and value: never a Python traceback, never a wrong result with exit code 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from rgbt.cli import main
from rgbt.data.synthetic import generate_synthetic

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DETECTOR_TINY = CONFIGS / "detector" / "tiny.yaml"


@pytest.fixture(scope="module")
def commands_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic KAIST-layout root: 4 train + 4 test frames of 80x64."""
    return generate_synthetic(tmp_path_factory.mktemp("commands") / "root", 4, 4, seed=0, width=80, height=64,
                              progress=False)


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------------------------
# nonsense values on the command line and in configs
# --------------------------------------------------------------------------------------------


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
    ("model.weights={rgb: a.pt, rgb: b.pt}", "override 'model.weights={rgb: a.pt, rgb: b.pt}': duplicate key 'rgb'"),
])
def test_training_refuses_a_repeated_key_in_an_override(
    override: str, expected: str, commands_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train-detector", "--config", str(DETECTOR_TINY), "--data", str(commands_root), "--out",
                 str(tmp_path / "run"), "--set", override])
    assert code == 1
    assert expected in _error(capsys)


