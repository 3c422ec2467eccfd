"""Reading json files and the typed values inside them, with errors that name the file and the key.

Every json file rgbt reads goes through :func:`load_json` (COCO annotations and results,
``KAIST_annotation.json``, FLIR's video map, the synthetic-root manifest); it refuses an object that
repeats a key (Python's ``json`` would silently keep the last value). Python also reads ``NaN``,
``Infinity`` and ``1e999`` (infinity), which the json standard does not have: they are read, and the
typed getters below refuse them where a field is used, naming the key. The getters turn a wrong
type, a ``null`` or a missing key into a :class:`~rgbt.data.errors.DataFormatError` whose message
names the key path (``images[3].id``) and the value, never a ``TypeError`` or ``KeyError``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rgbt.data.domains import xywh_problem
from rgbt.data.errors import DataFormatError, read_text

_MISSING = object()


class _RepeatedKey(ValueError):
    """An object repeats a key (raised while decoding, reported with the file name)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _RepeatedKey(f"an object repeats the key {key!r} (the last value would win): "
                                   f"{_shown(out)}")
            seen.add(key)
    return out


def load_json(path: str | os.PathLike[str]) -> Any:
    """The parsed content of a UTF-8 json file, with errors that name the file.

    Raises:
        FileNotFoundError: ``path`` is missing.
        DataFormatError: not UTF-8 text, invalid json (naming the line), an object with a repeated
            key, or nesting too deep to read.
    """
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid json: {err.msg}") from None
    except _RepeatedKey as err:
        raise DataFormatError(path, None, str(err)) from None
    except RecursionError:
        raise DataFormatError(path, None, "json nested too deeply to read") from None


def _shown(value: Any) -> str:
    """A value as the file spells it, cut to a readable length."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def get(obj: dict[str, Any], key: str, path: str | os.PathLike[str], where: str, default: Any = _MISSING) -> Any:
    """``obj[key]``; a missing key is ``default`` when one is given, else an error naming ``where.key``."""
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise DataFormatError(path, None, f"{where} lacks the key {key!r}: {_shown(obj)}")
    return default


def as_object(value: Any, path: str | os.PathLike[str], where: str) -> dict[str, Any]:
    """``value`` when it is a json object, else an error."""
    if not isinstance(value, dict):
        raise DataFormatError(path, None, f"{where}: expected a json object, got {_shown(value)}")
    return value


def as_list(value: Any, path: str | os.PathLike[str], where: str) -> list[Any]:
    """``value`` when it is a json list, else an error."""
    if not isinstance(value, list):
        raise DataFormatError(path, None, f"{where}: expected a json list, got {_shown(value)}")
    return value


def as_number(value: Any, path: str | os.PathLike[str], where: str) -> float:
    """A finite json number (``true`` / ``false``, strings and ``null`` are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataFormatError(path, None, f"{where}: expected a number, got {_shown(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise DataFormatError(path, None, f"{where}: expected a finite number, got {_shown(value)}")
    return number


def as_int(value: Any, path: str | os.PathLike[str], where: str) -> int:
    """A json integer (``1.0`` is accepted: some writers store ids as floats; ``1.5`` is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and not (math.isfinite(value) and value.is_integer())
    ):
        raise DataFormatError(path, None, f"{where}: expected an integer, got {_shown(value)}")
    return int(value)


def as_flag(value: Any, path: str | os.PathLike[str], where: str) -> int:
    """An ignore-style flag: 0 or 1 (``false`` / ``true`` too)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    raise DataFormatError(path, None, f"{where}: expected a flag 0 or 1, got {_shown(value)}")


def as_str(value: Any, path: str | os.PathLike[str], where: str) -> str:
    """A non-empty json string."""
    if not isinstance(value, str) or not value:
        raise DataFormatError(path, None, f"{where}: expected a non-empty string, got {_shown(value)}")
    return value


def as_xywh(value: Any, path: str | os.PathLike[str], where: str) -> tuple[float, float, float, float]:
    """A ``[x, y, w, h]`` box in its domain (see :func:`rgbt.data.domains.xywh_problem`)."""
    if not isinstance(value, list) or len(value) != 4:
        raise DataFormatError(path, None, f"{where}: expected [x, y, w, h], got {_shown(value)}")
    box = tuple(as_number(v, path, f"{where}[{k}]") for k, v in enumerate(value))
    problem = xywh_problem(box)
    if problem is not None:
        raise DataFormatError(path, None, f"{where}: {problem}: {_shown(value)}")
    return box  # type: ignore[return-value]


def as_numbers(value: Any, n: int, path: str | os.PathLike[str], where: str) -> tuple[float, ...]:
    """A list of exactly ``n`` finite numbers."""
    if not isinstance(value, list) or len(value) != n:
        raise DataFormatError(path, None, f"{where}: expected a list of {n} numbers, got {_shown(value)}")
    return tuple(as_number(v, path, f"{where}[{k}]") for k, v in enumerate(value))


def check_unique(values: Sequence[Any], path: str | os.PathLike[str], what: str, key: str) -> None:
    """Refuse a repeated value (``what`` = ``images``, ``key`` = ``id``), naming both entries."""
    first: dict[Any, int] = {}
    for k, value in enumerate(values):
        if value in first:
            raise DataFormatError(
                path, None, f"{what}[{k}].{key} {_shown(value)} repeats {what}[{first[value]}].{key}: "
                "each must be unique",
            )
        first[value] = k
