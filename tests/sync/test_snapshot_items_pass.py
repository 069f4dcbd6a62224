"""A pass stores each KR's explanation apart: one ``kr_items`` row per owner and
content, so a one-issue pass writes rows only for the KRs whose items changed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks.workload import PlanShape, make_dataset, make_plan, slack_channels, write_plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_items


def _latest_explain(store: Store) -> dict[str, object]:
    latest_id = store.latest_snapshot_id()
    assert latest_id is not None
    explain = store.get_snapshot(latest_id).document["explain"]
    assert isinstance(explain, dict)
    return explain


def _item_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(kr_items)).scalar_one())


def test_pass_given_one_issue_changed_writes_item_rows_only_for_the_krs_it_changed(
    tmp_path: Path,
) -> None:
    dataset = make_dataset(seed=1, issues=1000)
    plan_doc = make_plan(1, dataset, PlanShape.scaled(40, 4))
    plan = load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml"))
    with sandbox_world(tmp_path, dataset=dataset,
                       channels=tuple(slack_channels(plan_doc))) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            store = runtime.store
            assert isinstance(store, Store)
            before = _latest_explain(store)
            assert len(before) >= 20
            open_ids = sorted(i.id for i in dataset.issues.values()
                              if i.status_category != "done")
            dataset.advance(timedelta(minutes=10))
            dataset.transition(open_ids[len(open_ids) // 2], "done")
            rows_before = _item_rows(store)
            read_before = store.kr_item_rows_read

            runtime.run_locked(PassOptions())

            written = _item_rows(store) - rows_before
            read = store.kr_item_rows_read - read_before
            after = _latest_explain(store)
        finally:
            runtime.close()
    changed = [owner for owner in after if after[owner] != before.get(owner)]
    assert changed, "the transition changes some KR's items"
    # Rows only for the owners whose explanation changed, not for every KR.
    assert 0 < written <= len(changed) < len(after)
    # The published snapshot's items are read in one batch, not one read per KR.
    assert read <= len(before)
