"""tools/bench_align.py: importing runs nothing; a tiny real-pairs and synthetic run prints its tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from rgbt.data.imageio import read_image, write_image

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_align.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_align", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not run anything
    return module


def test_moves_are_the_perturbation_operator(bench):
    rng = np.random.default_rng(0)
    shift = bench.moves("shift", 1, rng, (60, 80))[0]
    image = rng.integers(1, 255, (60, 80, 3)).astype(np.uint8)
    from rgbt.data.perturbation import shift_image

    assert np.array_equal(bench.move_image(image, shift), shift_image(image, shift[0, 2], shift[1, 2]))
    general = bench.moves("affine", 1, rng, (60, 80))[0]
    assert not np.allclose(general[:2, :2], np.eye(2))


def test_tiny_run_prints_tables_and_writes_json(bench, tmp_path, capsys):
    from rgbt.data.synthetic import render_frame

    pairs = tmp_path / "pairs"
    for k in range(2):
        frame = render_frame(4, f"set06/V000/I{k:05d}", width=320, height=256, max_shift=4.0, shift=(0.0, 0.0))
        write_image(pairs / "visible" / f"p{k}.png", frame.rgb)
        write_image(pairs / "lwir" / f"p{k}.png", frame.thermal)
    assert read_image(pairs / "lwir" / "p0.png", "gray").shape == (256, 320)  # the +-16 px moves fit its range
    out = tmp_path / "bench.json"
    assert bench.main(["--only", "real", "synthetic", "--pairs", str(pairs), "--moves", "1", "--synthetic-frames",
                       "2", "--rig-videos", "2", "--rig-frames", "1", "--width", "160", "--height", "128",
                       "--workers", "0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## synthetic (known offsets)" in printed and "## real pairs moved by known transforms" in printed
    report = json.loads(out.read_text())
    rows = {(r["method"], r["model"]): r for r in report["real"]["rows"]}
    assert rows[("rgbt", "shift")]["frames"] == 2 and rows[("rgbt", "shift")]["within_rel"] == 1.0
    assert {r["pool"] for r in report["synthetic"]} == {"frame", "sequence"}
    assert all(isinstance(r["confident_over_1px"], int) for r in report["synthetic"])


def test_profile_says_which_calls_the_registration_time_goes_to(bench, tmp_path):
    from rgbt.data.synthetic import render_frame

    tasks = []
    for k in range(2):
        frame = render_frame(4, f"set06/V000/I{k:05d}", width=160, height=128, max_shift=4.0, shift=(2.0, -1.0))
        write_image(tmp_path / f"v{k}.png", frame.rgb)
        write_image(tmp_path / f"t{k}.png", frame.thermal)
        tasks.append((tmp_path / f"v{k}.png", tmp_path / f"t{k}.png", "shift", None))
    rows = bench.profile_registration(tasks, top=3)
    names = [r["name"] for r in rows]
    assert names[-1] == "total" and rows[-1]["share"] == 1.0 and rows[-1]["ms_per_pair"] > 0
    listed = [n for n in names if n.startswith("cv2.")]
    assert 1 <= len(listed) <= 3  # the top OpenCV functions by name, the rest grouped
    assert "Python" in names
    parts = rows[:-1]
    assert abs(sum(r["share"] for r in parts) - 1.0) < 1e-9
    assert [r["ms_per_pair"] for r in parts[: len(listed)]] == sorted((r["ms_per_pair"] for r in parts[: len(listed)]),
                                                                      reverse=True)
    text = bench.format_speed({"size": "160x128", "model": "shift", "rows": [], "profile": rows})
    assert "| total |" in text and "where one process's time goes" in text
