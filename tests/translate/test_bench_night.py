"""tools/bench_night.py at the quick demo's sizes: the day-RGB detector, plain and task-aware flows, resume."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_night.py"


def load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_night", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_night_probes_plain_and_task_aware_flows_and_resumes(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    work, out = tmp_path / "work", tmp_path / "night.json"
    assert tool.main(["--work", str(work), "--quick", "--weights", "0", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    tables = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(tables) == 2 * 4  # two styles x (header, real RGB, two weights)
    assert any("task-aware flow, `loss.detector: 2`" in line for line in tables)
    results = json.loads(out.read_text())
    assert set(results) == {"real_rgb", "w0_s0", "w2_s0"}
    assert {"all", "day", "night", "all_sd", "day_sd", "night_sd"} <= set(results["real_rgb"])
    assert all(results["real_rgb"][k] is None or results["real_rgb"][k] >= 0.0 for k in ("all_sd", "night_sd"))
    for key in ("w0_s0", "w2_s0"):
        for style in tool.STYLES:
            assert all(v is None or 0.0 <= v <= 100.0 for v in results[key][style].values())
            assert set(results[key][f"{style}_metrics"]) == set(tool.METRICS)
    # The frozen detector saw day RGB only; the task-aware flow trained against it, the plain one not.
    day_list = (work / "data" / "imageSets" / "train_day.txt").read_text().split()
    assert day_list and all(frame.startswith("set00/") for frame in day_list)
    assert "train_set: train_day" in (work / "rgb_day" / "config.yaml").read_text()
    task_config = (work / "flow_w2_s0" / "run" / "config.yaml").read_text()
    assert "detector: 2.0" in task_config and str(work / "rgb_day" / "last.pt") in task_config
    assert "detector: 0.0" in (work / "flow_w0_s0" / "run" / "config.yaml").read_text()
    assert len(list((work / "flow_w2_s0" / "fake_day").rglob("*.png"))) == 12  # the 12 test frames
    # A re-run reuses every finished step: nothing is trained again.
    stamp = (work / "flow_w2_s0" / "run" / "last.pt").stat().st_mtime_ns
    assert tool.main(["--work", str(work), "--quick", "--weights", "0", "2"]) == 0
    assert (work / "flow_w2_s0" / "run" / "last.pt").stat().st_mtime_ns == stamp
    # Other translator settings are runs of their own, beside the default ones.
    assert tool.main(["--work", str(work), "--quick", "--weights", "0", "--translator-set", "train.max_steps=2"]) == 0
    key = tool.entry_key(0.0, 0, ["train.max_steps=2"])
    assert key != "w0_s0" and key in json.loads((work / "results.json").read_text())
    assert "max_steps: 2" in (work / f"flow_{key}" / "run" / "config.yaml").read_text()
    with pytest.raises(SystemExit, match=">= 0"):
        tool.main(["--work", str(work), "--weights", "-1"])
