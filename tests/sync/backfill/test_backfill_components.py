"""Backfill rewinds component and fix-version edits: KRs selecting on them are rebuilt
equal to what the live passes measured each day."""

from __future__ import annotations

from pathlib import Path

from okr_sync.config.plan import Plan
from okr_sync.sync.backfill.run import BackfillOptions, backfill
from okr_sync.sync.store.store import Store
from support.backfill_world import backfill_plan_builder, simulation
from support.plan_builders import objective

DAYS = 20
KRS = ("O3.KR1", "O3.KR2")


def _with_components(epic_key: str) -> Plan:
    return backfill_plan_builder(epic_key).with_objective(objective(
        "O3",
        {"id": "O3.KR1", "title": "Auth and triage work done", "measure": {
            "kind": "done_ratio",
            "select": {"project": ["ENT", "SUP"], "components": ["Auth", "Billing", "Triage"]}}},
        {"id": "O3.KR2", "title": "Work planned for the autumn releases", "target": 30,
         "measure": {"kind": "count",
                     "select": {"project": ["ENT", "SUP"], "fix_version": ["2026.10", "2026.11"]}}},
    )).build()


def test_backfill_given_component_and_fix_version_edits_rebuilds_each_live_day(
    tmp_path: Path,
) -> None:
    with simulation(tmp_path, days=DAYS, plan_for=_with_components) as sim:
        live = {day: {k: krs[k] for k in KRS} for day, krs in sim.live.items()}
        edits = [m for m in sim.dataset.mutations if m.kind == "updated"]
        store = sim.runtime.store
        assert isinstance(store, Store)
        result = backfill(sim.runtime.plan, store, sim.runtime.jira,
                          BackfillOptions(kr_ids=KRS), now=sim.clock())

    assert edits
    for kr_id in KRS:  # each KR moved over the days (else equality proves little)
        assert len({krs[kr_id] for krs in live.values()}) > 1, kr_id
    rebuilt: dict[object, dict[str, object]] = {}
    for kr_id, days in result.values.items():
        for d in days:
            rebuilt.setdefault(d.day, {})[kr_id] = (d.value, d.score, d.band, d.confidence)
    assert rebuilt == live
