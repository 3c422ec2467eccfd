"""`rgbt align` end to end: outputs, known-offset errors, pooling, bad input, resumable aligned images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt.atomic import file_sha256
from rgbt.cli import LOCKED_OUTPUT, main
from rgbt.data.imageio import read_image, write_image
from rgbt.engine import align as align_job
from rgbt.engine.align import ALIGNMENT_CSV, ALIGNMENT_JSON, CACHE_JSON, ERROR_JSON, align_dataset
from rgbt.engine.manifest import MANIFEST_NAME


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 synthetic test frames of 160x128 (3 day, 3 night) with their true offsets in synthetic.json."""
    from rgbt.data.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("align") / "root", 0, 6, seed=2, width=160, height=128,
                              progress=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_end_to_end_on_a_synthetic_root(tiny_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["align", str(tiny_root), "--out", str(out), "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "frames          6" in printed and "median |d|" in printed and "low confidence" in printed
    assert "error all" in printed and "error night" in printed
    frames = json.loads((out / ALIGNMENT_JSON).read_text())
    truth = {f["frame_id"]: f for f in json.loads((tiny_root / "synthetic.json").read_text())["frames"]}
    assert [f["frame"] for f in frames] == list(truth)
    for frame in frames:
        assert {"frame", "H", "dx", "dy", "score", "status"} <= set(frame)
        assert 0 <= frame["score"] <= 1
        if frame["period"] == "day":  # 160x128 night frames are too dark to be sure of: they may fail ...
            assert frame["status"] == "ok" and np.asarray(frame["H"]).shape == (3, 3)
            assert abs(frame["dx"] - truth[frame["frame"]]["dx"]) < 0.5
            assert abs(frame["dy"] - truth[frame["frame"]]["dy"]) < 0.5
        elif frame["H"] is not None and frame["error"] > 1.0:  # ... but then they say so
            assert frame["score"] < align_job.LOW_CONFIDENCE
    rows = _rows(out / ALIGNMENT_CSV)
    assert list(rows[0]) == ["frame", "dx", "dy", "score", "status"]
    assert [r["frame"] for r in rows] == [f["frame"] for f in frames]
    assert float(rows[2]["dx"]) == pytest.approx(frames[2]["dx"])
    error = json.loads((out / ERROR_JSON).read_text())
    assert set(error) == {"all", "day", "night"} and error["all"]["frames"] == 6
    assert {"median", "p95", "max", "within_0.5px", "within_1px", "within_2px"} <= set(error["all"])
    assert error["day"]["within_0.5px"] == 1.0 and error["day"]["median"] < 0.5


def test_align_writes_one_lock_holder_per_folder() -> None:
    assert "align" in LOCKED_OUTPUT


def test_a_rerun_reuses_the_registrations(tiny_root: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    first = align_dataset(tiny_root, out, workers=0, progress=False)
    assert (out / CACHE_JSON).is_file()
    calls = []
    monkeypatch.setattr(align_job, "estimate", lambda *a, **k: calls.append(a) or None)
    second = align_dataset(tiny_root, out, workers=0, progress=False)
    assert calls == [] and second["registered"] == first["registered"] >= 3
    assert second["median_abs_shift"] == first["median_abs_shift"] and second["frames_per_second"] == 0
    assert "every registration reused" in align_job.format_summary(second)
    # Another model is another estimate: nothing is reused.
    monkeypatch.undo()
    third = align_dataset(tiny_root, out, model="similarity", workers=0, progress=False)
    assert third["model"] == "similarity" and third["frames_per_second"] > 0


def test_sequence_pooling_gives_one_transform_per_video(tiny_root: Path, tmp_path: Path) -> None:
    summary = align_dataset(tiny_root, tmp_path / "out", pool="sequence", workers=0, progress=False)
    frames = json.loads((tmp_path / "out" / ALIGNMENT_JSON).read_text())
    by_sequence: dict[str, set] = {}
    for frame in frames:
        by_sequence.setdefault(frame["sequence"], set()).add((frame["dx"], frame["dy"]))
        assert {"frame_dx", "frame_dy", "frame_score", "frame_status", "outlier"} <= set(frame)
    assert set(by_sequence) == {"set06/V000", "set09/V000"}
    assert all(len(shifts) == 1 for shifts in by_sequence.values())
    # The synthetic offsets differ frame by frame: the pooled one is not every frame's own.
    assert summary["outliers"] == [f["frame"] for f in frames if f["outlier"]]
    assert any(f["frame_dx"] != f["dx"] for f in frames)
    day = [f for f in frames if f["sequence"] == "set06/V000"]
    assert day[0]["dx"] == pytest.approx(float(np.median([f["frame_dx"] for f in day])), abs=0.3)


def _pairs_root(tmp_path: Path, tiny_root: Path) -> Path:
    """A folder of pairs: two good frames, one without RGB, one corrupt thermal, one black RGB."""
    root = tmp_path / "pairs"
    (root / "visible").mkdir(parents=True)
    (root / "lwir").mkdir()
    frames = sorted((tiny_root / "images").glob("set06/V000/lwir/*.jpg"))[:2]
    for k, lwir in enumerate(frames):
        write_image(root / "lwir" / f"f{k}.png", read_image(lwir, "gray"))
        write_image(root / "visible" / f"f{k}.png", read_image(lwir.parents[1] / "visible" / lwir.name, "rgb"))
    thermal = read_image(frames[0], "gray")
    write_image(root / "lwir" / "no_rgb.png", thermal)
    (root / "lwir" / "corrupt.png").write_bytes(b"not a png")
    write_image(root / "visible" / "corrupt.png", read_image(frames[0].parents[1] / "visible" / frames[0].name))
    write_image(root / "lwir" / "black.png", thermal)
    write_image(root / "visible" / "black.png", np.zeros((*thermal.shape, 3), np.uint8))
    return root


def test_bad_input_gives_statuses_not_crashes(tiny_root: Path, tmp_path: Path) -> None:
    root = _pairs_root(tmp_path, tiny_root)
    summary = align_dataset(root, tmp_path / "out", workers=0, write_aligned=True, progress=False)
    frames = {f["frame"]: f for f in json.loads((tmp_path / "out" / ALIGNMENT_JSON).read_text())}
    assert frames["no_rgb"]["status"] == "missing_rgb"
    assert frames["corrupt"]["status"] == "unreadable_thermal"
    assert frames["black"]["status"] == "flat_rgb"
    for name in ("no_rgb", "corrupt", "black"):
        assert frames[name]["H"] is None and frames[name]["dx"] is None and frames[name]["score"] == 0
    assert frames["f0"]["status"] == frames["f1"]["status"] == "ok"
    assert summary["aligned"] == {"written": 2, "skipped": 0, "without_transform": 3}
    assert sorted(p.name for p in (tmp_path / "out" / "aligned_visible").iterdir()) == ["f0.jpg", "f1.jpg"]
    rows = {r["frame"]: r for r in _rows(tmp_path / "out" / ALIGNMENT_CSV)}
    assert rows["black"]["dx"] == "" and rows["black"]["status"] == "flat_rgb"


def test_write_aligned_is_kill_safe_and_resumes(tiny_root: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    real = align_job.write_and_hash
    calls = []

    def write_then_die(path, image, image_format):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(path, image, image_format)

    monkeypatch.setattr(align_job, "write_and_hash", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        align_dataset(tiny_root, out, workers=1, write_aligned=True, progress=False)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    listed = {rel for rel in manifest["files"] if rel.startswith("images/")}
    assert 1 <= len(listed) <= 3 and all(file_sha256(out / rel) == manifest["files"][rel] for rel in listed)
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(align_job, "write_and_hash", real)
    victim = out / sorted(listed)[0]
    victim.write_bytes(victim.read_bytes()[:100])  # a damaged file is redone
    summary = align_dataset(tiny_root, out, workers=1, write_aligned=True, progress=False)
    registered = summary["registered"]
    assert summary["aligned"]["skipped"] == len(listed) - 1
    assert summary["aligned"]["written"] == registered - len(listed) + 1
    assert summary["aligned"]["without_transform"] == 6 - registered
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    images = sorted(out.glob("images/set*/V*/aligned_visible/*.jpg"))
    assert len(images) == registered and all(file_sha256(p) == manifest["files"][p.relative_to(out).as_posix()]
                                   for p in images)
    # KAIST-Paired: the RGB boxes, moved into the thermal frame, land on the thermal boxes.
    from rgbt.data.bbgt import read_bbgt

    frame = json.loads((out / ALIGNMENT_JSON).read_text())[0]["frame"]
    set_, video, name = frame.split("/")
    moved = read_bbgt(out / "annotations_paired" / set_ / video / "aligned_visible" / f"{name}.txt")
    thermal = read_bbgt(tiny_root / "annotations_paired" / set_ / video / "lwir" / f"{name}.txt")
    assert len(moved) == len(thermal)
    for a, b in zip(moved, thermal):
        assert np.allclose(a.box, b.box, atol=0.6)
    # The warped image is the RGB frame moved into the thermal frame.
    aligned = read_image(images[0], "rgb")
    assert aligned.shape[:2] == read_image(tiny_root / "images" / set_ / video / "lwir" / f"{name}.jpg",
                                           "gray").shape
    again = align_dataset(tiny_root, out, workers=1, write_aligned=True, progress=False)
    assert again["aligned"] == {"written": 0, "skipped": registered, "without_transform": 6 - registered}


def test_aligned_folder_with_other_settings_is_refused(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    align_dataset(tiny_root, out, workers=0, write_aligned=True, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        align_dataset(tiny_root, out, workers=0, write_aligned=True, image_format="png", progress=False)
    # refused before any frame is registered, so the folder's own estimates stay as they were
    before = {name: (out / name).read_bytes() for name in (CACHE_JSON, ALIGNMENT_JSON)}
    for kwargs in ({"model": "affine", "write_aligned": True}, {"pool": "sequence"}):
        with pytest.raises(ValueError, match="other settings") as caught:
            align_dataset(tiny_root, out, workers=0, progress=False, **kwargs)
        assert ("model 'shift' -> 'affine'" if "model" in kwargs else "pool 'frame' -> 'sequence'") in str(caught.value)
    assert {name: (out / name).read_bytes() for name in before} == before
    # the image format matters only when writing images
    align_dataset(tiny_root, out, workers=0, image_format="png", progress=False)


def test_bad_arguments(tiny_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model"):
        align_dataset(tiny_root, tmp_path, model="rigid", progress=False)
    with pytest.raises(ValueError, match="pool"):
        align_dataset(tiny_root, tmp_path, pool="video", progress=False)
    assert main(["align", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1


def test_a_search_range_the_frames_cannot_hold_is_a_clear_error(tiny_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["align", str(tiny_root), "--out", str(tmp_path / "o"), "--max-shift", "150"]) == 1
    assert "max_shift 150 px is too large for a 160x128 thermal frame: at most 32 px" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["align", str(tiny_root), "--out", str(tmp_path / "o"), "--max-shift", "-5"])


def test_the_scale_path_on_a_pairs_root_of_different_sizes(tiny_root: Path, tmp_path: Path) -> None:
    """RGB frames 2.5x the thermal size (as FLIR v1.3's) register with the similarity model."""
    root = tmp_path / "big"
    (root / "visible").mkdir(parents=True)
    (root / "lwir").mkdir()
    lwir = sorted((tiny_root / "images").glob("set06/V000/lwir/*.jpg"))[0]
    thermal = read_image(lwir, "gray")
    rgb = read_image(lwir.parents[1] / "visible" / lwir.name, "rgb")
    write_image(root / "lwir" / "a.png", thermal)
    write_image(root / "visible" / "a.png", cv2.resize(rgb, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC))
    align_dataset(root, tmp_path / "out", model="similarity", workers=0, progress=False)
    (frame,) = json.loads((tmp_path / "out" / ALIGNMENT_JSON).read_text())
    assert frame["status"] == "ok"
    matrix = np.asarray(frame["H"])
    assert np.sqrt(abs(np.linalg.det(matrix[:2, :2]))) == pytest.approx(2.5, rel=0.02)


def test_sequence_pooling_of_rgb_of_another_size_keeps_the_size_ratio(tiny_root: Path, tmp_path: Path) -> None:
    """RGB frames 2x the thermal size pooled with the shift model: the pooled transform keeps the scale
    and the frames agree with it (distances in thermal pixels)."""
    truth = json.loads((tiny_root / "synthetic.json").read_text())["frames"]
    day = [f["frame_id"] for f in truth if f["period"] == "day"]
    root = tmp_path / "big"
    for k, frame_id in enumerate(day):
        lwir = tiny_root / "images" / Path(frame_id).parent / "lwir" / (Path(frame_id).name + ".jpg")
        rgb = read_image(lwir.parents[1] / "visible" / lwir.name, "rgb")
        write_image(root / "lwir" / f"f{k}.png", read_image(lwir, "gray"))
        big = cv2.resize(rgb, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
        write_image(root / "visible" / f"f{k}.png", big)
    align_dataset(root, tmp_path / "own", workers=0, progress=False)
    align_dataset(root, tmp_path / "pooled", pool="sequence", workers=0, progress=False)
    own = json.loads((tmp_path / "own" / ALIGNMENT_JSON).read_text())
    pooled = json.loads((tmp_path / "pooled" / ALIGNMENT_JSON).read_text())
    assert all(f["status"] == "ok" for f in own)
    for frame in pooled:
        matrix = np.asarray(frame["H"])
        assert frame["status"] == "ok" and frame["score"] > 0
        assert matrix[0, 0] == pytest.approx(2.0, abs=1e-6) and matrix[1, 1] == pytest.approx(2.0, abs=1e-6)
    # the synthetic offsets differ per frame by a few px: pooled and own agree to within that spread
    spread = max(abs(a["dx"] - b["dx"]) for a in own for b in own) + 1.0
    for a, b in zip(own, pooled):
        assert abs(a["dx"] - b["dx"]) <= 2.0 * spread


def test_an_interrupt_ends_the_registering_processes_at_once() -> None:
    """Ctrl-C while workers are busy: the workers are ended, nothing waits for the tasks in flight."""
    import multiprocessing
    import time

    estimates = align_job._estimates(iter([0.0, 30.0, 30.0, 30.0]), time.sleep, 4, workers=2)
    assert next(estimates) is None  # the first task is done; two 30 s tasks are running
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        estimates.throw(KeyboardInterrupt())
    deadline = time.perf_counter() + 10.0
    while multiprocessing.active_children() and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()
    assert time.perf_counter() - started < 10.0

