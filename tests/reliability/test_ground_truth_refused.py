"""Ground truth that would silently change a miss rate is refused by `rgbt evaluate` with the file,
the line or key, and the value: KAIST_annotation.json, bbGt files, image-set lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliability_fixtures import (
    FRAMES,
    LIST_NAME,
    PERSONS,
    bbgt_line,
    evaluate,
    kaist_json,
    make_kaist_root,
    mr_all,
    perfect_txt,
    run,
    write_bbgt_text,
    write_json,
    write_list,
)

from rgbt.data.kaist import annotation_path


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_kaist_root(tmp_path / "kaist", images=False)


def test_the_fixtures_score_zero(root: Path, tmp_path: Path, capsys) -> None:
    results = perfect_txt(tmp_path / "r.txt")
    code, out, _err = run(["evaluate", "--gt", root, "--image-set", LIST_NAME, "--results", results], capsys)
    assert code == 0 and mr_all(out) == 0.0
    gt = write_json(tmp_path / "KAIST_annotation.json", kaist_json())
    code, out, _err = run(["evaluate", "--gt", gt, "--results", results], capsys)
    assert code == 0 and mr_all(out) == 0.0


# --------------------------------------------------------------------------------------------
# KAIST_annotation.json
# --------------------------------------------------------------------------------------------


def _broken(change) -> dict:
    data = kaist_json()
    change(data)
    return data


JSON_CASES = {
    # A repeated image id used to move annotations to other frames (MLPD 7.58 -> 14.83).
    "duplicate image id": (lambda d: d["images"][1].update(id=0), "images[1].id 0 repeats images[0].id"),
    "duplicate frame": (lambda d: d["images"][2].update(im_name=FRAMES[0]),
                        f'images[2].im_name "{FRAMES[0]}" repeats images[0].im_name'),
    "null image id": (lambda d: d["images"][0].update(id=None), "images[0].id: expected an integer, got null"),
    "string id": (lambda d: d["images"][0].update(id="abc"), 'images[0].id: expected an integer, got "abc"'),
    "null bbox": (lambda d: d["annotations"][1].update(bbox=None),
                  "annotations[1] (id 1).bbox: expected [x, y, w, h], got null"),
    "null image_id": (lambda d: d["annotations"][0].update(image_id=None),
                      "annotations[0] (id 0).image_id: expected an integer, got null"),
    "category without id": (lambda d: d["categories"][1].pop("id"), "categories[1] lacks the key 'id'"),
    "category without name": (lambda d: d["categories"][1].pop("name"), "categories[1] lacks the key 'name'"),
    "unknown category name": (lambda d: d["categories"][1].update(name="pedestrian"),
                              "categories[1].name 'pedestrian' is not a KAIST label"),
    "occlusion 7": (lambda d: d["annotations"][0].update(occlusion=7),
                    "annotations[0] (id 0).occlusion 7 is not a KAIST occlusion level [0, 1, 2]"),
    "ignore 0.5": (lambda d: d["annotations"][0].update(ignore=0.5),
                   "annotations[0] (id 0).ignore: expected a flag 0 or 1, got 0.5"),
    "float32 overflow": (lambda d: d["annotations"][0].update(bbox=[1, 2, 3, 1e39]),
                         "annotations[0] (id 0).bbox: h=1e+39 is not a finite float32 coordinate"),
    "negative size": (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]),
                      "annotations[0] (id 0).bbox: negative box size w=-3.0"),
    "unknown image": (lambda d: d["annotations"][0].update(image_id=9),
                      "annotations[0] (id 0) refers to unknown image_id 9"),
    "bad frame name": (lambda d: d["images"][0].update(im_name="set6/V0/I19"),
                       "images[0].im_name: not a KAIST frame id (expected setXX/VYYY/IZZZZZ): 'set6/V0/I19'"),
    "zero width image": (lambda d: d["images"][0].update(width=0), "images[0].width must be > 0, got 0"),
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_malformed_kaist_json(tmp_path: Path, capsys, case: str) -> None:
    change, message = JSON_CASES[case]
    gt = write_json(tmp_path / "KAIST_annotation.json", _broken(change))
    code, _out, err = run(["evaluate", "--gt", gt, "--results", perfect_txt(tmp_path / "r.txt")], capsys)
    assert code == 1
    assert f"{gt}: {message}" in err


@pytest.mark.parametrize(("literal", "key"), [("NaN", "bbox[2]"), ("Infinity", "bbox[3]"), ("-Infinity", "bbox[0]"),
                                              ("1e999", "bbox[1]")])
def test_non_finite_json_numbers_are_refused(tmp_path: Path, capsys, literal: str, key: str) -> None:
    """Python's json reads NaN, Infinity and 1e999 (inf); a NaN box used to drop a positive (7.58 -> 9.08)."""
    position = int(key[-2])
    text = json.dumps(kaist_json()).replace('"bbox": [300.0, 150.0, 50.0, 100.0]', '"bbox": ['
                                            + ", ".join(literal if k == position else f"{v}"
                                                        for k, v in enumerate(PERSONS[1])) + "]")
    assert literal in text
    gt = tmp_path / "KAIST_annotation.json"
    gt.write_text(text)
    code, _out, err = run(["evaluate", "--gt", gt, "--results", perfect_txt(tmp_path / "r.txt")], capsys)
    assert code == 1
    assert f"{gt}: annotations[1] (id 1).{key}: expected a finite number, got " in err


