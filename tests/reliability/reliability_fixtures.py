"""Small datasets and result files in the exact released formats, written in tmp_path.

A KAIST root of three frames (two day, one night) with one ``reasonable`` person each, 640x512
images, bbGt v3 annotations and an image-set list; the same ground truth as a
``KAIST_annotation.json`` (COCO style, as released); detections that find every person exactly
(MR 0) as an aggregated txt, a per-frame folder and a COCO results json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rgbt.cli import main
from rgbt.data.imageio import write_image
from rgbt.data.kaist import annotation_path, image_path

#: The frames of the fixture root, in list order.
FRAMES = ["set06/V000/I00019", "set06/V000/I00039", "set09/V000/I00019"]
#: One person ``x y w h`` per frame: >= 55 px high and inside the border, so each is a positive.
PERSONS = [(100.0, 100.0, 40.0, 80.0), (300.0, 150.0, 50.0, 100.0), (400.0, 200.0, 30.0, 60.0)]
#: Name of the fixture's image-set list under ``imageSets/``.
LIST_NAME = "test-fixture"


def bbgt_line(box: tuple[float, ...], label: str = "person", occ: int = 0, ign: int = 0) -> str:
    """One bbGt v3 object line, as the KAIST release writes it."""
    x, y, w, h = (f"{v:g}" for v in box)
    return f"{label} {x} {y} {w} {h} {occ} 0 0 0 0 {ign} 0"


def write_bbgt_text(path: Path, lines: list[str]) -> Path:
    """A bbGt v3 file with the given object lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("% bbGt version=3\n" + "".join(f"{line}\n" for line in lines))
    return path


def make_kaist_root(root: Path, images: bool = True) -> Path:
    """The three-frame KAIST root (see the module docstring); ``imageSets/test-fixture.txt`` lists it
    with Windows line ends, as the released lists have."""
    for frame, box in zip(FRAMES, PERSONS):
        write_bbgt_text(annotation_path(root, frame), [bbgt_line(box)])
        if images:
            write_image(image_path(root, frame, "thermal"), np.zeros((512, 640), np.uint8))
            write_image(image_path(root, frame, "rgb"), np.zeros((512, 640, 3), np.uint8))
    write_list(root, LIST_NAME, FRAMES)
    return root


def write_list(root: Path, name: str, frames: list[str]) -> Path:
    """``ROOT/imageSets/<name>.txt`` holding ``frames``, one per line."""
    path = root / "imageSets" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{frame}\r\n" for frame in frames).encode())
    return path


def kaist_json(frames: list[str] = FRAMES, persons: list[tuple[float, ...]] = PERSONS) -> dict:
    """``KAIST_annotation.json`` content in the released form (ids 0..N-1, category 1, ``ignore``)."""
    images = [{"id": i, "im_name": frame, "height": 512, "width": 640} for i, frame in enumerate(frames)]
    annotations = [
        {"id": i, "image_id": i, "category_id": 1, "bbox": list(box), "height": box[3], "occlusion": 0, "ignore": 0}
        for i, box in enumerate(persons)
    ]
    categories = [{"id": 0, "name": "__ignore__"}, {"id": 1, "name": "person"}, {"id": 2, "name": "cyclist"},
                  {"id": 3, "name": "people"}, {"id": 4, "name": "person?"}]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_json(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1))
    return path


def perfect_txt(path: Path) -> Path:
    """Aggregated txt ``idx,x,y,w,h,score`` finding every fixture person exactly."""
    path.write_text("".join(f"{i},{x:g},{y:g},{w:g},{h:g},0.9\n" for i, (x, y, w, h) in enumerate(PERSONS, start=1)))
    return path


def perfect_coco(persons: list[tuple[float, ...]] = PERSONS) -> list[dict]:
    """COCO results entries (``image_id`` = list position) finding every fixture person exactly."""
    return [{"image_id": i, "category_id": 1, "bbox": list(box), "score": 0.9} for i, box in enumerate(persons)]


