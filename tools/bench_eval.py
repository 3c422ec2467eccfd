"""Time the KAIST miss-rate evaluation: parsing + all/day/night on the 2,252-frame test set.

Prints a markdown table: per result file, the best of ``--repeat`` runs of reading the detections,
of the all + day + night evaluation, and of both together (what one `rgbt evaluate` result costs
once the ground truth is loaded); plus the ground-truth load time for the bbGt folder and the json,
and the command as users run it: ``rgbt.cli.main(['evaluate', ...])`` in this process (argument
parsing, ground truth, results, evaluation and the printed table; imports already done) and
``python -m rgbt.cli evaluate ...`` as a whole new process (interpreter start and imports too),
both with the bbGt folder as ground truth and the first result file.

    python tools/bench_eval.py --kaist ../shared/data/kaist --repeat 10
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kaist", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "kaist"),
                        help="KAIST root with annotations/, imageSets/ and detections/ (default: ../shared/data/kaist)")
    parser.add_argument("--image-set", default="test-all-20", help="frame list (default: test-all-20)")
    parser.add_argument("--results", nargs="*", metavar="R",
                        help="result files (default: every file in KAIST/detections)")
    parser.add_argument("--setup", default="reasonable", help="miss-rate setup (default: reasonable)")
    parser.add_argument("--repeat", type=int, default=10, help="runs per measurement; the best is kept (default: 10)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (steadier on a shared machine) (default: wall)")
    return parser


def best_of(
    repeat: int, fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter
) -> tuple[float, object]:
    """Smallest time of ``repeat`` calls on ``clock``, and the last call's value."""
    best, value = float("inf"), None
    for _ in range(repeat):
        start = clock()
        value = fn()
        best = min(best, clock() - start)
    return best, value


def main(argv: Sequence[str] | None = None) -> int:
    from rgbt.evaluation.detections import read_detections
    from rgbt.evaluation.missrate import evaluate_periods, load_ground_truth

    args = build_parser().parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    root = Path(args.kaist)
    results = [Path(r) for r in args.results] if args.results else sorted((root / "detections").iterdir())
    gt_root_s, gt = best_of(args.repeat, lambda: load_ground_truth(root, args.image_set), clock)
    json_path = root / "KAIST_annotation.json"
    gt_json_s = best_of(args.repeat, lambda: load_ground_truth(json_path), clock)[0] if json_path.is_file() else None

    print(f"{len(gt.frame_ids)} frames, setup {args.setup}, best of {args.repeat} runs ({args.clock} clock)\n")
    print("| result | detections | read (ms) | evaluate all+day+night (ms) | total (ms) | MR all/day/night (%) |")
    print("|---|---:|---:|---:|---:|---|")
    for path in results:
        read_s, detections = best_of(args.repeat, lambda p=path: read_detections(p, gt.frame_ids, gt.image_ids), clock)
        eval_s, curves = best_of(args.repeat, lambda d=detections: evaluate_periods(gt.samples, d, args.setup), clock)
        total_s = best_of(args.repeat, lambda p=path: evaluate_periods(
            gt.samples, read_detections(p, gt.frame_ids, gt.image_ids), args.setup), clock)[0]
        mr = "/".join(f"{curves[k].mr * 100:.2f}" for k in ("all", "day", "night") if k in curves)
        n = sum(len(d) for d in detections)
        print(f"| {path.name} | {n} | {read_s * 1e3:.1f} | {eval_s * 1e3:.1f} | {total_s * 1e3:.1f} | {mr} |")
    print(f"\nground truth load: bbGt folder + list {gt_root_s * 1e3:.0f} ms", end="")
    print(f", KAIST_annotation.json {gt_json_s * 1e3:.0f} ms" if gt_json_s is not None else "")

    from rgbt.cli import main as rgbt_main

    command = ["evaluate", "--gt", str(root), "--image-set", args.image_set, "--results", str(results[0]),
               "--setup", args.setup]

    def in_process() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            rgbt_main(command)

    main_s = best_of(args.repeat, in_process, clock)[0]
    # A new process is timed on the wall clock whatever --clock says: its CPU time is not this process's.
    process_s = best_of(args.repeat, lambda: subprocess.run([sys.executable, "-m", "rgbt.cli", *command],
                                                            check=True, capture_output=True))[0]
    print(f"`rgbt evaluate` on {results[0].name}, bbGt folder: in-process rgbt.cli.main {main_s * 1e3:.0f} ms "
          f"({args.clock} clock), whole process {process_s * 1e3:.0f} ms (wall)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
