"""The main job end to end: ``rgbt demo`` on the synthetic KAIST-format benchmark.

Stages (each one records its result in ``DIR/stages/<name>.json``; a re-run reuses finished
stages, and the training stages resume from their ``last.pt``):

1. ``data``: the synthetic benchmark (RGB stream misaligned per frame) in ``DIR/data``;
2. ``translator``: the flow translator trained on the day pairs, ``DIR/translator``;
3. ``fake_rgb``: the fake-RGB folder written by the translator, ``DIR/fake_rgb``; and
   ``translator_eval``: its content-preservation metrics and triplet figure;
4. ``detector_<key>``: the demo detectors (:data:`DETECTORS`), one recipe, ``DIR/detectors/<key>``:
   thermal only, RGB only, RGB + thermal (halfway fusion), RGB + thermal trained with RGB shifts,
   RGB + thermal with region feature alignment (AR-CNN's RFA at the region level, with each frame's
   registration as the prior of the region offsets, trained with the same shifts),
   fake RGB + thermal;
5. ``evaluate``: MR^-2 all/day/night of each detector with bootstrap standard deviations, and the
   MR-FPPI figure; ``rfa_offsets``: the RFA detector's offset-prediction error against the paired
   boxes, aligned and at the probe shift;
6. ``misalign``: the sweep of RGB shifts (S0, S90) and RGB blacked out, ``DIR/misalign``, with the
   RGB + thermal detector also measured on registered pairs (``rgb_thermal_registered``: every
   perturbed pair registered by ``rgbt align``'s shift model and its RGB warped into the thermal
   frame first);
7. the report: ``DIR/report.md``, ``DIR/report.html`` (self-contained), ``DIR/report.json``, with
   the measured findings (:func:`demo_findings`) stated in words.

Miss rates use the KAIST ``reasonable`` setup with its height range scaled to the frames (the
synthetic frames are smaller than KAIST's 512 px height; see :func:`demo_setup`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rgbt.atomic import atomic_write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoDetector:
    """One demo detector: its label in the report, the modalities it reads, the demo detectors it
    starts from (fusion detectors: ``model.init_from`` their checkpoints, fusion passing thermal
    through at first), whether it trains with random RGB shifts, config overrides of its own, and its
    training time relative to the other demo detectors' (only the order of trainings depends on it:
    of the detectors ready to train, the longest starts first)."""

    label: str
    modalities: tuple[str, ...]
    starts_from: tuple[str, ...] = ()
    shift_augmented: bool = False
    overrides: tuple[str, ...] = ()
    cost: float = 1.0


#: key -> detector; the keys are the report's and the checkpoint folders' names. A detector comes
#: after the ones it starts from.
DETECTORS: dict[str, DemoDetector] = {
    "thermal": DemoDetector("thermal only", ("thermal",), cost=2.6),
    "rgb": DemoDetector("RGB only", ("rgb",), cost=2.7),
    "rgb_thermal": DemoDetector("RGB + thermal", ("rgb", "thermal"), starts_from=("rgb", "thermal")),
    "rgb_thermal_shiftaug": DemoDetector("RGB + thermal, shift-augmented", ("rgb", "thermal"),
                                         starts_from=("rgb", "thermal"), shift_augmented=True),
    "rgb_thermal_rfa": DemoDetector("RGB + thermal, region feature alignment", ("rgb", "thermal"),
                                    starts_from=("rgb", "thermal"), shift_augmented=True,
                                    overrides=("model.align=rfa_region", "model.align_prior=registration"),
                                    cost=1.6),
    "fake_rgb_thermal": DemoDetector("fake RGB + thermal", ("fake_rgb", "thermal"), starts_from=("thermal",)),
}

#: Detectors the misalignment sweep measures (those that do not read RGB are measured once).
SWEEP_DETECTORS: tuple[str, ...] = ("thermal", "rgb_thermal", "rgb_thermal_shiftaug", "rgb_thermal_rfa",
                                     "fake_rgb_thermal")

#: The detector the sweep also measures on registered pairs, and the name of that curve.
REGISTERED_DETECTOR = "rgb_thermal"
REGISTERED_NAME = f"{REGISTERED_DETECTOR}_registered"

#: Report labels of the sweep's curves that are not detectors of their own.
CURVE_LABELS: dict[str, str] = {REGISTERED_NAME: "RGB + thermal, registered (shift model)"}


@dataclass
class DemoSettings:
    """Sizes of one demo run (``full`` for ``make demo``, ``quick`` for tests and CI)."""

    n_train: int
    n_test: int
    width: int
    height: int
    translator: list[str]  # --set overrides of the translator config
    detector: list[str]  # --set overrides shared by every detector config (the recipe)
    fusion: list[str]  # overrides of the fusion detectors, which start from the single-modality ones
    shifts: str  # magnitude spec of the S0/S90 sweep
    shift_augment: float  # augment.shift_rgb (px) of the shift-augmented detectors
    shift_augment_prob: float = 1.0  # augment.shift_rgb_prob: the fraction of their samples that is shifted
    translate_frames: int = 0  # frames used by translate-eval (0: all test frames)
    seed: int = 0
    bootstrap: int = 200  # bootstrap replicates for the SD of every MR
    patterns: list[str] = field(default_factory=lambda: ["S0", "S90"])


FULL = DemoSettings(
    n_train=600,
    n_test=500,
    width=320,
    height=256,
    translator=[
        "model.n_blocks=2", "model.n_flows=4", "model.hidden=32", "crop=[96, 128]",
        "train.epochs=2", "train.batch_size=4", "train.lr=0.002", "train.warmup_steps=10",
        "train.eval_every=0", "data.workers=0",
    ],
    detector=[
        "model.trunk=resnet18", "model.width_mult=0.25", "model.fpn_channels=32", "model.representation_size=128",
        "model.min_size=256", "model.max_size=320", "model.anchor_sizes=[12, 24, 48, 96, 192]",
        "model.roi_batch_size=128", "model.proposals=[600, 300]", "ignore.min_height=25",
        "train.epochs=12", "train.batch_size=4", "train.optimizer=adamw", "train.lr=0.002", "train.warmup_steps=40",
        "train.eval_every=0", "augment.hflip=0.5", "augment.modality_dropout=0.3", "data.workers=1",
    ],
    fusion=["train.epochs=4", "train.lr=0.001", "train.warmup_steps=10", "model.fusion_init=thermal"],
    shifts="-16:16:8",
    shift_augment=8.0,
    shift_augment_prob=0.5,
    translate_frames=24,
)

QUICK = DemoSettings(
    n_train=16,
    n_test=12,
    width=160,
    height=128,
    translator=[
        "model.n_blocks=2", "model.n_flows=2", "model.hidden=16", "crop=[64, 80]",
        "train.epochs=1", "train.max_steps=8", "train.batch_size=2", "train.warmup_steps=0",
        "train.eval_every=0", "data.workers=0",
    ],
    detector=[
        "model.trunk=resnet18", "model.width_mult=0.25", "model.fpn_channels=32", "model.representation_size=64",
        "model.min_size=128", "model.max_size=160", "model.anchor_sizes=[8, 16, 32, 64, 128]",
        "model.roi_batch_size=32", "model.proposals=[100, 50]", "ignore.min_height=12.5",
        "train.epochs=1", "train.max_steps=6", "train.batch_size=2", "train.warmup_steps=0",
        "train.eval_every=0", "augment.modality_dropout=0.3", "data.workers=0",
    ],
    fusion=["model.fusion_init=thermal"],
    shifts="-16:16:16",
    shift_augment=8.0,
    shift_augment_prob=0.5,
    translate_frames=6,
    bootstrap=20,
)


def demo_setup(frame_height: int, root: str | os.PathLike[str] | None = None) -> Any:
    """The KAIST ``reasonable`` setup with heights scaled to the root's frames
    (:func:`~rgbt.evaluation.missrate.frame_setup`)."""
    from rgbt.evaluation.missrate import frame_setup

    return frame_setup("reasonable", frame_height, root)


def detector_overrides(settings: DemoSettings, key: str, base: list[str], run: Path) -> list[str]:
    """The config overrides of demo detector ``key`` of run folder ``run``: ``base`` (data paths,
    device), the shared recipe, the detector's modalities; a fusion detector starts from the
    checkpoints of the detectors it names (:attr:`DemoDetector.starts_from`, thermal last: its
    pyramid and heads) and fine-tunes with the fusion overrides."""
    detector = DETECTORS[key]
    own = []
    if detector.starts_from:
        starts = sorted(detector.starts_from, key=lambda k: k == "thermal")
        own.append(f"model.init_from=[{', '.join(str(run / 'detectors' / k / 'last.pt') for k in starts)}]")
        own += settings.fusion
    if detector.shift_augmented:
        own += [f"augment.shift_rgb={settings.shift_augment:g}",
                f"augment.shift_rgb_prob={settings.shift_augment_prob:g}"]
    own += detector.overrides
    return base + settings.detector + [f"data.modalities=[{', '.join(detector.modalities)}]",
                                       f"train.seed={settings.seed}"] + own


class Stages:
    """Runs named stages once: results and durations are kept in ``DIR/stages/<name>.json``.

    A stage's result must be JSON-serialisable; ``label`` prefixes the progress lines.
    """

    def __init__(self, out: Path, label: str = "demo") -> None:
        self.folder = out / "stages"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self.label = label

    def run(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        earlier = self.reused(name)
        if earlier is not None:
            return earlier
        print(f"[{self.label}] {name} ...", flush=True)
        started = time.perf_counter()
        result = work()
        return self.record(name, result, time.perf_counter() - started)

    def reused(self, name: str) -> dict[str, Any] | None:
        """The result of stage ``name`` if an earlier run finished it (and say so), else ``None``."""
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        self.timings[name] = record["seconds"]
        print(f"[{self.label}] {name}: done earlier ({record['seconds']:.0f} s), reused", flush=True)
        return record["result"]

    def record(self, name: str, result: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Keep a finished stage's result and duration (``seconds``)."""
        self.timings[name] = seconds
        atomic_write_text(self.folder / f"{name}.json", json.dumps({"seconds": seconds, "result": result},
                                                                   indent=2) + "\n")
        print(f"[{self.label}] {name}: {seconds:.0f} s", flush=True)
        return result


