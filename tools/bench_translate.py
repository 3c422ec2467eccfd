"""Time the flow translator: thermal -> Glow forward -> latent AdaIN -> Glow inverse, per frame.

Prints a markdown table of frames/s (best and median of ``--repeat`` timed runs after
``--warmup`` untimed ones) at 512x640 for batch 1 and 4, on the CPU and, when available, on CUDA
in float32 and under bf16/fp16 autocast. The model has the default configuration, ActNorm
initialised on random frames and small random coupling outputs (a zero-initialised coupling is
no cheaper, but this keeps the round-trip error column meaningful). The error column is the max
abs difference of a forward + inverse round trip (no style change) in that precision. A second
table says where the CPU time of the first batch size goes: self time per operator kind
(convolutions, matrix products, everything else) and the GFLOP/s of each; a third lists the
model's distinct convolutions, each timed alone, and the FLOP-weighted rate they reach together:
the share of the peak the layer shapes themselves allow (``--no-breakdown`` skips both).

    python tools/bench_translate.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512, help="frame height (default: 512)")
    parser.add_argument("--width", type=int, default=640, help="frame width (default: 640)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="batch sizes (default: 1 4)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default: 1)")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CPU, plus CUDA when available",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--cpu-bf16", action="store_true", help="also time CPU bf16 autocast")
    parser.add_argument("--n-blocks", type=int, default=2)
    parser.add_argument("--n-flows", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--affine", action="store_true", help="affine couplings instead of additive")
    parser.add_argument("--no-channels-last", action="store_true", help="keep NCHW storage")
    parser.add_argument(
        "--tile-bytes",
        type=int,
        default=4 << 20,
        help="coupling band size in bytes, 0 = no bands (default: 4 MiB)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip the table of CPU time and GFLOP/s per operator kind")
    return parser


def _time_runs(fn: Callable[[], object], sync: Callable[[], None], warmup: int, repeat: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    import contextlib

    import torch

    from rgbt.engine.flops import (
        breakdown_table,
        conv_shape_table,
        conv_shapes,
        count_flops,
        machine_peak,
        op_breakdown,
    )
    from rgbt.translate.flow import CouplingNet
    from rgbt.translate.transfer import latent_stats
    from rgbt.translate.translator import build_translator

    args = build_parser().parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or min(args.batch) < 1:
        raise SystemExit(f"--repeat must be >= 1, --warmup >= 0 and batches >= 1, got {args}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    has_cuda = torch.cuda.is_available()
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "auto": ["cpu"] + (["cuda"] if has_cuda else [])}[
        args.device
    ]

    translator = build_translator(
        n_blocks=args.n_blocks,
        n_flows=args.n_flows,
        hidden=args.hidden,
        affine=args.affine,
        channels_last=not args.no_channels_last,
        tile_bytes=args.tile_bytes or None,
        seed=args.seed,
    )
    gen = torch.Generator().manual_seed(args.seed)
    init = torch.rand(2, 1, 64, 80, generator=gen)
    translator.initialize(init, torch.rand(2, 3, 64, 80, generator=gen))
    with torch.no_grad():
        for module in translator.modules():
            if isinstance(module, CouplingNet):
                module.conv_out.weight.normal_(0.0, 0.02, generator=gen)
    translator.eval()

    print(
        f"Glow {args.n_blocks} blocks x {args.n_flows} steps, hidden {args.hidden}, "
        f"{'affine' if args.affine else 'additive'}, {args.height}x{args.width}, "
        f"channels_last={not args.no_channels_last}, tile_bytes={args.tile_bytes}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n"
    )
    peaks = {device: machine_peak(device) for device in devices}
    for device, peak in peaks.items():
        print(f"measured peak on {device} (fp32): 3x3 conv {peak['conv3x3_gflops']:.1f} GFLOP/s, "
              f"matmul {peak['matmul_gflops']:.1f} GFLOP/s")
    print()
    print("| device | batch | precision | best ms/frame | fps (best) | fps (median) | GFLOP/frame | GFLOP/s | of peak "
          "| round-trip err |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    breakdowns = []
    shapes = []
    for device in devices:
        model = translator.to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        precisions: list[tuple[str, torch.dtype | None]] = [("fp32", None)]
        if device == "cuda":
            precisions += [("bf16 autocast", torch.bfloat16), ("fp16 autocast", torch.float16)]
        elif args.cpu_bf16:
            precisions.append(("bf16 autocast", torch.bfloat16))
        for batch in args.batch:
            thermal = torch.rand(batch, 1, args.height, args.width, generator=gen).to(device)
            rgb = torch.rand(1, 3, args.height, args.width, generator=gen).to(device)
            for label, dtype in precisions:
                autocast = (
                    torch.autocast(device_type=device, dtype=dtype)
                    if dtype is not None
                    else contextlib.nullcontext()
                )
                with torch.inference_mode(), autocast:
                    style = latent_stats(model.flow.encode(rgb)[0].float())
                    times = _time_runs(
                        lambda m=model, t=thermal, s=style: m.translate(t, style=s),
                        sync,
                        args.warmup,
                        args.repeat,
                    )
                    x = model.thermal_to_input(thermal)
                    z, _, size = model.flow.encode(x)
                    err = (model.flow.decode(z, size).float() - x).abs().max().item()
                best, median = min(times), statistics.median(times)
                flops = count_flops(lambda m=model, t=thermal, s=style: m.translate(t, style=s)) / batch
                achieved = flops / 1e9 * batch / best
                print(
                    f"| {device} | {batch} | {label} | {best / batch * 1e3:.1f} | {batch / best:.2f} | "
                    f"{batch / median:.2f} | {flops / 1e9:.3g} | {achieved:.3g} | "
                    f"{achieved / peaks[device]['peak_gflops']:.3g} | {err:.1e} |"
                )
                if device == "cpu" and dtype is None and batch == args.batch[0] and not args.no_breakdown:
                    with torch.inference_mode():
                        breakdowns.append((f"flow, batch {batch}", op_breakdown(
                            lambda m=model, t=thermal, s=style: m.translate(t, style=s), repeat=args.repeat)))
                        shapes.append((f"flow, batch {batch}", conv_shapes(
                            lambda m=model, t=thermal, s=style: m.translate(t, style=s), repeat=args.repeat)))
    if breakdowns:
        print("\nwhere the CPU time goes (self time per operator kind, torch.profiler; one call = one batch):\n")
        print(breakdown_table(breakdowns, peaks["cpu"]["peak_gflops"]))
    for name, rows in shapes:
        print("\nits convolutions, each shape timed alone (the rate the layer shapes allow):\n")
        print(conv_shape_table(name, rows, peaks["cpu"]["peak_gflops"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
