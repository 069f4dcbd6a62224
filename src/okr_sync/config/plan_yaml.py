"""Read a plan's YAML into plain data, safely, with the position of every node.

A plan file comes from a repository anyone may send a change to, and ``okr-sync
validate`` runs in CI on such changes; so reading one must stay cheap and inert
whatever it holds. The document is built here straight from ruamel's event
stream (no constructor runs, no object is created from a tag) with hard bounds:

- at most :data:`MAX_PLAN_BYTES` bytes, UTF-8 only, no control characters;
- collections nested at most :data:`MAX_DEPTH` levels (a real plan needs < 10);
- aliases may add at most :data:`MAX_ALIAS_NODES` nodes to the document: an alias
  reuses the anchored value (shared, never copied), and its expanded size is
  counted, so an alias bomb is refused after reading its few bytes;
- only the standard scalar tags (str, int, float, bool, null) and map/seq;
- integers of at most :data:`MAX_INT_DIGITS` digits, real calendar dates.

Every refusal is a :class:`YamlProblem` with the line and column where it happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import events as ruamel_events

from okr_sync.config.plan_yaml_fast import libyaml_events

PathPart = str | int
Position = tuple[int, int]

MAX_PLAN_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000
#: Python's own limit for converting decimal text to int (``sys.get_int_max_str_digits``).
MAX_INT_DIGITS = 4300

_TAG = "tag:yaml.org,2002:"

# What ruamel resolves plain scalars to under YAML 1.2 (its default), so that a
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
# YAML 1.2's printable characters; anything else means the file is not plan text.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}
_MAP, _SEQ, _MERGE = f"{_TAG}map", f"{_TAG}seq", f"{_TAG}merge"


class YamlProblem(Exception):
    """The document cannot be read as a plan; ``path`` is None for file-level problems."""

    def __init__(self, position: Position, message: str, path: Iterable[PathPart] = ()) -> None:
        self.line, self.column = position
        self.path = tuple(path)
        self.message = message
        super().__init__(message)


_PLAIN_KEY = re.compile(r"^[\w@#$%&*+=/<>~^|!?()-]+$")


def format_path(path: Iterable[PathPart]) -> str:
    """``objectives[0].key_results[1].target``; an odd key is quoted, spaces escaped,
    so that the path stays one word of ``FILE:LINE:COLUMN: path: message``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += "[" + _quoted(part) + "]"
    return text or "(plan)"


def _quoted(key: str) -> str:
    escaped = "".join(
        f"\\u{ord(c):04x}" if c.isspace() or not c.isprintable() else c for c in key
    )
    return f'"{escaped}"'


@dataclass
class PositionTree:
    """Where each child of a collection starts (a key for mappings), and its own subtree."""

    children: dict[PathPart, tuple[Position, PositionTree | None]] = field(default_factory=dict)

    def at(self, path: Iterable[PathPart]) -> Position:
        """Position of the deepest existing node on ``path`` (1-based; the root is 1:1)."""
        position: Position = (1, 1)
        tree: PositionTree | None = self
        for part in path:
            if tree is None or part not in tree.children:
                break
            position, tree = tree.children[part]
        return position


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    positions: PositionTree


