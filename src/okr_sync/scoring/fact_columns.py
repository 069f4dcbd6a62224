"""A measure state's facts kept as the columns they are stored in.

A state read back from the store holds one column per field of :class:`Contribution`
and then of :class:`ItemFact` (:func:`okr_sync.scoring.incremental.columns_of`): lists,
and for the flags and how each item is counted a string with a character per item. A
pass brought up to date from it needs little of each item: its value is sums and
counts over whole columns, its changes touch a few items, its reasons read the few
items that changed. :class:`FactColumns` keeps the columns as decoded and builds an
item's tuples only when asked for that item: decoding every fact of every touched
measure into two tuples each (~190k facts in a 1 % pass at 50k issues) was ~0.1 s, and
the collector walked them all again once measuring was done. The value is combined
from the columns by the same arithmetic, over the same floats in the same order
(:func:`~okr_sync.scoring.measures.terms_of`), so it is exactly a full measurement's.
"""

from __future__ import annotations

import bisect
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from functools import partial
from itertools import compress
from typing import Any, overload

from okr_sync.config.plan import STORY_POINTS, DoneRatioMeasure, JiraMeasure, SumMeasure
from okr_sync.scoring.explain import ItemState
from okr_sync.scoring.measures import (
    Contribution,
    ItemFact,
    Measurement,
    key_number,
    terms_of,
)

FIELDS = len(Contribution._fields) + len(ItemFact._fields) - 1
_ID = Contribution._fields.index("id")
_KEY = Contribution._fields.index("key")
_PROJECT = Contribution._fields.index("project")
_DONE = Contribution._fields.index("done")
_POINTS = Contribution._fields.index("points")
_AMOUNT = Contribution._fields.index("amount")
COUNTED = Contribution._fields.index("counted")
_AT_START, _NO_STATUS, _UNESTIMATED = (len(Contribution._fields) + ItemFact._fields.index(f) - 1
                                       for f in ("at_start", "no_status", "unestimated"))
#: Columns stored as text, a character per item: the flags as "0"/"1", how each item
#: is counted as a letter.
FLAGS = (_DONE, _AT_START, _NO_STATUS, _UNESTIMATED)
TEXTS = frozenset((*FLAGS, COUNTED))
FLAG_TEXT = {False: "0", True: "1"}
FLAG_VALUE = {"0": False, "1": True}
COUNTED_TEXT = {"done": "d", "open": "o", "excluded_frozen": "x"}
COUNTED_VALUE = {text: counted for counted, text in COUNTED_TEXT.items()}

_new = tuple.__new__
_NEW_CONTRIBUTION = partial(_new, Contribution)
_NEW_FACT = partial(_new, ItemFact)
_CONTRIBUTION_FIELDS = len(Contribution._fields)
_NUMBERS = frozenset({_POINTS, _AMOUNT})
_FLAG_BYTES = bytes.maketrans(b"01", b"\x00\x01")
_COUNTED_BYTES = bytes.maketrans(b"dox", b"\x01\x01\x00")


def stored_row(fact: ItemFact) -> list[Any]:
    """One fact's values as its columns hold them."""
    c = fact.contribution
    return [c.id, c.key, c.summary, c.status, c.project, FLAG_TEXT[c.done], c.points,
            c.amount, COUNTED_TEXT[c.counted], FLAG_TEXT[fact.at_start],
            FLAG_TEXT[fact.no_status], FLAG_TEXT[fact.unestimated]]


