"""Reading the state store without the power to write it: what a dry run gets.

:class:`StoreReader` is every read a pass makes. :class:`Store` has them all (and
the writes); :class:`ReadOnlyStore` has only them, so code handed one cannot
write, which mypy checks. A dry run reads an existing store (for ``changes``)
and must never create or change one: :func:`open_reader` opens the store only
when it already exists at this code's schema, and otherwise reads as empty.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from okr_sync.sync.store.records import (
    Cursor,
    HistoryRecord,
    JqlCheck,
    KpiHistoryRecord,
    LatestCheckin,
    Membership,
    Snapshot,
    TargetMessages,
)
from okr_sync.sync.store.store import SchemaError, Store


class StoreReader(Protocol):
    """The reads of the state store a pass and its message planning make."""

    def get_issues(
        self, source: str, *, ids: Collection[str] | None = None, include_deleted: bool = False
    ) -> list[dict[str, Any]]: ...

    def iter_issues(self, source: str) -> Iterator[dict[str, Any]]: ...

    def mirrored_ids(self, source: str) -> set[str]: ...

    def mirrored_among(self, source: str, ids: Collection[str]) -> set[str]: ...

    def mirror_written_since(
        self, source: str, since: tuple[datetime | None, datetime | None], limit: int,
    ) -> tuple[tuple[datetime | None, datetime | None], dict[str, bool] | None]: ...

    def issue_records(self, source: str, ids: Collection[str]) -> dict[str, dict[str, Any]]: ...

    def get_measure_states(
        self, source: str, owners: Collection[str] | None = None, *,
        decode: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> dict[str, tuple[str, Any]] | None: ...

    def get_cursor(self, source: str) -> Cursor | None: ...

    def get_membership(self, source: str, kr_id: str) -> Membership | None: ...

    def get_memberships(self, source: str) -> dict[str, Membership]: ...

    def jql_checks(self, source: str | None = None) -> list[JqlCheck]: ...

    def resolve_key(self, source: str, key: str) -> str | None: ...

    def resolve_keys(self, source: str, keys: Collection[str]) -> dict[str, str | None]: ...

    def last_published_snapshot(self) -> Snapshot | None: ...

    def latest_snapshot(self) -> Snapshot | None: ...

    def latest_snapshot_id(self) -> int | None: ...

    def snapshot_head(self, *, published_only: bool) -> Snapshot | None: ...

    def get_snapshot(self, snapshot_id: int) -> Snapshot: ...

    def snapshot_explanations(self, snapshot_id: int,
                              owners: Iterable[str] | None = None) -> dict[str, Any]: ...

    def snapshot_explained_owners(self, snapshot_id: int) -> list[str]: ...

    def snapshot_item_refs(self, snapshot_id: int
                           ) -> dict[str, tuple[str, tuple[str, ...]]]: ...

    def snapshot_owners_holding(self, snapshot_id: int, issue_ids: Collection[str],
                                owners: Collection[str] | None = None) -> set[str] | None: ...

    def get_measure_summary(self, source: str) -> dict[str, Any] | None: ...

    def latest_checkins(
        self, *, since: datetime | None = None, kr_ids: Collection[str] | None = None
    ) -> dict[str, LatestCheckin]: ...

    def final_scores_by_cycle(
        self, kr_ids: Collection[str] | None = None, *, except_cycle: str | None = None,
    ) -> dict[str, dict[str, float]]: ...

    def target_messages(self, targets: Collection[str]) -> dict[str, TargetMessages]: ...

    def history_for_cycle(self, cycle: str, zone: tzinfo | None = None
                          ) -> dict[str, list[HistoryRecord]]: ...

    def kpi_history_for_cycle(self, cycle: str) -> dict[str, list[KpiHistoryRecord]]: ...

    def close(self) -> None: ...


class ReadOnlyStore:
    """The reads of an existing :class:`Store`, or of an empty one when there is none.

    It has no write methods at all: a pass given one can only plan.
    """

    def __init__(self, store: Store | None = None) -> None:
        self._store = store

    @property
    def exists(self) -> bool:
        """Whether it reads a real store (else everything reads as empty)."""
        return self._store is not None

    def get_issues(
        self, source: str, *, ids: Collection[str] | None = None, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        if self._store is None:
            return []
        return self._store.get_issues(source, ids=ids, include_deleted=include_deleted)

    def iter_issues(self, source: str) -> Iterator[dict[str, Any]]:
        if self._store is not None:
            yield from self._store.iter_issues(source)

    def mirrored_ids(self, source: str) -> set[str]:
        return set() if self._store is None else self._store.mirrored_ids(source)

    def mirrored_among(self, source: str, ids: Collection[str]) -> set[str]:
        return set() if self._store is None else self._store.mirrored_among(source, ids)

    def mirror_written_since(
        self, source: str, since: tuple[datetime | None, datetime | None], limit: int,
    ) -> tuple[tuple[datetime | None, datetime | None], dict[str, bool] | None]:
        if self._store is None:
            return (None, None), None
        return self._store.mirror_written_since(source, since, limit)

    def issue_records(self, source: str, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        return {} if self._store is None else self._store.issue_records(source, ids)

    def get_measure_states(
        self, source: str, owners: Collection[str] | None = None, *,
        decode: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> dict[str, tuple[str, Any]] | None:
        return None if self._store is None else self._store.get_measure_states(
            source, owners, decode=decode)

    def get_cursor(self, source: str) -> Cursor | None:
        return None if self._store is None else self._store.get_cursor(source)

    def get_membership(self, source: str, kr_id: str) -> Membership | None:
        return None if self._store is None else self._store.get_membership(source, kr_id)

    def get_memberships(self, source: str) -> dict[str, Membership]:
        return {} if self._store is None else self._store.get_memberships(source)

    def jql_checks(self, source: str | None = None) -> list[JqlCheck]:
        return [] if self._store is None else self._store.jql_checks(source)

    def resolve_key(self, source: str, key: str) -> str | None:
        return None if self._store is None else self._store.resolve_key(source, key)

    def resolve_keys(self, source: str, keys: Collection[str]) -> dict[str, str | None]:
        if self._store is None:
            return dict.fromkeys(keys)
        return self._store.resolve_keys(source, keys)

    def last_published_snapshot(self) -> Snapshot | None:
        return None if self._store is None else self._store.last_published_snapshot()

    def latest_snapshot(self) -> Snapshot | None:
        return None if self._store is None else self._store.latest_snapshot()

    def latest_snapshot_id(self) -> int | None:
        return None if self._store is None else self._store.latest_snapshot_id()

    def snapshot_head(self, *, published_only: bool) -> Snapshot | None:
        if self._store is None:
            return None
        return self._store.snapshot_head(published_only=published_only)

    def get_snapshot(self, snapshot_id: int) -> Snapshot:
        if self._store is None:
            raise KeyError(snapshot_id)
        return self._store.get_snapshot(snapshot_id)

    def snapshot_explanations(self, snapshot_id: int,
                              owners: Iterable[str] | None = None) -> dict[str, Any]:
        if self._store is None:
            raise KeyError(snapshot_id)
        return self._store.snapshot_explanations(snapshot_id, owners)

    def snapshot_explained_owners(self, snapshot_id: int) -> list[str]:
        if self._store is None:
            raise KeyError(snapshot_id)
        return self._store.snapshot_explained_owners(snapshot_id)

    def snapshot_item_refs(self, snapshot_id: int
                           ) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {} if self._store is None else self._store.snapshot_item_refs(snapshot_id)

    def snapshot_owners_holding(self, snapshot_id: int, issue_ids: Collection[str],
                                owners: Collection[str] | None = None) -> set[str] | None:
        if self._store is None:
            return None
        return self._store.snapshot_owners_holding(snapshot_id, issue_ids, owners)

    def get_measure_summary(self, source: str) -> dict[str, Any] | None:
        return None if self._store is None else self._store.get_measure_summary(source)

    def latest_checkins(
        self, *, since: datetime | None = None, kr_ids: Collection[str] | None = None
    ) -> dict[str, LatestCheckin]:
        if self._store is None:
            return {}
        return self._store.latest_checkins(since=since, kr_ids=kr_ids)

    def final_scores_by_cycle(
        self, kr_ids: Collection[str] | None = None, *, except_cycle: str | None = None,
    ) -> dict[str, dict[str, float]]:
        return {} if self._store is None else self._store.final_scores_by_cycle(
            kr_ids, except_cycle=except_cycle)

    def target_messages(self, targets: Collection[str]) -> dict[str, TargetMessages]:
        if self._store is None:
            return {t: TargetMessages(None, False) for t in targets}
        return self._store.target_messages(targets)

    def history_for_cycle(self, cycle: str, zone: tzinfo | None = None
                          ) -> dict[str, list[HistoryRecord]]:
        return {} if self._store is None else self._store.history_for_cycle(cycle, zone)

    def kpi_history_for_cycle(self, cycle: str) -> dict[str, list[KpiHistoryRecord]]:
        return {} if self._store is None else self._store.kpi_history_for_cycle(cycle)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def open_reader(url: str) -> ReadOnlyStore:
    """A reader of the store at ``url`` when one exists at this code's schema, else an
    empty reader. Nothing is created or migrated."""
    if not _has_schema(url):
        return ReadOnlyStore()
    try:
        return ReadOnlyStore(Store(url, ensure=False))
    except SchemaError:
        return ReadOnlyStore()


def _has_schema(url: str) -> bool:
    """Whether ``url`` holds a state store at this code's schema (read-only check)."""
    from okr_sync.sync.store.schema import current_revision, head_revision

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Connecting would create the file; a dry run must leave no trace.
        database = parsed.database or ""
        if database in ("", ":memory:") or not Path(database).exists():
            return False
    engine = sa.create_engine(url)
    try:
        return current_revision(engine) == head_revision()
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()
