"""How much work a model does, and how fast this machine can do such work: for the benchmarks.

Every model benchmark (``tools/bench_detector.py``, ``tools/bench_translate.py``) reports a model's
FLOPs per frame (counted by :class:`torch.utils.flop_counter.FlopCounterMode`: convolutions,
matrix products and the like, one multiply-add = 2 FLOPs; element-wise work is not counted), the
GFLOP/s it reaches, and the machine's dense peak measured in the same run (a 3x3 convolution and
a square matrix product), so each speed reads as a fraction of what the machine can do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (run once, under :class:`FlopCounterMode`, without gradients)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    return int(counter.get_total_flops())


def _best_seconds(fn: Callable[[], Any], device: torch.device, repeat: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def conv_peak_gflops(device: torch.device | str = "cpu", channels: int = 128, size: tuple[int, int] = (128, 160),
                     dtype: torch.dtype = torch.float32, repeat: int = 5) -> float:
    """Best GFLOP/s of a dense 3x3 convolution (``channels`` in and out, channels-last, batch 1).

    The layer shape is that of a detector trunk's middle stage; on CPUs channels-last is the fast
    memory format of oneDNN.
    """
    device = torch.device(device)
    with torch.no_grad():
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype)
        conv = conv.to(memory_format=torch.channels_last)
        x = torch.rand(1, channels, *size, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        flops = 2 * channels * channels * 9 * size[0] * size[1]
        return flops / _best_seconds(lambda: conv(x), device, repeat) / 1e9


def matmul_peak_gflops(device: torch.device | str = "cpu", n: int = 1024, dtype: torch.dtype = torch.float32,
                       repeat: int = 5) -> float:
    """Best GFLOP/s of an ``n x n`` by ``n x n`` matrix product."""
    device = torch.device(device)
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    return 2 * n**3 / _best_seconds(lambda: a @ b, device, repeat) / 1e9


def machine_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """``{'conv3x3_gflops', 'matmul_gflops', 'peak_gflops'}`` measured now (the peak is the larger)."""
    conv = conv_peak_gflops(device, dtype=dtype)
    matmul = matmul_peak_gflops(device, dtype=dtype)
    return {"conv3x3_gflops": conv, "matmul_gflops": matmul, "peak_gflops": max(conv, matmul)}
