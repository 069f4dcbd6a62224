"""The run lock (one pass at a time) and leadership among ``serve`` replicas.

Why these mechanisms: the lock must vanish with its holder even when that holder
is killed with SIGKILL, without a clock deciding that it is dead.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) taken on a
  dedicated connection that is held for the whole pass and never returned to a
  pool. When the process dies, the kernel closes its socket, the server ends the
  session and the lock is gone; a live but slow holder keeps it. (A transaction
  pooler such as PgBouncer in transaction mode breaks session locks: point
  okr-sync at PostgreSQL directly.)
* SQLite: ``flock`` on a file next to the database (``<db>.<name>.lock``). The
  kernel drops an flock when the last descriptor of its open file closes, which
  process death always does, and ``flock`` locks conflict even between two
  descriptors of one process. A lease row with an expiry was rejected: after a
  crash it blocks the next run until it expires, and a holder that merely stalls
  past its expiry (swap, SIGSTOP, a long GC) silently loses the lock while it is
  still writing. SQLite on a network filesystem is unsupported anyway.
* In-memory SQLite exists only inside one process: a process-local lock.

The lock file and the advisory lock's session name say who holds them, so a busy
lock can be reported with its holder.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from okr_sync.exit_codes import ExitCode
from okr_sync.sync.store.database import is_sqlite_memory, store_scope

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class LockError(Exception):
    """A lock could not be used as asked."""


class LockBusyError(LockError):
    """Another holder has the lock; the CLI exits with ``ExitCode.LOCKED``."""

    exit_code = ExitCode.LOCKED

    def __init__(self, name: str, holder: str | None) -> None:
        self.name = name
        self.holder = holder
        by = f" by {holder}" if holder else ""
        super().__init__(f"lock {name!r} is held{by}; try again later")


class LockLostError(LockError):
    """Another holder took the lock while we held it (PostgreSQL: our session ended).

    Raised by the fencing check (:mod:`okr_sync.sync.store.fencing`) before anything
    more is written or posted. The CLI exits with ``ExitCode.LOCKED``: another run
    holds the lock now and carries on from the committed state.
    """

    exit_code = ExitCode.LOCKED

    def __init__(self, name: str, epoch: int, current: int | None, holder: str | None) -> None:
        self.name = name
        self.epoch = epoch
        self.current = current
        self.holder = holder
        now = f"epoch {current}" + (f", {holder}" if holder else "") if current else "unknown"
        super().__init__(
            f"lost the {name!r} lock (our epoch {epoch}, now {now}): "
            "stopped without writing or posting more"
        )


class UnsupportedDatabaseError(LockError):
    """The database URL names a backend the locks do not support."""


def default_holder() -> str:
    """Who we are, as shown to the next would-be holder: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Backend(Protocol):
    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def is_held(self) -> bool: ...

    def holder(self) -> str | None: ...


class _FileLock:
    def __init__(self, path: Path, holder: str) -> None:
        self._path = path
        self._holder = holder
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        # os.open descriptors are not inherited by child processes (PEP 446), so a
        # subprocess cannot keep the lock alive after we die.
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(f"cannot open lock file {self._path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self._holder} since {since}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            # Never unlink the file: a waiter may already hold a descriptor to it, and
            # would then lock an orphaned inode while a third process creates a new one.
            os.close(fd)

    def is_held(self) -> bool:
        return self._fd is not None

    def holder(self) -> str | None:
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None


_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class _LocalLock:
    def __init__(self, key: str, holder: str) -> None:
        with _LOCAL_GUARD:
            self._lock = _LOCAL_LOCKS.setdefault(key, threading.Lock())
        self._holder = holder
        self._held = False

    def try_acquire(self) -> bool:
        self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()

    def is_held(self) -> bool:
        return self._held

    def holder(self) -> str | None:
        return None


def advisory_key(name: str) -> int:
    """The signed 64-bit advisory lock key of a lock name (stable across versions)."""
    digest = hashlib.sha256(f"okr-sync:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_HOLDER_QUERY = sa.text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
)
_HELD_QUERY = sa.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND objsubid = 1 AND pid = pg_backend_pid() "
    "AND classid::bigint = :hi AND objid::bigint = :lo"
)


