"""Migrations of the state store: from empty, matching the metadata, refusing strangers."""

from __future__ import annotations

import importlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from okr_sync.sync.store import schema as store_schema
from okr_sync.sync.store.database import SQLITE_WAL_LIMIT, create_store_engine
from okr_sync.sync.store.schema import (
    MIGRATIONS_DIR,
    SchemaOutdatedError,
    SchemaTooNewError,
    UnversionedSchemaError,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from okr_sync.sync.store.tables import TABLE_NAMES, VERSION_TABLE, metadata


def _tables(url: str) -> set[str]:
    engine = create_store_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _set_version(url: str, revision: str) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            version = sa.table(VERSION_TABLE, sa.column("version_num"))
            conn.execute(sa.update(version).values(version_num=revision))
    finally:
        engine.dispose()


def test_upgrade_given_empty_database_creates_every_table_at_head(database_url: str) -> None:
    upgrade(database_url)

    assert _tables(database_url) == TABLE_NAMES | {VERSION_TABLE}
    engine = create_store_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrated_schema_given_orm_metadata_has_no_autogenerate_diff(database_url: str) -> None:
    upgrade(database_url)

    engine = create_store_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "version_table": VERSION_TABLE,
                },
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_given_other_working_directory_finds_packaged_scripts(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    upgrade(sqlite_url)

    assert "outbox" in _tables(sqlite_url)


def test_ensure_schema_given_empty_database_upgrades_it(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        assert ensure_schema(engine) == head_revision()
        assert ensure_schema(engine) == head_revision()
    finally:
        engine.dispose()
    assert _tables(database_url) >= TABLE_NAMES


def test_ensure_schema_given_newer_revision_refuses_with_typed_error(database_url: str) -> None:
    upgrade(database_url)
    _set_version(database_url, "9999_from_the_future")

    engine = create_store_engine(database_url)
    try:
        with pytest.raises(SchemaTooNewError) as caught:
            ensure_schema(engine)
        with pytest.raises(SchemaTooNewError):
            upgrade(engine)
    finally:
        engine.dispose()
    assert caught.value.revision == "9999_from_the_future"


def test_ensure_schema_given_older_populated_revision_asks_for_db_upgrade(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(sqlite_url)
    real_head = head_revision()
    # Pretend this code knows one revision more than the database has.
    monkeypatch.setattr(store_schema, "head_revision", lambda: "0002_next")
    monkeypatch.setattr(store_schema, "_known_revisions", lambda: {real_head, "0002_next"})

    engine = create_store_engine(sqlite_url)
    try:
        with pytest.raises(SchemaOutdatedError) as caught:
            ensure_schema(engine)
    finally:
        engine.dispose()
    assert (caught.value.revision, caught.value.head) == (real_head, "0002_next")
    assert "okr-sync db upgrade" in str(caught.value)


def test_ensure_schema_given_unversioned_okr_tables_refuses(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        metadata.tables["cursors"].create(engine)
        with pytest.raises(UnversionedSchemaError) as caught:
            ensure_schema(engine)
    finally:
        engine.dispose()
    assert caught.value.tables == ["cursors"]


def test_ensure_schema_given_two_concurrent_callers_on_empty_database_both_succeed(
    database_url: str,
) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        engine = create_store_engine(database_url)
        try:
            results.append(ensure_schema(engine))
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert results == [head_revision(), head_revision()]


def test_migration_scripts_given_package_layout_ship_as_modules_and_data() -> None:
    versions = importlib.import_module("okr_sync.sync.store.migrations.versions")

    assert Path(versions.__file__ or "").parent == MIGRATIONS_DIR / "versions"
    assert (MIGRATIONS_DIR / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))


def test_create_store_engine_given_many_first_connections_at_once_never_reports_locked(
    tmp_path: Path,
) -> None:
    # Switching a new file to WAL is refused at once while another connection opens it;
    # without waiting that out, about one race in ten failed with "database is locked".
    errors: list[BaseException] = []

    def connect(url: str) -> None:
        engine = create_store_engine(url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    for attempt in range(40):
        url = f"sqlite:///{tmp_path / f'race-{attempt}.db'}"
        threads = [threading.Thread(target=connect, args=(url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []


def test_create_store_engine_given_a_sqlite_file_opens_a_connection_per_transaction(
    tmp_path: Path,
) -> None:
    # No kept connections: a kept handle would write on into a deleted or replaced file,
    # and die of SIGBUS once its file turns read-only (tests/reliability/
    # test_concurrency.py). Every transaction opens the path anew, in WAL mode.
    engine = create_store_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    opened: list[int] = []
    sa.event.listen(engine, "connect", lambda *_: opened.append(1))
    try:
        def transaction() -> None:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x)")
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")

        for _ in range(5):
            transaction()
        thread = threading.Thread(target=transaction)
        thread.start()
        thread.join(timeout=60)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 6
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == (
                SQLITE_WAL_LIMIT)
        assert len(opened) == 7
    finally:
        engine.dispose()


def test_upgrade_given_previous_revision_with_data_keeps_it_and_adds_measure_states(
    database_url: str,
) -> None:
    from okr_sync.sync.store.store import Store

    upgrade(database_url, "0003")
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO issues (source, issue_id, key, project, updated, fields, deleted,"
                " seen_at) VALUES ('main', '7', 'ENT-7', 'ENT', :at, :fields, false, :at)"
            ), {"at": "2026-11-01 10:00:00", "fields": '{"id": "7", "key": "ENT-7"}'})
    finally:
        engine.dispose()

    upgrade(database_url)

    with Store(database_url) as store:
        assert [r["key"] for r in store.get_issues("main")] == ["ENT-7"]
        assert store.mirrored_ids("main") == {"7"}
        assert store.get_measure_states("main") is None
        at = datetime(2026, 11, 2, tzinfo=UTC)
        store.save_measure_states("main", {"KR": ("k", {"key": "k", "facts": []})},
                                  keep={"KR"}, at=at)
        assert store.get_measure_states("main") == {"KR": ("k", {"key": "k", "facts": []})}


def test_head_revision_given_packaged_scripts_reads_alembics_head_without_alembic() -> None:
    # The plain reading keeps Alembic off the start of every pass: it must agree with it.
    assert store_schema.plain_head_revision() == store_schema._scripts().get_current_head()
    assert head_revision() == store_schema._scripts().get_current_head()


def test_head_revision_given_a_script_not_spelt_plainly_falls_back_to_alembic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for script in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"):
        (versions / script.name).write_text(script.read_text())
    (versions / "0009_odd.py").write_text("revision = make_revision()\n")
    monkeypatch.setattr(store_schema, "MIGRATIONS_DIR", tmp_path)
    assert store_schema.plain_head_revision() is None


def test_current_revision_given_database_at_head_matches_alembics_reading(
    database_url: str,
) -> None:
    upgrade(database_url)
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            assert current_revision(engine) == context.get_current_revision() == head_revision()
        with engine.begin() as conn:
            version = sa.table(VERSION_TABLE, sa.column("version_num"))
            conn.execute(sa.insert(version).values(version_num="0002"))
        with pytest.raises(store_schema.SchemaError, match="several revisions"):
            current_revision(engine)
    finally:
        engine.dispose()


def test_upgrade_given_0005_history_marks_it_live_and_downgrade_drops_backfilled_rows(
    database_url: str,
) -> None:
    from alembic import command

    from okr_sync.sync.store.records import HistoryEntry
    from okr_sync.sync.store.schema import alembic_config
    from okr_sync.sync.store.store import Store

    upgrade(database_url, "0005")
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO kr_history (kr_id, cycle, as_of, value, score, band, confidence)"
                " VALUES ('KR1', 'Q4', :at, 1, 0.5, 'mid', 'on_track')"
            ), {"at": "2026-11-01 10:00:00"})
    finally:
        engine.dispose()

    upgrade(database_url)

    at = datetime(2026, 10, 5, 21, 59, 59, tzinfo=UTC)
    with Store(database_url) as store:
        assert [h.backfilled for h in store.get_history("KR1")] == [False]
        store.replace_backfilled(cycle="Q4", kr_ids=["KR1"], since=at,
                                 days=[(at, [HistoryEntry("KR1", 0, 0.0, "low", "at_risk")])])
        assert [h.backfilled for h in store.get_history("KR1")] == [True, False]
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM kr_history")).scalar_one() == 1
    finally:
        engine.dispose()


def test_upgrade_given_0010_items_stored_apart_indexes_their_issue_ids(
    database_url: str,
) -> None:
    from okr_sync.sync.store.store import Store

    upgrade(database_url, "0010")
    refs = {"KR1": "h1", "KR2": "h2"}
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            items = sa.table("kr_items", sa.column("owner"), sa.column("hash"),
                             sa.column("document", sa.JSON()))
            conn.execute(sa.insert(items), [
                {"owner": "KR1", "hash": "h1",
                 "document": {"jql": "a", "items": [{"id": "7"}, {"id": "8"}]}},
                {"owner": "KR2", "hash": "h2", "document": {"jql": "b", "items": []}},
                {"owner": "KR2", "hash": "old", "document": {"jql": "b", "items": [{"id": "7"}]}},
            ])
            snapshots_table = sa.table(
                "snapshots", sa.column("id"), sa.column("created_at"), sa.column("cycle"),
                sa.column("as_of"), sa.column("document", sa.JSON()), sa.column("published"))
            conn.execute(sa.insert(snapshots_table).values(
                created_at=datetime(2026, 11, 1, tzinfo=UTC), cycle="Q4",
                as_of=datetime(2026, 11, 1, tzinfo=UTC), published=True,
                document={"version": 2, "scorecard": {}, "fetch": {}, "explain_refs": refs,
                          "explain_reasons": {"KR1": [], "KR2": []}}))
    finally:
        engine.dispose()

    upgrade(database_url)

    with Store(database_url) as store:
        snapshot_id = store.latest_snapshot_id()
        assert snapshot_id is not None
        assert store.snapshot_owners_holding(snapshot_id, {"7"}) == {"KR1"}
        assert store.snapshot_owners_holding(snapshot_id, {"8", "9"}) == {"KR1"}


def test_upgrade_given_more_0010_items_than_one_read_indexes_them_a_chunk_at_a_time(
    database_url: str,
) -> None:
    from okr_sync.sync.store.snapshot_items import INDEXED

    upgrade(database_url, "0010")
    rows = 450  # more than two reads of 200 documents
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            items = sa.table("kr_items", sa.column("owner"), sa.column("hash"),
                             sa.column("document", sa.JSON()))
            conn.execute(sa.insert(items), [
                {"owner": f"KR{n}", "hash": f"h{n}", "document": {"items": [{"id": str(n)}]}}
                for n in range(rows)])
    finally:
        engine.dispose()
    reads: list[int] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if "kr_items.document" in statement and not statement.lstrip().startswith("INSERT"):
            reads.append(len(parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        upgrade(database_url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)

    # The documents are read by key, a chunk at a time (never the whole table at once).
    assert len(reads) == 3 and max(reads) <= 200
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as conn:
            ids = sa.table("kr_item_ids", sa.column("owner"), sa.column("hash"),
                           sa.column("issue_id"))
            indexed = conn.execute(sa.select(ids.c.owner, ids.c.hash, ids.c.issue_id)).all()
    finally:
        engine.dispose()
    assert {(r.owner, r.hash) for r in indexed if r.issue_id == INDEXED} == {
        (f"KR{n}", f"h{n}") for n in range(rows)}
    assert {(r.owner, r.issue_id) for r in indexed if r.issue_id != INDEXED} == {
        (f"KR{n}", str(n)) for n in range(rows)}
