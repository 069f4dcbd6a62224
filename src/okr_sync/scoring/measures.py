"""Measures (DESIGN.md A2): work items -> a KR's current value, with the items behind it.

Pure functions over anything shaped like a work item (:class:`WorkItem`); the
Jira connector's issue records fit it structurally, so scoring never imports a
connector. Items are identified by their immutable id, never their key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, repeat
from operator import itemgetter, truth
from typing import Any, Literal, NamedTuple, Protocol

from okr_sync.config.plan import (
    STORY_POINTS,
    CountMeasure,
    DoneRatioMeasure,
    JiraMeasure,
    JiraSourceConfig,
    MilestoneMeasure,
    Selector,
    SumMeasure,
)


class WorkItem(Protocol):
    """What a measure needs to know about one work item."""

    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def issuetype(self) -> str: ...
    @property
    def is_subtask(self) -> bool: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def parent_key(self) -> str | None: ...
    @property
    def summary(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def status_category(self) -> str: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def components(self) -> tuple[str, ...]: ...
    @property
    def fix_versions(self) -> tuple[str, ...]: ...
    @property
    def story_points(self) -> float | None: ...
    @property
    def created(self) -> datetime: ...
    @property
    def fields(self) -> Mapping[str, Any]: ...


Counted = Literal["done", "open", "excluded_frozen"]

#: No estimate is larger (the connector refuses such values too; a stored mirror
#: from before it did may still hold them).
MAX_POINTS = 1_000_000.0
#: A summed field's largest usable value: sums of many stay exact in a float.
MAX_AMOUNT = 1e15
#: The status category Jira reports for an issue without one (and "No Category").
NO_STATUS_CATEGORY = "undefined"


class Contribution(NamedTuple):
    """One selected item and how the measure counted it (for ``explain``).

    A named tuple, not a dataclass: a pass builds and decodes one per selected item
    of every touched measure (hundreds of thousands at 50k issues), and a tuple is
    built several times faster than a frozen dataclass (immutable all the same).
    """

    id: str
    key: str
    summary: str
    status: str
    project: str
    done: bool
    points: float | None
    amount: float | None
    counted: Counted

    def describe(self, kind: str, unit: str | None) -> str:
        if self.counted == "excluded_frozen":
            return "not counted: created after the cycle started (frozen scope)"
        state = "done" if self.done else "not done"
        if kind == "sum":
            return f"{state}, adds {_fmt(self.amount or 0)}"
        if unit == STORY_POINTS:
            points = "no points (counts 0)" if self.points is None else f"{_fmt(self.points)} pts"
            return f"{state}, {points}"
        return state


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


@dataclass(frozen=True)
class Measurement:
    """A measure's value over its selected items."""

    value: float
    selected: int
    done: int
    #: In the measure's order (a tuple, or built from a stored state's columns when read).
    contributions: Sequence[Contribution]
    unestimated: int = 0
    frozen_scope_size: int | None = None
    #: Selected items without a status (or status category): counted as not done.
    no_status: int = 0
    #: For a ``done_ratio`` in story points: the points done and in (frozen) scope.
    points_done: float | None = None
    points_total: float | None = None


KeyResolver = Callable[[str], str | None]


def _norm(values: Iterable[str]) -> set[str]:
    return {value.casefold() for value in values}


class SelectorMatcher:
    """Evaluates a structured ``select`` on one item (A2 matching rules)."""

    def __init__(
        self,
        select: Selector,
        source: JiraSourceConfig,
        resolve_key: KeyResolver | None = None,
    ) -> None:
        self.select = select
        projects = select.values("project") or source.projects
        self.projects = _norm(projects)
        self.issuetypes = _optional_set(select.values("issuetype"))
        self.labels = _optional_set(select.values("labels"))
        self.components = _optional_set(select.values("components"))
        self.fix_versions = _optional_set(select.values("fix_version"))
        self.priorities = _optional_set(select.values("priority"))
        self.categories = _optional_set(select.values("status_category"))
        epic_keys = select.values("epic")
        self.epic_keys = _optional_set(epic_keys)
        # An epic that moved has a new key; the plan still names the old one.
        # Resolving keys to immutable ids keeps its children selected.
        self.epic_ids: set[str] = set()
        if epic_keys and resolve_key is not None:
            self.epic_ids = {i for i in (resolve_key(k) for k in epic_keys) if i is not None}

    def __call__(self, item: WorkItem) -> bool:
        if item.is_subtask and not self.select.include_subtasks:
            return False
        if item.project.casefold() not in self.projects:
            return False
        if self.issuetypes is not None and item.issuetype.casefold() not in self.issuetypes:
            return False
        if self.priorities is not None and (item.priority or "").casefold() not in self.priorities:
            return False
        if self.categories is not None and item.status_category.casefold() not in self.categories:
            return False
        if self.labels is not None and not _norm(item.labels) & self.labels:
            return False
        if self.components is not None and not _norm(item.components) & self.components:
            return False
        if self.fix_versions is not None and not _norm(item.fix_versions) & self.fix_versions:
            return False
        return self.epic_keys is None or self._child_of_epic(item)

    def _child_of_epic(self, item: WorkItem) -> bool:
        if item.parent_id is not None and item.parent_id in self.epic_ids:
            return True
        return item.parent_key is not None and item.parent_key.casefold() in (self.epic_keys or ())


