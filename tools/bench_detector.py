"""Speed of the fusion detector: inference ms/frame and training images/s, as a markdown table.

Each inference row also gives the model's GFLOP per frame (counted), the GFLOP/s it reaches and
that as a fraction of the machine's dense peak measured in the same run (best of a 3x3
convolution and a matrix product, :mod:`rgbt.engine.flops`), and a second table says where the CPU
inference time goes: self time per operator kind (convolutions, matrix products, NMS / RoI Align,
everything else) with the GFLOP/s the convolutions themselves reach; a third lists the model's
distinct convolutions, each timed alone, and the FLOP-weighted rate they reach together: the share
of the peak the layer shapes themselves allow (``--no-breakdown`` skips both).

Compares, on the same frame size and trunk:

* ``fusion``: the rgbt detector over all requested modalities (default rgb+thermal, concat fusion);
* ``rgbt <fusion> + rfa`` and ``rgbt rfa_region`` (``--rfa``): the same with region feature alignment,
  and with region-level fusion (``model.align=rfa_region``) - their cost;
* ``rgbt 1-stream``: the same detector on one modality (thermal, or the first one) - the fusion cost;
* ``torchvision``: torchvision's own single-stream model of the same head and trunk (RGB input, its
  default 256-channel FPN and anchors, ``min_size``/``max_size`` set to the frame size).

Runs on CPU, and on CUDA in fp32 and autocast fp16 (AMP; ``--no-amp`` skips it) when a GPU is present.
Every model is timed in the channels-last layout rgbt's detectors run in; the inference figure is the
median of ``--iters`` timed calls. Weights are random (never downloaded); speed does not depend on them.

Example::

    python tools/bench_detector.py --iters 3
    python tools/bench_detector.py --arch fcos --trunk mobilenet_v3_large --device cuda  # fp32 and AMP rows
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.backbone_utils import mobilenet_backbone, resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from rgbt.config import DetectorConfig
from rgbt.data.sample import MODALITY_CHANNELS
from rgbt.detect.backbone import FUSIONS
from rgbt.detect.detector import ARCHS, build_fusion_detector
from rgbt.detect.trunk import TRUNKS
from rgbt.engine.detector_builder import in_fast_layout
from rgbt.engine.flops import breakdown_table, conv_shape_table, conv_shapes, count_flops, machine_peak, op_breakdown


def build_parser() -> argparse.ArgumentParser:
    # The defaults are those of a `rgbt train-detector` run with the default config.
    config = DetectorConfig()
    model, data = config.model, config.data
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHS, default=model.arch)
    parser.add_argument("--trunk", choices=TRUNKS, default=model.trunk)
    parser.add_argument("--fusion", choices=(*FUSIONS, "late"), default=model.fusion)
    parser.add_argument(
        "--modalities", nargs="+", choices=sorted(MODALITY_CHANNELS), default=list(data.modalities)
    )
    parser.add_argument("--size", nargs=2, type=int, default=[model.min_size, model.max_size], metavar=("H", "W"))
    parser.add_argument("--fpn-channels", type=int, default=model.fpn_channels)
    parser.add_argument("--width-mult", type=float, default=model.width_mult, help="trunk width multiplier (tests)")
    parser.add_argument("--batch", type=int, default=2, help="images per training step")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations before timing")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CPU and CUDA"
    )
    parser.add_argument("--no-amp", action="store_true", help="skip the CUDA autocast (fp16) rows")
    parser.add_argument("--no-baselines", action="store_true", help="time only the fusion model")
    parser.add_argument("--rfa", action="store_true",
                        help="also time the fusion model with region feature alignment (model.align=rfa) and "
                             "region-level fusion (model.align=rfa_region)")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip the table of CPU inference time and GFLOP/s per operator kind")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _stock_torchvision(arch: str, trunk: str, size: Sequence[int]) -> nn.Module:
    """torchvision's single-stream detector with the same trunk (random weights, BatchNorm trainable)."""
    dense = arch != "fasterrcnn"
    if trunk.startswith("resnet"):
        backbone = resnet_fpn_backbone(
            backbone_name=trunk,
            weights=None,
            trainable_layers=5,
            norm_layer=nn.BatchNorm2d,
            returned_layers=[2, 3, 4] if dense else None,
            extra_blocks=LastLevelP6P7(256, 256) if dense else None,
        )
    else:
        # Five levels, as torchvision's default anchors (Faster R-CNN) and dense heads expect.
        backbone = mobilenet_backbone(
            backbone_name=trunk,
            weights=None,
            fpn=True,
            norm_layer=nn.BatchNorm2d,
            trainable_layers=6,
            returned_layers=[3, 4, 5] if dense else [2, 3, 4, 5],
            extra_blocks=LastLevelP6P7(256, 256) if dense else None,
        )
    kwargs = {"min_size": min(size), "max_size": max(size)}
    if arch == "retinanet":
        return RetinaNet(backbone, num_classes=2, **kwargs)
    if arch == "fcos":
        return FCOS(backbone, num_classes=2, **kwargs)
    return FasterRCNN(backbone, num_classes=2, **kwargs)


