"""Shared fixtures: state-store databases on SQLite and (when configured) PostgreSQL.

``database_url`` runs a test once per backend: SQLite in a temporary file always,
PostgreSQL when ``OKR_SYNC_TEST_DATABASE_URL`` points at a server (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), skipped otherwise. Each
PostgreSQL test gets a database of its own, created from that server and dropped
afterwards, so neither parallel runs nor earlier failures leak state (advisory
locks are per database too).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from okr_sync.sync.store import Store

PG_URL_ENV = "OKR_SYNC_TEST_DATABASE_URL"


def _server_url() -> URL | None:
    raw = os.environ.get(PG_URL_ENV)
    return make_url(raw) if raw else None


def _fresh_postgres_database(server: URL) -> Iterator[str]:
    name = f"okr_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # FORCE ends sessions a test left behind (e.g. of a killed subprocess).
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'okr-sync.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    server = _server_url()
    if server is None:
        pytest.skip(f"{PG_URL_ENV} is not set")
    yield from _fresh_postgres_database(server)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite always, PostgreSQL when the env var is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'okr-sync.db'}"
        return
    server = _server_url()
    if server is None:
        pytest.skip(f"{PG_URL_ENV} is not set")
    yield from _fresh_postgres_database(server)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    with Store(database_url) as s:
        yield s
