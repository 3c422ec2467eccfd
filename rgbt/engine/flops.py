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


def flop_counts(fn: Callable[[], Any]) -> dict[str, int]:
    """FLOPs of one call of ``fn`` per operator (``'aten.convolution.default'`` ...; run once, under
    :class:`FlopCounterMode`, without gradients)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    return {str(op): int(count) for op, count in counter.get_flop_counts().get("Global", {}).items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (:func:`flop_counts` summed)."""
    return sum(flop_counts(fn).values())


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


#: Operation kinds of :func:`op_breakdown`, in table order, and how an operator name is assigned to
#: one (first match on the lower-cased name; anything else is ``other``).
OP_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("convolution", ("conv",)),
    ("matmul", ("addmm", "::mm", "bmm", "matmul", "linear", "aten.mm")),
    ("detection ops", ("nms", "roi_align", "roi_pool")),
    ("other", ()),
)


def op_kind(name: str) -> str:
    """The :data:`OP_KINDS` kind of an operator (``aten::mkldnn_convolution`` -> ``convolution``)."""
    lowered = name.lower()
    for kind, patterns in OP_KINDS:
        if any(p in lowered for p in patterns):
            return kind
    return "other"


def op_breakdown(fn: Callable[[], Any], repeat: int = 3) -> dict[str, dict[str, float]]:
    """Where one call of ``fn`` spends its CPU time, by operation kind (:data:`OP_KINDS`).

    ``fn`` runs once untimed, then ``repeat`` times under :mod:`torch.profiler` (CPU activity, self
    time of every operator), and once for :func:`flop_counts`, all without gradients.

    Returns:
        ``{kind: {'seconds': self time per call, 'share': fraction of the operators' total,
        'gflop': counted GFLOP per call, 'gflops': gflop / seconds (0 without FLOPs)}}`` for every
        kind of :data:`OP_KINDS`, plus ``'total'`` (the sum over the kinds). Time outside any
        operator (Python between them) is not included.
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeat):
                fn()
    seconds = dict.fromkeys((k for k, _ in OP_KINDS), 0.0)
    for event in prof.key_averages():
        seconds[op_kind(event.key)] += event.self_cpu_time_total / 1e6 / repeat
    flops = dict.fromkeys(seconds, 0.0)
    for op, count in flop_counts(fn).items():
        flops[op_kind(op)] += count
    total = sum(seconds.values())
    out = {}
    for kind in seconds:
        gflop = flops[kind] / 1e9
        out[kind] = {"seconds": seconds[kind], "share": seconds[kind] / total if total else 0.0, "gflop": gflop,
                     "gflops": gflop / seconds[kind] if seconds[kind] > 0 else 0.0}
    all_gflop = sum(v["gflop"] for v in out.values())
    out["total"] = {"seconds": total, "share": 1.0, "gflop": all_gflop, "gflops": all_gflop / total if total else 0.0}
    return out


def breakdown_table(rows: list[tuple[str, dict[str, dict[str, float]]]], peak_gflops: float) -> str:
    """A markdown table of :func:`op_breakdown` results, one row per (model, kind): time per call,
    share of the time, GFLOP, GFLOP/s and that as a fraction of ``peak_gflops``."""
    lines = ["| model | operations | ms/call | share of time | GFLOP | GFLOP/s | of peak |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, breakdown in rows:
        for kind, v in breakdown.items():
            if kind != "total" and v["seconds"] == 0 and v["gflop"] == 0:
                continue
            rate = f"{v['gflops']:.3g}" if v["gflop"] else "-"
            share = f"{v['gflops'] / peak_gflops:.2f}" if v["gflop"] and peak_gflops else "-"
            lines.append(f"| {name} | {kind} | {v['seconds'] * 1e3:.1f} | {v['share']:.2f} | {v['gflop']:.3g} | "
                         f"{rate} | {share} |")
    return "\n".join(lines)
