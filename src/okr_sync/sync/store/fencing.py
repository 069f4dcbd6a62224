"""Fencing: a pass that lost its run lock stops before it writes or posts again.

Why a lock is not enough: on PostgreSQL the run lock is an advisory lock of one
database session. When that session ends while its process lives on (an operator's
``pg_terminate_backend``, a failover, a network cut), the lock is gone at once and a
second run can take it while the first is still in the middle of a post. Both then
act as the only writer.

How fencing stops that: every acquisition of the run lock also takes the next
*epoch* of that lock, a number kept in the database (``lock_epochs``) and raised by
one in the same statement that reads it. The holder carries its epoch (a
:class:`Fence`) and every write that must be its alone - the commit of a pass, each
outbox claim, the check just before a message is sent - first runs a compare-and-set
on the epoch *inside that same transaction* (``UPDATE ... WHERE epoch = mine``). The
update takes the row's write lock, so a new holder's increment waits for the
transaction to end and everything after it sees the higher epoch: a stale holder's
transaction finds no row at its epoch and raises :class:`LockLostError` before it
changes anything.

What fencing cannot do is recall a post already on the wire: Slack and Teams do not
check our epochs. So a row left ``sending`` by a *live* earlier holder is held back
(:func:`may_be_in_flight`) until that sender's own deadline has passed; then, on
Slack, the channel history says whether it went out (the idempotency key in the
message metadata) before it is ever sent again.

SQLite: the run lock is an ``flock`` that only the holder's death releases, so it
cannot be lost while its process lives the way a PostgreSQL session can. The epochs
still work there (every SQLite transaction here begins ``IMMEDIATE``, which
serialises the compare-and-set with the increment) and cost one small write per
fenced transaction.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import URL

from okr_sync.sync.store.base import StoreOps
from okr_sync.sync.store.locks import LockLostError, RunLock
from okr_sync.sync.store.records import StoreError
from okr_sync.sync.store.tables import lock_epochs

#: The lock whose epochs fence passes, scheduled messages and the outbox.
RUN_LOCK = "run"


@dataclass(frozen=True)
class Fence:
    """The proof of holding lock ``name``: its ``epoch`` at our acquisition."""

    name: str
    epoch: int
    holder: str


def check_fence(conn: sa.Connection, fence: Fence | None) -> None:
    """Compare-and-set the epoch on ``conn``'s open transaction; raise when it moved.

    A no-op ``UPDATE`` rather than a ``SELECT``: the row's write lock (PostgreSQL) or
    the database's (SQLite) is then held until this transaction ends, so a new
    holder's increment cannot slip in between the check and our writes.
    """
    if fence is None:
        return
    moved = conn.execute(
        sa.update(lock_epochs)
        .where(lock_epochs.c.name == fence.name, lock_epochs.c.epoch == fence.epoch)
        .values(epoch=lock_epochs.c.epoch)
    ).rowcount
    if moved:
        return
    row = conn.execute(
        sa.select(lock_epochs.c.epoch, lock_epochs.c.holder).where(
            lock_epochs.c.name == fence.name
        )
    ).first()
    raise LockLostError(
        fence.name, fence.epoch,
        None if row is None else int(row.epoch), None if row is None else str(row.holder),
    )


class FencingOps(StoreOps):
    """The lock epochs (see the module docstring)."""

    def advance_epoch(self, name: str, holder: str, *, at: datetime | None = None) -> Fence:
        """Take the next epoch of lock ``name`` (call right after acquiring the lock)."""
        values = {"name": name, "epoch": 1, "holder": holder[:255], "acquired_at": self._now(at)}
        stmt: sa.Insert
        with self._connection() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects import postgresql  # only the dialect in use
                pg = postgresql.insert(lock_epochs).values(values)
                stmt = pg.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"epoch": lock_epochs.c.epoch + 1, "holder": pg.excluded.holder,
                          "acquired_at": pg.excluded.acquired_at},
                )
            elif conn.dialect.name == "sqlite":
                from sqlalchemy.dialects import sqlite  # only the dialect in use
                lite = sqlite.insert(lock_epochs).values(values)
                stmt = lite.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"epoch": lock_epochs.c.epoch + 1, "holder": lite.excluded.holder,
                          "acquired_at": lite.excluded.acquired_at},
                )
            else:
                raise StoreError(f"unsupported database dialect {conn.dialect.name!r}")
            epoch = conn.execute(stmt.returning(lock_epochs.c.epoch)).scalar_one()
        return Fence(name, int(epoch), holder)

    def check_fence(self, fence: Fence | None) -> None:
        """Raise :class:`LockLostError` when another holder has taken the lock since."""
        with self._connection() as conn:
            check_fence(conn, fence)

    def current_epoch(self, name: str = RUN_LOCK) -> int | None:
        with self._connection() as conn:
            value = conn.execute(
                sa.select(lock_epochs.c.epoch).where(lock_epochs.c.name == name)
            ).scalar_one_or_none()
        return None if value is None else int(value)


# -- who claimed an outbox row, and could it still be sending? ------------------------


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:")
    except OSError:
        return "-"


def process_identity() -> str:
    """``host/pid-namespace/pid``: enough to tell, on the same host, whether it lives."""
    return f"{socket.gethostname()}/{_pid_namespace()}/{os.getpid()}"


_ACTIVE: set[str] = set()
_ACTIVE_GUARD = threading.Lock()


@contextmanager
def active_claimer(prefix: str = "deliver") -> Iterator[str]:
    """A new claimer name (``deliver:<n>@<process>``), known to be sending until exit."""
    claimer = f"{prefix}:{uuid.uuid4().hex}@{process_identity()}"
    with _ACTIVE_GUARD:
        _ACTIVE.add(claimer)
    try:
        yield claimer
    finally:
        with _ACTIVE_GUARD:
            _ACTIVE.discard(claimer)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A killed child that its parent has not reaped yet answers signal 0 too.
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}
    except (OSError, IndexError):
        return True


def claimer_alive(claimer: str) -> bool | None:
    """Whether the process behind ``claimer`` lives: True/False when this host can tell
    (it is ours, or it ran on this host in our pid namespace), else None."""
    _, _, process = claimer.partition("@")
    if not process:
        return None
    if process == process_identity():
        with _ACTIVE_GUARD:
            return claimer in _ACTIVE
    host, _, rest = process.partition("/")
    namespace, _, pid = rest.rpartition("/")
    if host != socket.gethostname() or namespace != _pid_namespace() or not pid.isdigit():
        return None
    return _pid_alive(int(pid))


def may_be_in_flight(
    claimed_by: str | None, claimed_at: datetime | None, now: datetime, grace: timedelta
) -> bool:
    """Whether a row left ``sending`` by ``claimed_by`` could still be on its way.

    A claimer whose process is known dead cannot be sending; one known alive, or on
    another host, may be until ``grace`` (longer than any one send may take) has passed
    since its claim. Rows claimed before claims were timed carry no ``claimed_at``.
    """
    if claimed_by is None:
        return False
    _, _, process = claimed_by.partition("@")
    if process == process_identity():
        with _ACTIVE_GUARD:
            return claimed_by in _ACTIVE  # a delivery of this very process
    if claimer_alive(claimed_by) is False:
        return False
    return claimed_at is not None and now < claimed_at + grace


@contextmanager
def fenced_run_lock(
    store: FencingOps, database_url: str | URL, *, holder: str | None = None, wait: float = 0.0
) -> Iterator[Fence]:
    """Hold the run lock and its new epoch: what a pass, a scheduled message or any
    other writer of the outbox takes before it writes."""
    with RunLock(database_url, RUN_LOCK, holder=holder, wait=wait) as lock:
        yield store.advance_epoch(RUN_LOCK, lock.holder)
