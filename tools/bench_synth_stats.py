"""How close the synthetic benchmark is to KAIST: per-person contrast, real frames vs generated ones.

Measures :mod:`rgbt.evaluation.contrast` (d' of each reasonable person's box core against a
surrounding ring, per modality, and the share of thermal background as hot as a person) on the
real KAIST frames of ``--kaist`` and on a freshly generated synthetic test split per ``--seeds``
(in a temporary folder; the generation speed is measured too), and prints a markdown table:
one row per period, modality and statistic, one column per source. ``--effect NAME=VALUE``
changes the generator's effects (``--effect off`` turns them all off), to see what each one does.

    python tools/bench_synth_stats.py                       # fixture frames vs seed 0, 400 frames
    python tools/bench_synth_stats.py --seeds 0 1 2 --json stats.json
    python tools/bench_synth_stats.py --effect crossover=0  # without thermal crossover
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

#: (period, modality, statistic, label) rows of the table.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("day", "thermal", "median_d", "thermal d' (median)"),
    ("night", "thermal", "median_d", "thermal d' (median)"),
    ("day", "thermal", "low_contrast", r"thermal: persons with \|d'\| < 1"),
    ("night", "thermal", "low_contrast", r"thermal: persons with \|d'\| < 1"),
    ("day", "thermal", "hot_background", "background as hot as a person"),
    ("night", "thermal", "hot_background", "background as hot as a person"),
    ("day", "rgb", "median_abs_d", r"RGB \|d'\| (median)"),
    ("night", "rgb", "median_abs_d", r"RGB \|d'\| (median)"),
    ("day", "rgb", "low_contrast", r"RGB: persons with \|d'\| < 1"),
    ("night", "rgb", "low_contrast", r"RGB: persons with \|d'\| < 1"),
    ("day", "thermal", "persons", "persons measured"),
    ("night", "thermal", "persons", "persons measured"),
)
_PERCENT = {"low_contrast", "hot_background"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kaist", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "kaist"),
                        help="real KAIST root (default: ../shared/data/kaist; skipped when absent)")
    parser.add_argument("--image-set", default="fixture-test",
                        help="frames of --kaist with their images (default: fixture-test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="synthetic dataset seeds (default: 0)")
    parser.add_argument("--frames", type=int, default=400,
                        help="synthetic test frames per seed, half day and half night (default: 400)")
    parser.add_argument("--width", type=int, default=320, help="synthetic frame width (default: 320, the demo's)")
    parser.add_argument("--height", type=int, default=256, help="synthetic frame height (default: 256)")
    parser.add_argument("--effect", action="append", default=[], metavar="NAME=VALUE",
                        help="generator effect strength (repeatable; 'off' turns every effect off first)")
    parser.add_argument("--json", metavar="OUT", help="also write the measurements as json")
    return parser


def measure_root(root: str | Path, image_set: str) -> dict[str, Any]:
    """``{period: {modality: summary dict}}`` of one KAIST-layout root's image set."""
    from rgbt.data.source import open_source
    from rgbt.evaluation.contrast import measure_contrast

    source = open_source(root, image_set)
    summary = measure_contrast(source[i] for i in range(len(source)))
    return {period: {m: s.as_dict() for m, s in row.items()} for period, row in summary.items()}


def measure_synthetic(seed: int, frames: int, width: int, height: int, effects: Any = None) -> dict[str, Any]:
    """Generate a synthetic test split in a temporary folder and measure it; adds ``frames_per_s``
    (``effects``: a :class:`~rgbt.data.synthetic_effects.SyntheticEffects`, default the defaults)."""
    from rgbt.data.synthetic import generate_synthetic

    with tempfile.TemporaryDirectory(prefix="rgbt-synth-stats-") as tmp:
        started = time.perf_counter()
        root = generate_synthetic(Path(tmp) / "root", 0, frames, seed=seed, width=width, height=height,
                                  progress=False, effects=effects)
        seconds = time.perf_counter() - started
        result = measure_root(root, "test")
    result["frames_per_s"] = frames / seconds
    return result


def format_table(columns: dict[str, dict[str, Any]]) -> str:
    """Markdown table: one row per entry of :data:`ROWS`, one column per measured source."""
    def cell(stats: dict[str, Any], period: str, modality: str, key: str) -> str:
        value = stats.get(period, {}).get(modality, {}).get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if key == "persons":
            return str(value)
        return f"{100 * value:.1f} %" if key in _PERCENT else f"{value:.2f}"

    lines = ["| period | statistic | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for period, modality, key, label in ROWS:
        lines.append(f"| {period} | {label} | " + " | ".join(cell(s, period, modality, key)
                                                            for s in columns.values()) + " |")
    speeds = [f"{name}: {s['frames_per_s']:.1f}" for name, s in columns.items() if "frames_per_s" in s]
    if speeds:
        lines.append("\ngeneration speed, frames/s in one process (JPEG writing included): " + ", ".join(speeds))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from rgbt.data.synthetic_effects import SyntheticEffects, parse_effects

    try:
        effects = parse_effects(args.effect)
    except ValueError as error:
        parser.error(str(error))
    if args.frames < 2:
        parser.error(f"--frames must be at least 2 (one day and one night frame), got {args.frames}")
    columns: dict[str, dict[str, Any]] = {}
    kaist = Path(args.kaist)
    if (kaist / "annotations").is_dir():
        columns[f"KAIST ({args.image_set})"] = measure_root(kaist, args.image_set)
    else:
        print(f"{kaist}: no KAIST root there, real frames skipped")
    for seed in args.seeds:
        columns[f"synthetic seed {seed}"] = measure_synthetic(seed, args.frames, args.width, args.height, effects)
    changed = {k: v for k, v in asdict(effects).items() if v != getattr(SyntheticEffects(), k)}
    print("effects:", ", ".join(f"{k}={v:g}" for k, v in changed.items()) or "defaults")
    print(format_table(columns))
    if args.json:
        Path(args.json).write_text(json.dumps({"effects": asdict(effects), "sources": columns}, indent=1) + "\n",
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
