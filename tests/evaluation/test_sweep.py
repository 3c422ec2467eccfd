"""The misalignment sweep: sweep construction, analytic reference curves, resumable output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rgbt.data.perturbation import Perturbation
from rgbt.data.sample import PairSample
from rgbt.engine.misalign import run_sweep
from rgbt.evaluation.sweep import (
    COLUMNS,
    GroundTruthDetector,
    SweepPoint,
    build_sweep,
    format_table,
    parse_range,
    read_rows,
)

# 30 x 60 px people: "reasonable" (height >= 55, inside the 5 px border of a 640 x 512 frame).
BOX_W, BOX_H = 30.0, 60.0


class MemorySource:
    """A :class:`FrameSource` over in-memory samples (blank images: the detectors read boxes only)."""

    name = "memory"
    root = Path("memory")

    def __init__(self, n_frames: int = 4, size: tuple[int, int] = (512, 640)) -> None:
        self.size = size
        self.frame_ids = [f"set{6 if i % 2 == 0 else 9:02d}/V000/I{i:05d}" for i in range(n_frames)]
        self.loads = 0

    def __len__(self) -> int:
        return len(self.frame_ids)

    def annotations(self, index: int) -> PairSample:
        boxes = np.array([[100 + 40 * index, 100, 100 + 40 * index + BOX_W, 100 + BOX_H],
                          [400, 300 - 20 * index, 400 + BOX_W, 300 - 20 * index + BOX_H]], dtype=np.float32)
        period = "day" if index % 2 == 0 else "night"
        return PairSample(rgb=None, thermal=None, boxes=boxes, labels=["person", "person"], ignore=[0, 0],
                          occlusion=[0, 0], boxes_rgb=boxes.copy(),
                          meta={"frame_id": self.frame_ids[index], "period": period, "size": self.size})

    def __getitem__(self, index: int) -> PairSample:
        self.loads += 1
        height, width = self.size
        return self.annotations(index).with_images(
            rgb=np.zeros((height, width, 3), np.uint8), thermal=np.zeros((height, width), np.uint8)
        )


def _iou_of_shift(dx: float, dy: float) -> float:
    inter = max(0.0, BOX_W - abs(dx)) * max(0.0, BOX_H - abs(dy))
    return inter / (2 * BOX_W * BOX_H - inter)


def _csv_rows(out: Path) -> list[list[str]]:
    with open(out / "misalignment.csv", newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# ------------------------------------------------------------------------------------------
# sweep specification
# ------------------------------------------------------------------------------------------


def test_parse_range() -> None:
    assert parse_range("-10:10:2") == [-10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10]
    assert parse_range("0.9:1.1:0.05") == [0.9, 0.95, 1.0, 1.05, 1.1]
    assert parse_range("-4:4:1") == [float(v) for v in range(-4, 5)]
    assert parse_range("0:5:2") == [0, 2, 4]
    assert parse_range("3:1:-1") == [3, 2, 1]
    assert parse_range("0:2") == [0, 1, 2]
    assert parse_range("-2, 0.5,4") == [-2, 0.5, 4]
    assert parse_range("7") == [7] and parse_range(1.5) == [1.5] and parse_range([1, 2]) == [1, 2]
    for bad, message in [("1:5:0", "step is 0"), ("5:1:1", "points away"), ("a:3:1", "'a'"), ("1:2:3:4", "START"),
                         ("", "expected")]:
        with pytest.raises(ValueError, match=message):
            parse_range(bad)


def test_build_sweep_patterns_and_cases() -> None:
    points = build_sweep(["S0", "S45", "S90", "S135"], "-2:2:2", rotations="-1:1:1", scales="0.9,1.1", blackout=True)
    shifts = {(p.name, p.value): (p.dx, p.dy) for p in points if p.name.startswith("S")}
    assert shifts[("S0", 2)] == (2, 0) and shifts[("S45", 2)] == (2, 2)
    assert shifts[("S90", -2)] == (0, -2) and shifts[("S135", 2)] == (2, -2) and shifts[("S135", -2)] == (-2, 2)
    assert [p.perturbation for p in points if p.name == "S45"][0] == Perturbation("shift", dx=-2, dy=-2)
    assert [p.key for p in points if p.name == "rotate"] == ["rotate:-1:rgb", "rotate:0:rgb", "rotate:1:rgb"]
    assert [p.value for p in points if p.name == "scale"] == [0.9, 1.1]
    cases = [p for p in points if p.name == "blackout"]
    assert [p.key for p in cases] == ["blackout:all:rgb", "blackout:all:thermal",
                                      "blackout:left:rgb+blackout:right:thermal", "blackout:border:thermal"]
    assert isinstance(cases[2].perturbation, tuple) and isinstance(cases[0].perturbation, Perturbation)
    thermal = build_sweep(["S0"], "3", modality="thermal")
    assert thermal[0].key == "shift:3,0:thermal"
    with pytest.raises(ValueError, match="S30"):
        build_sweep(["S30"], "1")
    with pytest.raises(ValueError, match="empty"):
        build_sweep([], None)


# ------------------------------------------------------------------------------------------
# sweeps with the reference detectors
# ------------------------------------------------------------------------------------------


def test_reference_detectors_follow_the_analytic_iou(tmp_path: Path) -> None:
    source = MemorySource()
    points = build_sweep(["S0", "S45", "S90", "S135"], "-12:12:4", rotations="-2:2:2", scales="0.95,1.05",
                         blackout=True)
    detectors = {"gt-thermal": GroundTruthDetector("thermal"), "gt-rgb": GroundTruthDetector("rgb")}
    rows = run_sweep(detectors, source, points, tmp_path, batch_size=3, progress=False, plot=False)

    keys = list(dict.fromkeys(p.key for p in points))
    assert len(rows) == 2 * len(keys)  # s = 0 of the four patterns is computed once
    table = {(r["detector"], r["perturbation"]): r for r in rows}
    for point in points:
        thermal = table[("gt-thermal", point.key)]
        for period in ("all", "day", "night"):
            assert thermal[period] == pytest.approx(0.0, abs=1e-6)
        if point.name.startswith("S"):
            rgb = table[("gt-rgb", point.key)]
            # every box has the same size, so all of them match or none does
            expected = 0.0 if _iou_of_shift(point.dx, point.dy) >= 0.5 else 100.0
            assert rgb["all"] == pytest.approx(expected, abs=1e-6), point
            assert (rgb["value"], rgb["dx"], rgb["dy"]) == (point.value, point.dx, point.dy)
    # the threshold really is crossed inside this sweep: |dx| > w / 3 = 10 px misses, 8 px matches
    assert table[("gt-rgb", "shift:12,0:rgb")]["all"] == pytest.approx(100.0)
    assert table[("gt-rgb", "shift:8,0:rgb")]["all"] == pytest.approx(0.0, abs=1e-6)
    assert table[("gt-rgb", "shift:0,12:rgb")]["all"] == pytest.approx(0.0, abs=1e-6)  # |dy| <= h / 3 = 20
    assert table[("gt-rgb", "shift:8,-8:rgb")]["all"] == pytest.approx(100.0)
    # blackouts do not move boxes; the thermal oracle ignores pixels
    assert table[("gt-rgb", "blackout:all:rgb")]["all"] == pytest.approx(0.0, abs=1e-6)
    # each image is loaded once per distinct point and shared by both detectors
    assert source.loads == len(source) * len(keys)


def test_output_files_have_the_exact_columns(tmp_path: Path) -> None:
    points = build_sweep(["S0"], "0,12")
    rows = run_sweep({"gt-rgb": GroundTruthDetector("rgb")}, MemorySource(), points, tmp_path,
                     progress=False, plot=False)
    lines = _csv_rows(tmp_path)
    assert tuple(lines[0]) == COLUMNS == ("detector", "perturbation", "value", "dx", "dy", "all", "day", "night")
    assert [line[:5] for line in lines[1:]] == [["gt-rgb", "shift:0,0:rgb", "0", "0", "0"],
                                               ["gt-rgb", "shift:12,0:rgb", "12", "12", "0"]]
    assert float(lines[2][5]) == pytest.approx(100.0)
    payload = json.loads((tmp_path / "misalignment.json").read_text())
    assert payload == rows == read_rows(tmp_path / "misalignment.csv")
    assert list(payload[0]) == list(COLUMNS)
    assert "gt-rgb" in format_table(rows) and "100.00" in format_table(rows)


class FailingDetector:
    """Counts its calls and raises on call number ``fail_at`` (1-based); never fails when 0."""

    def __init__(self, fail_at: int = 0) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.inner = GroundTruthDetector("rgb")

    def __call__(self, samples: list[PairSample]) -> list[np.ndarray]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash")
        return self.inner(samples)


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path: Path) -> None:
    source = MemorySource()
    points = build_sweep(["S0"], "-8:8:4")  # 5 points, one detector call each (batch >= frames)
    k = 3
    crashing = FailingDetector(fail_at=k + 1)
    with pytest.raises(RuntimeError, match="simulated"):
        run_sweep({"det": crashing}, source, points, tmp_path, batch_size=8, progress=False, plot=False)
    assert len(_csv_rows(tmp_path)) == 1 + k
    assert len(json.loads((tmp_path / "misalignment.json").read_text())) == k

    resumed = FailingDetector()
    rows = run_sweep({"det": resumed}, source, points, tmp_path, batch_size=8, progress=False, plot=False)
    assert resumed.calls == len(points) - k
    lines = _csv_rows(tmp_path)
    assert [line[1] for line in lines[1:]] == [p.key for p in points]  # each row once, in sweep order
    assert [r["perturbation"] for r in rows] == [p.key for p in points]

    again = FailingDetector()
    run_sweep({"det": again}, source, points, tmp_path, batch_size=8, progress=False, plot=False)
    assert again.calls == 0 and len(_csv_rows(tmp_path)) == 1 + len(points)


def test_a_row_cut_short_is_dropped_and_recomputed(tmp_path: Path) -> None:
    points = build_sweep(["S0"], "0,4")
    run_sweep({"det": FailingDetector()}, MemorySource(), points, tmp_path, progress=False, plot=False)
    text = (tmp_path / "misalignment.csv").read_text()
    (tmp_path / "misalignment.csv").write_text(text + "det,shift:8,0:rgb,8,8")  # killed mid-write
    assert len(read_rows(tmp_path / "misalignment.csv")) == 2
    more = build_sweep(["S0"], "0,4,8")
    detector = FailingDetector()
    run_sweep({"det": detector}, MemorySource(), more, tmp_path, progress=False, plot=False)
    assert detector.calls == 1
    assert [line[1] for line in _csv_rows(tmp_path)[1:]] == [p.key for p in more]


def test_a_last_line_without_newline_is_not_trusted(tmp_path: Path) -> None:
    points = build_sweep(["S0"], "0")
    run_sweep({"det": GroundTruthDetector()}, MemorySource(), points, tmp_path, progress=False, plot=False)
    path = tmp_path / "misalignment.csv"
    path.write_text(path.read_text().rstrip("\n"))  # "...,1e-08" may have been "...,1e-08X" before the cut
    assert read_rows(path) == []


class SizelessSource(MemorySource):
    """320 x 256 frames whose annotation records carry no size (the evaluator would assume 640 x 512)."""

    def __init__(self) -> None:
        super().__init__(n_frames=1, size=(256, 320))

    def annotations(self, index: int) -> PairSample:
        # B ends at x2 = 318 > 320 - 5: an ignore region by the border rule, a positive if the width were 640.
        boxes = np.array([[100, 100, 130, 160], [280, 100, 318, 160]], dtype=np.float32)
        return PairSample(rgb=None, thermal=None, boxes=boxes, labels=["person", "person"], ignore=[0, 0],
                          occlusion=[0, 0], meta={"frame_id": self.frame_ids[index], "period": "day"})


def test_the_frame_size_reaches_the_evaluator(tmp_path: Path) -> None:
    def first_box_only(samples: list[PairSample]) -> list[np.ndarray]:
        return [np.array([[100, 100, 130, 160, 1.0]])] * len(samples)

    rows = run_sweep({"det": first_box_only}, SizelessSource(), build_sweep(["S0"], "0"), tmp_path,
                     progress=False, plot=False)
    assert rows[0]["all"] == pytest.approx(0.0, abs=1e-6)  # 50 % if B were counted as a positive


def test_malformed_results_and_changed_setups_are_refused(tmp_path: Path) -> None:
    points = build_sweep(["S0"], "0")
    run_sweep({"det": GroundTruthDetector()}, MemorySource(), points, tmp_path, progress=False, plot=False)
    with pytest.raises(ValueError, match="setup"):
        run_sweep({"det": GroundTruthDetector()}, MemorySource(), points, tmp_path, setup="near",
                  progress=False, plot=False)
    with pytest.raises(ValueError, match="frame_list"):
        run_sweep({"det": GroundTruthDetector()}, MemorySource(3), points, tmp_path, progress=False, plot=False)
    (tmp_path / "misalignment.csv").write_text("detector,perturbation,value\n")
    with pytest.raises(ValueError, match=r"misalignment.csv:1: expected the header"):
        run_sweep({"det": GroundTruthDetector()}, MemorySource(), points, tmp_path, progress=False, plot=False)


def test_detector_output_is_checked(tmp_path: Path) -> None:
    points = build_sweep(["S0"], "0")

    def short(samples: list[PairSample]) -> list[np.ndarray]:
        return [np.zeros((0, 5))] * (len(samples) - 1)

    def wrong_shape(samples: list[PairSample]) -> list[np.ndarray]:
        return [np.zeros((2, 4))] * len(samples)

    with pytest.raises(ValueError, match="returned 3 results for 4 samples"):
        run_sweep({"short": short}, MemorySource(), points, tmp_path / "a", progress=False, plot=False)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        run_sweep({"shape": wrong_shape}, MemorySource(), points, tmp_path / "b", progress=False, plot=False)
    with pytest.raises(ValueError, match="boxes_rgb"):
        GroundTruthDetector("rgb")([PairSample(rgb=None, thermal=None)])


def test_workers_give_the_same_rows_and_the_plot_is_written(tmp_path: Path) -> None:
    points = build_sweep(["S0", "S90"], "-12:12:12", rotations="2", blackout=True)
    detectors = {"gt-rgb": GroundTruthDetector("rgb"), "gt-thermal": GroundTruthDetector("thermal")}
    serial = run_sweep(detectors, MemorySource(), points, tmp_path / "serial", batch_size=3, progress=False,
                       plot=False)
    threaded = run_sweep(detectors, MemorySource(), points, tmp_path / "threads", batch_size=3, workers=2,
                         progress=False)
    assert serial == threaded
    png = (tmp_path / "threads" / "misalignment.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_sweep_point_applies_its_perturbations_in_order() -> None:
    point = SweepPoint((Perturbation.parse("blackout:left:rgb"), Perturbation.parse("shift:2,0:thermal")),
                       "custom", 0.0)
    sample = MemorySource(1)[0]
    out = point.apply(sample)
    assert out.meta["perturbations"] == ["blackout:left:rgb", "shift:2,0:thermal"]
    assert point.key == "blackout:left:rgb+shift:2,0:thermal"


def test_cli_runs_a_reference_sweep(tmp_path: Path, monkeypatch, capsys) -> None:
    import rgbt.data.source
    from rgbt.cli import main

    monkeypatch.setattr(rgbt.data.source, "open_source", lambda *args, **kwargs: MemorySource())
    out = tmp_path / "run"
    code = main(["misalign", "--data", str(tmp_path), "--reference", "thermal", "rgb", "--patterns", "S0",
                 "--shifts=-12:12:12", "--blackout", "--workers", "0", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "gt-thermal" in printed and "shift:-12,0:rgb" in printed
    rows = read_rows(out / "misalignment.csv")
    assert len(rows) == 2 * (3 + 4)
    assert (out / "misalignment.png").is_file() and (out / "misalignment.json").is_file()
    assert main(["misalign", "--data", str(tmp_path), "--reference", "thermal", "--names", "a", "b",
                 "--out", str(out)]) == 1
    assert "--names gives 2 names for 1 detectors" in capsys.readouterr().err


def test_cli_on_the_real_kaist_fixture(shared_data: Path, tmp_path: Path, capsys) -> None:
    from rgbt.cli import main

    code = main(["misalign", "--data", str(shared_data / "kaist"), "--image-set", "fixture-test", "--reference",
                 "thermal", "--patterns", "S0", "--shifts", "0,8", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    rows = read_rows(tmp_path / "misalignment.csv")
    assert [r["perturbation"] for r in rows] == ["shift:0,0:rgb", "shift:8,0:rgb"]
    assert all(r["all"] == pytest.approx(0.0, abs=1e-6) for r in rows)


class ThermalOnly(FailingDetector):
    """A detector that declares it reads thermal only (as rgbt's checkpoint detectors do)."""

    modalities = ("thermal",)

    def __init__(self) -> None:
        super().__init__()
        self.inner = GroundTruthDetector("thermal")


def test_a_detector_is_not_rerun_on_perturbations_it_cannot_see(tmp_path: Path) -> None:
    points = build_sweep(["S0"], "-8:8:4", blackout=True)  # 5 RGB shifts + 4 blackout cases
    detector = ThermalOnly()
    rows = run_sweep({"thermal": detector}, MemorySource(), points, tmp_path, batch_size=8, progress=False,
                     plot=False)
    # one call for all RGB-only points, then one per case that touches thermal (and opposite-side cut)
    touching = [p for p in points if any(q.modality in ("thermal", "fake_rgb") for q in p.perturbations)]
    assert detector.calls == 1 + len(touching)
    assert len(rows) == len(points)
    shift_rows = [r for r in rows if r["perturbation"].startswith("shift")]
    assert {r["all"] for r in shift_rows} == {shift_rows[0]["all"]}
    assert [r["dx"] for r in shift_rows] == [-8.0, -4.0, 0.0, 4.0, 8.0]
