"""The KAIST multispectral pedestrian benchmark, in its released layout.

Layout of a KAIST root::

    images/setXX/VYYY/{visible,lwir}/IZZZZZ.jpg      640x512 pairs (lwir stored as 3 equal channels)
    annotations/setXX/VYYY/IZZZZZ.txt                bbGt (thermal frame)
    annotations_paired/setXX/VYYY/{visible,lwir}/IZZZZZ.txt   KAIST-Paired (AR-CNN), optional
    imageSets/<name>.txt                             one frame id per line: setXX/VYYY/IZZZZZ

Sets 00-05 are the training split and 06-11 the test split; sets 00-02 and 06-08 are day,
03-05 and 09-11 night; the scene is campus, road or downtown in turn.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgbt.atomic import atomic_write_text
from rgbt.data.bbgt import BbGtObject, parse_bbgt, read_bbgt
from rgbt.data.coco_json import annotation_entry
from rgbt.data.domains import OCCLUSION_LEVELS, xywh_problem
from rgbt.data.errors import DataFormatError, decode_text, read_text, split_lines
from rgbt.data.imageio import check_same_size, fake_rgb_path, read_fake_rgb, read_image
from rgbt.data.jsonfields import (
    as_flag,
    as_int,
    as_list,
    as_number,
    as_numbers,
    as_object,
    as_str,
    as_xywh,
    check_unique,
    get,
    load_json,
)
from rgbt.data.sample import PairSample, empty_boxes

log = logging.getLogger(__name__)

#: Folder names of the two modalities inside ``images/setXX/VYYY/``.
MODALITY_FOLDERS: dict[str, str] = {"rgb": "visible", "thermal": "lwir", "fake_rgb": "fake_visible",
                                    "aligned_rgb": "aligned_visible"}

#: COCO-style category ids used by ``KAIST_annotation.json``.
KAIST_JSON_CATEGORIES: tuple[tuple[int, str], ...] = (
    (0, "__ignore__"), (1, "person"), (2, "cyclist"), (3, "people"), (4, "person?"),
)

_SCENES = ("campus", "road", "downtown")
#: ``setXX/VYYY/IZZZZZ`` (``/``, ``_`` or ``\\`` between the parts), optionally inside a
#: ``visible``/``lwir`` folder and with an extension, at the end of a name or path. It must start the
#: text or follow a folder separator (``xset06/...`` is not a frame) and digits are ASCII only.
_FRAME_RE = re.compile(
    r"(?:^|[/\\])set([0-9]{2})[/_\\]V([0-9]{3})[/_\\](?:(?:visible|lwir)[/_\\])?I([0-9]{5})(?:\.[A-Za-z0-9]+)?$"
)


@dataclass(frozen=True, order=True)
class FrameId:
    """A KAIST frame: set, video and frame index (``set06/V001/I00459``)."""

    set: int
    video: int
    frame: int

    def __str__(self) -> str:
        return f"set{self.set:02d}/V{self.video:03d}/I{self.frame:05d}"

    @property
    def period(self) -> str:
        """``day`` for sets 00-02 and 06-08, ``night`` otherwise."""
        return "day" if self.set % 6 < 3 else "night"

    @property
    def split(self) -> str:
        """``train`` for sets 00-05, ``test`` for 06 and above."""
        return "train" if self.set < 6 else "test"

    @property
    def scene(self) -> str:
        """``campus``, ``road`` or ``downtown``."""
        return _SCENES[self.set % 3]


def parse_frame_id(text: str, path: str | os.PathLike[str] | None = None, line: int | None = None) -> FrameId:
    """Parse ``setXX/VYYY/IZZZZZ`` (also ``setXX_VYYY_IZZZZZ`` and image paths ending that way).

    Raises:
        DataFormatError (when ``path`` is given) or ValueError naming the value.
    """
    fid = _known_frame_id(text)
    if fid is None:
        message = f"not a KAIST frame id (expected setXX/VYYY/IZZZZZ): {text.strip()!r}"
        if path is not None:
            raise DataFormatError(path, line, message)
        raise ValueError(message)
    return fid


@functools.lru_cache(maxsize=1 << 16)
def _known_frame_id(text: str) -> FrameId | None:
    # Cached: reading a test set parses each of its ids several times (list, annotation, sample).
    match = _FRAME_RE.search(text.strip())
    return None if match is None else FrameId(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def resolve_image_set(root: str | os.PathLike[str], image_set: str | os.PathLike[str]) -> Path:
    """Find an image-set list given as a path, or as a name under ``ROOT/imageSets``.

    ``test-all-20``, ``test-all-20.txt`` and ``path/to/list.txt`` are all accepted.
    """
    candidate = Path(image_set)
    if candidate.is_file():
        return candidate
    folder = Path(root) / "imageSets"
    for name in (str(image_set), f"{image_set}.txt"):
        if (folder / name).is_file():
            return folder / name
    known = sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []
    raise FileNotFoundError(f"image set {str(image_set)!r} not found as a file or in {folder} (known: {known})")


def read_image_set(path: str | os.PathLike[str]) -> list[str]:
    """Read an image-set list: one frame id per line, blank (or whitespace-only) lines skipped.

    A frame listed twice is refused: it would count twice in the miss rate (its positives and its
    false positives), which is never what a list means.

    Returns:
        normalised frame ids (``setXX/VYYY/IZZZZZ``) in file order.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not UTF-8 text, a line that is not a frame id, or a repeated frame (naming
            both lines).
    """
    frames = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        frame = str(parse_frame_id(line, path, number))
        if frame in first_line:
            raise DataFormatError(path, number, f"frame {frame} is listed twice (first on line {first_line[frame]})")
        first_line[frame] = number
        frames.append(frame)
    return frames


def image_path(root: str | os.PathLike[str], frame_id: str, modality: str) -> Path:
    """``ROOT/images/setXX/VYYY/{visible,lwir,fake_visible}/IZZZZZ.jpg``."""
    fid = parse_frame_id(frame_id)
    if modality not in MODALITY_FOLDERS:
        raise ValueError(f"unknown modality {modality!r}; expected one of {tuple(MODALITY_FOLDERS)}")
    return (
        Path(root) / "images" / f"set{fid.set:02d}" / f"V{fid.video:03d}"
        / MODALITY_FOLDERS[modality] / f"I{fid.frame:05d}.jpg"
    )


def first_image(root: str | os.PathLike[str], image_set: str, modality: str, period: str | None = None) -> Path:
    """The ``modality`` image of the first frame of ``ROOT/imageSets/<image_set>.txt``, or of its first
    frame of ``period`` (``day`` / ``night``, from the set number: KAIST's sets 00-02 and 06-08 are
    day): e.g. a real day RGB frame as a translation style, ``first_image(root, "train", "rgb", "day")``.

    Raises:
        FileNotFoundError: the image set is missing.
        DataFormatError: the image set is malformed or lists no frame (of ``period``).
    """
    path = Path(root) / "imageSets" / f"{image_set}.txt"
    frames = [f for f in read_image_set(path) if period is None or parse_frame_id(f).period == period]
    if not frames:
        raise DataFormatError(path, None, "lists no frame" + (f" of the {period} period" if period else ""))
    return image_path(root, frames[0], modality)


def annotation_path(root: str | os.PathLike[str], frame_id: str) -> Path:
    """``ROOT/annotations/setXX/VYYY/IZZZZZ.txt`` (thermal-frame bbGt)."""
    return Path(annotation_file(root, frame_id))


def annotation_file(root: str | os.PathLike[str], frame_id: str) -> str:
    """:func:`annotation_path` as a plain string (no pathlib objects: reading the test set's 2,252
    files is most of what `rgbt evaluate` spends)."""
    return annotation_files(root, [frame_id])[0]


def annotation_files(root: str | os.PathLike[str], frame_ids: Sequence[str]) -> list[str]:
    """:func:`annotation_file` of every frame, the common prefix joined once."""
    folder = os.path.join(os.fspath(root), "annotations") + os.sep
    out = []
    for frame_id in frame_ids:
        if _NORMALISED_ID.fullmatch(frame_id):  # what read_image_set gives: no need to parse it again
            out.append(folder + frame_id.replace("/", os.sep) + ".txt")
        else:
            fid = parse_frame_id(frame_id)
            out.append(f"{folder}set{fid.set:02d}{os.sep}V{fid.video:03d}{os.sep}I{fid.frame:05d}.txt")
    return out


#: A frame id already in the normalised ``setXX/VYYY/IZZZZZ`` form.
_NORMALISED_ID = re.compile(r"set\d{2}/V\d{3}/I\d{5}")


def paired_annotation_path(root: str | os.PathLike[str], frame_id: str, modality: str) -> Path:
    """``ROOT/annotations_paired/setXX/VYYY/{visible,lwir}/IZZZZZ.txt`` (KAIST-Paired)."""
    fid = parse_frame_id(frame_id)
    if modality not in ("rgb", "thermal"):
        raise ValueError(f"paired annotations exist for 'rgb' and 'thermal', not {modality!r}")
    return (
        Path(root) / "annotations_paired" / f"set{fid.set:02d}" / f"V{fid.video:03d}"
        / MODALITY_FOLDERS[modality] / f"I{fid.frame:05d}.txt"
    )


def read_annotations(root: str | os.PathLike[str], frame_ids: Sequence[str]) -> list[list[BbGtObject]]:
    """Read the thermal-frame bbGt annotations of the given frames (a missing file is an error)."""
    out = []
    for frame_id, path in zip(frame_ids, annotation_files(root, frame_ids)):  # one open per file, no stat
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(f"annotation file missing for frame {frame_id}: {Path(path)}") from None
        out.append(parse_bbgt(decode_text(data, path), path))
    return out


@dataclass
class KaistJsonGroundTruth:
    """Ground truth in the COCO-style ``KAIST_annotation.json`` form.

    ``frame_ids[i]`` is the image with json id ``image_ids[i]``; ``objects[i]`` its objects and
    ``sizes[i]`` its ``(height, width)``; ``person_category`` the category id named ``person``
    (what results json entries of persons carry).
    """

    frame_ids: list[str]
    image_ids: list[int]
    objects: list[list[BbGtObject]]
    sizes: list[tuple[int, int]]
    person_category: int = 1


#: Category names a ``KAIST_annotation.json`` may hold: the KAIST labels and ``__ignore__``.
KAIST_JSON_NAMES: frozenset[str] = frozenset(name for _cid, name in KAIST_JSON_CATEGORIES)


def _json_categories(data: dict, path: str | os.PathLike[str]) -> dict[int, str]:
    if "categories" not in data:
        return dict(KAIST_JSON_CATEGORIES)
    names: dict[int, str] = {}
    for k, entry in enumerate(as_list(data["categories"], path, "categories")):
        where = f"categories[{k}]"
        category = as_object(entry, path, where)
        cid = as_int(get(category, "id", path, where), path, f"{where}.id")
        name = as_str(get(category, "name", path, where), path, f"{where}.name")
        if name not in KAIST_JSON_NAMES:
            raise DataFormatError(path, None, f"{where}.name {name!r} is not a KAIST label {sorted(KAIST_JSON_NAMES)}")
        if cid in names:
            raise DataFormatError(path, None, f"{where}.id {cid} is used by another category too")
        names[cid] = name
    return names or dict(KAIST_JSON_CATEGORIES)


def _json_object(ann: dict, label: str, path: str | os.PathLike[str], where: str) -> BbGtObject:
    """One annotation entry as the bbGt object it stands for (see :func:`read_kaist_json`)."""
    box = as_xywh(get(ann, "bbox", path, where), path, f"{where}.bbox")
    occlusion = as_int(get(ann, "occlusion", path, where, 0), path, f"{where}.occlusion")
    if occlusion not in OCCLUSION_LEVELS:
        raise DataFormatError(path, None, f"{where}.occlusion {occlusion} is not a KAIST occlusion level "
                              f"{list(OCCLUSION_LEVELS)}")
    flag = as_flag(get(ann, "ignore", path, where, 0), path, f"{where}.ignore")
    ignore = as_flag(ann["ign"], path, f"{where}.ign") if "ign" in ann else (flag if label == "person" else 0)
    visible = as_numbers(get(ann, "vis_bbox", path, where, [0, 0, 0, 0]), 4, path, f"{where}.vis_bbox")
    problem = xywh_problem(visible, ("vx", "vy", "vw", "vh"))
    if problem is not None:
        raise DataFormatError(path, None, f"{where}.vis_bbox: {problem}")
    angle = as_number(get(ann, "angle", path, where, 0.0), path, f"{where}.angle")
    return BbGtObject(label, box, occlusion, visible, ignore, angle)  # type: ignore[arg-type]


def read_kaist_json(path: str | os.PathLike[str]) -> KaistJsonGroundTruth:
    """Read COCO-style KAIST ground truth (``KAIST_annotation.json``).

    Labels come from the category names. In the released file every object has category
    ``person`` and ``ignore = 1`` marks the people / person? / cyclist regions, so those objects
    read back as ``person`` with ``ignore = 1``; files written by :func:`write_kaist_json` keep
    the true label and the raw bbGt fields, so they round-trip with the txt form exactly.

    Every field is checked against its domain (:mod:`rgbt.data.domains`): ids are integers, image
    ids and frames (``im_name``) are unique, ``height`` / ``width`` positive, ``bbox`` a finite
    float32 ``[x, y, w, h]`` with ``w, h >= 0``, ``occlusion`` 0/1/2, ``ignore`` / ``ign`` 0/1,
    category names KAIST labels.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: invalid json or a field out of its domain, naming the key and the value.
    """
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, None, "expected a json object with 'images' and 'annotations'")
    names = _json_categories(data, path)
    images = as_list(get(data, "images", path, "the top level"), path, "images")
    frame_ids, image_ids, sizes = [], [], []
    for k, entry in enumerate(images):
        where = f"images[{k}]"
        image = as_object(entry, path, where)
        image_ids.append(as_int(get(image, "id", path, where), path, f"{where}.id"))
        im_name = as_str(get(image, "im_name", path, where), path, f"{where}.im_name")
        try:
            frame_ids.append(str(parse_frame_id(im_name)))
        except ValueError as err:
            raise DataFormatError(path, None, f"{where}.im_name: {err}") from None
        size = []
        for key, default in (("height", 512), ("width", 640)):
            value = as_int(get(image, key, path, where, default), path, f"{where}.{key}")
            if value <= 0:
                raise DataFormatError(path, None, f"{where}.{key} must be > 0, got {value}")
            size.append(value)
        sizes.append((size[0], size[1]))
    check_unique(image_ids, path, "images", "id")
    check_unique(frame_ids, path, "images", "im_name")
    index = {image_id: k for k, image_id in enumerate(image_ids)}
    objects: list[list[BbGtObject]] = [[] for _ in frame_ids]
    for k, entry in enumerate(as_list(get(data, "annotations", path, "the top level"), path, "annotations")):
        ann, where, image_id, category = annotation_entry(entry, k, path, index, names)
        objects[index[image_id]].append(_json_object(ann, names[category], path, where))
    person = min((cid for cid, name in names.items() if name == "person"), default=1)
    return KaistJsonGroundTruth(frame_ids, image_ids, objects, sizes, person)


def write_kaist_json(
    path: str | os.PathLike[str],
    frame_ids: Sequence[str],
    objects: Sequence[Sequence[BbGtObject]],
    sizes: Sequence[tuple[int, int]] | None = None,
) -> None:
    """Write ground truth as COCO-style json in the ``KAIST_annotation.json`` form.

    Image ids are 0-based in list order, annotation ids start at 0, ``ignore`` is 1 for every
    label but ``person`` (and for objects flagged ``ign``), as in the released file; the extra
    keys ``ign``, ``vis_bbox`` and ``angle`` keep the bbGt fields so the txt form round-trips.
    """
    if len(frame_ids) != len(objects):
        raise ValueError(f"{len(frame_ids)} frame ids but {len(objects)} object lists")
    ids = {name: cid for cid, name in KAIST_JSON_CATEGORIES}
    images, annotations = [], []
    for image_id, (frame_id, objs) in enumerate(zip(frame_ids, objects)):
        height, width = sizes[image_id] if sizes is not None else (512, 640)
        images.append({"id": image_id, "im_name": str(parse_frame_id(frame_id)), "height": height, "width": width})
        for obj in objs:
            if obj.label not in ids:
                raise ValueError(f"label {obj.label!r} of frame {frame_id} has no KAIST json category")
            annotations.append({
                "id": len(annotations),
                "image_id": image_id,
                "category_id": ids[obj.label],
                "bbox": list(obj.box),
                "height": obj.box[3],
                "occlusion": obj.occlusion,
                "ignore": int(obj.label != "person" or obj.ignore != 0),
                "ign": obj.ignore,
                "vis_bbox": list(obj.visible),
                "angle": obj.angle,
            })
    categories = [{"id": cid, "name": name} for cid, name in KAIST_JSON_CATEGORIES]
    payload = {"images": images, "annotations": annotations, "categories": categories}
    atomic_write_text(path, json.dumps(payload, indent=1))


# --------------------------------------------------------------------------------------------
# frame source
# --------------------------------------------------------------------------------------------

#: Values accepted for the ``period`` filter.
PERIODS: tuple[str, ...] = ("all", "day", "night")


def discover_frames(root: str | os.PathLike[str]) -> list[str]:
    """Every frame of a KAIST root, sorted: from ``annotations/`` when it holds files, else from
    ``annotations_paired/*/*/lwir/``, else from ``images/`` (``lwir`` and ``visible`` together).

    Files whose names are not KAIST frame names are skipped (logged at debug level).
    """
    root = Path(root)
    searches = (
        ("annotations", ("set*/V*/I*.txt",)),
        ("annotations_paired", ("set*/V*/lwir/I*.txt",)),
        ("images", ("set*/V*/lwir/I*.*", "set*/V*/visible/I*.*")),
    )
    for folder, patterns in searches:
        base = root / folder
        if not base.is_dir():
            continue
        found: set[FrameId] = set()
        for pattern in patterns:
            for path in base.glob(pattern):
                try:
                    found.add(parse_frame_id(path.relative_to(base).as_posix()))
                except ValueError:
                    log.debug("skipping %s: not a KAIST frame name", path)
        if found:
            return [str(fid) for fid in sorted(found)]
    return []


def boxes_xyxy(objects: Sequence[BbGtObject]) -> np.ndarray:
    """``(N, 4)`` float32 ``xyxy`` boxes from bbGt ``x y w h`` objects."""
    if not objects:
        return empty_boxes()
    xywh = np.asarray([obj.box for obj in objects], dtype=np.float64)
    xywh[:, 2:] += xywh[:, :2]
    return xywh.astype(np.float32)


def check_paired_objects(
    rgb_objects: Sequence[BbGtObject],
    thermal_objects: Sequence[BbGtObject],
    rgb_path: str | os.PathLike[str],
    thermal_path: str | os.PathLike[str],
) -> None:
    """KAIST-Paired files must list the same objects (count and labels, in order) per modality.

    Raises:
        DataFormatError: located at the lwir file, naming the visible file too.
    """
    rgb_labels = [obj.label for obj in rgb_objects]
    thermal_labels = [obj.label for obj in thermal_objects]
    if len(rgb_labels) != len(thermal_labels):
        raise DataFormatError(
            thermal_path, None,
            f"paired annotations disagree: {len(thermal_labels)} objects here but {len(rgb_labels)} in {rgb_path}",
        )
    for number, (label_t, label_v) in enumerate(zip(thermal_labels, rgb_labels), start=1):
        if label_t != label_v:
            raise DataFormatError(
                thermal_path, None,
                f"paired annotations disagree: object {number} is {label_t!r} here but {label_v!r} in {rgb_path}",
            )


class KaistSource:
    """A KAIST-layout root as a :class:`~rgbt.data.source.FrameSource`.

    ``source[i]`` is a :class:`PairSample` with ``rgb`` ``(512, 640, 3)`` uint8 RGB (``None`` when the
    visible image is missing: thermal-only work still runs, the first miss is logged), ``thermal``
    ``(512, 640)`` uint8, ``boxes`` ``(N, 4)`` float32 ``xyxy`` in thermal pixels, ``labels``
    (``person``, ``people``, ``cyclist``, ``person?``), ``ignore`` (the file's ``ign`` flag) and
    ``occlusion``. When ``annotations_paired/setXX/VYYY/{visible,lwir}/IZZZZZ.txt`` exist for a
    frame, the lwir file gives the thermal boxes and the visible file fills ``boxes_rgb``; otherwise
    ``annotations/setXX/VYYY/IZZZZZ.txt`` is read and ``boxes_rgb`` is ``None``.

    Args:
        root: the KAIST root (``images/``, ``annotations/`` ...).
        image_set: an image-set name under ``root/imageSets`` or a list file; ``None`` takes every
            frame found (see :func:`discover_frames`).
        fake_rgb_root: a root written by ``rgbt translate``; ``sample.fake_rgb`` is read from
            ``fake_rgb_root/images/setXX/VYYY/fake_visible/IZZZZZ.{jpg,png}`` (missing is an error).
        aligned_rgb_root: a folder written by ``rgbt align --write-aligned``; ``sample.aligned_rgb`` is
            read from ``aligned_rgb_root/images/setXX/VYYY/aligned_visible/IZZZZZ.{jpg,png}`` (missing
            is an error).
        period: ``all``, ``day`` or ``night``: keeps only the frames of that period.

    Raises:
        FileNotFoundError: ``root`` or the image set does not exist.
        DataFormatError: a malformed image-set line.
    """

    name = "kaist"

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_set: str | os.PathLike[str] | None = None,
        fake_rgb_root: str | os.PathLike[str] | None = None,
        period: str = "all",
        aligned_rgb_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"KAIST root not found: {self.root}")
        if period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
        if image_set is not None:
            list_path = resolve_image_set(self.root, image_set)
            frames = read_image_set(list_path)
            self.image_set = list_path.stem
        else:
            frames = discover_frames(self.root)
            self.image_set = "all"
        if period != "all":
            frames = [f for f in frames if parse_frame_id(f).period == period]
        self.frame_ids: list[str] = frames
        self.period_filter = period
        self.fake_rgb_root = Path(fake_rgb_root) if fake_rgb_root is not None else None
        self.aligned_rgb_root = Path(aligned_rgb_root) if aligned_rgb_root is not None else None
        self.has_paired = (self.root / "annotations_paired").is_dir()
        self._warned_missing_rgb = False

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __repr__(self) -> str:
        return f"KaistSource({str(self.root)!r}, image_set={self.image_set!r}, frames={len(self)})"

    def image_paths(self, index: int) -> dict[str, Path | None]:
        """Expected image files of frame ``index`` (``rgb``, ``thermal``, ``fake_rgb``, ``aligned_rgb``); not
        checked to exist.

        ``fake_rgb`` (``aligned_rgb``) is ``None`` without a ``fake_rgb_root`` (``aligned_rgb_root``); when no
        file exists yet it is the ``.png`` path.
        """
        frame_id = self.frame_ids[index]
        paths: dict[str, Path | None] = {
            "rgb": image_path(self.root, frame_id, "rgb"),
            "thermal": image_path(self.root, frame_id, "thermal"),
            "fake_rgb": None,
            "aligned_rgb": None,
        }
        if self.fake_rgb_root is not None:
            paths["fake_rgb"] = fake_rgb_path(image_path(self.fake_rgb_root, frame_id, "fake_rgb").with_suffix(""))
        if self.aligned_rgb_root is not None:
            paths["aligned_rgb"] = fake_rgb_path(
                image_path(self.aligned_rgb_root, frame_id, "aligned_rgb").with_suffix(""))
        return paths

    def period(self, index: int) -> str:
        """``day`` or ``night`` of frame ``index``, from its set number (no file is read)."""
        return parse_frame_id(self.frame_ids[index]).period

    def frame_candidates(self, frame: str) -> list[str]:
        """``[setXX/VYYY/IZZZZZ]`` for any spelling :func:`parse_frame_id` reads (``set06_V001_I00459``,
        an image path ...); ``[]`` for anything else, since every id of a KAIST root has that form."""
        try:
            return [str(parse_frame_id(frame))]
        except ValueError:
            return []

    def _read_objects(self, frame_id: str) -> tuple[list[BbGtObject], list[BbGtObject] | None, dict[str, str]]:
        """Thermal-frame objects, RGB-frame objects (paired roots only) and the files read."""
        if self.has_paired:
            rgb_path = paired_annotation_path(self.root, frame_id, "rgb")
            thermal_path = paired_annotation_path(self.root, frame_id, "thermal")
            if rgb_path.is_file() or thermal_path.is_file():
                for missing, present in ((rgb_path, thermal_path), (thermal_path, rgb_path)):
                    if not missing.is_file():
                        raise FileNotFoundError(f"{missing}: paired annotation missing ({present} exists)")
                thermal_objects = read_bbgt(thermal_path)
                rgb_objects = read_bbgt(rgb_path)
                check_paired_objects(rgb_objects, thermal_objects, rgb_path, thermal_path)
                return thermal_objects, rgb_objects, {"annotation": str(thermal_path), "annotation_rgb": str(rgb_path)}
        path = annotation_path(self.root, frame_id)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotation file missing for frame {frame_id}")
        return read_bbgt(path), None, {"annotation": str(path)}

    def annotations(self, index: int) -> PairSample:
        """Frame ``index`` with annotations and meta, no images decoded.

        Raises:
            FileNotFoundError: the annotation file is missing (the message starts with its path).
            DataFormatError: a malformed annotation file, or paired files that disagree.
        """
        frame_id = self.frame_ids[index]
        thermal_objects, rgb_objects, annotation_files = self._read_objects(frame_id)
        paths = {key: str(path) for key, path in self.image_paths(index).items() if path is not None}
        paths.update(annotation_files)
        sample = objects_to_sample(frame_id, thermal_objects, self.name, rgb_objects=rgb_objects)
        sample.meta.update(image_set=self.image_set, paths=paths)
        return sample

    def __getitem__(self, index: int) -> PairSample:
        """Frame ``index`` with decoded images (see the class docstring).

        Raises:
            FileNotFoundError: missing thermal image, annotation file, or fake / aligned RGB image.
            DataFormatError: undecodable image, images of different sizes, malformed annotations.
        """
        sample = self.annotations(index)
        paths = self.image_paths(index)
        thermal_path = paths["thermal"]
        thermal = read_image(thermal_path, "gray")
        rgb = None
        if paths["rgb"].is_file():
            rgb = read_image(paths["rgb"], "rgb")
            check_same_size(paths["rgb"], rgb, thermal_path, thermal)
        elif not self._warned_missing_rgb:
            self._warned_missing_rgb = True
            log.warning("%s: visible image missing; loading thermal only (further misses not reported)", paths["rgb"])
        fake_rgb = read_fake_rgb(paths["fake_rgb"], sample.frame_id, thermal_path, thermal)
        aligned_rgb = read_fake_rgb(paths["aligned_rgb"], sample.frame_id, thermal_path, thermal, "aligned RGB")
        return sample.with_images(rgb=rgb, thermal=thermal, fake_rgb=fake_rgb, aligned_rgb=aligned_rgb)


def objects_to_sample(
    frame_id: str,
    objects: Sequence[BbGtObject],
    dataset: str = "kaist",
    size: tuple[int, int] | None = None,
    rgb_objects: Sequence[BbGtObject] | None = None,
) -> PairSample:
    """An annotation-only :class:`PairSample` (no images) from the bbGt objects of one frame.

    ``meta`` holds ``dataset``, ``split``, ``frame_id``, ``set``, ``video``, ``frame``, ``period``,
    ``scene`` and, when given, ``size`` ``(height, width)`` of the frame (used by the evaluator's
    border rule when no image is loaded). ``rgb_objects``, the same objects in the RGB frame
    (KAIST-Paired), fill ``boxes_rgb``.
    """
    fid = parse_frame_id(frame_id)
    meta = {
        "dataset": dataset, "split": fid.split, "frame_id": str(fid), "set": f"set{fid.set:02d}",
        "video": f"V{fid.video:03d}", "frame": f"I{fid.frame:05d}", "period": fid.period, "scene": fid.scene,
    }
    if size is not None:
        meta["size"] = (int(size[0]), int(size[1]))
    return PairSample(
        rgb=None,
        thermal=None,
        boxes=boxes_xyxy(objects),
        labels=[obj.label for obj in objects],
        ignore=np.asarray([obj.ignore != 0 for obj in objects], dtype=bool),
        occlusion=np.asarray([obj.occlusion for obj in objects], dtype=np.int8),
        boxes_rgb=boxes_xyxy(rgb_objects) if rgb_objects is not None else None,
        meta=meta,
    )

