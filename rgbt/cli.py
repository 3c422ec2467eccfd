"""The ``rgbt`` command line: one entry point, thin subcommands over library functions.

Every subcommand is a pair of functions: ``_add_<name>(parser)`` declares its arguments and
``_run_<name>(args) -> int`` calls into the library. Library imports happen inside the run
functions so ``rgbt --help`` stays fast. :func:`main` takes ``argv`` so tests call it in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rgbt import __version__

log = logging.getLogger("rgbt")


# --------------------------------------------------------------------------------------------
# argument types: counts and sizes are checked when the command line is parsed
# --------------------------------------------------------------------------------------------


def _number_type(kind: type, minimum: float, inclusive: bool) -> Callable[[str], float]:
    """An argparse ``type=`` reading a finite ``kind`` above ``minimum`` (or equal to it when
    ``inclusive``); anything else is a usage error naming the option and the value."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun} {bound}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {noun} {bound}, got {text!r}")
        return value

    return parse


#: Frame counts, batch sizes, pixel sizes: 1 or more.
positive_int = _number_type(int, 1, True)
#: Worker counts, frame counts where 0 means "none" or "all", seeds: 0 or more.
non_negative_int = _number_type(int, 0, True)
#: Scale factors: finite and above 0.
positive_float = _number_type(float, 0, False)
#: Pixel distances: finite and 0 or more.
non_negative_float = _number_type(float, 0, True)


def device_name(text: str) -> str:
    """An argparse ``type=`` for ``--device``: a name :func:`rgbt.engine.run.resolve_device` accepts here."""
    from rgbt.engine.run import resolve_device

    try:
        resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _add_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset root (KAIST layout, FLIR v1.3 / v2 / aligned, or a folder of pairs)")
    parser.add_argument("--image-set", help="a KAIST image-set name or path, or a FLIR split (default: everything)")
    from rgbt.data.formats import FORMATS

    parser.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                        help="dataset layout (default: detected)")
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
    parser.add_argument("--aligned-rgb", metavar="DIR",
                        help="folder written by `rgbt align --write-aligned` (a panel of the registered RGB)")
    parser.add_argument("--out", metavar="PNG", help="output image (default: ./<frame>.png)")


def _run_show(args: argparse.Namespace) -> int:
    from rgbt.data.show import show_frame

    path = show_frame(args.root, args.frame, image_set=args.image_set, out=args.out, format=args.format,
                      fake_rgb_root=args.fake_rgb, aligned_rgb_root=args.aligned_rgb)
    print(path)
    return 0


def _add_synth(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output root (created; KAIST layout)")
    parser.add_argument("--train", type=non_negative_int, default=200, metavar="N",
                        help="training frames (default: 200)")
    parser.add_argument("--test", type=non_negative_int, default=100, metavar="M", help="test frames (default: 100)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="dataset seed (default: 0)")
    parser.add_argument("--width", type=positive_int, default=320,
                        help="frame width in pixels (default: 320, half KAIST)")
    parser.add_argument("--height", type=positive_int, default=256, help="frame height in pixels (default: 256)")
    parser.add_argument("--max-shift", type=non_negative_float, metavar="K",
                        help="largest RGB misalignment in pixels (default: 6 at 640 px width, scaled with --width)")
    parser.add_argument("--lwir-channels", type=int, choices=(1, 3), default=3,
                        help="thermal jpgs as 3 equal channels like KAIST (default) or 1-channel gray")
    parser.add_argument("--workers", type=non_negative_int, default=0,
                        help="worker processes (default: 0; never changes output)")
    parser.add_argument("--effect", action="append", default=[], metavar="NAME=VALUE",
                        help="set one effect's strength (repeatable), e.g. --effect crossover=0 --effect "
                        "warm_clutter=2; 'none' turns every effect off first. Effects and defaults: "
                        "datasets/synthetic/README.md")


def _run_synth(args: argparse.Namespace) -> int:
    from rgbt.data.synthetic import generate_synthetic
    from rgbt.data.synthetic_effects import parse_effects

    effects = parse_effects(args.effect)
    root = generate_synthetic(args.out, args.train, args.test, seed=args.seed, width=args.width, height=args.height,
                              max_shift=args.max_shift, workers=args.workers, lwir_channels=args.lwir_channels,
                              effects=effects)
    print(root)
    return 0


# --------------------------------------------------------------------------------------------
# detectors
# --------------------------------------------------------------------------------------------


def _add_checkpoint_and_frames(parser: argparse.ArgumentParser, what: str, default_frames: str,
                               data_required: bool = True) -> None:
    """``--checkpoint``, ``--data``, ``--image-set`` and ``--data-format``: a model run over a dataset."""
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help=f"{what} checkpoint (last.pt / best.pt)")
    parser.add_argument("--data", required=data_required, metavar="ROOT",
                        help="dataset root (KAIST layout, FLIR, pairs)")
    parser.add_argument("--image-set", metavar="LIST",
                        help=f"frames: a KAIST image-set name or path, or a FLIR split (default: {default_frames})")
    parser.add_argument("--data-format", default="auto", help="dataset layout (default: detected)")


def _add_training(parser: argparse.ArgumentParser, what: str) -> None:
    """Arguments shared by `train-detector` and `train-translator`."""
    parser.add_argument("--config", metavar="YAML",
                        help=f"{what} config (configs/{what}/*.yaml; default: the built-in defaults, or "
                        "RUN/config.yaml with --resume)")
    parser.add_argument("--data", metavar="ROOT", help="dataset root (overrides data.root)")
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="dotted config override, value read as YAML: --set train.lr=0.01 train.epochs=2")
    parser.add_argument("--out", required=True, metavar="RUN", help="run directory (checkpoints, logs, result.json)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/last.pt (new run when absent)")


