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


def conv_shapes(fn: Callable[[], Any], repeat: int = 3) -> list[dict[str, Any]]:
    """Every distinct convolution one call of ``fn`` runs, each timed alone: why a model's convolutions
    reach less than the machine's peak.

    One call of ``fn`` (without gradients) records each ``aten.convolution`` (input and weight shape,
    stride, padding, dilation, groups, the input's memory format); each distinct one is then run by
    itself ``repeat`` times on random data of the same shape, dtype, device and memory format (best
    time counts).

    Returns:
        one dict per distinct convolution, most FLOPs first: ``input`` (``(N, C, H, W)``), ``weight``
        (``(C_out, C_in / groups, kh, kw)``), ``stride``, ``groups``, ``calls`` (per call of ``fn``),
        ``gflop`` (all its calls), ``gflops`` (alone, best of ``repeat``).
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: dict[tuple, dict[str, Any]] = {}
    aten = torch.ops.aten
    convolution = aten.convolution.default
    composite = {aten.conv1d, aten.conv2d, aten.conv3d, aten.conv_transpose1d, aten.conv_transpose2d,
                 aten.conv_transpose3d}

    class _Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            if func is not convolution and func.overloadpacket in composite:
                # under inference_mode ``conv2d`` arrives whole: decompose it (with this mode active
                # again: a handler runs without it) to see its ``convolution``
                with self:
                    out = func.decompose(*args, **kwargs)
                if out is not NotImplemented:
                    return out
            out = func(*args, **kwargs)
            if func is convolution:
                x, w, bias, stride, padding, dilation, transposed, output_padding, groups = args
                last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1
                key = (tuple(x.shape), tuple(w.shape), bias is not None, tuple(stride), tuple(padding),
                       tuple(dilation), bool(transposed), tuple(output_padding), int(groups), last,
                       x.dtype, x.device)
                entry = seen.setdefault(key, {"calls": 0, "flops": 2 * out.numel() * w[0].numel()})
                entry["calls"] += 1
            return out

    with torch.no_grad():
        with _Record():
            fn()
        rows = []
        for key, entry in seen.items():
            x_shape, w_shape, has_bias, stride, padding, dilation, transposed, output_padding, groups, last, dtype, \
                device = key
            fmt = torch.channels_last if last else torch.contiguous_format
            x = torch.rand(x_shape, dtype=dtype, device=device).contiguous(memory_format=fmt)
            w = torch.rand(w_shape, dtype=dtype, device=device).contiguous(memory_format=fmt)
            b = torch.rand(w_shape[0], dtype=dtype, device=device) if has_bias else None

            def run(x=x, w=w, b=b, key=key) -> None:
                torch.ops.aten.convolution.default(x, w, b, list(key[3]), list(key[4]), list(key[5]), key[6],
                                                   list(key[7]), key[8])

            seconds = _best_seconds(run, torch.device(device), repeat)
            rows.append({"input": x_shape, "weight": w_shape, "stride": stride, "groups": groups,
                         "calls": entry["calls"], "gflop": entry["calls"] * entry["flops"] / 1e9,
                         "gflops": entry["flops"] / seconds / 1e9})
    return sorted(rows, key=lambda r: -r["gflop"])


def conv_shape_table(name: str, rows: list[dict[str, Any]], peak_gflops: float, top: int = 8) -> str:
    """A markdown table of :func:`conv_shapes` (the ``top`` largest by FLOPs, then one row for the rest
    and the FLOP-weighted total: GFLOP over the sum of the shapes' times alone)."""
    lines = ["| model | convolution (input -> weight, stride) | calls | GFLOP | share of conv GFLOP | GFLOP/s alone "
             "| of peak |", "|---|---|---:|---:|---:|---:|---:|"]
    total = sum(r["gflop"] for r in rows)

    def line(label: str, calls: int | str, gflop: float, seconds: float) -> str:
        rate = gflop / seconds if seconds else 0.0
        return (f"| {name} | {label} | {calls} | {gflop:.3g} | {gflop / total if total else 0:.2f} | {rate:.3g} | "
                f"{rate / peak_gflops if peak_gflops else 0:.2f} |")

    for r in rows[:top]:
        label = f"{'x'.join(map(str, r['input']))} -> {'x'.join(map(str, r['weight']))}, /{r['stride'][0]}"
        lines.append(line(label, r["calls"], r["gflop"], r["gflop"] / r["gflops"] if r["gflops"] else 0.0))
    rest = rows[top:]
    if rest:
        lines.append(line(f"{len(rest)} more shapes", sum(r["calls"] for r in rest), sum(r["gflop"] for r in rest),
                          sum(r["gflop"] / r["gflops"] for r in rest if r["gflops"])))
    lines.append(line("all convolutions", sum(r["calls"] for r in rows), total,
                      sum(r["gflop"] / r["gflops"] for r in rows if r["gflops"])))
    return "\n".join(lines)
