"""A pass stores each KR's explanation apart: one ``kr_items`` row per owner and
content, so a one-issue pass writes rows only for the KRs whose items changed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.workload import PlanShape, make_dataset, make_plan, slack_channels, write_plan
from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.sandbox.jira.model import JiraDataset
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world
from okr_sync.sync.store.snapshot_items import item_ids
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


def _counting_item_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per read of snapshot items (one query each), how many owners it asked for."""
    reads: list[int] = []
    original = store.snapshot_explanations

    def counted(snapshot_id: int, owners: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = None if owners is None else list(owners)
        reads.append(-1 if wanted is None else len(wanted))
        return original(snapshot_id, wanted)

    monkeypatch.setattr(store, "snapshot_explanations", counted)
    return reads


def _item_ids(store: Store, owner: str) -> set[str]:
    latest_id = store.latest_snapshot_id()
    assert latest_id is not None
    return item_ids(store.snapshot_explanations(latest_id, [owner])[owner])


def _one_issue_world(tmp_path: Path) -> tuple[JiraDataset, Plan, dict[str, Any]]:
    dataset = make_dataset(seed=1, issues=1000)
    plan_doc = make_plan(1, dataset, PlanShape.scaled(40, 4))
    return dataset, load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml")), plan_doc


@pytest.mark.parametrize("change", ["transition", "points", "relative_date"])
def test_pass_given_one_issue_changed_reads_only_the_touched_krs_items_in_one_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str,
) -> None:
    dataset, plan, plan_doc = _one_issue_world(tmp_path)
    with sandbox_world(tmp_path, dataset=dataset,
                       channels=tuple(slack_channels(plan_doc))) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            store = runtime.store
            assert isinstance(store, Store)
            explain = _latest_explain(store)
            owners = len(explain)
            # An open issue some KR counts: the change moves that KR's items.
            counted = sorted({int(item) for owner in sorted(explain)
                              for item in _item_ids(store, owner)})
            issue_id = next(i for i in counted
                            if dataset.get(i).status_category != "done"
                            and dataset.get(i).issuetype != "Epic")
            dataset.advance(timedelta(minutes=10))
            if change == "transition":
                dataset.transition(issue_id, "Done")
            elif change == "points":
                dataset.set_story_points(issue_id, 13.0)
            else:
                # No issue changes: issues leave a relative-date JQL's membership.
                dataset.advance(timedelta(days=5))
            reads = _counting_item_reads(store, monkeypatch)
            read_before = store.kr_item_rows_read

            runtime.run_locked(PassOptions())

            read = store.kr_item_rows_read - read_before
        finally:
            runtime.close()
    # At most the owners the change can touch (whole objectives) are read, in one query
    # for the reasons and at most one more to compare them: not every KR's items. (The
    # reasons read none: the first pass's states are recorded as the published items.)
    assert owners >= 40
    assert read <= owners // 4
    assert len(reads) <= 2 and -1 not in reads
