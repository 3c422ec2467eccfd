"""tools/bench_synth_stats.py: real vs synthetic contrast table on tiny inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "bench_synth_stats.py"
#: The real KAIST frames beside the project (absent in a fresh clone: the real column is then skipped).
KAIST = REPO.parent / "shared" / "data" / "kaist"


def load_tool():
    spec = importlib.util.spec_from_file_location("bench_synth_stats", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not run anything
    return module


def test_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    out = tmp_path / "stats.json"
    assert tool.main(["--kaist", str(KAIST), "--frames", "8", "--width", "128", "--height", "96",
                      "--effect", "warm_clutter=0", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "effects: warm_clutter=0" in text and "| day | thermal d' (median) |" in text
    data = json.loads(out.read_text())
    assert data["effects"]["warm_clutter"] == 0.0 and data["effects"]["crossover"] == 1.0
    synthetic = data["sources"]["synthetic seed 0"]
    assert synthetic["frames_per_s"] > 0 and set(synthetic["day"]) == {"thermal", "rgb"}
    if KAIST.is_dir():
        real = data["sources"]["KAIST (fixture-test)"]
        assert real["day"]["thermal"]["persons"] == 26 and "| KAIST (fixture-test) |" in text


def test_bad_arguments_exit_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.main(["--effect", "glow=1"])
    assert "glow=1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--frames", "1"])