class FactColumns(Mapping[str, ItemFact]):
    """A state's facts by id, in the measure's order, as their stored columns (checked
    by the caller: :meth:`~okr_sync.scoring.incremental.MeasureState.from_json`).
    The columns are never changed: :meth:`replaced` makes new ones."""

    __slots__ = ("_index", "columns")

    def __init__(self, columns: list[Any], positions: dict[str, int] | None = None) -> None:
        self.columns = columns
        #: Each id's position, built when first asked for (or shared with a state
        #: whose ids are these, in this order).
        self._index = positions

    def _positions(self) -> dict[str, int]:
        if self._index is None:
            ids = self.columns[_ID]
            self._index = dict(zip(ids, range(len(ids)), strict=True))
        return self._index

    def fact(self, position: int) -> ItemFact:
        c = self.columns
        contribution = _new(Contribution, (
            c[0][position], c[1][position], c[2][position], c[3][position], c[4][position],
            FLAG_VALUE[c[_DONE][position]], c[_POINTS][position], c[_AMOUNT][position],
            COUNTED_VALUE[c[COUNTED][position]]))
        return _new(ItemFact, (contribution, FLAG_VALUE[c[_AT_START][position]],
                               FLAG_VALUE[c[_NO_STATUS][position]],
                               FLAG_VALUE[c[_UNESTIMATED][position]]))

    def __getitem__(self, item_id: str) -> ItemFact:
        return self.fact(self._positions()[item_id])

    def item_state(self, item_id: str) -> ItemState:
        """The :class:`ItemState` of one item (what its reasons are told from)."""
        c, position = self.columns, self._positions()[item_id]
        return _new(ItemState, (c[_KEY][position], c[_PROJECT][position],
                                FLAG_VALUE[c[_DONE][position]], c[_POINTS][position]))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._positions()

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns[_ID])

    def __len__(self) -> int:
        return len(self.columns[_ID])

    def keys(self) -> KeysView[str]:
        return self._positions().keys()

    def values(self) -> ValuesView[ItemFact]:
        return self.decoded().values()

    def items(self) -> ItemsView[str, ItemFact]:
        return self.decoded().items()

    def decoded(self) -> dict[str, ItemFact]:
        """Every fact by id, built at once by C-level maps."""
        fields: list[Any] = list(self.columns)
        for index in FLAGS:
            fields[index] = map(FLAG_VALUE.__getitem__, fields[index])
        fields[COUNTED] = map(COUNTED_VALUE.__getitem__, fields[COUNTED])
        contributions = map(_NEW_CONTRIBUTION,
                            zip(*fields[:_CONTRIBUTION_FIELDS], strict=True))
        facts = map(_NEW_FACT, zip(contributions, *fields[_CONTRIBUTION_FIELDS:], strict=True))
        return dict(zip(self.columns[_ID], facts, strict=True))

    def order(self, position: int) -> tuple[str, int, str]:
        """:attr:`ItemFact.order` of the item at ``position``."""
        c = self.columns
        return (c[_PROJECT][position], key_number(c[_KEY][position]), c[_ID][position])

    def combine(self, spec: JiraMeasure) -> Measurement:
        """:func:`~okr_sync.scoring.measures.combine` of these facts (in their order)."""
        c = self.columns
        selected = len(self)
        done = c[_DONE].count("1")
        excluded = c[COUNTED].count("x")
        # Whether each item is done and counted, as bytes of 0 and 1 (truth values to
        # compress by, made in C from the text columns).
        counted = c[COUNTED].encode("ascii").translate(_COUNTED_BYTES) if excluded else None
        terms = terms_of(spec, selected, done, c[_POINTS], c[_AMOUNT],
                         c[_DONE].encode("ascii").translate(_FLAG_BYTES), counted)
        frozen = isinstance(spec, DoneRatioMeasure) and spec.scope == "frozen"
        points = isinstance(spec, DoneRatioMeasure) and spec.unit == STORY_POINTS
        return Measurement(
            value=terms.value,
            selected=selected,
            done=done,
            contributions=ColumnContributions(c),
            unestimated=c[_UNESTIMATED].count("1"),
            frozen_scope_size=(0 if isinstance(spec, SumMeasure) else selected - excluded)
            if frozen else None,
            no_status=c[_NO_STATUS].count("1"),
            points_done=terms.numerator if points else None,
            points_total=terms.denominator if points else None,
        )

    def at_start(self) -> int:
        """How many items were created before the cycle started."""
        return int(self.columns[_AT_START].count("1"))

    def replaced(self, drop: set[str], new: Sequence[ItemFact]) -> Mapping[str, ItemFact]:
        """These facts without the ids of ``drop`` (all held here), with ``new`` in their
        places (see :func:`okr_sync.scoring.incremental._replaced`): a new fact that
        keeps its item's place takes it, the others are put in theirs by bisection, so
        only the changed items' values are built, never every fact's tuples."""
        positions = self._positions()
        # Columns are copied only once a value of theirs changes: a status change copies
        # the status, done and counted columns, not the summaries.
        columns: list[Any] = list(self.columns)
        copied = [False] * FIELDS
        moved: list[ItemFact] = []
        for fact in new:
            ident = fact.contribution.id
            position = positions.get(ident)
            if position is not None and ident in drop and self.order(position) == fact.order:
                for index, value in enumerate(stored_row(fact)):
                    # Numbers are always written: 0.0 == -0.0, yet a sum may tell them apart.
                    if index in _NUMBERS or columns[index][position] != value:
                        if not copied[index]:
                            columns[index] = list(columns[index])
                            copied[index] = True
                        columns[index][position] = value
                drop.discard(ident)
            else:
                moved.append(fact)
        if not drop and not moved:
            # Every item kept its place: the positions by id are this state's.
            return FactColumns(_texts_joined(columns, copied), positions)
        columns = [column if copied[index] else list(column)
                   for index, column in enumerate(columns)]
        every = [True] * FIELDS
        if drop:
            kept = [True] * len(self)
            for ident in drop:
                kept[positions[ident]] = False
            columns = [list(compress(column, kept)) for column in columns]
        if len(moved) * 8 > len(columns[_ID]):
            # Many to put in place: sorting them all in at once is cheaper.
            rest = FactColumns(_texts_joined(columns, every)).decoded().values()
            facts = sorted([*rest, *moved], key=_order)
            return {fact.contribution.id: fact for fact in facts}
        for fact in sorted(moved, key=_order):
            position = bisect.bisect_right(_Orders(columns), fact.order)
            for column, value in zip(columns, stored_row(fact), strict=True):
                column.insert(position, value)
        return FactColumns(_texts_joined(columns, every))


