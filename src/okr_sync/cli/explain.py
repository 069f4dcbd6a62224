"""``okr-sync explain ID``: the arithmetic behind a KR, objective, perspective or KPI.

It reads the plan and the last stored pass (nothing is fetched): the numbers come
from :func:`okr_sync.scoring.arithmetic.explain_scorecard`, which uses the pass's own
scoring functions; the items a KR counted and which of them changed come from the
item states each stored pass keeps. ``--output json`` prints one JSON document (its
shape is in the README).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from okr_sync.cli.common import (
    OutputFormat,
    OutputOption,
    PlanOption,
    UsageError,
    fail_usage,
    id_kind_of,
    inert,
    load_settings,
    resolve_plan,
    stdout,
    store_settings,
)
from okr_sync.scoring.display import percent

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.scoring.arithmetic import Arithmetic
    from okr_sync.sync.state import PassSnapshot
    from okr_sync.sync.store.store import Snapshot, Store

NOT_SCORED = "not scored yet: run `okr-sync run` first"


def explain_command(
    item_id: Annotated[str, typer.Argument(
        metavar="ID", help="a key result, objective, KPI or perspective id")],
    output: OutputOption = OutputFormat.text,
    plan: PlanOption = None,
) -> None:
    """The arithmetic behind a KR, objective, perspective or KPI, the items behind a KR
    and which of them changed since the last pass."""
    from okr_sync.cli.state import open_store

    try:
        settings = load_settings()
        path, loaded = resolve_plan(plan, settings)
        settings = store_settings(settings, path)
        kind = id_kind_of(loaded, item_id)
        store = open_store(settings.database_url)
    except UsageError as error:
        fail_usage(error)
    with store:
        try:
            doc = explain_document(store, loaded, kind, item_id)
        except UsageError as error:
            fail_usage(error)
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        print_explanation(doc)


def _read(snapshot: Snapshot, plan: Plan) -> PassSnapshot:
    from okr_sync.sync.state import PassSnapshot, SnapshotError

    kinds = {kr.id: kr.measure.kind for _, kr in plan.key_results()}
    try:
        return PassSnapshot.from_json(snapshot.document, measure_kinds=kinds)
    except SnapshotError as error:
        raise UsageError(f"the state store's last scorecard cannot be read: {error}") from None


def explain_document(store: Store, plan: Plan, kind: str, item_id: str) -> dict[str, Any]:
    """What ``explain --output json`` prints for ``item_id`` (a ``kind`` of the plan)."""
    from okr_sync.scoring.arithmetic import MeasureTrace, explain_scorecard
    from okr_sync.scoring.rollup import CheckIn
    from okr_sync.scoring.rules import cycle_bounds

    record = store.latest_snapshot()
    head: dict[str, Any] = {"kind": kind, "id": item_id}
    if record is None:
        return head | {"title": _title(plan, kind, item_id), "scored": False,
                       "message": NOT_SCORED}
    stored = _read(record, plan)
    card = stored.scorecard
    start, _end = cycle_bounds(plan.cycle.start, plan.cycle.end, plan.cycle.zone)
    seen = store.latest_checkins(since=start, until=record.as_of)
    checkins = {k: CheckIn(value=c.value, confidence=c.confidence, note=c.note, at=c.value_at)
                for k, c in seen.items()}
    traces = {owner: MeasureTrace(tuple(e.items), e.count, e.error)
              for owner, e in stored.explanations.items()}
    arithmetic = explain_scorecard(plan, card, traces, checkins)
    head |= {"scored": True, "as_of": card.cycle.as_of.isoformat(),
             "measured_at": record.as_of.isoformat(), "elapsed": round(arithmetic.elapsed, 4)}
    if kind == "objective":
        return head | arithmetic.objectives[item_id].to_json() | _warnings(card, item_id)
    if kind == "perspective":
        return head | arithmetic.perspectives[item_id].to_json()
    if kind == "kpi":
        return (head | arithmetic.kpis[item_id].to_json() | _warnings(card, item_id)
                | _kpi_history(store, card, item_id))
    return head | _key_result(store, plan, record, stored, arithmetic, item_id)


def _kpi_history(store: Store, card: Any, kpi_id: str) -> dict[str, Any]:
    """The KPI's trend in the last pass and its stored history (newest 10)."""
    trend = next((k.trend for k in card.kpis if k.id == kpi_id), None)
    return {
        "trend": trend.to_json() if trend is not None else None,
        "history": [{"as_of": h.as_of.isoformat(), "value": h.value, "status": h.status}
                    for h in store.get_kpi_history(kpi_id, limit=10)],
    }


