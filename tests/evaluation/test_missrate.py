"""The KAIST log-average miss rate: published numbers on real results, and hand-worked cases.

Conventions of the hand-worked cases: frames are 640x512 (KAIST) unless said otherwise, every
person box is 50x100 px (height 100: a positive of the reasonable setup) well inside the border,
and detections are ``[x1, y1, x2, y2, score]``. The 9 reference points are
10^-2, 10^-1.75, ..., 10^0; MR = exp(mean(log(max(1e-10, miss_i)))).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rgbt.cli import main
from rgbt.data.sample import PairSample
from rgbt.evaluation.detections import read_detections
from rgbt.evaluation.missrate import (
    REFERENCE_FPPI,
    SETUPS,
    MissRateSetup,
    evaluate_miss_rate,
    evaluate_periods,
    load_ground_truth,
)

#: Published MR^-2 (reasonable, %, all/day/night) of the results in shared/data/kaist/detections.
REFERENCE = {
    "MLPD_result.txt": (7.58, 7.95, 6.95),
    "MLPD_result.json": (7.58, 7.95, 6.95),
    "MBNet_result.txt": (8.13, 8.28, 7.86),
    "MSDS-RCNN_result.txt": (11.34, 10.53, 12.94),
}

PERSON = (100.0, 100.0, 150.0, 200.0)


def frame(boxes=(), labels=None, occlusion=None, ignore=None, frame_id="set06/V000/I00019", size=None) -> PairSample:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    meta = {"frame_id": frame_id, "period": "day" if int(frame_id[3:5]) % 6 < 3 else "night"}
    if size is not None:
        meta["size"] = size
    return PairSample(
        None, None, boxes,
        labels=labels if labels is not None else ["person"] * n,
        occlusion=occlusion if occlusion is not None else [0] * n,
        ignore=ignore if ignore is not None else [0] * n,
        meta=meta,
    )


def dets(*rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


NONE = dets()


# --------------------------------------------------------------------------------------------
# real results: the published numbers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kaist_gt(shared_data):
    root = shared_data / "kaist"
    return {
        "root": load_ground_truth(root, "test-all-20"),
        "json": load_ground_truth(root / "KAIST_annotation.json"),
    }


@pytest.mark.parametrize("gt_form", ["root", "json"])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_published_numbers(kaist_gt, shared_data, gt_form, name) -> None:
    """The three published results reproduce all/day/night to two decimals, from txt and json
    detections, against the bbGt txt annotations (+ test-all-20) and against KAIST_annotation.json."""
    gt = kaist_gt[gt_form]
    detections = read_detections(shared_data / "kaist" / "detections" / name, gt.frame_ids, gt.image_ids)
    curves = evaluate_periods(gt.samples, detections)
    got = tuple(round(curves[p].mr * 100, 2) for p in ("all", "day", "night"))
    assert got == REFERENCE[name]
    assert [curves[p].n_images for p in ("all", "day", "night")] == [2252, 1455, 797]


def test_ground_truth_forms_agree(kaist_gt) -> None:
    """The txt and json ground truth are the same frames with the same boxes, labels aside
    (the json stores ignore regions as person + ignore)."""
    root, js = kaist_gt["root"], kaist_gt["json"]
    assert root.frame_ids == js.frame_ids
    assert js.image_ids == list(range(2252))
    for a, b in zip(root.samples, js.samples):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.occlusion, b.occlusion)


def test_cli_evaluate_table_json_plot(shared_data, tmp_path, capsys) -> None:
    root = shared_data / "kaist"
    results = [str(root / "detections" / "MLPD_result.txt"), str(root / "detections" / "MLPD_result.json")]
    out_json, out_png = tmp_path / "mr.json", tmp_path / "mr.png"
    code = main(["evaluate", "--gt", str(root), "--image-set", "test-all-20", "--results", *results,
                 "--setup", "reasonable", "far", "--json", str(out_json), "--plot", str(out_png)])
    assert code == 0
    table = capsys.readouterr().out
    assert "| 7.58 | 7.95 | 6.95 |" in table
    rows = json.loads(out_json.read_text())
    assert [(r["results"], r["setup"]) for r in rows] == [(results[0], "reasonable"), (results[0], "far"),
                                                          (results[1], "reasonable"), (results[1], "far")]
    assert round(rows[0]["all"], 2) == 7.58 and rows[0]["day"] == pytest.approx(rows[2]["day"])
    assert rows[0]["n_images"] == {"all": 2252, "day": 1455, "night": 797}
    assert 0 < rows[0]["recall"]["all"] <= 100
    assert out_png.stat().st_size > 10_000


def test_cli_bad_results_file_reports_file_and_line(shared_data, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1,10,10,20,40,0.5\n2,10,10,twenty,40,0.5\n")
    assert main(["evaluate", "--gt", str(shared_data / "kaist"), "--results", str(bad)]) == 1
    assert f"{bad}:2:" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# hand-worked cases
# --------------------------------------------------------------------------------------------


def test_no_detections_is_100_percent() -> None:
    """No detection at all: recall 0 at every point, MR = 1."""
    curve = evaluate_miss_rate([frame([PERSON])], [NONE])
    assert curve.mr == 1.0
    assert len(curve.fppi) == 0 and curve.recall == 0.0


def test_perfect_detections_clamp_at_1e_minus_10() -> None:
    """Every person found, no false positive: miss 0 everywhere, clamped to 1e-10, so MR = 1e-10."""
    gt = [frame([PERSON]), frame([PERSON, (300, 100, 350, 200)])]
    det = [dets([*PERSON, 0.9]), dets([*PERSON, 0.8], [300, 100, 350, 200, 0.7])]
    curve = evaluate_miss_rate(gt, det)
    assert curve.mr == pytest.approx(1e-10)
    np.testing.assert_array_equal(curve.fppi, [0, 0, 0])
    np.testing.assert_allclose(curve.miss_rate, [2 / 3, 1 / 3, 0])


def test_frame_with_ground_truth_but_no_detection_is_missed() -> None:
    """Two frames with one person each; only the first is detected. The one curve point is
    (fppi 0, recall 1/2), so the miss rate is 0.5 at all 9 points: MR = 0.5 (an evaluator that
    drops the frame without detections would report ~0)."""
    curve = evaluate_miss_rate([frame([PERSON]), frame([PERSON])], [dets([*PERSON, 0.9]), NONE])
    assert curve.mr == pytest.approx(0.5)
    assert curve.n_positives == 2


def test_fppi_counts_frames_with_nothing_in_them() -> None:
    """One frame holds a person, found (score 0.5) after a false positive (score 0.9); the other
    frames are empty. With 1 frame the curve is (fppi 1, recall 0), (fppi 1, recall 1): only the
    reference point 10^0 reaches it, so MR = exp(log(1e-10) / 9) = 10^(-10/9). With 99 empty frames
    more, fppi = 0.01 <= every reference point: MR = 1e-10."""
    content = frame([PERSON])
    det = dets([400, 300, 450, 400, 0.9], [*PERSON, 0.5])
    alone = evaluate_miss_rate([content], [det])
    assert alone.mr == pytest.approx(10 ** (-10 / 9))
    padded = evaluate_miss_rate([content] + [frame() for _ in range(99)], [det] + [NONE] * 99)
    assert padded.n_images == 100
    np.testing.assert_allclose(padded.fppi, [0.01, 0.01])
    assert padded.mr == pytest.approx(1e-10)


def test_recall_before_the_first_fppi_point_is_zero() -> None:
    """10 frames (fewer than 100), a false positive ranked first: the first curve point is at
    fppi 0.1, so the 4 reference points below 0.1 (10^-2 ... 10^-1.25) have recall 0 (miss 1) and
    the 5 from 0.1 on have recall 1: MR = exp(5 log(1e-10) / 9) = 10^(-50/9)."""
    gt = [frame([PERSON])] + [frame() for _ in range(9)]
    det = [dets([400, 300, 450, 400, 0.9], [*PERSON, 0.5])] + [NONE] * 9
    curve = evaluate_miss_rate(gt, det)
    np.testing.assert_allclose(curve.reference_miss, [1, 1, 1, 1, 0, 0, 0, 0, 0])
    assert curve.mr == pytest.approx(10 ** (-50 / 9))


def test_ignore_region_absorbs_any_number_of_detections() -> None:
    """A 'people' region (100..300 x 100..300) and a person elsewhere. Three detections lie inside
    the region (intersection / detection area = 1 >= 0.5) and score above the true positive: all
    three are dropped, so the curve has the one true positive only and MR = 1e-10. A fourth
    detection mostly outside the region (intersection / area = 0.25) is a false positive."""
    gt = [frame([(100, 100, 300, 300), (400, 100, 450, 200)], labels=["people", "person"])]
    inside = [[110, 110, 150, 200, 0.9], [200, 150, 260, 260, 0.8], [120, 120, 290, 290, 0.7]]
    curve = evaluate_miss_rate(gt, [dets(*inside, [400, 100, 450, 200, 0.1])])
    np.testing.assert_array_equal(curve.fppi, [0.0])
    assert curve.mr == pytest.approx(1e-10)
    assert curve.n_positives == 1
    outside = [280, 100, 360, 200, 0.95]  # 20x100 of its 80x100 inside the region
    curve = evaluate_miss_rate(gt, [dets(*inside, outside, [400, 100, 450, 200, 0.1])])
    np.testing.assert_array_equal(curve.fppi, [1.0, 1.0])


@pytest.mark.parametrize("label", ["people", "person?", "cyclist"])
def test_ignore_labels(label) -> None:
    """people, person? and cyclist are ignore regions: a detection on one is neither right nor wrong."""
    gt = [frame([PERSON, (300, 100, 350, 200)], labels=["person", label])]
    curve = evaluate_miss_rate(gt, [dets([*PERSON, 0.5], [300, 100, 350, 200, 0.9])])
    assert curve.n_positives == 1
    np.testing.assert_array_equal(curve.fppi, [0.0])


def test_unknown_labels_are_dropped() -> None:
    """A label outside person/people/person?/cyclist is not ground truth at all (bbLoad keeps only
    the listed labels): a detection on it is a false positive."""
    gt = [frame([PERSON, (300, 100, 350, 200)], labels=["person", "dog"])]
    curve = evaluate_miss_rate(gt, [dets([*PERSON, 0.5], [300, 100, 350, 200, 0.9])])
    np.testing.assert_array_equal(curve.fppi, [1.0, 1.0])


def test_regular_ground_truth_is_preferred_and_a_second_detection_is_a_false_positive() -> None:
    """A person inside a 'people' region, two detections on the person: the higher one matches
    the person (regular first), the lower one cannot match it again and falls back to the ignore
    region (dropped). Without the region the second is a false positive."""
    region = (80, 80, 300, 300)
    det = dets([*PERSON, 0.9], [101, 100, 151, 200, 0.8])
    with_region = evaluate_miss_rate([frame([region, PERSON], labels=["people", "person"])], [det])
    np.testing.assert_array_equal(with_region.fppi, [0.0])
    alone = evaluate_miss_rate([frame([PERSON])], [det])
    np.testing.assert_array_equal(alone.fppi, [0.0, 1.0])
    np.testing.assert_allclose(alone.miss_rate, [0.0, 0.0])


def test_greedy_takes_best_available_ground_truth() -> None:
    """Persons A = x 100..150 and B = x 110..160 (y 100..200). Detection 1 (0.9) = A exactly
    (IoU A 1, B 40/60); detection 2 (0.8) = x 104..154 (IoU A 46/54, B 44/56 = 0.79): A is taken,
    so it matches B. Both are true positives."""
    gt = [frame([PERSON, (110, 100, 160, 200)])]
    curve = evaluate_miss_rate(gt, [dets([*PERSON, 0.9], [104, 100, 154, 200, 0.8])])
    np.testing.assert_allclose(curve.miss_rate, [0.5, 0.0])
    np.testing.assert_array_equal(curve.fppi, [0.0, 0.0])


def test_overlap_threshold_is_inclusive() -> None:
    """IoU exactly 0.5 matches: detection x 100..150, y 100..150 on the person y 100..200
    (intersection 2500, union 5000)."""
    curve = evaluate_miss_rate([frame([PERSON])], [dets([100, 100, 150, 150, 0.9])])
    np.testing.assert_array_equal(curve.fppi, [0.0])
    curve = evaluate_miss_rate([frame([PERSON])], [dets([100, 100.5, 150, 150, 0.9])])
    np.testing.assert_array_equal(curve.fppi, [1.0])


def test_border_rule() -> None:
    """Boxes must lie inside x in [5, 635], y in [5, 507] (inclusive) on a 640x512 frame, else they
    are ignore regions (not removed: a detection on one is dropped). On a 1280x1024 frame the same
    5-pixel margin gives [5, 1275] x [5, 1019]."""
    boxes = [(5, 5, 55, 105), (585, 407, 635, 507), (586, 100, 636, 200), (4, 100, 54, 200), (300, 408, 350, 508)]
    det = dets(*[[*b, 0.9 - 0.1 * i] for i, b in enumerate(boxes)])
    curve = evaluate_miss_rate([frame(boxes)], [det])
    assert curve.n_positives == 2
    np.testing.assert_array_equal(curve.fppi, [0.0, 0.0])
    big = evaluate_miss_rate([frame(boxes, size=(1024, 1280))], [det])
    assert big.n_positives == 4


def test_height_and_occlusion_ranges() -> None:
    """Reasonable: height >= 55 (inclusive) and occlusion 0 or 1; heavy: occlusion 2, height >= 1."""
    boxes = [(100, 100, 150, 155), (200, 100, 250, 154), (300, 100, 350, 200), (400, 100, 450, 200)]
    gt = [frame(boxes, occlusion=[0, 0, 1, 2])]
    assert evaluate_miss_rate(gt, [NONE]).n_positives == 2
    assert evaluate_miss_rate(gt, [NONE], "heavy").n_positives == 1
    assert evaluate_miss_rate(gt, [NONE], "partial").n_positives == 1
    assert evaluate_miss_rate(gt, [NONE], "none").n_positives == 2
    assert evaluate_miss_rate(gt, [NONE], "far").n_positives == 0
    assert evaluate_miss_rate(gt, [NONE], "medium").n_positives == 2
    custom = MissRateSetup((50.0, math.inf), (0, 1, 2))
    assert evaluate_miss_rate(gt, [NONE], custom).n_positives == 4


def test_file_ignore_flag() -> None:
    gt = [frame([PERSON], ignore=[1])]
    curve = evaluate_miss_rate(gt, [dets([*PERSON, 0.9])])
    assert curve.n_positives == 0 and math.isnan(curve.mr)
    assert len(curve.fppi) == 0


def test_periods_are_separate_evaluations() -> None:
    """Day: 2 frames, the person found; night: 1 frame, a false positive only. Each period uses its
    own frame count and positives."""
    gt = [frame([PERSON]), frame(), frame([PERSON], frame_id="set09/V000/I00019")]
    det = [dets([*PERSON, 0.9]), NONE, dets([400, 300, 450, 400, 0.8])]
    curves = evaluate_periods(gt, det)
    assert {p: c.n_images for p, c in curves.items()} == {"all": 3, "day": 2, "night": 1}
    assert curves["day"].mr == pytest.approx(1e-10)
    assert curves["night"].mr == 1.0
    np.testing.assert_allclose(curves["all"].fppi, [0.0, 1 / 3])
    only_day = evaluate_periods(gt[:2], det[:2])
    assert set(only_day) == {"all", "day"}


def test_equal_scores_keep_order() -> None:
    """Ties in score keep file order (MATLAB's stable sort): the earlier detection matches."""
    gt = [frame([PERSON])]
    curve = evaluate_miss_rate(gt, [dets([101, 100, 151, 200, 0.5], [*PERSON, 0.5])])
    np.testing.assert_array_equal(curve.fppi, [0.0, 1.0])


def test_reference_points_and_setups() -> None:
    np.testing.assert_allclose(REFERENCE_FPPI, 10.0 ** np.linspace(-2, 0, 9))
    assert set(SETUPS) == {"reasonable", "near", "medium", "far", "none", "partial", "heavy"}
    assert SETUPS["reasonable"].height == (55.0, math.inf) and SETUPS["reasonable"].occlusion == (0, 1)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown miss-rate setup"):
        evaluate_miss_rate([frame()], [NONE], "tiny")
    with pytest.raises(ValueError, match="1 detection arrays for 2"):
        evaluate_miss_rate([frame(), frame()], [NONE])
    with pytest.raises(ValueError, match=r"\(M, 5\)"):
        evaluate_miss_rate([frame()], [np.zeros((2, 4))])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_miss_rate([frame()], [dets([1, 2, 3, 4, np.nan])])


def test_ground_truth_loading_options(shared_data, tmp_path) -> None:
    """A KAIST json can be narrowed to an image set; the metric sniffing tells KAIST from COCO."""
    from rgbt.evaluation.missrate import is_kaist_ground_truth

    root = shared_data / "kaist"
    subset = load_ground_truth(root / "KAIST_annotation.json", "fixture-test")
    assert len(subset.frame_ids) == 9 and subset.frame_ids == load_ground_truth(root, "fixture-test").frame_ids
    full = load_ground_truth(root / "KAIST_annotation.json")
    assert subset.image_ids == [full.image_ids[full.frame_ids.index(f)] for f in subset.frame_ids]
    assert subset.samples[0].meta["size"] == (512, 640)
    assert is_kaist_ground_truth(root) and is_kaist_ground_truth(root / "KAIST_annotation.json")
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [{"id": 0, "file_name": "FLIR_00001.jpeg"}], "annotations": [],
                                "categories": [{"id": 1, "name": "person"}]}))
    assert not is_kaist_ground_truth(coco)
    listing = tmp_path / "list.txt"
    listing.write_text("set99/V000/I00001\n")
    with pytest.raises(ValueError, match="not in the json"):
        load_ground_truth(root / "KAIST_annotation.json", listing)