def test_repeated_json_key_is_refused(tmp_path: Path, capsys) -> None:
    text = json.dumps(kaist_json()).replace('"id": 1, "im_name"', '"id": 1, "id": 0, "im_name"', 1)
    gt = tmp_path / "KAIST_annotation.json"
    gt.write_text(text)
    code, _out, err = run(["evaluate", "--gt", gt, "--results", perfect_txt(tmp_path / "r.txt")], capsys)
    assert code == 1 and f"{gt}: an object repeats the key 'id'" in err


def test_json_list_mismatch_names_both_files(tmp_path: Path, capsys) -> None:
    gt = write_json(tmp_path / "KAIST_annotation.json", kaist_json(FRAMES[:2], PERSONS[:2]))
    listing = write_list(tmp_path, "three", FRAMES)
    code, _out, err = run(["evaluate", "--gt", gt, "--image-set", listing, "--results",
                           perfect_txt(tmp_path / "r.txt")], capsys)
    assert code == 1
    assert f"{gt}: 1 of the 3 frames listed in {listing} are not in the json (2 images), e.g. {FRAMES[2]}" in err


# --------------------------------------------------------------------------------------------
# bbGt annotation files
# --------------------------------------------------------------------------------------------

BBGT_CASES = {
    "occ 7": ("person 100 100 40 80 7 0 0 0 0 0 0", "occlusion flag 'occ' must be one of [0, 1, 2], got '7'"),
    "occ 1.5": ("person 100 100 40 80 1.5 0 0 0 0 0 0", "occlusion flag 'occ' must be one of [0, 1, 2], got '1.5'"),
    "h 1e39": ("person 100 100 40 1e39 0 0 0 0 0 0 0", "h=1e+39 is not a finite float32 coordinate"),
    "x + w beyond float32": ("person 3e38 100 3e38 80 0 0 0 0 0 0 0", "x + w=6e+38 is not a finite float32"),
    "ign 0.5": ("person 100 100 40 80 0 0 0 0 0 0.5 0", "ignore flag 'ign' must be one of [0, 1], got '0.5'"),
    "underscore digits": ("person 5_07 100 40 80 0 0 0 0 0 0 0", "field 'x' is not a number: '5_07'"),
    "non-ASCII digits": ("person \u0665 100 40 80 0 0 0 0 0 0 0", "field 'x' is not a number: '\u0665'"),
    "unknown label": ("pedestrian 100 100 40 80 0 0 0 0 0 0 0", "unknown label 'pedestrian'"),
    "nan": ("person 100 100 nan 80 0 0 0 0 0 0 0", "field 'w' is not finite: 'nan'"),
    "negative visible size": ("person 100 100 40 80 1 100 100 -4 8 0 0", "negative box size vw=-4.0 vh=8.0"),
    "field count": ("person 100 100 40 80 0 0 0 0 0 0", "bbGt version 3 needs 12 fields, got 11"),
}


