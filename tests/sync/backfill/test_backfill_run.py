"""backfill() over a few simulated days: what it rebuilds, skips, replaces and refuses."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from okr_sync.sync.backfill.days import BackfillInputError
from okr_sync.sync.backfill.run import BackfillOptions, backfill
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_history
from support.backfill_world import backfill_plan_builder, simulation


def _store(sim) -> Store:  # type: ignore[no-untyped-def]
    store = sim.runtime.store
    assert isinstance(store, Store)
    return store


def test_backfill_given_jql_only_jira_answers_skips_that_kr_and_stores_the_rest(
    tmp_path: Path,
) -> None:
    with simulation(tmp_path, days=4) as sim:
        builder = backfill_plan_builder(sim.epic_key)
        builder.doc["objectives"][0]["key_results"].append(
            {"id": "O1.KR9", "title": "text search", "target": 5,
             "measure": {"kind": "count", "jql": 'project = ENT AND text ~ "SSO"'}})
        plan = builder.build()
        result = backfill(plan, _store(sim), sim.runtime.jira, BackfillOptions(),
                          now=sim.clock())

    assert "O1.KR9" in result.skipped and "answered by Jira only" in result.skipped["O1.KR9"]
    assert set(result.values) == {"O1.KR1", "O1.KR2", "O1.KR3", "O2.KR1", "O2.KR2", "O2.KR3"}
    assert all(len(days) == 4 for days in result.values.values())


def test_backfill_given_kr_and_from_replaces_only_those_rows(tmp_path: Path) -> None:
    with simulation(tmp_path, days=4) as sim:
        store = _store(sim)
        first = backfill(sim.runtime.plan, store, sim.runtime.jira, BackfillOptions(),
                         now=sim.clock())
        again = backfill(sim.runtime.plan, store, sim.runtime.jira,
                         BackfillOptions(since=date(2026, 10, 3), kr_ids=("O1.KR1",)),
                         now=sim.clock())
        rows = store.history_for_cycle("2026-Q4")
        with store.engine.begin() as conn:
            stored = conn.execute(sa.select(kr_history.c.kr_id, kr_history.c.as_of)
                                  .where(kr_history.c.backfilled.is_(True))).all()

    assert first.rows == 6 * 4 and again.rows == 2
    assert set(again.values) == {"O1.KR1"}
    # Live rows (one per day) win over the backfilled ones of the same days.
    assert all(not r.backfilled for records in rows.values() for r in records)
    # Re-running replaced O1.KR1's last two days: still one backfilled row per KR and day.
    assert len(stored) == len(set(stored)) == 6 * 4


def test_backfill_given_unknown_kr_or_day_outside_cycle_refuses_before_fetching(
    tmp_path: Path,
) -> None:
    with simulation(tmp_path, days=1) as sim:
        sim.jira.log.clear()
        with pytest.raises(BackfillInputError, match=r"did you mean O1\.KR1"):
            backfill(sim.runtime.plan, _store(sim), sim.runtime.jira,
                     BackfillOptions(kr_ids=("O1.KR1x",)), now=sim.clock())
        with pytest.raises(BackfillInputError, match="outside the cycle"):
            backfill(sim.runtime.plan, _store(sim), sim.runtime.jira,
                     BackfillOptions(since=date(2027, 1, 1)), now=sim.clock())
        assert len(sim.jira.log) == 0
