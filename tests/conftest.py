"""Shared fixtures: state-store databases on SQLite and (when configured) PostgreSQL.

``database_url`` runs a test once per backend with an *empty* database: SQLite in a
temporary file always, PostgreSQL when ``OKR_SYNC_TEST_DATABASE_URL`` points at a
server (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), skipped
otherwise. ``migrated_database_url`` and ``store`` do the same with the schema
already migrated (cloned from a template migrated once per session, which keeps
the PostgreSQL runs fast). Each PostgreSQL test gets a database of its own,
created on that server and dropped afterwards, so neither parallel runs nor
earlier failures leak state (advisory locks are per database too).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from okr_sync.sync.store.schema import upgrade
from okr_sync.sync.store.store import Store
from support import hypothesis_profile  # noqa: F401  (loads the profile before any test)

PG_URL_ENV = "OKR_SYNC_TEST_DATABASE_URL"

_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _server_url() -> URL | None:
    raw = os.environ.get(PG_URL_ENV)
    return make_url(raw) if raw else None


def _require_server() -> URL:
    server = _server_url()
    if server is None:
        pytest.skip(f"{PG_URL_ENV} is not set")
    return server


def _admin(server: URL) -> sa.Engine:
    return sa.create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _temporary_postgres_database(server: URL, template: str | None = None) -> Iterator[str]:
    name = f"okr_test_{uuid.uuid4().hex[:16]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # FORCE ends sessions a test left behind (e.g. of a killed subprocess).
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database file."""
    return _sqlite_url(tmp_path / "okr-sync.db")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own (skipped without the env var)."""
    yield from _temporary_postgres_database(_require_server())


@pytest.fixture(params=_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite always, PostgreSQL when the env var is set."""
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path / "okr-sync.db")
        return
    yield from _temporary_postgres_database(_require_server())


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "okr-sync.db"
    upgrade(_sqlite_url(path))
    engine = sa.create_engine(_sqlite_url(path), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            # Everything into the main file, so copying that file copies the database.
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[str]:
    server = _require_server()
    for url in _temporary_postgres_database(server):
        upgrade(url)
        database = make_url(url).database
        assert database is not None
        yield database


@pytest.fixture(params=_BACKENDS)
def migrated_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path
) -> Iterator[str]:
    """A database already migrated to the head revision, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "okr-sync.db"
        shutil.copyfile(_sqlite_template, path)
        yield _sqlite_url(path)
        return
    server = _require_server()
    template = request.getfixturevalue("_postgres_template")
    yield from _temporary_postgres_database(server, template=template)


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    """A store on a migrated database, on each backend."""
    with Store(migrated_database_url) as s:
        yield s


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Each test leaves the root logger as it found it.

    ``main()`` installs a handler on whatever ``sys.stderr`` is at the time; under
    Typer's CliRunner that is a capture stream closed when the invocation ends, and a
    later test's log record would be written into it ("I/O operation on closed file").
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collection during the test (collected once first): counts of live or
    tracked objects, and whether cycles survive, would otherwise depend on when the
    collector happens to run (it may also untrack tuples)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
