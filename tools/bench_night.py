"""The night use case of task-aware translation: a frozen day-RGB detector on real night RGB, or on
fake RGB translated from the night thermal frames.

A pedestrian detector trained on daytime RGB is blind at night; the thermal camera still sees
everyone. This benchmark measures whether translating thermal frames into fake RGB lets the day
detector, unchanged, find them, and what the flow's detector term (``loss.detector``) adds:

1. a synthetic KAIST-layout root (the full demo's sizes: 600 training / 500 test frames of 320x256;
   ``--quick``: the quick demo's) and the list ``imageSets/train_day.txt`` of its day training frames;
2. an RGB-only detector trained on those day frames only, with the demo's detector recipe and as
   many steps as the demo's RGB detector takes on all of them (twice the epochs on half the frames);
3. per ``--weights`` W and ``--seeds`` seed, the flow translator with the demo's translator settings
   and ``loss.detector: W`` against that detector (``0``: the plain flow); it translates the test
   frames twice, with its style bank (night frames get the night style) and with one real day RGB
   frame as the style for every frame (the night frames made to look like day), written as PNG;
4. the frozen detector on the real test RGB (the reference) and on each fake RGB, KAIST MR^-2
   ``reasonable`` with heights scaled to the frame, all / day / night, and the ``translate-eval``
   metrics of the written fake RGB (pedestrian contrast d', PSNR against the real day RGB).

Prints one markdown table per style: the real-RGB row (MR +- its bootstrap SD over the test
frames), then one row per weight with MR as ``mean (min-max)`` over the seeds. Every finished
step is recorded in ``--work`` (``results.json`` and the run folders), so an interrupted run
continues where it stopped.

    python tools/bench_night.py --work runs/night --weights 0 1 3 --seeds 0 1 2 --json night.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: translate-eval metrics kept per fake-RGB set.
METRICS = ("person_contrast_fake", "person_contrast_thermal", "psnr_day", "ssim_day", "edge_f1",
           "roundtrip_max_abs_8bit")
#: Translation styles: the style bank (per-period styles) and one real day RGB frame for every frame.
STYLES = ("bank", "day")
#: Test frames scored by translate-eval (the miss rates use all of them).
EVAL_FRAMES = 48
#: Bootstrap replicates of the real-RGB row's SD over the test frames (the flows' rows give seed ranges).
BOOTSTRAP = 200


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder of the runs and results.json (a re-run resumes)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0],
                        help="loss.detector values of the flows (0: the plain flow) (default: 0 1)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="translator training seeds (default: 0)")
    parser.add_argument("--quick", action="store_true", help="the quick demo's sizes and recipe (for tests)")
    parser.add_argument("--translator-set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides of the flows' settings (e.g. train.max_steps=600); their runs are kept "
                        "apart from the default ones")
    parser.add_argument("--json", metavar="OUT", help="also write every number here")
    return parser


def settings_for(quick: bool) -> Any:
    from rgbt.demo import FULL, QUICK

    return QUICK if quick else FULL


def prepare(work: Path, quick: bool) -> tuple[Path, Path]:
    """The synthetic root (with ``train_day.txt``) and the trained day-RGB detector's checkpoint."""
    from rgbt.config import DetectorConfig, load_config
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.engine.detector_training import train_detector

    settings = settings_for(quick)
    root = generate_synthetic(work / "data", settings.n_train, settings.n_test, seed=settings.seed,
                              width=settings.width, height=settings.height, workers=0 if quick else 2,
                              progress=False)
    train = (root / "imageSets" / "train.txt").read_text().split()
    # The generator's day training frames are set00 (night: set03).
    day = [frame for frame in train if frame.startswith("set00/")]
    (root / "imageSets" / "train_day.txt").write_text("".join(f"{frame}\n" for frame in day))
    run = work / "rgb_day"
    if not (run / "last.pt").is_file() or not (run / "result.json").is_file():
        epochs = [item for item in settings.detector if item.startswith("train.epochs=")]
        twice = [f"train.epochs={2 * int(epochs[-1].split('=')[1])}"] if epochs else []
        config = load_config(DetectorConfig, None, [
            f"data.root={root}", "data.train_set=train_day", "data.val_set=test", "train.device=cpu",
            *settings.detector, "data.modalities=[rgb]", f"train.seed={settings.seed}", *twice])
        train_detector(config, run, resume=True)
    return root, run / "last.pt"


def day_style_image(root: Path) -> Path:
    """The real RGB image of the first day training frame (the style of the ``day`` translations)."""
    from rgbt.data.kaist import first_image

    return first_image(root, "train_day", "rgb")


def entry_key(weight: float, seed: int, overrides: Sequence[str] = ()) -> str:
    """The results key (and run folder suffix) of one flow: weight, seed and a digest of the overrides."""
    import hashlib

    digest = "_" + hashlib.sha1(json.dumps(list(overrides)).encode()).hexdigest()[:8] if overrides else ""
    return f"w{weight:g}_s{seed}{digest}"


