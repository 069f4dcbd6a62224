"""Engines for the state store: SQLite by default, PostgreSQL for several replicas."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

#: How long a SQLite writer waits for another writer before failing (seconds).
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Attempts (50 ms apart) to switch a new SQLite file to WAL while another opens it.
WAL_SWITCH_ATTEMPTS = 200
#: The WAL file is cut back to this after a checkpoint (bytes), should a long-lived
#: reader keep the last close (which deletes it) from coming.
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
            # A fresh connection per use, no pool. Kept connections saved a running
            # ``serve`` ~40 ms a pass, but a kept handle outlives its file: it writes on
            # into a deleted or replaced file, and one whose file turned read-only dies
            # of SIGBUS on its mapped WAL index instead of failing the pass clearly
            # (tests/reliability/test_concurrency.py). A pass that fails clearly is
            # worth more than those milliseconds.
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
                cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