def test_cli_kaist_json_is_miss_rate(shared_data, capsys) -> None:
    root = shared_data / "kaist"
    assert main(["evaluate", "--gt", str(root / "KAIST_annotation.json"),
                 "--results", str(root / "detections" / "MLPD_result.json")]) == 0
    assert "| reasonable | 7.58 | 7.95 | 6.95 |" in capsys.readouterr().out


def test_scaled_setup_moves_the_height_threshold() -> None:
    from rgbt.evaluation.missrate import SETUPS, scaled_setup

    half = scaled_setup(SETUPS["reasonable"], 0.5)
    assert half.height[0] == 27.5 and half.occlusion == SETUPS["reasonable"].occlusion
    with pytest.raises(ValueError, match="> 0"):
        scaled_setup(SETUPS["reasonable"], 0.0)


def test_ground_truth_of_a_root_knows_its_frame_size(synthetic_root) -> None:
    """The border rule needs the frame size: a 80x64 synthetic root must not be judged as 640x512."""
    from rgbt.evaluation.missrate import load_ground_truth

    gt = load_ground_truth(synthetic_root, "test")
    assert {sample.meta["size"] for sample in gt.samples} == {(64, 80)}


def test_cli_height_scale_changes_which_people_count(synthetic_root, tmp_path, capsys) -> None:
    """Perfect detections of every person: with heights scaled to the 64 px frames the positives exist
    (MR 0); at KAIST's absolute 55 px none of the small synthetic people is a positive (MR undefined)."""
    import json as json_module

    from rgbt.cli import main
    from rgbt.evaluation.missrate import load_ground_truth

    gt = load_ground_truth(synthetic_root, "test")
    lines = []
    for index, sample in enumerate(gt.samples, start=1):
        for (x1, y1, x2, y2), label in zip(sample.boxes, sample.labels):
            if label == "person":
                lines.append(f"{index},{x1},{y1},{x2 - x1},{y2 - y1},1.0")
    results = tmp_path / "perfect.txt"
    results.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scaled.json"
    assert main(["evaluate", "--gt", str(synthetic_root), "--image-set", "test", "--results", str(results),
                 "--height-scale", "0.125", "--json", str(out)]) == 0
    assert json_module.loads(out.read_text())[0]["all"] == pytest.approx(0.0, abs=1e-4)
    plain = tmp_path / "plain.json"
    assert main(["evaluate", "--gt", str(synthetic_root), "--image-set", "test", "--results", str(results),
                 "--json", str(plain)]) == 0
    assert json_module.loads(plain.read_text())[0]["all"] is None
    capsys.readouterr()