def flow_entry(root: Path, frozen: Path, run: Path, weight: float, seed: int, quick: bool,
               translator_set: Sequence[str] = ()) -> dict[str, Any]:
    """Train one flow (``loss.detector: weight``), translate the test split in both styles and probe it."""
    from rgbt.config import TranslatorConfig, load_config
    from rgbt.data.source import open_source
    from rgbt.engine.inference import load_detector
    from rgbt.engine.translation import translate_dataset
    from rgbt.engine.translation_eval import evaluate_translator, frozen_rgb_missrate
    from rgbt.engine.translator_builder import load_translator
    from rgbt.engine.translator_training import train_translator

    overrides = [f"data.root={root}", "train.device=cpu", f"train.seed={seed}", *settings_for(quick).translator,
                 *translator_set]
    if weight > 0:
        overrides += [f"loss.detector={weight:g}", f"loss.detector_checkpoint={frozen}"]
    started = time.perf_counter()
    train_translator(load_config(TranslatorConfig, None, overrides), run / "run", resume=True)
    entry: dict[str, Any] = {"train_s": time.perf_counter() - started}
    loaded = load_translator(run / "run" / "last.pt", "cpu")
    detector = load_detector(frozen, "cpu")
    styles = {"bank": "bank", "day": str(day_style_image(root))}
    for name in STYLES:
        fake = run / f"fake_{name}"
        translate_dataset(loaded, root, fake, image_set="test", style=styles[name], image_format="png", workers=0,
                          progress=False)
        entry[name] = frozen_rgb_missrate(detector, open_source(root, "test", fake_rgb_root=fake), "fake_rgb")
        report = evaluate_translator(loaded, root, image_set="test", max_frames=EVAL_FRAMES, fake_rgb_root=fake)
        entry[f"{name}_metrics"] = {key: report.get(key) for key in METRICS}
    return entry


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every step in ``--work`` (finished ones are reused from ``results.json``); returns all numbers."""
    from rgbt.atomic import atomic_write_text
    from rgbt.data.source import open_source
    from rgbt.engine.inference import load_detector
    from rgbt.engine.translation_eval import frozen_rgb_missrate

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    root, frozen = prepare(work, args.quick)

    def save() -> None:
        atomic_write_text(path, json.dumps(results, indent=1) + "\n")

    if "all_sd" not in results.get("real_rgb", {}):
        results["real_rgb"] = frozen_rgb_missrate(load_detector(frozen, "cpu"), open_source(root, "test"), "rgb",
                                                  bootstrap=BOOTSTRAP)
        save()
    for weight in args.weights:
        for seed in args.seeds:
            key = entry_key(weight, seed, args.translator_set)
            if key not in results:
                results[key] = flow_entry(root, frozen, work / f"flow_{key}", weight, seed, args.quick,
                                          args.translator_set)
                results[key]["translator_set"] = list(args.translator_set)
                save()
                print(f"[night] {key}: day style MR all {fmt(results[key]['day']['all'])}", flush=True)
    return results


def fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def with_sd(entry: dict[str, Any], period: str) -> str:
    """``MR +- bootstrap SD`` of one period (the SD left out when there is none)."""
    sd = entry.get(f"{period}_sd")
    return fmt(entry[period]) + ("" if sd is None else f" +- {sd:.1f}")


def spread(values: Sequence[float | None], digits: int = 1) -> str:
    """``mean (min-max)`` of the values (``n/a`` when any is missing); the value alone for one."""
    if not values or any(v is None for v in values):
        return "n/a"
    numbers = [float(v) for v in values if v is not None]
    mean = sum(numbers) / len(numbers)
    if len(numbers) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(numbers):.{digits}f}-{max(numbers):.{digits}f})"


def table(results: dict[str, Any], weights: Sequence[float], seeds: Sequence[int], style: str,
          translator_set: Sequence[str] = ()) -> str:
    """Markdown: the frozen day-RGB detector on real RGB, then on the fake RGB of each weight."""
    real = results["real_rgb"]
    lines = ["| frozen day-RGB detector on | MR all | day | night | fake d' (thermal d') | PSNR day (dB) |",
             "|---|---|---|---|---|---|",
             "| real RGB | " + " | ".join(with_sd(real, p) for p in ("all", "day", "night")) + " | - | - |"]
    for weight in weights:
        entries = [results[entry_key(weight, seed, translator_set)] for seed in seeds]
        mrs = [spread([e[style][p] for e in entries]) for p in ("all", "day", "night")]
        metrics = [e[f"{style}_metrics"] for e in entries]
        # The thermal d' is the same test frames' for every seed: its mean is enough.
        thermal = [m["person_contrast_thermal"] for m in metrics]
        contrast = (f"{spread([m['person_contrast_fake'] for m in metrics], 2)} "
                    f"({'n/a' if None in thermal else f'{sum(thermal) / len(thermal):.2f}'})")
        label = "plain flow, `loss.detector: 0`" if weight == 0 else f"task-aware flow, `loss.detector: {weight:g}`"
        lines.append(f"| fake RGB, {label} | {' | '.join(mrs)} | {contrast} | "
                     f"{spread([m['psnr_day'] for m in metrics])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if any(w < 0 for w in args.weights):
        raise SystemExit(f"--weights must be >= 0, got {args.weights}")
    results = run_benchmark(args)
    for style in STYLES:
        what = "its style bank (night frames in the night style)" if style == "bank" else \
            "one real day RGB frame as the style of every frame"
        extra = f", translator settings {' '.join(args.translator_set)}" if args.translator_set else ""
        print(f"\nfake RGB translated with {what}{extra}; MR^-2 (%) mean (min-max) over seeds {args.seeds}:")
        print(table(results, args.weights, args.seeds, style, args.translator_set))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
