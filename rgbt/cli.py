"""The ``rgbt`` command line: one entry point, thin subcommands over library functions.

Every subcommand is a pair of functions: ``_add_<name>(parser)`` declares its arguments and
``_run_<name>(args) -> int`` calls into the library. Library imports happen inside the run
functions so ``rgbt --help`` stays fast. :func:`main` takes ``argv`` so tests call it in-process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from rgbt import __version__

log = logging.getLogger("rgbt")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _add_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset root (KAIST layout, FLIR v1.3 / v2 / aligned, or a folder of pairs)")
    parser.add_argument("--image-set", help="a KAIST image-set name or path, or a FLIR split (default: everything)")
    parser.add_argument("--format", default="auto", help="dataset layout (default: detected)")
    parser.add_argument("--json", metavar="OUT", help="also write the full report (every error) as json")
    parser.add_argument("--decode", action="store_true", help="decode every image too (slow; finds corrupt files)")


def _run_inspect(args: argparse.Namespace) -> int:
    import json

    from rgbt.atomic import atomic_write_text
    from rgbt.data.inspect import format_report, inspect_root

    report = inspect_root(args.root, image_set=args.image_set, decode=args.decode, format=args.format)
    print(format_report(report, args.root))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 1 if report["errors"] else 0


def _add_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset root")
    parser.add_argument("frame", help="frame id: set06/V001/I00459 (KAIST) or a file stem such as FLIR_00002")
    parser.add_argument("--image-set", help="a KAIST image-set name or path, or a FLIR split (default: everything)")
    parser.add_argument("--format", default="auto", help="dataset layout (default: detected)")
    parser.add_argument("--fake-rgb", metavar="DIR", help="fake-RGB folder written by `rgbt translate` (third panel)")
    parser.add_argument("--out", metavar="PNG", help="output image (default: ./<frame>.png)")


def _run_show(args: argparse.Namespace) -> int:
    from rgbt.data.show import show_frame

    path = show_frame(args.root, args.frame, image_set=args.image_set, out=args.out, format=args.format,
                      fake_rgb_root=args.fake_rgb)
    print(path)
    return 0


# --------------------------------------------------------------------------------------------
# misalignment robustness
# --------------------------------------------------------------------------------------------


def _add_misalign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset root (KAIST layout, FLIR, or a folder of pairs)")
    parser.add_argument("--image-set", help="frames: a KAIST image-set name or path, or a FLIR split")
    parser.add_argument("--format", default="auto", help="dataset layout (default: detected)")
    parser.add_argument("--fake-rgb", metavar="DIR", help="fake-RGB folder written by `rgbt translate`")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", nargs="+", metavar="CKPT", help="detector checkpoints to evaluate")
    which.add_argument(
        "--reference", nargs="+", choices=("thermal", "rgb"),
        help="ground-truth reference detectors: thermal-frame boxes, or RGB-frame boxes moved with the RGB "
        "perturbation (needs KAIST-Paired annotations)",
    )
    parser.add_argument("--names", nargs="+", metavar="N", help="one name per detector (default: file stem / gt-MOD)")
    parser.add_argument(
        "--patterns", nargs="*", default=["S0", "S45", "S90", "S135"], metavar="P",
        help="shift patterns: S0 (s,0), S45 (s,s), S90 (0,s), S135 (s,-s); +dx right, +dy down (default: all)",
    )
    parser.add_argument(
        "--shifts", default="-10:10:2", metavar="SPEC",
        help="shift magnitudes s in px, START:STOP:STEP inclusive or a comma list; write --shifts=-10:10:2 "
        "(with '=') when SPEC starts with '-' (default: -10:10:2)",
    )
    parser.add_argument("--rotations", metavar="SPEC", help="rotation angles in degrees, e.g. --rotations=-4:4:1")
    parser.add_argument("--scales", metavar="SPEC", help="content scale factors, e.g. 0.9:1.1:0.05")
    parser.add_argument(
        "--blackout", action="store_true",
        help="add the blackout cases: RGB off, thermal off, RGB left + thermal right third cut, thermal border cut",
    )
    parser.add_argument(
        "--modality", default="rgb", choices=("rgb", "thermal", "fake_rgb"),
        help="modality moved by shifts, rotations and scales (thermal also moves fake_rgb) (default: rgb)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="frames per detector call (default: 8)")
    parser.add_argument("--setup", default="reasonable", help="miss-rate setup (default: reasonable)")
    parser.add_argument("--device", default="auto", help="device for checkpoints: auto, cpu, cuda, cuda:1")
    parser.add_argument("--workers", type=int, default=2, help="threads loading the next batches (default: 2)")
    parser.add_argument("--out", required=True, help="output folder; re-running resumes an interrupted sweep")


def _run_misalign(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rgbt.data.source import open_source
    from rgbt.engine.run import prepare_run_dir, resolve_device
    from rgbt.evaluation.misalignment import GroundTruthDetector, build_sweep, format_table, run_sweep

    points = build_sweep(args.patterns, args.shifts, args.rotations, args.scales, args.blackout, args.modality)
    specs = args.checkpoint or args.reference
    if args.names is not None and len(args.names) != len(specs):
        raise ValueError(f"--names gives {len(args.names)} names for {len(specs)} detectors")
    if args.names is not None:
        names = list(args.names)
    elif args.checkpoint:
        names = [Path(path).stem for path in args.checkpoint]
    else:
        names = [f"gt-{modality}" for modality in args.reference]
    if len(set(names)) != len(names):
        raise ValueError(f"detector names must be unique, got {names}; name them with --names")
    source = open_source(args.data, image_set=args.image_set, format=args.format, fake_rgb_root=args.fake_rgb)
    if args.checkpoint:
        try:
            from rgbt.engine.inference import load_detector
        except ImportError as err:
            raise ValueError(
                f"--checkpoint needs rgbt.engine.inference.load_detector, which is not available ({err}); "
                "use --reference for the ground-truth reference curves"
            ) from err
        device = resolve_device(args.device)
        for path in args.checkpoint:
            if not Path(path).is_file():
                raise FileNotFoundError(f"checkpoint not found: {path}")
        detectors = {name: load_detector(path, device) for name, path in zip(names, args.checkpoint)}
    else:
        detectors = {name: GroundTruthDetector(modality) for name, modality in zip(names, args.reference)}
    out = prepare_run_dir(args.out)
    log.info("misalignment sweep: %d points x %d detectors on %d frames of %s", len(points), len(detectors),
             len(source), args.data)
    rows = run_sweep(detectors, source, points, out, batch_size=args.batch_size, setup=args.setup,
                     workers=args.workers)
    print(format_table(rows))
    print(f"wrote {out / 'misalignment.csv'}, {out / 'misalignment.json'}, {out / 'misalignment.png'}")
    return 0


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def _add_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gt", required=True,
        help="ground truth: a KAIST root (annotations/ + imageSets/), a KAIST json (KAIST_annotation.json) "
        "or a COCO json (FLIR)",
    )
    parser.add_argument("--image-set", help="KAIST frame list: a name under ROOT/imageSets or a file "
                        "(default for a root: test-all-20; for a KAIST json: every image)")
    parser.add_argument(
        "--results", required=True, nargs="+", metavar="R",
        help="detections: aggregated txt (idx,x,y,w,h,score; idx 1-based), a COCO results json, or a folder "
        "of per-frame files (setXX_VYYY_IZZZZZ.txt or setXX/VYYY/IZZZZZ.txt: person x1 y1 x2 y2 score, 0-based)",
    )
    parser.add_argument("--setup", nargs="+", metavar="NAME",
                        help="miss-rate setups: reasonable near medium far none partial heavy (default: reasonable)")
    parser.add_argument("--metric", default="auto", choices=("auto", "missrate", "coco"),
                        help="auto: miss rate for KAIST ground truth, COCO AP for any other json (default: auto)")
    parser.add_argument("--classes", nargs="+", metavar="C",
                        help="COCO metric: category names to evaluate (default: every ground-truth category)")
    parser.add_argument("--json", metavar="OUT", help="write the results as a json list")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="miss rate: draw miss rate vs FPPI (first setup, all frames), one curve per result")


def _legend_names(paths: Sequence[str]) -> list[str]:
    from pathlib import Path

    for names in ([Path(p).stem for p in paths], [Path(p).name for p in paths]):
        if len(set(names)) == len(names):
            return names
    return list(paths)


def _run_evaluate(args: argparse.Namespace) -> int:
    import json

    from rgbt.atomic import atomic_write_text

    metric = args.metric
    if metric == "auto":
        from rgbt.evaluation.missrate import is_kaist_ground_truth

        metric = "missrate" if is_kaist_ground_truth(args.gt) else "coco"
    if metric == "coco":
        from rgbt.evaluation.coco import evaluate_coco, format_table

        if args.image_set or args.setup or args.plot:
            raise ValueError("--image-set, --setup and --plot apply to the miss-rate metric only")
        rows = [{"results": path, **evaluate_coco(args.gt, path, args.classes)} for path in args.results]
    else:
        from rgbt.evaluation.detections import read_detections
        from rgbt.evaluation.missrate import evaluate_periods, format_table, load_ground_truth, report_row

        if args.classes:
            raise ValueError("--classes applies to the coco metric only (the miss rate scores 'person')")
        gt = load_ground_truth(args.gt, args.image_set)
        setups = args.setup or ["reasonable"]
        rows, curves = [], {}
        for path, name in zip(args.results, _legend_names(args.results)):
            detections = read_detections(path, gt.frame_ids, gt.image_ids)
            for setup in setups:
                periods = evaluate_periods(gt.samples, detections, setup)
                rows.append(report_row(path, setup, periods))
                if setup == setups[0]:
                    curves[name] = periods["all"]
        if args.plot:
            from rgbt.evaluation.plots import plot_miss_rate

            plot_miss_rate(curves, args.plot, title=f"KAIST {setups[0]}, all ({len(gt.frame_ids)} frames)")
    print(format_table(rows))
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return 0


# --------------------------------------------------------------------------------------------
# registry and entry point
# --------------------------------------------------------------------------------------------

#: name -> (one-line help, argument declaration, runner)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "inspect": ("check a dataset root and summarise frames, labels, missing images and errors", _add_inspect,
                _run_inspect),
    "show": ("draw one frame pair with its boxes to a PNG", _add_show, _run_show),
    "misalign": ("miss rate of detectors under shifted/rotated/scaled/blacked-out modalities", _add_misalign,
                 _run_misalign),
    "evaluate": ("score detection results: KAIST log-average miss rate (all/day/night) or COCO AP", _add_evaluate,
                 _run_evaluate),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``rgbt`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rgbt",
        description="Multispectral (RGB + thermal) pedestrian detection: data, fusion detectors, "
        "exact KAIST miss rate, misalignment robustness and flow-based thermal-to-RGB translation.",
    )
    parser.add_argument("--version", action="version", version=f"rgbt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (help_text, add, _run) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rgbt``; returns the process exit code (0 success, 1 bad input, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.command:
        parser.print_help()
        return 2
    _help, _add, run = COMMANDS[args.command]
    try:
        return int(run(args) or 0)
    except (ValueError, FileNotFoundError, OSError) as err:
        # Bad input (malformed files, unknown config keys, missing paths) is reported, not traced.
        print(f"rgbt {args.command}: error: {err}", file=sys.stderr)
        if args.verbose:
            raise
        return 1
    except KeyboardInterrupt:
        print(f"rgbt {args.command}: interrupted; finished work is kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