class _AdvisoryLock:
    def __init__(self, url: URL, name: str, holder: str) -> None:
        # A plan's store of ``serve --plans`` is a schema of a shared database: its
        # locks are its own (unscoped keys stay those of a single-plan store).
        scope = store_scope(url)
        self._key = advisory_key(name if scope is None else f"{scope}/{name}")
        self._halves = {"hi": (self._key >> 32) & 0xFFFFFFFF, "lo": self._key & 0xFFFFFFFF}
        # NullPool: closing the connection must really end the session (and any lock
        # it holds) instead of parking it in a pool with the lock still taken.
        self._engine = sa.create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"application_name": f"okr-sync {holder}"[:63], "connect_timeout": 10},
        )
        self._conn: sa.Connection | None = None

    def try_acquire(self) -> bool:
        conn = self._engine.connect()
        try:
            self._harden_session(conn)
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self._key))).scalar_one()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    @staticmethod
    def _harden_session(conn: sa.Connection) -> None:
        # If the holder's host vanishes without closing its socket, the server notices
        # within about half a minute instead of the OS default of two hours.
        for setting, value in (
            ("tcp_keepalives_idle", "15"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ):
            conn.execute(sa.select(sa.func.set_config(setting, value, False)))
        version = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())
        if version >= 140000:
            # A server-wide idle_session_timeout would end our idle session and drop the
            # lock in the middle of a pass.
            conn.execute(sa.select(sa.func.set_config("idle_session_timeout", "0", False)))

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(self._key)))
        except SQLAlchemyError:
            pass  # the session is gone, and the lock with it
        finally:
            conn.close()
            self._engine.dispose()

    def is_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            count = self._conn.execute(_HELD_QUERY, self._halves).scalar_one()
        except SQLAlchemyError:
            return False
        return bool(count)

    def holder(self) -> str | None:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(_HOLDER_QUERY, self._halves).first()
        except SQLAlchemyError:
            return None
        finally:
            self._engine.dispose()
        if row is None or not row[0]:
            return None
        return str(row[0]).removeprefix("okr-sync ")


def lock_file_path(database: str, name: str) -> Path:
    """``<db file>.<name>.lock``, next to the SQLite database file."""
    db = Path(database.removeprefix("file:").split("?", 1)[0]).resolve()
    return db.with_name(f"{db.name}.{name}.lock")


def _backend(url: URL, name: str, holder: str) -> _Backend:
    backend = url.get_backend_name()
    if backend == "sqlite":
        if is_sqlite_memory(url):
            return _LocalLock(f"{url.database}:{name}", holder)
        return _FileLock(lock_file_path(url.database or "", name), holder)
    if backend == "postgresql":
        return _AdvisoryLock(url, name, holder)
    raise UnsupportedDatabaseError(f"no lock implementation for the {backend!r} backend")


class RunLock:
    """Exclusive right to run something (a pass, a migration), per database and name.

    ``try_acquire()`` answers at once; ``acquire(timeout)`` polls until the timeout and
    raises :class:`LockBusyError`; as a context manager it acquires with the ``wait``
    given at construction (0: do not wait) and releases on exit. One instance is one
    holder and is not meant to be shared between threads.
    """

    def __init__(
        self,
        database_url: str | URL,
        name: str = "run",
        *,
        holder: str | None = None,
        wait: float = 0.0,
        poll_interval: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _NAME.match(name):
            raise LockError(f"invalid lock name {name!r}")
        if wait < 0 or poll_interval <= 0:
            raise LockError("wait must be >= 0 and poll_interval > 0")
        self.name = name
        self.holder = holder or default_holder()
        self._wait = wait
        self._poll = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._backend = _backend(make_url(database_url), name, self.holder)
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this instance believes it holds the lock (see :meth:`verify`)."""
        return self._held

    def try_acquire(self) -> bool:
        if self._held:
            raise LockError(f"lock {self.name!r} is already held by this RunLock")
        self._held = self._backend.try_acquire()
        return self._held

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, polling for up to ``timeout`` seconds (default: ``wait``)."""
        timeout = self._wait if timeout is None else timeout
        if timeout < 0 or math.isnan(timeout):
            raise LockError("timeout must be >= 0")
        deadline = self._clock() + timeout
        while not self.try_acquire():
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise LockBusyError(self.name, self._backend.holder())
            self._sleep(min(self._poll, remaining))

    def release(self) -> None:
        """Give the lock back (a no-op when not held)."""
        self._held = False
        self._backend.release()

    def verify(self) -> bool:
        """Whether the lock is really still held (on PostgreSQL: the session is alive)."""
        return self._held and self._backend.is_held()

    def current_holder(self) -> str | None:
        """Best-effort description of whoever holds the lock now."""
        return self._backend.holder()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Leadership:
    """Leader election among ``serve`` replicas: the leader holds a lock, others poll.

    Call :meth:`poll` once per tick: a follower tries to take the lock; the leader
    checks it still holds it (on PostgreSQL its session may have been cut) and steps
    down when it does not. When the leader's process dies its session or file
    descriptor goes with it, so the next follower's poll takes over.
    """

    def __init__(
        self,
        database_url: str | URL,
        name: str = "leader",
        *,
        holder: str | None = None,
    ) -> None:
        self._lock = RunLock(database_url, name, holder=holder)

    @property
    def holder(self) -> str:
        return self._lock.holder

    @property
    def is_leader(self) -> bool:
        return self._lock.held

    def poll(self) -> bool:
        """Try to become (or stay) the leader; returns whether we lead now."""
        if self._lock.held:
            if self._lock.verify():
                return True
            self._lock.release()
        return self._lock.try_acquire()

    def current_leader(self) -> str | None:
        """Best-effort description of the current leader."""
        return self._lock.current_holder()

    def resign(self) -> None:
        self._lock.release()

    def __enter__(self) -> Leadership:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.resign()
