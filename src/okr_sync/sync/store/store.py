"""The state store: everything okr-sync remembers between passes.

SQLite by default, PostgreSQL for several replicas; schema by Alembic
(:mod:`okr_sync.sync.store.schema`). Operations are grouped by concern
(:mod:`.issues`, :mod:`.runs`, :mod:`.outbox`); :class:`Store` offers
them all, each call in its own short transaction, and :meth:`Store.transaction`
yields a :class:`StoreTransaction` with the same methods whose writes commit
together or not at all::

    with store.transaction() as tx:
        snapshot_id = tx.save_snapshot(cycle=..., as_of=..., document=...)
        tx.add_history(snapshot_id, cycle=..., as_of=..., entries=...)
        tx.enqueue(OutboxItem(...))
        tx.set_cursor("main", high_water_mark=...)

The store never holds secrets: message targets carry channel ids, conversation ids
or the *names* of environment variables holding webhook URLs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from okr_sync.sync.store.base import utc_now
from okr_sync.sync.store.database import create_store_engine
from okr_sync.sync.store.fencing import Fence, FencingOps, check_fence
from okr_sync.sync.store.history import HistoryOps
from okr_sync.sync.store.issues import IssueOps
from okr_sync.sync.store.jql_checks import JqlCheckOps
from okr_sync.sync.store.kpi_history import KpiHistoryOps
from okr_sync.sync.store.measures import MeasureOps
from okr_sync.sync.store.outbox import OutboxOps
from okr_sync.sync.store.plan_leases import PlanLeaseOps
from okr_sync.sync.store.records import (
    Checkin,
    ClaimedDelivery,
    Cursor,
    DeliverySummary,
    HistoryEntry,
    HistoryRecord,
    InvalidRecordError,
    InvalidStateError,
    JqlCheck,
    KeyChange,
    LatestCheckin,
    Lease,
    Membership,
    MessageRef,
    NotFoundError,
    OutboxItem,
    OutboxKind,
    OutboxRow,
    OutboxStatus,
    Outcome,
    RunCounts,
    RunKind,
    RunRecord,
    Snapshot,
    StoreError,
    TargetMessages,
    UpsertResult,
    jql_hash,
)
from okr_sync.sync.store.retention import PruneCounts, RetentionOps
from okr_sync.sync.store.runs import RunOps
from okr_sync.sync.store.schema import (
    SchemaError,
    SchemaOutdatedError,
    SchemaTooNewError,
    UnversionedSchemaError,
    ensure_schema,
    head_revision,
    upgrade,
)
from okr_sync.sync.store.source_health import SourceHealth, SourceHealthOps

__all__ = [
    "Checkin",
    "ClaimedDelivery",
    "Cursor",
    "DeliverySummary",
    "Fence",
    "HistoryEntry",
    "HistoryRecord",
    "InvalidRecordError",
    "InvalidStateError",
    "JqlCheck",
    "KeyChange",
    "LatestCheckin",
    "Lease",
    "Membership",
    "MessageRef",
    "NotFoundError",
    "OutboxItem",
    "OutboxKind",
    "OutboxRow",
    "OutboxStatus",
    "Outcome",
    "PruneCounts",
    "RunCounts",
    "RunKind",
    "RunRecord",
    "SchemaError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "Snapshot",
    "SourceHealth",
    "Store",
    "StoreError",
    "StoreTransaction",
    "TargetMessages",
    "UnversionedSchemaError",
    "UpsertResult",
    "ensure_schema",
    "head_revision",
    "jql_hash",
    "upgrade",
]


class _Operations(IssueOps, MeasureOps, JqlCheckOps, SourceHealthOps, RunOps, HistoryOps,
                  OutboxOps, FencingOps, KpiHistoryOps, PlanLeaseOps):
    """Every store operation, over whatever connection :meth:`_connection` provides."""


class StoreTransaction(_Operations):
    """A unit of work: the operations of :class:`Store` on one open transaction.

    Obtained from :meth:`Store.transaction`; all writes through it commit when the
    ``with`` block ends normally and roll back if it raises.
    """

    def __init__(self, conn: sa.Connection, clock: Callable[[], datetime]) -> None:
        self._conn = conn
        self._clock = clock
        self._open = True

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        if not self._open:
            raise StoreError("this transaction has ended")
        yield self._conn

    def _close(self) -> None:
        self._open = False


class Store(_Operations, RetentionOps):
    """The state store. Construct from a database URL (or an engine made by
    :func:`~okr_sync.sync.store.database.create_store_engine`).

    ``ensure=True`` runs :func:`ensure_schema`: an empty database is migrated, a newer
    or outdated one raises a :class:`SchemaError`. ``clock`` supplies "now" (aware UTC)
    wherever a method's time argument is omitted.
    """

    def __init__(
        self,
        database: str | URL | Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        ensure: bool = True,
    ) -> None:
        if isinstance(database, Engine):
            self.engine = database
            self._owns_engine = False
        else:
            self.engine = create_store_engine(database)
            self._owns_engine = True
        self._clock = clock
        self._local = threading.local()
        if ensure:
            ensure_schema(self.engine)

    @property
    def url(self) -> URL:
        return self.engine.url

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        if getattr(self._local, "in_transaction", False):
            # On SQLite a second connection would wait for our own write lock until the
            # busy timeout; on PostgreSQL it would escape the unit of work. Either way the
            # caller meant the transaction object.
            raise StoreError("a transaction is open in this thread: call the methods on it")
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def transaction(self, *, fence: Fence | None = None) -> Iterator[StoreTransaction]:
        """Several operations, committed together or not at all.

        With a ``fence`` the transaction first checks, and holds until it ends, that
        no other holder has taken the lock since (:class:`LockLostError` otherwise,
        before anything is written).
        """
        if getattr(self._local, "in_transaction", False):
            raise StoreError("transactions do not nest")
        self._local.in_transaction = True
        try:
            with self.engine.begin() as conn:
                check_fence(conn, fence)
                tx = StoreTransaction(conn, self._clock)
                try:
                    yield tx
                finally:
                    tx._close()
        finally:
            self._local.in_transaction = False

    def close(self) -> None:
        """Release the engine's connections (only an engine the store created)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
