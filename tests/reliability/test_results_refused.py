"""Result files that would silently change a miss rate, or that got a message without a line, as
`rgbt evaluate` sees them: aggregated txt, per-frame folders, COCO results json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from reliability_fixtures import (
    FRAMES,
    LIST_NAME,
    evaluate,
    kaist_json,
    make_kaist_root,
    mr_all,
    perfect_coco,
    perfect_folder,
    perfect_txt,
    run,
    write_json,
    write_list,
)

from rgbt.evaluation.missrate import height_scaled


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_kaist_root(tmp_path / "kaist", images=False)


# --------------------------------------------------------------------------------------------
# aggregated txt
# --------------------------------------------------------------------------------------------

TXT_CASES = {
    "trailing comma": ("2,300,150,50,100,0.9,", "field 7 is empty (a trailing or doubled comma)"),
    "doubled comma": ("2,300,,150,50,100,0.9", "field 3 is empty (a trailing or doubled comma)"),
    "comma and space inside a line": ("2,300 150,50,100,0.9", "mixes commas and spaces between fields ('300 150')"),
    "underscore digits": ("2,3_00,150,50,100,0.9", "field 'x' is not a number: '3_00'"),
    "hex": ("2,0x10,150,50,100,0.9", "field 'x' is not a number: '0x10'"),
    "float32 overflow": ("2,300,150,50,1e39,0.9", "h=1e+39 is not a finite float32 coordinate"),
    "infinite score": ("2,300,150,50,100,inf", "field 'score' is not finite: 'inf'"),
    "too many fields": ("2 300 150 50 100 0.9 7", "expected 6 fields 'idx,x,y,w,h,score', got 7"),
}


@pytest.mark.parametrize("case", sorted(TXT_CASES))
def test_malformed_aggregated_line_is_located(root: Path, tmp_path: Path, capsys, case: str) -> None:
    line, message = TXT_CASES[case]
    results = tmp_path / "r.txt"
    results.write_text(f"1,100,100,40,80,0.9\n{line}\n3,400,200,30,60,0.9\n")
    code, _out, err = evaluate(root, results, capsys)
    assert code == 1 and f"{results}:2: {message}" in err


@pytest.mark.parametrize("text", [
    "1,100,100,40,80,0.9\n   \n2,300,150,50,100,0.9\n\t\n3,400,200,30,60,0.9\n",  # whitespace-only lines
    "1,100,100,40,80,0.9\n2 300 150 50 100 0.9\n3\t400\t200\t30\t60\t0.9\n",  # a delimiter per line
    "1 , 100 , 100 , 40 , 80 , 0.9\r\n2,300,150,50,100,0.9\r\n3,400,200,30,60,0.9",  # spaces, CRLF, no last EOL
])
def test_aggregated_layouts_the_readme_allows(root: Path, tmp_path: Path, capsys, text: str) -> None:
    results = tmp_path / "r.txt"
    results.write_text(text)
    code, out, _err = evaluate(root, results, capsys)
    assert code == 0 and mr_all(out) == 0.0


def test_results_of_another_list_name_both_files(root: Path, tmp_path: Path, capsys) -> None:
    """A valid results file evaluated against a shorter list: the message says which list and how many frames."""
    listing = write_list(root, "two", FRAMES[:2])
    results = perfect_txt(tmp_path / "r.txt")
    code, _out, err = evaluate(root, results, capsys, image_set="two")
    assert code == 1
    assert f"{results}:3: image index '3' is not an image of the list (expected 1..2)" in err
    assert f"the ground truth {listing} has 2 frames" in err


# --------------------------------------------------------------------------------------------
# per-frame folders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["set06_V000_I0039.txt", "I00039.txt", "set06_V000_I00039.det", "notes.md"])
def test_misnamed_frame_file_is_refused(root: Path, tmp_path: Path, capsys, name: str) -> None:
    """A misnamed file's detections used to be skipped without a word (MR 0 -> 31.43)."""
    folder = perfect_folder(tmp_path / "det")
    (folder / "set06_V000_I00039.txt").rename(folder / name)
    code, _out, err = evaluate(root, folder, capsys)
    assert code == 1
    assert f"{folder}: 1 files are not named after a KAIST frame" in err and name in err


