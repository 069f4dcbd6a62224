"""The acceptance test of backfill: a Jira mutated day by day, scored live at the end of
each day, then rebuilt from the final mirror and the changelog alone: every day equal."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from okr_sync.sync.backfill.run import BackfillOptions, backfill
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_history
from support.backfill_world import DayResult, Simulation, simulation

DAYS = 32


def _backfilled(sim: Simulation) -> dict[str, dict[str, DayResult]]:
    store = sim.runtime.store
    assert isinstance(store, Store)
    # From scratch: no history at all, only the mirror the live passes left.
    with store.engine.begin() as conn:
        conn.execute(sa.delete(kr_history))
    result = backfill(sim.runtime.plan, store, sim.runtime.jira, BackfillOptions(),
                      now=sim.clock())
    assert not result.skipped
    rows: dict[str, dict[str, DayResult]] = {}
    for kr_id, records in store.history_for_cycle("2026-Q4").items():
        for r in records:
            assert r.backfilled and r.snapshot_id is None
            day = r.as_of.astimezone(sim.day_end(sim.clock().date()).tzinfo).date()
            rows.setdefault(day.isoformat(), {})[kr_id] = (r.value, r.score, r.band,
                                                           r.confidence)
    return rows


def _live(sim: Simulation) -> dict[str, dict[str, DayResult]]:
    jira_krs = {"O1.KR1", "O1.KR2", "O1.KR3", "O2.KR1", "O2.KR2", "O2.KR3"}
    return {day.isoformat(): {k: v for k, v in krs.items() if k in jira_krs}
            for day, krs in sim.live.items()}


@pytest.mark.parametrize("deployment", ["cloud", "dc", "cloud-per-issue"])
def test_backfill_given_month_of_daily_mutations_equals_every_live_daily_value(
    tmp_path: Path, deployment: str
) -> None:
    with simulation(tmp_path, deployment=deployment, days=DAYS) as sim:
        live = _live(sim)
        sim.jira.log.clear()
        rebuilt = _backfilled(sim)
        paths = {r.path for r in sim.jira.log.records}

    assert len(live) == DAYS
    kinds = {m.kind for m in sim.dataset.mutations}
    assert {"transitioned", "story_points", "moved", "updated", "created", "deleted"} <= kinds
    assert any(sim.dataset.deleted[i].project in ("ENT", "SUP") for i in sim.deleted)
    # The month really moved each KR (else equality would prove nothing).
    for kr_id in ("O1.KR1", "O1.KR2", "O1.KR3", "O2.KR2", "O2.KR3"):
        assert len({krs[kr_id] for krs in live.values()}) > 3, kr_id
    assert rebuilt == live
    bulk = "/rest/api/3/changelog/bulkfetch"
    per_issue = {p for p in paths if p.endswith("/changelog")}
    if deployment == "cloud":
        assert bulk in paths and not per_issue
    elif deployment == "cloud-per-issue":
        assert bulk in paths and per_issue  # refused, then each issue's changelog
    else:
        assert "/rest/api/2/search" in paths and bulk not in paths and not per_issue
