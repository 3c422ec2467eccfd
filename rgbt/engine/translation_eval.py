"""Scoring a translator checkpoint: ``rgbt translate-eval`` as a library call.

Weight-free measures only (:mod:`rgbt.translate.metrics`; no FID or LPIPS, which need pretrained
networks), over up to ``max_frames`` frames spread evenly over the list (KAIST test lists hold the
day frames first, so both periods are sampled):

* ``roundtrip_max_abs`` / ``roundtrip_mean_abs``: ``|F^-1(F(x)) - x|`` over the thermal inputs
  and the RGB frames, in [0, 1] intensity units;
* ``rounds_psnr_db``: ArtFlow's rounds test (``rounds`` successive AdaIN stylisations with the
  latent statistics of the evaluated frames' RGB images in turn, then back to the frame's own statistics; float32,
  no clamping or quantising between rounds), mean PSNR over ``rounds_frames`` of those frames
  (each capped at 200 dB);
* ``gradient_ssim`` and ``edge_f1``: structure kept from the thermal frame in the fake RGB
  (Sobel-magnitude SSIM; Canny edge F1 with a 2 px tolerance), mean over frames;
* ``psnr_day`` / ``ssim_day``: fake RGB against the paired real RGB on day frames (frames of unknown
  period, FLIR and pairs, count as day; ``None`` when there is none);
* ``roundtrip_max_abs_8bit`` / ``roundtrip_mean_abs_8bit``: the same content check after the
  8-bit storage a fake-RGB dataset really uses: the fake RGB as stored (the files ``rgbt
  translate`` wrote when ``stored`` is set, else written to a temporary folder in
  ``image_format`` and read back), encoded, moved back to the thermal frame's
  own latent statistics and decoded (:func:`~rgbt.translate.metrics.recovery_error`), against the
  thermal input;
* ``rounds_psnr_db_8bit``: the rounds test with every round's image stored the same way (written
  as an 8-bit ``image_format`` file and read back) before it is encoded again;
* ``person_contrast_thermal`` / ``person_contrast_fake``: median over the persons of the evaluated
  frames of the per-person contrast d' (box core against a surrounding ring,
  :mod:`rgbt.evaluation.contrast`) in the thermal frame and in the fake RGB (as grey levels):
  whether the fake RGB keeps pedestrians as salient as thermal shows them (``None`` without a
  person);
* ``image_format``: the storage format of the ``*_8bit`` values (``png``, ``jpg``);
* ``frames``: frames evaluated.

Translators without an inverse (:func:`~rgbt.translate.base.is_invertible`: all but the flow) report
the round-trip and rounds values, float and 8-bit, as ``None`` (null in the JSON). With ``style="paired"`` every
translator that takes a style image (:func:`~rgbt.translate.base.takes_style`: all but pix2pixHD) is
given the frame's own RGB; pix2pixHD is scored on its one mapping whatever ``style`` says.

The fake RGB is what ``rgbt translate`` would write with the same style (not quantised), or, with a
``fake_rgb_root``, the files it wrote.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rgbt.atomic import atomic_write_bytes
from rgbt.data.dataset import image_to_tensor, tensor_to_image
from rgbt.data.imageio import read_image, write_image
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source
from rgbt.engine.inference import FusionDetector, detect_source
from rgbt.engine.translation import IMAGE_FORMATS, MANIFEST_NAME, default_image_format, read_frame, read_manifest
from rgbt.engine.translator_builder import LoadedTranslator, load_translator
from rgbt.evaluation.contrast import FrameContrast, frame_contrast, summarise
from rgbt.evaluation.missrate import bootstrap_periods, evaluate_periods, frame_setup, with_frame_size
from rgbt.translate.base import is_invertible, takes_style
from rgbt.translate.metrics import (
    edge_f1,
    finite_or_none,
    gradient_ssim,
    psnr,
    recovery_error,
    rounds_psnr,
    roundtrip_error,
    ssim,
)
from rgbt.translate.transfer import bank_period, latent_stats
from rgbt.translate.translator import FlowTranslator

log = logging.getLogger(__name__)

#: Upper bound of the per-frame rounds PSNR in the report (dB).
ROUNDS_PSNR_CAP = 200.0

#: Keys of the JSON report, in order.
REPORT_KEYS = ("roundtrip_max_abs", "roundtrip_mean_abs", "rounds_psnr_db", "roundtrip_max_abs_8bit",
               "roundtrip_mean_abs_8bit", "rounds_psnr_db_8bit", "person_contrast_thermal", "person_contrast_fake",
               "edge_f1", "gradient_ssim", "psnr_day", "ssim_day", "image_format", "frames")


@dataclass
class Triplet:
    """One row of the figure: thermal (H, W), fake RGB (H, W, 3), real RGB (H', W', 3) or None; uint8.

    ``boxes`` are the annotated objects in thermal-frame ``xyxy`` pixels (drawn on thermal and on the
    fake RGB, which shares its frame); ``boxes_rgb`` the same objects in the RGB frame when the
    dataset has paired annotations (else the thermal boxes are drawn on the RGB panel too);
    ``ignore`` marks ignore regions (drawn dashed).
    """

    frame_id: str
    period: str
    thermal: np.ndarray
    fake: np.ndarray
    rgb: np.ndarray | None
    boxes: np.ndarray | None = None
    boxes_rgb: np.ndarray | None = None
    ignore: np.ndarray | None = None


class FileStore:
    """8-bit storage as a fake-RGB dataset does it: ``(B, C, H, W)`` floats in [0, 1] written as image
    files (:func:`~rgbt.data.imageio.write_image`: rounded to uint8, JPEG quality 95 or PNG) into
    ``folder`` and read back (:func:`~rgbt.data.imageio.read_image`) as float tensors on the same device.
    """

    def __init__(self, folder: str | os.PathLike[str], image_format: str) -> None:
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        self.folder = Path(folder)
        self.image_format = image_format
        self.written = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        back = []
        for image in tensor_to_image(images.float().clamp(0.0, 1.0)):
            path = self.folder / f"stored{self.written % 2}.{self.image_format}"
            self.written += 1
            write_image(path, image, jpeg_quality=95)
            back.append(image_to_tensor(read_image(path, "rgb")))
        return torch.stack(back).to(images.device)


def _stored_fake(source: FrameSource, index: int) -> torch.Tensor:
    """``(1, 3, H, W)`` float of the fake RGB ``rgbt translate`` wrote for frame ``index``.

    Raises:
        FileNotFoundError: the source has no fake-RGB folder or the frame's file is missing.
    """
    path = source.image_paths(index)["fake_rgb"]
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"frame {source.frame_ids[index]}: no stored fake RGB ({path}); translate the frames "
                                "with `rgbt translate` first or evaluate without --fake-rgb")
    return image_to_tensor(read_image(path, "rgb"))[None]


def _median_d(frames: list[FrameContrast], modality: str) -> float | None:
    summary = summarise(frames).get("all", {}).get(modality)
    return finite_or_none(summary.median_d) if summary is not None else None


def _spread(n: int, k: int) -> list[int]:
    if k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)})


def evaluate_translation(
    loaded: LoadedTranslator,
    source: FrameSource,
    max_frames: int = 50,
    style: str = "bank",
    method: str | None = None,
    alpha: float | None = None,
    rounds: int = 20,
    rounds_frames: int = 4,
    figure_rows: int = 2,
    image_format: str = "auto",
    stored: bool = False,
    recover_method: str | None = None,
) -> tuple[dict[str, Any], list[Triplet]]:
    """Score ``loaded`` on ``source`` (see the module docstring).

    Args:
        loaded: the translator (:func:`rgbt.engine.translator_builder.load_translator`).
        source: the frames (RGB needed for the rounds styles and the day PSNR/SSIM).
        max_frames: frames evaluated, spread evenly over the list.
        style: ``bank`` (the frame period's bank statistics) or ``paired`` (the frame's own RGB).
        method, alpha: latent transfer and strength; ``None``: the checkpoint's settings.
        rounds: stylisations in the rounds test (ArtFlow: 20).
        rounds_frames: frames (spread over the evaluated ones) the rounds test runs on; it costs
            ``rounds + 2`` passes per frame.
        figure_rows: day and night frames kept for the triplet figure (each).
        image_format: storage of the ``*_8bit`` metrics: ``png``, ``jpg`` or ``auto``
            (:func:`~rgbt.engine.translation.default_image_format`); with ``stored``, the format of
            the stored files.
        stored: score the fake RGB ``rgbt translate`` wrote (``source`` opened with
            ``fake_rgb_root``; every fake-RGB metric then describes those files, whatever style
            they were made with, and ``style`` / ``alpha`` are not used) instead of translating here.
        recover_method: the latent transfer the stored fake RGB was made with (``None``: ``method``).

    Returns:
        ``(report, triplets)``: the JSON report (keys :data:`REPORT_KEYS`; ``None`` for a value
        with no frame to compute it on) and up to ``figure_rows`` day + night triplets.

    Raises:
        ValueError: an empty source, an unknown style or image format, or ``max_frames < 1``.
        FileNotFoundError: with ``stored``, a frame without its fake-RGB file.
    """
    if style not in ("bank", "paired"):
        raise ValueError(f"style must be 'bank' or 'paired', got {style!r}")
    if max_frames < 1 or rounds < 1:
        raise ValueError(f"max_frames and rounds must be >= 1, got {max_frames}, {rounds}")
    if len(source) == 0:
        raise ValueError(f"no frames to evaluate in {source.root}")
    translator, device = loaded.translator, loaded.device
    if image_format not in (*IMAGE_FORMATS, "auto"):
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS} or 'auto', got {image_format!r}")
    image_format = default_image_format(translator) if image_format == "auto" else image_format
    method = method or loaded.config.model.transfer
    recover_method = recover_method or method
    alpha = loaded.config.model.alpha if alpha is None else alpha
    indices = _spread(len(source), max_frames)
    frames = [read_frame(source, i) for i in indices]
    invertible = is_invertible(translator)
    styled = isinstance(translator, FlowTranslator)
    with tempfile.TemporaryDirectory(prefix="rgbt-8bit-") as folder, torch.inference_mode():
        store = FileStore(folder, image_format)
        rgb_stats = []
        for frame in frames:
            if invertible and frame["rgb"] is not None:
                z = translator.flow.encode(image_to_tensor(frame["rgb"])[None].to(device))[0]
                rgb_stats.append(latent_stats(z))
        rt_max, rt_sum, rt_count = 0.0, 0.0, 0
        stored_max, stored_means = 0.0, []
        contrast: list[FrameContrast] = []
        rounds_8bit: list[float] = []
        rounds_scores, grad_scores, edge_scores, psnr_day, ssim_day = [], [], [], [], []
        triplets: dict[str, list[Triplet]] = {"day": [], "night": []}
        rounds_at = set(_spread(len(frames), rounds_frames))
        for k, frame in enumerate(frames):
            thermal = image_to_tensor(frame["thermal"])[None].to(device)
            rgb = image_to_tensor(frame["rgb"])[None].to(device) if frame["rgb"] is not None else None
            x = translator.thermal_to_input(thermal) if invertible else thermal
            for image in ([x] + ([rgb] if rgb is not None else [])) if invertible else []:
                err_max, err_mean = roundtrip_error(translator, image)
                rt_max = max(rt_max, err_max)
                rt_sum += err_mean * image.numel()
                rt_count += image.numel()
            if invertible and k in rounds_at and rgb_stats:
                # The evaluated frames' RGB statistics in turn, starting after this frame (cycled).
                others = [rgb_stats[(k + 1 + j) % len(rgb_stats)] for j in range(rounds)]
                # Capped: a bit-exact round trip has an infinite PSNR, which strict JSON cannot hold.
                rounds_scores.append(min(ROUNDS_PSNR_CAP, float(rounds_psnr(translator, x.contiguous(), others)[0])))
                rounds_8bit.append(min(ROUNDS_PSNR_CAP,
                                       float(rounds_psnr(translator, x.contiguous(), others, store=store)[0])))
            if stored:
                # The dataset as written: every fake-RGB metric describes the stored files.
                fake = _stored_fake(source, frame["index"]).to(device)
                if fake.shape[-2:] != thermal.shape[-2:]:
                    raise ValueError(f"frame {frame['frame_id']}: the stored fake RGB is {tuple(fake.shape[-2:])}, "
                                     f"the thermal frame {tuple(thermal.shape[-2:])}")
            elif style == "paired" and rgb is not None and takes_style(translator):
                fake = translator.translate(thermal, style=rgb, alpha=alpha, method=method)
            elif not styled:
                fake = translator.translate(thermal)
            else:
                period = bank_period(translator.bank, frame["period"])
                fake = translator.translate(thermal, period=period, alpha=alpha, method=method)
            fake_uint8 = tensor_to_image(fake[0])
            if invertible:
                kept = fake if stored else store(fake)
                err_max, err_mean = recovery_error(translator, kept, thermal, recover_method)
                stored_max = max(stored_max, err_max)
                stored_means.append(err_mean)
            record = source.annotations(frame["index"])
            contrast.append(frame_contrast(record.with_images(thermal=frame["thermal"], rgb=fake_uint8,
                                                              fake_rgb=None)))
            grad_scores.append(gradient_ssim(frame["thermal"], fake[0].float().cpu().permute(1, 2, 0).numpy()))
            edge_scores.append(edge_f1(frame["thermal"], fake_uint8))
            is_day = frame["period"] != "night"
            if is_day and rgb is not None and rgb.shape == fake.shape:
                psnr_day.append(float(psnr(fake, rgb)[0]))
                ssim_day.append(float(ssim(fake, rgb)[0]))
            group = triplets["day" if is_day else "night"]
            if len(group) < figure_rows:
                ignore = np.array([label != "person" for label in record.labels], dtype=bool) | record.ignore
                group.append(Triplet(frame["frame_id"], frame["period"], frame["thermal"], fake_uint8, frame["rgb"],
                                     record.boxes, record.boxes_rgb, ignore))

    def mean(values: list[float]) -> float | None:
        return finite_or_none(float(np.mean(values))) if values else None

    report = {
        "roundtrip_max_abs": rt_max if rt_count else None,
        "roundtrip_mean_abs": rt_sum / rt_count if rt_count else None,
        "rounds_psnr_db": mean(rounds_scores),
        "roundtrip_max_abs_8bit": stored_max if stored_means else None,
        "roundtrip_mean_abs_8bit": mean(stored_means),
        "rounds_psnr_db_8bit": mean(rounds_8bit),
        "person_contrast_thermal": _median_d(contrast, "thermal"),
        "person_contrast_fake": _median_d(contrast, "rgb"),
        "edge_f1": mean(edge_scores),
        "gradient_ssim": mean(grad_scores),
        "psnr_day": mean(psnr_day),
        "ssim_day": mean(ssim_day),
        "image_format": image_format,
        "frames": len(frames),
    }
    return report, triplets["day"] + triplets["night"]


def frozen_rgb_missrate(
    detector: FusionDetector, source: FrameSource, modality: str = "fake_rgb", batch_size: int = 8,
    bootstrap: int = 0,
) -> dict[str, float | None]:
    """The frozen-RGB-detector probe: KAIST MR^-2 (%) of a detector that takes RGB (trained on real
    RGB, never on fake RGB) when its ``rgb`` input is ``modality`` of every frame.

    ``modality="fake_rgb"`` (``source`` opened with the ``fake_rgb_root`` that ``rgbt translate``
    wrote) scores the fake RGB as a drop-in replacement for the camera; ``"rgb"`` the real RGB, the
    reference. Persons: ``reasonable`` with its heights scaled to the frame
    (:func:`~rgbt.evaluation.missrate.frame_setup`).

    Returns:
        ``{'all', 'day', 'night'}`` -> miss rate in percent (``None`` for a period without frames or
        persons); with ``bootstrap=R >= 2`` also ``all_sd``, ``day_sd``, ``night_sd``: the bootstrap
        standard deviation over the test frames in points
        (:func:`~rgbt.evaluation.missrate.bootstrap_periods`, ``R`` replicates, seed 0).

    Raises:
        ValueError: a detector without an ``rgb`` input, an unknown modality, an empty source, or a
            frame without the image (named).
    """
    if "rgb" not in detector.modalities:
        raise ValueError(f"the frozen-RGB probe needs a detector with an rgb input, got {list(detector.modalities)}")
    if modality not in ("rgb", "fake_rgb"):
        raise ValueError(f"modality must be 'rgb' or 'fake_rgb', got {modality!r}")
    if len(source) == 0:
        raise ValueError(f"{source.root}: no frame to evaluate on")

    def detect(samples: list[PairSample]) -> list[np.ndarray]:
        inputs = []
        for sample in samples:
            image = sample.image(modality)
            if image is None:
                raise ValueError(f"frame {sample.frame_id}: no {modality} image for the frozen-RGB probe")
            inputs.append(sample.with_images(rgb=image))
        return detector(inputs)

    size = source[0].size
    records = with_frame_size([source.annotations(i) for i in range(len(source))], size)
    detections = detect_source(detect, source, batch_size=batch_size, progress=False)
    setup = frame_setup("reasonable", size[0])
    curves = evaluate_periods(records, detections, setup)
    result = {period: finite_or_none(100.0 * curves[period].mr) if period in curves else None
              for period in ("all", "day", "night")}
    if bootstrap:
        spread = bootstrap_periods(records, detections, setup, replicates=bootstrap)
        result.update({f"{period}_sd": finite_or_none(100.0 * spread.sd(period)) for period in ("all", "day", "night")})
    return result


def _draw_boxes(ax: Any, boxes: np.ndarray | None, ignore: np.ndarray | None) -> None:
    """Outline ``xyxy`` boxes: persons solid green, ignore regions dashed orange."""
    from matplotlib.patches import Rectangle

    if boxes is None:
        return
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4)):
        skip = ignore is not None and k < len(ignore) and bool(ignore[k])
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=0.6,
                               edgecolor="orange" if skip else "lime", linestyle="--" if skip else "-"))


def plot_triplets(triplets: list[Triplet], path: str | Path, width_px: int = 640, colours: int = 256,
                  label: str = "flow translator") -> Path:
    """Draw rows of thermal / fake RGB / real RGB (day rows first) into a PNG (written atomically).

    Args:
        triplets: the rows (see :func:`evaluate_translation`).
        path: output PNG.
        width_px: figure width in pixels (the height follows the frames' aspect ratio).
        colours: palette size of the PNG (0: full 24-bit colour). Camera frames are noisy, so a
            24-bit PNG of four triplets weighs about a megabyte; a 256-colour palette keeps it near
            a quarter of that, small enough for a README.
        label: the translator named in the fake-RGB column's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not triplets:
        raise ValueError("no frames to draw")
    h, w = triplets[0].thermal.shape[:2]
    dpi = 100
    fig_w = width_px / dpi
    fig_h = fig_w / 3 * h / w * len(triplets) + 0.35
    fig, axes = plt.subplots(len(triplets), 3, figsize=(fig_w, fig_h), dpi=dpi, squeeze=False)
    titles = ("thermal (input)", f"fake RGB ({label})", "real RGB (paired frame)")
    for row, triplet in enumerate(triplets):
        panels = (triplet.thermal, triplet.fake, triplet.rgb)
        for col, image in enumerate(panels):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.text(0.5, 0.5, "no RGB", ha="center", va="center")
            else:
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
                boxes = triplet.boxes_rgb if col == 2 and triplet.boxes_rgb is not None else triplet.boxes
                _draw_boxes(ax, boxes, triplet.ignore)
            if row == 0:
                ax.set_title(titles[col], fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{triplet.period}\n{triplet.frame_id}", fontsize=6)
    fig.subplots_adjust(left=0.06, right=0.995, top=1 - 0.3 / fig_h, bottom=0.005, wspace=0.02, hspace=0.04)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    from PIL import Image  # matplotlib's own image dependency

    image = Image.fromarray(pixels)
    if colours > 0:
        image = image.quantize(colours, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    image.save(buffer, format="png", optimize=True)
    return atomic_write_bytes(path, buffer.getvalue())


def evaluate_translator(
    translator: LoadedTranslator | str | os.PathLike[str],
    root: str | os.PathLike[str],
    image_set: str | None = None,
    max_frames: int = 50,
    figure: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    style: str = "bank",
    method: str | None = None,
    alpha: float | None = None,
    data_format: str = "auto",
    fake_rgb_root: str | os.PathLike[str] | None = None,
    image_format: str = "auto",
) -> dict[str, Any]:
    """``rgbt translate-eval``: open ``root``, score the translator, optionally draw the triplet figure.

    Args:
        translator: a checkpoint path or a translator loaded with :func:`load_translator`.
        root, image_set, data_format: the frames (``open_source``); ``image_set=None``: every frame.
        max_frames: frames evaluated, spread evenly over the list (``0``: all of them).
        figure: PNG path for the thermal / fake RGB / real RGB grid (two day and two night rows).
        device: where a checkpoint path is loaded.
        style, method, alpha: as in :func:`evaluate_translation`.
        fake_rgb_root: the folder ``rgbt translate`` wrote for these frames: every fake-RGB metric
            scores its files (their format, and the latent transfer they were made with unless
            ``method`` is given, come from its manifest); ``None``: translated here with ``style``
            and stored in a temporary folder for the 8-bit values.
        image_format: without ``fake_rgb_root``, the storage format of the 8-bit metrics (``auto``:
            :func:`~rgbt.engine.translation.default_image_format`).

    Returns:
        the report (keys :data:`REPORT_KEYS`), JSON-ready.

    Raises:
        ValueError: ``max_frames < 0``, or what :func:`evaluate_translation` raises.
    """
    if max_frames < 0:
        raise ValueError(f"max_frames must be >= 0 (0: every frame), got {max_frames}")
    loaded = translator if isinstance(translator, LoadedTranslator) else load_translator(translator, device)
    source = open_source(root, image_set, data_format, fake_rgb_root=fake_rgb_root)
    frames = max_frames or len(source)
    recover_method = method
    if fake_rgb_root is not None:
        manifest = read_manifest(Path(fake_rgb_root) / MANIFEST_NAME)
        settings = manifest.get("settings", {}) if manifest else {}
        if settings.get("format") not in IMAGE_FORMATS:
            raise ValueError(f"{Path(fake_rgb_root) / MANIFEST_NAME}: no fake-RGB manifest with a 'settings.format' "
                             f"(got {settings.get('format')!r}); is {fake_rgb_root} a `rgbt translate` output?")
        image_format = settings["format"]
        recover_method = method or settings.get("method")
    report, triplets = evaluate_translation(loaded, source, frames, style=style, method=method, alpha=alpha,
                                            image_format=image_format, stored=fake_rgb_root is not None,
                                            recover_method=recover_method)
    if figure is not None:
        name = loaded.config.model.model
        plot_triplets(triplets, figure, label="flow translator" if name == "flow" else name)
    return report
