"""tools/bench_detector.py: parser defaults and a tiny end-to-end run that prints the markdown table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rgbt.config import DetectorConfig

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_detector.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_detector", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not run anything
    return module


def test_parser_defaults_are_the_default_config(bench):
    config = DetectorConfig()
    model, data = config.model, config.data
    args = bench.build_parser().parse_args([])
    assert (args.arch, args.trunk, args.fusion, args.modalities) == (
        model.arch,
        model.trunk,
        model.fusion,
        list(data.modalities),
    )
    assert args.size == [model.min_size, model.max_size]
    assert (args.fpn_channels, args.width_mult) == (model.fpn_channels, model.width_mult)


def test_tiny_run_prints_a_table(bench, capsys):
    argv = [
        "--size",
        "64",
        "80",
        "--width-mult",
        "0.125",
        "--fpn-channels",
        "16",
        "--iters",
        "1",
        "--warmup",
        "0",
    ]
    assert bench.main([*argv, "--device", "cpu", "--no-baselines", "--batch", "1", "--no-breakdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("| device | precision | model |")
    cells = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert cells[:4] == ["cpu", "fp32", "rgbt concat", "rgb+thermal"]
    assert float(cells[5]) > 0 and float(cells[6]) > 0
    # GFLOP/s reached and its fraction of the peak measured in the same run.
    assert float(cells[7]) > 0 and 0 < float(cells[8]) < 2
    assert any(line.startswith("measured peak on cpu (fp32): 3x3 conv") for line in lines)


def test_breakdown_table_follows_the_main_table(bench, capsys):
    argv = ["--size", "64", "80", "--width-mult", "0.125", "--fpn-channels", "16", "--iters", "1", "--warmup", "0",
            "--device", "cpu", "--no-baselines", "--batch", "1"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "where the CPU inference time goes" in out
    rows = [line for line in out.splitlines() if line.startswith("| rgbt concat (rgb+thermal) |")]
    kinds = {row.split("|")[2].strip(): row for row in rows}
    assert {"convolution", "total"} <= set(kinds)
    cells = [c.strip() for c in kinds["convolution"].strip("|").split("|")]
    assert float(cells[2]) > 0 and 0 < float(cells[3]) <= 1 and float(cells[4]) > 0 and float(cells[5]) > 0
    # then its convolutions by shape, as many GFLOP in all as the convolution row
    shapes = out.partition("each shape timed alone")[2]
    total = next(line for line in shapes.splitlines() if "| all convolutions |" in line)
    assert abs(float(total.strip("|").split("|")[3]) - float(cells[4])) <= 0.01 * float(cells[4]) + 1e-4
    assert bench.main([*argv, "--no-breakdown"]) == 0
    out = capsys.readouterr().out
    assert "where the CPU inference time goes" not in out and "each shape timed alone" not in out


def test_rfa_row_times_the_aligning_detector(bench, capsys):
    argv = ["--size", "64", "80", "--width-mult", "0.125", "--fpn-channels", "16", "--iters", "1", "--warmup", "0",
            "--device", "cpu", "--no-baselines", "--batch", "1", "--no-breakdown", "--rfa"]
    assert bench.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| cpu | fp32 |")]
    names = [row.strip("|").split("|")[2].strip() for row in rows]
    assert names == ["rgbt concat", "rgbt concat + rfa", "rgbt rfa_region"]
    assert all(float(row.strip("|").split("|")[5]) > 0 for row in rows)
