"""A torch ``Dataset`` over any frame source: model-ready image tensors and detection targets.

Labels and ignore regions. ``classes`` names the positive classes; an object's label becomes its
1-based index in ``classes``. Objects whose label is not a class (for KAIST with the default
``classes=('person',)``: ``people``, ``person?``, ``cyclist``) keep their box with label ``0`` and
``ignore = True``: they are the benchmark's ignore regions, which a detector should neither learn
as background nor as a positive. ``ignore`` is also true for objects flagged ``ign`` in the
annotation file. Height, occlusion and border rules are left to the detector / evaluator; training
code that wants KAIST's "reasonable" subset passes :func:`kaist_train_ignore` as ``ignore_fn``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from rgbt.data.sample import MODALITIES, PairSample
from rgbt.data.source import FrameSource

#: ``(images, target)``: what :class:`PairDataset` returns for one frame.
Item = tuple[dict[str, torch.Tensor], dict[str, Any]]


def kaist_train_ignore(
    sample: PairSample, min_height: float = 50.0, max_occlusion: int = 1, classes: Sequence[str] = ("person",)
) -> np.ndarray:
    """Ignore mask of KAIST-style training: which objects are ignore regions rather than positives.

    An object is ignored when its label is not in ``classes``, its file ``ign`` flag is set, its
    box is lower than ``min_height`` pixels, or its occlusion level exceeds ``max_occlusion``
    (0 none, 1 partial, 2 heavy). The defaults follow the common KAIST recipe (train on the
    "reasonable" persons, >= 50 px at 640x512, at most partially occluded); scale ``min_height``
    with the frame for other resolutions (a 320x256 synthetic root: 25).

    Returns:
        ``(N,)`` bool.
    """
    heights = sample.boxes[:, 3] - sample.boxes[:, 1]
    not_class = np.array([label not in classes for label in sample.labels], dtype=bool)
    return sample.ignore | not_class | (heights < min_height) | (sample.occlusion > max_occlusion)


def image_to_tensor(image: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` uint8 -> ``(C, H, W)`` tensor (``C = 1`` for 2-D input).

    ``dtype=torch.float32`` gives values in [0, 1]; ``torch.uint8`` keeps 0-255.
    """
    if dtype not in (torch.float32, torch.uint8):
        raise ValueError(f"image dtype must be torch.float32 or torch.uint8, got {dtype}")
    image = image[None] if image.ndim == 2 else np.ascontiguousarray(image.transpose(2, 0, 1))
    if dtype == torch.uint8:
        return torch.from_numpy(np.ascontiguousarray(image))
    # Transposed as uint8 (1 byte per element) before the float conversion, not after; converted
    # in numpy: torch's intra-op threads slow this copy-like work down when the cores are busy
    # (measured 40x on 2 loaded cores), and data loading runs beside training.
    return torch.from_numpy(np.divide(image, np.float32(255.0), dtype=np.float32))


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`image_to_tensor`: float ``(C, H, W)`` in [0, 1] -> uint8 ``(H, W, C)`` on the CPU.

    ``C = 1`` gives ``(H, W)``; a batch ``(B, C, H, W)`` gives ``(B, H, W, C)`` (``(B, H, W)``).
    Values are multiplied by 255, rounded half to even (``torch.round``) and clamped to [0, 255]:
    values outside [0, 1] saturate, and ``tensor_to_image(image_to_tensor(x))`` is ``x`` again.

    Raises:
        ValueError: not a floating-point tensor of 3 or 4 dimensions.
    """
    if tensor.dim() not in (3, 4) or not tensor.is_floating_point():
        raise ValueError(f"expected a float (C, H, W) or (B, C, H, W) tensor, got {tensor.dtype} {tuple(tensor.shape)}")
    image = tensor.mul(255.0).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1)
    return (image[..., 0] if image.shape[-1] == 1 else image).cpu().numpy()


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for item ``index`` of epoch ``epoch`` of a run seeded with ``seed``."""
    words = [int(seed) % 2**63, int(epoch), int(index)]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


