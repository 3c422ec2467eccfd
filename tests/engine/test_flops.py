"""rgbt.engine.flops: operator kinds, and the time / FLOP breakdown of a call."""

from __future__ import annotations

import torch

from rgbt.engine.flops import breakdown_table, op_breakdown, op_kind


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
