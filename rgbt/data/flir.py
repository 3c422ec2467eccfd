"""The FLIR thermal datasets: ADAS v1.3, ADAS v2 and FLIR-aligned, as frame sources.

Released layouts (``ROOT`` is the folder given to :func:`open_flir`)::

    flir-v1 (FLIR_ADAS_1_3)   ROOT/{train,val,video}/thermal_8_bit/FLIR_xxxxx.jpeg     640x512 thermal
                              ROOT/{train,val,video}/RGB/FLIR_xxxxx.jpg                unaligned, larger, some missing
                              ROOT/{train,val,video}/thermal_annotations.json          COCO, thermal frame
    flir-v2 (FLIR_ADAS_v2)    ROOT/images_thermal_{train,val}/{data/*.jpg, coco.json}  thermal (no RGB pairing)
                              ROOT/images_rgb_{train,val}/{data/*.jpg, coco.json}      independently sampled RGB
                              ROOT/video_{thermal,rgb}_test/{data/*.jpg, coco.json}    time-synced video pairs
                              ROOT/rgb_to_thermal_vid_map.json                         {rgb file: thermal file}
    flir-aligned (ICIP 2020)  ROOT/JPEGImages/FLIR_xxxxx_PreviewData.jpeg              thermal
                              ROOT/JPEGImages/FLIR_xxxxx_RGB.jpg                       RGB registered to thermal
                              ROOT/Annotations/FLIR_xxxxx_PreviewData.xml              Pascal VOC
                              ROOT/align_{train,validation}.txt                        FLIR_xxxxx_PreviewData per line

Categories are always matched by *name* (ids differ between releases and files; see
:mod:`rgbt.data.labels`), so ``classes=['person', 'car', 'bicycle']`` means the same thing on every
release. The annotation files are read by :mod:`rgbt.data.coco_json` (v1.3, v2) and
:mod:`rgbt.data.voc_xml` (FLIR-aligned), which convert the boxes to ``xyxy``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rgbt.data.coco_json import CocoGroundTruth, read_coco_annotations
from rgbt.data.errors import DataFormatError, read_text, split_lines
from rgbt.data.formats import detect_format
from rgbt.data.imageio import (
    PAIR_SUFFIXES,
    check_same_size,
    fake_rgb_path,
    find_image,
    read_fake_rgb,
    read_image,
    stem_candidates,
)
from rgbt.data.jsonfields import load_json
from rgbt.data.labels import LabelledObject, canonical_label, check_classes
from rgbt.data.rootpath import file_under
from rgbt.data.sample import PairSample, empty_boxes
from rgbt.data.voc_xml import read_voc_xml

log = logging.getLogger(__name__)

#: Format names understood by :func:`open_flir` (also the ``meta['dataset']`` values).
FLIR_FORMATS: tuple[str, ...] = ("flir-v1", "flir-v2", "flir-aligned")

#: Split names per format (first: canonical name; the dict maps accepted aliases to it).
V1_SPLITS: tuple[str, ...] = ("train", "val", "video")
V2_SPLITS: dict[str, tuple[str, str]] = {
    "train": ("images_thermal_train", "images_rgb_train"),
    "val": ("images_thermal_val", "images_rgb_val"),
    "video": ("video_thermal_test", "video_rgb_test"),
}
ALIGNED_SPLITS: dict[str, str] = {"train": "align_train.txt", "validation": "align_validation.txt"}
_SPLIT_ALIASES: dict[str, str] = {"validation": "val", "test": "video"}
_ALIGNED_ALIASES: dict[str, str] = {"val": "validation"}

_PERIOD_KEYS = ("period", "daytime", "time_of_day", "timeofday", "hours")
_PERIOD_VALUES = {"day": "day", "daytime": "day", "night": "night", "nighttime": "night"}


# --------------------------------------------------------------------------------------------
# frame source
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlirFrame:
    """Where one FLIR frame lives.

    ``rgb`` is ``None`` when the layout has no RGB partner for the frame (v2 train/val); ``objects``
    is ``None`` when the annotation file holds one frame and is read on demand (VOC).
    """

    frame_id: str
    split: str
    thermal: Path
    rgb: Path | None
    annotation: Path
    objects: tuple[LabelledObject, ...] | None = None
    period: str = "unknown"


class FlirSource:
    """A FLIR release as a :class:`~rgbt.data.source.FrameSource` (built by :func:`open_flir`).

    ``source[i]`` holds ``thermal`` ``(H, W)`` uint8 (640x512 in every release), ``rgb`` ``(H', W', 3)``
    uint8 or ``None`` (missing file, or no partner in the layout), ``boxes`` ``(N, 4)`` float32
    ``xyxy`` in thermal pixels with their category names as ``labels``. When ``rgb_aligned`` is
    false (ADAS v1.3, v2) the RGB frame is the raw, unregistered camera image of its own size;
    ``meta['rgb_aligned']`` says so. With ``rgb_aligned`` true (FLIR-aligned) a size mismatch is a
    :class:`DataFormatError`.

    Attributes:
        missing_rgb: number of frames whose RGB file the layout names but which does not exist.
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike[str],
        frames: Sequence[FlirFrame],
        classes: Sequence[str] | None = None,
        fake_rgb_root: str | os.PathLike[str] | None = None,
        rgb_aligned: bool = False,
        aligned_rgb_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.frames = list(frames)
        self.frame_ids: list[str] = [frame.frame_id for frame in self.frames]
        self.classes = None if classes is None else {canonical_label(c) for c in classes}
        self.fake_rgb_root = Path(fake_rgb_root) if fake_rgb_root is not None else None
        self.aligned_rgb_root = Path(aligned_rgb_root) if aligned_rgb_root is not None else None
        self.rgb_aligned = rgb_aligned
        self.missing_rgb = sum(1 for f in self.frames if f.rgb is not None and not f.rgb.is_file())
        if self.missing_rgb:
            log.warning(
                "%s (%s): %d of %d frames have no RGB image; they load with rgb=None",
                self.root, name, self.missing_rgb, len(self.frames),
            )
        self._warned_rgb = False

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"FlirSource({self.name!r}, {str(self.root)!r}, frames={len(self)})"

    def image_paths(self, index: int) -> dict[str, Path | None]:
        """Expected image files of frame ``index`` (``rgb``, ``thermal``, ``fake_rgb``, ``aligned_rgb``); not
        checked to exist.

        ``fake_rgb`` is ``fake_rgb_root/fake_visible/<frame_id>.{jpg,png}`` (``.png`` when absent),
        ``None`` without a ``fake_rgb_root``; ``aligned_rgb`` likewise under
        ``aligned_rgb_root/aligned_visible/``.
        """
        frame = self.frames[index]
        fake = aligned = None
        if self.fake_rgb_root is not None:
            fake = fake_rgb_path(self.fake_rgb_root / "fake_visible" / frame.frame_id)
        if self.aligned_rgb_root is not None:
            aligned = fake_rgb_path(self.aligned_rgb_root / "aligned_visible" / frame.frame_id)
        return {"rgb": frame.rgb, "thermal": frame.thermal, "fake_rgb": fake, "aligned_rgb": aligned}

    def period(self, index: int) -> str:
        """``day`` / ``night`` where the COCO image entry says so, else ``unknown`` (read when the source opened)."""
        return self.frames[index].period

    def frame_candidates(self, frame: str) -> list[str]:
        """Frame ids (file stems) a frame id, file name or path of either image may stand for
        (see :func:`~rgbt.data.imageio.stem_candidates`)."""
        return stem_candidates(frame)

    def annotations(self, index: int) -> PairSample:
        """Frame ``index`` with annotations (filtered by ``classes``) and meta, no images decoded."""
        frame = self.frames[index]
        objects = frame.objects if frame.objects is not None else tuple(read_voc_xml(frame.annotation))
        if self.classes is not None:
            objects = tuple(obj for obj in objects if obj.label in self.classes)
        paths = {key: str(path) for key, path in self.image_paths(index).items() if path is not None}
        paths["annotation"] = str(frame.annotation)
        boxes = np.asarray([obj.box for obj in objects], dtype=np.float32) if objects else empty_boxes()
        return PairSample(
            rgb=None,
            thermal=None,
            boxes=boxes,
            labels=[obj.label for obj in objects],
            ignore=np.asarray([obj.ignore for obj in objects], dtype=bool),
            occlusion=np.zeros(len(objects), dtype=np.int8),
            meta={
                "dataset": self.name,
                "split": frame.split,
                "frame_id": frame.frame_id,
                "period": frame.period,
                "rgb_aligned": self.rgb_aligned,
                "paths": paths,
            },
        )

    def __getitem__(self, index: int) -> PairSample:
        """Frame ``index`` with decoded images.

        Raises:
            FileNotFoundError: missing thermal image, annotation file or requested fake RGB image.
            DataFormatError: undecodable thermal image; for aligned releases, an RGB image whose size
                differs from the thermal one. An undecodable unaligned RGB image is logged and skipped.
        """
        sample = self.annotations(index)
        paths = self.image_paths(index)
        thermal = read_image(paths["thermal"], "gray")
        rgb = self._read_rgb(paths["rgb"], thermal, paths["thermal"])
        fake_rgb = read_fake_rgb(paths["fake_rgb"], sample.frame_id, paths["thermal"], thermal)
        aligned_rgb = read_fake_rgb(paths["aligned_rgb"], sample.frame_id, paths["thermal"], thermal, "aligned RGB")
        return sample.with_images(rgb=rgb, thermal=thermal, fake_rgb=fake_rgb, aligned_rgb=aligned_rgb)

    def _read_rgb(self, path: Path | None, thermal: np.ndarray, thermal_path: Path) -> np.ndarray | None:
        if path is None:
            return None
        if not path.is_file():
            self._warn_once("%s: RGB image missing; rgb=None (further RGB problems are not reported)", path)
            return None
        if not self.rgb_aligned:
            # Raw v1.3/v2 RGB frames are sometimes truncated or blank; they are not the reference.
            try:
                return read_image(path, "rgb")
            except DataFormatError as err:
                self._warn_once("%s; rgb=None (further RGB problems are not reported)", err)
                return None
        rgb = read_image(path, "rgb")
        check_same_size(path, rgb, thermal_path, thermal)
        return rgb

    def _warn_once(self, message: str, *args: object) -> None:
        if not self._warned_rgb:
            self._warned_rgb = True
            log.warning(message, *args)


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------


