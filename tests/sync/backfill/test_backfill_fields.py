"""Backfill asks Jira for the changelog of only the fields the plan reads, and rebuilds
the same days from them."""

from __future__ import annotations

from pathlib import Path

from okr_sync.config.plan import Plan
from okr_sync.sync.backfill.run import BackfillOptions, backfill
from okr_sync.sync.store.store import Store
from support.backfill_world import backfill_plan_builder, simulation

BULK = "/rest/api/3/changelog/bulkfetch"


def _selectors_only(epic_key: str) -> Plan:
    """The backfill plan without its raw JQL KR (raw JQL may read any field)."""
    builder = backfill_plan_builder(epic_key)
    for obj in builder.doc["objectives"]:
        obj["key_results"] = [kr for kr in obj["key_results"] if "jql" not in kr["measure"]]
    return builder.build()


def test_backfill_given_selector_plan_fetches_only_the_fields_it_reads(tmp_path: Path) -> None:
    with simulation(tmp_path, days=6, plan_for=_selectors_only) as sim:
        live = {day: {k: v for k, v in krs.items() if k != "O2.KR4"}
                for day, krs in sim.live.items()}
        sim.jira.log.clear()
        store = sim.runtime.store
        assert isinstance(store, Store)
        result = backfill(sim.runtime.plan, store, sim.runtime.jira, BackfillOptions(),
                          now=sim.clock())
        bodies = [r.body for r in sim.jira.log.records if r.path == BULK]
        points = sorted(sim.runtime.jira("main").story_points_fields())

    # project/key and status for every KR, issue type (O1.KR2), labels (O2.KR2), the
    # parent (O2.KR1's epic) and the story points field (O1.KR2, O2.KR1): no components,
    # fix versions or priority, which no selector reads.
    assert bodies and all(isinstance(b, dict) for b in bodies)
    assert set(bodies[0]["fieldIds"]) == {"issuekey", "project", "status", "issuetype",
                                          "labels", "parent", *points}
    rebuilt: dict[object, dict[str, object]] = {}
    for kr_id, days in result.values.items():
        for d in days:
            rebuilt.setdefault(d.day, {})[kr_id] = (d.value, d.score, d.band, d.confidence)
    assert rebuilt == live
