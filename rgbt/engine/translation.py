"""Writing a fake-RGB dataset: ``rgbt translate`` as a library call.

:func:`translate_dataset` runs a translator checkpoint (rebuilt by
:func:`rgbt.engine.translator_builder.load_translator`) over a dataset root, writing one fake-RGB
image per thermal frame where the data layer reads them back (``open_source(root, ...,
fake_rgb_root=OUT)``):

* KAIST layout: ``OUT/images/setXX/VYYY/fake_visible/IZZZZZ.<ext>``;
* FLIR and folders of pairs: ``OUT/fake_visible/<frame_id>.<ext>``.

``OUT/manifest.json`` records the source root, the checkpoint's SHA-256, its config, the style
settings and the SHA-256 of every finished file. The run is resumable: files listed in the
manifest whose checksum still matches are skipped; anything else (missing, truncated, corrupted,
written but not yet listed) is redone. Images are written atomically
(:func:`rgbt.data.imageio.write_image`) and the manifest is rewritten atomically every few files,
so a kill at any moment leaves no truncated image and loses no listed one.

Under ``torchrun`` each rank translates its slice of the frames
(:func:`rgbt.engine.distributed.shard`) and records them in ``OUT/manifest.part<rank>.json``;
rank 0 merges the parts into ``manifest.json`` at the end (and at the start of the next run,
after an interruption).

Styles: ``bank`` (default) takes the running latent statistics of the frame's period from the
checkpoint's :class:`~rgbt.translate.transfer.StyleBank` (one forward and one inverse pass per
frame); ``paired`` the frame's own RGB statistics (global statistics: misalignment does not
matter); any other value is the path of a style image used for every frame. The flow translator
transfers latent statistics of the style image; AdaIN and Gatys take the style image's feature
statistics and MUNIT encodes its style code from it (:func:`~rgbt.translate.base.takes_style`).
Translators without a style input (``model: pix2pixhd``) have one fixed mapping: only ``bank``
(the default) is accepted.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from rgbt.atomic import file_sha256
from rgbt.config import config_to_dict
from rgbt.data.dataset import tensor_to_image
from rgbt.data.formats import detect_format
from rgbt.data.imageio import read_image
from rgbt.data.source import FrameSource, open_source
from rgbt.engine import distributed
from rgbt.engine.loader import ReportingDataLoader
from rgbt.engine.manifest import (
    IMAGE_FORMATS,
    MANIFEST_NAME,
    consolidate,
    is_finished,
    read_manifest,
    write_and_hash,
    write_manifest,
)
from rgbt.engine.periodic_save import PeriodicSave
from rgbt.engine.translator_builder import LoadedTranslator, load_translator
from rgbt.translate.base import Translator, is_invertible, takes_style
from rgbt.translate.transfer import bank_period, latent_mean_cov, latent_stats
from rgbt.translate.translator import METHODS, FlowTranslator

log = logging.getLogger(__name__)

#: Bumped when the manifest layout changes.
MANIFEST_VERSION = 1
#: Named styles; anything else passed as ``style`` is a style image path.
NAMED_STYLES = ("bank", "paired")
#: Manifest fields that must agree for a second run to reuse (and add to) a folder.
_SETTING_KEYS = ("source_root", "data_format", "checkpoint_sha256", "settings")


# --------------------------------------------------------------------------------------------
# reading frames
# --------------------------------------------------------------------------------------------


def read_frame(source: FrameSource, index: int, with_rgb: bool = True) -> dict[str, Any]:
    """What translation needs of frame ``index``, straight from its files (no annotations needed).

    Returns:
        ``{"index", "frame_id", "thermal": (H, W) uint8, "rgb": (H', W', 3) uint8 or None (absent or
        not asked for), "period"}``.

    Raises:
        FileNotFoundError: the frame has no thermal image.
    """
    paths = source.image_paths(index)
    frame_id = source.frame_ids[index]
    if paths["thermal"] is None or not Path(paths["thermal"]).is_file():
        raise FileNotFoundError(f"frame {frame_id}: thermal image missing ({paths['thermal']})")
    thermal = read_image(paths["thermal"], "gray")
    rgb = None
    if with_rgb and paths["rgb"] is not None and Path(paths["rgb"]).is_file():
        rgb = read_image(paths["rgb"], "rgb")
    return {"index": index, "frame_id": frame_id, "thermal": thermal, "rgb": rgb,
            "period": source.period(index)}


class _Frames(Dataset):
    """:func:`read_frame` over a list of frame indices (``source[i]`` would also read the fake RGB
    image being written)."""

    def __init__(self, source: FrameSource, indices: Sequence[int], with_rgb: bool) -> None:
        self.source = source
        self.indices = list(indices)
        self.with_rgb = with_rgb

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return read_frame(self.source, self.indices[item], self.with_rgb)


def _to_tensor(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 (H, W) or (H, W, 3) images of one size -> (B, C, H, W) float32 in [0, 1] on ``device``."""
    array = np.stack(images)
    array = array[:, None] if array.ndim == 3 else array.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device).float().div_(255.0)