def _run_training(args: argparse.Namespace, config_cls: type, train: Callable[..., dict]) -> int:
    """Resolve the config and train.

    The config is the file given, else on ``--resume`` the one inside ``RUN/last.pt`` (the truth of
    an interrupted run; ``RUN/config.yaml`` when the run stopped before its first checkpoint), else
    the dataclass defaults; then ``--set`` and ``--data``. A resumed run refuses other settings.
    """
    import json
    from pathlib import Path

    from rgbt.config import apply_overrides, load_config
    from rgbt.engine import distributed
    from rgbt.engine.run import checkpoint_config

    config_path = args.config
    saved = Path(args.out) / "config.yaml"
    resumed = checkpoint_config(config_cls, Path(args.out) / "last.pt") if args.resume and not config_path else None
    if resumed is not None:
        config = apply_overrides(resumed, args.overrides)
    else:
        if config_path is None and args.resume and saved.is_file():
            config_path = saved
        # Without a file the dataclass defaults apply (plus --set and --data).
        config = load_config(config_cls, config_path, args.overrides)
    if args.data:
        config.data.root = args.data
    try:
        result = train(config, args.out, resume=args.resume)
    finally:
        distributed.shutdown()
    if distributed.is_main_process():
        print(json.dumps(result, indent=1))
    return 0


def _add_train_detector(parser: argparse.ArgumentParser) -> None:
    _add_training(parser, "detector")


def _run_train_detector(args: argparse.Namespace) -> int:
    from rgbt.config import DetectorConfig
    from rgbt.engine.detector_training import train_detector

    return _run_training(args, DetectorConfig, train_detector)


def _add_video_pair(parser: argparse.ArgumentParser, title: str, rgb_help: str) -> Any:
    """``--rgb-video``, ``--thermal-video`` and ``--video-offset`` (the pairing rule of
    :mod:`rgbt.data.video`) in an argument group titled ``title``; returns the group."""
    videos = parser.add_argument_group(title)
    videos.add_argument("--rgb-video", metavar="VIDEO", help=rgb_help)
    videos.add_argument("--thermal-video", metavar="VIDEO", help="thermal video, the reference stream and clock")
    videos.add_argument("--video-offset", type=float, default=0.0, metavar="S",
                        help="seconds added to a thermal frame's time to find its RGB frame (default: 0)")
    return videos


def _check_video_pair(args: argparse.Namespace) -> None:
    """Refuse one video without the other (``--rgb-video`` / ``--thermal-video``)."""
    if not (args.rgb_video and args.thermal_video):
        raise ValueError("videos come in pairs: give both --rgb-video and --thermal-video")


