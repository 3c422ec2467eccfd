"""Training a thermal-to-RGB translator: ``rgbt train-translator`` as a library call.

``model.model`` picks the method (:data:`rgbt.engine.translator_builder.TRANSLATORS`): ``flow`` (below)
or ``pix2pixhd`` (:mod:`rgbt.translate.pix2pixhd`: the same frames and crops; the generator
objective LSGAN + feature matching + L1 is logged as ``gan``, ``feat``, ``l1``; its multi-scale
discriminator is the Trainer's ``adversary``, updated before every generator step and logged as
``adversary_loss``, ``d_real``, ``d_fake``; no ActNorm, style bank or bank calibration; validation
scores ``psnr`` / ``ssim`` of its one fixed mapping).

:func:`train_translator` wires the pieces and hands them to the one training loop
(:class:`~rgbt.engine.trainer.Trainer`, which brings AMP, ``torchrun`` DDP, clipping, warm-up,
atomic ``last.pt`` / ``best.pt`` and exact resume):

* frames: ``open_source(data.root, data.train_set, ..., period=data.period)`` (day frames by
  default: night RGB carries little appearance) as a :class:`~rgbt.data.dataset.PairDataset` of
  thermal + RGB, each item a random ``crop`` (same window in both modalities);
* objective (:meth:`FlowTranslator.loss`): the thermal latent moved to the paired RGB latent's
  statistics and decoded, against the real RGB: ``loss.l1`` L1 + ``loss.ssim`` (1 - SSIM, or
  MS-SSIM with ``loss.ms_ssim``) + ``loss.tv`` gradient / 2x2 checkerboard term + ``loss.nll``
  likelihood from the log-determinant; optionally ArtFlow's VGG-19 content / style losses
  (``loss.content``, ``loss.style``) from a local ``loss.vgg_weights`` file. Each component is
  logged under its name in ``log.csv``;
* task-aware term (flow only): with ``loss.detector: W > 0`` the detector of the ``rgbt
  train-detector`` checkpoint ``loss.detector_checkpoint`` (e.g. an RGB-only one) runs, frozen
  (:class:`~rgbt.translate.task_loss.DetectorLoss`: no weight or BatchNorm statistic ever changes),
  on the fake RGB of every training step; its detection loss against the crop's ground-truth boxes
  (thermal-frame boxes moved by the crop; the detector's classes, and on KAIST-layout data its
  ``ignore`` rules, decide positives and ignore regions) is added with weight W and logged as
  ``detector``. ``W = 0`` (default) trains exactly as without it;
* ActNorm layers are initialised once, before the first step, on a mixed thermal + RGB batch;
  the flag is a buffer in the checkpoint, so a resumed run (or ``model.weights``) never redoes it;
* the style bank's day / night latent statistics are updated from every training batch's RGB
  latents (frames of unknown period, FLIR and pairs, count as day) and, once training is over,
  recomputed with the final flow from up to ``bank_frames`` whole RGB frames per period of the
  training list (:func:`calibrate_bank`; night frames included, with no gradient step on them) in
  ``last.pt`` and ``best.pt``;
* validation (every ``train.eval_every`` epochs and at the end): PSNR / SSIM of the translation
  with the frame's own RGB statistics against that RGB on ``val_frames`` day frames of
  ``data.val_set`` (``psnr``, ``ssim``; ``best.pt`` has the highest ``psnr``), and PSNR with the
  bank's day style (``psnr_bank``), what ``rgbt translate`` uses by default.

The run directory receives ``config.yaml``, ``log.txt``, ``log.csv``, ``loss.png``, ``eval.csv``,
``last.pt`` / ``best.pt`` (model, with the config, so :func:`rgbt.engine.translator_builder.load_translator`
rebuilds the translator from the file alone) and ``result.json``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rgbt.config import TranslatorConfig, TranslatorLossConfig
from rgbt.data.dataset import PairDataset, collate_pairs, image_to_tensor, kaist_train_ignore
from rgbt.data.formats import detect_format
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source
from rgbt.data.transforms import random_crop_pair
from rgbt.engine import distributed
from rgbt.engine.checkpoint import load_checkpoint, save_checkpoint
from rgbt.engine.detector_builder import load_detector_checkpoint
from rgbt.engine.detector_training import detection_targets
from rgbt.engine.run import finish_run, prepare_run_dir, resolve_device, seed_everything
from rgbt.engine.trainer import EvalFn, Trainer
from rgbt.engine.translation import read_frame
from rgbt.engine.translator_builder import build_translator_from_config, build_translator_pair
from rgbt.translate.base import ExtraLoss
from rgbt.translate.flow import ActNorm
from rgbt.translate.metrics import psnr, ssim
from rgbt.translate.task_loss import DetectorLoss
from rgbt.translate.transfer import StyleBank, bank_period
from rgbt.translate.translator import FlowTranslator

log = logging.getLogger(__name__)

#: Samples in the mixed batch that initialises ActNorm (thermal and RGB crops of each).
INIT_SAMPLES = 16


class RandomCrop:
    """``PairSample -> PairSample``: the same random ``height x width`` window of every modality.

    In training, :class:`~rgbt.data.dataset.PairDataset` calls :meth:`set_seed` before every item
    with a seed made of ``(seed, epoch, index)``, so the window of an item depends on nothing else
    (not the worker, not an interruption). Until then, windows come from torch's RNG (seeded by
    :func:`~rgbt.engine.run.seed_everything`, reseeded per DataLoader worker by torch).
    """

    def __init__(self, height: int, width: int, seed: int | None = None) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"crop must be two positive sizes (height, width), got {height}, {width}")
        self.height = height
        self.width = width
        self.seed = seed
        self._rng: np.random.Generator | None = None

    def set_seed(self, seed: int) -> None:
        """Draw the next windows from a generator seeded with ``seed``."""
        self._rng = np.random.default_rng(seed)

    def __call__(self, sample: PairSample) -> PairSample:
        rng = self._rng if self._rng is not None else np.random.default_rng(int(torch.randint(0, 2**62, ())))
        return random_crop_pair(sample, self.height, self.width, rng)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _pair_batch(
    batch: tuple[dict[str, Any], list[dict[str, Any]]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    images, _ = batch
    if not isinstance(images["thermal"], torch.Tensor) or not isinstance(images["rgb"], torch.Tensor):
        raise ValueError("translator batches must hold equal-size crops (got a list of differently sized images)")
    return images["thermal"].to(device, non_blocking=True), images["rgb"].to(device, non_blocking=True)


def translator_loss(
    model: nn.Module, batch: tuple[dict[str, Any], list[dict[str, Any]]], device: torch.device,
    extra_loss: ExtraLoss | None = None, adversary: nn.Module | None = None,
    detector: DetectorLoss | None = None,
) -> dict[str, torch.Tensor]:
    """The Trainer's ``compute_loss``: ``{'loss': total, **the translator's named components}``, from the
    training step of :class:`~rgbt.translate.base.Translator` (``forward``).

    For the flow: ``l1``, ``ssim``, ``grad``, ``nll`` [, ``content``, ``style``]; for pix2pixHD:
    ``gan``, ``feat``, ``l1``.

    Args:
        model: a training-mode translator (possibly DDP-wrapped).
        batch: ``(images, targets)`` from :func:`~rgbt.data.dataset.collate_pairs` with ``thermal``
            (B, 1, H, W) and ``rgb`` (B, 3, H, W) crops in [0, 1].
        device: where the model lives.
        extra_loss: optional VGG content / style objective.
        adversary: the discriminator of a GAN translator (called unwrapped: the generator step
            needs no gradient synchronisation of it).
        detector: the frozen detector's term (flow only), scored against the batch's boxes.
    """
    thermal, rgb = _pair_batch(batch, device)
    if detector is not None:
        extra_loss = detector.extra_loss(thermal, detection_targets(batch[1], device), extra_loss)
    translator = _unwrap(model)
    periods: list[str] = [str(t["period"]) for t in batch[1]]
    if isinstance(translator, FlowTranslator):
        periods = [bank_period(translator.bank, period, need_stats=False) for period in periods]
    if adversary is None:
        parts = model(thermal, rgb, periods, extra_loss)
    else:
        parts = model(thermal, rgb, periods, extra_loss, discriminator=_unwrap(adversary))
    total = parts.pop("total")
    return {"loss": total, **parts}


def adversary_loss(
    model: nn.Module, adversary: nn.Module, batch: tuple[dict[str, Any], list[dict[str, Any]]], device: torch.device
) -> dict[str, torch.Tensor]:
    """The Trainer's ``adversary_loss`` for a GAN translator: ``{'loss': total, 'd_real', 'd_fake'}``
    from its ``discriminator_loss(thermal, rgb, discriminator)`` (the fake made without gradient)."""
    thermal, rgb = _pair_batch(batch, device)
    parts = _unwrap(model).discriminator_loss(thermal, rgb, adversary)
    total = parts.pop("total")
    return {"loss": total, **parts}


def _evenly_spaced(n: int, k: int) -> list[int]:
    """``min(n, k)`` indices spread over ``range(n)``, first and last included."""
    if n <= 0 or k <= 0:
        return []
    if k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


@torch.no_grad()
def initialize_actnorm(translator: FlowTranslator, dataset: PairDataset, device: torch.device,
                       samples: int = INIT_SAMPLES) -> int:
    """Data-dependent ActNorm init on a mixed batch of thermal and RGB crops of ``dataset``.

    Returns:
        the number of frames used (spread evenly over the dataset).
    """
    indices = _evenly_spaced(len(dataset), samples)
    items = [dataset[i][0] for i in indices]
    thermal = torch.stack([item["thermal"] for item in items]).to(device)
    rgb = torch.stack([item["rgb"] for item in items]).to(device)
    translator.to(device).initialize(thermal, rgb)
    return len(indices)


def actnorm_initialized(translator: nn.Module) -> bool:
    """Whether every ActNorm layer of ``translator`` carries the ``initialized`` flag."""
    layers = [m for m in translator.modules() if isinstance(m, ActNorm)]
    return bool(layers) and all(bool(m.initialized) for m in layers)


@torch.no_grad()
def calibrate_bank(translator: FlowTranslator, source: FrameSource, frames_per_period: int,
                   device: torch.device) -> dict[str, int]:
    """Set the style bank to the mean latent statistics of up to ``frames_per_period`` full RGB frames
    of each bank period in ``source`` (spread evenly; frames of unknown period count as day).

    The running averages gathered during training mix statistics of crops encoded by many
    successive versions of the flow; inference encodes whole frames with the final one, so the
    bank is recomputed with it. Periods without an RGB frame in ``source`` keep their running
    values (so the night bank of a day-only run is filled from the night frames of the list, with
    no gradient step on them).

    Returns:
        frames used per period.
    """
    bank = translator.bank
    by_period: dict[str, list[int]] = {name: [] for name in bank.periods}
    for index in range(len(source)):
        by_period[bank_period(bank, source.period(index), need_stats=False)].append(index)
    fresh = StyleBank(bank.num_channels, bank.periods, momentum=1.0, eps=bank.eps)
    was_training = translator.training
    translator.eval()
    for name, indices in by_period.items():
        for k in _evenly_spaced(len(indices), frames_per_period):
            rgb = read_frame(source, indices[k])["rgb"]
            if rgb is None:
                continue
            z = translator.flow.encode(image_to_tensor(rgb)[None].to(device))[0]
            # Weight 1/(n+1) for the (n+1)-th frame: a plain average, not an EMA.
            fresh.momentum = 1.0 / (fresh.count(name) + 1)
            fresh.update(z, name)
    translator.train(was_training)
    counts = {name: fresh.count(name) for name in bank.periods}
    state = bank.state_dict()
    fresh_state = fresh.state_dict()
    for name, count in counts.items():
        if count > 0:
            # Buffer names as documented by StyleBank: <period>_{mean,std,cov,count}.
            state.update({key: value for key, value in fresh_state.items() if key.startswith(f"{name}_")})
    bank.load_state_dict(state)
    return counts


def _calibrate_checkpoint(path: Path, config: TranslatorConfig, source: FrameSource, device: torch.device) -> None:
    """:func:`calibrate_bank` applied to the translator stored in a checkpoint file (rewritten atomically)."""
    state = load_checkpoint(path, map_location="cpu")
    translator = build_translator_from_config(config.model, config.loss)
    translator.load_state_dict(state["model"])
    calibrate_bank(translator.to(device), source, config.bank_frames, device)
    state["model"] = {k: v.cpu() for k, v in translator.state_dict().items()}
    save_checkpoint(path, state)


def build_validation(source: FrameSource, frames: int, device: torch.device) -> tuple[EvalFn, int]:
    """Periodic validation on up to ``frames`` frames of ``source`` that have both images.

    ``evaluate(model)`` returns ``psnr`` (dB) and ``ssim`` of the translation with each frame's own
    RGB latent statistics (translators without a style input: their one mapping) against that RGB
    frame, and ``psnr_bank`` with the bank's day style
    (``nan`` before the bank has statistics). Frames are decoded once and kept in memory.

    Returns:
        ``(evaluate, number of frames used)``.
    """
    pairs = []
    for index in _evenly_spaced(len(source), frames):
        sample = source[index]
        if sample.rgb is None or sample.thermal is None or sample.rgb.shape[:2] != sample.thermal.shape:
            continue
        pairs.append((image_to_tensor(sample.thermal)[None], image_to_tensor(sample.rgb)[None]))

    def evaluate(model: nn.Module) -> dict[str, float]:
        translator = _unwrap(model)
        scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_bank": []}
        styled = isinstance(translator, FlowTranslator)
        has_bank = styled and "day" in translator.bank.periods and translator.bank.count("day") > 0
        with torch.inference_mode():
            for thermal, rgb in pairs:
                thermal, rgb = thermal.to(device), rgb.to(device)
                # Methods without a style input have one mapping: what `rgbt translate` writes.
                fake = translator.translate(thermal, style=rgb) if styled else translator.translate(thermal)
                scores["psnr"].append(float(psnr(fake, rgb)[0]))
                scores["ssim"].append(float(ssim(fake, rgb)[0]))
                if has_bank:
                    fake = translator.translate(thermal, period="day")
                    scores["psnr_bank"].append(float(psnr(fake, rgb)[0]))
        return {name: float(np.mean(values)) if values else math.nan for name, values in scores.items()}

    return evaluate, len(pairs)


def load_detector_loss(loss_cfg: TranslatorLossConfig, device: torch.device,
                       frame_size: tuple[int, int] | None = None) -> tuple[DetectorLoss, Any]:
    """The frozen detector of ``loss.detector_checkpoint`` as a :class:`DetectorLoss` of weight
    ``loss.detector``, on ``device``, with the detector's config (classes, ignore rules).
    ``frame_size``: ``(height, width)`` of the training frames, so crops are seen at the frames'
    scale (:class:`~rgbt.translate.task_loss.DetectorLoss`).

    Raises:
        ValueError: no checkpoint named, or not a detector checkpoint.
        FileNotFoundError: the checkpoint does not exist.
    """
    path = loss_cfg.detector_checkpoint
    if not path:
        raise ValueError(f"loss.detector is {loss_cfg.detector} but loss.detector_checkpoint is empty: name the frozen "
                         "detector (a `rgbt train-detector` RUN/best.pt)")
    if not Path(path).is_file():
        raise FileNotFoundError(f"loss.detector_checkpoint: no such file: {path}")
    try:
        detector, det_config, _state = load_detector_checkpoint(path)
        term = DetectorLoss(detector.to(device), det_config.data.modalities, loss_cfg.detector, frame_size)
    except ValueError as err:
        raise ValueError(f"loss.detector_checkpoint {path}: {err}") from None
    return term, det_config


def _check_crop(crop: Sequence[int], use_ms_ssim: bool) -> tuple[int, int]:
    if len(crop) != 2 or any(not isinstance(v, int) or v < 1 for v in crop):
        raise ValueError(f"crop must be [height, width] with positive ints, got {list(crop)}")
    if use_ms_ssim and min(crop) <= 160:
        raise ValueError(f"loss.ms_ssim needs crops larger than 160 px on both sides (5 scales), got crop {list(crop)}")
    return int(crop[0]), int(crop[1])


def _load_start_weights(translator: nn.Module, path: str) -> None:
    state = load_checkpoint(path)
    weights = state["model"] if isinstance(state, dict) and "model" in state else state
    # A translator may accept more than its own state dict (pix2pixHD with local enhancers starts
    # from a global-only generator: the paper's coarse-to-fine schedule).
    load = getattr(translator, "load_start_weights", None)
    try:
        if load is not None:
            load(weights)
        else:
            translator.load_state_dict(weights)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"model.weights {path}: does not fit this translator ({err})") from None


def train_translator(config: TranslatorConfig, out: str | os.PathLike[str], resume: bool = False) -> dict[str, Any]:
    """Train the translator ``config.model.model`` names; see the module docstring for what goes where.

    Under ``torchrun`` every process calls this; rank 0 writes the run directory. ``resume=True``
    continues from ``out/last.pt`` and starts a new run when there is none.

    Returns:
        the content of ``result.json``: ``steps``, ``epochs``, ``seconds`` (this call), ``metric``
        and ``best`` (the ``psnr`` that selected ``best.pt``), ``final`` (the last evaluation),
        ``first_log`` / ``last_log`` (``log.csv`` rows), ``bank_counts`` (samples behind each
        style-bank period), ``bank_frames`` (frames per period of the final calibration),
        ``checkpoints``, ``device``, ``world_size``.

    Raises:
        ValueError: no dataset root, an empty training set, a crop larger than the frames, a bad
            config value, or VGG losses without ``loss.vgg_weights``.
        FileNotFoundError: missing dataset files or weight files.
    """
    data = config.data
    if not data.root:
        raise ValueError("no dataset root: set data.root in the config or pass --data ROOT")
    crop_h, crop_w = _check_crop(config.crop, config.loss.ms_ssim)
    if config.val_frames < 0 or config.bank_frames < 0:
        raise ValueError(f"val_frames and bank_frames must be >= 0, got {config.val_frames}, {config.bank_frames}")
    main = distributed.is_main_process()
    run_dir = prepare_run_dir(out) if main else Path(out)
    seed_everything(config.train.seed)
    device = resolve_device(config.train.device)
    kind = detect_format(data.root) if data.format == "auto" else data.format

    source = open_source(data.root, data.train_set, kind, None, None, data.period)
    detector: DetectorLoss | None = None
    if config.loss.detector < 0:
        raise ValueError(f"loss.detector must be >= 0, got {config.loss.detector}")
    if config.loss.detector > 0:
        if config.model.model != "flow":
            raise ValueError(f"loss.detector trains the flow translator against a frozen detector; model.model is "
                             f"{config.model.model!r}")
        # Crops are seen at the scale of the training frames (the first frame's size).
        detector, det_config = load_detector_loss(config.loss, device, source[0].size if len(source) else None)
    elif config.loss.detector_checkpoint:
        log.warning("loss.detector_checkpoint is set but loss.detector is 0: the detector term is off")

    crop = RandomCrop(crop_h, crop_w, seed=config.train.seed)
    if detector is None:
        dataset = PairDataset(source, ("thermal", "rgb"), crop)
    else:
        # The detector's positives and ignore regions, as in its own training.
        ignore = det_config.ignore
        ignore_fn = (partial(kaist_train_ignore, min_height=ignore.min_height, max_occlusion=ignore.max_occlusion,
                             classes=tuple(det_config.data.classes)) if kind == "kaist" else None)
        dataset = PairDataset(source, ("thermal", "rgb"), crop, classes=det_config.data.classes, ignore_fn=ignore_fn)
    if len(dataset) == 0:
        raise ValueError(f"no training frames in {data.root} (train_set={data.train_set!r}, period={data.period!r})")
    translator, adversary = build_translator_pair(config.model, config.loss, seed=config.train.seed)
    flow = isinstance(translator, FlowTranslator)
    if config.model.weights:
        _load_start_weights(translator, config.model.weights)

    extra_loss: ExtraLoss | None = None
    if config.loss.content > 0 or config.loss.style > 0:
        # Imported here: torchvision takes seconds to import and the default objective does not need it.
        from rgbt.translate.perceptual import PerceptualLoss, load_vgg_encoder

        encoder = load_vgg_encoder(config.loss.vgg_weights, device)
        extra_loss = PerceptualLoss(encoder, config.loss.content, config.loss.style)
    elif config.loss.vgg_weights:
        log.warning("loss.vgg_weights is set but loss.content and loss.style are 0: the VGG losses are off")

    resuming = resume and (run_dir / "last.pt").is_file()
    if flow and not resuming and not actnorm_initialized(translator):
        used = initialize_actnorm(translator, dataset, device)
        log.info("ActNorm initialised on a mixed batch of %d thermal + %d RGB crops", used, used)

    evaluate, metric = None, None
    if config.train.eval_every > 0 and config.val_frames > 0 and main:
        val_source = open_source(data.root, data.val_set, kind, None, None, "day")
        evaluate, used = build_validation(val_source, config.val_frames, device)
        if used:
            metric = "psnr"
        else:
            log.warning("no validation frame of %s has paired RGB: best.pt is not kept", data.val_set)
            evaluate = None
    log.info("training the %s translator (%.2f M parameters%s) on %d %s frames of %s (%s), crops %dx%d, for %s",
             config.model.model, sum(p.numel() for p in translator.parameters()) / 1e6,
             f", discriminator {sum(p.numel() for p in adversary.parameters()) / 1e6:.2f} M" if adversary else "",
             len(dataset), data.period, data.root, kind, crop_w, crop_h,
             f"{config.train.max_steps} steps" if config.train.max_steps > 0 else f"{config.train.epochs} epochs")
    trainer = Trainer(
        translator, dataset, collate_pairs,
        partial(translator_loss, extra_loss=extra_loss, adversary=adversary, detector=detector),
        config.train, run_dir, config, device, evaluate=evaluate, metric=metric, lower_is_better=False,
        workers=data.workers, adversary=adversary, adversary_loss=adversary_loss if adversary is not None else None,
    )
    started = time.perf_counter()
    state = trainer.fit(resume=resume)
    calibrated: dict[str, int] = {}
    if main and flow and config.bank_frames > 0:
        bank_source = open_source(data.root, data.train_set, kind, None, None, "all")
        calibrated = calibrate_bank(translator, bank_source, config.bank_frames, device)
        trainer.save()
        if (run_dir / "best.pt").is_file():
            _calibrate_checkpoint(run_dir / "best.pt", config, bank_source, device)
        log.info("style bank set from %s RGB frames of %s", calibrated, data.train_set)
    bank_counts = {p: translator.bank.count(p) for p in translator.bank.periods} if flow else {}
    return finish_run(run_dir, state, started, device, metric, bank_counts=bank_counts, bank_frames=calibrated)
