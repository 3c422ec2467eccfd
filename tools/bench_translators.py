"""Content-leak benchmark: train every translator method and compare them on one root.

For each method (``--methods``): train with ``configs/translator/<method>_<suffix>.yaml``
(``tiny.yaml`` / ``default.yaml`` for the flow), score it with the ``rgbt translate-eval`` metrics
on the test split (style ``bank``, as ``rgbt translate`` writes by default), time ``rgbt translate``
over the test frames (frames/s including decoding and writing PNGs, one process) and count its
parameters (trainable / total; fixed VGG features count as not trainable). Prints one markdown
table; ``--figure`` draws one thermal test frame translated by every method (one row, thermal first).

Without ``--data`` a synthetic KAIST-layout root is generated in a temporary folder. With the tiny
configs this is a CPU smoke run of a few seconds per method, not a measurement of what the methods
achieve when trained properly.

    python tools/bench_translators.py --figure docs/translators_compare.png
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METHODS = ("flow", "pix2pixhd", "adain", "gatys", "munit")
METRICS = ("edge_f1", "gradient_ssim", "psnr_day", "ssim_day", "rounds_psnr_db", "roundtrip_max_abs")
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "translator"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="ROOT", help="dataset root with train/test splits (default: a synthetic "
                        "root generated in a temporary folder)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="translators to compare (default: all)")
    parser.add_argument("--config-suffix", choices=("tiny", "full"), default="tiny",
                        help="tiny: configs/translator/<method>_tiny.yaml (flow: tiny.yaml); full: <method>.yaml "
                        "(flow: default.yaml) (default: tiny)")
    parser.add_argument("--steps", type=int, help="override train.max_steps for every method")
    parser.add_argument("--train-frames", type=int, default=16, help="synthetic training frames (default: 16)")
    parser.add_argument("--test-frames", type=int, default=8, help="synthetic test frames (default: 8)")
    parser.add_argument("--width", type=int, default=160, help="synthetic frame width (default: 160)")
    parser.add_argument("--height", type=int, default=128, help="synthetic frame height (default: 128)")
    parser.add_argument("--max-frames", type=int, default=0, help="test frames scored (default: 0, all)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data and training seed (default: 0)")
    parser.add_argument("--figure", metavar="PNG", help="write the side-by-side figure here")
    parser.add_argument("--work", metavar="DIR", help="keep runs and translations here (default: a temporary folder)")
    return parser


def config_path(method: str, suffix: str) -> Path:
    """The shipped config of ``method`` for ``suffix`` (``tiny`` or ``full``)."""
    if method == "flow":
        return CONFIG_DIR / ("tiny.yaml" if suffix == "tiny" else "default.yaml")
    return CONFIG_DIR / (f"{method}_tiny.yaml" if suffix == "tiny" else f"{method}.yaml")


def count_parameters(module: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of an ``nn.Module``."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        # Three significant digits for small values: a round-trip error of 1e-6 is not 0.000.
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
    return str(value)


def bench_method(method: str, root: Path, work: Path, suffix: str, steps: int | None, seed: int,
                 max_frames: int) -> dict[str, Any]:
    """Train, score, time and count one method; returns a table row (plus ``out``, its translation folder)."""
    from rgbt.config import TranslatorConfig, load_config
    from rgbt.engine.translation import load_translator, translate_dataset
    from rgbt.engine.translation_eval import evaluate_translator
    from rgbt.engine.translator_training import train_translator

    overrides = ["train.device=cpu", f"train.seed={seed}"] + ([f"train.max_steps={steps}"] if steps else [])
    config = load_config(TranslatorConfig, config_path(method, suffix), overrides)
    config.data.root = str(root)
    result = train_translator(config, work / method / "run")
    loaded = load_translator(work / method / "run" / "last.pt", "cpu")
    report = evaluate_translator(loaded, root, image_set="test", max_frames=max_frames)
    out = work / method / "fake"
    speed = translate_dataset(loaded, root, out, image_set="test", image_format="png", workers=0, progress=False)
    trainable, total = count_parameters(loaded.translator)
    return {"method": method, "steps": result["steps"], "train_s": float(result["seconds"]),
            **{key: report[key] for key in METRICS}, "frames_per_s": speed["frames_per_second"],
            "params": f"{trainable:,} / {total:,}", "out": out}


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The benchmark table (one row per method)."""
    columns = ["method", "steps", "train_s", *METRICS, "frames_per_s", "params"]
    header = ["method", "steps", "train s", *METRICS, "frames/s", "params (trainable / total)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def draw_figure(root: Path, rows: Sequence[dict[str, Any]], path: Path, frame: int = 0) -> Path:
    """One row: test frame ``frame``'s thermal image, then each method's fake RGB of it (PNG, palette-quantised)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from rgbt.data.source import open_source

    thermal = open_source(root, "test")[frame].thermal
    panels = [("thermal", thermal, "gray")]
    for row in rows:
        sample = open_source(root, "test", fake_rgb_root=row["out"])[frame]
        panels.append((row["method"], sample.fake_rgb, None))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.2 * thermal.shape[0] / thermal.shape[1]
                                                      + 0.4), squeeze=False)
    for ax, (title, image, cmap) in zip(axes[0], panels):
        ax.imshow(image, cmap=cmap, vmin=0, vmax=255)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    buffer.seek(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the figure small enough for the repository.
    Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"--steps must be >= 1, got {args.steps}")
    logging.basicConfig(level=logging.WARNING)
    from rgbt.data.synthetic import generate_synthetic

    with tempfile.TemporaryDirectory(prefix="bench_translators_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        if args.data:
            root = Path(args.data)
        else:
            root = generate_synthetic(work / "synthetic", args.train_frames, args.test_frames, seed=args.seed,
                                      width=args.width, height=args.height, progress=False)
        rows = [bench_method(method, root, work, args.config_suffix, args.steps, args.seed, args.max_frames)
                for method in args.methods]
        print(markdown_table(rows))
        if args.figure:
            print(f"figure: {draw_figure(root, rows, Path(args.figure))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