def _period_of(image: dict[str, Any]) -> str:
    """``day``/``night`` when a COCO image entry (or its ``extra_info``) says so, else ``unknown``."""
    for holder in (image, image.get("extra_info") if isinstance(image.get("extra_info"), dict) else {}):
        for key in _PERIOD_KEYS:
            value = holder.get(key)
            if isinstance(value, str) and value.strip().lower() in _PERIOD_VALUES:
                return _PERIOD_VALUES[value.strip().lower()]
    return "unknown"


def _coco_frames(
    gt: CocoGroundTruth, annotation: Path, base: Path, split: str, rgb_for: dict[str, Path | None]
) -> list[FlirFrame]:
    """One frame per image entry; a ``file_name`` that leaves ``base`` or names a frame twice is refused."""
    frames = []
    first: dict[str, int] = {}
    for k, image in enumerate(gt.images):
        name = str(image["file_name"])
        thermal = file_under(base, name, annotation, f"images[{k}].file_name")
        relative = Path(name)
        stem = relative.stem
        if stem in first:
            raise DataFormatError(annotation, None, f"images[{k}].file_name {name!r} is the frame of "
                                  f"images[{first[stem]}] again ({stem})")
        first[stem] = k
        frames.append(
            FlirFrame(
                frame_id=stem,
                split=split,
                thermal=thermal,
                rgb=rgb_for.get(relative.name),
                annotation=annotation,
                objects=tuple(gt.objects[int(image["id"])]),
                period=_period_of(image),
            )
        )
    return frames


