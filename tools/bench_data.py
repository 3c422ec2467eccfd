"""Benchmark the data pipeline: JPEG decode + paired augmentation + tensors, in pairs per second.

Generates a small 640x512 synthetic KAIST-layout root in a temporary folder (or reads ``--root``),
then times :class:`rgbt.data.dataset.PairDataset` through a torch ``DataLoader`` for each
augmentation setting, output dtype (float32 in [0, 1], the default, or uint8) and worker count,
and prints a markdown table. Throughput is measured after the first batch (worker start-up
excluded) over ``--epochs`` passes; each cell is the best of ``--repeats`` measurements, since
other processes on a shared machine only ever slow a run down.

    python tools/bench_data.py                    # 640x512, workers 0 and 2
    python tools/bench_data.py --workers 0 2 4 --frames 96
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

#: augmentation setting name -> build_train_transform keyword arguments (None: no transform).
SETTINGS: dict[str, dict | None] = {
    "decode only": None,
    "hflip (default)": {"hflip": 0.5},
    "hflip+scale+crop+color+shift": {"hflip": 0.5, "scale": (0.8, 1.2), "crop": (448, 576), "color": 0.5,
                                     "shift_rgb": 6.0, "thermal_jitter": 0.3},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="existing KAIST-layout root (default: generate a synthetic one)")
    parser.add_argument("--image-set", default="train", help="image set of --root (default: train)")
    parser.add_argument("--frames", type=int, default=64, help="synthetic frames to generate (default: 64)")
    parser.add_argument("--width", type=int, default=640, help="synthetic frame width (default: 640)")
    parser.add_argument("--height", type=int, default=512, help="synthetic frame height (default: 512)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers (default: 0 2)")
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per batch (default: 4)")
    parser.add_argument("--epochs", type=int, default=2, help="passes over the frames per measurement (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per cell, best kept (default: 3)")
    parser.add_argument("--settings", nargs="+", choices=sorted(SETTINGS), default=list(SETTINGS),
                        help="augmentation settings to time (default: all)")
    parser.add_argument("--dtypes", nargs="+", choices=("float32", "uint8"), default=["float32", "uint8"],
                        help="PairDataset image dtypes to time (default: both)")
    return parser


def measure(dataset, workers: int, batch_size: int, epochs: int) -> float:
    """Pairs per second through a DataLoader, excluding the first batch (worker start-up)."""
    from torch.utils.data import DataLoader

    from rgbt.data.dataset import collate_pairs

    order = list(range(len(dataset))) * epochs
    loader = DataLoader(dataset, batch_size=batch_size, sampler=order, num_workers=workers,
                        collate_fn=collate_pairs, prefetch_factor=4 if workers else None)
    iterator = iter(loader)
    next(iterator)
    start, count = time.perf_counter(), 0
    for images, _targets in iterator:
        count += len(next(iter(images.values())))
    return count / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import cv2
    import torch

    from rgbt.data.dataset import PairDataset
    from rgbt.data.source import open_source
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.data.transforms import build_train_transform

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="rgbt-bench-") as tmp:
        root = Path(args.root) if args.root else None
        if root is None:
            start = time.perf_counter()
            root = generate_synthetic(Path(tmp) / "synthetic", args.frames, 0, seed=0, width=args.width,
                                      height=args.height, workers=min(2, os.cpu_count() or 1), progress=False)
            print(f"generated {args.frames} synthetic {args.width}x{args.height} frames in "
                  f"{time.perf_counter() - start:.1f} s\n")
        source = open_source(root, args.image_set)
        height, width = source[0].thermal.shape
        print(f"{len(source)} frames of {width}x{height} from {root}, batch {args.batch_size}, "
              f"{args.epochs} epochs, torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}, "
              f"{os.cpu_count()} CPUs\n")
        header = "| augmentation | dtype | " + " | ".join(f"{w} workers (pairs/s)" for w in args.workers) + " |"
        print(header)
        print("|" + "---|" * (len(args.workers) + 2))
        for name in args.settings:
            kwargs = SETTINGS[name]
            for dtype in args.dtypes:
                transform = build_train_transform(**kwargs, seed=0) if kwargs is not None else None
                dataset = PairDataset(source, modalities=("rgb", "thermal"), transform=transform,
                                      image_dtype=getattr(torch, dtype))
                rates = [max(measure(dataset, w, args.batch_size, args.epochs) for _ in range(args.repeats))
                         for w in args.workers]
                print(f"| {name} | {dtype} | " + " | ".join(f"{r:.0f}" for r in rates) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
