"""Pulls of one source chained through a real store, as the pipeline chains them.

Each pull starts from what :func:`~okr_sync.sync.state.load_state` offers and its
result is written by :func:`~okr_sync.sync.state.write_source`: what the store keeps
between passes (key history, memberships and what they were checked through) is what
the next pass starts from.
"""

from __future__ import annotations

from datetime import datetime

from okr_sync.connectors.jira.client import JiraClient
from okr_sync.sync.fetch_plan import SourceFetchPlan
from okr_sync.sync.pull import PulledSource, PullOptions, SourcePuller
from okr_sync.sync.state import load_state, write_source
from okr_sync.sync.store.store import Store


def stored_pull(store: Store, client: JiraClient, plan: SourceFetchPlan, now: datetime,
                *, full: bool = False) -> PulledSource:
    """One pull of ``plan``'s source from the store's state, committed to the store."""
    queries = {q.owner: q.jql for q in plan.memberships}
    state = load_state(store, plan.source, queries, None)
    result = SourcePuller(plan.source, client, plan).pull(state, PullOptions(now, full=full))
    assert result.source_error is None, result.source_error
    with store.transaction() as tx:
        write_source(tx, result, now)
    return result