def _splits(split: str | None, known: Sequence[str], present: Sequence[str], kind: str, root: Path) -> list[str]:
    if split is None:
        if not present:
            raise FileNotFoundError(f"{root}: no {kind} split folders found (looked for {list(known)})")
        return list(present)
    name = _SPLIT_ALIASES.get(split, split)
    if name not in known:
        raise ValueError(f"unknown {kind} split {split!r}; expected one of {list(known)}")
    if name not in present:
        raise FileNotFoundError(f"{root}: {kind} split {name!r} not found (present: {list(present)})")
    return [name]


def _v1_frames(root: Path, split: str | None) -> tuple[list[FlirFrame], set[str]]:
    if (root / "thermal_8_bit").is_dir():
        folders = [(root.name, root)]  # the root is one split folder
    else:
        present = [s for s in V1_SPLITS if (root / s / "thermal_8_bit").is_dir()]
        folders = [(s, root / s) for s in _splits(split, V1_SPLITS, present, "flir-v1", root)]
    frames: list[FlirFrame] = []
    categories: set[str] = set()
    for name, folder in folders:
        annotation = folder / "thermal_annotations.json"
        gt = read_coco_annotations(annotation)
        categories.update(gt.categories)
        names = [Path(str(image["file_name"])) for image in gt.images]
        rgb_for: dict[str, Path | None] = {name.name: folder / "RGB" / f"{name.stem}.jpg" for name in names}
        frames += _coco_frames(gt, annotation, folder, name, rgb_for)
    return frames, categories


