"""Read a plan's YAML into plain data, safely, with the position of every node.

A plan file comes from a repository anyone may send a change to, and ``okr-sync
validate`` runs in CI on such changes; so reading one must stay cheap and inert
whatever it holds. The document is built here straight from a YAML parser's event
stream (no constructor runs, no object is created from a tag) with hard bounds:

- at most :data:`MAX_PLAN_BYTES` bytes, UTF-8 only, no control characters;
- collections nested at most :data:`MAX_DEPTH` levels (a real plan needs < 10);
- aliases may add at most :data:`MAX_ALIAS_NODES` nodes to the document: an alias
  reuses the anchored value (shared, never copied), and its expanded size is
  counted, so an alias bomb is refused after reading its few bytes;
- only the standard scalar tags (str, int, float, bool, null) and map/seq;
- integers of at most ``MAX_INT_DIGITS`` digits, real calendar dates (resolved and
  built in :mod:`okr_sync.config.yaml_values`).

Every refusal is a :class:`YamlProblem` with the line and column where it happens.

The events come from PyYAML's parser, in C (libyaml) where PyYAML was built with it,
as its wheels are: ~60 times faster than a pure-Python parser, so any plan up to the
size limit answers within 2 s (benchmarks/RESULTS.md). Without libyaml, PyYAML's
pure-Python parser gives the same events, slower. Values are resolved here, by YAML
1.2's rules (as ruamel.yaml, which read plans before, resolved them), not PyYAML's 1.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
)

from okr_sync.config.yaml_values import (
    MAP_TAG,
    MERGE_KEY,
    SEQ_TAG,
    STR_TAG,
    WORDS,
    construct,
    resolve,
    tag_refused,
)

# Re-exported: they lived here before the scalar rules moved to yaml_values.
from okr_sync.config.yaml_values import PathPart as PathPart
from okr_sync.config.yaml_values import Position as Position
from okr_sync.config.yaml_values import YamlProblem as YamlProblem

#: The event parser: libyaml's when PyYAML has it (a plan's positions are the same).
_PARSER_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)

#: A real plan of 400 key results is 100-200 KB; the limit keeps every answer under 2 s.
MAX_PLAN_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000
#: Values in the whole document, aliases expanded (a plan of 400 key results has ~10,000):
#: what reading and validating cost grows with this, whatever the bytes.
MAX_NODES = 100_000
# YAML 1.2's printable characters; anything else means the file is not plan text.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)



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


def check_size(size: int, *, exact: bool = True) -> None:
    """Refuse a plan over :data:`MAX_PLAN_BYTES` (``exact``: ``size`` is its whole size,
    not only what was read of it to know it is too large)."""
    if size > MAX_PLAN_BYTES:
        shown = f"{size:,} bytes" if exact else f"over {MAX_PLAN_BYTES:,} bytes"
        raise YamlProblem(
            (1, 1),
            f"the plan is {shown}; a plan file may be at most {MAX_PLAN_BYTES:,} bytes"
            " (a plan of 400 key results is about 200 KB)",
        )


def check_text(text: str) -> None:
    """Refuse characters YAML does not allow (NUL bytes of a binary or UTF-16 file...)."""
    # A str of n characters is at least n bytes of UTF-8: refuse huge ones before encoding.
    check_size(len(text), exact=False)
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
        self.nodes = 0
        self.documents = 0
        self.root: _Node | None = None

    def read(self, events: Iterable[Event]) -> YamlDocument:
        for event in events:
            mark = event.start_mark
            position = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            if isinstance(event, DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise YamlProblem(position, "a plan file holds one YAML document, not several")
            elif isinstance(event, CollectionStartEvent):
                self._count(1, position)
                self._start(event, position)
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                self._end()
            elif isinstance(event, ScalarEvent):
                self._count(1, position)
                value = self._scalar(event, position)
                self._add(_Node(value, 1, None), position, event.anchor)
            elif isinstance(event, AliasEvent):
                self._alias(event.anchor or "", position)
        if self.root is None:
            return YamlDocument(None, PositionTree())
        return YamlDocument(self.root.value, self.root.tree or PositionTree())

    def _count(self, nodes: int, position: Position) -> None:
        self.nodes += nodes
        if self.nodes > MAX_NODES:
            raise YamlProblem(
                position,
                f"the plan holds more than {MAX_NODES:,} values (aliases expanded); a plan of"
                " 400 key results holds about 10,000",
                self._child_path(),
            )

    def _child_path(self) -> tuple[PathPart, ...]:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        return (*top.path, top.key[0]) if top.key is not None else top.path

    def _start(self, event: CollectionStartEvent, position: Position) -> None:
        path = self._child_path()
        if len(self.stack) >= MAX_DEPTH:
            raise YamlProblem(
                position, f"nested deeper than {MAX_DEPTH} levels (a plan needs fewer than 10)"
            )
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.key is None:
            raise YamlProblem(position, "a mapping key must be a plain value", top.path)
        mapping = isinstance(event, MappingStartEvent)
        expected = MAP_TAG if mapping else SEQ_TAG
        if event.tag is not None and event.tag not in (expected, "!"):
            raise YamlProblem(position, tag_refused(event.tag), path)
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
        self._count(node.size, position)
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
        merge = node.value is MERGE_KEY
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

    def _scalar(self, event: ScalarEvent, position: Position) -> Any:
        value: str = event.value
        tag = event.tag
        if tag is None and event.implicit[0]:
            if value[:1].isalpha() and value not in WORDS:
                return value  # plain text (most of a plan): no other pattern starts so
            tag = resolve(value)
        elif tag is None or tag == "!":
            return value
        if tag == STR_TAG:
            return value
        return construct(tag, value, position, self._child_path())


def read_yaml(text: str) -> YamlDocument:
    """Plain data (dicts with str keys, lists, scalars) and where each node is.

    Raises :class:`YamlProblem` for the bounds above, and lets PyYAML's
    ``MarkedYAMLError`` through for syntax errors.
    """
    check_text(text)
    return _Reader().read(yaml.parse(text, Loader=_PARSER_LOADER))