def _position_in(text: str, index: int) -> Position:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def decode_plan(raw: bytes) -> str:
    """The plan's text: UTF-8 (a BOM is allowed), at most :data:`MAX_PLAN_BYTES`."""
    check_size(len(raw))
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlProblem((1, 1), "the plan is UTF-16 (or UTF-32) text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start].decode("utf-8-sig")
        raise YamlProblem(
            _position_in(before, len(before)),
            f"not UTF-8 text: byte 0x{raw[error.start]:02x} at byte offset {error.start}"
            " (save the plan as UTF-8)",
        ) from None


def check_size(size: int) -> None:
    if size > MAX_PLAN_BYTES:
        raise YamlProblem(
            (1, 1),
            f"the plan is {size:,} bytes; a plan file may be at most {MAX_PLAN_BYTES:,} bytes",
        )


def check_text(text: str) -> None:
    """Refuse characters YAML does not allow (NUL bytes of a binary or UTF-16 file...)."""
    # A str of n characters is at least n bytes of UTF-8: refuse huge ones before encoding.
    check_size(len(text))
    check_size(len(text.encode("utf-8", "surrogatepass")))
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        hint = " (a NUL byte: is this a binary or UTF-16 file?)" if bad.group() == "\0" else ""
        raise YamlProblem(
            _position_in(text, bad.start()),
            f"character U+{ord(bad.group()):04X} is not allowed in a plan{hint}",
        )


@dataclass
class _Collection:
    """A mapping or sequence being read; its children arrive as completed nodes."""

    value: dict[str, Any] | list[Any]
    position: Position
    path: tuple[PathPart, ...]
    anchor: str | None
    tree: PositionTree = field(default_factory=PositionTree)
    size: int = 1
    #: A mapping's key waiting for its value: (key, its position, whether it is ``<<``).
    key: tuple[str, Position, bool] | None = None
    merges: list[tuple[dict[str, Any], PositionTree]] = field(default_factory=list)


@dataclass(frozen=True)
class _Node:
    value: Any
    size: int
    tree: PositionTree | None


class _Reader:
    """Builds plain data from the event stream, without recursion."""

    def __init__(self) -> None:
        self.stack: list[_Collection] = []
        self.anchors: dict[str, _Node] = {}
        self.alias_nodes = 0
        self.documents = 0
        self.root: _Node | None = None

    def read(self, events: Iterable[Any], kinds: Mapping[type, str]) -> YamlDocument:
        for event in events:
            kind = kinds.get(type(event))
            if kind is None:
                continue
            position = (event.start_mark.line + 1, event.start_mark.column + 1)
            if kind == "document":
                self.documents += 1
                if self.documents > 1:
                    raise YamlProblem(position, "a plan file holds one YAML document, not several")
            elif kind == "mapping" or kind == "sequence":
                self._start(event, position, mapping=kind == "mapping")
            elif kind == "end":
                self._end()
            elif kind == "scalar":
                value = self._scalar(event, position)
                self._add(_Node(value, 1, None), position, event.anchor)
            else:
                self._alias(event.anchor, position)
        if self.root is None:
            return YamlDocument(None, PositionTree())
        return YamlDocument(self.root.value, self.root.tree or PositionTree())

    def _child_path(self) -> tuple[PathPart, ...]:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        return (*top.path, top.key[0]) if top.key is not None else top.path

    def _start(self, event: Any, position: Position, *, mapping: bool) -> None:
        path = self._child_path()
        if len(self.stack) >= MAX_DEPTH:
            raise YamlProblem(
                position, f"nested deeper than {MAX_DEPTH} levels (a plan needs fewer than 10)"
            )
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.key is None:
            raise YamlProblem(position, "a mapping key must be a plain value", top.path)
        expected = _MAP if mapping else _SEQ
        if event.tag is not None and event.tag not in (expected, "!"):
            raise YamlProblem(position, _tag_refused(event.tag), path)
        value: dict[str, Any] | list[Any] = {} if mapping else []
        self._shadow(event.anchor)
        self.stack.append(_Collection(value, position, path, event.anchor))

    def _shadow(self, anchor: str | None) -> None:
        """An anchor defined again inside a collection holding it takes over the name
        (as in YAML, where a node's anchor is set where the node starts)."""
        for open_ in self.stack:
            if anchor is not None and open_.anchor == anchor:
                open_.anchor = None

    def _end(self) -> None:
        done = self.stack.pop()
        if isinstance(done.value, dict):
            for source, tree in done.merges:
                # Keys written in the mapping win over merged ones; earlier merges win.
                for key, item in source.items():
                    if key not in done.value:
                        done.value[key] = item
                        done.tree.children[key] = tree.children[key]
        self._add(_Node(done.value, done.size, done.tree), done.position, done.anchor)

    def _alias(self, anchor: str, position: Position) -> None:
        if any(open_.anchor == anchor for open_ in self.stack):
            raise YamlProblem(
                position, f"alias *{anchor} refers to a node that contains it", self._child_path()
            )
        node = self.anchors.get(anchor)
        if node is None:
            raise YamlProblem(position, f"unknown alias *{anchor}", self._child_path())
        self.alias_nodes += node.size
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise YamlProblem(
                position,
                f"aliases expand the plan beyond {MAX_ALIAS_NODES:,} nodes (an alias bomb?)",
                self._child_path(),
            )
        self._add(node, position, None)

    def _add(self, node: _Node, position: Position, anchor: str | None) -> None:
        if anchor is not None:
            self._shadow(anchor)
            self.anchors[anchor] = node
        if not self.stack:
            self.root = node
            return
        top = self.stack[-1]
        top.size += node.size
        if isinstance(top.value, list):
            top.tree.children[len(top.value)] = (position, node.tree)
            top.value.append(node.value)
            return
        if top.key is None:
            self._add_key(top, node, position)
            return
        key, key_position, merge = top.key
        top.key = None
        if merge:
            top.merges += self._merge_sources(node, position, top.path)
            return
        top.value[key] = node.value
        top.tree.children[key] = (key_position, node.tree)

    @staticmethod
    def _add_key(top: _Collection, node: _Node, position: Position) -> None:
        if node.tree is not None:
            raise YamlProblem(position, "a mapping key must be a plain value", top.path)
        merge = node.value is _MERGE_KEY
        key = "<<" if merge else str(node.value)
        if not merge and key in top.value:
            line = top.tree.children[key][0][0]
            raise YamlProblem(
                position, f"duplicate key {key!r} (first at line {line})", (*top.path, key)
            )
        top.key = (key, position, merge)

    @staticmethod
    def _merge_sources(
        node: _Node, position: Position, path: tuple[PathPart, ...]
    ) -> list[tuple[dict[str, Any], PositionTree]]:
        nodes: list[tuple[Any, PositionTree | None]] = [(node.value, node.tree)]
        if isinstance(node.value, list) and node.tree is not None:
            nodes = [(item, node.tree.children[i][1]) for i, item in enumerate(node.value)]
        sources = [(value, tree) for value, tree in nodes if isinstance(value, dict) and tree]
        if len(sources) != len(nodes):
            raise YamlProblem(position, "`<<` merges a mapping or a list of mappings", path)
        return sources

    def _scalar(self, event: Any, position: Position) -> Any:
        value: str = event.value
        path = self._child_path()
        tag = event.tag
        if tag is None and event.implicit[0]:
            tag = _resolve(value)
        elif tag is None or tag == "!":
            return value
        return _construct(tag, value, position, path)


#: Stands for the ``<<`` merge key while a mapping is read (never in the result).
_MERGE_KEY = object()


def _resolve(value: str) -> str:
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
    return _MERGE if value == "<<" else _TAG + "str"


def _tag_refused(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"tag {shown} is not allowed in a plan (only plain YAML values, mappings and lists;"
        " nothing is constructed from tags)"
    )


def _construct(tag: str, value: str, position: Position, path: tuple[PathPart, ...]) -> Any:
    if tag == _TAG + "str":
        return value
    if tag == _MERGE:
        return _MERGE_KEY
    if tag == _TAG + "timestamp":
        return _timestamp(value, position, path)
    if tag not in _SCALAR_TAGS:
        raise YamlProblem(position, _tag_refused(tag), path)
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


def read_yaml(text: str) -> YamlDocument:
    """Plain data (dicts with str keys, lists, scalars) and where each node is.

    Raises :class:`YamlProblem` for the bounds above, and lets ruamel's
    ``MarkedYAMLError`` through for syntax errors.
    """
    check_text(text)
    fast = libyaml_events(text)
    if fast is not None:
        with suppress(YamlProblem):
            # A refusal is told by the reference parser below, in its own words.
            return _Reader().read(fast[0], fast[1])
    return _Reader().read(YAML(typ="safe", pure=True).parse(text), _RUAMEL_KINDS)


_RUAMEL_KINDS: dict[type, str] = {
    ruamel_events.DocumentStartEvent: "document",
    ruamel_events.MappingStartEvent: "mapping",
    ruamel_events.SequenceStartEvent: "sequence",
    ruamel_events.MappingEndEvent: "end",
    ruamel_events.SequenceEndEvent: "end",
    ruamel_events.ScalarEvent: "scalar",
    ruamel_events.AliasEvent: "alias",
}