def _title(plan: Plan, kind: str, item_id: str) -> str:
    if kind == "key_result":
        return plan.key_result(item_id).title
    if kind == "objective":
        return plan.objective(item_id).title
    things = plan.kpis if kind == "kpi" else plan.perspectives
    return next(t.title for t in things if t.id == item_id)


def _warnings(card: Any, owner: str) -> dict[str, Any]:
    return {"warnings": [w.message for w in card.warnings if w.kr == owner]}


def _key_result(store: Store, plan: Plan, record: Snapshot, stored: PassSnapshot,
                arithmetic: Arithmetic, kr_id: str) -> dict[str, Any]:
    from okr_sync.config.plan import ManualMeasure, uses_points
    from okr_sync.scoring.explain import change_reasons, item_changes

    kr = plan.key_result(kr_id)
    doc = arithmetic.key_results[kr_id].to_json()
    doc["measure"] = kr.measure.kind
    # The Jira source it is measured from, and that source's health when it fails.
    doc["source"] = None if isinstance(kr.measure, ManualMeasure) else kr.measure.source
    failing = next((h for h in store.sources_health()
                    if h.source == doc["source"] and h.failing), None)
    doc["source_failing"] = None if failing is None else {
        "since": failing.failing_since.isoformat() if failing.failing_since else None,
        "error": failing.last_error}
    entry = stored.explanations.get(kr_id)
    doc["jql"] = entry.jql if entry is not None else None
    doc["error"] = entry.error if entry is not None else None
    doc["items"] = [
        {"key": c.key, "summary": c.summary, "status": c.status, "done": c.done,
         "points": c.points, "amount": c.amount, "counted": c.counted}
        for c in (entry.items if entry is not None else ())
    ]
    doc["changed_since_last_pass"] = None
    previous = store.snapshot_before(record.id)
    before_entry = _read(previous, plan).explanations.get(kr_id) if previous else None
    if entry is not None and not entry.error and before_entry is not None \
            and not before_entry.error:
        before = {c.id: c for c in before_entry.items}
        after = {c.id: c for c in entry.items}
        track = not isinstance(kr.measure, ManualMeasure) and uses_points(kr.measure)
        states_before = _states(before)
        states_after = _states(after)
        changes = item_changes(states_before, states_after, track_points=track)
        keys = {**{i: c.key for i, c in before.items()}, **{i: c.key for i, c in after.items()}}
        doc["changed_since_last_pass"] = {
            "previous_pass": previous.as_of.isoformat() if previous else None,
            "reasons": list(change_reasons(states_before, states_after, track_points=track)),
            "added": [keys[i] for i in changes.added],
            "done": [keys[i] for i in changes.done],
            "reopened": [keys[i] for i in changes.reopened],
            "left": [keys[i] for i in changes.left],
        }
    doc["last_change"] = next((list(c.reasons) for c in stored.scorecard.changes
                               if c.kr == kr_id), None)
    doc["history"] = [
        {"as_of": h.as_of.isoformat(), "value": h.value, "score": h.score, "band": h.band,
         "confidence": h.confidence, "backfilled": h.backfilled}
        for h in store.get_history(kr_id, limit=10, zone=plan.cycle.zone)
    ]
    doc["checkins"] = [
        {"at": c.at.isoformat(), "value": c.value, "confidence": c.confidence, "note": c.note,
         "author": c.author}
        for c in store.checkins(kr_id, limit=5)
    ]
    return doc | _warnings(stored.scorecard, kr_id)


def _states(items: Mapping[str, Any]) -> dict[str, Any]:
    from okr_sync.scoring.explain import ItemState

    return {i: ItemState(c.key, c.project, c.done, c.points) for i, c in items.items()}


# -- text ----------------------------------------------------------------------------------


def _line(label: str, text: str) -> None:
    from rich.text import Text

    stdout.print(Text.assemble((f"{label:<11}", "bold"), inert(text)))


