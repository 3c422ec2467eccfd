"""Benchmark RGB-to-thermal registration (`rgbt align`): accuracy on known offsets, and speed.

Three measurements, each printed as a markdown table (``--json OUT`` also writes them):

1. **synthetic**: the synthetic benchmark's test split (``rgbt synth``, per-frame RGB offsets
   known from ``synthetic.json``), registered per frame; and a *rig* variant in which every video
   has one offset (what ``--pool sequence`` assumes: one camera rig per video), registered with
   ``--pool sequence``. Error of ``(dx, dy)``: median, p95, fraction within 0.5 / 1 / 2 px.
2. **real**: registered RGB-thermal pairs (``--pairs DIR``: ``visible/`` + ``lwir/`` or
   ``thermal/``; default the RoadScene fixtures in ``../shared/data/roadscene``), each moved by
   ``--moves`` known transforms: shifts uniform in +-16 px (the ``shift:DX,DY`` perturbation of
   ``rgbt misalign``) for the shift model; rotations +-3 degrees, scales +-5 % and shifts +-8 px for
   the affine model. A registered pair carries its own residual, so the error is given absolutely
   (against the known transform) and relative to the tool's own estimate on the unmoved pair
   (shift: ``|(d - d0) - t|``; affine: the mean corner distance of ``H`` and ``T H0``).
3. **speed**: 640x512 synthetic pairs through ``align_dataset`` (decode included) with
   ``--workers`` processes, shift model.

Every row is also run for the baseline, gradient-magnitude phase correlation (``cv2.phaseCorrelate``,
Hanning window) refined by ECC on the gradient images, with ``--baseline``.

    python tools/bench_align.py                       # everything, ~5 min on 2 cores
    python tools/bench_align.py --only real --pairs /data/my_pairs --moves 30 --json real.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "roadscene"
SECTIONS = ("synthetic", "real", "speed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--synthetic-frames", type=int, default=100, help="test frames of the synthetic root (100)")
    parser.add_argument("--width", type=int, default=320, help="synthetic frame width (default: 320)")
    parser.add_argument("--height", type=int, default=256, help="synthetic frame height (default: 256)")
    parser.add_argument("--rig-videos", type=int, default=10, help="videos of the rig variant (default: 10)")
    parser.add_argument("--rig-frames", type=int, default=10, help="frames per rig video (default: 10)")
    parser.add_argument("--pairs", default=str(DEFAULT_PAIRS),
                        help="folder of registered pairs: visible/ + lwir/ (or thermal/) (default: the RoadScene "
                        "fixtures)")
    parser.add_argument("--moves", type=int, default=20, help="known transforms per real pair (default: 20)")
    parser.add_argument("--speed-frames", type=int, default=40, help="640x512 pairs timed (default: 40)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the synthetic and speed runs (2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic roots and the moves (0)")
    parser.add_argument("--baseline", action="store_true", help="also run the phase correlation + ECC baseline")
    parser.add_argument("--json", metavar="OUT", help="write every measured number here")
    return parser


# --------------------------------------------------------------------------------------------
# the baseline
# --------------------------------------------------------------------------------------------


def baseline(rgb: np.ndarray, thermal: np.ndarray, model: str = "shift") -> np.ndarray | None:
    """Gradient phase correlation for the shift, then ECC on the gradient images (no masks, no search)."""
    import cv2

    from rgbt.align.features import gradient_magnitude, luminance

    def grad(image: np.ndarray) -> np.ndarray:
        magnitude = gradient_magnitude(luminance(image))
        return magnitude / (float(np.percentile(magnitude, 99)) + 1e-3)

    if rgb.shape[:2] != thermal.shape[:2]:
        return None
    st, sr = grad(thermal), grad(rgb)
    window = cv2.createHanningWindow(st.shape[::-1], cv2.CV_32F)
    (dx, dy), _response = cv2.phaseCorrelate(st, sr, window)
    warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    motion = cv2.MOTION_TRANSLATION if model == "shift" else cv2.MOTION_AFFINE
    try:
        _, warp = cv2.findTransformECC(st, sr, warp, motion, (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100,
                                                              1e-5), None, 5)
    except cv2.error:
        pass
    return np.vstack([warp.astype(np.float64), [0.0, 0.0, 1.0]])


def _rgbt(rgb: np.ndarray, thermal: np.ndarray, model: str = "shift") -> np.ndarray | None:
    from rgbt.align.estimate import estimate

    return estimate(rgb, thermal, model).H


METHODS: dict[str, Callable[..., np.ndarray | None]] = {"rgbt": _rgbt, "baseline": baseline}


# --------------------------------------------------------------------------------------------
# synthetic
# --------------------------------------------------------------------------------------------


def rig_root(out: Path, videos: int, frames: int, seed: int, width: int, height: int) -> Path:
    """A synthetic KAIST-layout root in which each video has one RGB offset (a fixed rig); its
    ``synthetic.json`` lists every frame's offset, as ``rgbt synth`` does."""
    from rgbt.data.kaist import parse_frame_id
    from rgbt.data.synthetic import (
        KAIST_MAX_SHIFT,
        KAIST_WIDTH,
        SyntheticParams,
        build_manifest,
        frame_shift,
        render_frame,
        write_frame,
    )

    max_shift = KAIST_MAX_SHIFT * width / KAIST_WIDTH
    entries = []
    for v in range(videos):
        set_id = 6 if v % 2 == 0 else 9  # day and night videos in turn
        video = f"set{set_id:02d}/V{v // 2:03d}"
        # One offset per video, drawn like a frame's offset of `rgbt synth`.
        shift = frame_shift(seed, f"{video}/I99999", max_shift)
        for f in range(frames):
            frame_id = f"{video}/I{f:05d}"
            write_frame(out, render_frame(seed, frame_id, width, height, max_shift, shift=shift))
            entries.append({"frame_id": frame_id, "split": "test", "period": parse_frame_id(frame_id).period,
                            "dx": shift[0], "dy": shift[1]})
    # The manifest of a test-only root of this size, with the rig's offsets in place of the drawn ones.
    manifest = build_manifest(SyntheticParams(0, len(entries), seed, width, height, max_shift))
    manifest.update(generator="tools/bench_align.py rig", frames=entries)
    (out / "synthetic.json").write_text(json.dumps(manifest))
    return out