def default_image_format(translator: Translator) -> str:
    """The storage format ``image_format="auto"`` picks: ``png`` for a translator with an exact inverse
    (the flow), ``jpg`` for the others.

    A flow's fake RGB holds the whole thermal frame only as long as it is not degraded: JPEG's
    quantisation noise, amplified by the inverse, loses it where lossless PNG keeps it to the
    8-bit rounding (``rgbt translate-eval``'s ``*_8bit`` metrics measure both). The other methods
    have nothing to keep, and JPEG files are smaller and faster to write.
    """
    return "png" if is_invertible(translator) else "jpg"


# --------------------------------------------------------------------------------------------
# the job
# --------------------------------------------------------------------------------------------


def _style_image(style: str) -> Path:
    path = Path(style)
    if not path.is_file():
        raise FileNotFoundError(f"style image not found: {style} (--style takes bank, paired or image paths)")
    return path


def _style_settings(style: str | Sequence[str], weights: Sequence[float] | None,
                    seed: int | None) -> dict[str, Any]:
    """The manifest's record of the style arguments of :func:`translate_dataset` (checked, not yet applied)."""
    styles = [style] if isinstance(style, (str, os.PathLike)) else [str(s) for s in style]
    if not styles:
        raise ValueError("no style given (bank, paired, or one or more image paths)")
    if seed is not None and styles != ["bank"]:
        raise ValueError(f"a style seed draws the style code of --style bank, not of {styles}")
    if len(styles) > 1 or weights is not None:
        if any(s in NAMED_STYLES for s in styles):
            raise ValueError(f"several styles are interpolated style images; bank / paired cannot be mixed: {styles}")
        weights = [1.0] * len(styles) if weights is None else [float(w) for w in weights]
        if len(weights) != len(styles) or any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"need one style weight >= 0 per style image with a positive sum, got {weights} for "
                             f"{len(styles)} images")
        paths = [_style_image(s) for s in styles]
        return {"style": "mix", "style_images": [str(p.resolve()) for p in paths],
                "style_images_sha256": [file_sha256(p) for p in paths], "style_weights": weights}
    if str(styles[0]) in NAMED_STYLES:
        return {"style": str(styles[0])} if seed is None else {"style": "bank", "style_seed": int(seed)}
    path = _style_image(str(styles[0]))
    return {"style": "image", "style_image": str(path.resolve()), "style_image_sha256": file_sha256(path)}


@dataclass
class StylePlan:
    """How every frame of one run is styled, resolved once from the style arguments.

    Attributes:
        settings: the manifest's record: ``style`` (``bank``, ``paired``, ``image``, ``mix``) with its
            image paths, checksums, weights or seed, ``alpha`` and ``method``.
        stats: the style every frame gets where it is fixed: a style image's latent statistics (flow),
            the style image itself (other methods) or a drawn style code (MUNIT); ``None`` for
            ``bank`` / ``paired``.
        mix: the style images of ``mix`` as ``(1, 3, H, W)`` tensors in [0, 1] (else empty).
    """

    settings: dict[str, Any]
    stats: Any
    mix: list[torch.Tensor]


