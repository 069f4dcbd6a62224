"""Schema migrations of the state store, run programmatically.

The Alembic scripts live inside the package (``okr_sync/sync/store/migrations``) and are
found by path, so ``okr-sync db upgrade`` works from any directory and from an
installed wheel. Migrations run under the ``migrate`` lock (see :mod:`locks`), so
two processes that find the same empty database do not both create it.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine

from okr_sync.sync.store.database import create_store_engine
from okr_sync.sync.store.locks import RunLock
from okr_sync.sync.store.tables import TABLE_NAMES, VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Alembic runs a migration through module-level proxies (``alembic.context``,
#: ``alembic.op``): two threads migrating at once (``serve --plans`` setting up several
#: plans' stores) would trample each other, so one migration runs at a time per process.
_ALEMBIC_GUARD = threading.Lock()

#: How long a migration waits for another process that is migrating the same database.
MIGRATE_LOCK_TIMEOUT_S = 120.0


class SchemaError(Exception):
    """The database schema cannot be used by this version of okr-sync."""


class SchemaTooNewError(SchemaError):
    """The database was migrated by a newer okr-sync; this one must not touch it."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        super().__init__(
            f"the state store is at revision {revision}, which this version of okr-sync "
            "does not know: upgrade okr-sync"
        )


class SchemaOutdatedError(SchemaError):
    """The database holds data at an older revision; ``okr-sync db upgrade`` is needed."""

    def __init__(self, revision: str, head: str) -> None:
        self.revision = revision
        self.head = head
        super().__init__(
            f"the state store is at revision {revision}, older than {head}: "
            "run `okr-sync db upgrade`"
        )


class UnversionedSchemaError(SchemaError):
    """The database has okr-sync tables but no migration record."""

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        super().__init__(
            f"the database has okr-sync tables but no {VERSION_TABLE} record "
            f"({', '.join(tables)}); refusing to guess its schema"
        )


def alembic_config(engine_or_connection: Engine | sa.Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged scripts (no alembic.ini read)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if engine_or_connection is not None:
        config.attributes["connection"] = engine_or_connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    # The packaged scripts cannot change while the process runs: read them once.
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of okr-sync knows."""
    head = _scripts().get_current_head()
    if head is None:
        raise SchemaError("no migration scripts found in the package")
    return str(head)


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _scripts().walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(database_url: str | URL | Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (``okr-sync db upgrade``)."""
    if isinstance(database_url, Engine):
        _upgrade_locked(database_url, revision)
        return
    engine = create_store_engine(database_url)
    try:
        _upgrade_locked(engine, revision)
    finally:
        engine.dispose()


def _upgrade_locked(engine: Engine, revision: str) -> None:
    current = current_revision(engine)
    if current is not None and current not in _known_revisions():
        raise SchemaTooNewError(current)
    with RunLock(engine.url, "migrate", wait=MIGRATE_LOCK_TIMEOUT_S), _ALEMBIC_GUARD, \
            engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def ensure_schema(engine: Engine) -> str:
    """Make the database usable by this code, or refuse with a :class:`SchemaError`.

    An empty database is migrated to the head; a database at the head is left alone;
    one at a revision this code does not know (a newer okr-sync wrote it) raises
    :class:`SchemaTooNewError`; an older one raises :class:`SchemaOutdatedError`
    (upgrading a populated store is an explicit ``okr-sync db upgrade``). Returns the
    revision the database is at.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    if current is None:
        with RunLock(engine.url, "migrate", wait=MIGRATE_LOCK_TIMEOUT_S):
            # Another process may have migrated it while we waited for the lock.
            current = current_revision(engine)
            if current is None:
                present = sorted(TABLE_NAMES & set(sa.inspect(engine).get_table_names()))
                if present:
                    raise UnversionedSchemaError(present)
                with _ALEMBIC_GUARD, engine.begin() as conn:
                    command.upgrade(alembic_config(conn), "head")
                return head
    if current == head:
        return head
    if current not in _known_revisions():
        raise SchemaTooNewError(current)
    raise SchemaOutdatedError(current, head)