def images_to_float(images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """uint8 image tensors (0-255) to float32 in [0, 1]; float tensors pass unchanged.

    For batches from ``PairDataset(image_dtype=torch.uint8)``, best called after moving them to
    the training device.
    """
    return {m: t.float().div_(255.0) if t.dtype == torch.uint8 else t for m, t in images.items()}


class PairDataset(Dataset):
    """Frames of a :class:`~rgbt.data.source.FrameSource` as ``(images, target)`` pairs.

    ``images`` maps each requested modality to a float32 tensor in [0, 1]: ``thermal`` is
    ``(1, H, W)``, ``rgb``, ``fake_rgb`` and ``aligned_rgb`` are ``(3, H, W)``. ``target`` holds

    * ``boxes``: ``(N, 4)`` float32 xyxy in thermal-frame pixels (after augmentation);
    * ``labels``: ``(N,)`` int64, 1-based index into ``classes``, 0 for labels outside ``classes``;
    * ``ignore``: ``(N,)`` bool, label outside ``classes`` or ``ign`` flag or ``ignore_fn``;
    * ``occlusion``: ``(N,)`` int64 (0 none, 1 partial, 2 heavy);
    * ``boxes_rgb``: ``(N, 4)`` float32 RGB-frame boxes, only for paired annotations;
    * ``frame_id`` (str), ``period`` (``day`` / ``night`` / ``unknown``), ``index`` (int, into the
      dataset), ``size`` (``(H, W)``).

    Args:
        source: the frames.
        modalities: images to return, in order (``rgb``, ``thermal``, ``fake_rgb``, ``aligned_rgb``).
        transform: a callable ``PairSample -> PairSample`` (e.g. :class:`rgbt.data.transforms.PairedTransform`),
            applied after unrequested images are dropped.
        classes: positive class names.
        keep_empty: when false, frames without any non-ignored object of ``classes`` are skipped
            (decided from the annotations at construction).
        ignore_fn: optional ``PairSample -> (N,) bool`` of extra ignore regions (e.g.
            :func:`kaist_train_ignore`), applied before ``transform`` so heights refer to the file.
        image_dtype: ``torch.float32`` (the contract: values in [0, 1]) or ``torch.uint8`` (0-255).
            uint8 batches are 4x smaller, and handing a batch from a DataLoader worker to the main
            process costs about 2 ms per MB of fresh shared memory on our (sandboxed) machines:
            ~10 ms of worker time per 640x512 RGB + thermal float32 pair, ~3 ms as uint8. Convert
            uint8 batches on the device with :func:`images_to_float` or :func:`stack_modalities`.

    Raises:
        ValueError: an unknown modality or empty ``modalities`` / ``classes``; in ``__getitem__``, a
            requested modality missing for a frame (the message names the frame).
    """

    def __init__(
        self,
        source: FrameSource,
        modalities: Sequence[str] = ("rgb", "thermal"),
        transform: Callable[[PairSample], PairSample] | None = None,
        classes: Sequence[str] = ("person",),
        keep_empty: bool = True,
        ignore_fn: Callable[[PairSample], np.ndarray] | None = None,
        image_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.modalities = tuple(modalities)
        if not self.modalities:
            raise ValueError("PairDataset needs at least one modality")
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r}; expected some of {MODALITIES}")
        self.classes = tuple(classes)
        if not self.classes:
            raise ValueError("PairDataset needs at least one class")
        self.source = source
        self.transform = transform
        self.ignore_fn = ignore_fn
        if image_dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"image_dtype must be torch.float32 or torch.uint8, got {image_dtype}")
        self.image_dtype = image_dtype
        self.indices = list(range(len(source)))
        if not keep_empty:
            self.indices = [i for i in self.indices if self._has_positive(source.annotations(i))]
        self._configured_pid: int | None = None
        self.epoch: int | None = None
        self.seed = int(getattr(transform, "seed", None) or 0)

    def set_epoch(self, epoch: int) -> None:
        """Draw each item's augmentation from ``(seed, epoch, index)`` from now on.

        With an epoch set, a transform with a ``set_seed(int)`` method (every rgbt transform has
        one) is reseeded before each item, so what item ``index`` looks like in epoch ``epoch``
        depends on nothing else: not the DataLoader worker that loads it, not what was loaded
        before, not whether the run was interrupted and resumed. The trainer calls this before
        every epoch; ``seed`` is the transform's own seed (0 when it has none).
        """
        self.epoch = int(epoch)

    def _ignore_mask(self, sample: PairSample) -> np.ndarray:
        mask = sample.ignore | np.array([label not in self.classes for label in sample.labels], dtype=bool)
        if self.ignore_fn is not None:
            mask = mask | np.asarray(self.ignore_fn(sample), dtype=bool).reshape(-1)
        return mask

    def _has_positive(self, sample: PairSample) -> bool:
        return bool((~self._ignore_mask(sample)).any())

    @property
    def frame_ids(self) -> list[str]:
        """Frame ids of the dataset's items, in order."""
        return [self.source.frame_ids[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Item:
        if self._configured_pid != os.getpid():
            self._configured_pid = os.getpid()
            if get_worker_info() is not None:
                # Worker processes already run in parallel: OpenCV's own thread pool only oversubscribes.
                cv2.setNumThreads(0)
        sample = self.source[self.indices[index]]
        missing = [m for m in self.modalities if sample.image(m) is None]
        if missing:
            raise ValueError(f"frame {sample.frame_id or self.indices[index]}: requested modality {missing[0]!r} "
                             f"is missing (paths: {sample.meta.get('paths', {})})")
        # Unrequested images would only cost augmentation time.
        sample = sample.with_images(**{m: None for m in MODALITIES if m not in self.modalities})
        sample = replace(sample, ignore=self._ignore_mask(sample))
        if self.transform is not None:
            set_seed = getattr(self.transform, "set_seed", None)
            if self.epoch is not None and callable(set_seed):
                set_seed(item_seed(self.seed, self.epoch, index))
            sample = self.transform(sample)
        images = {m: image_to_tensor(sample.image(m), self.image_dtype) for m in self.modalities}
        labels = [self.classes.index(label) + 1 if label in self.classes else 0 for label in sample.labels]
        target: dict[str, Any] = {
            "boxes": torch.from_numpy(np.ascontiguousarray(sample.boxes, dtype=np.float32)),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "ignore": torch.from_numpy(np.ascontiguousarray(sample.ignore, dtype=bool)),
            "occlusion": torch.from_numpy(sample.occlusion.astype(np.int64)),
            "frame_id": sample.frame_id,
            "period": sample.period,
            "index": index,
            "size": tuple(images[self.modalities[0]].shape[-2:]),
        }
        if sample.boxes_rgb is not None:
            target["boxes_rgb"] = torch.from_numpy(np.ascontiguousarray(sample.boxes_rgb, dtype=np.float32))
        return images, target


def collate_pairs(batch: Sequence[Item]) -> tuple[dict[str, torch.Tensor | list[torch.Tensor]], list[dict[str, Any]]]:
    """Batch ``(images, target)`` items for a DataLoader.

    Returns:
        ``images``: modality -> ``(B, C, H, W)`` tensor when every image of that modality has the
        same size, else the list of ``(C, H, W)`` tensors; ``targets``: the list of target dicts.
    """
    if not batch:
        raise ValueError("collate_pairs: empty batch")
    images: dict[str, torch.Tensor | list[torch.Tensor]] = {}
    for modality in batch[0][0]:
        tensors = [item[0][modality] for item in batch]
        if not all(t.shape == tensors[0].shape for t in tensors):
            images[modality] = tensors
        elif all(t.device.type == "cpu" and not t.requires_grad for t in tensors):
            # numpy copy, for the same reason as in image_to_tensor (torch.stack: ~15x slower on busy cores).
            out = torch.empty((len(tensors), *tensors[0].shape), dtype=tensors[0].dtype)
            if get_worker_info() is not None:
                # In a DataLoader worker, stack straight into shared memory (as torch's default_collate
                # does): the batch then crosses to the main process without another copy.
                out.share_memory_()
            np.stack([t.numpy() for t in tensors], out=out.numpy())
            images[modality] = out
        else:
            images[modality] = torch.stack(tensors)
    return images, [item[1] for item in batch]


def stack_modalities(
    images: dict[str, torch.Tensor | list[torch.Tensor]], modalities: Sequence[str]
) -> torch.Tensor | list[torch.Tensor]:
    """Concatenate modalities along the channel axis, in the given order (the detector's input).

    ``rgb`` + ``thermal`` gives channels ``[r, g, b, t]``. Accepts single images ``(C, H, W)``,
    batches ``(B, C, H, W)`` or, for unstackable batches from :func:`collate_pairs`, lists of
    ``(C, H, W)`` tensors (then returns a list). The result is float32 in [0, 1]: uint8 inputs (from
    ``PairDataset(image_dtype=torch.uint8)``) are converted, on whatever device they are.

    Raises:
        ValueError: a modality is absent from ``images`` or the spatial sizes differ.
    """
    if not modalities:
        raise ValueError("stack_modalities: no modality given")
    missing = [m for m in modalities if m not in images]
    if missing:
        raise ValueError(f"stack_modalities: missing modality {missing[0]!r}: not in images (have {sorted(images)})")
    parts = [images[m] for m in modalities]
    if any(isinstance(p, (list, tuple)) for p in parts):
        lists = [list(p) if isinstance(p, (list, tuple)) else list(p.unbind(0)) for p in parts]
        if len({len(p) for p in lists}) != 1:
            raise ValueError(f"stack_modalities: batch sizes differ: {[len(p) for p in lists]}")
        return [_cat(list(group), modalities) for group in zip(*lists)]
    return _cat(parts, modalities)


def _cat(parts: list[torch.Tensor], modalities: Sequence[str]) -> torch.Tensor:
    sizes = [tuple(p.shape[-2:]) for p in parts]
    if len(set(sizes)) != 1 or len({p.dim() for p in parts}) != 1:
        shapes = [tuple(p.shape) for p in parts]
        raise ValueError(f"stack_modalities: {list(modalities)} have different shapes {shapes}")
    if all(p.dtype == torch.uint8 for p in parts):
        return torch.cat(parts, dim=-3).float().div_(255.0)
    return torch.cat([p.float().div(255.0) if p.dtype == torch.uint8 else p for p in parts], dim=-3)