def _order(fact: ItemFact) -> tuple[str, int, str]:
    return fact.order


def _texts_joined(columns: list[Any], copied: Sequence[bool]) -> list[Any]:
    """``columns`` with the text ones that were copied to a list of characters (to be
    edited) made text again."""
    return [("".join(column) if copied[index] and index in TEXTS else column)
            for index, column in enumerate(columns)]


class _Orders(Sequence[tuple[str, int, str]]):
    """The items' :attr:`ItemFact.order` of columns being edited, each computed when
    bisection asks for it (a few per item put in place, not one per item)."""

    def __init__(self, columns: list[Any]) -> None:
        self._ids, self._keys, self._projects = columns[_ID], columns[_KEY], columns[_PROJECT]

    @overload
    def __getitem__(self, index: int) -> tuple[str, int, str]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, int, str]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            raise TypeError("orders are bisected, not sliced")
        return (self._projects[index], key_number(self._keys[index]), self._ids[index])

    def __len__(self) -> int:
        return len(self._ids)


class ColumnContributions(Sequence[Contribution]):
    """A measure's contributions in its order, built from its columns when first read
    (the snapshot a pass stores reads them; measuring does not)."""

    __slots__ = ("_built", "_columns")

    def __init__(self, columns: list[Any]) -> None:
        self._columns = columns
        self._built: tuple[Contribution, ...] | None = None

    def _fields(self) -> list[Any]:
        fields: list[Any] = list(self._columns[:_CONTRIBUTION_FIELDS])
        fields[_DONE] = map(FLAG_VALUE.__getitem__, fields[_DONE])
        fields[COUNTED] = map(COUNTED_VALUE.__getitem__, fields[COUNTED])
        return fields

    def _all(self) -> tuple[Contribution, ...]:
        if self._built is None:
            self._built = tuple(map(_NEW_CONTRIBUTION, zip(*self._fields(), strict=True)))
        return self._built

    def rows(self) -> list[list[Any]]:
        """Each contribution as a list of its fields (as a snapshot stores them), made
        from the columns without a tuple per item (a pass stores every item of the
        measures it measured)."""
        if self._built is not None:
            return list(map(list, self._built))
        return list(map(list, zip(*self._fields(), strict=True)))

    @overload
    def __getitem__(self, index: int) -> Contribution: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Contribution]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._columns[_ID])

    def __iter__(self) -> Iterator[Contribution]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnContributions | tuple | list):
            return self._all() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())
