"""Translating a thermal video (``rgbt translate --thermal-video B``).

Every frame of the thermal video (:class:`~rgbt.data.video.VideoPairSource` without an RGB video)
goes through the same translation step as a dataset's frames
(:func:`~rgbt.engine.translation.translate_frames`, with the style resolved by
:func:`~rgbt.engine.translation.prepare_style`), in order, and gives

* ``OUT/fake_rgb.mp4``: the fake RGB frames at the thermal video's frame rate and size (``mp4v``),
  frame ``k`` translating thermal frame ``k``; written under a temporary name and renamed when
  complete (:class:`~rgbt.data.video_writer.VideoWriter`), so an interrupted run leaves no
  half-written video;
* ``OUT/frames.json``: the thermal video, its frame rate and size, the checkpoint (path, SHA-256),
  the style settings, and per frame the id ``frame_IIIIII``, the thermal frame number and the time (s).

The fake RGB is computed from thermal alone, so no RGB video is read; ``--style paired`` (each
frame's own RGB) has nothing to read and is refused. A video's frames have no day/night label:
``bank`` takes the bank's day statistics (:func:`~rgbt.translate.transfer.bank_period`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from rgbt.atomic import atomic_write_text
from rgbt.data.video import VideoPairSource
from rgbt.data.video_writer import VideoWriter
from rgbt.engine.translation import prepare_style, translate_frames
from rgbt.engine.translator_builder import LoadedTranslator, load_translator

log = logging.getLogger(__name__)

#: Output files in ``OUT``.
FAKE_VIDEO = "fake_rgb.mp4"
FRAMES_JSON = "frames.json"


def translate_video(
    translator: LoadedTranslator | str | os.PathLike[str],
    thermal_video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    style: str | list[str] = "bank",
    alpha: float | None = None,
    method: str | None = None,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    progress: bool = True,
    style_weights: list[float] | None = None,
    style_seed: int | None = None,
) -> dict[str, Any]:
    """Translate every frame of a thermal video into ``out`` (see the module docstring).

    Args:
        translator: a checkpoint path, or a translator loaded with :func:`load_translator`.
        thermal_video: the thermal video file.
        out: output folder (created).
        style, alpha, method, style_weights, style_seed: as :func:`~rgbt.engine.translation.translate_dataset`
            (``paired`` excepted).
        batch_size: frames per forward pass.
        device: where a checkpoint path is loaded (``auto``: CUDA when available).
        progress: show a progress bar.

    Returns:
        ``{"frames", "fps", "width", "height", "seconds", "frames_per_second", "files"}``.

    Raises:
        FileNotFoundError, rgbt.data.errors.DataFormatError: a missing or unreadable video (named).
        ValueError: bad settings (``--style paired``, a style the translator cannot take ...).
    """
    if batch_size < 1:
        raise ValueError(f"need batch_size >= 1, got {batch_size}")
    source = VideoPairSource(None, thermal_video)
    loaded = translator if isinstance(translator, LoadedTranslator) else load_translator(translator, device)
    plan = prepare_style(loaded, style, style_weights, style_seed, alpha, method)
    if plan.settings["style"] == "paired":
        raise ValueError("--style paired takes each frame's own RGB, which a thermal video does not have: use "
                         "--style bank or a style image")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = source.thermal_size
    log.info("translating %d frames of %s (%dx%d, %g fps) into %s", len(source), source.thermal_video, width, height,
             source.thermal_fps, out)
    started = time.perf_counter()
    bar = tqdm(total=len(source), unit="frame", desc="translate", disable=not progress, leave=False)
    try:
        with VideoWriter(out / FAKE_VIDEO, source.thermal_fps) as writer, torch.inference_mode():
            for first in range(0, len(source), batch_size):
                frames = [{"index": k, "frame_id": source.frame_ids[k], "thermal": source[k].thermal, "rgb": None,
                           "period": source.period(k)}
                          for k in range(first, min(first + batch_size, len(source)))]
                done = translate_frames(loaded.translator, frames, plan, loaded.device)
                for _frame, image in sorted(done, key=lambda pair: pair[0]["index"]):
                    writer.write(image)
                bar.update(len(frames))
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    index = {
        "thermal_video": str(source.thermal_video), "thermal_fps": source.thermal_fps, "width": width,
        "height": height, "checkpoint": str(loaded.checkpoint.resolve()), "checkpoint_sha256": loaded.sha256,
        "settings": plan.settings, "frames": [source.frame_record(k) for k in range(len(source))],
    }
    atomic_write_text(out / FRAMES_JSON, json.dumps(index, indent=1) + "\n")
    return {"frames": len(source), "fps": source.thermal_fps, "width": width, "height": height,
            "seconds": round(seconds, 3), "frames_per_second": round(len(source) / seconds, 3) if seconds > 0 else 0.0,
            "files": [str(out / FAKE_VIDEO), str(out / FRAMES_JSON)]}