def test_many_misnamed_files_are_listed_in_part(root: Path, tmp_path: Path, capsys) -> None:
    folder = perfect_folder(tmp_path / "det")
    for k in range(7):
        (folder / f"frame{k}.txt").write_text("")
    code, _out, err = evaluate(root, folder, capsys)
    assert code == 1 and "7 files are not named after a KAIST frame" in err
    assert "frame4.txt and 2 more" in err and "frame5.txt" not in err


def test_frame_folder_extras_that_are_fine(root: Path, tmp_path: Path, capsys) -> None:
    """Hidden files are not results; files of frames outside the list are not read (subset evaluation)."""
    folder = perfect_folder(tmp_path / "det")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "set11_V001_I01999.txt").write_text("person 1 1 2 2 0.5\n")
    code, out, _err = evaluate(root, folder, capsys)
    assert code == 0 and mr_all(out) == 0.0


def test_frame_file_with_another_label_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    folder = perfect_folder(tmp_path / "det")
    path = folder / "set06_V000_I00039.txt"
    path.write_text("person 299 149 349 249 0.9\ncar 10 10 20 20 0.99\n")
    code, _out, err = evaluate(root, folder, capsys)
    assert code == 1 and f"{path}:2: label 'car' is not 'person'" in err


def test_frame_folder_for_another_list_names_it(root: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "det"
    folder.mkdir()
    (folder / "set11_V001_I01999.txt").write_text("person 1 1 2 2 0.5\n")
    code, _out, err = evaluate(root, folder, capsys)
    assert code == 1
    assert f"no detection file for any of the 3 frames of {root / 'imageSets' / (LIST_NAME + '.txt')}" in err


# --------------------------------------------------------------------------------------------
# COCO results json
# --------------------------------------------------------------------------------------------


def test_only_person_detections_are_scored_and_the_rest_counted(root: Path, tmp_path: Path, capsys, caplog) -> None:
    """Non-person categories used to count as persons (MR 0 -> 7.74): they are left out, with a count."""
    entries = perfect_coco()
    entries += [{"image_id": i, "category_id": 3, "bbox": [10, 10, 30, 60], "score": 0.99} for i in (0, 1)]
    entries.append({"image_id": 2, "category_id": 2, "bbox": [10, 10, 30, 60], "score": 0.99})
    results = write_json(tmp_path / "r.json", entries)
    with caplog.at_level(logging.WARNING):
        code, out, _err = evaluate(root, results, capsys)
    assert code == 0 and mr_all(out) == 0.0
    assert (f"{results}: scoring the 3 detections of category_id 1 (person); left out 3 of other categories "
            "(category_id: count) {2: 1, 3: 2}") in caplog.text


def test_person_category_comes_from_the_ground_truth_json(tmp_path: Path, capsys, caplog) -> None:
    data = kaist_json()
    data["categories"] = [{"id": 7, "name": "person"}, {"id": 1, "name": "people"}]
    for ann in data["annotations"]:
        ann["category_id"] = 7
    gt = write_json(tmp_path / "gt.json", data)
    entries = [dict(e, category_id=7) for e in perfect_coco()] + [
        {"image_id": 0, "category_id": 1, "bbox": [10, 10, 30, 60], "score": 0.99}]
    code, out, _err = run(["evaluate", "--gt", gt, "--results", write_json(tmp_path / "r.json", entries)], capsys)
    assert code == 0 and mr_all(out) == 0.0 and "left out 1 of other categories" in caplog.text


def test_results_without_any_person_entry_are_refused(root: Path, tmp_path: Path, capsys) -> None:
    results = write_json(tmp_path / "r.json", [dict(e, category_id=0) for e in perfect_coco()])
    code, _out, err = evaluate(root, results, capsys)
    assert code == 1
    assert f"{results}: none of the 3 entries has category_id 1 (person); categories found (category_id: count): " \
           "{0: 3}" in err


COCO_CASES = {
    "no category_id": ({"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, "entry 3 lacks the key 'category_id'"),
    "string bbox value": ({"image_id": 1, "category_id": 1, "bbox": ["1", 2, 3, 4], "score": 0.5},
                          "entry 3: x is not a finite number: '1'"),
    "true score": ({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": True},
                   "entry 3: score is not a finite number: True"),
    "float32 overflow": ({"image_id": 1, "category_id": 1, "bbox": [1e38, 2, 3e38, 4], "score": 0.5},
                         "entry 3: x + w=4e+38 is not a finite float32 coordinate"),
    "fractional category": ({"image_id": 1, "category_id": 1.5, "bbox": [1, 2, 3, 4], "score": 0.5},
                            "entry 3: category_id: expected an integer, got 1.5"),
    "unknown image": ({"image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
                      "entry 3: image_id 3 is not an image of the ground truth; the ground truth "),
}


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_malformed_coco_results_entry(root: Path, tmp_path: Path, capsys, case: str) -> None:
    entry, message = COCO_CASES[case]
    results = write_json(tmp_path / "r.json", [*perfect_coco(), entry])
    code, _out, err = evaluate(root, results, capsys)
    assert code == 1 and f"{results}: {message}" in err


def test_coco_results_that_are_not_utf8_name_the_file(root: Path, tmp_path: Path, capsys) -> None:
    results = tmp_path / "r.json"
    results.write_bytes(json.dumps(perfect_coco()).encode()[:-1] + b"\xff]")
    code, _out, err = evaluate(root, results, capsys)
    assert code == 1 and f"{results}: not a text file (invalid UTF-8" in err


def test_published_coco_results_json_still_reads(shared_data: Path, capsys, caplog) -> None:
    kaist = shared_data / "kaist"
    code, out, _err = run(["evaluate", "--gt", kaist / "KAIST_annotation.json", "--results",
                           kaist / "detections" / "MLPD_result.json"], capsys)
    assert code == 0 and round(mr_all(out), 2) == 7.58 and "left out" not in caplog.text


# --------------------------------------------------------------------------------------------
# evaluate's own arguments and output
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", ["inf", "nan", "0", "-1"])
def test_height_scale_outside_its_domain(root: Path, tmp_path: Path, capsys, factor: str) -> None:
    """An infinite factor made every positive an ignore region (MR nan, exit 0). The command line refuses it
    (usage error, exit 2); the library refuses it too, for callers that do not go through the parser."""
    with pytest.raises(SystemExit) as usage:
        run(["evaluate", "--gt", root, "--image-set", LIST_NAME, "--height-scale", factor,
             "--results", perfect_txt(tmp_path / "r.txt")], capsys)
    assert usage.value.code == 2
    assert f"argument --height-scale: expected a number > 0, got '{factor}'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="the height scale factor must be a finite number > 0"):
        height_scaled("reasonable", float(factor))


def test_json_output_has_no_nan(root: Path, tmp_path: Path, capsys) -> None:
    """A period without positives has no MR and no recall: null, never the non-json NaN."""
    write_list(root, "day", FRAMES[:2])
    results, out_json = tmp_path / "r.txt", tmp_path / "scores.json"
    results.write_text("1,100,100,40,80,0.9\n")
    code, _out, _err = run(["evaluate", "--gt", root, "--image-set", "day", "--setup", "heavy", "--json", out_json,
                            "--results", results], capsys)
    assert code == 0
    text = out_json.read_text()
    assert "NaN" not in text
    (row,) = json.loads(text)
    assert row["all"] is None and row["recall"]["all"] is None
