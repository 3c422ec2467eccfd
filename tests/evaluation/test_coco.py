"""COCO AP through pycocotools, categories matched by name."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.errors import DataFormatError
from rgbt.data.sample import PairSample
from rgbt.evaluation.coco import evaluate_coco, format_table

#: FLIR v1 numbering: person 1, bicycle 2, car 3 (not the order of CLASSES below).
CATEGORIES = [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}, {"id": 3, "name": "car"}]
CLASSES = ["person", "car", "bicycle"]

#: image id -> [(category id, [x, y, w, h])]; image ids start at 0 on purpose.
OBJECTS = {
    0: [(1, [10, 10, 20, 50]), (3, [100, 100, 80, 40])],
    1: [(1, [200, 50, 25, 60]), (2, [300, 200, 40, 30]), (3, [20, 300, 90, 50])],
}


def ground_truth() -> dict:
    images = [{"id": i, "file_name": f"FLIR_{i:05d}.jpeg", "height": 512, "width": 640} for i in OBJECTS]
    annotations = [
        {"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
        for k, (i, c, b) in enumerate((i, c, b) for i, objs in OBJECTS.items() for c, b in objs)
    ]
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def perfect_results(skip_category: int | None = None) -> list[dict]:
    return [
        {"image_id": i, "category_id": c, "bbox": b, "score": 0.9}
        for i, objs in OBJECTS.items() for c, b in objs if c != skip_category
    ]


def test_perfect_results_give_ap_one(tmp_path) -> None:
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(ground_truth()))
    res_path.write_text(json.dumps(perfect_results()))
    out = evaluate_coco(gt_path, res_path, CLASSES)
    assert out["AP"] == pytest.approx(1.0) and out["AP50"] == pytest.approx(1.0) and out["AP75"] == pytest.approx(1.0)
    assert out["per_class"] == pytest.approx({"person": 1.0, "car": 1.0, "bicycle": 1.0})
    assert out["n_images"] == 2


def test_missing_class_scores_zero() -> None:
    """No car detection: car AP 0, person and bicycle 1, so the mean AP is 2/3."""
    out = evaluate_coco(ground_truth(), perfect_results(skip_category=3), CLASSES)
    assert out["per_class"]["car"] == 0.0
    assert out["AP"] == pytest.approx(2 / 3)


def test_person_only() -> None:
    """Restricting to person ignores the other classes' (missing) detections."""
    out = evaluate_coco(ground_truth(), perfect_results(skip_category=3), ["person"])
    assert out["AP"] == pytest.approx(1.0) and list(out["per_class"]) == ["person"]


def test_one_false_positive_ranked_first_halves_precision_at_low_recall() -> None:
    """person only: 2 persons found (0.9) plus one false positive above them (0.95): the
    precision envelope is 2/3 at every recall level, so AP = 2/3 at every IoU threshold."""
    results = perfect_results(skip_category=3) + [{"image_id": 0, "category_id": 1, "bbox": [400, 400, 30, 60],
                                                   "score": 0.95}]
    out = evaluate_coco(ground_truth(), results, ["person"])
    assert out["AP"] == pytest.approx(2 / 3, abs=1e-6)


def test_arrays_use_class_order_not_file_ids() -> None:
    """Arrays carry the detector's label (1-based into CLASSES: car = 2) and are matched by name
    to the file's ids (car = 3)."""
    index = {1: 1, 3: 2, 2: 3}  # file id -> label in CLASSES order
    arrays = []
    for objs in OBJECTS.values():
        rows = [[x, y, x + w, y + h, 0.9, index[c]] for c, (x, y, w, h) in objs]
        arrays.append(np.array(rows, dtype=np.float64))
    out = evaluate_coco(ground_truth(), arrays, CLASSES)
    assert out["AP"] == pytest.approx(1.0)


def test_results_classes_remap() -> None:
    """A results json numbered in its own class order (person 1, car 2, bicycle 3)."""
    own = {1: 1, 3: 2, 2: 3}
    results = [dict(r, category_id=own[r["category_id"]]) for r in perfect_results()]
    assert evaluate_coco(ground_truth(), results, CLASSES, results_classes=CLASSES)["AP"] == pytest.approx(1.0)
    assert evaluate_coco(ground_truth(), results, CLASSES)["AP"] < 0.5


def test_samples_as_ground_truth_and_name_aliases() -> None:
    """Annotation records work as ground truth; 'bike' reads as 'bicycle'."""
    samples = [
        PairSample(None, None, np.array([[10, 10, 30, 60], [50, 50, 90, 80]]), labels=["person", "bike"],
                   occlusion=[0, 0], ignore=[0, 0], meta={"frame_id": "a"}),
        PairSample(None, None, np.zeros((0, 4)), meta={"frame_id": "b"}),
    ]
    arrays = [np.array([[10, 10, 30, 60, 0.8, 1], [50, 50, 90, 80, 0.7, 2]]), np.zeros((0, 6))]
    out = evaluate_coco(samples, arrays, ["person", "bicycle"])
    assert out["per_class"] == pytest.approx({"person": 1.0, "bicycle": 1.0})


def test_no_detections_and_class_without_ground_truth() -> None:
    gt = ground_truth()
    gt["categories"].append({"id": 18, "name": "dog"})
    out = evaluate_coco(gt, [], ["person", "dog"])
    assert out["per_class"]["person"] == 0.0 and math.isnan(out["per_class"]["dog"])
    assert out["AP"] == 0.0
    out = evaluate_coco(gt, perfect_results(), ["person", "dog"])
    assert out["AP"] == pytest.approx(1.0) and math.isnan(out["per_class"]["dog"])


def test_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"classes \['truck'\] are not categories"):
        evaluate_coco(ground_truth(), perfect_results(), ["truck"])
    with pytest.raises(DataFormatError, match="entry 0: image_id 9 is not an image"):
        evaluate_coco(ground_truth(), [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(ValueError, match=r"label 4 is not in 1\.\.3"):
        evaluate_coco(ground_truth(), [np.array([[0, 0, 1, 1, 0.5, 4]]), np.zeros((0, 6))], CLASSES)
    bad = tmp_path / "gt.json"
    bad.write_text("{")
    with pytest.raises(DataFormatError, match=rf"^{bad}:1: invalid json"):
        evaluate_coco(bad, [])


def test_cli_picks_coco_for_a_generic_json(tmp_path, capsys) -> None:
    gt_path, res_path, out = tmp_path / "gt.json", tmp_path / "res.json", tmp_path / "ap.json"
    gt_path.write_text(json.dumps(ground_truth()))
    res_path.write_text(json.dumps(perfect_results(skip_category=3)))
    assert main(["evaluate", "--gt", str(gt_path), "--results", str(res_path), "--classes", *CLASSES,
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| AP car |" in table.splitlines()[0].replace("AP person | ", "")
    rows = json.loads(out.read_text())
    assert rows[0]["results"] == str(res_path) and rows[0]["AP"] == pytest.approx(2 / 3)
    assert format_table(rows).count("\n") == 2
