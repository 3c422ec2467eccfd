"""`rgbt demo --quick` end to end: every stage runs, the report files exist and hold finite numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rgbt.cli import main


def _finite_numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _finite_numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _finite_numbers(v)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    return out


def test_quick_demo_writes_the_report(demo_dir: Path) -> None:
    for name in ("report.md", "report.html", "report.json", "misalign/misalignment.csv",
                 "figures/mr_fppi.png", "figures/triplets.png", "misalign/misalignment.png"):
        assert (demo_dir / name).is_file(), name
    report = json.loads((demo_dir / "report.json").read_text())
    assert set(report) >= {"detectors", "misalignment", "translator", "timings"}
    assert set(report["detectors"]) == {"thermal", "rgb_thermal", "fake_rgb_thermal"}
    for values in report["detectors"].values():
        assert set(values) == {"all", "day", "night"}
        assert all(v is not None and 0.0 <= v <= 100.0 for v in values.values())
    assert {"roundtrip_max_abs", "rounds_psnr_db", "edge_f1", "gradient_ssim", "psnr_day", "ssim_day",
            "frames"} <= set(report["translator"])
    assert report["translator"]["roundtrip_max_abs"] < 1e-3  # the flow is invertible
    assert {row["detector"] for row in report["misalignment"]} == set(report["detectors"])
    assert set(report["timings"]) >= {"data", "translator", "fake_rgb", "evaluate", "misalign"}
    numbers = _finite_numbers(report)
    assert numbers and all(math.isfinite(x) for x in numbers)
    html = (demo_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "<img src=\"figures" not in html  # self-contained


def test_a_rerun_reuses_every_finished_stage(demo_dir: Path, capsys) -> None:
    before = (demo_dir / "report.json").read_text()
    assert main(["demo", "--quick", "--out", str(demo_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "reused" in out and "translator ..." not in out
    assert json.loads((demo_dir / "report.json").read_text())["detectors"] == json.loads(before)["detectors"]
