"""tools/bench_translate.py: a tiny run prints speed, counted FLOPs and the fraction of the measured peak."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_translate.py"


def test_tiny_run_prints_flops_and_the_fraction_of_the_peak(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_translate", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # importing must not run anything
    assert bench.main(["--height", "32", "--width", "40", "--batch", "1", "--repeat", "1", "--warmup", "0",
                       "--n-blocks", "1", "--n-flows", "2", "--hidden", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    main_table, _, breakdown = out.partition("where the CPU time goes")
    lines = main_table.strip().splitlines()
    assert any(line.startswith("measured peak on cpu (fp32): 3x3 conv") for line in lines)
    cells = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert cells[:3] == ["cpu", "1", "fp32"]
    gflop, achieved, fraction = float(cells[6]), float(cells[7]), float(cells[8])
    # 1 block of 2 steps at 32x40: the two coupling networks dominate (3x3, 1x1, 3x3 convolutions of 8 channels
    # on a 16x20 grid, forward and inverse), so the count is small but not zero.
    assert 0 < gflop < 0.05 and achieved > 0 and 0 < fraction < 2
    # The breakdown of the same call: the convolutions' share of the time, their GFLOP and GFLOP/s.
    conv = next(line for line in breakdown.splitlines() if line.startswith("| flow, batch 1 | convolution |"))
    conv_cells = [c.strip() for c in conv.strip("|").split("|")]
    assert float(conv_cells[2]) > 0 and 0 < float(conv_cells[3]) <= 1
    assert abs(float(conv_cells[4]) - gflop) <= 0.01 * gflop + 1e-4  # every FLOP of the flow is a convolution's
    # Its convolutions by shape: together they are the same GFLOP, each shape timed alone.
    shapes = breakdown.partition("each shape timed alone")[2]
    total = next(line for line in shapes.splitlines() if line.startswith("| flow, batch 1 | all convolutions |"))
    total_cells = [c.strip() for c in total.strip("|").split("|")]
    assert abs(float(total_cells[3]) - float(conv_cells[4])) <= 0.01 * gflop + 1e-4
    assert float(total_cells[4]) == 1.0 and float(total_cells[5]) > 0
