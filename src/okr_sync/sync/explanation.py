"""Why a KR or KPI has its value, as a pass snapshot stores it (``explain``).

Snapshot version 3 stores each item as a row in :class:`Contribution`'s field order;
version 2 stored objects with every field named. Both are read: a version 3 snapshot
may name ``kr_items`` rows an earlier version wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any, get_args

from okr_sync.scoring.evaluate import Evaluation
from okr_sync.scoring.fact_columns import ColumnContributions
from okr_sync.scoring.measures import Contribution, Counted

_COUNTED: frozenset[str] = frozenset(get_args(Counted))


@dataclass(frozen=True)
class Explanation:
    """Why a KR or KPI has its value: its JQL and the items behind it (``explain``)."""

    jql: str
    error: str | None = None
    #: For raw-JQL ``count`` measures: the count Jira reported (no items behind it).
    count: int | None = None
    reasons: tuple[str, ...] = ()
    #: A tuple, or the columns of a measure state read back (stored as rows straight
    #: from them, without a tuple per item).
    items: Sequence[Contribution] = ()

    @classmethod
    def of(cls, evaluation: Evaluation) -> Explanation:
        items = evaluation.contributions
        return cls(evaluation.jql, evaluation.error, evaluation.count, tuple(evaluation.reasons),
                   items if isinstance(items, ColumnContributions) else tuple(items))

    def to_json(self) -> dict[str, Any]:
        # Items as rows in :class:`Contribution`'s field order (snapshot version 3): a
        # pass writes and reads tens of thousands, and rows spare every item its keys.
        return {
            "jql": self.jql,
            "error": self.error,
            "count": self.count,
            "reasons": list(self.reasons),
            "items": (self.items.rows() if isinstance(self.items, ColumnContributions)
                      else list(map(list, self.items))),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Explanation:
        """An explanation as stored: items as rows (version 3) or, as written before
        (version 2, and the rows such snapshots still name), as objects."""
        count = doc.get("count")
        return cls(
            jql=str(doc["jql"]),
            error=None if doc.get("error") is None else str(doc["error"]),
            count=None if count is None else int(count),
            reasons=tuple(str(r) for r in doc.get("reasons") or ()),
            items=_contributions(doc.get("items") or ()),
        )


#: The types of a row's fields as :meth:`Explanation.to_json` writes them (points and
#: amount are numbers or absent).
_ROW_TYPES = frozenset(
    (str, str, str, str, str, bool, points, amount, str)
    for points in (float, type(None)) for amount in (float, type(None))
)
_new = tuple.__new__
_COUNTED_FIELD = itemgetter(Contribution._fields.index("counted"))


def _contributions(items: Sequence[Any]) -> tuple[Contribution, ...]:
    # Rows this module wrote (every value already of its type: JSON keeps strings,
    # booleans and floats as they are) are checked and made tuples by C-level maps, no
    # Python call per item; anything else item by item.
    if (set(map(type, items)) == {list}
            and _ROW_TYPES.issuperset(map(tuple, map(partial(map, type), items)))
            and _COUNTED.issuperset(map(_COUNTED_FIELD, items))):
        return tuple(map(partial(_new, Contribution), items))
    return tuple([_contribution(item) for item in items])


def _contribution(doc: Any) -> Contribution:
    if type(doc) is list:
        ident, key, summary, status, project, done, points, amount, counted = doc
        return Contribution(str(ident), str(key), str(summary), str(status), str(project),
                            bool(done), _number(points), _number(amount),
                            _counted(counted))
    return Contribution(
        id=str(doc["id"]),
        key=str(doc["key"]),
        summary=str(doc["summary"]),
        status=str(doc["status"]),
        project=str(doc["project"]),
        done=bool(doc["done"]),
        points=_number(doc.get("points")),
        amount=_number(doc.get("amount")),
        counted=_counted(doc["counted"]),
    )


def _counted(value: object) -> Counted:
    if value not in _COUNTED:
        raise ValueError(f"unknown item count {value!r}")
    return value  # type: ignore[return-value]


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)
