"""Why a KR's value changed, and what a person should be warned about.

Reasons are short tokens for ``changes[].reasons`` (A5) and ``okr-sync explain``:
``+N done``, ``-N reopened``, ``+N added to scope``, ``-N removed from scope``,
``N moved out``, ``points changed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import compress
from operator import itemgetter, ne, not_
from typing import NamedTuple

from okr_sync.scoring.display import percent
from okr_sync.scoring.measures import Contribution, ItemFact, Measurement

#: Scope growth above this fraction of the cycle-start scope earns a warning.
SCOPE_GROWTH_WARNING = 0.2


class ItemState(NamedTuple):
    """What a KR knew about one of its items at a published pass (stored between passes).
    A named tuple: a pass builds one per item of every touched KR, twice."""

    key: str
    project: str
    done: bool
    points: float | None

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "project": self.project, "done": self.done, "points": self.points}

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> ItemState:
        points = doc.get("points")
        return cls(
            key=str(doc["key"]),
            project=str(doc["project"]),
            done=bool(doc["done"]),
            points=float(points) if isinstance(points, int | float) else None,
        )


#: A contribution's (key, project, done, points): an :class:`ItemState`'s fields.
_STATE_FIELDS = itemgetter(*(Contribution._fields.index(f) for f in ItemState._fields))
_ID = itemgetter(Contribution._fields.index("id"))


def item_states(contributions: Iterable[Contribution]) -> dict[str, ItemState]:
    """Per item id, its state. Built by C-level maps: a pass builds one per item of every
    touched KR (one call per item of a Python loop was most of evaluating a KR)."""
    items = contributions if isinstance(contributions, tuple | list) else list(contributions)
    states = map(partial(tuple.__new__, ItemState), map(_STATE_FIELDS, items))
    return dict(zip(map(_ID, items), states, strict=True))


class FactStates(Mapping[str, ItemState]):
    """Per item id, its state, from the facts behind a measure's value, each built only
    when asked: of most measures a pass needs only which items they hold (double
    counting), and one state per item of every touched measure was most of evaluating."""

    __slots__ = ("_facts", "_state_of")

    def __init__(self, facts: Mapping[str, ItemFact],
                 state_of: Callable[[str], ItemState] | None = None) -> None:
        self._facts = facts
        #: Builds one item's state without its fact (facts kept as stored columns).
        self._state_of = state_of

    def __getitem__(self, item_id: str) -> ItemState:
        if self._state_of is not None:
            return self._state_of(item_id)
        return tuple.__new__(ItemState, _STATE_FIELDS(self._facts[item_id].contribution))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._facts

    def keys(self) -> KeysView[str]:
        return self._facts.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)


@dataclass(frozen=True)
class ItemChanges:
    """Which items of one KR changed between two passes, by id (``explain`` lists them)."""

    added: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()
    #: Left the selection (re-labelled, deleted...) or moved to another project.
    removed: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    points_changed: tuple[str, ...] = ()

    @property
    def left(self) -> tuple[str, ...]:
        return self.removed + self.moved

    def __bool__(self) -> bool:
        return bool(self.added or self.done or self.reopened or self.left
                    or self.points_changed)


def item_changes(
    before: Mapping[str, ItemState],
    after: Mapping[str, ItemState],
    current_projects: Mapping[str, str] | None = None,
    *,
    track_points: bool = True,
) -> ItemChanges:
    """The items that were added, got done, reopened or left between two passes' item
    states of one KR (see :func:`change_reasons`)."""
    current_projects = current_projects or {}
    added: list[str] = []
    done: list[str] = []
    reopened: list[str] = []
    points: list[str] = []
    removed: list[str] = []
    moved: list[str] = []
    # Only the items whose state differs are looked at (found by C-level maps): most of
    # a KR's items are as they were, and those add to no list.
    for item_id in compress(after, map(ne, after.values(), map(before.get, after))):
        now = after[item_id]
        was = before.get(item_id)
        if was is None:
            added.append(item_id)
            continue
        if now.done and not was.done:
            done.append(item_id)
        elif was.done and not now.done:
            reopened.append(item_id)
        if track_points and now.points != was.points:
            points.append(item_id)
    for item_id in compress(before, map(not_, map(after.__contains__, before))):
        was = before[item_id]
        project_now = current_projects.get(item_id)
        if project_now is not None and project_now.casefold() != was.project.casefold():
            moved.append(item_id)
        else:
            removed.append(item_id)
    return ItemChanges(tuple(added), tuple(done), tuple(reopened), tuple(removed),
                       tuple(moved), tuple(points))


def change_reasons(
    before: Mapping[str, ItemState],
    after: Mapping[str, ItemState],
    current_projects: Mapping[str, str] | None = None,
    *,
    track_points: bool = True,
) -> tuple[str, ...]:
    """Reasons between two passes' item states of one KR.

    ``current_projects`` maps ids of items that still exist to their project now,
    so an item that left the selection because it moved to another project is
    told apart from one that was merely re-labelled or deleted. ``track_points``
    is off for measures that do not weigh items by points.
    """
    changes = item_changes(before, after, current_projects, track_points=track_points)
    reasons = []
    if changes.done:
        reasons.append(f"+{len(changes.done)} done")
    if changes.reopened:
        reasons.append(f"-{len(changes.reopened)} reopened")
    if changes.added:
        reasons.append(f"+{len(changes.added)} added to scope")
    if changes.removed:
        reasons.append(f"-{len(changes.removed)} removed from scope")
    if changes.moved:
        reasons.append(f"{len(changes.moved)} moved out")
    if changes.points_changed:
        reasons.append("points changed")
    return tuple(reasons)


def measurement_warnings(measurement: Measurement, *, uses_points: bool,
                         frozen_at_start: int | None) -> list[str]:
    """Warnings about one KR's selection: empty scope, unestimated items, items without a
    status, scope growth.

    ``frozen_at_start`` is how many of the selected items existed at cycle start.
    """
    warnings = []
    if measurement.selected == 0:
        warnings.append("empty scope: the selection matches no work items")
    if uses_points and measurement.unestimated:
        noun = "item has" if measurement.unestimated == 1 else "items have"
        warnings.append(f"{measurement.unestimated} selected {noun} no story points")
    if measurement.no_status:
        noun = "item has" if measurement.no_status == 1 else "items have"
        warnings.append(
            f"{measurement.no_status} selected {noun} no status (counted as not done)"
        )
    if frozen_at_start and measurement.selected > frozen_at_start * (1 + SCOPE_GROWTH_WARNING):
        growth = (measurement.selected - frozen_at_start) / frozen_at_start
        warnings.append(
            f"scope grew {percent(growth)} since the cycle started "
            f"({frozen_at_start} -> {measurement.selected} items)"
        )
    return warnings


def double_counting(objective_krs: Sequence[tuple[str, Iterable[str]]]) -> dict[str, list[str]]:
    """Per KR, warnings for items also counted by another KR of the same objective."""
    shared: dict[tuple[str, str], int] = {}
    sets = [(kr_id, set(item_ids)) for kr_id, item_ids in objective_krs]
    if len({kr_id for kr_id, _ in sets}) == len(sets):
        # Each pair of KRs shares the items in both: one set intersection per pair, not
        # a Python step per item (an objective's KRs hold thousands at 50k issues).
        for first, mine in sets:
            for second, theirs in sets:
                if first != second and (count := len(mine & theirs)):
                    shared[(first, second)] = count
    else:
        owners: dict[str, list[str]] = {}
        for kr_id, item_ids in sets:
            for item_id in item_ids:
                owners.setdefault(item_id, []).append(kr_id)
        for krs in owners.values():
            for first in krs:
                for second in krs:
                    if first != second:
                        shared[(first, second)] = shared.get((first, second), 0) + 1
    warnings: dict[str, list[str]] = {}
    for (first, second), count in sorted(shared.items()):
        noun = "item is" if count == 1 else "items are"
        warnings.setdefault(first, []).append(
            f"{count} {noun} also counted by {second} of the same objective (double counting)"
        )
    return warnings
