"""A user's own RGB-thermal pairs (or frames extracted from two videos) as a frame source.

Layout::

    ROOT/visible/<stem>.<ext>      RGB frames
    ROOT/lwir/<stem>.<ext>         thermal frames (the reference: annotations are in its pixels);
                                   ROOT/thermal/ is read the same way (RoadScene's layout)
    ROOT/annotations.json          optional COCO detection file; images matched by file stem

``<ext>`` is any of jpg, jpeg, png, bmp, tif, tiff (any case); the two modalities of a frame
share the stem and may differ in extension. A stem present in only one folder is kept with the
other modality ``None`` (logged when the source is opened).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rgbt.data.coco_json import read_coco_annotations
from rgbt.data.errors import DataFormatError
from rgbt.data.imageio import fake_rgb_path, is_image_file, read_fake_rgb, read_image, stem_candidates
from rgbt.data.labels import LabelledObject
from rgbt.data.sample import PairSample, empty_boxes

log = logging.getLogger(__name__)

#: Modality -> folder under the root.
PAIR_FOLDERS: dict[str, str] = {"rgb": "visible", "thermal": "lwir"}
#: Other names of the thermal folder, read when ``lwir/`` is absent (RoadScene stores ``thermal/``).
THERMAL_FOLDER_ALIASES: tuple[str, ...] = ("thermal",)


def thermal_folder(root: str | os.PathLike[str]) -> Path:
    """The thermal folder of a pairs root: ``lwir/``, else ``thermal/`` (``lwir/`` when neither exists).

    Raises:
        DataFormatError: both ``lwir/`` and ``thermal/`` exist: which one holds the frames is ambiguous.
    """
    root = Path(root)
    present = [name for name in (PAIR_FOLDERS["thermal"], *THERMAL_FOLDER_ALIASES) if (root / name).is_dir()]
    if len(present) > 1:
        raise DataFormatError(root, None, f"both {present[0]}/ and {present[1]}/ exist; keep the thermal frames in one")
    return root / (present[0] if present else PAIR_FOLDERS["thermal"])

#: Name of the optional annotation file at the root.
ANNOTATION_FILE = "annotations.json"


def list_images(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Image files directly in ``folder`` by stem (empty when the folder is missing).

    Raises:
        DataFormatError: two files share a stem (``a.jpg`` and ``a.png``): the pair would be ambiguous.
    """
    folder = Path(folder)
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not is_image_file(path):
            continue
        if path.stem in out:
            raise DataFormatError(path, None, f"stem {path.stem!r} is also used by {out[path.stem].name}")
        out[path.stem] = path
    return out