def _frames(channels: int, size: Sequence[int], count: int, device: torch.device) -> tuple[list, list]:
    """Random frames in [0, 1] with three upright person boxes each (xyxy pixels, no ignore)."""
    height, width = size
    boxes = torch.tensor(
        [[0.10, 0.30, 0.16, 0.60], [0.50, 0.20, 0.58, 0.75], [0.80, 0.40, 0.83, 0.52]], device=device
    ) * torch.tensor([width, height, width, height], device=device)
    images = [torch.rand(channels, height, width, device=device) for _ in range(count)]
    targets = [
        {
            "boxes": boxes.clone(),
            "labels": torch.ones(3, dtype=torch.int64, device=device),
            "ignore": torch.zeros(3, dtype=torch.bool, device=device),
        }
        for _ in range(count)
    ]
    return images, targets


def _timed(step: Callable[[], None], iters: int, warmup: int, device: torch.device) -> float:
    """Median seconds per call of ``step`` over ``iters`` timed calls after ``warmup`` untimed ones.

    The median, not the mean: one slow call (on a shared CPU, calls of the same model vary by tens of
    percent) then does not move the figure."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    model: nn.Module,
    channels: int,
    size: Sequence[int],
    device: torch.device,
    amp: bool,
    batch: int,
    iters: int,
    warmup: int,
    with_breakdown: bool = False,
) -> tuple[float, float, int, tuple[dict, list] | None]:
    """(inference ms per frame at batch 1, training images per second at ``batch``, inference FLOPs per
    frame, and with ``with_breakdown`` on the CPU the inference's :func:`~rgbt.engine.flops.op_breakdown` and
    :func:`~rgbt.engine.flops.conv_shapes`, as a pair)."""
    model.to(device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp)

    model.eval()
    frame, _ = _frames(channels, size, 1, device)

    def infer() -> None:
        with torch.no_grad(), autocast:
            model(frame)

    infer_s = _timed(infer, iters, warmup, device)
    flops = count_flops(infer)
    breakdown = None
    if with_breakdown and device.type == "cpu":
        breakdown = (op_breakdown(infer, repeat=iters), conv_shapes(infer, repeat=iters))

    model.train()
    images, targets = _frames(channels, size, batch, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    def train() -> None:
        with autocast:
            loss = sum(model(images, targets).values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    train_s = _timed(train, iters, warmup, device)
    model.to("cpu")
    return 1000.0 * infer_s, batch / train_s, flops, breakdown


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch < 1:
        raise SystemExit(f"--iters >= 1, --warmup >= 0 and --batch >= 1 required, got {args}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else ["cpu"]
    if args.device == "auto" and torch.cuda.is_available():
        devices.append("cuda")
    size = tuple(args.size)
    modalities = list(args.modalities)
    single = "thermal" if "thermal" in modalities else modalities[0]
    common = {
        "fpn_channels": args.fpn_channels,
        "width_mult": args.width_mult,
        "image_size": size,
    }

    def ours(mods: Sequence[str], fusion: str, align: str = "none") -> Callable[[], nn.Module]:
        return lambda: in_fast_layout(
            build_fusion_detector(args.arch, args.trunk, tuple(mods), fusion, align=align, **common)
        )

    candidates: list[tuple[str, str, int, Callable[[], nn.Module]]] = [
        (
            f"rgbt {args.fusion}",
            "+".join(modalities),
            sum(MODALITY_CHANNELS[m] for m in modalities),
            ours(modalities, args.fusion),
        ),
    ]
    if args.rfa:
        candidates.append((f"rgbt {args.fusion} + rfa", "+".join(modalities), candidates[0][2],
                           ours(modalities, args.fusion, "rfa")))
        candidates.append(("rgbt rfa_region", "+".join(modalities), candidates[0][2],
                           ours(modalities, args.fusion, "rfa_region")))
    if not args.no_baselines:
        candidates.append(("rgbt 1-stream", single, MODALITY_CHANNELS[single], ours([single], "concat")))
        candidates.append(
            ("torchvision", "rgb", 3, lambda: in_fast_layout(_stock_torchvision(args.arch, args.trunk, size)))
        )

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "")
    )
    print(
        f"{args.arch} / {args.trunk} / {size[0]}x{size[1]} / train batch {args.batch} / "
        f"{args.iters} timed iterations after {args.warmup} warm-up\n"
    )
    rows = []
    peaks = {}
    breakdowns: list = []
    for device_name in devices:
        device = torch.device(device_name)
        peaks[device_name] = machine_peak(device)
        precisions = [False] + ([True] if device.type == "cuda" and not args.no_amp else [])
        for amp in precisions:
            for name, inputs, channels, factory in candidates:
                torch.manual_seed(args.seed)
                model = factory()
                params = sum(p.numel() for p in model.parameters()) / 1e6
                infer_ms, train_ips, flops, breakdown = measure(
                    model, channels, size, device, amp, args.batch, args.iters, args.warmup,
                    with_breakdown=not args.no_breakdown and not amp,
                )
                if breakdown is not None:
                    breakdowns.append((f"{name} ({inputs})", breakdown))
                rows.append(
                    (device_name, "amp fp16" if amp else "fp32", name, inputs, params, infer_ms, train_ips, flops)
                )
    for device_name, peak in peaks.items():
        print(f"measured peak on {device_name} (fp32): 3x3 conv {peak['conv3x3_gflops']:.1f} GFLOP/s, "
              f"matmul {peak['matmul_gflops']:.1f} GFLOP/s")
    print()
    print("| device | precision | model | input | params (M) | inference ms/frame | GFLOP/frame | GFLOP/s "
          "| of peak | train images/s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for device_name, precision, name, inputs, params, infer_ms, train_ips, flops in rows:
        achieved = flops / 1e9 / (infer_ms / 1000.0)
        cells = [device_name, precision, name, inputs, f"{params:.1f}", f"{infer_ms:.1f}", f"{flops / 1e9:.3g}",
                 f"{achieved:.3g}", f"{achieved / peaks[device_name]['peak_gflops']:.3g}", f"{train_ips:.2f}"]
        print("| " + " | ".join(cells) + " |")
    if breakdowns:
        print("\nwhere the CPU inference time goes (self time per operator kind, torch.profiler, batch 1):\n")
        print(breakdown_table([(name, kinds) for name, (kinds, _) in breakdowns], peaks["cpu"]["peak_gflops"]))
        for name, (_, shapes) in breakdowns:
            print("\nits convolutions, each shape timed alone (the rate the layer shapes allow):\n")
            print(conv_shape_table(name, shapes, peaks["cpu"]["peak_gflops"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