def _read_vid_map(path: Path, thermal_names: set[str]) -> dict[str, str]:
    """``rgb_to_thermal_vid_map.json`` as thermal file name -> RGB file name.

    The released file maps RGB names to thermal names; the direction is checked against the thermal
    annotation file names rather than assumed, so an inverted map works too.
    """
    data = load_json(path)
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DataFormatError(path, None, "expected a json object mapping RGB file names to thermal file names")
    pairs = [(Path(k).name, Path(v).name) for k, v in data.items()]
    keys_are_thermal = sum(k in thermal_names for k, _ in pairs) > sum(v in thermal_names for _, v in pairs)
    return {k: v for k, v in pairs} if keys_are_thermal else {v: k for k, v in pairs}


def _v2_frames(root: Path, split: str | None) -> tuple[list[FlirFrame], set[str]]:
    present = [s for s, (thermal, _rgb) in V2_SPLITS.items() if (root / thermal).is_dir()]
    frames: list[FlirFrame] = []
    categories: set[str] = set()
    for name in _splits(split, tuple(V2_SPLITS), present, "flir-v2", root):
        thermal_folder, rgb_folder = (root / folder for folder in V2_SPLITS[name])
        annotation = thermal_folder / "coco.json"
        gt = read_coco_annotations(annotation)
        categories.update(gt.categories)
        rgb_for: dict[str, Path | None] = {}
        if name == "video":
            map_path = root / "rgb_to_thermal_vid_map.json"
            if map_path.is_file():
                names = {Path(str(im["file_name"])).name for im in gt.images}
                rgb_for = {t: rgb_folder / "data" / r for t, r in _read_vid_map(map_path, names).items()}
            else:
                log.warning("%s missing: flir-v2 video frames load without RGB", map_path)
        else:
            log.info("flir-v2 %s: thermal and RGB images are sampled independently (no pairs); rgb=None", name)
        frames += _coco_frames(gt, annotation, thermal_folder, name, rgb_for)
    return frames, categories


