"""Store: per-KPI history and the done/total behind KR history (issue 13 items 2 and 5),
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okr_sync.sync.store.store import HistoryEntry, Store

T0 = datetime(2026, 11, 15, 8, 0, tzinfo=UTC)


def test_add_kpi_history_given_passes_returns_them_oldest_first(store: Store) -> None:
    for day in (2, 0, 1):
        store.add_kpi_history(None, cycle="2026-Q4", as_of=T0 + timedelta(days=day),
                              entries=[("ESC", 10.0 - day, "red"), ("NRR", 104.0, None)])
    store.add_kpi_history(None, cycle="2026-Q3", as_of=T0, entries=[("ESC", 1.0, "green")])

    esc = store.get_kpi_history("ESC", cycle="2026-Q4")
    assert [(h.value, h.status) for h in esc] == [(10.0, "red"), (9.0, "red"), (8.0, "red")]
    assert esc[0].as_of == T0
    assert [h.value for h in store.get_kpi_history("ESC", limit=2)] == [9.0, 8.0]
    by_kpi = store.kpi_history_for_cycle("2026-Q4")
    assert sorted(by_kpi) == ["ESC", "NRR"] and len(by_kpi["NRR"]) == 3
    assert store.add_kpi_history(None, cycle="2026-Q4", as_of=T0, entries=[]) == 0


def test_add_history_given_done_and_total_reads_them_back(store: Store) -> None:
    store.add_history(None, cycle="2026-Q4", as_of=T0, entries=[
        HistoryEntry("KR1", 0.25, 0.25, "missed", "at_risk", done=3.0, total=12.0),
        HistoryEntry("KR2", 7.0, 0.5, "progress", "on_track"),
    ])

    kr1, kr2 = store.get_history("KR1")[0], store.history_for_cycle("2026-Q4")["KR2"][0]
    assert (kr1.done, kr1.total) == (3.0, 12.0)
    assert (kr2.done, kr2.total) == (None, None)


def test_prune_given_old_snapshot_keeps_kpi_history_and_clears_its_link(store: Store) -> None:
    old = store.save_snapshot(cycle="2026-Q4", as_of=T0, document={"cycle": {}},
                              published=True)
    store.add_kpi_history(old, cycle="2026-Q4", as_of=T0, entries=[("ESC", 5.0, "yellow")])
    for day in (1, 2, 3):
        later = store.save_snapshot(cycle="2026-Q4", as_of=T0 + timedelta(days=day),
                                    document={"cycle": {}}, published=True)
        store.add_kpi_history(later, cycle="2026-Q4", as_of=T0 + timedelta(days=day),
                              entries=[("ESC", 5.0 - day, "yellow")])

    store.prune(before=T0 + timedelta(days=60))

    history = store.get_kpi_history("ESC")
    assert [h.value for h in history] == [5.0, 4.0, 3.0, 2.0]  # history stays
    kept = {h.snapshot_id for h in history} - {None}
    assert all(store.get_snapshot(i) for i in kept)  # no link to a deleted snapshot
