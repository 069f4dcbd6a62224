"""Which messages a scorecard deserves per target, and what planning reads from the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.config.plan import Plan
from okr_sync.scoring.rollup import ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import Change, Scorecard
from okr_sync.sync.delivery.messages import plan_messages
from okr_sync.sync.store.reader import ReadOnlyStore
from okr_sync.sync.store.store import OutboxItem, Store
from support.plan_builders import PlanBuilder, manual_kr, objective

_NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def _plan(routes: int) -> Plan:
    names = [f"team{i}" for i in range(routes)]
    return (
        PlanBuilder()
        .with_objective(objective("O-1", manual_kr("O-1.KR1", target=10, current=4),
                                  notify=names))
        .set("routes", {name: [{"slack": {"channel": f"C{i:010d}"}}]
                        for i, name in enumerate(names)})
        .build()
    )


def _news(plan: Plan) -> Scorecard:
    card = build_scorecard(ScoringInput(plan=plan, as_of=_NOW))
    return replace(card, changes=(Change("O-1.KR1", 0.2, 0.4, ("check-in",)),))


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)


def _statements_for_planning(store: Store, routes: int) -> int:
    plan = _plan(routes)
    card = _news(plan)
    with _statements(store) as seen:
        plan_messages(plan, card, store)
    return len(seen)


def test_plan_messages_given_more_routes_reads_the_store_no_more_often(store: Store) -> None:
    one = _statements_for_planning(store, 1)
    six = _statements_for_planning(store, 6)

    # One batched read for every target (per-target reads made this grow 4 a target).
    assert six == one
    assert one <= 4  # two queries, plus what the backend runs around a transaction


def test_plan_messages_given_each_target_state_plans_scorecards_and_notes(store: Store) -> None:
    plan = _plan(4)
    card = _news(plan)
    posted, queued, failed, new = (f"slack:C{i:010d}" for i in range(4))
    store.set_message_ref(posted, channel=posted[6:], message_id="1.0")
    for target in (queued, failed):
        row = store.enqueue(OutboxItem(f"key-{target}", "team", target, "scorecard", {}))
        assert row is not None
        if target == failed:
            store.claim_deliverable(claimer="test")
            store.mark_failed(row, error="channel_not_found")

    kinds = sorted((m.target, m.kind) for m in plan_messages(plan, card, store))

    assert kinds == sorted([
        (posted, "scorecard"), (posted, "change_note"),
        (queued, "scorecard"), (queued, "change_note"),
        (failed, "scorecard"), (failed, "change_note"),
        (new, "scorecard"),
    ])


def test_plan_messages_given_empty_reader_plans_first_scorecards_only() -> None:
    plan = _plan(2)

    messages = plan_messages(plan, _news(plan), ReadOnlyStore())

    assert [m.kind for m in messages] == ["scorecard", "scorecard"]