def prepare_style(loaded: LoadedTranslator, style: str | Sequence[str], style_weights: Sequence[float] | None,
                  style_seed: int | None, alpha: float | None, method: str | None) -> StylePlan:
    """Check the style arguments of :func:`translate_dataset` against the translator and compute the
    fixed style statistics.

    Raises:
        ValueError: a style the translator cannot take, ``alpha`` outside [0, 1], an unknown method.
        FileNotFoundError: a style image that does not exist.
    """
    model, device = loaded.translator, loaded.device
    alpha = loaded.config.model.alpha if alpha is None else float(alpha)
    method = method or loaded.config.model.transfer
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    settings = {**_style_settings(style, style_weights, style_seed), "alpha": alpha, "method": method}
    name = loaded.config.model.model
    if not takes_style(model) and settings["style"] != "bank":
        raise ValueError(f"the {name} translator takes no style input: use --style bank "
                         f"(its one fixed mapping), got {style!r}")
    if settings["style"] == "mix" and not hasattr(model, "mix"):
        raise ValueError(f"the {name} translator does not interpolate styles: several style images need "
                         "model: adain")
    if "style_seed" in settings and not hasattr(model, "random_styles"):
        raise ValueError(f"the {name} translator draws no style code: a style seed needs model: munit")
    stats = None
    if settings["style"] == "image":
        style_tensor = _to_tensor([read_image(settings["style_image"], "rgb")], device)
        if isinstance(model, FlowTranslator):
            with torch.inference_mode():
                style_z = model.flow.encode(style_tensor)[0]
                stats = latent_stats(style_z) if method == "adain" else latent_mean_cov(style_z)
        else:
            stats = style_tensor  # the other methods take the RGB image itself (one image for the batch)
    elif settings["style"] == "bank" and isinstance(model, FlowTranslator):
        bank_period(model.bank, "day")  # fails early, with a clear message, when the bank is empty
    elif "style_seed" in settings:
        stats = model.random_styles(1, settings["style_seed"], device)  # one code for every frame
    mix = [_to_tensor([read_image(path, "rgb")], device) for path in settings.get("style_images", [])]
    return StylePlan(settings, stats, mix)


