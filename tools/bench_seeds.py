"""Do the demo's detectors agree across training seeds? MR^-2 of every demo detector, trained once per seed.

Runs the demo's data, translator and detector stages (``rgbt.demo.run_demo`` without the sweep)
once per ``--seeds`` value in ``--work/seed_<N>``: the synthetic benchmark is the same for every
seed (the demo's own), only the training seed of the translator and of every detector changes.
Prints, per detector, MR all / day / night as mean (min-max) over the seeds, the spread of MR all
(max - min) against the target (<= 3 points), and each seed's bootstrap SD. Resumable: finished
stages of every seed are reused (``--work`` keeps them).

``--fresh-test-seeds S [S ...]`` also scores every trained detector on fresh test splits drawn with
those seeds (same size and generator; fake RGB written by each run's own translator), checks that
MR all lands within 2 bootstrap SDs of the demo test split's, and, with two or more fresh splits,
compares the split-to-split SD of MR all (how much the test split itself moves the number) with
the bootstrap SD (what the report claims it moves): if the bootstrap is honest the two agree and
the demo split's MR lies inside the fresh splits' range.

    python tools/bench_seeds.py --seeds 0 1 2 --work runs/seeds --json seeds.json --fresh-test-seeds 1
    python tools/bench_seeds.py --seeds 0 --work runs/seeds --fresh-test-seeds 1 2 3 4 5
    python tools/bench_seeds.py --quick --seeds 0 1 --work /tmp/seeds   # the quick demo's sizes

``--json`` writes ``{detector_key: {"all": [per seed], "day": [...], "night": [...],
"all_sd": [...]}, "seeds": [...]}`` and, with ``--fresh-test-seeds``, ``"fresh": {test_seed:
{detector_key: {"all": [per training seed], "day": [...], "night": [...], "all_sd": [...]}}}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The largest acceptable spread (max - min over seeds) of MR all, in points.
TARGET_SPREAD = 3.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    parser.add_argument("--work", required=True, help="folder for the runs (seed_<N> each; reused when re-run)")
    parser.add_argument("--quick", action="store_true", help="the quick demo's sizes (tests, smoke runs)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--detectors", nargs="+", metavar="KEY", help="demo detector keys (default: all)")
    parser.add_argument("--fresh-test-seeds", "--fresh-test-seed", type=int, nargs="+", metavar="S",
                        help="also score every detector on fresh test splits drawn with these seeds")
    parser.add_argument("--json", metavar="OUT", help="write the per-seed numbers as json")
    return parser


def collect(reports: Sequence[dict[str, Any]],
            keys: Sequence[str] | None = None) -> dict[str, dict[str, list[float | None]]]:
    """``{detector: {period: [per seed]}}`` from the demo reports (``all``, ``day``, ``night``, ``all_sd``),
    for ``keys`` (default: every detector of any report); a seed without a detector gives ``None``."""
    if keys is None:
        keys = list(dict.fromkeys(key for report in reports for key in report["detectors"]))
    periods = ("all", "day", "night", "all_sd")
    return {key: {p: [report["detectors"].get(key, {}).get(p) for report in reports] for p in periods}
            for key in keys}


def _cell(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    return f"{sum(known) / len(known):.2f} ({min(known):.2f}-{max(known):.2f})"


def format_table(numbers: dict[str, dict[str, list[float | None]]], seeds: Sequence[int]) -> str:
    """A markdown table: mean (min-max) per period, the spread of MR all and the seeds' bootstrap SDs."""
    lines = [f"MR^-2 (%) over training seeds {', '.join(str(s) for s in seeds)}: mean (min-max)", "",
             "| detector | all | day | night | spread of all | target | bootstrap SD of all |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for key, entry in numbers.items():
        known = [v for v in entry["all"] if v is not None]
        spread = max(known) - min(known) if len(known) == len(entry["all"]) and known else None
        verdict = "-" if spread is None else ("met" if spread <= TARGET_SPREAD else "NOT met")
        sds = ", ".join("-" if v is None else f"{v:.2f}" for v in entry["all_sd"])
        spread_text = "-" if spread is None else f"{spread:.2f}"
        lines.append(f"| {key} | {_cell(entry['all'])} | {_cell(entry['day'])} | {_cell(entry['night'])} | "
                     f"{spread_text} | <= {TARGET_SPREAD:g}: {verdict} | {sds} |")
    return "\n".join(lines)


def fresh_table(numbers: dict[str, dict[str, list[float | None]]],
                fresh: dict[str, dict[str, list[float | None]]], seeds: Sequence[int]) -> str:
    """Per detector and seed: MR all on the demo test split and on the fresh one, and whether the
    difference is within 2 bootstrap SDs (the larger of the two splits' SDs)."""
    lines = ["| detector | seed | demo test | fresh test | difference | within 2 SD |", "|---|---:|---:|---:|---:|---|"]
    for key, entry in fresh.items():
        for i, (new, new_sd) in enumerate(zip(entry["all"], entry["all_sd"])):
            old, old_sd = numbers[key]["all"][i], numbers[key]["all_sd"][i]
            if None in (old, new):
                lines.append(f"| {key} | {seeds[i]} | - | - | - | - |")
                continue
            sd = max(v for v in (old_sd, new_sd, 0.0) if v is not None)
            verdict = "yes" if abs(new - old) <= 2 * sd else "NO"
            lines.append(f"| {key} | {seeds[i]} | {old:.2f} | {new:.2f} | {new - old:+.2f} | "
                         f"{verdict} (2 SD = {2 * sd:.2f}) |")
    return "\n".join(lines)


def split_table(numbers: dict[str, dict[str, list[float | None]]],
                fresh: dict[int, dict[str, dict[str, list[float | None]]]], seeds: Sequence[int]) -> str:
    """Per detector and training seed: MR all on the demo test split against the fresh splits'
    mean (min-max), their SD across splits (sample SD) and the mean bootstrap SD of one split."""
    import statistics

    lines = ["| detector | seed | demo test | fresh tests mean (min-max) | SD across splits | bootstrap SD "
             "(mean) | demo test in the fresh range |", "|---|---:|---:|---:|---:|---:|---|"]
    for key, entry in numbers.items():
        for i, seed in enumerate(seeds):
            values = [split[key]["all"][i] for split in fresh.values() if split[key]["all"][i] is not None]
            sds = [v for v in [entry["all_sd"][i], *(split[key]["all_sd"][i] for split in fresh.values())]
                   if v is not None]
            old = entry["all"][i]
            if old is None or len(values) < 2:
                lines.append(f"| {key} | {seed} | - | - | - | - | - |")
                continue
            inside = "yes" if min(values) <= old <= max(values) else ("easier" if old < min(values) else "harder")
            lines.append(f"| {key} | {seed} | {old:.2f} | {_cell(values)} | {statistics.stdev(values):.2f} | "
                         f"{sum(sds) / len(sds):.2f} | {inside} |")
    return "\n".join(lines)


def score_on_fresh_split(run: Path, root: Path, keys: Sequence[str], quick: bool, device: str,
                         test_seed: int) -> dict[str, Any]:
    """Score the demo detectors of ``run`` on the synthetic ``root``'s test split (translating it
    into ``run/fresh_fake_rgb_<test_seed>`` with the run's translator first when a detector reads
    fake RGB)."""
    from rgbt.data.source import open_source
    from rgbt.demo import FULL, QUICK, demo_setup, score_detectors

    fake_root = None
    if "fake_rgb_thermal" in keys:
        from rgbt.engine.translation import translate_dataset

        fake_root = run / f"fresh_fake_rgb_{test_seed}"
        translate_dataset(run / "translator" / "last.pt", root, fake_root, image_set="test", style="bank",
                          device=device)
    source = open_source(root, "test", fake_rgb_root=fake_root)
    settings = QUICK if quick else FULL
    return score_detectors(run, keys, source, demo_setup(source[0].size[0], root), settings.bootstrap, device)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rgbt.demo import run_demo

    work = Path(args.work)
    reports = []
    for seed in args.seeds:
        print(f"[seeds] seed {seed}", flush=True)
        reports.append(run_demo(work / f"seed_{seed}", quick=args.quick, device=args.device, seed=seed,
                                sweep=False, detectors=tuple(args.detectors) if args.detectors else None))
    numbers = collect(reports, args.detectors)
    print(format_table(numbers, args.seeds))
    result: dict[str, Any] = {**numbers, "seeds": list(args.seeds)}
    if args.fresh_test_seeds:
        from rgbt.data.synthetic import generate_synthetic
        from rgbt.demo import FULL, QUICK

        settings = QUICK if args.quick else FULL
        keys = list(numbers)
        fresh: dict[int, dict[str, dict[str, list[float | None]]]] = {}
        for test_seed in dict.fromkeys(args.fresh_test_seeds):
            root = generate_synthetic(work / f"fresh_test_{test_seed}", 0, settings.n_test, seed=test_seed,
                                      width=settings.width, height=settings.height)
            scored = [score_on_fresh_split(work / f"seed_{seed}", root, keys, args.quick, args.device, test_seed)
                      for seed in args.seeds]
            fresh[test_seed] = {key: {p: [s[key][p] for s in scored] for p in ("all", "day", "night", "all_sd")}
                                for key in keys}
            print(f"\nfresh test split (seed {test_seed}, {settings.n_test} frames):")
            print(fresh_table(numbers, fresh[test_seed], args.seeds))
        if len(fresh) >= 2:
            print(f"\nthe demo test split against {len(fresh)} fresh splits (seeds "
                  f"{', '.join(str(s) for s in fresh)}), MR all:")
            print(split_table(numbers, fresh, args.seeds))
        result["fresh"] = {str(seed): split for seed, split in fresh.items()}
    if args.json:
        from rgbt.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
