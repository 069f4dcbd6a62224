"""Engines for the state store: SQLite by default, PostgreSQL for several replicas."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool, QueuePool

#: How long a SQLite writer waits for another writer before failing (seconds).
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Attempts (50 ms apart) to switch a new SQLite file to WAL while another opens it.
WAL_SWITCH_ATTEMPTS = 200
#: Idle SQLite connections a file store keeps for reuse (more may be open at once).
SQLITE_POOL_SIZE = 4
#: The WAL file is cut back to this after a checkpoint (bytes). Kept connections mean the
#: last close, which used to delete it, rarely comes: a large pass's WAL would stay.
SQLITE_WAL_LIMIT = 64 * 1024 * 1024


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
            # A pass opens some 25 short transactions: a new connection for each
            # (open, PRAGMAs, close with its WAL bookkeeping) was most of what a one-issue
            # pass of a running ``serve`` spent in the store. Idle connections are kept
            # and handed to one thread at a time (the pool checks them out; SQLite is
            # built serialized), so they may move between serve's threads; never more
            # than SQLITE_POOL_SIZE idle, and no cap on those in use, so no caller waits
            # for the pool (writers still queue on the busy timeout).
            connect_args.setdefault("check_same_thread", False)
            kwargs.setdefault("poolclass", QueuePool)
            if kwargs["poolclass"] is QueuePool:
                kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
                kwargs.setdefault("max_overflow", -1)
        engine = sa.create_engine(sa_url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, memory=is_sqlite_memory(sa_url), path=_sqlite_path(sa_url))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(sa_url, **kwargs)


def is_sqlite_memory(url: URL) -> bool:
    """True when a SQLite URL names an in-memory database."""
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _sqlite_path(url: URL) -> str:
    """The file a SQLite URL names (a ``file:`` URI's path without its query)."""
    database = url.database or ""
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return database


def _file_identity(path: str) -> tuple[int, int] | None:
    """Which file ``path`` is now (device and inode); None when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


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


def _configure_sqlite(engine: Engine, *, memory: bool, path: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if not memory:
                _use_wal(cursor)
                cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    if memory:
        return

    @event.listens_for(engine, "connect")
    def _remember_process(_dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()
        # Opening made the file if there was none, so this is the file it writes to.
        record.info["file"] = _file_identity(path)

    @event.listens_for(engine, "checkout")
    def _not_across_fork(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # A pooled SQLite handle must never be used by a forked child: the child opens
        # its own connection instead (SQLAlchemy's recipe for pools and forks).
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise sa.exc.DisconnectionError("connection opened by another process")
        # A kept connection writes to the file it opened even once that file is deleted
        # or replaced (a restore from backup): a pass would commit, and post, into a file
        # nobody reads again. The pool drops such a connection and opens the path anew,
        # which finds the new file, or an empty one the store then refuses clearly.
        if _file_identity(path) != record.info.get("file"):
            raise sa.exc.DisconnectionError("the database file was deleted or replaced")


#: PostgreSQL schemas of ``serve --plans`` are named ``okr_sync_plan_<plan id>``.
PLAN_SCHEMA_PREFIX = "okr_sync_plan_"
_SEARCH_PATH = "-csearch_path="


def plan_store_url(base_url: str, plan_id: str) -> str:
    """The store of one plan of ``serve --plans``, derived from the configured URL.

    PostgreSQL: the same database, with every connection's ``search_path`` set to the
    plan's own schema (``options=-csearch_path=okr_sync_plan_<id>``), so the store's
    tables, its Alembic version table and every raw query land there unchanged.
    SQLite: a file per plan next to the configured one (``okr-sync.db`` ->
    ``okr-sync.<id>.db``). ``plan_id`` is already a safe identifier
    (:func:`okr_sync.sync.service.plans.plan_id_of`).
    """
    url = make_url(base_url)
    if url.get_backend_name() == "postgresql":
        return url.update_query_dict(
            {"options": f"{_SEARCH_PATH}{PLAN_SCHEMA_PREFIX}{plan_id}"}
        ).render_as_string(hide_password=False)
    database = url.database or ""
    if is_sqlite_memory(url) or database.startswith("file:"):
        raise ValueError("serve --plans needs a SQLite file path or PostgreSQL "
                         "(one store per plan), not an in-memory or URI database")
    path = Path(database)
    return url.set(database=str(path.with_name(f"{path.stem}.{plan_id}{path.suffix or '.db'}"))
                   ).render_as_string(hide_password=False)


def store_scope(url: URL) -> str | None:
    """The plan schema a PostgreSQL URL of :func:`plan_store_url` is confined to, if any.

    Advisory locks are per database, not per schema: the locks of each plan's store
    are keyed by this scope too, so plan A's run lock never blocks plan B's.
    """
    options = url.query.get("options")
    values = [options] if isinstance(options, str) else list(options or ())
    for value in values:
        for part in value.split():
            if part.startswith(_SEARCH_PATH):
                return part.removeprefix(_SEARCH_PATH)
    return None


def create_plan_schema(base_url: str, plan_url: str) -> None:
    """Create the PostgreSQL schema of a plan's store if missing (SQLite: nothing to do)."""
    schema = store_scope(make_url(plan_url))
    if schema is None:
        return
    engine = sa.create_engine(make_url(base_url), poolclass=NullPool,
                              isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            preparer = engine.dialect.identifier_preparer
            # Another replica may create it between the check and the insert.
            with contextlib.suppress(sa.exc.IntegrityError):
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {preparer.quote(schema)}")
    finally:
        engine.dispose()