def perfect_folder(folder: Path) -> Path:
    """A KAIST per-frame result folder (``setXX_VYYY_IZZZZZ.txt``, 0-based ``x1 y1 x2 y2``) finding every person."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame, (x, y, w, h) in zip(FRAMES, PERSONS):
        (folder / f"{frame.replace('/', '_')}.txt").write_text(f"person {x - 1:g} {y - 1:g} {x + w - 1:g} "
                                                                f"{y + h - 1:g} 0.9\n")
    return folder


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``rgbt ARGV`` in-process: exit code, stdout, stderr."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def evaluate(root: Path, results: Path, capsys, image_set: str = LIST_NAME) -> tuple[int, str, str]:
    """``rgbt evaluate --gt ROOT --image-set LIST --results RESULTS``: exit code, stdout, stderr."""
    return run(["evaluate", "--gt", root, "--image-set", image_set, "--results", results], capsys)


def mr_all(out: str) -> float:
    """The 'all' miss rate of the first row of an ``rgbt evaluate`` table."""
    rows = [line for line in out.splitlines() if line.startswith("|")]
    return float(rows[2].split("|")[3])  # after the header and the separator


def make_flir_v1(root: Path, file_names: list[str] | None = None) -> Path:
    """A FLIR ADAS v1.3 ``train`` split: 8-bit thermal jpegs, RGB for the first frame and
    ``thermal_annotations.json`` (COCO, categories as in the release: 1 person, 2 bicycle, 3 car)."""
    train = root / "train"
    names = file_names or ["thermal_8_bit/FLIR_00001.jpeg", "thermal_8_bit/FLIR_00002.jpeg"]
    for name in names:
        if ".." not in name and not name.startswith("/"):
            write_image(train / name, np.zeros((16, 20), np.uint8))
    write_image(train / "RGB" / "FLIR_00001.jpg", np.zeros((24, 32, 3), np.uint8))
    write_json(train / "thermal_annotations.json", {
        "info": {}, "licenses": [],
        "images": [{"id": i, "file_name": name, "width": 20, "height": 16} for i, name in enumerate(names)],
        "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [2, 2, 4, 8], "area": 32, "iscrowd": 0},
                        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [1, 1, 6, 4], "area": 24, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person", "supercategory": "none"},
                       {"id": 2, "name": "bicycle", "supercategory": "none"},
                       {"id": 3, "name": "car", "supercategory": "none"}],
    })
    return root


def voc_xml(objects: list[tuple[str, tuple[float, ...], int]], stem: str = "FLIR_00002") -> str:
    """A FLIR-aligned Pascal VOC file: ``(name, (xmin, ymin, xmax, ymax), difficult)`` per object."""
    body = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}"
        f"</difficult><bndbox><xmin>{b[0]:g}</xmin><ymin>{b[1]:g}</ymin><xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax>"
        "</bndbox></object>"
        for name, b, difficult in objects
    )
    return (f"<annotation><folder>JPEGImages</folder><filename>{stem}_PreviewData.jpeg</filename>"
            f"<size><width>20</width><height>16</height><depth>3</depth></size>{body}</annotation>")


def make_flir_aligned(root: Path) -> Path:
    """A FLIR-aligned release of two frames: thermal + registered RGB, VOC annotations, ``align_train.txt``."""
    for stem in ("FLIR_00002", "FLIR_00005"):
        write_image(root / "JPEGImages" / f"{stem}_PreviewData.jpeg", np.zeros((16, 20), np.uint8))
        write_image(root / "JPEGImages" / f"{stem}_RGB.jpg", np.zeros((16, 20, 3), np.uint8))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}_PreviewData.xml").write_text(
            voc_xml([("person", (2, 2, 6, 12), 0), ("car", (8, 4, 18, 10), 0)], stem))
    (root / "align_train.txt").write_text("FLIR_00002_PreviewData\nFLIR_00005_PreviewData\n")
    return root
