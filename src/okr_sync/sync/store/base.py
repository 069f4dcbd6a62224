"""Plumbing shared by the store's operation groups: connections, time, dialect SQL."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from okr_sync.sync.store.records import InvalidRecordError, StoreError

T = TypeVar("T")

#: Ids per ``IN (...)`` list: far below SQLite's and PostgreSQL's parameter limits.
IN_CHUNK = 500

#: Longest error text kept in ``last_error`` / ``error_summary``.
MAX_ERROR_CHARS = 2000


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreOps:
    """The base of every operation group: one connection per call, or the caller's.

    Subclasses provide :meth:`_connection`: :class:`~okr_sync.sync.store.store.Store` opens a
    short transaction per call; :class:`~okr_sync.sync.store.store.StoreTransaction` hands out
    its single open transaction so several calls commit or roll back together.
    """

    _clock: Callable[[], datetime]

    def _connection(self) -> AbstractContextManager[sa.Connection]:
        raise NotImplementedError

    def _now(self, at: datetime | None = None) -> datetime:
        value = self._clock() if at is None else at
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidRecordError("naive datetimes are not accepted; pass aware values")
        return value.astimezone(UTC)


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    index_elements: Sequence[str],
    update_columns: Sequence[str],
    where: Callable[[Any, Any], sa.ColumnElement[bool]] | None = None,
) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` for SQLite and PostgreSQL.

    ``where(table_columns, excluded_columns)`` optionally restricts which conflicting
    rows get updated.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only the dialect in use
        pg = postgresql.insert(table)
        pg_set = {name: pg.excluded[name] for name in update_columns}
        pg_where = where(table.c, pg.excluded) if where else None
        return pg.on_conflict_do_update(index_elements=index_elements, set_=pg_set, where=pg_where)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite  # only the dialect in use
        lite = sqlite.insert(table)
        lite_set = {name: lite.excluded[name] for name in update_columns}
        lite_where = where(table.c, lite.excluded) if where else None
        return lite.on_conflict_do_update(
            index_elements=index_elements, set_=lite_set, where=lite_where
        )
    raise StoreError(f"unsupported database dialect {conn.dialect.name!r}")


def insert_ignore(conn: sa.Connection, table: sa.Table, index_elements: Sequence[str]) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only the dialect in use
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite  # only the dialect in use
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    raise StoreError(f"unsupported database dialect {conn.dialect.name!r}")


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: Values JSON holds as they are (exact types: an enum member that is also a str or an
#: int is stored as its value).
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})
_finite = math.isfinite


def to_jsonable(value: Any) -> Any:
    """Convert a record (dataclass, mapping, ...) into plain JSON values.

    Datetimes and dates become ISO-8601 strings, tuples and sets lists (sets sorted,
    for stable documents), enums their value. Anything else non-JSON is refused rather
    than stringified, so a stray object never lands silently in the mirror.
    """
    # Most of a document (a snapshot holds every KR's items) is plain dicts, lists and
    # scalars: those are taken by their exact type, without the checks below.
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecordError(f"JSON object keys must be strings, got {key!r}")
            result[key] = (item if type(item) in _PLAIN or (type(item) is float and _finite(item))
                           else to_jsonable(item))
        return result
    if kind is list or kind is tuple:
        # Finite floats too are taken here (an item row holds two): a non-finite one
        # falls through to the call, which refuses it.
        return [item if type(item) in _PLAIN or (type(item) is float and _finite(item))
                else to_jsonable(item) for item in value]
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecordError(f"non-finite number {value!r} cannot be stored as JSON")
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecordError(f"JSON object keys must be strings, got {key!r}")
            result[key] = to_jsonable(item)
        return result
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(item) for item in value), key=repr)
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    raise InvalidRecordError(f"{type(value).__name__} values cannot be stored as JSON")


def truncate(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
