"""`rgbt demo --quick` end to end: every stage runs, the report files exist and hold finite numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

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
    assert set(report["detectors"]) == {"thermal", "rgb", "rgb_thermal", "rgb_thermal_shiftaug", "rgb_thermal_rfa",
                                        "fake_rgb_thermal"}
    for values in report["detectors"].values():
        assert set(values) == {"all", "day", "night", "all_sd", "day_sd", "night_sd"}
        assert all(values[p] is not None and 0.0 <= values[p] <= 100.0 for p in ("all", "day", "night"))
        assert values["all_sd"] is None or 0.0 <= values["all_sd"] <= 50.0
    for detector in ("thermal", "rgb", "rgb_thermal", "rgb_thermal_shiftaug", "rgb_thermal_rfa", "fake_rgb_thermal"):
        assert (demo_dir / "detectors" / detector / "last.pt").is_file()
    rfa = (demo_dir / "detectors" / "rgb_thermal_rfa" / "config.yaml").read_text()
    assert "align: rfa_region" in rfa and "align_prior: registration" in rfa
    assert "shift_rgb: 8.0" in rfa and "fusion_init: thermal" in rfa
    assert "shift_rgb_prob: 0.5" in rfa
    from rgbt.demo import QUICK, probe_shift

    assert set(report["rfa_offsets"]) == {"aligned", f"shift:{probe_shift(QUICK.shifts):g},0"}
    assert all(v["objects"] > 0 and v["median"] >= 0 for v in report["rfa_offsets"].values())
    shiftaug = (demo_dir / "detectors" / "rgb_thermal_shiftaug" / "config.yaml").read_text()
    assert "shift_rgb: 8.0" in shiftaug and "shift_rgb_prob: 0.5" in shiftaug and "fusion_init: thermal" in shiftaug
    assert str(demo_dir / "detectors" / "rgb" / "last.pt") in shiftaug  # started from the single-modality runs
    assert "shift_rgb: 0.0" in (demo_dir / "detectors" / "rgb_thermal" / "config.yaml").read_text()
    assert {"roundtrip_max_abs", "rounds_psnr_db", "edge_f1", "gradient_ssim", "psnr_day", "ssim_day",
            "frames"} <= set(report["translator"])
    assert report["translator"]["roundtrip_max_abs"] < 1e-3  # the flow is invertible
    assert {row["detector"] for row in report["misalignment"]} == {
        "thermal", "rgb_thermal", "rgb_thermal_shiftaug", "rgb_thermal_rfa", "fake_rgb_thermal",
        "rgb_thermal_registered"}
    perturbations = {row["perturbation"] for row in report["misalignment"]}
    assert {"shift:0,0:rgb", "shift:16,0:rgb", "shift:0,-16:rgb", "blackout:all:rgb"} <= perturbations
    claims = {f["claim"] for f in report["findings"]}
    assert claims == {"fusion_wins", "day_both_informative", "night_rgb_weak", "rgb_matters", "misalignment_hurts",
                      "fake_rgb_crossover", "shift_augmentation_helps", "registration_restores", "rfa_aligned",
                      "rfa_robust"}
    assert all(f["held"] in (True, False) and f["text"] for f in report["findings"])
    text = (demo_dir / "report.md").read_text()
    assert "What the numbers show" in text
    assert all(f["text"] in text for f in report["findings"])
    assert set(report["timings"]) >= {"data", "translator", "fake_rgb", "evaluate", "rfa_offsets", "misalign"}
    assert "RGB + thermal, registered (shift model)" in text and "predicted RGB offsets" in text
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


def _rows(detector: str, aligned: float, per_px: float, blackout: float | None = None) -> list[dict]:
    rows = []
    for dx, dy in ((0, 0), (8, 0), (-8, 0), (16, 0), (-16, 0), (0, 8), (0, -8), (0, 16), (0, -16)):
        s = max(abs(dx), abs(dy))
        rows.append({"detector": detector, "perturbation": f"shift:{dx},{dy}:rgb", "value": s, "dx": dx, "dy": dy,
                     "all": aligned + per_px * s, "day": None, "night": None})
    if blackout is not None:
        rows.append({"detector": detector, "perturbation": "blackout:all:rgb", "value": 0, "dx": 0, "dy": 0,
                     "all": blackout, "day": None, "night": None})
    return rows


def test_findings_state_what_held_and_what_did_not() -> None:
    from rgbt.demo import demo_findings

    detectors = {"thermal": {"all": 20.0, "day": 25.0, "night": 10.0}, "rgb": {"all": 30.0, "day": 30.0, "night": 40.0},
                 "rgb_thermal": {"all": 12.0, "all_sd": 1.5}, "fake_rgb_thermal": {"all": 16.0},
                 "rgb_thermal_rfa": {"all": 12.5}}
    rows = (_rows("rgb_thermal", 12.0, 1.0, blackout=20.0) + _rows("rgb_thermal_shiftaug", 13.0, 0.2)
            + _rows("rgb_thermal_registered", 11.0, 0.1) + _rows("rgb_thermal_rfa", 12.5, 0.2))
    found = {f["claim"]: f for f in demo_findings(detectors, rows, "-16:16:8")}
    assert found["fusion_wins"]["held"] is True  # 12 <= 0.8 * 20
    assert "RGB + thermal 12.00 +- 1.50 against thermal only 20.00 and" in found["fusion_wins"]["text"]
    assert found["day_both_informative"]["held"] is True  # 30 / 25 = 1.2
    assert found["night_rgb_weak"]["held"] is True  # 40 / 10 = 4
    assert found["rgb_matters"]["held"] is True and "8.00 points" in found["rgb_matters"]["text"]
    assert found["misalignment_hurts"]["held"] is True  # 20 at 8 px >= 1.5 * 12
    crossover = found["fake_rgb_crossover"]
    assert crossover["held"] is True and "from RGB shifts of 8 px" in crossover["text"]
    assert found["shift_augmentation_helps"]["held"] is True  # loses 1.6 against 8
    assert found["registration_restores"]["held"] is True  # 11.8 at 8 px <= 1.2 * 12
    assert "registered pairs 11.80 at 8 px, against 20.00 unregistered" in found["registration_restores"]["text"]
    assert found["rfa_aligned"]["held"] is True  # |12.5 - 12| <= 1.2
    assert found["rfa_robust"]["held"] is True  # 14.1 <= 1.2 * 12.5

    flat = (_rows("rgb_thermal", 12.0, 0.05, blackout=13.0) + _rows("rgb_thermal_shiftaug", 13.0, 0.5)
            + _rows("rgb_thermal_registered", 16.0, 0.0) + _rows("rgb_thermal_rfa", 14.0, 1.0))
    weak = {**detectors, "rgb_thermal": {"all": 19.0}, "rgb": {"all": 30.0, "day": 60.0, "night": 12.0},
            "rgb_thermal_rfa": {"all": 22.0}}
    found = {f["claim"]: f for f in demo_findings(weak, flat, "-16:16:8")}
    assert {claim for claim, f in found.items() if f["held"] is False} == {
        "fusion_wins", "day_both_informative", "night_rgb_weak", "rgb_matters", "misalignment_hurts",
        "fake_rgb_crossover", "shift_augmentation_helps", "registration_restores", "rfa_aligned", "rfa_robust"}
    assert "does not beat RGB + thermal at any measured shift (up to 16 px)" in found["fake_rgb_crossover"]["text"]


def test_the_same_command_gives_the_same_numbers(demo_dir: Path, tmp_path: Path) -> None:
    """A second run in another folder (data, training with a loader worker, evaluation, bootstrap)
    gives the first run's numbers and weights exactly."""
    from rgbt.demo import run_demo
    from rgbt.engine.checkpoint import load_checkpoint

    keys = ("thermal", "rgb", "rgb_thermal")
    again = run_demo(tmp_path / "b", quick=True, device="cpu", sweep=False, detectors=keys)
    first = json.loads((demo_dir / "report.json").read_text())["detectors"]
    assert again["detectors"] == {key: first[key] for key in keys}
    weights = [load_checkpoint(root / "detectors" / "rgb_thermal" / "last.pt")["model"]
               for root in (demo_dir, tmp_path / "b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_fusion_detector_needs_the_detectors_it_starts_from(tmp_path: Path) -> None:
    from rgbt.demo import run_demo

    with pytest.raises(ValueError, match="rgb_thermal starts from rgb, thermal: include it"):
        run_demo(tmp_path, quick=True, device="cpu", detectors=("rgb_thermal",))
    with pytest.raises(ValueError, match="unknown demo detectors"):
        run_demo(tmp_path, quick=True, device="cpu", detectors=("lidar",))


def test_detectors_trained_side_by_side_match_one_at_a_time(tmp_path: Path, capsys) -> None:
    """Two trainings at once (own processes, cores / 2 threads each) give the weights that the same
    trainings give one after the other with that thread count, and a fusion detector waits for the
    detectors it starts from."""
    import os

    from rgbt.demo import run_demo
    from rgbt.engine.checkpoint import load_checkpoint

    keys = ("thermal", "rgb", "rgb_thermal")
    run_demo(tmp_path / "side", quick=True, device="cpu", sweep=False, detectors=keys, parallel=2)
    printed = capsys.readouterr().out
    assert printed.count("up to 2 trainings at once") == 3
    assert printed.index("detector_rgb_thermal ...") > max(printed.index("detector_thermal: "),
                                                            printed.index("detector_rgb: "))
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        run_demo(tmp_path / "one", quick=True, device="cpu", sweep=False, detectors=keys, parallel=1)
    finally:
        torch.set_num_threads(threads)
    for key in keys:
        weights = [load_checkpoint(tmp_path / run / "detectors" / key / "last.pt")["model"] for run in ("side", "one")]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), key
    capsys.readouterr()
    run_demo(tmp_path / "side", quick=True, device="cpu", sweep=False, detectors=keys, parallel=2)
    assert capsys.readouterr().out.count("reused") >= 3  # a re-run trains nothing again


def test_the_longest_ready_training_starts_first() -> None:
    from rgbt.demo import DETECTORS, ready_trainings

    keys = list(DETECTORS)
    assert ready_trainings(keys, set()) == ["rgb", "thermal"]
    assert ready_trainings(keys[2:], {"thermal"}) == ["fake_rgb_thermal"]
    after_both = ready_trainings(keys[2:], {"thermal", "rgb"})
    assert after_both[0] == "rgb_thermal_rfa" and set(after_both) == set(keys[2:])
    assert after_both[1:] == [k for k in keys[2:] if k != "rgb_thermal_rfa"]


def test_sweep_groups_balance_the_detectors() -> None:
    from rgbt.demo import SWEEP_DETECTORS, sweep_groups

    keys = list(SWEEP_DETECTORS)
    assert sweep_groups(keys, 1) == [keys]
    groups = sweep_groups(keys, 2)
    assert sorted(k for g in groups for k in g) == sorted(keys) and len(groups) == 2
    assert ["rgb_thermal" in g for g in groups].count(True) == 1
    assert all(g == [k for k in keys if k in g] for g in groups)
    assert sweep_groups(["thermal"], 4) == [["thermal"]]


def test_a_sweep_shared_between_processes_gives_the_serial_rows(demo_dir: Path, tmp_path: Path) -> None:
    """Two sweep processes (cores / 2 threads each) give the rows one process gives with that
    thread count, in the same order, and the merged csv and figure."""
    import os
    import shutil

    from rgbt.data.source import open_source
    from rgbt.demo import QUICK, SWEEP_DETECTORS, _sweep, demo_setup
    from rgbt.evaluation.sweep import read_rows
    report = json.loads((demo_dir / "report.json").read_text())
    root = Path(report["settings"]["root"])
    fake = demo_dir / "fake_rgb"
    out, alone = tmp_path / "shared", tmp_path / "alone"
    for run in (out, alone):
        for key in SWEEP_DETECTORS:
            shutil.copytree(demo_dir / "detectors" / key, run / "detectors" / key)
    source = open_source(root, "test", fake_rgb_root=fake)
    setup = demo_setup(source[0].size[0], root)
    keys = list(SWEEP_DETECTORS)
    shared = _sweep(out, keys, source, setup, QUICK, "cpu", 2, (root, "test", fake))
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        serial = _sweep(alone, keys, source, setup, QUICK, "cpu")
    finally:
        torch.set_num_threads(threads)
    assert [dict(r) for r in shared] == [dict(r) for r in serial]
    assert [(r["detector"], r["perturbation"]) for r in shared] == [
        (r["detector"], r["perturbation"]) for r in report["misalignment"]]

    def csv_rows(run: Path) -> list[dict]:
        rows = read_rows(run / "misalign" / "misalignment.csv")
        return sorted(rows, key=lambda r: (r["detector"], r["perturbation"]))

    assert csv_rows(out) == csv_rows(alone) and len(csv_rows(out)) == len(shared)
    assert sorted(p.name for p in (out / "misalign").glob("part_*")) == ["part_0", "part_1"]
    assert (out / "misalign" / "misalignment.png").is_file()
