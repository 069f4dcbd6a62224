"""Final scores per cycle: what a full read of the history gives, at a cost that does not
grow with the current cycle's history (every serve pass asks them)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from okr_sync.sync.store.records import HistoryEntry
from okr_sync.sync.store.store import Store
from support.history_builders import finals_of_every_row, sqlite_steps, store_passes

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KRS = ["KR1", "KR2", "KR3"]


def test_final_scores_by_cycle_given_growing_current_cycle_does_no_more_work(
        tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store_passes(store, "2025-Q4", KRS, T0 - timedelta(days=90), 5, score=1.0)
        store_passes(store, "2026-Q1", KRS, T0, 5)
        with sqlite_steps(store) as few:
            before = store.final_scores_by_cycle()
        store_passes(store, "2026-Q1", KRS, T0 + timedelta(days=1), 200, score=0.7)
        with sqlite_steps(store) as many:
            after = store.final_scores_by_cycle()

    assert before == {k: {"2025-Q4": 1.0, "2026-Q1": 0.5} for k in KRS}
    assert after == {k: {"2025-Q4": 1.0, "2026-Q1": 0.7} for k in KRS}
    assert many[0] == few[0]


def test_final_scores_by_cycle_given_mixed_live_and_backfilled_rows_matches_every_row(
        store: Store) -> None:
    rng = random.Random(7)
    for cycle_index, cycle in enumerate(["FY26-H2", "2026-Q1", "2025-Q4", "B"]):
        start = T0 + timedelta(days=30 * cycle_index)
        for kr_id in rng.sample(["KR1", "KR2", "KR3", "KR4"], rng.randint(1, 4)):
            live_at = [start + timedelta(hours=rng.randint(0, 200))
                       for _ in range(rng.randint(0, 4))]
            for at in sorted(live_at):
                store.add_history(None, cycle=cycle, as_of=at,
                                  entries=[HistoryEntry(kr_id, 1, rng.random(), "b", "on_track")])
            # Backfilled days before, within the slack of and well after the live rows.
            offsets = rng.sample([-30.0, 0.5, 1.0, 2.0, 400.0, 900.0], rng.randint(0, 3))
            last_live = max(live_at, default=start)
            days = [(last_live + timedelta(seconds=s) if s < 100 else start + timedelta(hours=s),
                     [HistoryEntry(kr_id, 1, rng.random(), "b", "at_risk")])
                    for s in sorted(offsets)]
            if not live_at and not days:
                days = [(start, [HistoryEntry(kr_id, 1, 0.25, "b", "at_risk")])]
            store.replace_backfilled(cycle=cycle, kr_ids=[kr_id], since=start - timedelta(1),
                                     days=days)

    expected = finals_of_every_row(store)
    actual = store.final_scores_by_cycle()
    assert actual == expected
    # Cycles in the order they were last scored.
    assert [list(c.items()) for c in actual.values()] == [
        list(c.items()) for c in expected.values()]
    assert store.final_scores_by_cycle(["KR2", "KR4"]) == {
        k: v for k, v in expected.items() if k in ("KR2", "KR4")}
    past = {k: {c: v for c, v in cycles.items() if c != "2026-Q1"}
            for k, cycles in expected.items()}
    assert store.final_scores_by_cycle(except_cycle="2026-Q1") == {k: v for k, v in past.items()
                                                                   if v}
    assert store.final_scores_by_cycle(["KR1"], except_cycle="B") == {
        k: {c: v for c, v in cycles.items() if c != "B"}
        for k, cycles in expected.items() if k == "KR1"}
