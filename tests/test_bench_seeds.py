"""tools/bench_seeds.py: the demo's detectors trained once per seed, tabulated with their spread."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_seeds.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("bench_seeds", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not run anything
    return module


def test_table_reports_mean_range_and_whether_the_spread_meets_the_target() -> None:
    tool = load_tool()
    reports = [{"detectors": {"thermal": {"all": a, "day": a + 1, "night": a - 1, "all_sd": 1.0},
                              "rgb": {"all": b, "day": b, "night": b, "all_sd": 2.0}}} for a, b in ((20, 30), (22, 40))]
    numbers = tool.collect(reports)
    assert numbers["thermal"]["all"] == [20, 22] and numbers["rgb"]["all_sd"] == [2.0, 2.0]
    table = tool.format_table(numbers, [0, 1])
    assert "| thermal | 21.00 (20.00-22.00) | 22.00 (21.00-23.00) | 20.00 (19.00-21.00) | 2.00 | <= 3: met |" in table
    assert "| rgb | 35.00 (30.00-40.00) |" in table and "10.00 | <= 3: NOT met" in table
    # A run folder reused for one seed may hold more detectors than asked for: only the asked ones count,
    # and a seed without a detector leaves its spread unknown rather than zero.
    reports[0]["detectors"]["fake_rgb_thermal"] = {"all": 25.0, "day": 25.0, "night": 25.0, "all_sd": 1.0}
    assert set(tool.collect(reports, ["thermal"])) == {"thermal"}
    partial = tool.collect(reports)
    assert partial["fake_rgb_thermal"]["all"] == [25.0, None]
    assert "| fake_rgb_thermal | 25.00 (25.00-25.00) | 25.00 (25.00-25.00) | 25.00 (25.00-25.00) | - | <= 3: - |" \
        in tool.format_table(partial, [0, 1])


def test_two_seeds_of_the_quick_demo_are_trained_resumably(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    out = tmp_path / "seeds.json"
    argv = ["--quick", "--seeds", "0", "1", "--work", str(tmp_path / "work"), "--detectors", "thermal",
            "--device", "cpu", "--fresh-test-seeds", "5", "--json", str(out)]
    assert tool.main(argv) == 0
    numbers = json.loads(out.read_text())
    assert numbers["seeds"] == [0, 1] and set(numbers) == {"thermal", "seeds", "fresh"}
    assert len(numbers["thermal"]["all"]) == 2 and len(numbers["fresh"]["5"]["thermal"]["all"]) == 2
    assert "fresh test split (seed 5" in capsys.readouterr().out
    config0 = (tmp_path / "work" / "seed_0" / "detectors" / "thermal" / "config.yaml").read_text()
    config1 = (tmp_path / "work" / "seed_1" / "detectors" / "thermal" / "config.yaml").read_text()
    assert "seed: 0" in config0 and "seed: 1" in config1
    capsys.readouterr()
    assert tool.main(argv) == 0  # a re-run reuses every finished stage
    assert "reused" in capsys.readouterr().out and json.loads(out.read_text()) == numbers


def test_fresh_table_checks_two_bootstrap_sds() -> None:
    tool = load_tool()
    numbers = {"thermal": {"all": [20.0, 30.0], "all_sd": [2.0, 1.0]}}
    fresh = {"thermal": {"all": [23.0, 33.5], "all_sd": [1.5, 1.5]}}
    table = tool.fresh_table(numbers, fresh, [4, 7])
    assert "| thermal | 4 | 20.00 | 23.00 | +3.00 | yes (2 SD = 4.00) |" in table
    assert "| thermal | 7 | 30.00 | 33.50 | +3.50 | NO (2 SD = 3.00) |" in table


def test_split_table_compares_the_spread_across_test_splits_with_the_bootstrap() -> None:
    tool = load_tool()
    numbers = {"thermal": {"all": [10.0, 30.0], "all_sd": [1.0, 2.0]}}
    fresh = {1: {"thermal": {"all": [12.0, 29.0], "all_sd": [1.0, 2.0]}},
             2: {"thermal": {"all": [14.0, 33.0], "all_sd": [1.0, 2.0]}}}
    table = tool.split_table(numbers, fresh, [0, 1])
    # Seed 0: the demo split (10) is easier than both fresh ones (12, 14: SD 1.41); seed 1 lies inside.
    assert "| thermal | 0 | 10.00 | 13.00 (12.00-14.00) | 1.41 | 1.00 | easier |" in table
    assert "| thermal | 1 | 30.00 | 31.00 (29.00-33.00) | 2.83 | 2.00 | yes |" in table
    one = tool.split_table(numbers, {1: fresh[1]}, [0, 1])
    assert "| thermal | 0 | - | - | - | - | - |" in one  # one split gives no spread
