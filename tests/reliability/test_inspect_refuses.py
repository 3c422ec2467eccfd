"""`rgbt inspect` fails (exit 1, with a message naming the file) on every root a run would read
wrongly; FLIR file names leaving the root are refused by every reader; class names that match no
category are refused before any training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability_fixtures import (
    FRAMES,
    LIST_NAME,
    kaist_json,
    make_flir_aligned,
    make_flir_v1,
    make_kaist_root,
    run,
    write_json,
    write_list,
)

from rgbt.data.errors import DataFormatError
from rgbt.data.imageio import write_image
from rgbt.data.kaist import image_path
from rgbt.data.source import open_source


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_kaist_root(tmp_path / "kaist")


def test_a_complete_root_passes(root: Path, capsys) -> None:
    code, out, _err = run(["inspect", root, "--image-set", LIST_NAME], capsys)
    assert code == 0 and "errors          0" in out


def test_missing_thermal_image(root: Path, capsys) -> None:
    thermal = image_path(root, FRAMES[1], "thermal")
    thermal.unlink()
    image_path(root, FRAMES[2], "rgb").unlink()  # a missing RGB image is counted, not an error
    code, out, _err = run(["inspect", root, "--image-set", LIST_NAME], capsys)
    assert code == 1
    assert "missing images  rgb 1, thermal 1" in out and "errors          1" in out
    assert f"{thermal}: thermal image missing (the reference modality)" in out


def test_empty_list(root: Path, capsys) -> None:
    write_list(root, "empty", [])
    code, out, _err = run(["inspect", root, "--image-set", "empty"], capsys)
    assert code == 1 and f"{root}: no frame in image set 'empty'" in out


def test_root_without_frames(tmp_path: Path, capsys) -> None:
    root = tmp_path / "kaist"
    (root / "images" / "set06").mkdir(parents=True)
    code, out, _err = run(["inspect", root], capsys)
    assert code == 1 and f"{root}: no frame" in out


def test_duplicated_frames(root: Path, capsys) -> None:
    listing = write_list(root, "twice", [FRAMES[0], FRAMES[1], FRAMES[1]])
    code, out, _err = run(["inspect", root, "--image-set", "twice"], capsys)
    assert code == 1 and f"{listing}:3: frame {FRAMES[1]} is listed twice (first on line 2)" in out


def test_bbgt_domain_errors_are_listed(root: Path, capsys) -> None:
    from reliability_fixtures import write_bbgt_text

    from rgbt.data.kaist import annotation_path

    first = write_bbgt_text(annotation_path(root, FRAMES[0]), ["person 100 100 40 80 7 0 0 0 0 0 0"])
    second = write_bbgt_text(annotation_path(root, FRAMES[2]), ["pedestrian 100 100 40 80 0 0 0 0 0 0 0"])
    code, out, _err = run(["inspect", root, "--image-set", LIST_NAME], capsys)
    assert code == 1 and "errors          2" in out
    assert f"{first}:2: occlusion flag 'occ' must be one of [0, 1, 2], got '7'" in out
    assert f"{second}:2: unknown label 'pedestrian'" in out


def test_unknown_format_is_a_usage_error(root: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        run(["inspect", root, "--format", "kaist2"], capsys)
    assert info.value.code == 2 and "invalid choice: 'kaist2'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# interrupted synthetic roots
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rgbt.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("synth") / "root", 2, 2, seed=0, width=32, height=32,
                              progress=False)


def test_interrupted_synthetic_root(synthetic: Path, tmp_path: Path, capsys) -> None:
    """Killed before its last frame and its lists: the files present are fine, the root is not."""
    copy = Path(shutil.copytree(synthetic, tmp_path / "root"))
    assert run(["inspect", copy], capsys)[0] == 0
    image_path(copy, "set09/V000/I00000", "thermal").unlink()
    (copy / "imageSets" / "test.txt").unlink()
    code, out, _err = run(["inspect", copy], capsys)
    assert code == 1
    assert (f"{copy / 'synthetic.json'}: synthetic root generation did not finish: 1 of 4 frames are incomplete "
            f"(e.g. set09/V000/I00000); {copy / 'imageSets' / 'test.txt'} is missing; re-run `rgbt synth` with the "
            "same arguments to finish it") in out


def test_synthetic_manifest_out_of_range(synthetic: Path, tmp_path: Path, capsys) -> None:
    import json

    copy = Path(shutil.copytree(synthetic, tmp_path / "root"))
    manifest = json.loads((copy / "synthetic.json").read_text())
    manifest["frames"][1]["dx"] = None
    (copy / "synthetic.json").write_text(json.dumps(manifest))
    code, out, _err = run(["inspect", copy], capsys)
    assert code == 1 and f"{copy / 'synthetic.json'}: frames[1].dx: expected a number, got null" in out


# --------------------------------------------------------------------------------------------
# FLIR file names that leave the root
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../outside/FLIR_09999.jpeg", "/etc/passwd", "thermal_8_bit/../../x.jpeg",
                                  "thermal_8_bit\\..\\..\\x.jpeg"])
def test_file_name_outside_the_root_is_refused(tmp_path: Path, capsys, name: str) -> None:
    outside = tmp_path / "outside" / "FLIR_09999.jpeg"
    write_image(outside, (__import__("numpy").full((16, 20), 200, "uint8")))
    root = make_flir_v1(tmp_path / "flir", ["thermal_8_bit/FLIR_00001.jpeg", name])
    annotation = root / "train" / "thermal_annotations.json"
    message = f"{annotation}: images[1].file_name: {name!r} points outside {root / 'train'}"
    code, out, _err = run(["inspect", root], capsys)
    assert code == 1 and message in out
    # no reader opens it: not show, not a training or detection run (they all open the root this way)
    code, _out, err = run(["show", root, "FLIR_09999", "--out", tmp_path / "shown.png"], capsys)
    assert code == 1 and message in err and not (tmp_path / "shown.png").exists()
    with pytest.raises(DataFormatError, match="points outside"):
        open_source(root, classes=["person"])


VOC_CASES = {
    "difficult 2": ([("person", (2, 2, 6, 12), 2)], "object 1 (person): <difficult> must be 0 or 1, got '2'"),
    "xmax < xmin": ([("car", (8, 4, 6, 10), 0)], "object 1 (car): <bndbox> negative box size: xmin=8.0"),
    "nan": ([("car", (8, 4, float("nan"), 10), 0)], "object 1 (car): <xmax> not finite: 'nan'"),
    "float32 overflow": ([("car", (8, 4, 1e39, 10), 0)],
                         "object 1 (car): <bndbox> xmax=1e+39 is not a finite float32 coordinate"),
    "no name": ([("", (8, 4, 9, 10), 0)], "object 1 has no <name>"),
}


@pytest.mark.parametrize("case", sorted(VOC_CASES))
def test_voc_field_outside_its_domain(tmp_path: Path, capsys, case: str) -> None:
    from reliability_fixtures import voc_xml

    objects, message = VOC_CASES[case]
    root = make_flir_aligned(tmp_path / "aligned")
    xml = root / "Annotations" / "FLIR_00005_PreviewData.xml"
    xml.write_text(voc_xml(objects, "FLIR_00005"))
    code, out, _err = run(["inspect", root], capsys)
    assert code == 1 and f"{xml}: {message}" in out


COCO_CASES = {
    "iscrowd 2": (lambda d: d["annotations"][0].update(iscrowd=2),
                  "annotations[0] (id 1).iscrowd: expected a flag 0 or 1, got 2"),
    "negative area": (lambda d: d["annotations"][1].update(area=-4), "annotations[1] (id 2).area is negative: -4"),
    "repeated image id": (lambda d: d["images"][1].update(id=0), "images[1].id 0 repeats images[0].id"),
    "repeated category id": (lambda d: d["categories"][2].update(id=1), "categories[2].id 1 is used by another"),
    "null file name": (lambda d: d["images"][0].update(file_name=None),
                       "images[0].file_name: expected a non-empty string, got null"),
    "same frame twice": (lambda d: d["images"][1].update(file_name=d["images"][0]["file_name"]),
                         "images[1].file_name 'thermal_8_bit/FLIR_00001.jpeg' is the frame of images[0] again"),
    "string bbox": (lambda d: d["annotations"][0].update(bbox="2 2 4 8"),
                    "annotations[0] (id 1).bbox: expected [x, y, w, h], got \"2 2 4 8\""),
}


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_coco_field_outside_its_domain(tmp_path: Path, capsys, case: str) -> None:
    import json

    change, message = COCO_CASES[case]
    root = make_flir_v1(tmp_path / "flir")
    path = root / "train" / "thermal_annotations.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    code, out, _err = run(["inspect", root], capsys)
    assert code == 1 and f"{path}: {message}" in out


# --------------------------------------------------------------------------------------------
# class names that match no category
# --------------------------------------------------------------------------------------------


def test_flir_class_that_matches_no_category(tmp_path: Path, capsys) -> None:
    v1 = make_flir_v1(tmp_path / "flir")
    with pytest.raises(ValueError, match=r"no category named \['pedestrian'\]; categories: \['bicycle', 'car', "
                                         r"'person'\]"):
        open_source(v1, classes=["person", "pedestrian"])
    aligned = make_flir_aligned(tmp_path / "aligned")
    with pytest.raises(ValueError, match=r"no category named \['bicycle'\]; categories: \['car', 'person'\]"):
        open_source(aligned, classes=["person", "bicycle"])
    with pytest.raises(ValueError, match="no class given"):
        open_source(aligned, classes=[])
    assert open_source(aligned, classes=["Person"]).annotations(0).labels == ["person"]


def test_train_detector_refuses_an_unknown_class_before_training(tmp_path: Path, capsys) -> None:
    aligned = make_flir_aligned(tmp_path / "aligned")
    run_dir = tmp_path / "run"
    code, _out, err = run(["train-detector", "--config", "configs/detector/tiny.yaml", "--data", aligned,
                           "--set", "data.format=flir-aligned", "data.classes=[pedestrian]", "data.train_set=train",
                           "data.val_set=train", "--out", run_dir], capsys)
    assert code == 1
    assert f"flir-aligned {aligned}: no category named ['pedestrian']; categories: ['car', 'person']" in err
    assert not (run_dir / "last.pt").exists()


def test_kaist_class_that_is_not_a_kaist_label(root: Path) -> None:
    with pytest.raises(ValueError, match=r"no category named \['pedestrian'\]; categories: \['cyclist', 'people', "
                                         r"'person', 'person\?'\]"):
        open_source(root, image_set=LIST_NAME, classes=["pedestrian"])


def test_coco_evaluation_class_that_matches_no_category(tmp_path: Path, capsys) -> None:
    gt = make_flir_v1(tmp_path / "flir") / "train" / "thermal_annotations.json"
    results = write_json(tmp_path / "r.json", [{"image_id": 0, "category_id": 1, "bbox": [2, 2, 4, 8], "score": 1}])
    code, _out, err = run(["evaluate", "--gt", gt, "--results", results, "--classes", "pedestrian"], capsys)
    assert code == 1 and "classes ['pedestrian'] are not categories of the ground truth" in err
    code, out, _err = run(["evaluate", "--gt", gt, "--results", results, "--classes", "person"], capsys)
    assert code == 0 and "| 100.00 |" in out
    assert kaist_json()  # the KAIST fixture is COCO-like but read as KAIST (im_name), see test_ground_truth_refused