def _add_detect(parser: argparse.ArgumentParser) -> None:
    _add_checkpoint_and_frames(parser, "detector", "the checkpoint's data.val_set", data_required=False)
    videos = _add_video_pair(parser, "a pair of videos instead of --data (--out is then a folder)",
                             "RGB video (e.g. FLIR v2 video_rgb_test as mp4)")
    videos.add_argument("--no-video", action="store_true", help="skip the annotated side-by-side OUT/annotated.mp4")
    videos.add_argument("--draw-threshold", type=float, default=0.5, metavar="T",
                        help="score from which detections are drawn in annotated.mp4 (default: 0.5)")
    parser.add_argument("--fake-rgb", metavar="DIR",
                        help="fake-RGB folder for fake_rgb models (default: the checkpoint's data.fake_rgb_root)")
    parser.add_argument("--aligned-rgb", metavar="DIR",
                        help="`rgbt align --write-aligned` folder for aligned_rgb models (default: the checkpoint's "
                        "data.aligned_rgb_root)")
    parser.add_argument("--out", required=True, metavar="RESULTS", help="results file (.txt KAIST or .json COCO)")
    parser.add_argument("--format", choices=("kaist", "coco"),
                        help="kaist: aggregated txt idx,x,y,w,h,score (idx 1-based over the list, person only); "
                        "coco: results json (image_id = 0-based list position, category_id = 1-based class "
                        "index, every class) (default: by the --out suffix)")
    parser.add_argument("--perturb", nargs="+", default=[], metavar="P",
                        help="perturb the inputs first, in order: shift:DX,DY[:MOD] rotate:DEG[:MOD] "
                        "scale:F[:MOD] blackout:all|left|right|border[:MOD] (MOD default rgb; +dx right, +dy down)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="frames per forward pass (default: 8)")
    parser.add_argument("--device", default="auto", type=device_name, help="auto, cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--workers", type=non_negative_int, default=2, help="processes decoding frames (default: 2)")


def _run_detect(args: argparse.Namespace) -> int:
    from rgbt.data.perturbation import Perturbation
    from rgbt.engine.inference import write_detections

    if args.rgb_video or args.thermal_video:
        return _run_detect_video(args)
    if not args.data:
        raise ValueError("give --data ROOT, or --rgb-video and --thermal-video")

    perturbations = [Perturbation.parse(text) for text in args.perturb]
    summary = write_detections(args.checkpoint, args.data, args.out, output_format=args.format,
                               image_set=args.image_set, data_format=args.data_format, fake_rgb=args.fake_rgb,
                               perturbations=perturbations, batch_size=args.batch_size, workers=args.workers,
                               device=args.device, aligned_rgb=args.aligned_rgb)
    print(f"wrote {summary['detections']} detections on {summary['frames']} frames to {args.out} "
          f"({summary['format']})")
    return 0


def _run_detect_video(args: argparse.Namespace) -> int:
    import json

    from rgbt.engine.video import detect_video

    _check_video_pair(args)
    if args.data or args.perturb or args.image_set:
        raise ValueError("--data, --image-set and --perturb do not apply to videos")
    summary = detect_video(args.checkpoint, args.rgb_video, args.thermal_video, args.out, offset=args.video_offset,
                           video=not args.no_video, draw_threshold=args.draw_threshold, batch_size=args.batch_size,
                           workers=args.workers, device=args.device)
    print(json.dumps(summary, indent=1))
    return 0


# --------------------------------------------------------------------------------------------
# thermal-to-RGB translator
# --------------------------------------------------------------------------------------------


def _add_train_translator(parser: argparse.ArgumentParser) -> None:
    _add_training(parser, "translator")


def _run_train_translator(args: argparse.Namespace) -> int:
    from rgbt.config import TranslatorConfig
    from rgbt.engine.translator_training import train_translator

    return _run_training(args, TranslatorConfig, train_translator)


def _add_translate(parser: argparse.ArgumentParser) -> None:
    _add_checkpoint_and_frames(parser, "translator", "every frame", data_required=False)
    videos = parser.add_argument_group("a thermal video instead of --data (--out is then a folder)")
    videos.add_argument("--thermal-video", metavar="VIDEO",
                        help="translate every frame into OUT/fake_rgb.mp4 (thermal fps and size) + OUT/frames.json")
    # Refused with an explanation (the fake RGB is computed from thermal alone), not an unknown option.
    videos.add_argument("--rgb-video", help=argparse.SUPPRESS)
    parser.add_argument("--out", required=True, metavar="OUT",
                        help="fake-RGB root: KAIST OUT/images/setXX/VYYY/fake_visible/, else OUT/fake_visible/; "
                        "re-running skips finished files (OUT/manifest.json)")
    parser.add_argument("--style", nargs="+", default=["bank"], metavar="bank|paired|IMAGE",
                        help="bank: learned day/night statistics by the frame's period; paired: the frame's own RGB; "
                        "or a style image path; several image paths are interpolated (model: adain) "
                        "(default: bank)")
    parser.add_argument("--style-weights", nargs="+", type=non_negative_float, metavar="W",
                        help="one weight per --style image for the interpolation (default: equal)")
    parser.add_argument("--style-seed", type=non_negative_int, metavar="N",
                        help="model: munit: draw the style code with this seed (one fake-RGB variant per seed; "
                        "default: the checkpoint's code)")
    parser.add_argument("--alpha", type=float, help="style strength in [0, 1] (default: the checkpoint's model.alpha)")
    parser.add_argument("--method", choices=("adain", "wct"),
                        help="latent transfer (default: the checkpoint's model.transfer)")
    parser.add_argument("--format", choices=("auto", "jpg", "png"), default="auto",
                        help="image format: jpg (quality 95) or png (lossless); auto: png for the flow (whose "
                        "inverse needs lossless storage), jpg for the other methods (default: auto)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="frames per forward pass (default: 4)")
    parser.add_argument("--workers", type=non_negative_int, default=2, help="processes decoding frames (default: 2)")
    parser.add_argument("--device", default="auto", type=device_name, help="auto, cpu, cuda, cuda:1 (default: auto)")


def _run_translate(args: argparse.Namespace) -> int:
    from rgbt.engine import distributed
    from rgbt.engine.translation import translate_dataset

    if args.thermal_video or args.rgb_video:
        return _run_translate_video(args)
    if not args.data:
        raise ValueError("give --data ROOT, or --thermal-video")
    try:
        summary = translate_dataset(
            args.checkpoint, args.data, args.out, image_set=args.image_set, data_format=args.data_format,
            style=args.style, alpha=args.alpha, method=args.method, image_format=args.format,
            batch_size=args.batch_size, workers=args.workers, device=args.device,
            style_weights=args.style_weights, style_seed=args.style_seed,
        )
    finally:
        distributed.shutdown()
    print(f"rank {summary['rank']}/{summary['world_size']}: wrote {summary['written']} images, skipped "
          f"{summary['skipped']} finished ones, of {summary['frames']} frames in {summary['seconds']:.1f} s "
          f"({summary['frames_per_second']:.2f} frames/s); manifest {summary['manifest']}")
    return 0


def _run_translate_video(args: argparse.Namespace) -> int:
    import json

    from rgbt.engine.video_translation import translate_video

    if args.rgb_video:
        raise ValueError("rgbt translate reads only the thermal video (the fake RGB is computed from thermal alone): "
                         "drop --rgb-video; for a camera's look give --style with one of its frames")
    if not args.thermal_video:
        raise ValueError("give --thermal-video VIDEO")
    if args.data or args.image_set:
        raise ValueError("--data and --image-set do not apply to a video: give either --data ROOT or --thermal-video")
    if args.format != "auto" or args.data_format != "auto":
        raise ValueError("--format and --data-format are for dataset roots; a video's fake RGB is written as mp4")
    summary = translate_video(args.checkpoint, args.thermal_video, args.out, style=args.style, alpha=args.alpha,
                              method=args.method, batch_size=args.batch_size, device=args.device,
                              style_weights=args.style_weights, style_seed=args.style_seed)
    print(json.dumps(summary, indent=1))
    return 0


def _add_translate_eval(parser: argparse.ArgumentParser) -> None:
    _add_checkpoint_and_frames(parser, "translator", "every frame")
    parser.add_argument("--max-frames", type=non_negative_int, default=50, metavar="N",
                        help="frames evaluated, spread evenly over the list; 0: all (default: 50)")
    parser.add_argument("--style", choices=("bank", "paired"), default="bank",
                        help="style of the fake RGB that is scored (default: bank, as `rgbt translate` writes)")
    parser.add_argument("--json", required=True, metavar="OUT", help="write the metrics here")
    parser.add_argument("--figure", metavar="PNG", help="also draw thermal / fake RGB / real RGB triplets (day, night)")
    parser.add_argument("--fake-rgb", metavar="DIR",
                        help="the folder `rgbt translate` wrote for these frames: score its files (the 8-bit round "
                        "trip, contrast, structure; default: translate here, store in a temporary folder)")
    parser.add_argument("--format", choices=("auto", "jpg", "png"), default="auto",
                        help="without --fake-rgb, the 8-bit storage measured: as `rgbt translate --format` "
                        "(default: auto, png for the flow)")
    parser.add_argument("--device", default="auto", type=device_name, help="auto, cpu, cuda, cuda:1 (default: auto)")


def _run_translate_eval(args: argparse.Namespace) -> int:
    import json

    from rgbt.atomic import atomic_write_text
    from rgbt.engine.translation_eval import evaluate_translator

    report = evaluate_translator(args.checkpoint, args.data, image_set=args.image_set, max_frames=args.max_frames,
                                 figure=args.figure, device=args.device, style=args.style,
                                 data_format=args.data_format, fake_rgb_root=args.fake_rgb,
                                 image_format=args.format)
    text = json.dumps(report, indent=1, allow_nan=False)
    atomic_write_text(args.json, text + "\n")
    print(text)
    return 0


def _add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="a detector or flow-translator checkpoint (last.pt / best.pt)")
    parser.add_argument("--format", default="onnx", choices=("onnx",), help="export format (default: onnx)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="model.onnx (a translator writes FILE_forward.onnx, FILE_inverse.onnx, FILE_styles.json)")
    parser.add_argument("--height", type=positive_int, default=512,
                        help="frame height of the traced example (translators: the fixed input height; default 512)")
    parser.add_argument("--width", type=positive_int, default=640,
                        help="frame width of the traced example (translators: the fixed input width; default 640)")
    parser.add_argument("--opset", type=positive_int, default=17, help="ONNX operator set (default: 17)")


def _run_export(args: argparse.Namespace) -> int:
    import json

    from rgbt.engine.export import export_checkpoint

    print(json.dumps(export_checkpoint(args.checkpoint, args.out, height=args.height, width=args.width,
                                       opset=args.opset), indent=1))
    return 0


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------


def _add_align(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?",
                        help="dataset root (KAIST layout, FLIR v1.3 / v2 / aligned, or a folder of pairs)")
    _add_video_pair(parser, "a pair of videos instead of ROOT", "RGB video, to register to the thermal one")
    parser.add_argument("--image-set", help="a KAIST image-set name or path, or a FLIR split (default: everything)")
    parser.add_argument("--format", default="auto",
                        choices=("auto", "kaist", "flir-v1", "flir-v2", "flir-aligned", "pairs"),
                        help="dataset layout (default: detected)")
    parser.add_argument("--model", default="shift", choices=("shift", "similarity", "affine", "homography"),
                        help="transform between the cameras (default: shift; FLIR v1.3 raw RGB needs similarity or "
                        "more)")
    parser.add_argument("--pool", default="frame", choices=("frame", "sequence"),
                        help="frame: one estimate per frame; sequence: one robust estimate per video, reporting the "
                        "frames that disagree (default: frame)")
    parser.add_argument("--out", default="alignment", metavar="DIR",
                        help="output folder: alignment.json, alignment.csv, aligned_visible/ (videos: aligned_rgb.mp4) "
                        "(default: ./alignment)")
    parser.add_argument("--write-aligned", action="store_true",
                        help="also write the RGB frames warped into the thermal frame (resumable, checksummed; "
                        "videos: one mp4 at the thermal size and fps)")
    parser.add_argument("--max-shift", type=positive_float, metavar="PX",
                        help="search range in thermal pixels (default: 5%% of the frame, 10%% for RGB of another size; "
                        "at most a quarter of the frame's smaller side)")
    parser.add_argument("--image-format", default="jpg", choices=("jpg", "png"),
                        help="format of the aligned images (default: jpg, quality 95)")
    parser.add_argument("--workers", type=int, default=2, help="processes registering frames (default: 2)")


def _run_align(args: argparse.Namespace) -> int:
    from rgbt.engine.align import ERROR_JSON, align_dataset, format_summary

    if args.rgb_video or args.thermal_video:
        return _run_align_video(args)
    if not args.root:
        raise ValueError("give a dataset ROOT, or --rgb-video and --thermal-video")
    summary = align_dataset(args.root, args.out, image_set=args.image_set, data_format=args.format,
                            model=args.model, pool=args.pool, write_aligned=args.write_aligned, workers=args.workers,
                            max_shift=args.max_shift, image_format=args.image_format)
    print(format_summary(summary))
    written = [summary["alignment_json"], summary["alignment_csv"]]
    if summary["error"]:
        written.append(f"{args.out}/{ERROR_JSON}")
    print("wrote " + ", ".join(written))
    return 0


def _run_align_video(args: argparse.Namespace) -> int:
    from rgbt.engine.align import format_summary
    from rgbt.engine.video_align import align_video

    _check_video_pair(args)
    if args.root or args.image_set or args.format != "auto":
        raise ValueError("a dataset ROOT, --image-set and --format do not apply to videos: give either ROOT or "
                         "--rgb-video and --thermal-video")
    summary = align_video(args.rgb_video, args.thermal_video, args.out, offset=args.video_offset, model=args.model,
                          pool=args.pool, write_aligned=args.write_aligned, workers=args.workers,
                          max_shift=args.max_shift)
    print(format_summary(summary))
    written = [summary["alignment_json"], summary["alignment_csv"]]
    if summary["aligned_video"]:
        written.append(summary["aligned_video"])
    print("wrote " + ", ".join(written))
    return 0


# --------------------------------------------------------------------------------------------
# misalignment robustness
# --------------------------------------------------------------------------------------------


def _add_misalign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset root (KAIST layout, FLIR, or a folder of pairs)")
    parser.add_argument("--image-set", help="frames: a KAIST image-set name or path, or a FLIR split")
    parser.add_argument("--format", default="auto", help="dataset layout (default: detected)")
    parser.add_argument("--fake-rgb", metavar="DIR", help="fake-RGB folder written by `rgbt translate`")
    parser.add_argument("--aligned-rgb", metavar="DIR", help="folder written by `rgbt align --write-aligned`")
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
        "--modality", default="rgb", choices=("rgb", "thermal", "fake_rgb", "aligned_rgb"),
        help="modality moved by shifts, rotations and scales (thermal also moves fake_rgb) (default: rgb)",
    )
    parser.add_argument("--align", action="store_true",
                        help="also measure every detector on registered pairs: each perturbed RGB image is "
                        "registered to thermal (`rgbt align`) and warped into the thermal frame first; rows "
                        "named <detector>_registered")
    parser.add_argument("--align-model", default="shift", choices=("shift", "similarity", "affine", "homography"),
                        help="registration model of --align (default: shift)")
    parser.add_argument("--align-max-shift", type=positive_float, metavar="PX",
                        help="registration search range of --align in px (default: 5%% of the frame, at least 8)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="frames per detector call (default: 8)")
    parser.add_argument("--setup", default="reasonable", help="miss-rate setup (default: reasonable)")
    parser.add_argument("--height-scale", type=positive_float, default=None, metavar="F",
                        help="multiply the setup's height range (default: a synthetic root's own scale, else frame "
                        "height / 512; the scale used is printed)")
    parser.add_argument("--device", default="auto", type=device_name,
                        help="device for checkpoints: auto, cpu, cuda, cuda:1")
    parser.add_argument("--workers", type=non_negative_int, default=2,
                        help="threads loading the next batches (default: 2)")
    parser.add_argument("--recompute-streams", action="store_true",
                        help="run both trunks of a fusion checkpoint at every point instead of computing the "
                        "unperturbed modality's trunk once per frame (the same rows, slower; for timing)")
    parser.add_argument("--out", required=True, help="output folder; re-running resumes an interrupted sweep")


def _run_misalign(args: argparse.Namespace) -> int:
    from rgbt.data.source import open_source
    from rgbt.engine.misalign import detector_names, load_sweep_detectors, run_sweep
    from rgbt.engine.run import prepare_run_dir
    from rgbt.evaluation.missrate import height_scale_for, height_scaled
    from rgbt.evaluation.sweep import build_sweep, format_table

    points = build_sweep(args.patterns, args.shifts, args.rotations, args.scales, args.blackout, args.modality)
    names = detector_names(args.checkpoint, args.reference, args.names)
    source = open_source(args.data, image_set=args.image_set, format=args.format, fake_rgb_root=args.fake_rgb,
                         aligned_rgb_root=args.aligned_rgb)
    detectors = load_sweep_detectors(names, args.checkpoint, args.reference, args.device,
                                     reuse_streams=not args.recompute_streams)
    out = prepare_run_dir(args.out)
    log.info("misalignment sweep: %d points x %d detectors on %d frames of %s", len(points), len(detectors),
             len(source), args.data)
    scale, scale_from = ((args.height_scale, "--height-scale") if args.height_scale is not None
                         else height_scale_for(source.root, source[0].size[0] if len(source) else None))
    if scale != 1.0:
        print(f"note: setup heights x{scale:g} ({scale_from})", file=sys.stderr)
    setup = height_scaled(args.setup, scale)
    rows = run_sweep(detectors, source, points, out, batch_size=args.batch_size, setup=setup, workers=args.workers,
                     align=args.align_model if args.align else None, align_max_shift=args.align_max_shift)
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
    parser.add_argument("--height-scale", type=positive_float, default=None, metavar="F",
                        help="multiply the setups' height ranges (default: read from the ground truth: a synthetic "
                        "root's own scale, else frame height / 512; the scale used is printed)")
    parser.add_argument("--bootstrap", type=non_negative_int, default=0, metavar="N",
                        help="miss rate: N resampled test sets (day and night frames drawn with replacement) give "
                        "a standard deviation for every MR, printed as 'MR +- SD' and stored as all_sd, day_sd, "
                        "night_sd (default: 0, off; 200 is a good choice)")
    parser.add_argument("--bootstrap-seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the resampling (default: 0)")
    parser.add_argument("--metric", default="auto", choices=("auto", "missrate", "coco"),
                        help="auto: miss rate for KAIST ground truth, COCO AP for any other json (default: auto)")
    parser.add_argument("--classes", nargs="+", metavar="C",
                        help="COCO metric: category names to evaluate (default: every ground-truth category)")
    parser.add_argument("--json", metavar="OUT", help="write the results as a json list")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="miss rate: draw miss rate vs FPPI (first setup, all frames), one curve per result")


def _run_evaluate(args: argparse.Namespace) -> int:
    import json

    from rgbt.atomic import atomic_write_text
    from rgbt.evaluation.scoring import score_results

    scores = score_results(args.gt, args.results, args.metric, image_set=args.image_set, setups=args.setup,
                           height_scale=args.height_scale, classes=args.classes, plot=args.plot,
                           bootstrap=args.bootstrap, bootstrap_seed=args.bootstrap_seed)
    if scores.metric == "missrate" and scores.height_scale != 1.0:
        print(f"note: setup heights x{scores.height_scale:g} ({scores.height_scale_from})", file=sys.stderr)
    print(scores.table())
    if args.json:
        atomic_write_text(args.json, json.dumps(scores.rows, indent=1) + "\n")
    return 0


# --------------------------------------------------------------------------------------------
# the main job
# --------------------------------------------------------------------------------------------


def _add_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (re-running reuses finished stages)")
    parser.add_argument("--quick", action="store_true", help="scaled-down run exercising every stage (CI, tests)")
    parser.add_argument("--data", help="run on a real KAIST or FLIR-aligned root instead of the synthetic benchmark")
    parser.add_argument("--device", default="auto", type=device_name, help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="detectors trained at once, each in its own process with cores / N threads, and "
                             "processes sharing the misalignment sweep (default: 2 for the full demo on a CPU "
                             "with 2 or more cores, else 1)")


def _run_demo(args: argparse.Namespace) -> int:
    from rgbt.demo import run_demo

    run_demo(args.out, quick=args.quick, data=args.data, device=args.device, parallel=args.jobs)
    return 0


# --------------------------------------------------------------------------------------------
# registry and entry point
# --------------------------------------------------------------------------------------------

#: name -> (one-line help, argument declaration, runner)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "demo": ("the whole story on the synthetic benchmark: translator, five detectors, sweep, report",
             _add_demo, _run_demo),
    "inspect": ("check a dataset root and summarise frames, labels, missing images and errors", _add_inspect,
                _run_inspect),
    "show": ("draw one frame pair with its boxes to a PNG", _add_show, _run_show),
    "synth": ("write a synthetic RGB-thermal pedestrian dataset in the KAIST layout", _add_synth, _run_synth),
    "train-detector": ("train a fusion pedestrian detector from a config (torchrun for several GPUs)",
                       _add_train_detector, _run_train_detector),
    "detect": ("run a detector checkpoint over a dataset and write KAIST txt or COCO json results", _add_detect,
               _run_detect),
    "train-translator": ("train the flow thermal-to-RGB translator on paired frames (torchrun for several GPUs)",
                         _add_train_translator, _run_train_translator),
    "translate": ("write a fake-RGB dataset from thermal frames with a translator checkpoint (resumable)",
                  _add_translate, _run_translate),
    "translate-eval": ("weight-free translator metrics: round trip, rounds test, structure, day PSNR/SSIM",
                       _add_translate_eval, _run_translate_eval),
    "export": ("export a detector or the flow translator to ONNX (onnx extra)", _add_export, _run_export),
    "misalign": ("miss rate of detectors under shifted/rotated/scaled/blacked-out modalities", _add_misalign,
                 _run_misalign),
    "align": ("register RGB to thermal per frame or per sequence; optionally write the aligned RGB frames",
              _add_align, _run_align),
    "evaluate": ("score detection results: KAIST log-average miss rate (all/day/night) or COCO AP", _add_evaluate,
                 _run_evaluate),
}


