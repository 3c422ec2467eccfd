"""tools/bench_translators.py on a minimal setting: two methods, one step, a tiny synthetic root."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_translators.py"


def load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_translators", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_translators_prints_one_row_per_method_and_the_figure(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    figure = tmp_path / "compare.png"
    assert tool.main(["--methods", "pix2pixhd", "gatys", "--steps", "1", "--train-frames", "2", "--test-frames", "2",
                      "--width", "80", "--height", "64", "--figure", str(figure), "--work", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(lines) == 4 and "edge_f1" in lines[0] and "frames/s" in lines[0]
    assert lines[2].startswith("| pix2pixhd | 1 |") and lines[3].startswith("| gatys | 1 |")
    assert "n/a" in lines[2]  # no inverse: no rounds / round-trip values
    assert figure.is_file() and 0 < figure.stat().st_size < 300_000
