"""Training a fusion detector: ``rgbt train-detector`` as a library call.

:func:`train_detector` wires the pieces and hands them to the one training loop
(:class:`~rgbt.engine.trainer.Trainer`):

* frames: ``open_source(data.root, data.train_set, ...)`` as a :class:`~rgbt.data.dataset.PairDataset`
  of ``data.modalities`` with the paired augmentation of ``augment`` (flip, rescale, RGB colour,
  random RGB shift as misalignment augmentation);
* targets: objects of ``data.classes`` are positives; other labels (KAIST ``people``, ``person?``,
  ``cyclist``) and, on KAIST-layout data, boxes lower than ``ignore.min_height`` or more occluded
  than ``ignore.max_occlusion`` become ignore regions (:func:`~rgbt.data.dataset.kaist_train_ignore`):
  never positives, never background;
* loss: the sum of the detector's own losses, each component logged under its name in ``log.csv``;
* validation (every ``train.eval_every`` epochs and at the end): KAIST log-average miss rate
  ``reasonable`` with its heights scaled to the frame (frame height / 512) in percent (``mr_all``,
  ``mr_day``, ``mr_night``; ``best.pt`` has the lowest ``mr_all``) on KAIST-layout data, COCO AP
  in percent (``ap``, ``ap50``, ``ap75``; ``best.pt`` has the highest ``ap``) otherwise.

The run directory receives ``config.yaml`` (the resolved config), ``log.txt``, ``log.csv``,
``loss.png``, ``eval.csv``, ``last.pt`` / ``best.pt`` (with the config, so
:func:`rgbt.engine.inference.load_detector` rebuilds the model from the file alone) and
``result.json``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rgbt.config import DetectorConfig, TrainIgnoreConfig
from rgbt.data.dataset import PairDataset, collate_pairs, kaist_train_ignore, stack_modalities
from rgbt.data.formats import detect_format
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source
from rgbt.data.transforms import build_train_transform
from rgbt.engine import distributed
from rgbt.engine.detector_builder import build_detector_from_config
from rgbt.engine.inference import FusionDetector, detect_source
from rgbt.engine.run import finish_run, prepare_run_dir, resolve_device, seed_everything
from rgbt.engine.trainer import EvalFn, Trainer

log = logging.getLogger(__name__)

#: Miss-rate setup used for validation on KAIST-layout data, its heights scaled to the frame size
#: (:func:`rgbt.evaluation.missrate.frame_setup`).
EVAL_SETUP = "reasonable"


def detection_targets(targets: Sequence[dict[str, Any]], device: torch.device) -> list[dict[str, torch.Tensor]]:
    """The detector's targets from :class:`PairDataset` targets: ``boxes`` (N, 4) float xyxy, ``labels``
    (N,) int64, ``ignore`` (N,) bool and, with paired annotations, ``boxes_rgb`` (N, 4) (region feature
    alignment learns its offsets from them), on ``device``; boxes without area (clipped away) are dropped."""
    out = []
    for target in targets:
        boxes = target["boxes"]
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out.append({
            "boxes": boxes[keep].to(device),
            "labels": target["labels"][keep].to(device),
            "ignore": target["ignore"][keep].to(device),
        })
        if "boxes_rgb" in target:
            out[-1]["boxes_rgb"] = target["boxes_rgb"][keep].to(device)
    return out


def detection_loss(
    model: nn.Module, batch: tuple[dict[str, Any], list[dict[str, Any]]], device: torch.device,
    modalities: Sequence[str] = ("rgb", "thermal"),
) -> dict[str, torch.Tensor]:
    """The Trainer's ``compute_loss`` for detectors: ``{'loss': sum, **the model's named losses}``.

    Args:
        model: a training-mode :mod:`rgbt.detect` detector (possibly DDP-wrapped).
        batch: ``(images, targets)`` from :func:`~rgbt.data.dataset.collate_pairs`.
        device: where the model lives.
        modalities: stacking order of the model's input channels.
    """
    images, targets = batch
    stacked = stack_modalities(images, modalities)
    inputs = [image.to(device, non_blocking=True) for image in stacked]
    losses = model(inputs, detection_targets(targets, device))
    total = torch.stack([value for value in losses.values()]).sum()
    return {"loss": total, **losses}


def _coco_arrays(detections: list[np.ndarray], classes: Sequence[str], kept: Sequence[str]) -> list[np.ndarray]:
    """``(M, 6)`` rows with labels renumbered from ``classes`` to ``kept`` (rows of other classes dropped)."""
    mapping = np.zeros(len(classes) + 1)
    for k, name in enumerate(classes, start=1):
        mapping[k] = kept.index(name) + 1 if name in kept else 0
    out = []
    for rows in detections:
        rows = rows.copy()
        rows[:, 5] = mapping[rows[:, 5].astype(np.int64)]
        out.append(rows[rows[:, 5] > 0])
    return out


def build_evaluation(
    source: FrameSource,
    kind: str,
    modalities: Sequence[str],
    classes: Sequence[str],
    device: torch.device,
    batch_size: int,
    workers: int = 0,
) -> tuple[EvalFn, str | None, bool]:
    """The periodic validation of :func:`train_detector`: ``(evaluate, metric, lower_is_better)``.

    ``evaluate(model)`` returns percentages: ``mr_all``, ``mr_day``, ``mr_night`` (KAIST
    ``reasonable`` miss rate with its heights scaled to the frame height / 512, ``nan`` for a period
    without frames or positives) when ``kind`` is
    ``kaist``, else ``ap``, ``ap50``, ``ap75`` (COCO AP over the ``classes`` present in the
    validation ground truth). ``metric`` names the value that selects ``best.pt`` (``None`` when the
    validation set has nothing to score).
    """
    from rgbt.data.labels import canonical_label
    from rgbt.evaluation.coco import evaluate_coco
    from rgbt.evaluation.missrate import evaluate_periods, frame_setup, with_frame_size

    if len(source) == 0:
        raise ValueError(f"the validation set of {source.root} is empty")
    ground_truth = [source.annotations(i) for i in range(len(source))]
    if kind == "kaist":
        # KAIST-layout frames share one size; the first frame tells it. The setup's heights are KAIST
        # pixels: scaled to the frame, a 256 px high synthetic frame keeps the persons KAIST would.
        size = source[0].size
        ground_truth = with_frame_size(ground_truth, size)
        setup = frame_setup(EVAL_SETUP, size[0], source.root)
        positives = evaluate_periods(ground_truth, [np.zeros((0, 5))] * len(ground_truth), setup)["all"]
        log.info("validation: %d '%s' positives (heights >= %.1f px on %d px high frames) in %d frames",
                 positives.n_positives, EVAL_SETUP, setup.height[0], size[0], len(ground_truth))
        metric: str | None = "mr_all"
        if positives.n_positives == 0:
            log.warning("the validation set has no '%s' positive: miss rates are nan, best.pt is not kept",
                        EVAL_SETUP)
            metric = None

        def evaluate(model: nn.Module) -> dict[str, float]:
            detector = FusionDetector(model, modalities, classes, device, batch_size)
            detections = detect_source(detector, source, batch_size=batch_size, workers=workers, progress=False)
            curves = evaluate_periods(ground_truth, detections, setup)
            return {f"mr_{p}": curves[p].mr * 100.0 if p in curves else math.nan for p in ("all", "day", "night")}

        return evaluate, metric, True

    present = {canonical_label(label) for sample in ground_truth for label in sample.labels}
    kept = [c for c in classes if canonical_label(c) in present]
    if not kept:
        log.warning("the validation set has no object of %s: AP is not computed, best.pt is not kept", list(classes))

    def evaluate_ap(model: nn.Module) -> dict[str, float]:
        if not kept:
            return {"ap": math.nan, "ap50": math.nan, "ap75": math.nan}
        detector = FusionDetector(model, modalities, classes, device, batch_size)
        detections = detect_source(detector.predict, source, batch_size=batch_size, workers=workers, progress=False)
        result = evaluate_coco(ground_truth, _coco_arrays(detections, classes, kept), kept)
        return {"ap": result["AP"] * 100.0, "ap50": result["AP50"] * 100.0, "ap75": result["AP75"] * 100.0}

    return evaluate_ap, "ap" if kept else None, False


def _train_ignore(ignore: TrainIgnoreConfig, classes: Sequence[str]) -> Callable[[PairSample], np.ndarray]:
    return partial(kaist_train_ignore, min_height=ignore.min_height, max_occlusion=ignore.max_occlusion,
                   classes=tuple(classes))


def train_detector(config: DetectorConfig, out: str | os.PathLike[str], resume: bool = False) -> dict[str, Any]:
    """Train a fusion detector as ``config`` says; see the module docstring for what goes where.

    Under ``torchrun`` every process calls this; rank 0 writes the run directory. ``resume=True``
    continues from ``out/last.pt`` (optimiser, schedule, position and RNG states) and starts a new
    run when there is none.

    Returns:
        the content of ``result.json``: ``steps``, ``epochs``, ``seconds`` (this call), ``metric``
        and ``best`` (the value that selected ``best.pt``), ``final`` (the last evaluation, percent),
        ``last_log`` (the last ``log.csv`` row), ``checkpoints``, ``device``, ``world_size``.

    Raises:
        ValueError: no dataset root, an empty training set, or a bad config value.
        FileNotFoundError: missing dataset files.
    """
    data = config.data
    if not data.root:
        raise ValueError("no dataset root: set data.root in the config or pass --data ROOT")
    main = distributed.is_main_process()
    run_dir = prepare_run_dir(out) if main else Path(out)
    seed_everything(config.train.seed)
    device = resolve_device(config.train.device)
    kind = detect_format(data.root) if data.format == "auto" else data.format
    classes = list(data.classes)
    modalities = list(data.modalities)
    fake_rgb_root = data.fake_rgb_root or None
    aligned_rgb_root = data.aligned_rgb_root or None

    train_source = open_source(data.root, data.train_set, kind, classes, fake_rgb_root, data.period,
                               aligned_rgb_root=aligned_rgb_root)
    if "rgb" in modalities and getattr(train_source, "rgb_aligned", True) is False:
        raise ValueError(
            f"{data.root} ({kind}): its RGB frames are not registered to thermal, so they cannot be stacked with "
            "it; use FLIR-aligned, thermal only (data.modalities=[thermal]) or fake RGB ([fake_rgb, thermal])"
        )
    augment = config.augment
    transform = build_train_transform(hflip=augment.hflip, scale=augment.scale, color=augment.color,
                                      shift_rgb=augment.shift_rgb, seed=config.train.seed,
                                      modality_dropout=augment.modality_dropout,
                                      shift_rgb_prob=augment.shift_rgb_prob)
    ignore_fn = _train_ignore(config.ignore, classes) if kind == "kaist" else None
    dataset = PairDataset(train_source, modalities, transform, classes, ignore_fn=ignore_fn)
    model = build_detector_from_config(config.model, modalities, len(classes) + 1)

    evaluate, metric, lower_is_better = None, None, True
    if config.train.eval_every > 0 and main:
        val_source = open_source(data.root, data.val_set, kind, classes, fake_rgb_root, data.period,
                                 aligned_rgb_root=aligned_rgb_root)
        evaluate, metric, lower_is_better = build_evaluation(
            val_source, kind, modalities, classes, device, config.train.batch_size, data.workers
        )
    log.info("training %s/%s (%s fusion of %s) on %d frames of %s (%s) for %s", config.model.arch,
             config.model.trunk, config.model.fusion, "+".join(modalities), len(dataset), data.root, kind,
             f"{config.train.max_steps} steps" if config.train.max_steps > 0 else f"{config.train.epochs} epochs")
    trainer = Trainer(
        model, dataset, collate_pairs, partial(detection_loss, modalities=tuple(modalities)), config.train, run_dir,
        config, device, evaluate=evaluate, metric=metric, lower_is_better=lower_is_better, workers=data.workers,
    )
    started = time.perf_counter()
    state = trainer.fit(resume=resume)
    return finish_run(run_dir, state, started, device, metric)