#: Commands whose ``--out`` is a folder they write over a long time: one process at a time may hold it.
LOCKED_OUTPUT = frozenset({"demo", "synth", "train-detector", "train-translator", "translate", "misalign", "align"})


def _output_lock(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The writer lock of ``args.out`` for :data:`LOCKED_OUTPUT` commands (rank 0 only under torchrun)."""
    import os

    if args.command not in LOCKED_OUTPUT or not getattr(args, "out", None) or os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    from rgbt.outlock import lock_output

    return lock_output(args.out)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``rgbt`` parser with every subcommand (``only``: every subcommand's name, but only that one's
    arguments: what one command line needs, built in a fraction of the time)."""
    parser = argparse.ArgumentParser(
        prog="rgbt",
        description="Multispectral (RGB + thermal) pedestrian detection: data, fusion detectors, "
        "exact KAIST miss rate, misalignment robustness and flow-based thermal-to-RGB translation.",
    )
    parser.add_argument("--version", action="version", version=f"rgbt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (help_text, add, _run) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            add(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rgbt``; returns the process exit code (0 success, 1 bad input, 2 usage error)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    named = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(named if named in COMMANDS else None)
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.command:
        parser.print_help()
        return 2
    _help, _add, run = COMMANDS[args.command]
    from rgbt.interrupt import INTERRUPTED_EXIT, TERMINATED_EXIT, Terminated, terminate_as_interrupt

    try:
        with terminate_as_interrupt(), _output_lock(args):
            return int(run(args) or 0)
    except (ValueError, FileNotFoundError, OSError, FloatingPointError) as err:
        # Bad input (malformed files, unknown config keys, missing paths) and a training run that diverged
        # (a non-finite loss; the message names the epoch, step and frames) are reported, not traced.
        print(f"rgbt {args.command}: error: {err}", file=sys.stderr)
        if args.verbose:
            raise
        return 1
    except KeyboardInterrupt as err:
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        print(f"rgbt {args.command}: {what}; finished work is kept, re-run to resume", file=sys.stderr)
        return TERMINATED_EXIT if isinstance(err, Terminated) else INTERRUPTED_EXIT


if __name__ == "__main__":
    sys.exit(main())