@pytest.mark.parametrize("case", sorted(BBGT_CASES))
def test_bbgt_field_outside_its_domain(root: Path, tmp_path: Path, capsys, case: str) -> None:
    line, message = BBGT_CASES[case]
    path = write_bbgt_text(annotation_path(root, FRAMES[1]), [line])
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys)
    assert code == 1
    assert f"{path}:2: {message}" in err


@pytest.mark.parametrize(("header", "message"), [
    ("% bbGt version=4", "unsupported bbGt version 4 (known: 0-3)"),
    ("% bbGt", "expected a header like '% bbGt version=3', got '% bbGt'"),
    ("person 1 2 3 4 0 0 0 0 0 0 0", "expected a header like '% bbGt version=3'"),
])
def test_bbgt_header_rules(root: Path, tmp_path: Path, capsys, header: str, message: str) -> None:
    path = annotation_path(root, FRAMES[0])
    path.write_text(f"{header}\n{bbgt_line(PERSONS[0])}\n")
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys)
    assert code == 1 and f"{path}:1: {message}" in err


def test_bbgt_comments_blank_and_tab_lines_are_read(root: Path, tmp_path: Path, capsys) -> None:
    path = annotation_path(root, FRAMES[1])
    x, y, w, h = PERSONS[1]
    path.write_bytes(f"% bbGt version=3\r\n% a comment\r\n \t \r\nperson\t{x:g} {y:g} {w:g} {h:g} 0 0 0 0 0 0 0\r\n"
                     .encode())
    code, out, _err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys)
    assert code == 0 and mr_all(out) == 0.0


def test_bbgt_that_is_not_utf8_names_the_file(root: Path, tmp_path: Path, capsys) -> None:
    path = annotation_path(root, FRAMES[2])
    path.write_bytes(b"% bbGt version=3\nperson \xff 1 1 1 0 0 0 0 0 0 0\n")
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys)
    assert code == 1 and f"{path}: not a text file (invalid UTF-8 at byte 24" in err


# --------------------------------------------------------------------------------------------
# image-set lists
# --------------------------------------------------------------------------------------------


def test_duplicated_frame_in_a_list_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    """A frame listed twice counted twice (MR 0 -> 35.19 on the issue's example)."""
    listing = write_list(root, "twice", [FRAMES[0], FRAMES[1], FRAMES[0].replace("/", "_"), FRAMES[2]])
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys, "twice")
    assert code == 1
    assert f"{listing}:3: frame {FRAMES[0]} is listed twice (first on line 1)" in err


def test_list_that_is_not_utf8_names_the_file(root: Path, tmp_path: Path, capsys) -> None:
    listing = root / "imageSets" / "latin1.txt"
    listing.write_bytes(FRAMES[0].encode() + b"\n\xe9\n")
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys, "latin1")
    assert code == 1 and f"{listing}: not a text file (invalid UTF-8 at byte 18" in err


@pytest.mark.parametrize("line", ["xset06/V000/I00019", "set06/V000/I0019", "set\u0660\u0666/V000/I00019"])
def test_list_line_that_is_not_a_frame(root: Path, tmp_path: Path, capsys, line: str) -> None:
    listing = write_list(root, "odd", [FRAMES[0], line])
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys, "odd")
    assert code == 1 and f"{listing}:2: not a KAIST frame id (expected setXX/VYYY/IZZZZZ): {line!r}" in err


def test_empty_list_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    listing = write_list(root, "empty", [])
    code, _out, err = evaluate(root, perfect_txt(tmp_path / "r.txt"), capsys, "empty")
    assert code == 1 and f"{listing}: the image set lists no frame" in err