def confident_misses(out: Path) -> dict[str, int]:
    """Per period (``all``, ``day``, ``night``): frames of ``out/alignment.json`` off by more than 1 px
    although they score at least the low-confidence threshold (what the score must prevent)."""
    from rgbt.engine.align import ALIGNMENT_JSON, LOW_CONFIDENCE

    counts = {"all": 0, "day": 0, "night": 0}
    for frame in json.loads((out / ALIGNMENT_JSON).read_text()):
        if frame["H"] is not None and frame["error"] > 1.0 and frame["score"] >= LOW_CONFIDENCE:
            counts["all"] += 1
            if frame["period"] in counts:
                counts[frame["period"]] += 1
    return counts


def run_synthetic(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.engine.align import align_dataset

    rows = []
    root = generate_synthetic(work / "synthetic", 0, args.synthetic_frames, seed=args.seed, width=args.width,
                              height=args.height, workers=args.workers, progress=False)
    summary = align_dataset(root, work / "out_frame", workers=args.workers, progress=False)
    confident = confident_misses(work / "out_frame")
    rows += [{"set": f"synthetic test split ({args.width}x{args.height})", "pool": "frame", "period": period,
              **stats, "confident_over_1px": confident[period]} for period, stats in summary["error"].items()]
    rig = rig_root(work / "rig", args.rig_videos, args.rig_frames, args.seed, args.width, args.height)
    summary = align_dataset(rig, work / "out_rig", pool="sequence", workers=args.workers, progress=False)
    confident = confident_misses(work / "out_rig")
    rows += [{"set": f"synthetic, one offset per video ({args.rig_videos}x{args.rig_frames} frames)",
              "pool": "sequence", "period": period, **stats, "confident_over_1px": confident[period]}
             for period, stats in summary["error"].items()]
    if args.baseline:
        from rgbt.align.transform import centre_shift
        from rgbt.data.imageio import read_image
        from rgbt.data.source import open_source
        from rgbt.engine.align import error_stats, load_truth

        truth = load_truth(root)
        source = open_source(root)
        errors: dict[str, list[float | None]] = {"all": [], "day": [], "night": []}
        for index, frame_id in enumerate(source.frame_ids):
            paths = source.image_paths(index)
            matrix = baseline(read_image(paths["rgb"], "rgb"), read_image(paths["thermal"], "gray"))
            dx, dy = centre_shift(matrix, (args.height, args.width))
            err = math.hypot(dx - truth[frame_id][0], dy - truth[frame_id][1])
            errors["all"].append(err)
            errors[source.period(index)].append(err)
        rows += [{"set": "synthetic test split: baseline", "pool": "frame", "period": period, **error_stats(values)}
                 for period, values in errors.items()]
    return rows


def format_synthetic(rows: list[dict[str, Any]]) -> str:
    lines = ["| set | pool | frames | median px | p95 px | <= 0.5 px | <= 1 px | <= 2 px | > 1 px, score >= 0.3 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        confident = r.get("confident_over_1px", "")
        lines.append(f"| {r['set']}, {r['period']} | {r['pool']} | {r['frames']} | {r['median']:.3f} | {r['p95']:.2f} "
                     f"| {r['within_0.5px']:.3f} | {r['within_1px']:.3f} | {r['within_2px']:.3f} | {confident} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# real pairs moved by known transforms
# --------------------------------------------------------------------------------------------


def load_pairs(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, rgb, thermal)`` of a folder with ``visible/`` and ``lwir/`` (or ``thermal/``)."""
    from rgbt.data.imageio import read_image
    from rgbt.data.pairs import list_images, thermal_folder

    visible, thermal = list_images(folder / "visible"), list_images(thermal_folder(folder))
    stems = sorted(set(visible) & set(thermal))
    if not stems:
        raise FileNotFoundError(f"{folder}: no pairs in visible/ and lwir/ (or thermal/)")
    return [(s, read_image(visible[s], "rgb"), read_image(thermal[s], "gray")) for s in stems]


def moves(kind: str, count: int, rng: np.random.Generator, size: tuple[int, int]) -> list[np.ndarray]:
    """Known forward transforms (perturbation convention: the matrix moving the RGB content)."""
    from rgbt.align.transform import rotation_scale, translation

    height, width = size
    out = []
    for _ in range(count):
        if kind == "shift":
            dx, dy = rng.uniform(-16, 16, 2)
            out.append(translation(dx, dy))
        else:
            angle, factor = rng.uniform(-3, 3), rng.uniform(0.95, 1.05)
            dx, dy = rng.uniform(-8, 8, 2)
            out.append(translation(dx, dy) @ rotation_scale(angle, factor, (width - 1) / 2, (height - 1) / 2))
    return out


def move_image(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``rgb`` moved by ``matrix`` with zero fill: a shift through ``rgbt misalign``'s operator, anything
    else bilinearly as its rotate / scale operators do."""
    import cv2

    from rgbt.data.perturbation import shift_image

    if np.allclose(matrix[:2, :2], np.eye(2)):
        return shift_image(rgb, float(matrix[0, 2]), float(matrix[1, 2]))
    height, width = rgb.shape[:2]
    return cv2.warpAffine(rgb, matrix[:2], (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def run_real(args: argparse.Namespace) -> dict[str, Any]:
    from rgbt.align.transform import centre_shift, corner_error

    pairs = load_pairs(Path(args.pairs))
    methods = ["rgbt", "baseline"] if args.baseline else ["rgbt"]
    result: dict[str, Any] = {"pairs": [s for s, _, _ in pairs], "rows": [], "residuals": []}
    for method in methods:
        estimate_fn = METHODS[method]
        for kind, model in (("shift", "shift"), ("affine", "affine")):
            rng = np.random.default_rng(args.seed)
            absolute, relative, seconds = [], [], 0.0
            for stem, rgb, thermal in pairs:
                base = estimate_fn(rgb, thermal, model)
                if method == "rgbt":
                    dx0, dy0 = centre_shift(base, thermal.shape) if base is not None else (math.nan, math.nan)
                    result["residuals"].append({"pair": stem, "model": model, "dx": round(dx0, 3),
                                                "dy": round(dy0, 3), "corner_px": None if base is None else
                                                round(corner_error(base, np.eye(3), thermal.shape), 3)})
                for truth in moves(kind, args.moves, rng, thermal.shape):
                    start = time.perf_counter()
                    found = estimate_fn(move_image(rgb, truth), thermal, model)
                    seconds += time.perf_counter() - start
                    if found is None or base is None:
                        absolute.append(math.inf)
                        relative.append(math.inf)
                    elif kind == "shift":
                        d, d0, t = (np.array(centre_shift(m, thermal.shape)) for m in (found, base, truth))
                        absolute.append(float(np.linalg.norm(d - t)))
                        relative.append(float(np.linalg.norm(d - d0 - t)))
                    else:
                        absolute.append(corner_error(found, truth, thermal.shape))
                        relative.append(corner_error(found, truth @ base, thermal.shape))
            a, r = np.array(absolute), np.array(relative)
            limits = (2.0, 0.5) if kind == "shift" else (2.5, 2.5)
            result["rows"].append({
                "method": method, "model": model, "moves": kind, "frames": len(a),
                "abs_limit": limits[0], "rel_limit": limits[1],
                "within_abs": round(float(np.mean(a <= limits[0])), 4),
                "within_rel": round(float(np.mean(r <= limits[1])), 4),
                "gross": round(float(np.mean(a > 5.0)), 4),
                "median_abs": round(float(np.median(a)), 3), "median_rel": round(float(np.median(r)), 3),
                "ms_per_pair": round(1000 * seconds / len(a), 1),
            })
    return result


def format_real(result: dict[str, Any]) -> str:
    lines = [f"pairs: {', '.join(result['pairs'])}", "",
             "| method | model, moves | frames | within abs limit | within rel limit | > 5 px | median abs | "
             "median rel | ms / pair |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        what = "shift error" if r["moves"] == "shift" else "mean corner error"
        lines.append(f"| {r['method']} | {r['model']}, {r['moves']} ({what}) | {r['frames']} | "
                     f"{r['within_abs']:.3f} (<= {r['abs_limit']:g} px) | {r['within_rel']:.3f} (<= {r['rel_limit']:g}"
                     f" px) | {r['gross']:.3f} | {r['median_abs']:.2f} | {r['median_rel']:.3f} | {r['ms_per_pair']} |")
    lines += ["", "unmoved pairs (the datasets' own residual as the tool measures it):", "",
              "| pair | model | dx | dy | mean corner px |", "|---|---|---:|---:|---:|"]
    for r in result["residuals"]:
        lines.append(f"| {r['pair']} | {r['model']} | {r['dx']} | {r['dy']} | {r['corner_px']} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------------


def run_speed(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Pairs per second of decode + registration (shift model) at 640x512 with 1 and ``--workers``
    processes, timed after every worker has finished a first pair (process start-up excluded, as
    it is paid once per run), best of 2 passes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from rgbt.data.source import open_source
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.engine.align import _init_worker, register_frame

    root = generate_synthetic(work / "speed", 0, args.speed_frames, seed=args.seed, width=640, height=512,
                              workers=args.workers, progress=False)
    source = open_source(root)
    tasks = [(source.image_paths(i)["rgb"], source.image_paths(i)["thermal"], "shift", None)
             for i in range(len(source))]
    rows = []
    for workers in sorted({1, args.workers}):
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            list(pool.map(register_frame, tasks[:workers]))
            best = math.inf
            for _ in range(2):
                start = time.perf_counter()
                results = list(pool.map(register_frame, tasks, chunksize=2))
                best = min(best, time.perf_counter() - start)
        ok = sum(r.status == "ok" for r in results)
        rows.append({"workers": workers, "pairs": len(tasks), "registered": ok, "seconds": round(best, 2),
                     "pairs_per_second": round(len(tasks) / best, 2)})
    return {"size": "640x512", "model": "shift", "rows": rows, "profile": profile_registration(tasks)}


def profile_registration(tasks: Sequence[tuple], top: int = 8) -> list[dict[str, Any]]:
    """Where one process's registration time goes: :func:`rgbt.engine.align.register_frame` over
    ``tasks`` under :mod:`cProfile` with one OpenCV thread, self time grouped by function.

    Registration is OpenCV and numpy, not torch, so it has no FLOP count to set against the peak;
    this says instead which calls the time is spent in. OpenCV functions (``cv2.*``; image decoding is
    ``cv2.imdecode`` / ``cv2.imread``) are listed one by one, the ``top`` largest first; the rest is
    ``numpy`` (its C functions and array methods), ``other OpenCV`` and ``Python`` (rgbt's own code,
    which cProfile's per-call overhead inflates somewhat).

    Returns:
        rows ``{'name', 'ms_per_pair', 'share'}``, the listed OpenCV functions first (largest first),
        then the groups, then ``total``.
    """
    import cProfile
    import pstats

    import cv2

    from rgbt.engine.align import register_frame

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    profiler = cProfile.Profile()
    try:
        register_frame(tasks[0])  # imports and first-call set-up out of the profile
        profiler.enable()
        for task in tasks:
            register_frame(task)
        profiler.disable()
    finally:
        cv2.setNumThreads(previous)
    by_name: dict[str, float] = {}
    for (file, _, name), (_, _, self_seconds, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        if file == "~" and re.fullmatch(r"<\w+>", name):  # OpenCV's functions profile as <name>
            key = "cv2." + name.strip("<>")
        elif file == "~" and ("numpy" in name or "ndarray" in name):
            key = "numpy"
        elif file == "~":
            key = "Python"  # interpreter built-ins called from rgbt's code
        else:
            key = "numpy" if "numpy" in Path(file).parts else "Python"
        by_name[key] = by_name.get(key, 0.0) + self_seconds
    total = sum(by_name.values())
    opencv = sorted((k for k in by_name if k.startswith("cv2.")), key=lambda k: -by_name[k])
    rest = {"numpy": by_name.get("numpy", 0.0), "other OpenCV": sum(by_name[k] for k in opencv[top:]),
            "Python": by_name.get("Python", 0.0)}
    rows = [(k, by_name[k]) for k in opencv[:top]] + [(k, v) for k, v in rest.items() if v > 0] + [("total", total)]
    count = max(len(tasks), 1)
    return [{"name": k, "ms_per_pair": 1000.0 * v / count, "share": v / total if total else 0.0} for k, v in rows]


def format_speed(result: dict[str, Any]) -> str:
    lines = ["| pairs | workers | seconds | pairs / s |", "|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['pairs']} ({result['size']}, {result['model']}) | {r['workers']} | {r['seconds']} | "
                     f"{r['pairs_per_second']} |")
    if result.get("profile"):
        lines += ["", "where one process's time goes (cProfile, one OpenCV thread; self time per function):", "",
                  "| function | ms / pair | share |", "|---|---:|---:|"]
        lines += [f"| {r['name']} | {r['ms_per_pair']:.1f} | {r['share']:.2f} |" for r in result["profile"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_align_") as tmp:
        work = Path(tmp)
        if "synthetic" in args.only:
            report["synthetic"] = run_synthetic(args, work)
            print("## synthetic (known offsets)\n\n" + format_synthetic(report["synthetic"]) + "\n", flush=True)
        if "real" in args.only:
            report["real"] = run_real(args)
            print("## real pairs moved by known transforms\n\n" + format_real(report["real"]) + "\n", flush=True)
        if "speed" in args.only:
            report["speed"] = run_speed(args, work)
            print("## speed\n\n" + format_speed(report["speed"]) + "\n", flush=True)
    if args.json:
        from rgbt.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
