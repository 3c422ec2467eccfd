"""Content-leak benchmark: train every translator method, then detect pedestrians in what it writes.

For each method (``--methods``):

1. train it with ``configs/translator/<method>_<suffix>.yaml`` (``tiny.yaml`` / ``default.yaml`` for
   the flow; ``--steps`` and ``--crop`` override every method's training length and crop);
2. score it with the ``rgbt translate-eval`` metrics on the test split (style ``bank``, as
   ``rgbt translate`` writes by default), time ``rgbt translate`` over the test frames (frames/s
   including decoding and writing PNGs, one process) and count its parameters (trainable / total;
   fixed VGG features count as not trainable);
3. with ``--detector-steps N`` (default 1000; 0 skips it): translate the training split too and train
   two detectors with one shared recipe on its output, **fake RGB + thermal** and **fake RGB only**,
   then report their KAIST MR^-2 on the test split. The fake-RGB-only detector is the direct probe of
   content leak: it can only find the pedestrians the translator kept. The same recipe trained on
   **thermal only**, **real RGB + thermal** and **real RGB only** gives the reference rows.

The detector recipe is the quick demo's (``rgbt.demo.QUICK``: narrow ResNet-18 Faster R-CNN) with the
frames enlarged to 256x320 (:data:`DETECTOR_RECIPE`), run for ``--detector-steps`` steps;
``--recipe demo`` takes the full demo's converged recipe instead (``rgbt.demo.FULL``: its detector
settings, 1800 steps, and its 600 training / 500 test frames of 320x256, on which an RGB-only
detector learns); ``--detector-set`` overrides either. ``--probes`` picks the detectors trained on
each method's output (``--probes`` with no name and ``--frozen-rgb``: only the frozen-RGB probe,
no detector trained on fake RGB). Miss rates use
the KAIST ``reasonable`` setup with heights scaled to the frame size, as the demo does. Detector
training from scratch on a few dozen frames is noisy: ``--detector-seeds 0 1 2`` trains every detector
once per seed and reports ``mean (min-max)``.

With ``--frozen-rgb`` one more probe runs, with no detector trained on fake RGB: an **RGB-only
detector trained on the real RGB** of the training split (the shared recipe, once per detector
seed) is run, frozen, on each method's test fake RGB in place of the camera image
(:func:`rgbt.engine.translation_eval.frozen_rgb_missrate`), the use a night-time RGB detector would
make of it; ``--frozen-day-style`` also probes a translation of the test split with one real day
RGB frame as the style of every frame (night frames made to look like day, the use case of
``tools/bench_night.py``). ``--methods flow_task`` adds the task-aware flow: the flow's config trained with
``loss.detector: --task-weight`` against that frozen RGB detector (of ``--seed``).
``--translator-seeds 0 1 2`` trains (and translates, and probes) every method once per seed;
translator metrics and miss rates are then ``mean (min-max)`` over them.

Prints two markdown tables (translators; detectors) and, with ``--json``, writes every number.
``--figure`` draws one thermal test frame translated by every method (one row, thermal first).
With ``--work DIR`` every finished stage is recorded in ``DIR/stages/`` and reused by a re-run of
the same command (an interrupted benchmark continues where it stopped); a re-run may add methods,
probes or seeds (:data:`SELECTION_OPTIONS`), while other changed settings are refused.

Without ``--data`` a synthetic KAIST-layout root is generated; ``--data`` takes a KAIST-layout root
(``--train-set`` / ``--test-set`` name its image sets) or a FLIR-aligned one (``--test-set validation``;
MR^-2 over its persons). Everything runs on the CPU.

    python tools/bench_translators.py --figure docs/translators_compare.png
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METHODS = ("flow", "pix2pixhd", "adain", "gatys", "munit", "flow_task")
METRICS = ("edge_f1", "gradient_ssim", "psnr_day", "ssim_day", "rounds_psnr_db", "roundtrip_max_abs",
           "roundtrip_max_abs_8bit", "person_contrast_fake", "person_contrast_thermal")
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "translator"
#: On top of the quick demo recipe: the network sees the frames at 256x320 (small pedestrians of
#: 160x128 frames become visible to the stride-4 level) with anchors to match, and a higher rate with
#: a warm-up (1000 steps: thermal-only MR 54% instead of 73% at native size on the default root).
DETECTOR_RECIPE = ["model.min_size=256", "model.max_size=320", "model.anchor_sizes=[12, 24, 48, 96, 192]",
                   "train.lr=0.02", "train.warmup_steps=50"]
#: name -> (label, modalities) of the detectors trained on real frames, for reference.
REFERENCES: dict[str, tuple[str, list[str]]] = {
    "thermal": ("thermal only", ["thermal"]),
    "rgb_thermal": ("real RGB + thermal", ["rgb", "thermal"]),
    "rgb": ("real RGB only", ["rgb"]),
}
#: name -> (label suffix, modalities) of the two detectors trained on each method's output.
PROBES: dict[str, tuple[str, list[str]]] = {
    "fake_rgb_thermal": ("fake RGB + thermal", ["fake_rgb", "thermal"]),
    "fake_rgb": ("fake RGB only", ["fake_rgb"]),
}


#: Defaults per ``--recipe``: synthetic sizes and detector steps (the demo's 12 epochs of 600 frames
#: at batch 4 are 1800 steps).
RECIPE_SIZES: dict[str, dict[str, int]] = {
    "quick": {"train_frames": 96, "test_frames": 48, "width": 160, "height": 128, "detector_steps": 1000},
    "demo": {"train_frames": 600, "test_frames": 500, "width": 320, "height": 256, "detector_steps": 1800},
}

#: Options that select stages without changing any stage's result: a work folder accepts new values.
SELECTION_OPTIONS = ("methods", "probes", "frozen_rgb", "frozen_day_style", "translator_seeds", "detector_seeds",
                     "no_references")

#: Column / row labels of every probe.
PROBE_LABELS = {**{name: label for name, (label, _m) in PROBES.items()}, "frozen_rgb": "frozen RGB detector",
                "frozen_rgb_day": "frozen RGB detector, day style"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="ROOT", help="KAIST-layout or FLIR-aligned root (default: a synthetic "
                        "root generated in the work folder)")
    parser.add_argument("--train-set", default="train", help="training image set of --data (default: train)")
    parser.add_argument("--test-set", default="test", help="test image set of --data (default: test; FLIR-aligned: "
                        "validation)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="translators to compare (default: all)")
    parser.add_argument("--config-suffix", choices=("tiny", "full"), default="tiny",
                        help="tiny: configs/translator/<method>_tiny.yaml (flow: tiny.yaml); full: <method>.yaml "
                        "(flow: default.yaml) (default: tiny)")
    parser.add_argument("--steps", type=int, help="override train.max_steps for every method")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="override every method's training crop")
    parser.add_argument("--recipe", choices=("quick", "demo"), default="quick",
                        help="detector recipe and synthetic sizes: quick (the quick demo's detector at 256x320, "
                        "--detector-steps long, 96 / 48 frames of 160x128) or demo (the full demo's converged "
                        "recipe and its 600 / 500 frames of 320x256) (default: quick)")
    parser.add_argument("--detector-steps", type=int,
                        help="training steps of each detector; 0 skips the detectors (default: 1000 with the quick "
                        "recipe, 1800 with the demo's: its 12 epochs of 600 frames)")
    parser.add_argument("--probes", nargs="*", choices=list(PROBES), default=list(PROBES),
                        help="detectors trained on each method's output (default: both; none with --frozen-rgb "
                        "keeps only the frozen-RGB probe)")
    parser.add_argument("--detector-seeds", type=int, nargs="+", metavar="N",
                        help="train every detector once per seed and report the mean and the range (default: --seed)")
    parser.add_argument("--detector-set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides of the detector recipe (e.g. train.lr=0.01)")
    parser.add_argument("--frozen-rgb", action="store_true",
                        help="also probe every method's fake RGB with a frozen RGB-only detector trained on real RGB")
    parser.add_argument("--frozen-day-style", action="store_true",
                        help="with --frozen-rgb, also translate the test split with one real day RGB frame as the "
                        "style of every frame (the first day frame of --train-set) and probe that with the frozen "
                        "RGB detector")
    parser.add_argument("--task-weight", type=float, default=1.0,
                        help="loss.detector of the flow_task method (default: 1.0)")
    parser.add_argument("--translator-seeds", type=int, nargs="+", metavar="N",
                        help="train every translator once per seed (default: --seed)")
    parser.add_argument("--no-references", action="store_true",
                        help="skip the thermal-only / real-RGB reference detectors")
    parser.add_argument("--train-frames", type=int, help="synthetic training frames (default: the recipe's)")
    parser.add_argument("--test-frames", type=int, help="synthetic test frames (default: the recipe's)")
    parser.add_argument("--width", type=int, help="synthetic frame width (default: the recipe's)")
    parser.add_argument("--height", type=int, help="synthetic frame height (default: the recipe's)")
    parser.add_argument("--max-frames", type=int, default=0, help="test frames scored by translate-eval (default: "
                        "0, all)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data and training seed (default: 0)")
    parser.add_argument("--figure", metavar="PNG", help="write the side-by-side figure here")
    parser.add_argument("--json", metavar="PATH", help="write every measured number here")
    parser.add_argument("--work", metavar="DIR", help="keep runs, translations and finished stages here (a re-run "
                        "reuses them; default: a temporary folder)")
    return parser


def apply_recipe_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the sizes and detector steps not given on the command line from ``--recipe``'s defaults."""
    for key, value in RECIPE_SIZES[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def config_path(method: str, suffix: str) -> Path:
    """The shipped config of ``method`` for ``suffix`` (``tiny`` or ``full``); ``flow_task`` uses the flow's."""
    if method in ("flow", "flow_task"):
        return CONFIG_DIR / ("tiny.yaml" if suffix == "tiny" else "default.yaml")
    return CONFIG_DIR / (f"{method}_tiny.yaml" if suffix == "tiny" else f"{method}.yaml")


def count_parameters(module: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of an ``nn.Module``."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        # Three significant digits for small values: a round-trip error of 1e-6 is not 0.000.
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
    return str(value)


def translator_overrides(root: Path, args: argparse.Namespace, seed: int | None = None) -> list[str]:
    """``--set`` overrides applied to every method's config (training seed ``seed``, default ``--seed``)."""
    overrides = [f"data.root={root}", f"data.train_set={args.train_set}", f"data.val_set={args.test_set}",
                 "train.device=cpu", f"train.seed={args.seed if seed is None else seed}"]
    if args.steps:
        overrides.append(f"train.max_steps={args.steps}")
    if args.crop:
        overrides.append(f"crop=[{args.crop[0]}, {args.crop[1]}]")
    return overrides


def bench_method(method: str, root: Path, work: Path, args: argparse.Namespace, seed: int | None = None,
                 frozen: str = "") -> dict[str, Any]:
    """Train, score, time and count one method; returns its table row (``out``: its translation folder).

    The probes' training split is translated by :func:`translate_training_split`. ``seed``: the
    translator's training seed (folders ``<method>_seed<N>`` for seeds other than ``--seed``);
    ``frozen``: the frozen RGB detector checkpoint (``flow_task`` trains against it).
    """
    from rgbt.config import TranslatorConfig, load_config
    from rgbt.engine.translation import translate_dataset
    from rgbt.engine.translation_eval import evaluate_translator
    from rgbt.engine.translator_builder import load_translator
    from rgbt.engine.translator_training import train_translator

    overrides = translator_overrides(root, args, seed)
    if method == "flow_task":
        overrides += [f"loss.detector={args.task_weight}", f"loss.detector_checkpoint={frozen}"]
    config = load_config(TranslatorConfig, config_path(method, args.config_suffix), overrides)
    folder = method if seed is None or seed == args.seed else f"{method}_seed{seed}"
    run = work / folder / "run"
    result = train_translator(config, run, resume=True)
    loaded = load_translator(run / "last.pt", "cpu")
    report = evaluate_translator(loaded, root, image_set=args.test_set, max_frames=args.max_frames)
    out = work / folder / "fake"
    # A fresh folder: translate_dataset skips frames already written, and the timing covers all of them.
    shutil.rmtree(out, ignore_errors=True)
    speed = translate_dataset(loaded, root, out, image_set=args.test_set, image_format="png", workers=0,
                              progress=False)
    trainable, total = count_parameters(loaded.translator)
    return {"method": method, "steps": result["steps"], "train_s": float(result["seconds"]),
            **{key: report[key] for key in METRICS}, "frames_per_s": speed["frames_per_second"],
            "params": f"{trainable:,} / {total:,}", "out": str(out)}


def translate_training_split(root: Path, row: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Write the training split's fake RGB into the method's translation folder (``row['out']``,
    beside the test split), for the detectors trained on it."""
    from rgbt.engine.translation import translate_dataset
    from rgbt.engine.translator_builder import load_translator

    out = Path(row["out"])
    loaded = load_translator(out.parent / "run" / "last.pt", "cpu")
    speed = translate_dataset(loaded, root, out, image_set=args.train_set, image_format="png", workers=0,
                              progress=False)
    return {"frames": speed.get("frames")}


def detector_overrides(root: Path, args: argparse.Namespace, modalities: Sequence[str],
                       fake_rgb_root: str = "", seed: int = 0) -> list[str]:
    """The shared detector recipe (the quick demo's, ``--detector-steps`` long) for ``modalities``."""
    from rgbt.demo import FULL, QUICK

    # The schedule's length is min(epochs x batches, max_steps): the step count alone sets it.
    recipe = [*FULL.detector] if args.recipe == "demo" else [*QUICK.detector, *DETECTOR_RECIPE]
    recipe += ["train.epochs=100000", f"train.max_steps={args.detector_steps}"]
    return [f"data.root={root}", f"data.train_set={args.train_set}", f"data.val_set={args.test_set}",
            f"data.fake_rgb_root={fake_rgb_root}", f"data.modalities=[{', '.join(modalities)}]",
            *recipe, "train.device=cpu", f"train.seed={seed}", *args.detector_set]


def bench_detector(root: Path, run: Path, args: argparse.Namespace, modalities: Sequence[str],
                   fake_rgb_root: str = "", seed: int = 0) -> dict[str, float | None]:
    """Train one detector with the shared recipe and return its MR^-2 (%) per period on the test split."""
    from rgbt.config import DetectorConfig, load_config
    from rgbt.data.source import open_source
    from rgbt.demo import demo_setup
    from rgbt.engine.detector_training import train_detector
    from rgbt.engine.inference import evaluate_detector, load_detector

    config = load_config(DetectorConfig, None, detector_overrides(root, args, modalities, fake_rgb_root, seed))
    train_detector(config, run, resume=True)
    source = open_source(root, args.test_set, fake_rgb_root=fake_rgb_root or None)
    curves = evaluate_detector(load_detector(run / "last.pt", "cpu"), source, demo_setup(source[0].size[0]),
                               progress=False)
    return {p: (None if math.isnan(c.mr) else c.mr * 100.0) for p, c in curves.items()}


def frozen_probe(root: Path, args: argparse.Namespace, fake_rgb_root: str, frozen: Path,
                 seed: int) -> dict[str, float | None]:
    """MR^-2 (%) of the frozen RGB-only detector (of detector seed ``seed``) on the test fake RGB."""
    from rgbt.data.source import open_source
    from rgbt.engine.inference import load_detector
    from rgbt.engine.translation_eval import frozen_rgb_missrate

    path = frozen if seed == args.seed else frozen.parent.with_name(f"rgb_seed{seed}") / "last.pt"
    source = open_source(root, args.test_set, fake_rgb_root=fake_rgb_root)
    return frozen_rgb_missrate(load_detector(path, "cpu"), source, "fake_rgb")


def translate_day_style(root: Path, row: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The test split translated with one real day RGB frame as the style of every frame (the first
    day frame of the training split, :func:`rgbt.data.kaist.first_image`), into
    ``<method folder>/fake_day``; a method without a style input keeps its own translation (``out``:
    the folder to probe)."""
    from rgbt.data.kaist import first_image
    from rgbt.engine.translation import translate_dataset
    from rgbt.engine.translator_builder import load_translator
    from rgbt.translate.base import takes_style

    folder = Path(row["out"]).parent
    loaded = load_translator(folder / "run" / "last.pt", "cpu")
    if not takes_style(loaded.translator):
        return {"out": row["out"], "style": None}
    style = first_image(root, args.train_set, "rgb", period="day")
    out = folder / "fake_day"
    translate_dataset(loaded, root, out, image_set=args.test_set, style=str(style), image_format="png", workers=0,
                      progress=False)
    return {"out": str(out), "style": str(style)}


def combine_seeds(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One table row from the rows of several translator seeds: metrics averaged (``None`` stays
    ``None``), miss rates pooled over every seed's runs; ``seeds`` keeps the rows."""
    if len(rows) == 1:
        return dict(rows[0])
    out = dict(rows[0])
    for key in (*METRICS, "train_s", "frames_per_s"):
        values = [row.get(key) for row in rows]
        out[key] = None if any(v is None for v in values) else sum(values) / len(values)
    if "mr" in rows[0]:
        out["mr"] = {name: mean_of_runs([run for row in rows for run in row["mr"][name]["runs"]])
                     for name in rows[0]["mr"]}
    out["seeds"] = list(rows)
    return out


def mean_of_runs(runs: Sequence[dict[str, float | None]]) -> dict[str, Any]:
    """Per period, the mean MR of several seeds (``None`` when a run has none); ``runs`` keeps them all."""
    out: dict[str, Any] = {}
    for period in ("all", "day", "night"):
        values = [run.get(period) for run in runs]
        if period in runs[0]:
            out[period] = None if any(v is None for v in values) else sum(values) / len(values)
    out["runs"] = list(runs)
    return out


def _fmt_mr(values: dict[str, Any], period: str) -> str:
    """An MR cell: the value, or with several seeds ``mean (min-max)``."""
    mean = values.get(period)
    runs = [run.get(period) for run in values.get("runs", [])]
    if mean is None or len(runs) < 2:
        return "n/a" if mean is None else f"{mean:.1f}"
    return f"{mean:.1f} ({min(runs):.1f}-{max(runs):.1f})"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The translator table (one row per method; the MR columns when the detectors ran)."""
    columns = ["method", "steps", "train_s", *METRICS, "frames_per_s", "params"]
    header = ["method", "steps", "train s", *METRICS, "frames/s", "params (trainable / total)"]
    probes = [name for name in (*PROBES, "frozen_rgb", "frozen_rgb_day") if any(name in row.get("mr", {})
                                                                               for row in rows)]
    header += [f"MR {PROBE_LABELS[name]}" for name in probes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_fmt(row.get(c)) for c in columns]
        cells += [_fmt_mr(row["mr"][name], "all") if name in row.get("mr", {}) else "n/a" for name in probes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detector_table(references: dict[str, dict[str, float | None]], rows: Sequence[dict[str, Any]]) -> str:
    """MR^-2 (%) all / day / night of every detector: the references first, then two per method."""
    lines = ["| detector input | MR all | day | night |", "|---|---|---|---|"]
    entries = [(REFERENCES[name][0], values) for name, values in references.items()]
    entries += [(f"{row['method']}: {PROBE_LABELS[name]}", values) for row in rows for name, values in
                row.get("mr", {}).items()]
    for label, values in entries:
        lines.append(f"| {label} | " + " | ".join(_fmt_mr(values, p) for p in ("all", "day", "night")) + " |")
    return "\n".join(lines)


def draw_figure(root: Path, rows: Sequence[dict[str, Any]], path: Path, image_set: str = "test",
                frame: int = 0) -> Path:
    """One row: test frame ``frame``'s thermal image, then each method's fake RGB of it (PNG, palette-quantised)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from rgbt.data.source import open_source

    thermal = open_source(root, image_set)[frame].thermal
    panels = [("thermal", thermal, "gray")]
    for row in rows:
        sample = open_source(root, image_set, fake_rgb_root=row["out"])[frame]
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


def run_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every stage of the benchmark in ``work`` (finished stages are reused); returns all numbers."""
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.demo import Stages

    settings = {k: v for k, v in vars(args).items() if k not in ("figure", "json", "work")}
    recorded = work / "settings.json"
    if recorded.is_file():
        # Options that only choose which stages run (methods, probes, seeds) may change between runs:
        # every stage is named by what it selects. The others change what a stage computes.
        earlier = json.loads(recorded.read_text())
        changed = sorted(k for k in set(settings) | set(earlier)
                         if k not in SELECTION_OPTIONS and earlier.get(k) != settings.get(k))
        if changed:
            raise SystemExit(f"{work} holds a benchmark run with other settings ({recorded}: {', '.join(changed)}); "
                             "use another --work folder")
    work.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(settings, indent=2) + "\n")
    stages = Stages(work, label="bench")
    if args.data:
        root = Path(args.data)
    else:
        root = Path(stages.run("data", lambda: {"root": str(generate_synthetic(
            work / "synthetic", args.train_frames, args.test_frames, seed=args.seed, width=args.width,
            height=args.height, progress=False))})["root"])
    seeds = args.detector_seeds or [args.seed]

    def detector_stage(stage: str, run: Path, modalities: list[str], fake_rgb_root: str = "") -> dict[str, Any]:
        """One detector per seed (the run with ``--seed`` keeps the plain names); their mean and runs."""
        runs = []
        for seed in seeds:
            suffix = "" if seed == args.seed else f"_seed{seed}"
            runs.append(stages.run(stage + suffix, lambda seed=seed, suffix=suffix: bench_detector(
                root, run.with_name(run.name + suffix), args, modalities, fake_rgb_root, seed)))
        return mean_of_runs(runs)

    translator_seeds = args.translator_seeds or [args.seed]
    frozen = work / "references" / "rgb" / "last.pt"
    if args.frozen_rgb or "flow_task" in args.methods:
        # The RGB-only reference detector (trained on real RGB, never on fake RGB) is the frozen one.
        detector_stage("reference_rgb", work / "references" / "rgb", ["rgb"])

    rows = []
    for method in args.methods:
        per_seed = []
        for t_seed in translator_seeds:
            tag = "" if t_seed == args.seed else f"_seed{t_seed}"
            row = stages.run(method + tag, lambda method=method, t_seed=t_seed: bench_method(
                method, root, work, args, t_seed, str(frozen)))
            if args.detector_steps and args.probes:
                stages.run(f"{method}{tag}_train_split", lambda row=row: translate_training_split(root, row, args))
                folder = work / Path(row["out"]).parent.name
                row["mr"] = {name: detector_stage(f"{method}{tag}_{name}", folder / f"detector_{name}", modalities,
                                                  row["out"]) for name, (_label, modalities) in PROBES.items()
                             if name in args.probes}
            if args.frozen_rgb:
                row.setdefault("mr", {})["frozen_rgb"] = mean_of_runs([stages.run(
                    f"{method}{tag}_frozen_rgb{'' if d_seed == args.seed else f'_seed{d_seed}'}",
                    lambda row=row, d_seed=d_seed: frozen_probe(root, args, row["out"], frozen, d_seed))
                    for d_seed in seeds])
            if args.frozen_rgb and args.frozen_day_style:
                day = stages.run(f"{method}{tag}_day_style", lambda row=row: translate_day_style(root, row, args))
                row["mr"]["frozen_rgb_day"] = mean_of_runs([stages.run(
                    f"{method}{tag}_frozen_rgb_day{'' if d_seed == args.seed else f'_seed{d_seed}'}",
                    lambda day=day, d_seed=d_seed: frozen_probe(root, args, day["out"], frozen, d_seed))
                    for d_seed in seeds])
            per_seed.append(row)
        rows.append(combine_seeds(per_seed))
    references = {}
    if args.detector_steps and args.probes and not args.no_references:
        references = {name: detector_stage(f"reference_{name}", work / "references" / name, modalities)
                      for name, (_label, modalities) in REFERENCES.items()}
    return {"root": str(root), "rows": rows, "references": references, "settings": settings}


def main(argv: Sequence[str] | None = None) -> int:
    args = apply_recipe_defaults(build_parser().parse_args(argv))
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"--steps must be >= 1, got {args.steps}")
    if args.detector_steps < 0:
        raise SystemExit(f"--detector-steps must be >= 0, got {args.detector_steps}")
    if args.frozen_day_style and not args.frozen_rgb:
        raise SystemExit("--frozen-day-style probes with the frozen RGB detector: add --frozen-rgb")
    if (args.frozen_rgb or "flow_task" in args.methods) and not args.detector_steps:
        raise SystemExit("--frozen-rgb and the flow_task method need the RGB-only detector: --detector-steps >= 1")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench_translators_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        result = run_benchmark(args, work)
        print(markdown_table(result["rows"]))
        if args.detector_steps:
            print()
            print(detector_table(result["references"], result["rows"]))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
            print(f"json: {args.json}")
        if args.figure:
            print(f"figure: {draw_figure(Path(result['root']), result['rows'], Path(args.figure), args.test_set)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