class PairsSource:
    """A folder of ``visible/`` + ``lwir/`` (or ``thermal/``) pairs as a :class:`~rgbt.data.source.FrameSource`.

    ``source[i]`` holds ``rgb`` ``(H, W, 3)`` uint8 RGB and ``thermal`` ``(H', W')`` uint8 (either
    ``None`` when its file is absent), and the frame's objects from ``annotations.json`` as
    ``xyxy`` float32 thermal-frame boxes labelled by category name (no objects without the file).
    Images of one pair may differ in size (unregistered cameras); that is logged once.

    Attributes:
        only_rgb, only_thermal: stems present in one folder only.
        categories: the canonical category names of ``annotations.json`` (empty without it).
        unmatched_annotations: ``annotations.json`` image names with no file in either folder.
    """

    name = "pairs"

    def __init__(self, root: str | os.PathLike[str], fake_rgb_root: str | os.PathLike[str] | None = None,
                 aligned_rgb_root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"pairs root not found: {self.root}")
        self.thermal_folder = thermal_folder(self.root)
        self.files = {"rgb": list_images(self.root / PAIR_FOLDERS["rgb"]), "thermal": list_images(self.thermal_folder)}
        if not any(self.files.values()):
            raise FileNotFoundError(f"{self.root}: no images in visible/ or lwir/ (or thermal/)")
        stems = set(self.files["rgb"]) | set(self.files["thermal"])
        self.frame_ids: list[str] = sorted(stems)
        self.only_rgb = sorted(set(self.files["rgb"]) - set(self.files["thermal"]))
        self.only_thermal = sorted(set(self.files["thermal"]) - set(self.files["rgb"]))
        for modality, stems_alone in (("visible", self.only_rgb), (self.thermal_folder.name, self.only_thermal)):
            if stems_alone:
                log.warning(
                    "%s: %d frames only in %s/ (e.g. %s); the missing modality loads as None",
                    self.root, len(stems_alone), modality, ", ".join(stems_alone[:3]),
                )
        self.annotation_file: Path | None = None
        self.objects: dict[str, list[LabelledObject]] = {}
        self.unmatched_annotations: list[str] = []
        self.categories: list[str] = []
        if (self.root / ANNOTATION_FILE).is_file():
            self.annotation_file = self.root / ANNOTATION_FILE
            gt = read_coco_annotations(self.annotation_file)
            self.categories = gt.categories
            for image in gt.images:
                stem = Path(str(image["file_name"])).stem
                self.objects.setdefault(stem, []).extend(gt.objects[int(image["id"])])
                if stem not in stems:
                    self.unmatched_annotations.append(str(image["file_name"]))
            if self.unmatched_annotations:
                log.warning(
                    "%s: %d images have no file in visible/ or lwir/ (e.g. %s)",
                    self.annotation_file, len(self.unmatched_annotations), self.unmatched_annotations[0],
                )
        self.fake_rgb_root = Path(fake_rgb_root) if fake_rgb_root is not None else None
        self.aligned_rgb_root = Path(aligned_rgb_root) if aligned_rgb_root is not None else None
        self._warned_size = False

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __repr__(self) -> str:
        return f"PairsSource({str(self.root)!r}, frames={len(self)})"

    def image_paths(self, index: int) -> dict[str, Path | None]:
        """Image files of frame ``index`` (``None`` where the folder lacks the stem).

        ``fake_rgb`` is ``fake_rgb_root/fake_visible/<stem>.{jpg,png}`` (``.png`` when absent) or
        ``None`` without a ``fake_rgb_root``; ``aligned_rgb`` likewise under ``aligned_rgb_root/aligned_visible/``.
        """
        stem = self.frame_ids[index]
        fake = aligned = None
        if self.fake_rgb_root is not None:
            fake = fake_rgb_path(self.fake_rgb_root / "fake_visible" / stem)
        if self.aligned_rgb_root is not None:
            aligned = fake_rgb_path(self.aligned_rgb_root / "aligned_visible" / stem)
        return {"rgb": self.files["rgb"].get(stem), "thermal": self.files["thermal"].get(stem), "fake_rgb": fake,
                "aligned_rgb": aligned}

    def period(self, index: int) -> str:
        """``unknown``: a folder of pairs does not say when its frames were taken."""
        return "unknown"

    def frame_candidates(self, frame: str) -> list[str]:
        """Frame ids (file stems) a stem, file name or path may stand for (see
        :func:`~rgbt.data.imageio.stem_candidates`)."""
        return stem_candidates(frame)

    def annotations(self, index: int) -> PairSample:
        """Frame ``index`` with its objects and meta, no images decoded."""
        stem = self.frame_ids[index]
        objects = self.objects.get(stem, [])
        paths = {key: str(path) for key, path in self.image_paths(index).items() if path is not None}
        if self.annotation_file is not None:
            paths["annotation"] = str(self.annotation_file)
        return PairSample(
            rgb=None,
            thermal=None,
            boxes=np.asarray([o.box for o in objects], dtype=np.float32) if objects else empty_boxes(),
            labels=[o.label for o in objects],
            ignore=np.asarray([o.ignore for o in objects], dtype=bool),
            occlusion=np.zeros(len(objects), dtype=np.int8),
            meta={"dataset": self.name, "split": "all", "frame_id": stem, "period": self.period(index), "paths": paths},
        )

    def __getitem__(self, index: int) -> PairSample:
        """Frame ``index`` with decoded images (a modality without a file is ``None``).

        Raises:
            DataFormatError: an undecodable image, or a fake RGB image whose size differs from thermal.
            FileNotFoundError: a requested fake RGB image is missing.
        """
        sample = self.annotations(index)
        paths = self.image_paths(index)
        rgb = read_image(paths["rgb"], "rgb") if paths["rgb"] is not None else None
        thermal = read_image(paths["thermal"], "gray") if paths["thermal"] is not None else None
        if rgb is not None and thermal is not None and rgb.shape[:2] != thermal.shape[:2] and not self._warned_size:
            self._warned_size = True
            log.warning(
                "%s: RGB %s and thermal %s sizes differ (unregistered pair; further ones not reported)",
                sample.frame_id, rgb.shape[:2], thermal.shape,
            )
        fake_rgb = read_fake_rgb(paths["fake_rgb"], sample.frame_id, paths["thermal"], thermal)
        aligned_rgb = read_fake_rgb(paths["aligned_rgb"], sample.frame_id, paths["thermal"], thermal, "aligned RGB")
        return sample.with_images(rgb=rgb, thermal=thermal, fake_rgb=fake_rgb, aligned_rgb=aligned_rgb)