def _mr(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def run_demo(out: str | os.PathLike[str], quick: bool = False, data: str | None = None,
             device: str = "auto", seed: int | None = None, sweep: bool = True,
             detectors: tuple[str, ...] | None = None, parallel: int | None = None) -> dict[str, Any]:
    """Run every stage (reusing finished ones) and write the report; returns ``report.json``'s content.

    Args:
        out: the run folder.
        quick: the scaled-down settings (:data:`QUICK`) instead of :data:`FULL`.
        data: a KAIST or FLIR-aligned root to run on instead of the synthetic benchmark.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: the training seed of the translator and every detector (default: the settings'); the
            synthetic benchmark itself is always drawn with the settings' seed, so runs with other
            seeds differ only in training.
        sweep: run the misalignment sweep (``tools/bench_seeds.py`` leaves it out).
        detectors: keys of :data:`DETECTORS` to train and evaluate (default: all).
        parallel: detectors trained at once (:func:`train_demo_detectors`), and processes sharing the
            sweep's detectors; default: up to 2 for the full demo on the CPU, as the cores allow, else 1.
    """
    from rgbt.config import TranslatorConfig, load_config
    from rgbt.data.formats import detect_format
    from rgbt.data.source import open_source
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.engine.translation import translate_dataset
    from rgbt.engine.translation_eval import evaluate_translator
    from rgbt.engine.translator_training import train_translator

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = QUICK if quick else FULL
    if seed is not None:
        settings = replace(settings, seed=int(seed))
    keys = tuple(detectors or DETECTORS)
    unknown = [k for k in keys if k not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown demo detectors {unknown}; expected some of {', '.join(DETECTORS)}")
    keys = tuple(k for k in DETECTORS if k in keys)  # the ones a detector starts from come first
    for key in keys:
        missing = [k for k in DETECTORS[key].starts_from if k not in keys]
        if missing:
            raise ValueError(f"demo detector {key} starts from {', '.join(missing)}: include it")
    stages = Stages(out)
    started = time.perf_counter()

    # 1. data (drawn with the default seed whatever the training seed: one benchmark)
    if data is None:
        root = out / "data"
        data_seed = (QUICK if quick else FULL).seed
        stages.run("data", lambda: {"root": str(generate_synthetic(
            root, settings.n_train, settings.n_test, seed=data_seed, width=settings.width,
            height=settings.height, workers=min(2, os.cpu_count() or 1),
        ))})
        train_set, test_set = "train", "test"
    else:
        root = Path(data)
        kind = detect_format(root)
        if kind not in ("kaist", "flir-aligned"):
            raise ValueError(f"{root}: the demo runs on a KAIST or FLIR-aligned root, not {kind}")
        train_set, test_set = ("train-all-02", "test-all-20") if kind == "kaist" else ("train", "validation")
    test_source = open_source(root, test_set)
    setup = demo_setup(test_source[0].size[0], root)

    # 2. translator
    translator_dir = out / "translator"
    base_translator = [f"data.root={root}", f"data.train_set={train_set}", f"data.val_set={test_set}",
                       f"train.device={device}", f"train.seed={settings.seed}"]

    def _train_translator() -> dict[str, Any]:
        config = load_config(TranslatorConfig, None, base_translator + settings.translator)
        return train_translator(config, translator_dir, resume=True)

    needs_fake = "fake_rgb_thermal" in keys
    fake_root = out / "fake_rgb"
    translator_metrics: dict[str, Any] = {}
    if needs_fake:
        stages.run("translator", _train_translator)
        checkpoint = translator_dir / "last.pt"

        # 3. fake RGB for every frame of both splits, then content-preservation metrics
        def _translate() -> dict[str, Any]:
            counts = {}
            for split in (train_set, test_set):
                counts[split] = translate_dataset(checkpoint, root, fake_root, image_set=split, style="bank",
                                                  device=device)
            return {"root": str(fake_root), "frames": counts}

        stages.run("fake_rgb", _translate)
        translator_metrics = stages.run("translator_eval", lambda: evaluate_translator(
            checkpoint, root, image_set=test_set, max_frames=settings.translate_frames,
            figure=out / "figures" / "triplets.png", device=device,
        ))

    # 4. detectors
    base_detector = [f"data.root={root}", f"data.train_set={train_set}", f"data.val_set={test_set}",
                     f"train.device={device}"] + ([f"data.fake_rgb_root={fake_root}"] if needs_fake else [])
    train_demo_detectors(stages, keys, lambda key: (out / "detectors" / key,
                                                    detector_overrides(settings, key, base_detector, out)),
                         parallel=_parallel_trainings(parallel, quick, device))

    source = open_source(root, test_set, fake_rgb_root=fake_root if needs_fake else None)

    # 5. evaluation
    mr_table = stages.run("evaluate", lambda: score_detectors(out, keys, source, setup, settings.bootstrap, device,
                                                              figure=out / "figures" / "mr_fppi.png"))

    rfa_stats: dict[str, Any] = {}
    if "rgb_thermal_rfa" in keys:
        rfa_stats = stages.run("rfa_offsets", lambda: rfa_offsets(out, source, settings, device))

    # 6. misalignment sweep
    sweep_rows: list[dict[str, Any]] = []
    if sweep:
        sweep_keys = [k for k in SWEEP_DETECTORS if k in keys]
        sweep_rows = stages.run("misalign", lambda: {"rows": _sweep(
            out, sweep_keys, source, setup, settings, device, _parallel_trainings(parallel, quick, device),
            (root, test_set, fake_root if needs_fake else None))})["rows"]
    total = time.perf_counter() - started
    stages.timings["total"] = sum(v for k, v in stages.timings.items() if k != "total")

    report = {
        "detectors": mr_table,
        "misalignment": sweep_rows,
        "translator": translator_metrics,
        "rfa_offsets": rfa_stats,
        "timings": dict(stages.timings),
        "findings": demo_findings(mr_table, sweep_rows, settings.shifts) if sweep else [],
        "settings": {"quick": quick, "root": str(root), "setup_height": list(setup.height), "seed": settings.seed,
                     "test_frames": len(source), "bootstrap": settings.bootstrap,
                     "shift_augment": settings.shift_augment,
                     "shift_augment_prob": settings.shift_augment_prob, "wall_seconds_this_run": total},
    }
    paths = write_demo_report(out, report, settings_name="quick" if quick else "full")
    print(_summary(report, paths["md"]), flush=True)
    return report


def _train_demo_detector(run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    from rgbt.config import DetectorConfig, load_config
    from rgbt.engine.detector_training import train_detector

    return train_detector(load_config(DetectorConfig, None, overrides), run_dir, resume=True)


def _parallel_trainings(parallel: int | None, quick: bool, device: str) -> int:
    """How many demo detectors train at once: ``parallel`` when given; for the full demo on the CPU
    one per core, at most 2 (the two single-modality detectors side by side, then the fusion
    detectors two at a time); 1 for the quick demo and on a GPU."""
    if parallel is not None:
        if parallel < 1:
            raise ValueError(f"parallel trainings must be >= 1, got {parallel}")
        return parallel
    if quick or device not in ("auto", "cpu"):
        return 1
    if device == "auto":
        import torch

        if torch.cuda.is_available():
            return 1
    return max(1, min(2, os.cpu_count() or 1))


def train_demo_detectors(stages: Stages, keys: Sequence[str], job: Callable[[str], tuple[Path, list[str]]],
                         parallel: int = 1) -> None:
    """Train the demo detectors ``keys`` (stage ``detector_<key>`` each; ``job(key)`` gives its run
    folder and config overrides), each only once the detectors it starts from are trained.

    With ``parallel`` > 1, up to that many train at once, each in its own process with
    ``cpu_count // parallel`` threads: the demo's detectors are small enough that a training step
    is bound by per-operation overhead rather than arithmetic, so on 2 cores two one-thread
    trainings side by side take about the time of one two-thread training. Each process trains
    with a fixed thread count, so the weights do not depend on which trainings ran side by side.
    An interrupted run (Ctrl-C reaches every process) resumes each detector from its ``last.pt``.
    """
    if parallel <= 1:
        for key in keys:
            stages.run(f"detector_{key}", lambda key=key: _train_demo_detector(*job(key)))
        return
    from concurrent.futures import FIRST_COMPLETED, Future, wait

    done = {key for key in keys if stages.reused(f"detector_{key}") is not None}
    pending = [key for key in keys if key not in done]
    if not pending:
        return
    pool, threads = _worker_pool(parallel)
    running: dict[Future, tuple[str, float]] = {}
    with pool:
        while pending or running:
            ready = ready_trainings(pending, done)
            if not ready and not running:
                raise RuntimeError(f"demo detectors {pending} start from detectors that are not trained")
            for key in ready[: parallel - len(running)]:
                pending.remove(key)
                print(f"[{stages.label}] detector_{key} ... ({threads} thread{'s' * (threads > 1)}, up to "
                      f"{parallel} trainings at once)", flush=True)
                running[pool.submit(_train_demo_detector, *job(key))] = (key, time.perf_counter())
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key, started = running.pop(future)
                stages.record(f"detector_{key}", future.result(), time.perf_counter() - started)
                done.add(key)


def ready_trainings(pending: Sequence[str], done: set[str]) -> list[str]:
    """The demo detectors of ``pending`` whose starting points are all in ``done``, longest training
    first (:attr:`DemoDetector.cost`; ties in ``pending`` order): started in this order, the longest
    training does not wait for the short ones and end the stage alone."""
    ready = [key for key in pending if all(k in done for k in DETECTORS[key].starts_from)]
    return sorted(ready, key=lambda key: -DETECTORS[key].cost)


def _worker_pool(workers: int) -> tuple[Any, int]:
    """A spawn-context process pool of ``workers`` processes set up by :func:`_worker_process`, and
    the thread count each gets (``cpu_count // workers``, at least 1)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_process,
                               initargs=(threads, context.Value("i", 0)))
    return pool, threads


def _worker_process(threads: int, slots: Any) -> None:
    """Set up a process of :func:`train_demo_detectors` or of the sweep: its thread count, and its own line for the
    progress bar (tqdm reads ``TQDM_POSITION`` when it is first imported, which is after this)."""
    import torch

    torch.set_num_threads(threads)
    with slots.get_lock():
        os.environ["TQDM_POSITION"] = str(slots.value)
        slots.value += 1


def _load(out: Path, keys: Any, device: str) -> dict[str, Any]:
    from rgbt.engine.inference import load_detector

    return {key: load_detector(out / "detectors" / key / "last.pt", device=device, batch_size=8) for key in keys}


def score_detectors(out: Path, keys: Sequence[str], source: Any, setup: Any, replicates: int, device: str,
                    figure: Path | None = None) -> dict[str, dict[str, float | None]]:
    """MR all/day/night (percent) of the demo detectors of run folder ``out`` on ``source``, each with
    its bootstrap SD (``all_sd``, ``day_sd``, ``night_sd``; ``replicates`` resamples); ``figure``:
    also draw the MR-FPPI curves there."""
    from rgbt.engine.inference import detect_source
    from rgbt.evaluation.missrate import bootstrap_periods, evaluate_periods, with_frame_size
    from rgbt.evaluation.plots import plot_miss_rate

    detectors = _load(out, keys, device)
    records = with_frame_size([source.annotations(i) for i in range(len(source))], source[0].size)
    detections = detect_source(detectors, source, batch_size=8)
    results, curves = {}, {}
    for key in keys:
        periods = evaluate_periods(records, detections[key], setup)
        spread = bootstrap_periods(records, detections[key], setup, replicates=replicates)
        results[key] = {p: _mr(periods[p].mr * 100.0) if p in periods else None for p in ("all", "day", "night")}
        results[key].update({f"{p}_sd": _mr(spread.sd(p) * 100.0) for p in ("all", "day", "night")})
        curves[DETECTORS[key].label] = periods["all"]
    if figure is not None:
        figure.parent.mkdir(parents=True, exist_ok=True)
        plot_miss_rate(curves, figure, title=f"miss rate vs FPPI (test split, {len(source)} frames)")
    return results


def sweep_points(settings: DemoSettings) -> list[Any]:
    """The demo's sweep: RGB shifts along S0 and S90, then RGB blacked out (the fusion detector's
    dependence on RGB)."""
    from rgbt.evaluation.sweep import BLACKOUT_CASES, SweepPoint, build_sweep

    points = build_sweep(settings.patterns, settings.shifts, None, None, False, "rgb")
    return points + [SweepPoint(BLACKOUT_CASES["rgb off"][0], "blackout", 0.0, label="rgb off")]


def registration_range(settings: DemoSettings) -> float:
    """The registration's search range in the demo sweep (px): the sweep's largest shift plus the
    benchmark's own per-frame misalignment (:data:`~rgbt.data.synthetic.KAIST_MAX_SHIFT` at KAIST's
    width, scaled with the frames)."""
    from rgbt.data.synthetic import KAIST_MAX_SHIFT, KAIST_WIDTH

    largest = max(shift_magnitudes(settings.shifts), default=0.0)
    return float(largest + math.ceil(KAIST_MAX_SHIFT * settings.width / KAIST_WIDTH))


#: Relative cost of a detector's curves in the sweep (a detector that reads no RGB is measured once;
#: the registered curve registers every perturbed pair), for sharing the sweep between processes.
SWEEP_COSTS: dict[str, float] = {"thermal": 0.1, REGISTERED_DETECTOR: 2.5}


def sweep_groups(keys: Sequence[str], parallel: int) -> list[list[str]]:
    """``keys`` shared between up to ``parallel`` sweep processes: each detector (most costly first,
    :data:`SWEEP_COSTS`, 1 by default) goes to the group with the least cost so far; every group
    keeps ``keys`` order, and no group is empty."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(parallel, len(keys))))]
    load = [0.0] * len(groups)
    for key in sorted(keys, key=lambda k: -SWEEP_COSTS.get(k, 1.0)):
        least = load.index(min(load))
        groups[least].append(key)
        load[least] += SWEEP_COSTS.get(key, 1.0)
    return [[k for k in keys if k in group] for group in groups if group]


def _sweep(out: Path, keys: list[str], source: Any, setup: Any, settings: DemoSettings, device: str,
           parallel: int = 1, source_args: tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
    """The demo's misalignment sweep of detectors ``keys`` into ``out/misalign``; with ``parallel`` > 1
    (and ``source_args``, what :func:`rgbt.data.source.open_source` reopens ``source`` from) the
    detectors are shared between that many processes of ``cpu_count // parallel`` threads (each
    sweeping into ``out/misalign/part_<i>``, resumable there), and their rows are merged in the
    serial sweep's order."""
    groups = sweep_groups(keys, parallel) if source_args is not None else [list(keys)]
    if len(groups) == 1:
        return _sweep_part(out, keys, source, setup, settings, device, out / "misalign")
    from rgbt.evaluation.sweep import PLOT_NAME, plot_sweep, write_rows

    pool, _threads = _worker_pool(len(groups))
    with pool:
        parts = [pool.submit(_sweep_process, out, group, source_args, setup, settings, device,
                             out / "misalign" / f"part_{i}") for i, group in enumerate(groups)]
        rows = [row for part in parts for row in part.result()]
    order = [n for key in keys for n in (key, *([REGISTERED_NAME] if key == REGISTERED_DETECTOR else []))]
    rows.sort(key=lambda row: order.index(row["detector"]))
    write_rows(out / "misalign", rows)
    plot_sweep(rows, sweep_points(settings), out / "misalign" / PLOT_NAME)
    return rows


def _sweep_process(out: Path, keys: list[str], source_args: tuple[Any, ...], setup: Any, settings: DemoSettings,
                   device: str, folder: Path) -> list[dict[str, Any]]:
    from rgbt.data.source import open_source

    root, image_set, fake_root = source_args
    return _sweep_part(out, keys, open_source(root, image_set, fake_rgb_root=fake_root), setup, settings, device,
                       folder)


def _sweep_part(out: Path, keys: list[str], source: Any, setup: Any, settings: DemoSettings, device: str,
                folder: Path) -> list[dict[str, Any]]:
    from rgbt.engine.misalign import run_sweep

    registered = [REGISTERED_DETECTOR] if REGISTERED_DETECTOR in keys else []
    return [dict(row) for row in run_sweep(
        _load(out, keys, device), source, sweep_points(settings), folder, batch_size=8, setup=setup,
        align="shift" if registered else None, align_names=registered or None,
        align_max_shift=registration_range(settings))]


def rfa_offsets(out: Path, source: Any, settings: DemoSettings, device: str) -> dict[str, Any]:
    """The RFA detector's offset-prediction error (px, thermal frame) against the paired boxes of
    ``source``: ``{'aligned': stats, 'shift:<s>,0': stats}`` (:func:`rgbt.engine.offsets.offset_errors`;
    ``s`` the probe shift of :func:`probe_shift`)."""
    from rgbt.data.perturbation import Perturbation
    from rgbt.engine.offsets import offset_errors

    detector = _load(out, ["rgb_thermal_rfa"], device)["rgb_thermal_rfa"]
    probe = probe_shift(settings.shifts)
    result = {"aligned": offset_errors(detector, source)}
    if probe is not None:
        name = f"shift:{probe:g},0"
        result[name] = offset_errors(detector, source, [Perturbation.parse(name)])
    return result


def shift_magnitudes(shifts: str) -> list[float]:
    """The distinct nonzero shift sizes (px) of a sweep magnitude spec, ascending."""
    from rgbt.evaluation.sweep import parse_range

    return sorted({abs(v) for v in parse_range(shifts) if v != 0})


def probe_shift(shifts: str) -> float | None:
    """The shift the findings compare at: 8 px when the sweep has it, else its smallest nonzero one."""
    magnitudes = shift_magnitudes(shifts)
    return 8.0 if 8.0 in magnitudes else (magnitudes[0] if magnitudes else None)


def _summary(report: dict[str, Any], path: Path) -> str:
    width = max([len("detector")] + [len(DETECTORS[key].label) for key in report["detectors"]]) + 2
    lines = ["", "rgbt demo: MR^-2 (%) on the test split (+- bootstrap SD)",
             f"{'detector':<{width}}{'all':>16}{'day':>9}{'night':>9}"]
    for key, values in report["detectors"].items():
        lines.append(f"{DETECTORS[key].label:<{width}}"
                     f"{_fmt(values.get('all')) + ' +- ' + _fmt(values.get('all_sd')):>16}"
                     f"{_fmt(values.get('day')):>9}{_fmt(values.get('night')):>9}")
    for finding in report.get("findings", []):
        lines.append(f"[{'held' if finding['held'] else 'NOT held' if finding['held'] is False else 'n/a'}] "
                     f"{finding['text']}")
    lines.append(f"report: {path}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(rows: list[dict[str, Any]], detector: str, perturbation: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["detector"] == detector and r["perturbation"] == perturbation), None)


def _at_shift(rows: list[dict[str, Any]], detector: str, s: float) -> float | None:
    """Mean MR (all) of ``detector`` over the shift points with ``max(|dx|, |dy|) == s`` (every pattern)."""
    values = [r["all"] for r in rows if r["detector"] == detector and str(r["perturbation"]).startswith("shift")
              and max(abs(r["dx"]), abs(r["dy"])) == s and r["all"] is not None]
    return sum(values) / len(values) if values else None


def demo_findings(detectors: dict[str, dict[str, Any]], rows: list[dict[str, Any]],
                  shifts: str) -> list[dict[str, Any]]:
    """What the demo's numbers show, claim by claim: each finding is ``{'claim', 'held', 'text'}``
    with ``held`` True / False (``None`` when a number it needs is missing) and ``text`` a sentence
    stating the measured numbers. Nothing here is typed by hand: every number comes from
    ``detectors`` (the evaluate stage, MR %) and ``rows`` (the sweep)."""

    def mr(key: str, period: str = "all") -> float | None:
        return detectors.get(key, {}).get(period)

    def shown(key: str, period: str = "all") -> str:
        """The MR with its bootstrap SD when the row has one: ``12.94 +- 1.67``."""
        sd = detectors.get(key, {}).get(f"{period}_sd")
        return f"{mr(key, period):.2f}" + ("" if sd is None else f" +- {sd:.2f}")

    findings: list[dict[str, Any]] = []

    def add(claim: str, held: bool | None, text: str) -> None:
        findings.append({"claim": claim, "held": held, "text": text})

    th, rgb, rt = mr("thermal"), mr("rgb"), mr("rgb_thermal")
    if None not in (th, rgb, rt):
        bound = 0.8 * min(th, rgb)
        add("fusion_wins", rt <= bound, f"fusion wins: RGB + thermal {shown('rgb_thermal')} against thermal only "
            f"{shown('thermal')} and RGB only {shown('rgb')} (target <= 0.8 x the better one = {bound:.2f}).")
    th_d, rgb_d, th_n, rgb_n = mr("thermal", "day"), mr("rgb", "day"), mr("thermal", "night"), mr("rgb", "night")
    if None not in (th_d, rgb_d):
        ratio = rgb_d / th_d if th_d > 0 else math.inf
        add("day_both_informative", 1 / 1.5 <= ratio <= 1.5, f"by day RGB only {shown('rgb', 'day')} and thermal "
            f"only {shown('thermal', 'day')} (ratio {ratio:.2f}; target within 1.5x).")
    if None not in (th_n, rgb_n):
        ratio = rgb_n / th_n if th_n > 0 else math.inf
        add("night_rgb_weak", ratio >= 1.5, f"by night RGB only {shown('rgb', 'night')} against thermal "
            f"only {shown('thermal', 'night')} (ratio {ratio:.2f}; target >= 1.5).")
    aligned = _row(rows, "rgb_thermal", "shift:0,0:rgb")
    off = _row(rows, "rgb_thermal", "blackout:all:rgb")
    if aligned and off and None not in (aligned["all"], off["all"]):
        cost = off["all"] - aligned["all"]
        add("rgb_matters", cost >= 5.0, f"RGB blacked out costs RGB + thermal {cost:.2f} points ({aligned['all']:.2f} "
            f"-> {off['all']:.2f}; target >= 5).")
    magnitudes = shift_magnitudes(shifts)
    probe = probe_shift(shifts)
    at_probe = _at_shift(rows, "rgb_thermal", probe) if probe is not None else None
    if aligned and aligned["all"] is not None and at_probe is not None:
        add("misalignment_hurts", at_probe >= 1.5 * aligned["all"], f"misalignment hurts: RGB + thermal "
            f"{aligned['all']:.2f} aligned, {at_probe:.2f} at RGB shifts of {probe:g} px (mean of S0 and S90, both "
            f"signs; target >= 1.5x = {1.5 * aligned['all']:.2f}).")
    fake = mr("fake_rgb_thermal")
    if fake is not None and magnitudes:
        crossing = next((s for s in magnitudes if (_at_shift(rows, "rgb_thermal", s) or -math.inf) > fake), None)
        flat = f"fake RGB + thermal ({shown('fake_rgb_thermal')}, flat: it reads no real RGB)"
        if crossing is None:
            add("fake_rgb_crossover", False, f"{flat} does not beat RGB + thermal at any measured shift (up to "
                f"{magnitudes[-1]:g} px).")
        else:
            add("fake_rgb_crossover", True, f"{flat} beats RGB + thermal from RGB shifts of {crossing:g} px on "
                f"({_at_shift(rows, 'rgb_thermal', crossing):.2f}).")
    aug_aligned = _row(rows, "rgb_thermal_shiftaug", "shift:0,0:rgb")
    aug_probe = _at_shift(rows, "rgb_thermal_shiftaug", probe) if probe is not None else None
    if aligned and aug_aligned and None not in (aligned["all"], aug_aligned["all"], at_probe, aug_probe):
        plain_loss, aug_loss = at_probe - aligned["all"], aug_probe - aug_aligned["all"]
        add("shift_augmentation_helps", aug_loss < plain_loss, f"shift-augmented fusion loses {aug_loss:.2f} points "
            f"at {probe:g} px ({aug_aligned['all']:.2f} -> {aug_probe:.2f}), plain fusion {plain_loss:.2f} "
            f"({aligned['all']:.2f} -> {at_probe:.2f}).")
    reg_probe = _at_shift(rows, REGISTERED_NAME, probe) if probe is not None else None
    if aligned and None not in (aligned["all"], at_probe, reg_probe):
        bound = 1.2 * aligned["all"]
        add("registration_restores", reg_probe <= bound, f"registration restores fusion: RGB + thermal on "
            f"registered pairs {reg_probe:.2f} at {probe:g} px, against {at_probe:.2f} unregistered and "
            f"{aligned['all']:.2f} aligned (target <= 1.2x aligned = {bound:.2f}).")
    rfa = mr("rgb_thermal_rfa")
    if None not in (rfa, rt):
        bound = 0.1 * rt
        add("rfa_aligned", abs(rfa - rt) <= bound, f"region feature alignment costs nothing aligned: RGB + "
            f"thermal with RFA {shown('rgb_thermal_rfa')} against {shown('rgb_thermal')} without (target within "
            f"10 % = {bound:.2f} points).")
    rfa_aligned = _row(rows, "rgb_thermal_rfa", "shift:0,0:rgb")
    rfa_probe = _at_shift(rows, "rgb_thermal_rfa", probe) if probe is not None else None
    if rfa_aligned and None not in (rfa_aligned["all"], rfa_probe):
        bound = 1.2 * rfa_aligned["all"]
        plain = "" if at_probe is None or aligned is None else (
            f"; plain fusion {aligned['all']:.2f} -> {at_probe:.2f}")
        add("rfa_robust", rfa_probe <= bound, f"region feature alignment under misalignment: "
            f"{rfa_aligned['all']:.2f} aligned, {rfa_probe:.2f} at {probe:g} px (target <= 1.2x = {bound:.2f}"
            f"{plain}).")
    return findings


def write_demo_report(out: Path, report: dict[str, Any], settings_name: str) -> dict[str, Path]:
    """Compose the demo report (Markdown, self-contained HTML, JSON) from the stage results."""
    from rgbt.report import figure, heading, paragraph, table, write_report

    names = {**{key: detector.label for key, detector in DETECTORS.items()}, **CURVE_LABELS}
    detectors = report["detectors"]
    settings = report["settings"]
    blocks = [
        heading("rgbt demo report", 1),
        paragraph(
            f"Settings: {settings_name}; data: {settings['root']}; {settings.get('test_frames', '?')} test frames; "
            f"training seed {settings.get('seed', 0)}. Miss rates are KAIST MR^-2 (%), 'reasonable' setup with "
            f"heights scaled to the frames (positives of height >= {settings['setup_height'][0]:.1f} px), each "
            f"with the standard deviation of {settings.get('bootstrap', 0)} bootstrap resamples of the test frames. "
            "The detectors share one training recipe and differ only in their input modalities (and the "
            f"shift-augmented and RFA ones in random RGB shifts of up to {settings.get('shift_augment', 0):g} px "
            f"in {100 * settings.get('shift_augment_prob', 1.0):.0f} % of their training samples)."
        ),
        heading("Miss rate on the test split (aligned input as recorded)"),
        table(["detector", "all", "SD", "day", "SD", "night", "SD"],
              [[names.get(k, k), v.get("all"), v.get("all_sd"), v.get("day"), v.get("day_sd"), v.get("night"),
                v.get("night_sd")] for k, v in detectors.items()]),
        figure(out / "figures" / "mr_fppi.png", "Miss rate against false positives per image (log-log)."),
    ]
    findings = report.get("findings", [])
    if findings:
        blocks.append(heading("What the numbers show"))
        held = [f for f in findings if f["held"]]
        missed = [f for f in findings if f["held"] is False]
        blocks.append(paragraph(" ".join(f["text"] for f in held) if held else "None of the findings below held."))
        if missed:
            blocks.append(paragraph("Did not hold: " + " ".join(f["text"] for f in missed)))
    if report["misalignment"]:
        blocks += [
            heading("Misalignment: shifting the RGB stream"),
            paragraph("Detectors that read no real RGB (thermal only, fake RGB + thermal) cannot see an RGB "
                      "shift: their curves are flat by construction, and the sweep runs them once. The three "
                      "remedies side by side: the fake RGB (no real RGB at all), registration (the RGB + thermal "
                      "detector on pairs registered by `rgbt align`'s shift model and warped into the thermal "
                      "frame, curve 'registered'), and detectors trained for misalignment (random RGB shifts; "
                      "region feature alignment reads each region's RGB features at the frame's registered offset "
                      "plus a learned per-region correction and adds them to the thermal ones)."),
            figure(out / "misalign" / "misalignment.png",
                   "MR (all) against the RGB shift, per pattern; RGB blacked out."),
            table(["detector", "perturbation", "dx", "dy", "all", "day", "night"],
                  [[names.get(r["detector"], r["detector"]), r["perturbation"], r["dx"], r["dy"], r["all"], r["day"],
                    r["night"]] for r in report["misalignment"]]),
        ]
    offsets = report.get("rfa_offsets") or {}
    if offsets:
        blocks += [
            heading("Region feature alignment: predicted RGB offsets"),
            paragraph("Error (px, thermal frame) of the RFA detector's predicted RGB offset of every annotated "
                      "object against the paired boxes' offset; 'true median' is what predicting no offset "
                      "would be off by."),
            table(["input", "objects", "median", "p95", "within 1 px", "within 2 px", "true median"],
                  [[name, v.get("objects"), v.get("median"), v.get("p95"), v.get("within_1px"), v.get("within_2px"),
                    v.get("true_median")] for name, v in offsets.items()]),
        ]
    if report["translator"]:
        blocks += [
            heading("Translator: content preservation"),
            paragraph("Weight-free metrics of the flow translator on test frames: the round trip of the flow, "
                      "the 20-round re-stylisation test, structure kept from thermal (edge F1, gradient SSIM), and "
                      "similarity to the real RGB on day frames."),
            table(["metric", "value"], [[k, v] for k, v in report["translator"].items()]),
            figure(out / "figures" / "triplets.png", "Thermal / fake RGB / real RGB, day and night test frames."),
        ]
    blocks += [
        heading("Time per stage"),
        table(["stage", "seconds"], [[k, round(v, 1)] for k, v in report["timings"].items()]),
    ]
    return write_report(out, blocks, report, title="rgbt demo report")
