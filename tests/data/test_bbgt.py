"""bbGt text format: every version parses, writer and parser round-trip, malformed files are located."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgbt.data.bbgt import FIELDS_PER_VERSION, BbGtObject, format_bbgt, parse_bbgt, read_bbgt, write_bbgt
from rgbt.data.errors import DataFormatError

LINES = {
    0: "person 10 20 30 60 1 12 22 20 40",
    1: "person 10 20 30 60 1 12 22 20 40",
    2: "person 10 20 30 60 1 12 22 20 40 1",
    3: "person 10 20 30 60 1 12 22 20 40 1 7.5",
}


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_every_version_parses_with_its_field_count(version: int) -> None:
    line = LINES[version]
    assert len(line.split()) == FIELDS_PER_VERSION[version] == {0: 10, 1: 10, 2: 11, 3: 12}[version]
    (obj,) = parse_bbgt(f"% bbGt version={version}\n{line}\n")
    assert obj.label == "person"
    assert obj.box == (10.0, 20.0, 30.0, 60.0)
    assert obj.occlusion == 1
    assert obj.visible == (12.0, 22.0, 20.0, 40.0)
    assert obj.ignore == (1 if version >= 2 else 0)
    assert obj.angle == (7.5 if version == 3 else 0.0)


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_a_line_of_another_version_is_rejected(version: int) -> None:
    other = LINES[3] if version < 3 else LINES[2]
    with pytest.raises(DataFormatError, match=f"version {version} needs {FIELDS_PER_VERSION[version]} fields"):
        parse_bbgt(f"% bbGt version={version}\n{other}\n")


def test_header_only_file_has_no_objects(tmp_path) -> None:
    path = tmp_path / "I00001.txt"
    path.write_text("% bbGt version=3\n")
    assert read_bbgt(path) == []
    assert format_bbgt([]) == "% bbGt version=3\n"


def test_comment_and_blank_lines_are_skipped() -> None:
    objects = parse_bbgt("% bbGt version=3\n\n% a comment\nperson 1 2 3 4 0 0 0 0 0 0 0\n")
    assert [obj.label for obj in objects] == ["person"]


MALFORMED = {
    "wrong field count": ("% bbGt version=3\nperson 1 2 3 4 0 0 0 0 0 0\n", 2, "needs 12 fields, got 11"),
    "non-number": ("% bbGt version=3\nperson 1 2 x 4 0 0 0 0 0 0 0\n", 2, "'w' is not a number: 'x'"),
    "negative size": ("% bbGt version=3\nperson 1 2 3 4 0 0 0 0 0 0 0\nperson 1 2 -3 4 0 0 0 0 0 0 0\n", 3,
                      "negative box size w=-3"),
    "missing header": ("person 1 2 3 4 0 0 0 0 0 0 0\n", 1, "expected a header"),
    "empty file": ("", 1, "empty file"),
    "unknown version": ("% bbGt version=7\n", 1, "unsupported bbGt version 7"),
    "fractional occlusion": ("% bbGt version=3\nperson 1 2 3 4 0.5 0 0 0 0 0 0\n", 2, "occlusion flag"),
    "infinite value": ("% bbGt version=3\nperson 1 2 inf 4 0 0 0 0 0 0 0\n", 2, "not finite"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_names_file_and_line(tmp_path, case: str) -> None:
    text, line, reason = MALFORMED[case]
    path = tmp_path / "set00" / "V000" / "I00001.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(DataFormatError) as info:
        read_bbgt(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert reason in str(info.value)
    assert info.value.path == str(path) and info.value.line == line


def test_binary_file_is_a_format_error(tmp_path) -> None:
    path = tmp_path / "I00001.txt"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataFormatError, match="not a text file"):
        read_bbgt(path)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
labels = st.one_of(
    st.sampled_from(["person", "people", "cyclist", "person?"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_?-0123456789", min_size=1, max_size=12).filter(
        lambda s: not s.startswith("%")
    ),
)
objects = st.builds(
    BbGtObject,
    label=labels,
    box=st.tuples(finite, finite, size, size),
    occlusion=st.integers(0, 2),
    visible=st.tuples(finite, finite, size, size),
    ignore=st.integers(0, 1),
    angle=finite,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(objects, max_size=6))
def test_write_then_parse_round_trips_exactly(objs: list[BbGtObject]) -> None:
    text = format_bbgt(objs)
    assert parse_bbgt(text, labels=None) == objs
    assert format_bbgt(parse_bbgt(text, labels=None)) == text


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.lists(objects, max_size=4), st.sampled_from([0, 1, 2]))
def test_older_versions_drop_only_their_missing_fields(objs: list[BbGtObject], version: int) -> None:
    parsed = parse_bbgt(format_bbgt(objs, version), labels=None)
    for got, want in zip(parsed, objs, strict=True):
        assert (got.label, got.box, got.occlusion, got.visible) == (want.label, want.box, want.occlusion, want.visible)
        assert got.ignore == (want.ignore if version == 2 else 0)
        assert got.angle == 0.0


def test_write_bbgt_creates_folders(tmp_path) -> None:
    path = tmp_path / "a" / "b" / "I00001.txt"
    obj = BbGtObject("person", (1, 2, 3, 4))
    write_bbgt(path, [obj])
    assert read_bbgt(path) == [BbGtObject("person", (1.0, 2.0, 3.0, 4.0))]
    assert path.read_text() == "% bbGt version=3\nperson 1 2 3 4 0 0 0 0 0 0 0\n"


def test_labels_with_spaces_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="labels cannot be empty or contain spaces"):
        format_bbgt([BbGtObject("two words", (0, 0, 1, 1))])
