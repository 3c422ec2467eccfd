"""Registration as a remedy in the misalignment sweep: `rgbt misalign --align`, `run_sweep(align=...)`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.sample import PairSample
from rgbt.data.source import open_source
from rgbt.engine.align import RegisteredInput
from rgbt.engine.misalign import REGISTERED_SUFFIX, run_sweep
from rgbt.evaluation.missrate import height_scaled
from rgbt.evaluation.sweep import GroundTruthDetector, build_sweep, read_rows

#: Half-KAIST frames: the height range of "reasonable" halved.
SETUP = height_scaled("reasonable", 0.5)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 synthetic test frames of 320x256 (2 day, 1 night) with KAIST-Paired annotations."""
    from rgbt.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("sweep") / "root", 0, 3, seed=2, progress=False)


class CountingReference(GroundTruthDetector):
    """The RGB-frame ground truth, counting the frames it is asked about."""

    def __init__(self) -> None:
        super().__init__("rgb")
        self.frames = 0

    def __call__(self, samples: list[PairSample]) -> list[np.ndarray]:
        self.frames += len(samples)
        return super().__call__(samples)


def _by(rows, name):
    return {row["value"]: row for row in rows if row["detector"] == name}


def test_the_registered_curve_stays_flat_where_the_plain_one_degrades(root: Path, tmp_path: Path) -> None:
    source = open_source(root)
    points = build_sweep(["S0"], "0,6")
    detector = CountingReference()
    rows = run_sweep({"gt-rgb": detector}, source, points, tmp_path, setup=SETUP, align="shift", progress=False,
                     plot=False)
    assert [row["detector"] for row in rows] == ["gt-rgb", "gt-rgb", "gt-rgb_registered", "gt-rgb_registered"]
    plain, registered = _by(rows, "gt-rgb"), _by(rows, "gt-rgb" + REGISTERED_SUFFIX)
    # The RGB-only oracle loses its day pedestrians at a 6 px shift (their boxes no longer overlap the
    # thermal ones by half); registered, its boxes are moved back into the thermal frame.
    assert plain[6.0]["day"] > plain[0.0]["day"] + 50
    assert registered[6.0]["day"] < plain[6.0]["day"] - 50
    assert abs(registered[6.0]["day"] - registered[0.0]["day"]) < 5
    assert detector.frames == 2 * 2 * len(source)  # two points, a plain and a registered pass each

    # Resuming: nothing is measured again, and both curves are in the folder.
    again = CountingReference()
    resumed = run_sweep({"gt-rgb": again}, source, points, tmp_path, setup=SETUP, align="shift", progress=False,
                        plot=False)
    assert again.frames == 0 and resumed == rows
    assert {row["detector"] for row in read_rows(tmp_path / "misalignment.csv")} == {"gt-rgb", "gt-rgb_registered"}
    run = json.loads((tmp_path / "misalignment_run.json").read_text())
    assert run["detectors"]["gt-rgb_registered"] == "reference:rgb+align:shift"
    # Without --align, the plain rows resume on their own.
    plain_only = CountingReference()
    assert run_sweep({"gt-rgb": plain_only}, source, points, tmp_path, setup=SETUP, progress=False,
                     plot=False) == rows[:2]
    assert plain_only.frames == 0
    # The registered rows of another registration model are not resumed as these.
    with pytest.raises(ValueError, match="gt-rgb_registered"):
        run_sweep({"gt-rgb": CountingReference()}, source, points, tmp_path, setup=SETUP, align="affine",
                  progress=False, plot=False)


def test_the_figure_draws_the_registered_curve_on_each_pattern_panel(root: Path, tmp_path: Path, monkeypatch) -> None:
    import rgbt.evaluation.plots as plots

    drawn = []
    real = plots.plot_misalignment

    def capture(series, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.extend(series)
        return real(series, path, *args, **kwargs)

    monkeypatch.setattr(plots, "plot_misalignment", capture)
    source = open_source(root)
    detectors = {"thermal": GroundTruthDetector("thermal"), "rgb": GroundTruthDetector("rgb")}
    run_sweep(detectors, source, build_sweep(["S0", "S90"], "0,4"), tmp_path, setup=SETUP, align="shift",
              align_names=["rgb"], progress=False)
    assert (tmp_path / "misalignment.png").is_file()
    for panel in ("S0", "S90"):
        names = {p["detector"] for p in drawn if p["panel"] == panel}
        assert names == {"thermal", "rgb", "rgb_registered"}
    with pytest.raises(ValueError, match="not among the detectors"):
        run_sweep(detectors, source, build_sweep(["S0"], "0"), tmp_path / "b", align="shift", align_names=["x"],
                  progress=False)


def test_cli_misalign_with_align(root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweep"
    assert main(["misalign", "--data", str(root), "--reference", "rgb", "--patterns", "S0", "--shifts", "0,6",
                 "--height-scale", "0.5", "--align", "--workers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gt-rgb_registered" in printed
    rows = read_rows(out / "misalignment.csv")
    assert sorted({row["detector"] for row in rows}) == ["gt-rgb", "gt-rgb_registered"] and len(rows) == 4


def test_registered_input_warps_rgb_and_its_boxes(root: Path) -> None:
    from rgbt.data.perturbation import Perturbation, apply_perturbation

    sample = open_source(root)[0]  # a day frame
    moved = apply_perturbation(sample, Perturbation.parse("shift:5,-3"))
    fixed = RegisteredInput("shift")(moved)
    reg = fixed.meta["registration"]
    assert reg["status"] == "ok" and set(reg) == {"dx", "dy", "score", "status"}
    true_dx, true_dy = np.mean(sample.boxes_rgb - sample.boxes, axis=0)[:2]  # the frame's own offset
    assert reg["dx"] == pytest.approx(true_dx + 5, abs=0.5) and reg["dy"] == pytest.approx(true_dy - 3, abs=0.5)
    assert fixed.rgb.shape == moved.rgb.shape and fixed.thermal is moved.thermal
    assert np.abs(fixed.boxes_rgb - sample.boxes).max() < 1.0  # back on the thermal boxes
    black = RegisteredInput()(moved.with_images(rgb=np.zeros_like(moved.rgb)))
    assert black.meta["registration"]["status"] == "flat_rgb" and not black.rgb.any()
    np.testing.assert_array_equal(black.boxes_rgb, moved.boxes_rgb)  # nothing found, nothing moved
    thermal_only = moved.with_images(rgb=None)
    assert RegisteredInput()(thermal_only) is thermal_only
    with pytest.raises(ValueError, match="unknown registration model"):
        RegisteredInput("perspective")
