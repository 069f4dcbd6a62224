"""Schema migrations of the state store, run programmatically.

The Alembic scripts live inside the package (``okr_sync/sync/store/migrations``) and are
found by path, so ``okr-sync db upgrade`` works from any directory and from an
installed wheel. Migrations run under the ``migrate`` lock (see :mod:`locks`), so
two processes that find the same empty database do not both create it.

Alembic (and Mako, which it brings) costs ~0.15 s of CPU to import, and a store at
the head revision, the usual case, needs none of it: the head is read from the
scripts' ``revision``/``down_revision`` lines and the database's revision from its
version table with SQLAlchemy alone. Alembic is imported only to migrate, or when those
lines cannot be read plainly.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from okr_sync.sync.store.database import create_store_engine
from okr_sync.sync.store.locks import RunLock
from okr_sync.sync.store.tables import TABLE_NAMES, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if engine_or_connection is not None:
        config.attributes["connection"] = engine_or_connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    # The packaged scripts cannot change while the process runs: read them once.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


_REVISION_LINE = re.compile(
    r"^(?P<name>revision|down_revision)\b[^=\n]*=\s*(?P<value>None|\"[^\"\n]*\"|'[^'\n]*')\s*$",
    re.MULTILINE)


def plain_head_revision() -> str | None:
    """The head read from the scripts' ``revision = "..."`` and ``down_revision = ...``
    lines, without Alembic; None when a script does not spell them so plainly, or the
    chain has not exactly one head (Alembic then decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted((MIGRATIONS_DIR / "versions").glob("[0-9]*.py")):
        found = {m["name"]: m["value"] for m in _REVISION_LINE.finditer(script.read_text())}
        if "revision" not in found or "down_revision" not in found or found["revision"] == "None":
            return None
        revisions.add(found["revision"][1:-1])
        if found["down_revision"] != "None":
            parents.add(found["down_revision"][1:-1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def head_revision() -> str:
    """The newest revision this version of okr-sync knows."""
    plain = plain_head_revision()
    if plain is not None:
        return plain
    head = _scripts().get_current_head()
    if head is None:
        raise SchemaError("no migration scripts found in the package")
    return str(head)


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _scripts().walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated.

    Read as Alembic's ``MigrationContext.get_current_revision`` does (the version table's
    one row), with SQLAlchemy alone."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        version = sa.table(VERSION_TABLE, sa.column("version_num"))
        rows = conn.execute(sa.select(version.c.version_num)).all()
    if len(rows) > 1:
        raise SchemaError(f"the {VERSION_TABLE} table holds several revisions "
                          f"({', '.join(sorted(str(r[0]) for r in rows))}); refusing to guess")
    return str(rows[0][0]) if rows else None


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
    from alembic import command

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
                from alembic import command

                with _ALEMBIC_GUARD, engine.begin() as conn:
                    command.upgrade(alembic_config(conn), "head")
                return head
    if current == head:
        return head
    if current not in _known_revisions():
        raise SchemaTooNewError(current)
    raise SchemaOutdatedError(current, head)
