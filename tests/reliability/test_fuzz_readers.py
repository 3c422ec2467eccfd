"""Fuzzing every text / json / xml reader: mutated real lines and records, and random bytes.

Each input either parses to values in their domain (finite float32 boxes with non-negative sizes,
KAIST labels and flags, distinct frames) or raises the reader's own error, a
:class:`~rgbt.data.errors.DataFormatError` whose message names the file; never another exception.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_fixtures import kaist_json, make_flir_aligned, perfect_coco, voc_xml

from rgbt.data.bbgt import read_bbgt
from rgbt.data.coco_json import read_coco_annotations
from rgbt.data.domains import FLOAT32_MAX, KAIST_LABELS
from rgbt.data.errors import DataFormatError
from rgbt.data.flir import open_flir
from rgbt.data.kaist import read_image_set, read_kaist_json
from rgbt.data.pairs import PairsSource
from rgbt.data.synthetic import SyntheticParams, build_manifest, check_synthetic_root, read_manifest
from rgbt.data.voc_xml import read_voc_xml
from rgbt.evaluation.coco import evaluate_coco
from rgbt.evaluation.detections import read_aggregated_txt, read_coco_results, read_frame_folder

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Tokens that broke or fooled a reader before: non-finite, out of domain, Python-only number spellings.
NASTY_TOKENS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e39", "-1e39", "1e999", "3.5e38", "5_07", "0x10",
                "\u0665", "+3", ".5", "5.", "-0", "-1", "0.5", "7", "2", "1", "0", "", " ", "pedestrian",
                "person", "person?", "%", ",", ",,", "\t", "\x00", "\r", "\x0c", "é", "1,2", "1e", "e5", "--1"]
#: Numbers that read as numbers but lie outside some field's domain (a flag, a level, float32).
OUT_OF_DOMAIN = ["7", "3", "-1", "0.5", "1.5", "-0.5", "1e39", "-3.5e38", "2", "1e999", "-2"]
#: Mostly out-of-domain numbers and nasty tokens, else short random text.
TOKEN = st.one_of(*[st.sampled_from(OUT_OF_DOMAIN)] * 2, *[st.sampled_from(NASTY_TOKENS)] * 2,
                  st.text(alphabet="0123456789.eE+-_ ,%\tnaifx?", max_size=6))

#: Random json values put where a field was.
NASTY_VALUES = [None, True, False, "1", "", "abc", -1, 0, 1, 2, 7, 0.5, 1.5, 1e39, -1e39, 10**30, float("nan"),
                float("inf"), -float("inf"), [], {}, [1, 2], [1, 2, 3, 4], [1, 2, -3, 4], {"id": 1},
                "set06/V000/I00019", "../x.jpeg", "/etc/passwd", "a\x00b"]
VALUE = st.one_of(st.sampled_from(NASTY_VALUES), st.sampled_from(NASTY_VALUES), st.integers(-3, 5),
                  st.floats(allow_nan=True))


@pytest.fixture(scope="module")
def workdir() -> Path:
    with tempfile.TemporaryDirectory(prefix="rgbt-fuzz-") as folder:
        yield Path(folder)


def _uniform(draw: st.DrawFn) -> random.Random:
    """A generator for positions (which line, which token, which json key), seeded from one draw:
    hypothesis favours small integers and would edit the first token of the first line most of the
    time."""
    return random.Random(draw(st.integers(0, 2**32 - 1)))


@st.composite
def mutated_lines(draw: st.DrawFn, lines: list[str], separator: str = " ", header: str | None = None) -> str:
    """Real lines with tokens replaced (mostly), dropped or doubled, lines doubled or dropped, and
    sometimes a few characters inserted anywhere; a ``header`` line is put first, intact but for one
    case in ten. Mostly one edit, so the rest stays valid and the edited value is what the reader
    must judge."""
    pick = _uniform(draw)
    rows = [line.split(separator) for line in lines]
    for _ in range(pick.choice([1, 1, 1, 1, 2, 2, 3])):
        row = pick.randrange(len(rows))
        k = pick.randrange(max(len(rows[row]), 1))
        op = pick.choices(["replace", "drop", "double", "line twice", "drop line"], [70, 8, 8, 7, 7])[0]
        if op == "replace" and rows[row]:
            rows[row][k] = draw(TOKEN)
        elif op == "drop" and rows[row]:
            del rows[row][k]
        elif op == "double" and rows[row]:
            rows[row].insert(k, rows[row][k])
        elif op == "line twice":
            rows.insert(row, list(rows[row]))
        elif op == "drop line" and len(rows) > 1:
            del rows[row]
    if header is not None:
        tokens = header.split(separator)
        if pick.random() < 0.1:
            tokens[pick.randrange(len(tokens))] = draw(TOKEN)
        rows.insert(0, tokens)
    text = "".join(separator.join(row) + pick.choice(["\n", "\n", "\r\n", "\n\n", " \n"]) for row in rows)
    if pick.random() < 0.15:
        at = pick.randrange(len(text) + 1)
        text = text[:at] + draw(st.text(max_size=3)) + text[at:]
    return text


@st.composite
def mutated_json(draw: st.DrawFn, document: object) -> str:
    """A json document with values replaced by nasty ones, keys deleted and entries doubled, as text
    (``NaN`` / ``Infinity`` included, as Python writes them); sometimes cut short."""
    doc = json.loads(json.dumps(document))
    pick = _uniform(draw)
    # Mostly one edit: the rest stays valid, so the edited value is what the reader must judge.
    for _ in range(pick.choice([1, 1, 1, 1, 2, 3, 4])):
        holder, key = _pick(pick, doc)
        if holder is None:
            break
        op = pick.choices(["set", "delete", "double"], [80, 10, 10])[0]
        if op == "set":
            holder[key] = copy.deepcopy(draw(VALUE))  # the drawn list or dict is shared between examples
        elif op == "delete":
            del holder[key]
        elif isinstance(holder, list):
            holder.insert(key, json.loads(json.dumps(holder[key])))
    text = json.dumps(doc)
    if pick.random() < 0.1:
        text = text[: pick.randrange(len(text) + 1)]
    return text


def _pick(pick: random.Random, doc: object) -> tuple[object, object]:
    """A random (container, key) inside ``doc``."""
    places = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                places.append((node, key))
                walk(value)
        elif isinstance(node, list):
            for k, value in enumerate(node):
                places.append((node, k))
                walk(value)

    walk(doc)
    return pick.choice(places) if places else (None, None)


def _either_valid_or_format_error(path: Path, read: Callable[[], object], check: Callable[[object], None],
                                  content: str | bytes | None = None) -> None:
    """Write ``content`` (when given) to ``path``, then ``read()``: it must return values that pass
    ``check`` or raise a :class:`DataFormatError` naming ``path``."""
    if content is not None:
        path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    try:
        value = read()
    except DataFormatError as err:
        assert str(path) in str(err), f"the message names no file: {err}"
        return
    check(value)


def _in_float32(values: object) -> bool:
    array = np.asarray(values, dtype=np.float64)
    return bool(np.isfinite(array).all() and (np.abs(array) <= FLOAT32_MAX).all())


def _check_objects(objects: list) -> None:
    for obj in objects:
        assert obj.label in KAIST_LABELS or obj.label == "__ignore__"
        assert _in_float32(obj.box) and _in_float32(obj.visible) and math.isfinite(obj.angle)
        x, y, w, h = obj.box
        assert w >= 0 and h >= 0 and obj.visible[2] >= 0 and obj.visible[3] >= 0
        assert _in_float32([x + w, y + h])
        assert obj.occlusion in (0, 1, 2) and obj.ignore in (0, 1)


def _check_detections(arrays: list[np.ndarray], n: int, count: int | None = None) -> None:
    """``n`` frames of finite, in-domain ``(M, 5)`` rows; ``count`` rows in all when given (a row of a
    frame outside the list must be an error, not dropped)."""
    assert len(arrays) == n
    if count is not None:
        assert sum(len(rows) for rows in arrays) == count
    for rows in arrays:
        assert rows.ndim == 2 and rows.shape[1] == 5 and np.isfinite(rows).all()
        assert _in_float32(rows[:, :4])
        assert (rows[:, 2] >= rows[:, 0]).all() and (rows[:, 3] >= rows[:, 1]).all()


def _check_labelled(objects: list) -> None:
    for obj in objects:
        assert isinstance(obj.label, str) and obj.label
        assert _in_float32(obj.box) and obj.box[2] >= obj.box[0] and obj.box[3] >= obj.box[1]
        assert isinstance(obj.ignore, bool)


# --------------------------------------------------------------------------------------------
# KAIST text
# --------------------------------------------------------------------------------------------

BBGT_LINES = ["person 505 212 20 50 0 0 0 0 0 0 0", "people 10.5 20 30 60 1 12 22 20 40 0 0",
              "person? 1 2 3 4 2 0 0 0 0 1 0"]


@FUZZ
@given(st.one_of(mutated_lines(BBGT_LINES, header="% bbGt version=3"),
                 st.binary(max_size=120).map(lambda b: b.decode("latin-1"))))
def test_bbgt(workdir: Path, text: str) -> None:
    path = workdir / "I00001.txt"
    _either_valid_or_format_error(path, lambda: read_bbgt(path), _check_objects, text)


@FUZZ
@given(st.binary(max_size=160))
def test_bbgt_random_bytes(workdir: Path, data: bytes) -> None:
    path = workdir / "I00002.txt"
    content = b"% bbGt version=3\n" + data if data[:1] == b"p" else data
    _either_valid_or_format_error(path, lambda: read_bbgt(path), _check_objects, content)


_FRAME = re.compile(r"set[0-9]{2}/V[0-9]{3}/I[0-9]{5}")


@FUZZ
@given(st.one_of(mutated_lines(["set06/V000/I00019", "set06/V000/I00039", "set09_V001_I00059"], "/"),
                 st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_image_set_list(workdir: Path, text: str) -> None:
    path = workdir / "list.txt"

    def check(frames: object) -> None:
        assert all(_FRAME.fullmatch(f) for f in frames) and len(set(frames)) == len(frames)

    _either_valid_or_format_error(path, lambda: read_image_set(path), check, text)


@FUZZ
@given(st.one_of(mutated_lines(["1,505,212,20,50,0.9", "2,530.5,226,20,50,0.12", "3 565 234 25 60 1"], ","),
                 mutated_lines(["1 505 212 20 50 0.9", "3 565 234 25 60 1"]),
                 st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_aggregated_results_txt(workdir: Path, text: str) -> None:
    path = workdir / "results.txt"
    lines = sum(1 for line in text.split("\n") if line.strip())
    _either_valid_or_format_error(path, lambda: read_aggregated_txt(path, 3),
                                  lambda arrays: _check_detections(arrays, 3, lines), text)


@FUZZ
@given(st.one_of(mutated_lines(["person 504 211 524 261 0.9", "505 212 525 262 0.5"]),
                 st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_per_frame_results_txt(workdir: Path, text: str) -> None:
    folder = workdir / "per_frame"
    folder.mkdir(exist_ok=True)
    path = folder / "set06_V000_I00019.txt"
    frames = ["set06/V000/I00019", "set06/V000/I00039"]
    lines = [line.split() for line in text.split("\n") if line.strip()]

    def check(arrays: list[np.ndarray]) -> None:
        _check_detections(arrays, 2, len(lines))
        assert all(tokens[0] == "person" for tokens in lines if len(tokens) == 6)

    _either_valid_or_format_error(path, lambda: read_frame_folder(folder, frames), check, text)


@FUZZ
@given(st.sampled_from(["set06_V000_I00019.txt", "set06_V000_I0019.txt", "x.txt", "set06/V000/I00019.txt",
                        "set06_V000_I00019.TXT", "set06_V000_I00019.txt.bak", "a/set06_V000_I00019.txt"]),
       st.sampled_from(["set06_V000_I00039.txt", "set06/V000/I00039.txt", "set06_V000_I00019.txt", "I00039.txt"]))
def test_per_frame_folder_names(workdir: Path, first: str, second: str) -> None:
    folder = Path(tempfile.mkdtemp(dir=workdir))
    for name in (first, second):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("person 1 1 2 2 0.5\n")
    frames = ["set06/V000/I00019", "set06/V000/I00039"]
    try:
        arrays = read_frame_folder(folder, frames)
    except DataFormatError as err:
        assert str(folder) in str(err)
    except FileNotFoundError as err:  # no file belongs to a listed frame
        assert str(folder) in str(err)
    else:
        _check_detections(arrays, 2)


# --------------------------------------------------------------------------------------------
# json
# --------------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(mutated_json(kaist_json()), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_kaist_annotation_json(workdir: Path, text: str) -> None:
    path = workdir / "KAIST_annotation.json"

    def check(gt: object) -> None:
        assert len(set(gt.frame_ids)) == len(gt.frame_ids) == len(gt.image_ids) == len(set(gt.image_ids))
        assert all(_FRAME.fullmatch(f) for f in gt.frame_ids)
        assert all(h > 0 and w > 0 for h, w in gt.sizes)
        for objects in gt.objects:
            _check_objects(objects)

    _either_valid_or_format_error(path, lambda: read_kaist_json(path), check, text)


@FUZZ
@given(st.one_of(mutated_json(perfect_coco() + [{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4],
                                                  "score": 0.1}]),
                 st.binary(max_size=80).map(lambda b: b.decode("latin-1"))),
       st.sampled_from([None, 1]))
def test_coco_results_json(workdir: Path, text: str, category: int | None) -> None:
    path = workdir / "results.json"

    def check(arrays: list[np.ndarray]) -> None:
        entries = json.loads(text)
        entries = entries["annotations"] if isinstance(entries, dict) else entries
        kept = [e for e in entries if category is None or e["category_id"] == category]
        _check_detections(arrays, 3, len(kept))

    _either_valid_or_format_error(path, lambda: read_coco_results(path, 3, category_id=category), check, text)


FLIR_COCO = {
    "images": [{"id": 0, "file_name": "thermal_8_bit/FLIR_00001.jpeg", "width": 20, "height": 16},
               {"id": 1, "file_name": "thermal_8_bit/FLIR_00002.jpeg", "width": 20, "height": 16}],
    "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [2, 2, 4, 8], "area": 32, "iscrowd": 0},
                    {"id": 2, "image_id": 1, "category_id": 3, "bbox": [1, 1, 6, 4], "area": 24, "iscrowd": 0}],
    "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
}


@FUZZ
@given(st.one_of(mutated_json(FLIR_COCO), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_coco_annotation_json(workdir: Path, text: str) -> None:
    path = workdir / "thermal_annotations.json"

    def check(gt: object) -> None:
        assert len(gt.objects) == len(gt.images)
        for objects in gt.objects.values():
            _check_labelled(objects)

    _either_valid_or_format_error(path, lambda: read_coco_annotations(path), check, text)


@settings(FUZZ, max_examples=100)
@given(st.one_of(mutated_json(FLIR_COCO), mutated_json(perfect_coco()[:2])), st.booleans())
def test_coco_evaluation_inputs(workdir: Path, text: str, ground_truth_side: bool) -> None:
    """`rgbt evaluate --metric coco`: a bad ground truth or results json is refused before pycocotools."""
    gt, results = workdir / "gt.json", workdir / "dt.json"
    gt.write_text(text if ground_truth_side else json.dumps(FLIR_COCO))
    results.write_text(json.dumps(perfect_coco()[:2]) if ground_truth_side else text)
    bad = gt if ground_truth_side else results

    def check(scores: object) -> None:
        assert all(v is None or -1 <= v <= 1 or math.isnan(v) for v in (scores["AP"], scores["AP50"]))

    _either_valid_or_format_error(bad, lambda: evaluate_coco(gt, results), check)


@FUZZ
@given(st.one_of(mutated_json(FLIR_COCO), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_pairs_annotations_json(workdir: Path, text: str) -> None:
    root = workdir / "pairs"
    (root / "lwir").mkdir(parents=True, exist_ok=True)
    (root / "lwir" / "FLIR_00001.jpeg").write_bytes(b"")  # listed, never decoded here
    path = root / "annotations.json"

    def check(source: object) -> None:
        for index in range(len(source)):
            sample = source.annotations(index)
            assert _in_float32(sample.boxes) and (sample.boxes[:, 2:] >= sample.boxes[:, :2]).all()

    _either_valid_or_format_error(path, lambda: PairsSource(root), check, text)


SYNTHETIC = build_manifest(SyntheticParams(2, 2, 0, 32, 32))


@FUZZ
@given(st.one_of(mutated_json(SYNTHETIC), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_synthetic_manifest(workdir: Path, text: str) -> None:
    root = workdir / "synthetic"
    root.mkdir(exist_ok=True)
    path = root / "synthetic.json"

    def check(manifest: object) -> None:
        SyntheticParams(**{k: manifest[k] for k in ("n_train", "n_test", "seed", "width", "height", "max_shift",
                                                       "lwir_channels", "version")})
        with pytest.raises(DataFormatError, match="generation did not finish"):
            check_synthetic_root(root)  # the manifest's frames were never written

    _either_valid_or_format_error(path, lambda: read_manifest(root), check, text)


# --------------------------------------------------------------------------------------------
# FLIR xml, lists and maps
# --------------------------------------------------------------------------------------------

VOC = voc_xml([("person", (2, 2, 6, 12), 0), ("car", (8.5, 4, 18, 10), 1)])


@FUZZ
@given(st.one_of(mutated_lines(re.split(r"(?=<)", VOC), "<").map(lambda t: t.replace("\n", "")),
                 mutated_lines(re.split(r"(?=<)", VOC), ">"),
                 st.binary(max_size=100).map(lambda b: b.decode("latin-1"))))
def test_voc_xml(workdir: Path, text: str) -> None:
    path = workdir / "FLIR_00002_PreviewData.xml"
    _either_valid_or_format_error(path, lambda: read_voc_xml(path), _check_labelled, text)


@FUZZ
@given(st.binary(max_size=120))
def test_voc_xml_random_bytes_after_a_prolog(workdir: Path, data: bytes) -> None:
    path = workdir / "FLIR_00005_PreviewData.xml"
    content = b'<?xml version="1.0" encoding="' + data[:8] + b'"?><annotation>' + data[8:]
    _either_valid_or_format_error(path, lambda: read_voc_xml(path), _check_labelled, content)


@pytest.fixture(scope="module")
def aligned(workdir: Path) -> Path:
    return make_flir_aligned(workdir / "aligned")


@FUZZ
@given(st.one_of(mutated_lines(["FLIR_00002_PreviewData", "FLIR_00005_PreviewData"], "_"),
                 st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_flir_aligned_split_list(aligned: Path, text: str) -> None:
    path = aligned / "align_train.txt"

    def check(source: object) -> None:
        assert len(set(source.frame_ids)) == len(source.frame_ids)

    _either_valid_or_format_error(path, lambda: open_flir(aligned, "flir-aligned", split="train"), check, text)


@pytest.fixture(scope="module")
def flir_v2(workdir: Path) -> Path:
    root = workdir / "flir_v2"
    coco = json.loads(json.dumps(FLIR_COCO))
    for image in coco["images"]:
        image["file_name"] = image["file_name"].replace("thermal_8_bit", "data")
    (root / "video_thermal_test").mkdir(parents=True)
    (root / "video_thermal_test" / "coco.json").write_text(json.dumps(coco))
    return root


@FUZZ
@given(st.one_of(mutated_json({"FLIR_00001.jpg": "FLIR_00001.jpeg", "FLIR_00002.jpg": "FLIR_00002.jpeg"}),
                 st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
def test_flir_v2_video_map(flir_v2: Path, text: str) -> None:
    path = flir_v2 / "rgb_to_thermal_vid_map.json"

    def check(source: object) -> None:
        for frame in source.frames:
            assert frame.rgb is None or frame.rgb.parent == flir_v2 / "video_rgb_test" / "data"

    _either_valid_or_format_error(path, lambda: open_flir(flir_v2, "flir-v2", split="video"), check, text)