def print_explanation(doc: Mapping[str, Any]) -> None:
    from rich.text import Text

    stdout.print(Text.assemble((inert(f"{doc['id']} "), "bold"), inert(doc.get("title", ""))))
    if not doc["scored"]:
        stdout.print(NOT_SCORED, markup=False)
        return
    stdout.print(f"as of {doc['as_of']} (elapsed f = {doc['elapsed']:g})", markup=False)
    kind = doc["kind"]
    if kind == "kpi":
        unit = f" {doc['unit']}" if doc.get("unit") else ""
        value = "not measured" if doc["value"] is None else f"{doc['value']:g}{unit}"
        _line("value", f"{value}: {doc['value_formula']}")
        _line("thresholds", f"green {doc['thresholds']['green']:g}, "
                            f"yellow {doc['thresholds']['yellow']:g} ({doc['direction']})")
        _line("status", doc["formula"])
        _print_kpi_history(doc)
    elif kind == "key_result":
        _line("value", doc["value"]["formula"])
        band = f" -> band {doc['band']}" if doc["band"] else ""
        _line("score", doc["score"]["formula"] + band)
        _line("confidence", doc["confidence"]["formula"])
        _print_items(doc)
    else:
        band = f" -> band {doc['band']}" if doc["band"] else ""
        _line("score", doc["score"]["formula"] + band)
        if kind == "objective":
            _line("confidence", doc["confidence"]["formula"])
        _print_contributors(doc["contributors"])
    for note in doc.get("notes", ()):
        stdout.print(inert(f"note: {note}"))
    for warning in doc.get("warnings", ()):
        stdout.print(inert(f"warning: {warning}"))


def _print_kpi_history(doc: Mapping[str, Any]) -> None:
    from rich.table import Table

    from okr_sync.scoring.kpi_trend import KpiTrend, trend_text

    trend = trend_text(KpiTrend.from_json(doc["trend"])) if doc.get("trend") else None
    _line("trend", trend or "no earlier value stored")
    if doc["history"]:
        table = Table("as of", "value", "status", header_style="bold")
        for h in doc["history"]:
            table.add_row(h["as_of"], f"{h['value']:g}", h["status"] or "-")
        stdout.print(table)


def _print_contributors(terms: Sequence[Mapping[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    if not terms:
        return
    table = Table("contributor", "kind", "weight", "score", "confidence", "counted",
                  header_style="bold")
    for t in terms:
        table.add_row(Text(inert(t["id"])), t["kind"].replace("_", " "), f"{t['weight']:g}",
                      "-" if t["score"] is None else f"{t['score']:g}",
                      t["confidence"] or "-", t["counted"].replace("_", " "))
    stdout.print(table)


def _print_items(doc: Mapping[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    if doc["measure"] == "manual":
        stdout.print("measured by hand: plan `current` or the latest check-in", markup=False)
    if doc.get("source"):
        stdout.print(inert(f"Jira source: {doc['source']}"))
    failing = doc.get("source_failing")
    if failing:
        stdout.print(Text.assemble(
            ("source failing: ", "red"),
            inert(f"since {failing['since']}: {failing['error']} (the value shown is the "
                  "last one measured)")))
    if doc["jql"]:
        stdout.print(Text(inert(f"JQL: {doc['jql']}")))
    if doc["error"]:
        stdout.print(Text.assemble(("not measured: ", "red"), inert(doc["error"])))
    changed = doc["changed_since_last_pass"]
    if changed is not None:
        reasons = ", ".join(changed["reasons"]) or "no item changed"
        stdout.print(inert(f"changed since the last pass: {reasons} "
                           f"(against the pass of {changed['previous_pass']})"))
        for what in ("added", "done", "reopened", "left"):
            if changed[what]:
                stdout.print(inert(f"  {what}: {', '.join(changed[what])}"))
    items = doc["items"]
    if items:
        table = Table("key", "summary", "status", "points", "counted", header_style="bold")
        for item in items:
            points = "-" if item["points"] is None else f"{item['points']:g}"
            counted = item["counted"]
            if doc["measure"] == "sum":
                counted = f"adds {item['amount'] or 0:g}"
            table.add_row(Text(inert(item["key"])), Text(inert(item["summary"])),
                          Text(inert(item["status"])), points, counted)
        stdout.print(table)
        stdout.print(f"{len(items)} items, {sum(1 for i in items if i['done'])} done",
                     markup=False)
    history = doc["history"]
    if history:
        table = Table("as of", "value", "score", "band", "confidence", header_style="bold")
        for h in history:
            # A day rebuilt from Jira's changelog (okr-sync backfill) says so.
            as_of = f"{h['as_of']} (backfilled)" if h.get("backfilled") else h["as_of"]
            table.add_row(as_of, "-" if h["value"] is None else f"{h['value']:g}",
                          percent(h["score"], missing="-"), Text(inert(h["band"])),
                          h["confidence"])
        stdout.print(table)
    if doc["last_change"] is not None:
        stdout.print(inert(f"last change: {', '.join(doc['last_change']) or 'no item changes'}"))
    for c in doc["checkins"]:
        stdout.print(inert(f"check-in {c['at']}: value={c['value']} "
                           f"confidence={c['confidence']} {c['note'] or ''}"))
