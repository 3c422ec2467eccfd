"""FLIR ADAS v1.3, v2 and FLIR-aligned, each written in tmp_path in its released layout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.data.coco_json import read_coco_annotations
from rgbt.data.errors import DataFormatError
from rgbt.data.flir import FlirSource, open_flir
from rgbt.data.formats import detect_format
from rgbt.data.source import FrameSource, open_source
from rgbt.data.voc_xml import read_voc_xml

H, W = 8, 10


def _jpg(path: Path, value: int, shape: tuple[int, ...] = (H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full(shape, value, np.uint8)
    if len(shape) == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # FLIR 8-bit thermal jpegs are 3-channel grey
    assert cv2.imwrite(str(path), image)


def _coco(path: Path, files: list[str], annotations: list[tuple[int, int, list[float]]], categories: dict[int, str],
          extra: dict[int, dict] | None = None) -> None:
    images = [{"id": i, "file_name": name, "width": W, "height": H, **(extra or {}).get(i, {})}
              for i, name in enumerate(files)]
    anns = [{"id": k + 1, "image_id": image, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            for k, (image, cat, box) in enumerate(annotations)]
    cats = [{"id": cid, "name": name, "supercategory": "unknown"} for cid, name in categories.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


# v1.3 follows COCO ids (1 person, 2 bicycle, 3 car); the fixture permutes them to prove name matching.
V1_CATEGORIES = {1: "car", 2: "person", 3: "bicycle", 18: "dog"}


def make_v1(root: Path) -> Path:
    train = root / "train"
    for stem in ("FLIR_00001", "FLIR_00002", "FLIR_00003"):
        _jpg(train / "thermal_8_bit" / f"{stem}.jpeg", 90)
    _jpg(train / "RGB" / "FLIR_00001.jpg", 30, (12, 16, 3))  # raw RGB: larger, unaligned
    _jpg(train / "RGB" / "FLIR_00003.jpg", 30, (12, 16, 3))  # FLIR_00002 has no RGB frame
    _coco(train / "thermal_annotations.json",
          [f"thermal_8_bit/FLIR_0000{i}.jpeg" for i in (1, 2, 3)],
          [(0, 2, [1, 2, 3, 4]), (0, 1, [0, 0, 5, 5]), (1, 3, [2, 2, 2, 3]), (2, 18, [1, 1, 1, 1])],
          V1_CATEGORIES)
    val = root / "val"
    _jpg(val / "thermal_8_bit" / "FLIR_08863.jpeg", 120)
    _jpg(val / "RGB" / "FLIR_08863.jpg", 30, (12, 16, 3))
    _coco(val / "thermal_annotations.json", ["thermal_8_bit/FLIR_08863.jpeg"], [(0, 2, [4, 4, 2, 2])], V1_CATEGORIES)
    return root


def test_v1_loads_by_category_name_and_reports_missing_rgb(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_v1(tmp_path / "FLIR_ADAS_1_3")
    assert detect_format(root) == "flir-v1"
    with caplog.at_level(logging.WARNING, logger="rgbt.data.flir"):
        source = open_source(root, image_set="train")
    assert isinstance(source, FlirSource) and isinstance(source, FrameSource)
    assert source.frame_ids == ["FLIR_00001", "FLIR_00002", "FLIR_00003"]
    assert source.missing_rgb == 1
    assert any("1 of 3 frames have no RGB image" in r.getMessage() for r in caplog.records)
    first = source[0]
    assert first.labels == ["person", "car"]
    np.testing.assert_array_equal(first.boxes, [[1, 2, 4, 6], [0, 0, 5, 5]])
    assert first.thermal.shape == (H, W) and first.rgb.shape == (12, 16, 3)
    assert first.meta["dataset"] == "flir-v1" and first.meta["split"] == "train"
    assert first.meta["period"] == "unknown" and first.meta["rgb_aligned"] is False
    missing = source[1]  # reported, never raised
    assert missing.rgb is None and missing.thermal.shape == (H, W)
    assert missing.labels == ["bicycle"]
    assert source.annotations(2).labels == ["dog"]


def test_v1_classes_select_names(tmp_path: Path) -> None:
    root = make_v1(tmp_path / "flir")
    people = open_flir(root, "flir-v1", split="train", classes=["person"])
    assert [people.annotations(i).labels for i in range(3)] == [["person"], [], []]
    three = open_flir(root, "flir-v1", split="train", classes=["person", "car", "bicycle"])
    assert [three.annotations(i).labels for i in range(3)] == [["person", "car"], ["bicycle"], []]
    with pytest.raises(ValueError, match=r"no category named \['pedestrian'\]"):
        open_flir(root, "flir-v1", classes=["pedestrian"])


def test_v1_splits(tmp_path: Path) -> None:
    root = make_v1(tmp_path / "flir")
    everything = open_flir(root, "flir-v1")
    assert everything.frame_ids == ["FLIR_00001", "FLIR_00002", "FLIR_00003", "FLIR_08863"]
    assert [everything.annotations(i).meta["split"] for i in (0, 3)] == ["train", "val"]
    assert open_flir(root, "flir-v1", split="validation").frame_ids == ["FLIR_08863"]
    assert open_flir(root / "val", "auto").frame_ids == ["FLIR_08863"]  # a single split folder
    with pytest.raises(FileNotFoundError, match="'video' not found"):
        open_flir(root, "flir-v1", split="video")
    with pytest.raises(ValueError, match="unknown flir-v1 split"):
        open_flir(root, "flir-v1", split="holdout")


def test_v1_corrupt_raw_rgb_is_skipped(tmp_path: Path) -> None:
    root = make_v1(tmp_path / "flir")
    (root / "train" / "RGB" / "FLIR_00001.jpg").write_bytes(b"not a jpeg")
    assert open_flir(root, "flir-v1", split="train")[0].rgb is None


V2_CATEGORIES = {1: "person", 2: "bike", 3: "car", 79: "other vehicle"}
V2_THERMAL = ["video-4FRnNpmSmwktFJKjg-frame-000000-aSvW3dYrR8cCbD2Y3.jpg",
              "video-4FRnNpmSmwktFJKjg-frame-000001-3XuSe2RxBQ4HZFvBM.jpg"]
V2_RGB = ["video-BzKCBhQQD5TD2ux4o-frame-000000-Cs7Jdc6tKAymPJWoG.jpg",
          "video-BzKCBhQQD5TD2ux4o-frame-000001-ob2iLJ3JvnBrYyNgw.jpg"]


def make_v2(root: Path, inverted_map: bool = False) -> Path:
    train = root / "images_thermal_train"
    _jpg(train / "data" / "video-22Yxy4hMdNhJ4FfbR-frame-000245-ZvhXwo4mbsoBwTFtz.jpg", 50)
    _coco(train / "coco.json", ["data/video-22Yxy4hMdNhJ4FfbR-frame-000245-ZvhXwo4mbsoBwTFtz.jpg"],
          [(0, 2, [1, 1, 2, 2]), (0, 79, [0, 0, 3, 3])], V2_CATEGORIES,
          extra={0: {"extra_info": {"video_id": "22Yxy4hMdNhJ4FfbR", "hours": "night"}}})
    _jpg(root / "images_rgb_train" / "data" / "video-Unrelated-frame-000010-abc.jpg", 40, (H, W, 3))
    _coco(root / "images_rgb_train" / "coco.json", ["data/video-Unrelated-frame-000010-abc.jpg"], [], V2_CATEGORIES)
    video = root / "video_thermal_test"
    for name in V2_THERMAL:
        _jpg(video / "data" / name, 70)
    _coco(video / "coco.json", [f"data/{n}" for n in V2_THERMAL], [(1, 1, [2, 3, 4, 5])], V2_CATEGORIES)
    for name in V2_RGB:
        _jpg(root / "video_rgb_test" / "data" / name, 30, (H * 2, W * 2, 3))
    mapping = dict(zip(V2_RGB, V2_THERMAL))
    if inverted_map:
        mapping = {t: r for r, t in mapping.items()}
    (root / "rgb_to_thermal_vid_map.json").write_text(json.dumps(mapping))
    return root


@pytest.mark.parametrize("inverted", [False, True])
def test_v2_video_pairs_come_from_the_map(tmp_path: Path, inverted: bool) -> None:
    root = make_v2(tmp_path / "FLIR_ADAS_v2", inverted_map=inverted)
    assert detect_format(root) == "flir-v2"
    source = open_flir(root, "flir-v2", split="test")
    assert source.frame_ids == [Path(n).stem for n in V2_THERMAL]
    sample = source[1]
    assert sample.rgb.shape == (H * 2, W * 2, 3) and sample.thermal.shape == (H, W)
    assert sample.meta["paths"]["rgb"].endswith(f"video_rgb_test/data/{V2_RGB[1]}")
    assert sample.meta["split"] == "video" and sample.meta["dataset"] == "flir-v2"
    np.testing.assert_array_equal(sample.boxes, [[2, 3, 6, 8]])


def test_v2_train_has_no_rgb_partner_and_aliases_names(tmp_path: Path) -> None:
    root = make_v2(tmp_path / "v2")
    source = open_flir(root, "flir-v2", split="train", classes=["person", "car", "bicycle"])
    assert source.missing_rgb == 0
    sample = source[0]
    assert sample.rgb is None and sample.thermal.shape == (H, W)
    assert sample.labels == ["bicycle"]  # 'bike' in the v2 file; 'other vehicle' filtered out
    assert sample.period == "night"  # from extra_info when the file has it
    assert open_flir(root, "flir-v2").frame_ids[0].startswith("video-22Yxy")
    assert len(open_flir(root, "flir-v2")) == 3


def test_period_comes_from_the_image_entries(tmp_path: Path) -> None:
    for source in (open_flir(make_v2(tmp_path / "v2"), "flir-v2"), open_flir(make_v1(tmp_path / "v1"), "flir-v1")):
        frames = range(len(source))
        assert [source.period(i) for i in frames] == [source.annotations(i).period for i in frames]
    assert open_flir(tmp_path / "v2", "flir-v2", split="train").period(0) == "night"


def make_aligned(root: Path, list_folder: str = "") -> Path:
    images = root / "JPEGImages"
    for number, stem in enumerate(("FLIR_00002", "FLIR_00005", "FLIR_08863")):
        _jpg(images / f"{stem}_PreviewData.jpeg", 100 + number)
        _jpg(images / f"{stem}_RGB.jpg", 20, (H, W, 3))
        objects = "".join(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{d}</difficult>"
            f"<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>"
            "</object>"
            for name, box, d in (("car", (1, 1, 4, 3), 0), ("person", (5, 2, 7, 7), number % 2))
        )
        xml = (f"<Annotation><folder>JPEGImages</folder><filename>{stem}_PreviewData.jpeg</filename>"
               f"<size><width>{W}</width><height>{H}</height><depth>3</depth></size>{objects}</Annotation>")
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}_PreviewData.xml").write_text(xml)
    lists = root / list_folder
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "align_train.txt").write_text("FLIR_00002_PreviewData\nFLIR_00005_PreviewData\n")
    (lists / "align_validation.txt").write_text("FLIR_08863_PreviewData\n")
    return root


@pytest.mark.parametrize("list_folder", ["", "ImageSets/Main"])
def test_aligned_release(tmp_path: Path, list_folder: str) -> None:
    root = make_aligned(tmp_path / "align", list_folder)
    assert detect_format(root) == "flir-aligned"
    train = open_source(root, image_set="train", classes=["person"])
    assert train.frame_ids == ["FLIR_00002", "FLIR_00005"]
    sample = train[1]
    assert sample.rgb.shape == (H, W, 3) and sample.thermal.shape == (H, W)
    assert sample.labels == ["person"]
    np.testing.assert_array_equal(sample.boxes, [[5, 2, 7, 7]])
    np.testing.assert_array_equal(sample.ignore, [True])  # <difficult>1</difficult>
    assert sample.meta["dataset"] == "flir-aligned" and sample.meta["rgb_aligned"] is True
    assert sample.meta["paths"]["thermal"].endswith("FLIR_00005_PreviewData.jpeg")
    assert sample.meta["paths"]["rgb"].endswith("FLIR_00005_RGB.jpg")
    assert open_flir(root, "flir-aligned", split="val").frame_ids == ["FLIR_08863"]
    assert len(open_flir(root, "flir-aligned")) == 3
    assert open_flir(root, "flir-aligned").annotations(0).labels == ["car", "person"]


def test_aligned_frame_spellings(tmp_path: Path) -> None:
    source = open_flir(make_aligned(tmp_path / "align"), "flir-aligned")
    for spelling in ("FLIR_00005", "JPEGImages/FLIR_00005_RGB.jpg", "FLIR_00005_PreviewData.jpeg"):
        assert "FLIR_00005" in source.frame_candidates(spelling)
    assert source.period(1) == "unknown"


def test_aligned_size_mismatch_and_bad_xml(tmp_path: Path) -> None:
    root = make_aligned(tmp_path / "align")
    _jpg(root / "JPEGImages" / "FLIR_00002_RGB.jpg", 20, (H + 1, W, 3))
    source = open_flir(root, "flir-aligned", split="train")
    with pytest.raises(DataFormatError, match=rf"FLIR_00002_RGB.jpg: image is {W}x{H + 1}"):
        source[0]
    xml = root / "Annotations" / "FLIR_00005_PreviewData.xml"
    xml.write_text("<Annotation>\n<object><name>person</name>\n</Annotation>")
    with pytest.raises(DataFormatError, match=rf"^{xml}:3: invalid XML"):
        source.annotations(1)
    xml.write_text("<Annotation><object><name>car</name><bndbox><xmin>a</xmin></bndbox></object></Annotation>")
    with pytest.raises(DataFormatError, match=r"object 1 \(car\): <xmin> not a number: 'a'"):
        read_voc_xml(xml)
    (root / "Annotations" / "FLIR_00005_PreviewData.xml").unlink()
    with pytest.raises(FileNotFoundError, match="FLIR_00005_PreviewData.xml: annotation file missing"):
        source.annotations(1)


def test_coco_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "coco.json"
    _coco(path, ["a.jpg"], [(0, 7, [1, 1, 1, 1])], {1: "person"})
    with pytest.raises(DataFormatError, match=rf"^{path}: annotations\[0\] \(id 1\) has category_id 7"):
        read_coco_annotations(path)
    _coco(path, ["a.jpg"], [(3, 1, [1, 1, 1, 1])], {1: "person"})
    with pytest.raises(DataFormatError, match="unknown image_id 3"):
        read_coco_annotations(path)
    _coco(path, ["a.jpg"], [(0, 1, [1, 1, -1, 1])], {1: "person"})
    with pytest.raises(DataFormatError, match="negative"):
        read_coco_annotations(path)
    path.write_text('{"images": [\n  {"id": 0,}\n]}')
    with pytest.raises(DataFormatError, match=rf"^{path}:2: invalid json"):
        read_coco_annotations(path)


def test_fake_rgb_for_flir(tmp_path: Path) -> None:
    root = make_aligned(tmp_path / "align")
    fake_root = tmp_path / "fake"
    (fake_root / "fake_visible").mkdir(parents=True)
    cv2.imwrite(str(fake_root / "fake_visible" / "FLIR_00002.png"), np.full((H, W, 3), 9, np.uint8))
    source = open_flir(root, "flir-aligned", split="train", fake_rgb_root=fake_root)
    assert source[0].fake_rgb.shape == (H, W, 3)
    with pytest.raises(FileNotFoundError, match="fake RGB image missing"):
        source[1]