def _aligned_base(entry: str) -> str:
    """``FLIR_00002_PreviewData(.jpeg)`` / ``FLIR_00002_RGB.jpg`` / ``FLIR_00002`` -> ``FLIR_00002``."""
    stem = Path(entry.strip()).name
    for ext in (".jpeg", ".jpg", ".png", ".xml"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    for suffix in PAIR_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def aligned_list_path(root: str | os.PathLike[str], split: str) -> Path | None:
    """``align_{train,validation}.txt`` at the root or under ``ImageSets/Main`` / ``ImageSets``, or ``None``."""
    root = Path(root)
    name = ALIGNED_SPLITS[_ALIGNED_ALIASES.get(split, split)]
    for candidate in (root / name, root / "ImageSets" / "Main" / name, root / "ImageSets" / name):
        if candidate.is_file():
            return candidate
    return None


def _read_aligned_list(path: Path) -> list[str]:
    """The frame stems of an ``align_*.txt`` list (one image name per line, blank lines skipped).

    Raises:
        DataFormatError: not UTF-8 text, or a frame listed twice (naming both lines).
    """
    stems: list[str] = []
    first: dict[str, int] = {}
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        stem = _aligned_base(line)
        if stem in first:
            raise DataFormatError(path, number, f"frame {stem} is listed twice (first on line {first[stem]})")
        first[stem] = number
        stems.append(stem)
    return stems


def _aligned_categories(frames: Sequence[FlirFrame]) -> set[str]:
    """The object names of every existing VOC file of ``frames`` (VOC has no category list)."""
    names: set[str] = set()
    for frame in frames:
        if frame.annotation.is_file():
            names.update(obj.label for obj in read_voc_xml(frame.annotation))
    return names


def _aligned_frames(root: Path, split: str | None) -> list[FlirFrame]:
    if split is not None and _ALIGNED_ALIASES.get(split, split) not in ALIGNED_SPLITS:
        raise ValueError(f"unknown flir-aligned split {split!r}; expected one of {list(ALIGNED_SPLITS)}")
    names = [_ALIGNED_ALIASES.get(split, split)] if split is not None else list(ALIGNED_SPLITS)
    entries: list[tuple[str, str]] = []
    for name in names:
        list_path = aligned_list_path(root, name)
        if list_path is None:
            if split is not None:
                raise FileNotFoundError(f"{root}: {ALIGNED_SPLITS[name]} not found (at the root or in ImageSets/Main)")
            continue
        entries += [(name, base) for base in _read_aligned_list(list_path)]
    if split is None and not entries:
        # No split lists: every annotated frame, as released before the lists were added.
        entries = [("all", _aligned_base(p.name)) for p in sorted((root / "Annotations").glob("*.xml"))]
    images = root / "JPEGImages"
    frames = []
    for name, base in entries:
        xml = root / "Annotations" / f"{base}_PreviewData.xml"
        if not xml.is_file() and (root / "Annotations" / f"{base}.xml").is_file():
            xml = root / "Annotations" / f"{base}.xml"
        thermal = find_image(images / f"{base}_PreviewData") or images / f"{base}_PreviewData.jpeg"
        rgb = find_image(images / f"{base}_RGB") or images / f"{base}_RGB.jpg"
        frames.append(FlirFrame(base, name, thermal, rgb, xml))
    return frames


def open_flir(
    root: str | os.PathLike[str],
    kind: str,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    fake_rgb_root: str | os.PathLike[str] | None = None,
    aligned_rgb_root: str | os.PathLike[str] | None = None,
) -> FlirSource:
    """Open a FLIR release as a frame source.

    Args:
        root: the release folder (see the module docstring; a single v1.3 split folder works too).
        kind: ``flir-v1``, ``flir-v2``, ``flir-aligned`` or ``auto``.
        split: ``train``, ``val`` or ``video`` (alias ``test``) for v1.3 and v2; ``train`` or
            ``validation`` (alias ``val``) for FLIR-aligned; ``None`` takes every split present.
        classes: category names kept as objects (e.g. ``['person']``); ``None`` keeps all.
        fake_rgb_root: folder holding ``fake_visible/<frame_id>.{jpg,png}`` written by ``rgbt translate``.
        aligned_rgb_root: folder holding ``aligned_visible/<frame_id>.{jpg,png}`` written by
            ``rgbt align --write-aligned``.

    Frame ids are file stems: ``FLIR_00001`` (v1.3), ``video-xxx-frame-000000-yyy`` (v2) and the
    common stem ``FLIR_00002`` of ``FLIR_00002_PreviewData.jpeg`` / ``FLIR_00002_RGB.jpg`` (aligned).

    Raises:
        FileNotFoundError: root, split folder, annotation file or split list missing.
        DataFormatError: malformed annotation files or split lists, a ``file_name`` that leaves its
            folder (see :mod:`rgbt.data.rootpath`), a frame named twice.
        ValueError: unknown kind or split, an empty ``classes``, or a class name that matches no
            category of the release (the message lists them).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"FLIR root not found: {root}")
    if kind == "auto":
        kind = detect_format(root)
    categories: set[str] | None = None
    if kind == "flir-v1":
        frames, categories = _v1_frames(root, split)
    elif kind == "flir-v2":
        frames, categories = _v2_frames(root, split)
    elif kind == "flir-aligned":
        frames = _aligned_frames(root, split)
    else:
        raise ValueError(f"unknown FLIR format {kind!r}; expected one of {FLIR_FORMATS}")
    if classes is not None:
        if categories is None:
            # VOC files name their classes per object only: read them (about 1 s for the 4,129 train files).
            categories = _aligned_categories(frames)
        # A typo would otherwise silently drop every box.
        check_classes(classes, categories, f"{kind} {root}")
    return FlirSource(kind, root, frames, classes, fake_rgb_root, rgb_aligned=kind == "flir-aligned",
                      aligned_rgb_root=aligned_rgb_root)

