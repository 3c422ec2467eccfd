"""Speed of the misalignment sweep: seconds per sweep point per frame, with and without stream reuse.

A fusion detector whose streams are separate up to the fusion (``concat`` = halfway, ``sum``,
``gate``) computes the unperturbed modality's trunk once per frame for all the points of a pass
(:class:`rgbt.engine.inference.FusionDetector`, ``reuse_streams``); this compares that with running
every point from scratch, through the sweep's own loop (:func:`rgbt.engine.inference.detect_source`
with one variant per point, as :func:`rgbt.engine.misalign.run_sweep` calls it), on:

* ``demo``: the demo's detector (``rgbt demo`` full settings, ``rgbt.demo.FULL``: 320x256 frames,
  its ResNet-18 width, pyramid and proposals);
* ``halfway``: the default ``rgbt train-detector`` model (halfway fusion, ResNet-18, 128-channel
  pyramid) at KAIST's 512x640.

Weights are random (seeded; nothing is downloaded): the time does not depend on them, and the boxes
of both runs are compared (``max_abs_diff``: the largest difference of a box coordinate or score
between the two runs, pixels / score units; ``nan`` when they return different numbers of boxes).
Frames are random images; the points are RGB shifts (``--modality thermal`` moves thermal, which
then reuses the RGB trunk).

Example::

    python tools/bench_sweep.py --frames 4 --json sweep.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rgbt.config import DetectorConfig, apply_overrides
from rgbt.data.sample import PairSample
from rgbt.demo import FULL
from rgbt.engine.detector_builder import build_detector_from_config
from rgbt.engine.flops import count_flops
from rgbt.engine.inference import FusionDetector, detect_source
from rgbt.evaluation.sweep import build_sweep

#: name -> (description, model.* overrides of the default detector config).
DETECTORS: dict[str, tuple[str, list[str]]] = {
    "demo": ("demo detector, rgb+thermal halfway, 320x256",
             [o for o in FULL.detector if o.startswith("model.")]),
    "halfway": ("halfway fusion, rgb+thermal, r18, 512x640", ["model.fusion=concat"]),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", nargs="+", choices=sorted(DETECTORS), default=list(DETECTORS))
    parser.add_argument("--frames", type=int, default=2, help="timed frames per run (after one warm-up frame)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each mode, alternating; the best counts")
    parser.add_argument("--shifts", default="-10:10:2", help="S0 shift magnitudes: the points (default 11)")
    parser.add_argument("--modality", choices=("rgb", "thermal"), default="rgb", help="the moved modality")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per forward pass (rgbt's default)")
    parser.add_argument("--set", nargs="+", default=[], metavar="model.KEY=VALUE",
                        help="extra overrides of every detector's config (e.g. a tiny model for a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as json")
    return parser


def _frames(count: int, size: tuple[int, int], seed: int) -> list[PairSample]:
    rng = np.random.default_rng(seed)
    height, width = size
    return [PairSample(rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                       thermal=rng.integers(0, 256, (height, width), dtype=np.uint8), meta={"frame_id": f"f{i}"})
            for i in range(count)]


def _run(detector: FusionDetector, frames: list[PairSample], variants: list) -> tuple[float, list[list[np.ndarray]]]:
    """Seconds of one frame-major pass of every variant over ``frames``, and the detections."""
    start = time.perf_counter()
    detections = detect_source(detector.predict, frames, batch_size=len(frames), progress=False, threads=True,
                               variants=variants)
    return time.perf_counter() - start, detections


def _max_abs_diff(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> float:
    worst = 0.0
    for per_a, per_b in zip(a, b):
        for x, y in zip(per_a, per_b):
            if x.shape != y.shape:
                return math.nan
            if x.size:
                worst = max(worst, float(np.abs(x - y).max()))
    return worst


def flop_bound(detector: FusionDetector, frame: PairSample, moved: str) -> tuple[float, float]:
    """GFLOP of one unperturbed point of ``frame`` and of the trunk that stream reuse skips.

    The reused trunk is the stream of the modality the sweep does not move; its share of the FLOPs
    bounds the speedup reuse can give: ``total / (total - trunk)`` (the rest changes with every point).
    Counted with :func:`rgbt.engine.flops.count_flops` at the detector's own input size.
    """
    kept = [m for m in detector.reusable_streams if m != moved]
    total = count_flops(lambda: detector.predict([frame]))
    if not kept:
        return total / 1e9, 0.0
    backbone = detector.model.backbone
    channels = {"rgb": 3, "thermal": 1}
    height, width = frame.thermal.shape[:2]
    stacked = {m: torch.zeros(1, channels[m], height, width) for m in backbone.modalities}
    with torch.no_grad():
        trunk = count_flops(lambda: backbone.stream_features(stacked, kept[0]))
    return total / 1e9, trunk / 1e9


def measure(name: str, args: argparse.Namespace) -> dict:
    config = apply_overrides(DetectorConfig(), DETECTORS[name][1] + list(args.set))
    size = (config.model.min_size, config.model.max_size)
    torch.manual_seed(args.seed)
    model = build_detector_from_config(config.model, ["rgb", "thermal"], 2)
    points = build_sweep(["S0"], args.shifts, modality=args.modality)
    variants = [point.perturbations for point in points]
    frames = _frames(args.frames + 1, size, args.seed)
    detectors = {reuse: FusionDetector(model, ["rgb", "thermal"], ["person"], torch.device("cpu"), args.batch_size,
                                       reuse_streams=reuse) for reuse in (False, True)}
    for detector in detectors.values():
        _run(detector, frames[:1], variants)  # warm-up
    # Alternating runs, the best of each: on a shared machine the load changes from run to run.
    results: dict[bool, tuple[float, list[list[np.ndarray]]]] = {}
    for _ in range(args.repeat):
        for reuse, detector in detectors.items():
            seconds, detections = _run(detector, frames[1:], variants)
            if reuse not in results or seconds < results[reuse][0]:
                results[reuse] = (seconds, detections)
    per_point = {reuse: seconds / (len(points) * args.frames) for reuse, (seconds, _) in results.items()}
    total_gflop, trunk_gflop = flop_bound(detectors[True], frames[0], args.modality)
    return {
        "detector": name, "description": DETECTORS[name][0], "size": list(size), "points": len(points),
        "frames": args.frames, "modality": args.modality,
        "uncached_s_per_point_frame": per_point[False], "cached_s_per_point_frame": per_point[True],
        "speedup": per_point[False] / per_point[True],
        "gflop_per_point": total_gflop, "reused_trunk_gflop": trunk_gflop,
        "flop_bound": total_gflop / (total_gflop - trunk_gflop),
        "max_abs_diff": _max_abs_diff(results[False][1], results[True][1]),
        "weights": "random",
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.frames, args.repeat, args.batch_size) < 1:
        raise SystemExit(f"--frames, --repeat and --batch-size must be >= 1, got {args.frames}, {args.repeat}, "
                         f"{args.batch_size}")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} threads; random weights, {args.frames} frames after 1 warm-up, best of "
          f"{args.repeat}, "
          f"S0 shifts {args.shifts} of {args.modality}\n")
    rows = [measure(name, args) for name in args.detectors]
    print("| detector | frame | points | uncached s/point/frame | cached s/point/frame | speedup | GFLOP/point "
          "| reused trunk GFLOP | FLOP bound | max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['description']} | {row['size'][1]}x{row['size'][0]} | {row['points']} | "
              f"{row['uncached_s_per_point_frame']:.3f} | {row['cached_s_per_point_frame']:.3f} | "
              f"{row['speedup']:.2f}x | {row['gflop_per_point']:.2f} | {row['reused_trunk_gflop']:.2f} | "
              f"{row['flop_bound']:.2f}x | {row['max_abs_diff']:.2g} |")
    if args.json is not None:
        args.json.write_text(json.dumps({row["detector"]: row for row in rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
