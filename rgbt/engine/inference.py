"""Detector inference: a trained checkpoint as a callable over :class:`~rgbt.data.sample.PairSample` lists.

:func:`load_detector` rebuilds the model a checkpoint was trained with (its stored config fixes the
architecture, modalities and classes) and wraps it in a :class:`FusionDetector`:

* ``detector(samples)`` is the interface of the misalignment harness and of every miss-rate user:
  one ``(M, 5)`` float64 array ``[x1, y1, x2, y2, score]`` per sample, in thermal-frame pixels,
  holding the ``person`` detections (every class when the model has no ``person`` class);
* ``detector.predict(samples)`` gives every class: ``(M, 6)`` ``[x1, y1, x2, y2, score, label]``
  with ``label`` the 1-based index into ``detector.classes`` (what COCO AP evaluation reads).

Stream reuse: when several samples of one call share a modality's image (the same array object, as
the perturbed copies of one frame made by :func:`~rgbt.data.perturbation.apply_perturbation` share
the modalities they leave alone) and the model runs that modality in its own trunk up to the fusion
(:attr:`~rgbt.detect.backbone.MultiStreamBackbone.separable_streams`: ``concat``, ``sum``, ``gate``
fusion), that trunk runs once for the shared image and its features go to every sample
(:meth:`~rgbt.detect.backbone.MultiStreamBackbone.reusing`). The results equal a run without reuse
to float tolerance. Early fusion mixes the modalities in its first convolution and late fusion is
not a :class:`~rgbt.detect.backbone.MultiStreamBackbone` model: both run every sample in full.

:func:`detect_source` is the one loop running detectors over a whole frame source in batches,
optionally through perturbations (misalignment), with a progress bar: ``rgbt detect``, training's
validation, :func:`evaluate_detector` (the KAIST miss rate) and the misalignment sweep
(:func:`rgbt.engine.misalign.run_sweep`) all go through it. :func:`write_detections` is ``rgbt detect``:
a checkpoint over a dataset into a KAIST txt or COCO json results file.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from rgbt.atomic import file_sha256
from rgbt.config import DetectorConfig
from rgbt.data.dataset import image_to_tensor, stack_modalities
from rgbt.data.perturbation import Perturbation, apply_perturbation
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source
from rgbt.detect.backbone import MultiStreamBackbone
from rgbt.engine.detector_builder import load_detector_checkpoint
from rgbt.engine.loader import ReportingDataLoader
from rgbt.engine.run import resolve_device
from rgbt.evaluation.detections import write_aggregated_txt, write_coco_results
from rgbt.evaluation.missrate import MissRateCurve, MissRateSetup

log = logging.getLogger(__name__)

#: ``detect(samples) -> per-sample (M, 5) [x1, y1, x2, y2, score]`` (or ``(M, 6)`` with a label column).
DetectFn = Callable[[list[PairSample]], list[np.ndarray]]


def samples_to_inputs(samples: Sequence[PairSample], modalities: Sequence[str]) -> list[torch.Tensor]:
    """The detector input of each sample: modalities stacked along the channels, float32 in [0, 1].

    Returns:
        one ``(C, H, W)`` tensor per sample (``rgb`` + ``thermal``: ``C = 4``, channels ``[r, g, b, t]``).

    Raises:
        ValueError: a sample lacks one of ``modalities`` (the message names the frame).
    """
    inputs = []
    for sample in samples:
        images = {}
        for modality in modalities:
            image = sample.image(modality)
            if image is None:
                raise ValueError(
                    f"frame {sample.frame_id or '<unnamed>'}: the detector needs {modality!r}, which is missing "
                    f"(paths: {sample.meta.get('paths', {})})"
                )
            images[modality] = image_to_tensor(image)
        inputs.append(stack_modalities(images, modalities))
    return inputs


class FusionDetector:
    """A detection model as a callable over samples (see the module docstring).

    Args:
        model: an :mod:`rgbt.detect` detector (moved to ``device``, put in eval mode).
        modalities: the model's input modalities in stacking order.
        classes: class names; model label ``k`` is ``classes[k - 1]``.
        device: where the model runs.
        batch_size: samples per forward pass.
        output_classes: class names ``__call__`` returns; ``None``: ``('person',)`` when the model
            has that class (the miss rate scores persons), else every class.
        config: the training config of the model, when known (``load_detector`` sets it).
        fingerprint: what identifies the model, when known: ``load_detector`` sets
            ``sha256:<checkpoint file hash>``; the misalignment sweep keys its rows on it.
        reuse_streams: compute a stream's trunk once for an image several samples share (see the
            module docstring); ``False`` runs every sample from scratch (for timing and checks).
    """

    def __init__(
        self,
        model: nn.Module,
        modalities: Sequence[str],
        classes: Sequence[str],
        device: torch.device,
        batch_size: int = 8,
        output_classes: Sequence[str] | None = None,
        config: DetectorConfig | None = None,
        fingerprint: str | None = None,
        reuse_streams: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device).eval()
        self.modalities = tuple(modalities)
        self.classes = tuple(classes)
        self.device = device
        self.batch_size = batch_size
        self.config = config
        self.fingerprint = fingerprint
        self.reuse_streams = reuse_streams
        if output_classes is None:
            output_classes = ("person",) if "person" in self.classes else self.classes
        unknown = [c for c in output_classes if c not in self.classes]
        if unknown:
            raise ValueError(f"output class {unknown[0]!r} is not a class of the model {list(self.classes)}")
        self.output_labels = np.array([self.classes.index(c) + 1 for c in output_classes], dtype=np.float64)

    def __repr__(self) -> str:
        return f"FusionDetector(modalities={list(self.modalities)}, classes={list(self.classes)}, device={self.device})"

    @property
    def reusable_streams(self) -> tuple[str, ...]:
        """The modalities whose trunk features this detector reuses across samples sharing an image
        (empty when :attr:`reuse_streams` is off or the model has no separate streams)."""
        backbone = getattr(self.model, "backbone", None)
        if not self.reuse_streams or not isinstance(backbone, MultiStreamBackbone):
            return ()
        if not hasattr(self.model, "transform"):
            return ()
        return backbone.separable_streams

    @torch.no_grad()
    def predict(self, samples: Sequence[PairSample]) -> list[np.ndarray]:
        """Every class: per sample an ``(M, 6)`` float64 ``[x1, y1, x2, y2, score, label]`` array,
        thermal-frame pixels, ``label`` 1-based into :attr:`classes`, scores descending per class."""
        was_training = self.model.training
        self.model.eval()
        out: list[np.ndarray] = []
        reuse = _StreamReuse(self.model, samples, self.reusable_streams)
        try:
            for start in range(0, len(samples), self.batch_size):
                chunk = samples[start : start + self.batch_size]
                images = [image.to(self.device) for image in samples_to_inputs(chunk, self.modalities)]
                with reuse.streams(start, images):
                    results = self.model(images)
                for result in results:
                    rows = torch.cat(
                        [result["boxes"], result["scores"][:, None], result["labels"][:, None].to(result["boxes"])],
                        dim=1,
                    )
                    out.append(rows.double().cpu().numpy().reshape(-1, 6))
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, samples: list[PairSample]) -> list[np.ndarray]:
        """Per sample an ``(M, 5)`` float64 ``[x1, y1, x2, y2, score]`` array of :attr:`output_labels`."""
        return [rows[np.isin(rows[:, 5], self.output_labels), :5] for rows in self.predict(samples)]


class _StreamReuse:
    """Stream features of the images several samples of one :meth:`FusionDetector.predict` call share.

    ``streams(start, images)`` is the context for the chunk ``samples[start:start + len(images)]``:
    for each reusable modality whose image every sample of the chunk shares with another sample of
    the call, the chunk's forward takes features computed once per shared image (kept until the
    last sample that uses it). A modality is reused for a whole chunk or not at all (a sweep pass
    perturbs one modality at every point, so its chunks are all-shared), and a chunk whose images
    differ in size runs in full (the detector's transform would pad the batch differently).
    """

    def __init__(self, model: nn.Module, samples: Sequence[PairSample], modalities: Sequence[str]) -> None:
        self.model = model
        self.samples = samples
        self.features: dict[tuple[str, int], list[torch.Tensor]] = {}
        # (modality, id of the image array) -> position of the last sample showing it, for images
        # shown by two samples or more. The samples hold the arrays, so the ids stay theirs.
        self.last: dict[tuple[str, int], int] = {}
        for modality in modalities:
            count: dict[int, int] = {}
            for position, sample in enumerate(samples):
                image = sample.image(modality)
                if image is not None:
                    count[id(image)] = count.get(id(image), 0) + 1
                    self.last[(modality, id(image))] = position
            self.last = {key: pos for key, pos in self.last.items() if key[0] != modality or count[key[1]] > 1}
        self.modalities = tuple(modalities)

    @contextmanager
    def streams(self, start: int, images: list[torch.Tensor]) -> Iterator[None]:
        positions = range(start, start + len(images))
        given: dict[str, list[torch.Tensor]] = {}
        if self.last and len({tuple(image.shape) for image in images}) == 1:
            for modality in self.modalities:
                keys = [(modality, id(self.samples[p].image(modality))) for p in positions]
                if all(key in self.last for key in keys):
                    given[modality] = self._gathered(keys, images)
        if not given:
            yield
            return
        with self.model.backbone.reusing(given):
            yield
        for key in [key for key, last in self.last.items() if last < positions.stop and key in self.features]:
            del self.features[key]

    def _gathered(self, keys: list[tuple[str, int]], images: list[torch.Tensor]) -> list[torch.Tensor]:
        for key, image in zip(keys, images):
            if key not in self.features:
                batch = self.model.transform([image])[0].tensors
                self.features[key] = self.model.backbone.stream_features(batch, key[0])
        if len(set(keys)) == 1:
            return self.features[keys[0]]
        return [torch.cat(levels) for levels in zip(*(self.features[key] for key in keys))]


def load_detector(
    path: str | os.PathLike[str],
    device: str | torch.device = "auto",
    batch_size: int = 8,
    output_classes: Sequence[str] | None = None,
    reuse_streams: bool = True,
) -> FusionDetector:
    """Rebuild the detector of a ``rgbt train-detector`` checkpoint (``last.pt`` / ``best.pt``).

    The checkpoint's stored config gives the architecture, modalities and classes (see
    :func:`~rgbt.engine.detector_builder.load_detector_checkpoint`).

    Args:
        path: the checkpoint file.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a ``torch.device``.
        batch_size: samples per forward pass.
        output_classes, reuse_streams: see :class:`FusionDetector`.

    Raises:
        FileNotFoundError, ValueError: as :func:`~rgbt.engine.detector_builder.load_detector_checkpoint`
            (no such file, not a detector checkpoint, weights that do not fit its config).
    """
    resolved = device if isinstance(device, torch.device) else resolve_device(str(device))
    # Hashed before loading: the fingerprint describes the bytes the model is built from.
    fingerprint = f"sha256:{file_sha256(path)}" if Path(path).is_file() else None
    model, config, state = load_detector_checkpoint(path)
    modalities, classes = list(config.data.modalities), list(config.data.classes)
    log.info("loaded %s (%s %s, %s fusion, modalities %s, step %s)", Path(path), config.model.arch,
             config.model.trunk, config.model.fusion, modalities, state.get("step"))
    return FusionDetector(model, modalities, classes, resolved, batch_size, output_classes, config, fingerprint,
                          reuse_streams)


class _PerturbedFrames(Dataset):
    """``source[i]`` with perturbations applied in order (a DataLoader decodes in worker processes);
    with ``variants``, the list of its copies under each variant's perturbations (after the common
    ones), all made from one load so they share the images a variant leaves alone; ``transform`` is
    applied to every sample last."""

    def __init__(
        self,
        source: FrameSource,
        perturbations: Sequence[Perturbation],
        variants: Sequence[Sequence[Perturbation]] | None = None,
        transform: Callable[[PairSample], PairSample] | None = None,
    ) -> None:
        self.source = source
        self.perturbations = tuple(perturbations)
        self.variants = None if variants is None else [tuple(v) for v in variants]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> PairSample | list[PairSample]:
        sample = _perturbed(self.source[index], self.perturbations)
        if self.variants is None:
            return self._finished(sample)
        return [self._finished(_perturbed(sample, variant)) for variant in self.variants]

    def _finished(self, sample: PairSample) -> PairSample:
        return sample if self.transform is None else self.transform(sample)


def _perturbed(sample: PairSample, perturbations: Sequence[Perturbation]) -> PairSample:
    for p in perturbations:
        sample = apply_perturbation(sample, p)
    return sample


def _thread_batches(frames: _PerturbedFrames, batch_size: int, workers: int) -> Iterator[list[PairSample]]:
    """``frames`` in batches, the next ``workers`` batches loading in threads while the current one is
    used (``workers <= 0``: each batch loads in the calling thread when it is asked for)."""
    n = len(frames)
    batches = [range(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    def load(indices: range) -> list[PairSample]:
        return [frames[i] for i in indices]

    if workers <= 0:
        for indices in batches:
            yield load(indices)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[list[PairSample]]] = deque()
        upcoming = iter(batches)
        for indices in upcoming:
            pending.append(pool.submit(load, indices))
            if len(pending) >= workers:
                break
        while pending:
            batch = pending.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                pending.append(pool.submit(load, following))
            yield batch


#: What each row of an ``(M, columns)`` result holds, for error messages.
_ROW_LAYOUTS: dict[int, str] = {5: " [x1, y1, x2, y2, score]", 6: " [x1, y1, x2, y2, score, label]"}


def _checked(name: str | None, samples: list[PairSample], output: Any, columns: int | None) -> list[np.ndarray]:
    """The detector's results for ``samples`` as a list, one per sample; with ``columns``, each as a
    float64 ``(M, columns)`` array (an empty result of any shape becomes ``(0, columns)``)."""
    who = "detector" if name is None else f"detector {name!r}"
    try:
        output = list(output)
    except TypeError:
        raise ValueError(f"{who} returned {type(output).__name__}, expected a list of arrays") from None
    if len(output) != len(samples):
        raise ValueError(f"{who} returned {len(output)} results for {len(samples)} samples")
    if columns is None:
        return output
    checked = []
    for sample, dets in zip(samples, output):
        dets = np.asarray(dets, dtype=np.float64)
        if dets.size == 0:
            dets = dets.reshape(0, columns)
        if dets.ndim != 2 or dets.shape[1] != columns:
            raise ValueError(
                f"{who} returned shape {dets.shape} for frame {sample.frame_id!r}; "
                f"expected (M, {columns}){_ROW_LAYOUTS.get(columns, '')}"
            )
        checked.append(dets)
    return checked


def detect_source(
    detector: DetectFn | Mapping[str, DetectFn],
    source: FrameSource,
    perturbation: Perturbation | Sequence[Perturbation] | None = None,
    batch_size: int = 8,
    workers: int = 0,
    progress: bool = True,
    *,
    threads: bool = False,
    columns: int | None = None,
    on_batch: Callable[[list[PairSample]], None] | None = None,
    variants: Sequence[Sequence[Perturbation]] | None = None,
    transform: Callable[[PairSample], PairSample] | None = None,
) -> list[np.ndarray] | dict[str, list[np.ndarray]] | list[list[np.ndarray]] | dict[str, list[list[np.ndarray]]]:
    """Run a detector, or several on the same loaded frames, over every frame of ``source`` in list order.

    Args:
        detector: ``samples -> per-sample arrays`` (a :class:`FusionDetector`, its ``predict`` for
            labelled rows, or any harness detector), or a mapping name -> such detector: every
            batch is then loaded (and perturbed) once and handed to each detector in turn.
        source: the frames.
        perturbation: one perturbation or several applied in order to every frame before
            detection (e.g. ``Perturbation.parse('shift:4,0')`` moves RGB 4 px right); ``None``: none.
        batch_size: frames per detector call.
        workers: worker processes decoding (and perturbing) the next frames through a DataLoader
            (the source is pickled into them); 0 decodes here.
        progress: show a tqdm bar.
        threads: load in this process instead of through a DataLoader: ``workers`` threads each load
            a whole batch ahead (0: the calling thread loads). Nothing is pickled, the workers start
            at once (decoding and warping release the GIL) and the global torch RNG is left alone,
            but the source must tolerate concurrent ``source[i]`` calls.
        columns: check every result: a float64 ``(M, columns)`` array (5: ``[x1, y1, x2, y2, score]``,
            6: with a label column); ``None`` passes results on as the detector returns them.
        on_batch: called with each batch of (perturbed) samples once every detector has seen it
            (with ``variants``: the batch's samples under the first variant).
        variants: several perturbation lists (applied after ``perturbation``): every frame is loaded
            once and each detector gets, per batch, one call with every frame's copies under every
            variant (frame by frame, variants in order), so a :class:`FusionDetector` computes the
            trunk of a modality the variants leave alone once per frame (see the module docstring).
        transform: a per-sample hook ``PairSample -> PairSample`` applied after the perturbations, where
            the frames load (worker processes or threads; picklable for processes), e.g.
            :class:`rgbt.engine.align.RegisteredInput`, which registers the perturbed RGB to thermal.

    Returns:
        one array per frame; for a mapping, name -> one array per frame. With ``variants``, each of
        these is a list over the variants (in order) of one array per frame.

    Raises:
        ValueError: ``batch_size < 1``, a detector returning a wrong number of results, or (with
            ``columns``) a result of another shape; the message names the detector and frame.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if perturbation is None:
        perturbations: tuple[Perturbation, ...] = ()
    elif isinstance(perturbation, Perturbation):
        perturbations = (perturbation,)
    else:
        perturbations = tuple(perturbation)
    single = not isinstance(detector, Mapping)
    detectors: dict[str | None, DetectFn] = {None: detector} if single else dict(detector)
    if variants is not None and len(variants) == 0:
        raise ValueError("variants: give at least one perturbation list (or None)")
    frames = _PerturbedFrames(source, perturbations, variants, transform)
    count = 1 if variants is None else len(variants)
    if threads:
        batches: Iterable[list[PairSample]] = _thread_batches(frames, batch_size, workers)
    else:
        batches = ReportingDataLoader(frames, batch_size=batch_size, num_workers=workers, collate_fn=list)
    results: dict[str | None, list[list[np.ndarray]]] = {name: [[] for _ in range(count)] for name in detectors}
    with tqdm(total=len(source), unit="frame", desc="detect", disable=not progress, leave=False) as bar:
        for loaded in batches:
            # Frame-major: a frame's variants are neighbours, as a detector reusing streams wants them.
            samples = loaded if variants is None else [copy for copies in loaded for copy in copies]
            for name, detect in detectors.items():
                checked = _checked(name, samples, detect(samples), columns)
                for k in range(count):
                    results[name][k].extend(checked[k::count])
            if on_batch is not None:
                on_batch(samples[::count])
            bar.update(len(loaded))
    flat = {name: per[0] if variants is None else per for name, per in results.items()}
    return flat[None] if single else flat


def evaluate_detector(
    detector: DetectFn,
    source: FrameSource,
    setup: str | MissRateSetup = "reasonable",
    batch_size: int = 8,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, MissRateCurve]:
    """KAIST miss rate of ``detector`` on every frame of a KAIST-layout ``source`` (aligned input).

    Runs :func:`detect_source` and scores the detections against ``source.annotations`` with
    :func:`~rgbt.evaluation.missrate.evaluate_periods`; the frame size for the border rule is read
    from the first frame (a KAIST-layout root holds frames of one size).

    Returns:
        ``{'all': curve, 'day': ..., 'night': ...}`` (a period without frames is absent).

    Raises:
        ValueError: an empty source, or what :func:`detect_source` / the evaluator raise.
    """
    from rgbt.evaluation.missrate import evaluate_periods, with_frame_size

    if len(source) == 0:
        raise ValueError(f"{source.root}: no frame to evaluate on")
    records = with_frame_size([source.annotations(i) for i in range(len(source))], source[0].size)
    detections = detect_source(detector, source, batch_size=batch_size, workers=workers, progress=progress)
    return evaluate_periods(records, detections, setup)


#: Result file formats of :func:`write_detections`.
OUTPUT_FORMATS: tuple[str, ...] = ("kaist", "coco")


def write_detections(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    output_format: str | None = None,
    image_set: str | None = None,
    data_format: str = "auto",
    fake_rgb: str | os.PathLike[str] | None = None,
    perturbations: Sequence[Perturbation] = (),
    batch_size: int = 8,
    workers: int = 2,
    device: str = "auto",
    aligned_rgb: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """``rgbt detect``: run a checkpoint over a dataset and write a results file.

    Args:
        checkpoint: a ``rgbt train-detector`` checkpoint.
        data: the dataset root.
        out: the results file.
        output_format: ``kaist``: aggregated txt ``idx,x,y,w,h,score`` (``idx`` 1-based over the
            frame list, the ``person`` detections, see :func:`~rgbt.evaluation.detections.write_aggregated_txt`);
            ``coco``: results json of every class (``image_id`` the 0-based list position,
            ``category_id`` the 1-based class index, see :func:`~rgbt.evaluation.detections.write_coco_results`);
            ``None``: ``coco`` for a ``.json`` suffix, else ``kaist``.
        image_set: the frames (default: the checkpoint's ``data.val_set``).
        data_format: the dataset layout (default: detected).
        fake_rgb: fake-RGB folder for models reading ``fake_rgb`` (default: the checkpoint's
            ``data.fake_rgb_root``).
        perturbations: applied in order to every frame first.
        aligned_rgb: folder written by ``rgbt align --write-aligned``, for models reading ``aligned_rgb``
            (default: the checkpoint's ``data.aligned_rgb_root``).
        batch_size, workers, device: see :func:`detect_source` and :func:`load_detector`.

    Returns:
        ``{'detections': count, 'frames': count, 'format': output_format, 'out': path}``.
    """
    output_format = output_format or ("coco" if Path(out).suffix.lower() == ".json" else "kaist")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"unknown results format {output_format!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
    detector = load_detector(checkpoint, device, batch_size)
    config = detector.config
    fake_rgb = fake_rgb or (config.data.fake_rgb_root if "fake_rgb" in detector.modalities else None) or None
    aligned_rgb = aligned_rgb or (config.data.aligned_rgb_root if "aligned_rgb" in detector.modalities else None)
    source = open_source(data, image_set or config.data.val_set, data_format, list(detector.classes), fake_rgb,
                         aligned_rgb_root=aligned_rgb or None)
    log.info("detecting on %d frames of %s%s", len(source), data,
             f" perturbed by {' + '.join(map(str, perturbations))}" if perturbations else "")
    if output_format == "kaist":
        detections = detect_source(detector, source, perturbations, batch_size, workers)
        write_aggregated_txt(out, detections)
    else:
        detections = detect_source(detector.predict, source, perturbations, batch_size, workers)
        write_coco_results(out, detections, category_id=None)
    count = int(np.sum([len(rows) for rows in detections]))
    return {"detections": count, "frames": len(source), "format": output_format, "out": str(out)}