def translate_frames(model: Translator, frames: Sequence[dict[str, Any]], plan: StylePlan,
                     device: torch.device) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Translate a batch of frames (as :func:`read_frame` returns them) with ``plan``'s style.

    Frames of one thermal (and, for ``paired``, RGB) size go through the model together; a
    ``paired`` frame without RGB takes the bank style. Call it under ``torch.inference_mode()``.

    Returns:
        ``(frame, fake RGB (H, W, 3) uint8)`` per frame, grouped by size (not in input order).
    """
    settings = plan.settings
    alpha, method = settings["alpha"], settings["method"]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for frame in frames:
        use_rgb = settings["style"] == "paired" and frame["rgb"] is not None
        key = (frame["thermal"].shape, frame["rgb"].shape if use_rgb else None)
        groups.setdefault(key, []).append(frame)
    done = []
    for (_shape, rgb_shape), group in groups.items():
        thermal = _to_tensor([f["thermal"] for f in group], device)
        periods: list[str] | str = "day"
        if rgb_shape is not None:
            style_arg: Any = _to_tensor([f["rgb"] for f in group], device)
        else:
            style_arg = plan.stats
            if plan.stats is None and isinstance(model, FlowTranslator):
                periods = [bank_period(model.bank, f["period"]) for f in group]
        if plan.mix:
            fake = tensor_to_image(model.mix(thermal, plan.mix, settings["style_weights"], alpha))
        else:
            fake = tensor_to_image(model.translate(thermal, style_arg, periods, alpha, method))
        done.extend(zip(group, fake))
    return done


def translate_dataset(
    translator: LoadedTranslator | str | os.PathLike[str],
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    image_set: str | None = None,
    data_format: str = "auto",
    style: str | Sequence[str] = "bank",
    alpha: float | None = None,
    method: str | None = None,
    image_format: str = "auto",
    batch_size: int = 4,
    workers: int = 2,
    device: str | torch.device = "auto",
    flush_every: int = 16,
    progress: bool = True,
    style_weights: Sequence[float] | None = None,
    style_seed: int | None = None,
) -> dict[str, Any]:
    """Translate every thermal frame of a dataset root into ``out`` (see the module docstring).

    Args:
        translator: a checkpoint path, or a translator already loaded with :func:`load_translator`.
        root: dataset root (KAIST layout, FLIR, pairs).
        out: output folder (the ``fake_rgb_root`` of later runs); created.
        image_set: which frames (``open_source``'s ``image_set``); ``None``: every frame.
        data_format: layout of ``root`` (``auto``: detected).
        style: ``bank``, ``paired``, a style image path, or several style image paths (AdaIN's style
            interpolation, weighted by ``style_weights``).
        alpha: style strength in [0, 1]; ``None``: the checkpoint's ``model.alpha``.
        method: ``adain`` or ``wct``; ``None``: the checkpoint's ``model.transfer``.
        image_format: ``jpg`` (quality 95), ``png`` (lossless) or ``auto``
            (:func:`default_image_format`: ``png`` for the flow, ``jpg`` for the others).
        batch_size: frames per forward pass (frames of one size are batched together).
        workers: DataLoader processes decoding the next frames (0: in this process).
        device: where a checkpoint path is loaded (``auto``: CUDA when available; under
            ``torchrun`` the local rank's GPU); ignored for a loaded translator.
        flush_every: rewrite the manifest after this many finished files.
        progress: show a progress bar (rank 0 only).
        style_weights: one weight >= 0 per style image (normalised to sum 1; default: equal) for
            interpolating several styles; only translators with a ``mix`` method (``model: adain``).
        style_seed: with ``style="bank"``, the seed of the style code a multimodal translator
            (``model: munit``) draws: different seeds, different fake RGBs of the same frames;
            ``None``: the checkpoint's fixed code.

    Returns:
        a JSON-ready summary of this process's share: ``frames`` (of the source), ``written``,
        ``skipped`` (valid from an earlier run), ``bank_fallbacks`` (``paired`` frames without RGB,
        translated with the bank style), ``seconds``, ``frames_per_second`` (written / seconds),
        ``manifest`` (path), ``rank``, ``world_size``.

    Raises:
        ValueError: bad settings, or ``out`` holds a translation made with other settings.
        FileNotFoundError: missing root, image set, style image or thermal image.
    """
    if image_format not in (*IMAGE_FORMATS, "auto"):
        raise ValueError(f"format must be one of {IMAGE_FORMATS} or 'auto', got {image_format!r}")
    if batch_size < 1 or flush_every < 1 or workers < 0:
        raise ValueError(f"need batch_size >= 1, flush_every >= 1, workers >= 0; got {batch_size}, {flush_every}, "
                         f"{workers}")
    loaded = translator if isinstance(translator, LoadedTranslator) else load_translator(translator, device)
    model, device = loaded.translator, loaded.device
    image_format = default_image_format(model) if image_format == "auto" else image_format
    plan = prepare_style(loaded, style, style_weights, style_seed, alpha, method)
    settings = {**plan.settings, "format": image_format}
    out = Path(out)
    kind = detect_format(root) if data_format == "auto" else data_format
    out.mkdir(parents=True, exist_ok=True)  # where this job writes: the source reads its fake RGB from there
    source = open_source(root, image_set, kind, None, fake_rgb_root=out)
    header = {
        "version": MANIFEST_VERSION,
        "source_root": str(Path(root).resolve()),
        "data_format": kind,
        "image_sets": [str(image_set) if image_set is not None else "all"],
        "checkpoint": str(loaded.checkpoint.resolve()),
        "checkpoint_sha256": loaded.sha256,
        "checkpoint_step": loaded.step,
        "settings": settings,
        "config": config_to_dict(loaded.config),
    }
    world = distributed.world_size()
    if world > 1:
        distributed.init_distributed(device)
    rank = distributed.rank()
    if distributed.is_main_process():
        consolidate(out, header, _SETTING_KEYS)
    distributed.barrier()
    manifest = read_manifest(out / MANIFEST_NAME)
    if not manifest:
        raise ValueError(f"{out / MANIFEST_NAME} is missing after start-up (another job deleting it?)")
    listed: dict[str, str] = manifest["files"]

    targets = {}
    for index in range(len(source)):
        fake = source.image_paths(index)["fake_rgb"]
        if fake is None:  # pragma: no cover - open_source was given fake_rgb_root
            raise ValueError(f"{root}: the reader did not give a fake RGB path for frame {source.frame_ids[index]}")
        targets[index] = fake.with_suffix(f".{image_format}")
    mine = distributed.shard(list(range(len(source))))
    todo, skipped = [], 0
    for index in mine:
        if is_finished(out, targets[index], listed):
            skipped += 1
        else:
            todo.append(index)
    log.info("translating %d of %d frames of %s into %s (rank %d/%d; %d already done)", len(todo), len(source),
             root, out, rank, world, skipped)

    part_path = out / MANIFEST_NAME if world == 1 else out / f"manifest.part{rank}.json"
    record: dict[str, str] = dict(listed) if world == 1 else {}

    def flush() -> None:
        if world == 1:
            write_manifest(part_path, {**manifest, "files": record})
        else:
            write_manifest(part_path, {"rank": rank, "files": record})

    loader = ReportingDataLoader(_Frames(source, todo, with_rgb=settings["style"] == "paired"),
                                 batch_size=batch_size, num_workers=workers, collate_fn=list)
    written = fallbacks = 0
    pending: deque[tuple[str, Future[str]]] = deque()
    started = time.perf_counter()
    bar = tqdm(total=len(todo), unit="frame", desc="translate", disable=not (progress and rank == 0), leave=False)

    saver = PeriodicSave(flush, flush_every, bar)

    def collect(limit: int) -> None:
        nonlocal written
        while len(pending) > limit:
            rel, future = pending.popleft()
            record[rel] = future.result()
            written += 1
            saver.done()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool, torch.inference_mode():
            for frames in loader:
                if settings["style"] == "paired":
                    fallbacks += sum(frame["rgb"] is None for frame in frames)
                for frame, image in translate_frames(model, frames, plan, device):
                    path = targets[frame["index"]]
                    rel = path.relative_to(out).as_posix()
                    pending.append((rel, pool.submit(write_and_hash, path, image, image_format)))
                collect(2 * batch_size)
            collect(0)
    finally:
        # Whatever finished is kept: a KeyboardInterrupt or an error loses no written file.
        for rel, future in pending:
            if future.done() and not future.cancelled() and future.exception() is None:
                record[rel] = future.result()
        saver.final()
        bar.close()
    seconds = time.perf_counter() - started
    if fallbacks:
        log.warning("%d frames had no RGB image: translated with the bank style instead of --style paired", fallbacks)
    distributed.barrier()
    if world > 1 and distributed.is_main_process():
        consolidate(out, header, _SETTING_KEYS)
    distributed.barrier()
    return {
        "frames": len(source),
        "written": written,
        "skipped": skipped,
        "bank_fallbacks": fallbacks,
        "seconds": round(seconds, 3),
        "frames_per_second": round(written / seconds, 3) if written and seconds > 0 else 0.0,
        "manifest": str(out / MANIFEST_NAME),
        "rank": rank,
        "world_size": world,
    }

