"""tools/bench_sweep.py: nothing runs at import; a tiny run writes speedup, max_abs_diff and the FLOP bound
per detector."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_sweep.py"
TINY = ["model.width_mult=0.125", "model.fpn_channels=16", "model.representation_size=32", "model.min_size=64",
        "model.max_size=80", "model.anchor_sizes=[8, 16, 32, 64, 128]", "model.proposals=[100, 50]"]


def test_tiny_run_writes_the_json(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_sweep", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # importing must not run anything
    out = tmp_path / "sweep.json"
    assert bench.main(["--detectors", "halfway", "--frames", "1", "--repeat", "1", "--shifts", "0,4",
                       "--json", str(out), "--set", *TINY]) == 0
    row = json.loads(out.read_text())["halfway"]
    assert row["points"] == 2 and row["size"] == [64, 80] and row["weights"] == "random"
    assert row["speedup"] > 0 and 0 <= row["max_abs_diff"] < 1e-3
    # the reused thermal trunk is a part of the point's FLOPs, so the bound is above 1
    assert 0 < row["reused_trunk_gflop"] < row["gflop_per_point"]
    assert row["flop_bound"] == row["gflop_per_point"] / (row["gflop_per_point"] - row["reused_trunk_gflop"]) > 1
    assert "| halfway fusion" in capsys.readouterr().out
