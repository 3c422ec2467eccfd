"""Do the demo's detectors agree across training seeds? MR^-2 of every demo detector, trained once per seed.

Runs the demo's data, translator and detector stages (``rgbt.demo.run_demo`` without the sweep)
once per ``--seeds`` value in ``--work/seed_<N>``: the synthetic benchmark is the same for every
seed (the demo's own), only the training seed of the translator and of every detector changes.
Prints, per detector, MR all / day / night as mean (min-max) over the seeds, the spread of MR all
(max - min) against the target (<= 3 points), and each seed's bootstrap SD. Resumable: finished
stages of every seed are reused (``--work`` keeps them).

    python tools/bench_seeds.py --seeds 0 1 2 --work runs/seeds --json seeds.json
    python tools/bench_seeds.py --quick --seeds 0 1 --work /tmp/seeds   # the quick demo's sizes

``--json`` writes ``{detector_key: {"all": [per seed], "day": [...], "night": [...],
"all_sd": [...]}, "seeds": [...]}``.
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
    parser.add_argument("--json", metavar="OUT", help="write the per-seed numbers as json")
    return parser


def collect(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[float | None]]]:
    """``{detector: {period: [per seed]}}`` from the demo reports (``all``, ``day``, ``night``, ``all_sd``)."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for report in reports:
        for key, values in report["detectors"].items():
            entry = out.setdefault(key, {p: [] for p in ("all", "day", "night", "all_sd")})
            for period in entry:
                entry[period].append(values.get(period))
    return out


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rgbt.demo import run_demo

    work = Path(args.work)
    reports = []
    for seed in args.seeds:
        print(f"[seeds] seed {seed}", flush=True)
        reports.append(run_demo(work / f"seed_{seed}", quick=args.quick, device=args.device, seed=seed,
                                sweep=False, detectors=tuple(args.detectors) if args.detectors else None))
    numbers = collect(reports)
    print(format_table(numbers, args.seeds))
    if args.json:
        from rgbt.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps({**numbers, "seeds": list(args.seeds)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
