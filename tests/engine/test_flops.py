"""rgbt.engine.flops: operator kinds, and the time / FLOP breakdown of a call."""

from __future__ import annotations

import torch

from rgbt.engine.flops import breakdown_table, conv_shape_table, conv_shapes, count_flops, op_breakdown, op_kind


def test_operator_names_map_to_kinds() -> None:
    assert op_kind("aten::mkldnn_convolution") == "convolution"
    assert op_kind("aten.convolution.default") == "convolution"
    assert op_kind("aten::addmm") == op_kind("aten.mm.default") == "matmul"
    assert op_kind("torchvision::nms") == op_kind("torchvision::roi_align") == "detection ops"
    assert op_kind("aten::relu_") == op_kind("aten::copy_") == "other"


def test_breakdown_counts_the_flops_of_each_kind_and_shares_the_time() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    linear = torch.nn.Linear(16, 4)
    x = torch.rand(2, 8, 20, 24)

    def call() -> torch.Tensor:
        y = torch.relu(conv(x))
        return linear(y.mean(dim=(2, 3)))

    result = op_breakdown(call, repeat=2)
    assert set(result) == {"convolution", "matmul", "detection ops", "other", "total"}
    # Counted exactly: a 3x3 convolution is 2 * Cin * Cout * 9 * H * W per image, a linear layer 2 * in * out.
    assert abs(result["convolution"]["gflop"] - 2 * 2 * 8 * 16 * 9 * 20 * 24 / 1e9) < 1e-12
    assert abs(result["matmul"]["gflop"] - 2 * 2 * 16 * 4 / 1e9) < 1e-12
    assert result["other"]["gflop"] == 0 and result["detection ops"]["seconds"] == 0
    assert result["convolution"]["seconds"] > 0 and result["other"]["seconds"] > 0
    assert abs(sum(result[k]["share"] for k in ("convolution", "matmul", "detection ops", "other")) - 1) < 1e-9
    table = breakdown_table([("tiny", result)], peak_gflops=100.0)
    assert "| tiny | convolution |" in table and "| tiny | total |" in table
    assert "detection ops" not in table  # a kind with neither time nor FLOPs is left out


def test_conv_shapes_lists_each_distinct_convolution_with_its_calls_and_flops() -> None:
    torch.manual_seed(0)
    wide = torch.nn.Conv2d(8, 16, 3, padding=1)
    narrow = torch.nn.Conv2d(16, 2, 1, bias=False)
    strided = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1).to(memory_format=torch.channels_last)
    x = torch.rand(1, 8, 20, 24)

    def call() -> torch.Tensor:
        y = narrow(wide(x))
        y = narrow(wide(x + 1))  # the same two shapes again
        return strided(y.contiguous(memory_format=torch.channels_last))

    rows = conv_shapes(call, repeat=1)
    assert [(r["input"], r["weight"], r["calls"]) for r in rows] == [
        ((1, 8, 20, 24), (16, 8, 3, 3), 2), ((1, 16, 20, 24), (2, 16, 1, 1), 2), ((1, 2, 20, 24), (4, 2, 3, 3), 1)]
    assert rows[2]["stride"] == (2, 2) and rows[2]["groups"] == 1
    assert abs(rows[0]["gflop"] - 2 * 2 * 8 * 16 * 9 * 20 * 24 / 1e9) < 1e-12
    assert abs(rows[2]["gflop"] - 2 * 4 * 2 * 9 * 10 * 12 / 1e9) < 1e-12  # strided: the output's 10x12 pixels
    assert abs(sum(r["gflop"] for r in rows) - count_flops(call) / 1e9) < 1e-12
    assert all(r["gflops"] > 0 for r in rows)
    table = conv_shape_table("tiny", rows, peak_gflops=100.0, top=2)
    assert "| tiny | 1x8x20x24 -> 16x8x3x3, /1 | 2 |" in table
    assert "| tiny | 1 more shapes | 1 |" in table and "| tiny | all convolutions | 5 |" in table


def test_conv_shapes_sees_the_convolutions_of_an_inference_mode_call() -> None:
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():  # conv2d is not decomposed to convolution there unless asked
        rows = conv_shapes(lambda: conv(x), repeat=1)
    assert [(r["input"], r["weight"], r["calls"]) for r in rows] == [((1, 3, 8, 8), (4, 3, 3, 3), 1)]
