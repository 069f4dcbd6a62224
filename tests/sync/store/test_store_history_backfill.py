"""Backfilled score history: replaced on re-run, live rows win per day, too_easy reads it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from okr_sync.sync.store.records import HistoryEntry
from okr_sync.sync.store.store import Store

DAY_END = datetime(2026, 10, 1, 21, 59, 59, tzinfo=UTC)  # 23:59:59 in Berlin


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def _days(count: int, score: float) -> list[tuple[datetime, list[HistoryEntry]]]:
    return [(DAY_END + timedelta(days=d), [HistoryEntry("KR1", d, score, "low", "at_risk")])
            for d in range(count)]


def test_replace_backfilled_given_rerun_replaces_rows_and_keeps_live_ones(store: Store) -> None:
    store.add_history(None, cycle="Q4", as_of=DAY_END + timedelta(days=9),
                      entries=[HistoryEntry("KR1", 9, 0.9, "high", "on_track")])
    store.replace_backfilled(cycle="Q4", kr_ids=["KR1"], since=DAY_END - timedelta(days=1),
                             days=_days(5, 0.1))
    store.replace_backfilled(cycle="Q4", kr_ids=["KR1"], since=DAY_END + timedelta(hours=1),
                             days=_days(5, 0.2)[1:])

    history = store.get_history("KR1")
    assert [(h.score, h.backfilled) for h in history] == [
        (0.1, True), (0.2, True), (0.2, True), (0.2, True), (0.2, True), (0.9, False)]
    assert [h.score for h in store.get_history("KR1", limit=2)] == [0.2, 0.9]


def test_get_history_given_live_row_on_a_backfilled_day_shows_the_live_one(
    store: Store,
) -> None:
    store.replace_backfilled(cycle="Q4", kr_ids=["KR1"], since=DAY_END - timedelta(days=1),
                             days=_days(3, 0.1))
    store.add_history(None, cycle="Q4", as_of=DAY_END + timedelta(days=1, hours=-10),
                      entries=[HistoryEntry("KR1", 1, 0.5, "mid", "on_track")])

    history = store.history_for_cycle("Q4")["KR1"]
    assert [(h.score, h.backfilled) for h in history] == [(0.1, True), (0.5, False),
                                                          (0.1, True)]


def test_final_scores_given_backfilled_only_cycle_uses_it_and_later_live_wins_elsewhere(
    store: Store,
) -> None:
    store.replace_backfilled(cycle="Q3", kr_ids=["KR1"], since=DAY_END - timedelta(days=1),
                             days=_days(3, 1.0))
    store.replace_backfilled(cycle="Q4", kr_ids=["KR1"], since=DAY_END - timedelta(days=1),
                             days=[(DAY_END + timedelta(days=10),
                                    [HistoryEntry("KR1", 1, 0.3, "low", "at_risk")])])
    store.add_history(None, cycle="Q4", as_of=DAY_END + timedelta(days=20),
                      entries=[HistoryEntry("KR1", 1, 0.7, "mid", "on_track")])

    assert store.final_scores_by_cycle() == {"KR1": {"Q3": 1.0, "Q4": 0.7}}


def test_final_scores_given_live_rows_stopped_early_takes_the_later_backfilled_end(
    store: Store,
) -> None:
    # Live passes stopped on day 2; backfill rebuilt the cycle to its end (day 9), where
    # the KR reached 1.0: too_easy must see the cycle's end, not the stale live score.
    for d in range(3):
        store.add_history(None, cycle="Q3", as_of=DAY_END + timedelta(days=d, hours=-12),
                          entries=[HistoryEntry("KR1", d, 0.6, "mid", "on_track")])
    store.replace_backfilled(cycle="Q3", kr_ids=["KR1"], since=DAY_END - timedelta(days=1),
                             days=[*_days(9, 0.6), (DAY_END + timedelta(days=9),
                                   [HistoryEntry("KR1", 9, 1.0, "high", "on_track")])])

    assert store.final_scores_by_cycle() == {"KR1": {"Q3": 1.0}}


@pytest.mark.parametrize(("day_end", "live_at", "same_day"), [
    # 25 October 2026 has 25 hours in Berlin: 00:30 CEST is 24.5 h before its end.
    (datetime(2026, 10, 25, 22, 59, 59, tzinfo=UTC), datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
     True),
    # 29 March 2026 has 23 hours: 23:30 CET the day before is 23.5 h before its end.
    (datetime(2026, 3, 29, 21, 59, 59, tzinfo=UTC), datetime(2026, 3, 28, 22, 30, tzinfo=UTC),
     False),
])
def test_history_for_cycle_given_dst_day_matches_live_rows_by_local_date(
    store: Store, day_end: datetime, live_at: datetime, same_day: bool,
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    store.replace_backfilled(cycle="Q4", kr_ids=["KR1"], since=day_end - timedelta(days=2),
                             days=[(day_end, [HistoryEntry("KR1", 1, 0.1, "low", "at_risk")])])
    store.add_history(None, cycle="Q4", as_of=live_at,
                      entries=[HistoryEntry("KR1", 2, 0.5, "mid", "on_track")])

    history = store.history_for_cycle("Q4", berlin)["KR1"]
    expected = [(0.5, False)] if same_day else [(0.5, False), (0.1, True)]
    assert [(h.score, h.backfilled) for h in history] == expected
    assert [(h.score, h.backfilled) for h in store.get_history("KR1", zone=berlin)] == expected
