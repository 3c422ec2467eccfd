"""tools/bench_translators.py on minimal settings: one or two methods, one step, a tiny synthetic root."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_translators.py"
TINY = ["--steps", "1", "--train-frames", "2", "--test-frames", "2", "--width", "80", "--height", "64"]


def load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_translators", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("|")]


def test_bench_translators_prints_one_row_per_method_and_the_figure(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    figure = tmp_path / "compare.png"
    assert tool.main(["--methods", "pix2pixhd", "gatys", *TINY, "--detector-steps", "0", "--figure", str(figure),
                      "--work", str(tmp_path)]) == 0
    lines = table_lines(capsys.readouterr().out)
    assert len(lines) == 4 and "edge_f1" in lines[0] and "frames/s" in lines[0] and "MR" not in lines[0]
    assert lines[2].startswith("| pix2pixhd | 1 |") and lines[3].startswith("| gatys | 1 |")
    assert "n/a" in lines[2]  # no inverse: no rounds / round-trip values
    assert figure.is_file() and 0 < figure.stat().st_size < 300_000


def test_bench_translators_trains_detectors_on_each_output_and_resumes(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    work, result = tmp_path / "work", tmp_path / "result.json"
    argv = ["--methods", "flow", *TINY, "--detector-steps", "1", "--detector-seeds", "0", "1", "--work", str(work),
            "--json", str(result)]
    assert tool.main(argv) == 0
    lines = table_lines(capsys.readouterr().out)
    assert "MR fake RGB + thermal" in lines[0] and "MR fake RGB only" in lines[0]
    detectors = [line.split(" | ")[0] for line in lines[3:]]
    assert detectors[2:] == ["| thermal only", "| real RGB + thermal", "| real RGB only", "| flow: fake RGB + thermal",
                             "| flow: fake RGB only"]
    data = json.loads(result.read_text())
    assert set(data["rows"][0]["mr"]) == {"fake_rgb_thermal", "fake_rgb"} and set(data["references"]) == {
        "thermal", "rgb_thermal", "rgb"}
    for values in [*data["rows"][0]["mr"].values(), *data["references"].values()]:
        assert values["all"] is None or 0.0 <= values["all"] <= 100.0
        assert len(values["runs"]) == 2  # one per seed
    # Fake-RGB detectors read the translator's output: both splits were written.
    assert len(list((work / "flow" / "fake").rglob("*.png"))) == 4
    assert (work / "flow" / "detector_fake_rgb" / "last.pt").is_file()
    assert (work / "flow" / "detector_fake_rgb_seed1" / "last.pt").is_file()

    # A re-run reuses every finished stage; other settings in the same folder are refused.
    assert tool.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("done earlier") == 13 and table_lines(out) == lines
    with pytest.raises(SystemExit, match="other settings"):
        tool.main([*argv, "--detector-steps", "2"])


def flir_aligned_from(kaist: Path, root: Path) -> Path:
    """The frames of a synthetic KAIST-layout root re-released in the FLIR-aligned layout (VOC xml)."""
    import shutil

    from rgbt.data.source import open_source

    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    for split, listed in (("train", "align_train.txt"), ("test", "align_validation.txt")):
        source = open_source(kaist, split)
        stems = []
        for i in range(len(source)):
            stem = f"FLIR_{split}{i:05d}"
            paths, record = source.image_paths(i), source.annotations(i)
            shutil.copy(paths["thermal"], root / "JPEGImages" / f"{stem}_PreviewData.jpeg")
            shutil.copy(paths["rgb"], root / "JPEGImages" / f"{stem}_RGB.jpg")
            objects = "".join(
                f"<object><name>person</name><difficult>0</difficult><bndbox><xmin>{x1:.0f}</xmin><ymin>{y1:.0f}"
                f"</ymin><xmax>{x2:.0f}</xmax><ymax>{y2:.0f}</ymax></bndbox></object>"
                for x1, y1, x2, y2 in record.boxes)
            (root / "Annotations" / f"{stem}_PreviewData.xml").write_text(
                f"<annotation><filename>{stem}_PreviewData.jpeg</filename><size><width>80</width><height>64</height>"
                f"<depth>3</depth></size>{objects}</annotation>")
            stems.append(f"{stem}_PreviewData")
        (root / listed).write_text("\n".join(stems) + "\n")
    return root


def test_bench_translators_on_a_flir_aligned_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rgbt.data.formats import detect_format
    from rgbt.data.synthetic import generate_synthetic

    kaist = generate_synthetic(tmp_path / "kaist", 2, 2, seed=0, width=80, height=64, progress=False)
    flir = flir_aligned_from(kaist, tmp_path / "flir")
    assert detect_format(flir) == "flir-aligned"
    tool = load_tool()
    assert tool.main(["--data", str(flir), "--test-set", "validation", "--methods", "pix2pixhd", "--steps", "1",
                      "--detector-steps", "1", "--no-references", "--work", str(tmp_path / "work")]) == 0
    lines = table_lines(capsys.readouterr().out)
    assert lines[2].startswith("| pix2pixhd | 1 |") and lines[-1].startswith("| pix2pixhd: fake RGB only |")
    assert len(list((tmp_path / "work" / "pix2pixhd" / "fake" / "fake_visible").glob("*.png"))) == 4


def test_several_seeds_give_the_mean_and_the_range() -> None:
    tool = load_tool()
    runs = [{"all": 40.0, "day": 30.0, "night": None}, {"all": 50.0, "day": 20.0, "night": 60.0}]
    values = tool.mean_of_runs(runs)
    assert values["all"] == 45.0 and values["day"] == 25.0 and values["night"] is None and values["runs"] == runs
    assert tool._fmt_mr(values, "all") == "45.0 (40.0-50.0)" and tool._fmt_mr(values, "night") == "n/a"
    assert tool._fmt_mr(tool.mean_of_runs(runs[:1]), "all") == "40.0"


def test_frozen_rgb_probe_task_aware_flow_and_translator_seeds(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    work, result = tmp_path / "work", tmp_path / "result.json"
    assert tool.main(["--methods", "flow", "flow_task", *TINY, "--detector-steps", "1", "--frozen-rgb",
                      "--translator-seeds", "0", "1", "--no-references", "--work", str(work),
                      "--json", str(result)]) == 0
    lines = table_lines(capsys.readouterr().out)
    assert "MR frozen RGB detector" in lines[0] and "person_contrast_fake" in lines[0]
    data = json.loads(result.read_text())
    flow, task = data["rows"]
    assert task["method"] == "flow_task" and len(task["seeds"]) == 2
    for row in (flow, task):
        probe = row["mr"]["frozen_rgb"]
        assert len(probe["runs"]) == 2  # one per translator seed (one detector seed)
        assert all(run["all"] is None or 0.0 <= run["all"] <= 100.0 for run in probe["runs"])
    # The task-aware flow trained against the frozen RGB-only reference detector, which is not retrained.
    config = (work / "flow_task_seed1" / "run" / "config.yaml").read_text()
    assert "detector: 1.0" in config and str(work / "references" / "rgb" / "last.pt") in config
    assert (work / "flow_seed1" / "fake").is_dir() and not (work / "references" / "thermal").exists()
    with pytest.raises(SystemExit, match="need the RGB-only detector"):
        tool.main(["--methods", "flow_task", *TINY, "--detector-steps", "0", "--work", str(tmp_path / "w2")])


def test_frozen_probe_alone_trains_no_detector_on_fake_rgb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    work, result = tmp_path / "work", tmp_path / "result.json"
    assert tool.main(["--methods", "flow", *TINY, "--detector-steps", "1", "--frozen-rgb", "--probes",
                      "--work", str(work), "--json", str(result)]) == 0
    data = json.loads(result.read_text())
    (row,) = data["rows"]
    assert set(row["mr"]) == {"frozen_rgb"} and data["references"] == {}
    assert "MR frozen RGB detector" in table_lines(capsys.readouterr().out)[0]
    # Only the frozen RGB-only reference was trained, and only the test split was translated.
    assert (work / "references" / "rgb" / "last.pt").is_file() and not (work / "references" / "thermal").exists()
    assert not list((work / "flow").glob("detector_*"))
    written = {p.parts[-4] for p in (work / "flow" / "fake").rglob("*.png")}
    assert written == {"set06", "set09"}  # the synthetic test sets, no training set
    # The same folder takes another probe later: the translator is reused, its training split written.
    assert tool.main(["--methods", "flow", *TINY, "--detector-steps", "1", "--frozen-rgb", "--probes", "fake_rgb",
                      "--no-references", "--work", str(work), "--json", str(result)]) == 0
    assert "[bench] flow: done earlier" in capsys.readouterr().out
    assert set(json.loads(result.read_text())["rows"][0]["mr"]) == {"frozen_rgb", "fake_rgb"}
    assert {p.parts[-4] for p in (work / "flow" / "fake").rglob("*.png")} == {"set00", "set03", "set06", "set09"}
    with pytest.raises(SystemExit, match="other settings.*task_weight"):
        tool.main(["--methods", "flow", *TINY, "--detector-steps", "1", "--frozen-rgb", "--task-weight", "2",
                   "--work", str(work)])


def test_day_style_probe_translates_the_test_split_with_one_day_frame(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    work, result = tmp_path / "work", tmp_path / "result.json"
    with pytest.raises(SystemExit, match="add --frozen-rgb"):
        tool.main(["--methods", "flow", *TINY, "--detector-steps", "1", "--frozen-day-style", "--work", str(work)])
    assert tool.main(["--methods", "flow", "pix2pixhd", *TINY, "--detector-steps", "1", "--frozen-rgb",
                      "--frozen-day-style", "--probes", "--work", str(work), "--json", str(result)]) == 0
    header = table_lines(capsys.readouterr().out)[0]
    assert "MR frozen RGB detector |" in header and "MR frozen RGB detector, day style" in header
    flow, pix2pixhd = json.loads(result.read_text())["rows"]
    assert set(flow["mr"]) == set(pix2pixhd["mr"]) == {"frozen_rgb", "frozen_rgb_day"}
    # The flow takes a style: its day-style translation is a folder of its own, of the test frames only.
    assert {p.parts[-4] for p in (work / "flow" / "fake_day").rglob("*.png")} == {"set06", "set09"}
    stage = json.loads((work / "stages" / "flow_day_style.json").read_text())
    assert Path(stage["result"]["style"]).parent.name == "visible"  # a real RGB image of the root
    # pix2pixHD has no style input: its one translation is probed again, with the same miss rate.
    assert not (work / "pix2pixhd" / "fake_day").exists()
    assert pix2pixhd["mr"]["frozen_rgb_day"]["all"] == pix2pixhd["mr"]["frozen_rgb"]["all"]


def test_demo_recipe_is_the_full_demos_detector_at_its_sizes() -> None:
    tool = load_tool()
    from rgbt.demo import FULL

    args = tool.apply_recipe_defaults(tool.build_parser().parse_args(["--recipe", "demo"]))
    assert (args.train_frames, args.test_frames, args.width, args.height) == (FULL.n_train, FULL.n_test, FULL.width,
                                                                                FULL.height)
    overrides = tool.detector_overrides(Path("/data"), args, ["rgb"])
    assert all(item in overrides for item in FULL.detector)
    assert "train.lr=0.02" not in overrides and "train.max_steps=1800" in overrides  # not the quick recipe's rate
    quick = tool.apply_recipe_defaults(tool.build_parser().parse_args(["--detector-steps", "7"]))
    assert (quick.train_frames, quick.width) == (96, 160)
    overrides = tool.detector_overrides(Path("/data"), quick, ["rgb"])
    assert all(item in overrides for item in tool.DETECTOR_RECIPE) and "train.max_steps=7" in overrides