def _optional_set(values: Sequence[str] | None) -> set[str] | None:
    return None if values is None else _norm(values)


def is_done(item: WorkItem, source: JiraSourceConfig) -> bool:
    """Done by status category key (never the localised status name), or by resolution."""
    if source.done == "resolution":
        return item.resolution is not None
    return item.status_category == "done"


def _numeric(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _usable(value, MAX_AMOUNT)
    if isinstance(value, Mapping) and "value" in value:
        return _numeric(value["value"])
    try:
        return _usable(float(str(value)), MAX_AMOUNT)
    except ValueError:
        return None


def _usable(value: float, limit: float) -> float | None:
    # NaN, infinities, negatives and absurd values are data errors: summed they
    # crash the pass (NaN has no JSON) or silently skew the KR (-1000 points
    # turns a ratio to 0). They count as missing instead.
    if isinstance(value, int) and abs(value) > limit:
        return None  # before float(): a huge int overflows it
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= limit else None


def story_points(item: WorkItem) -> float | None:
    """The item's story points, ``None`` when unestimated or not a usable estimate."""
    points = item.story_points
    return None if points is None else _usable(points, MAX_POINTS)


def field_amount(item: WorkItem, field: str) -> float | None:
    if field == STORY_POINTS:
        return story_points(item)
    return _numeric(item.fields.get(field))


def has_no_status(item: WorkItem) -> bool:
    return not item.status or item.status_category == NO_STATUS_CATEGORY


class ItemFact(NamedTuple):
    """What one selected item adds to one measure: everything :func:`combine` reads.
    (A named tuple for the speed of building and decoding many: see :class:`Contribution`.)

    A fact depends only on the item, the measure, its source's settings and the
    cycle start, so an unchanged item keeps its fact from pass to pass: this is what
    incremental measuring (:mod:`okr_sync.scoring.incremental`) keeps per measure.
    """

    contribution: Contribution
    #: Created before the cycle started (the frozen-scope warning counts these).
    at_start: bool
    no_status: bool
    unestimated: bool

    @property
    def order(self) -> tuple[str, int, str]:
        """Where the item comes in a measure's items (and in its sums)."""
        c = self.contribution
        return (c.project, key_number(c.key), c.id)


def item_fact(
    spec: JiraMeasure, item: WorkItem, source: JiraSourceConfig, *, cycle_start: datetime
) -> ItemFact:
    """How ``spec`` counts one of its selected items."""
    done = is_done(item, source)
    no_status = source.done != "resolution" and has_no_status(item)
    points = story_points(item)
    counted: Counted = "done" if done else "open"
    frozen = isinstance(spec, DoneRatioMeasure) and spec.scope == "frozen"
    if frozen and item.created >= cycle_start:
        counted = "excluded_frozen"
    amount: float | None = None
    unestimated = False
    if isinstance(spec, SumMeasure):
        raw_amount = field_amount(item, spec.field)
        unestimated = raw_amount is None and spec.field == STORY_POINTS
        amount = (raw_amount or 0.0) if (done or not spec.done_only) else 0.0
    elif counted != "excluded_frozen":
        unit = spec.unit if isinstance(spec, DoneRatioMeasure) else None
        unestimated = unit == STORY_POINTS and points is None
    contribution = Contribution(item.id, item.key, item.summary, item.status, item.project,
                                done, points, amount, counted)
    return ItemFact(contribution, item.created < cycle_start, no_status, unestimated)


def measure(
    spec: JiraMeasure,
    items: Iterable[WorkItem],
    source: JiraSourceConfig,
    *,
    cycle_start: datetime,
) -> Measurement:
    """Value of ``spec`` over ``items`` (already the selected ones)."""
    return combine(spec, [item_fact(spec, item, source, cycle_start=cycle_start)
                          for item in items])


def combine(spec: JiraMeasure, facts: Iterable[ItemFact], *, presorted: bool = False
            ) -> Measurement:
    """Value of ``spec`` over its selected items' facts.

    Items are taken in one fixed order (project, key number, id), whatever order the
    facts come in, so the sums are the same float operations however the facts were
    gathered: a full and an incremental measurement agree to the last bit.
    ``presorted`` says the facts already come in that order (a measure state's do).
    """
    ordered = list(facts) if presorted else sorted(facts, key=lambda fact: fact.order)
    frozen = isinstance(spec, DoneRatioMeasure) and spec.scope == "frozen"
    # Counted by C-level maps over the tuples, not a Python loop per item: a pass
    # combines every item of every touched measure.
    contributions = tuple(map(_CONTRIBUTION, ordered))
    no_status = sum(map(_NO_STATUS, ordered))
    unestimated = sum(map(_UNESTIMATED, ordered))
    done_count = sum(map(truth, map(_DONE, contributions)))
    excluded = _excluded(contributions)
    frozen_size = 0
    if not isinstance(spec, SumMeasure):
        frozen_size = len(contributions) - excluded
    terms = _value_terms(spec, contributions, done_count, excluded)
    points = isinstance(spec, DoneRatioMeasure) and spec.unit == STORY_POINTS
    return Measurement(
        value=terms.value,
        selected=len(ordered),
        done=done_count,
        contributions=contributions,
        unestimated=unestimated,
        frozen_scope_size=frozen_size if frozen else None,
        no_status=no_status,
        points_done=terms.numerator if points else None,
        points_total=terms.denominator if points else None,
    )


@dataclass(frozen=True)
class ValueTerms:
    """The arithmetic of a Jira measure's value over its items (A2), for ``explain``."""

    value: float
    #: done_ratio: done weight (items or points); sum: the sum; count, milestone: None.
    numerator: float | None
    #: done_ratio: total weight over the counted items; otherwise None.
    denominator: float | None
    selected: int
    done: int
    #: done_ratio with ``scope: frozen``: items created after the cycle start, not counted.
    excluded: int = 0
    #: Items weighed by story points that have none (they count 0).
    unestimated: int = 0


def value_terms(spec: JiraMeasure, contributions: Sequence[Contribution]) -> ValueTerms:
    """A measure's value from the items behind it, with the terms it is made of.

    The one implementation of A2's formulas: :func:`measure` takes its value from here,
    and ``explain`` shows these terms for the items stored with a pass.
    """
    return _value_terms(spec, contributions, sum(map(truth, map(_DONE, contributions))),
                        _excluded(contributions))


def _value_terms(spec: JiraMeasure, contributions: Sequence[Contribution], done: int,
                 excluded: int) -> ValueTerms:
    """:func:`value_terms` given how many ``contributions`` are done and how many a
    frozen scope excludes (:func:`combine` has counted both: each count is a pass over
    every item of the measure)."""
    counted = None
    if excluded:
        counted = [c != "excluded_frozen" for c in map(_COUNTED, contributions)]
    return terms_of(spec, len(contributions), done, list(map(_POINTS, contributions)),
                    map(_AMOUNT, contributions), list(map(_DONE, contributions)), counted)


def terms_of(spec: JiraMeasure, selected: int, done: int, points: Sequence[float | None],
             amounts: Iterable[float | None], done_flags: Sequence[Any],
             counted: Sequence[Any] | None) -> ValueTerms:
    """:func:`value_terms` over the items' columns: their ``points``, ``amounts`` and
    whether each is done and counted (truth values; counted None: all are), in the
    measure's order. The one implementation of the arithmetic, whether a measure's
    items are tuples or the columns of a stored state: the same floats are added in the
    same order either way."""
    # C-level maps rather than a Python loop per item; the sums add the same floats in
    # the same order as a loop would (and give 0, not 0.0, over no items, as ever).
    if isinstance(spec, DoneRatioMeasure):
        unit_points = spec.unit == STORY_POINTS
        if counted is not None:
            points = list(compress(points, counted))
            done_flags = list(compress(done_flags, counted))
        weights = ([p or 0.0 for p in points] if unit_points
                   else list(repeat(1.0, len(points))))
        denominator = sum(weights)
        numerator = sum(compress(weights, done_flags))
        return ValueTerms(
            value=numerator / denominator if denominator > 0 else 0.0,
            numerator=numerator, denominator=denominator, selected=selected, done=done,
            excluded=selected - len(points),
            unestimated=list(points).count(None) if unit_points else 0,
        )
    if isinstance(spec, CountMeasure):
        return ValueTerms(float(selected), None, None, selected, done)
    if isinstance(spec, SumMeasure):
        total = sum(a or 0.0 for a in amounts)
        return ValueTerms(total, total, None, selected, done)
    if isinstance(spec, MilestoneMeasure):
        return ValueTerms(1.0 if selected > 0 and done == selected else 0.0, None, None,
                          selected, done)
    raise TypeError(f"not a Jira measure: {spec!r}")


_CONTRIBUTION = itemgetter(ItemFact._fields.index("contribution"))
_NO_STATUS = itemgetter(ItemFact._fields.index("no_status"))
_UNESTIMATED = itemgetter(ItemFact._fields.index("unestimated"))
_DONE = itemgetter(Contribution._fields.index("done"))
_COUNTED = itemgetter(Contribution._fields.index("counted"))
_POINTS = itemgetter(Contribution._fields.index("points"))
_AMOUNT = itemgetter(Contribution._fields.index("amount"))


def _excluded(contributions: Sequence[Contribution]) -> int:
    """How many of ``contributions`` a frozen scope excludes."""
    return list(map(_COUNTED, contributions)).count("excluded_frozen")


def key_number(key: str) -> int:
    """The number of an issue key (``ENT-12`` -> 12; 0 when it has none): items come
    in a measure in order of project, key number and id."""
    _, _, number = key.rpartition("-")
    # isascii: "²" passes isdigit() but int() refuses it.
    return int(number) if number.isascii() and number.isdigit() else 0
