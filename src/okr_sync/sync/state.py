"""What a pass reads back from the state store and writes to it, as plain documents.

The scorecard document (A5 JSON) is stored with an ``explain`` section: per KR or
KPI, its JQL, the items behind its value and how each was counted. The next pass
reads it back for change reasons, kept values and reusable counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from okr_sync.scoring.evaluate import Evaluation
from okr_sync.scoring.explain import ItemState
from okr_sync.scoring.scorecard import ItemCounts
from okr_sync.sync.pull import PulledSource, SourceState, issue_from_record
from okr_sync.sync.store.store import Store, StoreTransaction


def load_state(
    store: Store | None,
    source: str,
    queries: Mapping[str, str],
    previous_doc: Mapping[str, Any] | None,
) -> SourceState:
    """The mirror, cursor and stored memberships of ``source``.

    ``queries`` maps raw-JQL owners to their JQL in the plan: a stored membership
    is offered for reuse only while it was computed for that same JQL.
    """
    if store is None:
        return SourceState(issues={})
    issues = {doc["id"]: issue_from_record(doc) for doc in store.get_issues(source)}
    cursor = store.get_cursor(source)
    memberships: dict[str, tuple[str, tuple[str, ...]]] = {}
    for owner, jql in queries.items():
        stored = store.get_membership(source, owner)
        if stored is not None and stored.matches(jql):
            memberships[owner] = (jql, stored.issue_ids)
    counts: dict[str, tuple[str, int]] = {}
    for owner, entry in ((previous_doc or {}).get("explain") or {}).items():
        if owner in queries and entry.get("count") is not None and not entry.get("error"):
            counts[owner] = (str(entry["jql"]), int(entry["count"]))
    return SourceState(
        issues=issues,
        cursor=cursor.high_water_mark if cursor else None,
        last_full_reconcile=cursor.last_full_reconcile if cursor else None,
        probed_at=cursor.updated_at if cursor else None,
        memberships=memberships,
        counts=counts,
    )

def write_source(tx: StoreTransaction, source: PulledSource, now: datetime) -> None:
    if source.upserts:
        tx.upsert_issues(source.name, source.upserts, seen_at=now)
    if source.deleted:
        tx.mark_deleted(source.name, source.deleted, at=now)
    for owner, (jql, ids) in source.refreshed_memberships.items():
        tx.set_membership(source.name, owner, jql=jql, issue_ids=ids, refreshed_at=now)
    if source.source_error is None:
        tx.set_cursor(
            source.name,
            high_water_mark=source.cursor,
            last_full_reconcile=source.reconciled_at,
            at=now,
        )

def same_scores(document: Mapping[str, Any], other: Mapping[str, Any] | None) -> bool:
    """Whether two scorecard documents agree on everything but the moment they were taken."""
    if other is None:
        return False
    keys = ("objectives", "perspectives", "kpis", "warnings", "explain", "fetch")
    return all(document.get(key) == other.get(key) for key in keys)


def explain_document(evaluations: Mapping[str, Evaluation]) -> dict[str, Any]:
    """Per owner, the items behind its value: kept in the snapshot for ``explain``."""
    doc: dict[str, Any] = {}
    for owner, evaluation in evaluations.items():
        doc[owner] = {
            "jql": evaluation.jql,
            "error": evaluation.error,
            "count": evaluation.count,
            "reasons": list(evaluation.reasons),
            "items": [
                {
                    "id": c.id,
                    "key": c.key,
                    "summary": c.summary,
                    "status": c.status,
                    "project": c.project,
                    "done": c.done,
                    "points": c.points,
                    "amount": c.amount,
                    "counted": c.counted,
                }
                for c in evaluation.contributions
            ],
        }
    return doc

def previous_states(doc: Mapping[str, Any] | None) -> dict[str, dict[str, ItemState]]:
    if doc is None:
        return {}
    states: dict[str, dict[str, ItemState]] = {}
    for owner, entry in (doc.get("explain") or {}).items():
        if entry.get("error"):
            continue
        states[owner] = {item["id"]: ItemState.from_json(item) for item in entry.get("items", [])}
    return states

def previous_values(doc: Mapping[str, Any] | None) -> dict[str, tuple[float, ItemCounts | None]]:
    if doc is None:
        return {}
    values: dict[str, tuple[float, ItemCounts | None]] = {}
    for objective in doc.get("objectives", []):
        for kr in objective.get("key_results", []):
            items = kr.get("items")
            counts = ItemCounts(items["selected"], items["done"]) if items else None
            values[kr["id"]] = (float(kr["value"]), counts)
    for kpi in doc.get("kpis", []):
        if kpi.get("value") is not None:
            values[kpi["id"]] = (float(kpi["value"]), None)
    return values
