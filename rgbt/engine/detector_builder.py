"""Detectors from configs: the one place a :class:`~rgbt.config.DetectorModelConfig` becomes a model.

:func:`build_detector_from_config` turns the config's values into the plain arguments of
:func:`rgbt.detect.build_fusion_detector` (the modules never see the config);
:func:`load_detector_checkpoint` rebuilds the model a ``rgbt train-detector`` checkpoint holds from the
config stored in it. Training (:mod:`rgbt.engine.detector_training`) builds with the first, inference
(:mod:`rgbt.engine.inference`) loads with the second.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rgbt.config import DetectorConfig, DetectorModelConfig
from rgbt.detect import build_fusion_detector
from rgbt.engine.checkpoint import load_checkpoint
from rgbt.engine.run import stored_config

log = logging.getLogger(__name__)


def build_detector_from_config(
    model_cfg: DetectorModelConfig, modalities: Sequence[str], num_classes: int, *, load_weights: bool = True
) -> nn.Module:
    """Build the detector a config describes (the same architecture every time for the same values).

    Args:
        model_cfg: architecture settings (read here; the modules only see plain values).
        modalities: input modalities in stacking order, e.g. ``['rgb', 'thermal']``.
        num_classes: classes including the background slot (``len(classes) + 1``).
        load_weights: read the local trunk weight files of ``model_cfg.weights`` and the warm-start
            checkpoints of ``model_cfg.init_from`` (:func:`warm_start`); false when a checkpoint's
            state dict is loaded next anyway (the files may be gone by then).

    Raises:
        ValueError: inconsistent sizes or an unknown arch, trunk, fusion or norm; a warm-start
            checkpoint that matches nothing.
    """
    if model_cfg.min_size > model_cfg.max_size:
        raise ValueError(f"model.min_size ({model_cfg.min_size}) must not exceed model.max_size ({model_cfg.max_size})")
    model = build_fusion_detector(
        model_cfg.arch,
        model_cfg.trunk,
        tuple(modalities),
        model_cfg.fusion,
        num_classes,
        fpn_channels=model_cfg.fpn_channels,
        trainable_layers=model_cfg.trainable_layers,
        weights=dict(model_cfg.weights) if load_weights and model_cfg.weights else None,
        width_mult=model_cfg.width_mult,
        norm=model_cfg.norm,
        image_size=(model_cfg.min_size, model_cfg.max_size),
        image_mean=list(model_cfg.image_mean) or None,
        image_std=list(model_cfg.image_std) or None,
        anchor_sizes=list(model_cfg.anchor_sizes),
        aspect_ratios=tuple(model_cfg.aspect_ratios),
        score_thresh=model_cfg.score_thresh,
        detections_per_img=model_cfg.detections_per_img,
        representation_size=model_cfg.representation_size,
        align=model_cfg.align,
        align_loss_weight=model_cfg.align_loss_weight,
        align_max_offset=model_cfg.align_max_offset,
        align_prior=model_cfg.align_prior,
        **_faster_rcnn_options(model_cfg),
    )
    if model_cfg.fusion_init:
        start_fusion_as(model, model_cfg.fusion_init)
    if load_weights and model_cfg.init_from:
        warm_start(model, model_cfg.init_from)
    return in_fast_layout(model)


def in_fast_layout(model: nn.Module) -> nn.Module:
    """``model`` with channels-last (NHWC) convolution weights, the layout every rgbt detector runs in.

    Channels-last weights make the convolutions (and the stem's max pooling) run in NHWC, oneDNN's and
    cuDNN's fast layout: a training step of the demo's detector on 2 CPU cores takes ~10-15 % less time
    (0.44 s against 0.52 s, median, same process). Inputs stay NCHW (the first convolution converts).
    Benchmarks call this too, so they time the layout users get.
    """
    return model.to(memory_format=torch.channels_last)


def start_fusion_as(model: nn.Module, modality: str) -> None:
    """Make every fusion module of a halfway (``concat``) detector pass ``modality``'s features
    through unchanged: with that modality's trunk, pyramid and heads from a trained detector
    (``model.init_from``), the fusion detector starts as exactly that detector, and training
    learns what the other modality adds.

    Raises:
        ValueError: a model without such fusion modules, or a modality it does not read.
    """
    backbone = getattr(model, "backbone", None)
    fusions = list(getattr(backbone, "fusions", []))
    names = list(getattr(backbone, "trunks", {}))
    if not fusions or not all(hasattr(f, "pass_through") for f in fusions):
        raise ValueError(f"model.fusion_init={modality!r} needs halfway concat fusion over several trunks "
                         f"(this model: {getattr(backbone, 'fusion', type(model).__name__)})")
    if modality not in names:
        raise ValueError(f"model.fusion_init={modality!r}: the model's streams are {', '.join(names)}")
    for fusion in fusions:
        fusion.pass_through(names.index(modality))


def warm_start(model: nn.Module, checkpoints: Sequence[str | os.PathLike[str]]) -> list[int]:
    """Initialise ``model`` from trained rgbt detectors: every tensor of a checkpoint whose name and
    shape match one of the model's is copied (later checkpoints win where several match).

    A fusion detector started from a thermal-only and an RGB-only detector gets each trunk from
    the detector that trained it (trunks are named by modality, ``backbone.trunks.thermal...``),
    and pyramid and heads from the last checkpoint; its fusion modules start fresh. A model may
    name more matches of its own (``model.warm_start_aliases(state)``: its name -> tensor; the
    region-level RFA detector takes the RGB detector's pyramid for its RGB stream so).

    Returns:
        the number of tensors taken from each checkpoint.

    Raises:
        FileNotFoundError: a missing checkpoint; ValueError: an unreadable one, or one whose tensors
            match none of the model's (another architecture or width).
    """
    own = model.state_dict()
    counts = []
    for path in checkpoints:
        state = load_checkpoint(path).get("model", {})
        aliases = model.warm_start_aliases(state) if hasattr(model, "warm_start_aliases") else {}
        matched = {k: v for k, v in {**state, **aliases}.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
        if not matched:
            raise ValueError(f"model.init_from: {path}: none of its {len(state)} tensors matches this detector's "
                             "names and shapes (another architecture, trunk or width?)")
        own.update(matched)
        counts.append(len(matched))
        log.info("warm start: %d of the model's %d tensors from %s", len(matched), len(own), path)
    model.load_state_dict(own)
    return counts


def _faster_rcnn_options(model_cfg: DetectorModelConfig) -> dict[str, Any]:
    """Sampling and proposal sizes: only Faster R-CNN (also inside late fusion) has them."""
    if model_cfg.arch != "fasterrcnn":
        return {}
    if len(model_cfg.proposals) != 2:
        raise ValueError(f"model.proposals must be [training, testing], got {model_cfg.proposals}")
    return {
        "rpn_batch_size_per_image": model_cfg.rpn_batch_size,
        "box_batch_size_per_image": model_cfg.roi_batch_size,
        "proposals": (int(model_cfg.proposals[0]), int(model_cfg.proposals[1])),
    }


def load_detector_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, DetectorConfig, dict[str, Any]]:
    """The model of a ``rgbt train-detector`` checkpoint (``last.pt`` / ``best.pt``), on the CPU.

    The checkpoint's stored config gives the architecture, modalities and classes (model label ``k``
    is ``config.data.classes[k - 1]``); trunk weight files named in it are not read again (the
    checkpoint holds every weight).

    Returns:
        ``(model, config, state)``: the model with the checkpoint's weights (train mode, as built),
        the config it was trained with and the whole checkpoint dict (``step``, ``epoch``, ...).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a detector checkpoint (no config or model weights; a translator checkpoint
            is named as one), or weights that do not fit the architecture of its config.
    """
    path = Path(path)
    state = load_checkpoint(path, map_location="cpu")
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise ValueError(f"{path}: not a detector checkpoint written by `rgbt train-detector` (no config/model)")
    config = stored_config(DetectorConfig, path, state)
    model = build_detector_from_config(
        config.model, list(config.data.modalities), len(config.data.classes) + 1, load_weights=False
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the model of its config ({err})") from None
    return model, config, state
