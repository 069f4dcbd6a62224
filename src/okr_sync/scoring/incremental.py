"""Incremental measuring: each measure's selected items kept between passes.

A measure's value is a function of its selected items' facts (:class:`ItemFact`),
and an item's fact depends only on the item, the measure, its source's settings
and the cycle start. So per measure we keep its facts (:class:`MeasureState`),
keyed by a hash of everything but the items (:func:`measure_key`), and a pass
with changes recomputes only what the changed items touch:

- a structured measure drops the facts of changed and removed items and adds the
  facts of changed items its selector matches; every other item is unchanged, so
  its membership and fact are too;
- a raw-JQL measure rebuilds its facts from its (possibly new) member ids, taking
  unchanged members' facts from before and reading only members it did not hold.

:func:`combine` then recomputes the value over the facts in one fixed order, the
same float operations a full measurement makes, so the result is exactly a full
recomputation's. A measure whose key changed (plan edit, new cycle start, an epic
key resolving to another issue) or that has no state is measured in full, in one
pass over the mirror shared by all such measures. :class:`MeasureIndex` files each
structured measure under one condition its items must meet, so an item is tested
only against the measures filed under its own attributes. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import Any

from okr_sync.config.plan import JiraMeasure, JiraSourceConfig
from okr_sync.scoring.fact_columns import (
    COUNTED,
    COUNTED_TEXT,
    COUNTED_VALUE,
    FIELDS,
    FLAG_TEXT,
    FLAG_VALUE,
    FLAGS,
    TEXTS,
    FactColumns,
)
from okr_sync.scoring.measures import (
    Contribution,
    ItemFact,
    SelectorMatcher,
    WorkItem,
    item_fact,
)

#: Bumped whenever what a fact holds or how it is computed changes: older states
#: then no longer match any measure and are rebuilt.
FACT_VERSION = 1

Filing = tuple[str, ...]


@dataclass(frozen=True)
class MeasureState:
    """One measure's selected items, as of the mirror it was computed on."""

    #: :func:`measure_key` of the measure it was computed for.
    key: str
    #: Selected items that could be read, by id, in :meth:`ItemFact.order`.
    facts: Mapping[str, ItemFact]
    #: Raw-JQL measures: the member ids the facts were computed for (unread ones too).
    members: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        # The facts as columns, one per field (the items in order; see :func:`_columns`):
        # a pass reads back every touched measure's, and columns are turned into facts
        # by C-level maps, without a list per item to parse and slice.
        return {
            "key": self.key,
            "members": None if self.members is None else list(self.members),
            # A state read back keeps its columns: stored again as they are.
            COLUMNS: (self.facts.columns if isinstance(self.facts, FactColumns)
                      else _columns(self.facts.values())),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> MeasureState:
        """A state as :meth:`to_json` writes it, or as written before (a row per fact)."""
        members = doc.get("members")
        if members is not None:
            # Checked by a C-level map: a raw-JQL measure holds thousands of members.
            members = (tuple(members) if set(map(type, members)) <= {str}
                       else tuple(map(str, members)))
        facts = (_facts_from_columns(doc[COLUMNS]) if COLUMNS in doc
                 else _facts_from_json(doc["facts"]))
        if members is not None and not set(members).issuperset(facts):
            # A raw-JQL measure's facts are of its members only; updates rely on it.
            raise ValueError("stored item facts of ids that are not members")
        return cls(key=str(doc["key"]), facts=facts, members=members)


#: The key of a stored state's facts as columns (:meth:`MeasureState.to_json`).
COLUMNS = "columns"
_FACT_FIELDS = FIELDS
_new = tuple.__new__
_CONTRIBUTION = itemgetter(ItemFact._fields.index("contribution"))


def _columns(facts: Collection[ItemFact]) -> list[Any]:
    """One column per field of :class:`Contribution` and then of :class:`ItemFact`: a
    list of values, or for the flags and ``counted`` a string (:data:`FLAGS`): one
    string parses far faster than a JSON value per item, and is a third of the size."""
    if not facts:
        columns: list[Any] = [[] for _ in range(_FACT_FIELDS)]
    else:
        columns = list(map(list, zip(*map(_CONTRIBUTION, facts), strict=True)))
        columns += (list(map(itemgetter(i), facts)) for i in range(1, len(ItemFact._fields)))
    for index in FLAGS:
        columns[index] = "".join(map(FLAG_TEXT.__getitem__, columns[index]))
    columns[COUNTED] = "".join(map(COUNTED_TEXT.__getitem__, columns[COUNTED]))
    return columns


def _facts_from_columns(columns: Sequence[Any]) -> Mapping[str, ItemFact]:
    """Facts by id from their columns, checked as :func:`_facts_from_json` checks rows,
    and kept as columns (:class:`FactColumns`): an item's tuples are built only when
    something asks for that item."""
    if len(columns) != _FACT_FIELDS or len(set(map(len, columns))) != 1:
        raise ValueError(f"not stored item facts: {columns!r}"[:200])
    for index, column in enumerate(columns):
        if type(column) is not (str if index in TEXTS else list):
            raise ValueError(f"not stored item facts: {columns!r}"[:200])
    ids = columns[_ID_INDEX]
    if not ids:
        return {}
    # Each id's position: asked for by nearly every state a pass reads (which of its
    # items changed), and it tells that no id is there twice.
    positions = dict(zip(ids, range(len(ids)), strict=True))
    if (set(map(type, ids)) != {str} or not COUNTED_VALUE.keys() >= set(columns[COUNTED])
            or any(not FLAG_VALUE.keys() >= set(columns[index]) for index in FLAGS)
            or len(positions) != len(ids)
            # A value of another type would fail every later pass in ordering or
            # summing (the state is read again each time): refused here, it is rebuilt.
            or any(not _TEXT_TYPES.issuperset(map(type, columns[index])) for index in _TEXT)
            or any(not _NUMBER_TYPES.issuperset(map(type, columns[index]))
                   for index in _NUMBERS)):
        raise ValueError(f"not stored item facts: {columns!r}"[:200])
    return FactColumns(list(columns), positions)


_TEXT = tuple(Contribution._fields.index(f) for f in ("key", "summary", "status", "project"))
_NUMBERS = tuple(Contribution._fields.index(f) for f in ("points", "amount"))
_TEXT_TYPES = frozenset({str})
# Not bool: JSON's true/false are no points.
_NUMBER_TYPES = frozenset({int, float, type(None)})


def _facts_from_json(rows: Sequence[Sequence[Any]]) -> dict[str, ItemFact]:
    """Facts by id from their rows. Rows are this module's own output (a foreign shape
    is refused, and the caller then rebuilds the measure): checked and turned into
    tuples by C-level maps, with no Python call per row (a pass reads one per item of
    every touched measure)."""
    if not rows:
        return {}
    if (not set(map(type, rows)) <= {list, tuple}
            or set(map(len, rows)) != {_FACT_FIELDS}
            or not _COUNTED.issuperset(map(_COUNTED_FIELD, rows))
            or set(map(type, map(_ID_FIELD, rows))) != {str}):
        raise ValueError(f"not stored item facts: {rows!r}"[:200])
    columns = [_shared_text(column) for column in zip(*rows, strict=True)]
    contributions = map(partial(_new, Contribution),
                        zip(*columns[:len(Contribution._fields)], strict=True))
    facts = map(partial(_new, ItemFact),
                zip(contributions, *columns[len(Contribution._fields):], strict=True))
    return dict(zip(columns[_ID_COLUMN], facts, strict=True))


def _shared_text(column: Sequence[Any]) -> Sequence[Any]:
    """A column of stored rows with its strings interned: decoded JSON gives every
    status, project and count its own string on every row, and every issue's id, key
    and summary once per measure selecting it; shared, they were most of the decoded
    states' memory (a pass decodes one per item of every touched measure)."""
    if set(map(type, column)) == {str}:
        return tuple(map(sys.intern, column))
    return column


_ID_INDEX = _ID_COLUMN = Contribution._fields.index("id")
_COUNTED_INDEX = Contribution._fields.index("counted")
_ID_FIELD = itemgetter(_ID_INDEX)
_COUNTED_FIELD = itemgetter(_COUNTED_INDEX)


_COUNTED = frozenset({"done", "open", "excluded_frozen"})


def measure_key(spec: JiraMeasure, source: JiraSourceConfig, *, cycle_start: datetime,
                epic_ids: Collection[str] = ()) -> str:
    """A hash of everything a measure's facts and selection depend on besides the items."""
    document = {
        "version": FACT_VERSION,
        "spec": spec.model_dump(mode="json"),
        "source": source.model_dump(mode="json"),
        "cycle_start": cycle_start.isoformat(),
        "epic_ids": sorted(epic_ids),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _cf(value: str) -> str:
    return value.casefold()


def _filing(matcher: SelectorMatcher) -> list[Filing]:
    """Conditions any item ``matcher`` selects meets at least one of."""
    if matcher.epic_keys is not None:
        by_key: list[Filing] = [("parent_key", k) for k in matcher.epic_keys]
        return by_key + [("parent_id", i) for i in matcher.epic_ids]
    for name, values in (("label", matcher.labels), ("component", matcher.components),
                         ("fix_version", matcher.fix_versions)):
        if values is not None:
            return [(name, v) for v in values]
    for name, values in (("issuetype", matcher.issuetypes), ("priority", matcher.priorities),
                         ("category", matcher.categories)):
        if values is not None:
            return [(name, p, v) for p in matcher.projects for v in values]
    return [("project", p) for p in matcher.projects]


def _item_filings(item: WorkItem) -> list[Filing]:
    project = _cf(item.project)
    keys: list[Filing] = [
        ("project", project),
        ("issuetype", project, _cf(item.issuetype)),
        ("priority", project, _cf(item.priority or "")),
        ("category", project, _cf(item.status_category)),
    ]
    if item.parent_key is not None:
        keys.append(("parent_key", _cf(item.parent_key)))
    if item.parent_id is not None:
        keys.append(("parent_id", item.parent_id))
    keys += [("label", _cf(v)) for v in item.labels]
    keys += [("component", _cf(v)) for v in item.components]
    keys += [("fix_version", _cf(v)) for v in item.fix_versions]
    return keys


class MeasureIndex:
    """Structured measures filed by a condition each of their items meets."""

    def __init__(self, matchers: Mapping[str, SelectorMatcher]) -> None:
        self.matchers = matchers
        self._filed: dict[Filing, list[str]] = {}
        for owner, matcher in matchers.items():
            for filing in _filing(matcher):
                self._filed.setdefault(filing, []).append(owner)

    def matching(self, item: WorkItem) -> set[str]:
        """The measures that select ``item`` (each confirmed by its own matcher)."""
        candidates: set[str] = set()
        for filing in _item_filings(item):
            candidates.update(self._filed.get(filing, ()))
        return {owner for owner in candidates if self.matchers[owner](item)}


@dataclass(frozen=True)
class Measured:
    """What :func:`update_states` needs of one measure."""

    spec: JiraMeasure
    source: JiraSourceConfig
    key: str
    #: Structured measures: their selector; raw-JQL ones: ``None``.
    matcher: SelectorMatcher | None = None
    #: Raw-JQL measures: the member ids this pass.
    members: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Changes:
    """How the mirror differs from the one the previous states were computed on."""

    #: Added or updated items, as they are now.
    changed: Mapping[str, WorkItem]
    #: Ids no longer in the mirror (deleted, moved out of reach).
    removed: Collection[str] = frozenset()


def _ordered(facts: Iterable[ItemFact]) -> dict[str, ItemFact]:
    return _by_id(sorted(facts, key=_order))


def full_states(
    measures: Mapping[str, Measured], items: Iterable[WorkItem], *, cycle_start: datetime
) -> dict[str, MeasureState]:
    """Measure ``measures`` from scratch in one pass over ``items`` (the whole mirror)."""
    index = MeasureIndex({o: m.matcher for o, m in measures.items() if m.matcher is not None})
    wanted: dict[str, list[str]] = {}
    for owner, m in measures.items():
        for member in m.members or ():
            wanted.setdefault(member, []).append(owner)
    facts: dict[str, list[ItemFact]] = {owner: [] for owner in measures}
    for item in items:
        owners = index.matching(item)
        owners.update(wanted.get(item.id, ()))
        for owner in owners:
            m = measures[owner]
            facts[owner].append(item_fact(m.spec, item, m.source, cycle_start=cycle_start))
    return {
        owner: MeasureState(m.key, _ordered(facts[owner]),
                            None if m.members is None else _unique(m.members))
        for owner, m in measures.items()
    }


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def needed_items(
    measures: Mapping[str, Measured], previous: Mapping[str, MeasureState], changes: Changes
) -> set[str]:
    """Ids :func:`update_states` needs read from the mirror: raw-JQL members that are
    new to their measure and did not change (changed ones come with ``changes``)."""
    needed: set[str] = set()
    for owner, m in measures.items():
        before = previous.get(owner)
        if m.members is None or before is None or before.members is None:
            continue
        if m.members == before.members:
            continue  # the usual pass: the same members, each known already
        known = set(before.members)
        needed.update(i for i in m.members if i not in known and i not in changes.changed)
    return needed


def update_states(
    measures: Mapping[str, Measured],
    previous: Mapping[str, MeasureState],
    changes: Changes,
    read: Mapping[str, WorkItem],
    *,
    cycle_start: datetime,
) -> dict[str, MeasureState]:
    """Each measure's state after ``changes``, from its state before them.

    Every measure in ``measures`` must have a state in ``previous`` with its key.
    ``read`` holds the mirror's items for :func:`needed_items` (absent: not mirrored).
    An unaffected measure keeps its state object (the caller need not store it again).
    """
    touched = set(changes.changed) | set(changes.removed)
    index = MeasureIndex({o: m.matcher for o, m in measures.items() if m.matcher is not None})
    joining: dict[str, list[WorkItem]] = {}
    for item in changes.changed.values():
        for owner in index.matching(item):
            joining.setdefault(owner, []).append(item)
    result: dict[str, MeasureState] = {}
    for owner, m in measures.items():
        before = previous[owner]
        if before.key != m.key:
            raise ValueError(f"{owner}: the stored state is of another measure")
        if m.members is None:
            result[owner] = _update_selected(m, before, touched, joining.get(owner, ()),
                                             cycle_start)
        else:
            result[owner] = _update_members(m, before, touched, changes, read, cycle_start)
    return result


def _update_selected(m: Measured, before: MeasureState, touched: set[str],
                     joining: Sequence[WorkItem], cycle_start: datetime) -> MeasureState:
    left = before.facts.keys() & touched
    if not left and not joining:
        return before
    new = [item_fact(m.spec, item, m.source, cycle_start=cycle_start) for item in joining]
    return MeasureState(m.key, _replaced(before.facts, left, new))


def _replaced(facts: Mapping[str, ItemFact], drop: set[str], new: Sequence[ItemFact]
              ) -> Mapping[str, ItemFact]:
    """``facts`` (in :meth:`ItemFact.order`) without the ids of ``drop``, with ``new`` in
    their places. A new fact of an item that keeps its place in that order (the
    usual change: a status, points) takes its old fact's place in a copy of the dict;
    only the others are sorted in (:func:`_inserted`): a change of a few items
    rebuilds no measure's order of thousands."""
    if isinstance(facts, FactColumns):
        return facts.replaced(drop, new)
    result = dict(facts)
    moved: list[ItemFact] = []
    for fact in new:
        ident = fact.contribution.id
        old = facts.get(ident)
        if old is not None and ident in drop and old.order == fact.order:
            result[ident] = fact
            drop.discard(ident)
        else:
            moved.append(fact)
    for ident in drop:
        del result[ident]
    return _inserted(list(result.values()), moved) if moved else result


def _order(fact: ItemFact) -> tuple[str, int, str]:
    return fact.order


def _inserted(ordered: list[ItemFact], new: Sequence[ItemFact]) -> dict[str, ItemFact]:
    """``ordered`` (a state's facts: in :meth:`ItemFact.order` already) with ``new`` put in
    their places: the order :func:`_ordered` gives (ids make every order key unique), but
    a change of a few items computes a few keys, not one per item of the measure."""
    if len(new) * 8 > len(ordered):
        return _ordered([*ordered, *new])
    for fact in sorted(new, key=_order):
        bisect.insort(ordered, fact, key=_order)
    return _by_id(ordered)


def _by_id(facts: list[ItemFact]) -> dict[str, ItemFact]:
    return dict(zip(map(_ID, map(_CONTRIBUTION, facts)), facts, strict=True))


_ID = itemgetter(Contribution._fields.index("id"))


def _update_members(m: Measured, before: MeasureState, touched: set[str], changes: Changes,
                    read: Mapping[str, WorkItem], cycle_start: datetime) -> MeasureState:
    members = _unique(m.members or ())
    if members == before.members:
        if touched.isdisjoint(members):
            return before
        held = before.facts.keys()
        if len(held) == len(members):
            # The same members, every one read: the facts' ids are the members (as a set
            # already), and only the touched ones change, as below.
            new = [item_fact(m.spec, item, m.source, cycle_start=cycle_start)
                   for ident, item in changes.changed.items() if ident in held]
            return MeasureState(m.key, _replaced(before.facts, held & touched, new), members)
    known = set(before.members or ())
    wanted = set(members)
    # Members that changed take their item now, members new to the measure the one read
    # (if mirrored), the rest keep their fact: found by set operations, the facts kept
    # in their order and the few new ones put in their places (:func:`_inserted`).
    items = [changes.changed[i] for i in wanted.intersection(changes.changed)]
    items += [read[i] for i in wanted.difference(known, changes.removed, changes.changed)
              if i in read]
    new = [item_fact(m.spec, item, m.source, cycle_start=cycle_start) for item in items]
    keep = wanted.intersection(known, before.facts.keys()).difference(touched)
    return MeasureState(m.key, _replaced(before.facts, before.facts.keys() - keep, new),
                        members)
