"""Plain YAML scalars as plan values, by YAML 1.2's rules, and the error that names where.

:mod:`okr_sync.config.plan_yaml` reads a plan's events; the scalars are resolved and
constructed here, with the bounds of that module (no tag constructs an object; integers
of at most :data:`MAX_INT_DIGITS` digits; real calendar dates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

PathPart = str | int
Position = tuple[int, int]

#: Python's own limit for converting decimal text to int (``sys.get_int_max_str_digits``).
MAX_INT_DIGITS = 4300

_TAG = "tag:yaml.org,2002:"

# What ruamel.yaml resolves plain scalars to under YAML 1.2 (its default), so that a
# plan means the same as it did when ruamel constructed it.
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TIMESTAMP = re.compile(
    r"""^(?P<year>[0-9]{4})-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)
    (?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})
    (?:\.(?P<fraction>[0-9]*))?
    (?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)
    (?::(?P<tz_minute>[0-9]{2}))?))?)?$""",
    re.X,
)
_DATE_ONLY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}
STR_TAG = f"{_TAG}str"
#: The only plain scalars starting with a letter that are not text (bool and null).
WORDS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"})
MAP_TAG, SEQ_TAG, MERGE_TAG = f"{_TAG}map", f"{_TAG}seq", f"{_TAG}merge"


class YamlProblem(Exception):
    """The document cannot be read as a plan; ``path`` is None for file-level problems."""

    def __init__(self, position: Position, message: str, path: Iterable[PathPart] = ()) -> None:
        self.line, self.column = position
        self.path = tuple(path)
        self.message = message
        super().__init__(message)


#: Stands for the ``<<`` merge key while a mapping is read (never in the result).
MERGE_KEY = object()


def resolve(value: str) -> str:
    for pattern, tag in (
        (_BOOL, "bool"),
        (_FLOAT, "float"),
        (_INT, "int"),
        (_NULL, "null"),
    ):
        if pattern.match(value):
            return _TAG + tag
    stamp = _TIMESTAMP.match(value)
    # ruamel takes a one-digit month or day as a date only when a time follows.
    if stamp is not None and (_DATE_ONLY.match(value) or stamp.group("hour") is not None):
        return _TAG + "timestamp"
    return MERGE_TAG if value == "<<" else _TAG + "str"


def tag_refused(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"tag {shown} is not allowed in a plan (only plain YAML values, mappings and lists;"
        " nothing is constructed from tags)"
    )


def construct(tag: str, value: str, position: Position, path: tuple[PathPart, ...]) -> Any:
    if tag == _TAG + "str":
        return value
    if tag == MERGE_TAG:
        return MERGE_KEY
    if tag == _TAG + "timestamp":
        return _timestamp(value, position, path)
    if tag not in _SCALAR_TAGS:
        raise YamlProblem(position, tag_refused(tag), path)
    kind = tag.removeprefix(_TAG)
    if kind == "null" and _NULL.match(value):
        return None
    if kind == "bool" and _BOOL.match(value):
        return value.lower() == "true"
    if kind == "int" and _INT.match(value):
        return _int(value, position, path)
    if kind == "float" and _FLOAT.match(value):
        return _float(value)
    if kind == "float" and _INT.match(value):
        number = _int(value, position, path)
        try:
            return float(number)
        except (OverflowError, ValueError):
            raise YamlProblem(position, f"{value[:40]!r} is not a valid !!float", path) from None
    raise YamlProblem(position, f"{value[:40]!r} is not a valid !!{kind}", path)


def _int(value: str, position: Position, path: tuple[PathPart, ...]) -> int | str:
    text = value.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    base = {"0b": 2, "0o": 8, "0x": 16}.get(text[:2], 10)
    digits = text[2:] if base != 10 else text
    if not digits:
        # "_" or "0x_" match the int pattern but hold no digits: plain text, not a number.
        return value
    if len(digits) > MAX_INT_DIGITS:
        raise YamlProblem(
            position,
            f"an integer of {len(digits):,} digits; a plan number has at most"
            f" {MAX_INT_DIGITS} digits",
            path,
        )
    return sign * int(digits, base)


def _float(value: str) -> float | str:
    text = value.replace("_", "").lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text.endswith(".nan"):
        return float("nan")
    try:
        return float(text)
    except ValueError:
        # "._" matches the float pattern but holds no digits: plain text, not a number.
        return value


def _timestamp(value: str, position: Position, path: tuple[PathPart, ...]) -> date:
    match = _TIMESTAMP.match(value)
    if match is None:
        raise YamlProblem(position, f"{value[:40]!r} is not a valid !!timestamp", path)
    parts = match.groupdict()
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        if parts["hour"] is None:
            return day
        fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
        zone = None
        if parts["tz"] == "Z":
            zone = UTC
        elif parts["tz"]:
            offset = timedelta(hours=int(parts["tz_hour"]), minutes=int(parts["tz_minute"] or 0))
            zone = timezone(-offset if parts["tz_sign"] == "-" else offset)
        return datetime(
            day.year, day.month, day.day, int(parts["hour"]), int(parts["minute"]),
            int(parts["second"]), int(fraction), tzinfo=zone,
        )
    except ValueError as error:
        what = "date" if parts["hour"] is None else "date and time"
        raise YamlProblem(position, f"{value!r} is not a valid {what} ({error})", path) from None
