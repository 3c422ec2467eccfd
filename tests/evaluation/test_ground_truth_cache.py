"""The parsed ground-truth cache: a hit equals the parse, any change of the files is a miss, a broken
or unwritable cache is only a miss, fresh files are not cached, and the cache can be turned off."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from rgbt.data.kaist import annotation_path
from rgbt.evaluation import ground_truth_cache, missrate
from rgbt.evaluation.missrate import load_ground_truth


def _age(root: Path, seconds: float = 3600.0) -> None:
    """Give every file of ``root`` a modification time ``seconds`` in the past."""
    past = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


@pytest.fixture
def root(synthetic_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "kaist"
    shutil.copytree(synthetic_root, copy)
    _age(copy)
    return copy


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("RGBT_CACHE_DIR", str(folder))
    return folder


def _boxes(gt) -> list[list[list[float]]]:
    return [np.asarray(s.boxes).tolist() for s in gt.samples]


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the ground truth was parsed again")

    monkeypatch.setattr(missrate, "read_annotations", refuse)


def test_a_hit_equals_the_parse(root: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = load_ground_truth(root, "test")
    assert len(list((cache / "ground_truth").glob("*.pkl"))) == 1
    with monkeypatch.context() as patch:
        _no_parse(patch)
        hit = load_ground_truth(root, "test")
    assert hit.frame_ids == parsed.frame_ids and _boxes(hit) == _boxes(parsed)
    assert [s.meta for s in hit.samples] == [s.meta for s in parsed.samples]
    ignored = [[np.asarray(s.ignore).tolist() for s in gt.samples] for gt in (hit, parsed)]
    assert ignored[0] == ignored[1]


def test_a_changed_file_is_parsed_again(root: Path, cache: Path) -> None:
    before = load_ground_truth(root, "test")
    frame = before.frame_ids[0]
    path = Path(annotation_path(root, frame))
    path.write_text("% bbGt version=3\nperson 10 12 20 40 0 0 0 0 0 0 0\n")
    _age(root, 1800.0)  # another (old) time: size and time both changed
    after = load_ground_truth(root, "test")
    assert np.asarray(after.samples[0].boxes).tolist() == [[10.0, 12.0, 30.0, 52.0]]
    assert _boxes(after)[1:] == _boxes(before)[1:]


def test_a_broken_or_unwritable_cache_is_only_a_miss(root: Path, cache: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = load_ground_truth(root, "test")
    (entry,) = (cache / "ground_truth").glob("*.pkl")
    entry.write_bytes(entry.read_bytes()[:50])  # cut short
    assert _boxes(load_ground_truth(root, "test")) == _boxes(parsed)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be\n")
    monkeypatch.setenv("RGBT_CACHE_DIR", str(blocked))
    assert _boxes(load_ground_truth(root, "test")) == _boxes(parsed)


def test_fresh_files_are_not_cached_and_the_cache_turns_off(root: Path, cache: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    os.utime(next((root / "annotations").rglob("*.txt")))  # modified just now
    load_ground_truth(root, "test")
    assert not list(cache.rglob("*.pkl"))
    _age(root)
    for value in ("off", "0", ""):
        monkeypatch.setenv("RGBT_CACHE_DIR", value)
        assert ground_truth_cache.cache_dir() is None
        load_ground_truth(root, "test")
    assert not list(cache.rglob("*.pkl"))
    monkeypatch.delenv("RGBT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache / "xdg"))
    assert ground_truth_cache.cache_dir() == cache / "xdg" / "rgbt"


def test_a_missing_file_still_raises_the_readers_error(root: Path, cache: Path) -> None:
    load_ground_truth(root, "test")
    next((root / "annotations").rglob("*.txt")).unlink()
    with pytest.raises(FileNotFoundError, match="annotation file missing"):
        load_ground_truth(root, "test")


def test_the_flat_entry_gives_back_every_field_and_odd_samples_stay_whole() -> None:
    from rgbt.data.sample import PairSample

    samples = [
        PairSample(None, None, [[1, 2, 11, 32], [5, 5, 9, 30]], ["person", "people"], [False, True], [0, 2],
                   meta={"frame_id": "set06/V000/I00000", "period": "day"}),
        PairSample(None, None, meta={"frame_id": "set06/V000/I00001", "period": "night"}),  # no object
        PairSample(None, None, [[0, 0, 4, 20]], ["cyclist"], [False], [1], meta={"frame_id": "set06/V000/I00002"}),
    ]
    packed = ground_truth_cache._pack(samples)
    assert set(packed) == {"flat"}
    back = ground_truth_cache._unpack(packed)
    for a, b in zip(samples, back):
        assert a.boxes.dtype == b.boxes.dtype and a.boxes.tolist() == b.boxes.tolist()
        assert a.labels == b.labels and a.ignore.tolist() == b.ignore.tolist()
        assert a.occlusion.dtype == b.occlusion.dtype and a.occlusion.tolist() == b.occlusion.tolist()
        assert a.meta == b.meta and b.rgb is None and b.boxes_rgb is None
    # A sample with RGB-frame boxes (KAIST-Paired) is kept as it is.
    paired = [PairSample(None, None, [[1, 2, 3, 4]], ["person"], [False], [0], boxes_rgb=[[2, 2, 4, 4]])]
    assert ground_truth_cache._unpack(ground_truth_cache._pack(paired))[0].boxes_rgb.tolist() == [[2, 2, 4, 4]]
    packed["flat"]["offsets"] = packed["flat"]["offsets"][:-1]  # an inconsistent entry is refused
    with pytest.raises(ValueError, match="inconsistent"):
        ground_truth_cache._unpack(packed)


def test_a_sample_rebuilt_without_checks_equals_the_checked_one() -> None:
    from dataclasses import fields

    from rgbt.data.sample import PairSample

    checked = PairSample(None, None, [[1, 2, 11, 32]], ["person"], [True], [1], meta={"period": "day"})
    rebuilt = PairSample.checked_before(checked.boxes, checked.labels, checked.ignore, checked.occlusion,
                                        checked.meta)
    # Every field is set (a field added to PairSample later must be added here too).
    assert set(vars(rebuilt)) == {f.name for f in fields(PairSample)}
    for f in fields(PairSample):
        a, b = getattr(checked, f.name), getattr(rebuilt, f.name)
        assert (a is None and b is None) or (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b), f.name
