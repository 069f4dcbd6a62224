"""Engines for the state store: SQLite by default, PostgreSQL for several replicas."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

#: How long a SQLite writer waits for another writer before failing (seconds).
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Attempts (50 ms apart) to switch a new SQLite file to WAL while another opens it.
WAL_SWITCH_ATTEMPTS = 200


def create_store_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine configured the way the store relies on.

    SQLite: the sqlite3 driver's legacy transaction handling is switched off and every
    transaction starts with ``BEGIN IMMEDIATE``. That makes DDL, SAVEPOINTs and rollbacks
    really transactional, and takes the write lock up front so two writers queue on
    the busy timeout instead of failing half-way with "database is locked". WAL lets
    readers (``status``, ``/readyz``) proceed while a pass writes. Foreign keys are
    enforced. PostgreSQL: connections are checked before use, so a database restart
    costs one reconnect rather than one failed pass.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        if is_sqlite_memory(sa_url):
            # Each connection to ":memory:" would be a new, empty database.
            kwargs.setdefault("poolclass", sa.StaticPool)
            connect_args.setdefault("check_same_thread", False)
        else:
            # A file database needs no pool; a fresh connection per use keeps file
            # handles (and WAL checkpoints) simple across forks and threads.
            kwargs.setdefault("poolclass", NullPool)
        engine = sa.create_engine(sa_url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, memory=is_sqlite_memory(sa_url))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(sa_url, **kwargs)


def is_sqlite_memory(url: URL) -> bool:
    """True when a SQLite URL names an in-memory database."""
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _use_wal(cursor: Any) -> None:
    """Switch a file database to WAL. Switching needs a moment of exclusive access, which
    SQLite refuses at once (no busy wait) while another connection is opening the same
    new file; WAL is persistent, so once any connection has switched, all is well."""
    for _ in range(WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()
            if mode and str(mode[0]).lower() == "wal":
                return
            time.sleep(0.05)
    cursor.execute("PRAGMA journal_mode=WAL")


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if not memory:
                _use_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