def test_positive_mask_is_what_the_evaluation_counts() -> None:
    from rgbt.evaluation.missrate import positive_mask

    sample = frame(
        [PERSON, (100, 100, 150, 150), PERSON, PERSON, PERSON, (2, 100, 52, 200)],
        labels=["person", "person", "people", "person", "person", "person"],
        occlusion=[0, 0, 0, 2, 1, 0], ignore=[0, 0, 0, 0, 0, 0],
    )
    mask = positive_mask(sample)
    # 50 px high (< 55), 'people', heavy occlusion and outside the 5 px border are not positives.
    np.testing.assert_array_equal(mask, [True, False, False, False, True, False])
    assert evaluate_miss_rate([sample], [NONE]).n_positives == mask.sum()
    np.testing.assert_array_equal(positive_mask(sample, "heavy"), [False, False, False, True, False, False])


def test_frame_setup_scales_heights_to_the_frame() -> None:
    from rgbt.evaluation.missrate import frame_setup

    assert frame_setup("reasonable", 512).height == (55.0, math.inf)
    assert frame_setup("reasonable", 256).height == (27.5, math.inf)
    assert frame_setup("medium", 128).height == (11.25, 28.75)
    with pytest.raises(ValueError, match="unknown setup"):
        frame_setup("tall", 256)
    with pytest.raises(ValueError, match="frame height"):
        frame_setup("reasonable", 0)
