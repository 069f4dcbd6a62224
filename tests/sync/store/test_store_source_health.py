"""Each Jira source's health in the store, and migration 0005 upgrading a single-source
database in place (issue 14 item 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from okr_sync.sync.store.database import create_store_engine
from okr_sync.sync.store.schema import current_revision, head_revision, upgrade
from okr_sync.sync.store.store import Store

_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_upgrade_given_single_source_database_at_0004_keeps_it_as_main_with_its_freshness(
    database_url: str,
) -> None:
    upgrade(database_url, "0004")
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO issues (source, issue_id, key, project, updated, fields, deleted,"
                " seen_at) VALUES ('main', '7', 'ENT-7', 'ENT', :at, :fields, false, :at)"
            ), {"at": "2026-11-01 10:00:00", "fields": '{"id": "7", "key": "ENT-7"}'})
            conn.execute(sa.text(
                "INSERT INTO cursors (source, high_water_mark, updated_at)"
                " VALUES ('main', :at, :at)"), {"at": "2026-11-01 10:00:00"})
    finally:
        engine.dispose()

    upgrade(database_url)

    engine = create_store_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    with Store(database_url) as store:
        assert [r["key"] for r in store.get_issues("main")] == ["ENT-7"]
        cursor = store.get_cursor("main")
        assert cursor is not None
        [main] = store.sources_health()
        assert (main.source, main.last_success_at, main.failing) == (
            "main", cursor.updated_at, False)
        # A second source joins beside it without touching main's mirror or cursor.
        store.record_source_failure("legacy", "source unreachable", at=_AT)
        assert store.get_issues("legacy") == [] and store.get_cursor("main") == cursor
        assert [h.source for h in store.sources_health()] == ["legacy", "main"]


def test_source_health_given_failures_then_a_read_keeps_the_first_failure_then_clears(
    store: Store,
) -> None:
    store.record_source_read("legacy", at=_AT)
    store.record_source_failure("legacy", "HTTP 401", at=_AT + timedelta(minutes=5))
    store.record_source_failure("legacy", "HTTP 503", at=_AT + timedelta(minutes=10))

    [failing] = store.sources_health()
    assert failing.failing_since == _AT + timedelta(minutes=5)
    assert failing.last_success_at == _AT and failing.last_error == "HTTP 503"

    store.record_source_read("legacy", at=_AT + timedelta(minutes=15))
    [healthy] = store.sources_health()
    assert not healthy.failing and healthy.last_error is None
    assert healthy.last_success_at == _AT + timedelta(minutes=15)
