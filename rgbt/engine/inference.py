"""Detector inference: a trained checkpoint as a callable over :class:`~rgbt.data.sample.PairSample` lists.

:func:`load_detector` rebuilds the model a checkpoint was trained with (its stored config fixes the
architecture, modalities and classes) and wraps it in a :class:`FusionDetector`:

* ``detector(samples)`` is the interface of the misalignment harness and of every miss-rate user:
  one ``(M, 5)`` float64 array ``[x1, y1, x2, y2, score]`` per sample, in thermal-frame pixels,
  holding the ``person`` detections (every class when the model has no ``person`` class);
* ``detector.predict(samples)`` gives every class: ``(M, 6)`` ``[x1, y1, x2, y2, score, label]``
  with ``label`` the 1-based index into ``detector.classes`` (what COCO AP evaluation reads).

:func:`detect_source` runs a detector over a whole frame source in batches, optionally through
perturbations (misalignment), with a progress bar; :func:`evaluate_detector` scores it with the
KAIST miss rate.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from rgbt.config import DetectorConfig
from rgbt.data.dataset import image_to_tensor, stack_modalities
from rgbt.data.misalignment import Perturbation, apply_perturbation
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource
from rgbt.engine.detector_builder import load_detector_checkpoint
from rgbt.engine.run import resolve_device
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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device).eval()
        self.modalities = tuple(modalities)
        self.classes = tuple(classes)
        self.device = device
        self.batch_size = batch_size
        self.config = config
        if output_classes is None:
            output_classes = ("person",) if "person" in self.classes else self.classes
        unknown = [c for c in output_classes if c not in self.classes]
        if unknown:
            raise ValueError(f"output class {unknown[0]!r} is not a class of the model {list(self.classes)}")
        self.output_labels = np.array([self.classes.index(c) + 1 for c in output_classes], dtype=np.float64)

    def __repr__(self) -> str:
        return f"FusionDetector(modalities={list(self.modalities)}, classes={list(self.classes)}, device={self.device})"

    @torch.no_grad()
    def predict(self, samples: Sequence[PairSample]) -> list[np.ndarray]:
        """Every class: per sample an ``(M, 6)`` float64 ``[x1, y1, x2, y2, score, label]`` array,
        thermal-frame pixels, ``label`` 1-based into :attr:`classes`, scores descending per class."""
        was_training = self.model.training
        self.model.eval()
        out: list[np.ndarray] = []
        try:
            for start in range(0, len(samples), self.batch_size):
                batch = samples_to_inputs(samples[start : start + self.batch_size], self.modalities)
                for result in self.model([image.to(self.device) for image in batch]):
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


def load_detector(
    path: str | os.PathLike[str],
    device: str | torch.device = "auto",
    batch_size: int = 8,
    output_classes: Sequence[str] | None = None,
) -> FusionDetector:
    """Rebuild the detector of a ``rgbt train-detector`` checkpoint (``last.pt`` / ``best.pt``).

    The checkpoint's stored config gives the architecture, modalities and classes (see
    :func:`~rgbt.engine.detector_builder.load_detector_checkpoint`).

    Args:
        path: the checkpoint file.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a ``torch.device``.
        batch_size: samples per forward pass.
        output_classes: see :class:`FusionDetector`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a detector checkpoint (no config or model weights), or weights that do not
            fit the architecture of its config.
    """
    model, config, state = load_detector_checkpoint(path)
    modalities, classes = list(config.data.modalities), list(config.data.classes)
    resolved = device if isinstance(device, torch.device) else resolve_device(str(device))
    log.info("loaded %s (%s %s, %s fusion, modalities %s, step %s)", Path(path), config.model.arch,
             config.model.trunk, config.model.fusion, modalities, state.get("step"))
    return FusionDetector(model, modalities, classes, resolved, batch_size, output_classes, config)


class _PerturbedFrames(Dataset):
    """``source[i]`` with perturbations applied in order (a DataLoader decodes in worker processes)."""

    def __init__(self, source: FrameSource, perturbations: Sequence[Perturbation]) -> None:
        self.source = source
        self.perturbations = tuple(perturbations)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> PairSample:
        sample = self.source[index]
        for p in self.perturbations:
            sample = apply_perturbation(sample, p)
        return sample


def detect_source(
    detector: DetectFn,
    source: FrameSource,
    perturbation: Perturbation | Sequence[Perturbation] | None = None,
    batch_size: int = 8,
    workers: int = 0,
    progress: bool = True,
) -> list[np.ndarray]:
    """Run ``detector`` over every frame of ``source`` in list order.

    Args:
        detector: ``samples -> per-sample arrays`` (a :class:`FusionDetector`, its ``predict`` for
            labelled rows, or any harness detector).
        source: the frames.
        perturbation: one perturbation or several applied in order to every frame before
            detection (e.g. ``Perturbation.parse('shift:4,0')`` moves RGB 4 px right); ``None``: none.
        batch_size: frames per detector call.
        workers: DataLoader worker processes decoding (and perturbing) the next frames; 0 decodes here.
        progress: show a tqdm bar.

    Returns:
        one array per frame, as the detector returns it.

    Raises:
        ValueError: ``batch_size < 1``, or a detector returning a wrong number of results.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if perturbation is None:
        perturbations: tuple[Perturbation, ...] = ()
    elif isinstance(perturbation, Perturbation):
        perturbations = (perturbation,)
    else:
        perturbations = tuple(perturbation)
    loader = DataLoader(
        _PerturbedFrames(source, perturbations), batch_size=batch_size, num_workers=workers, collate_fn=list
    )
    results: list[np.ndarray] = []
    with tqdm(total=len(source), unit="frame", desc="detect", disable=not progress, leave=False) as bar:
        for samples in loader:
            output = list(detector(samples))
            if len(output) != len(samples):
                raise ValueError(f"detector returned {len(output)} results for {len(samples)} frames")
            results.extend(output)
            bar.update(len(samples))
    return results


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
