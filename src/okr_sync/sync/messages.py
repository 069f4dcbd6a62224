"""Which messages a new scorecard deserves, per route target (rendered, not yet sent).

Quiet by design: a route gets its standing scorecard message when it has none
yet or when one of its KRs changed (``notify.min_delta``, band or confidence),
and a change note only for news. A pass with no change plans nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from okr_sync.config.plan import Plan, RouteTarget
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.render import (
    render_slack_change_note,
    render_slack_checkin_reminder,
    render_slack_digest,
    render_slack_scorecard,
    render_teams_change_card,
    render_teams_checkin_reminder_card,
    render_teams_digest_card,
    render_teams_scorecard_card,
)
from okr_sync.sync.store import OutboxItem, OutboxKind, Store


@dataclass(frozen=True)
class RouteScope:
    """The part of a scorecard one route is told about."""

    route: str
    scorecard: Scorecard


def scope_scorecard(scorecard: Scorecard, objective_ids: Iterable[str]) -> Scorecard:
    """Only the given objectives, their KRs' changes and warnings."""
    wanted = set(objective_ids)
    objectives = tuple(o for o in scorecard.objectives if o.id in wanted)
    kr_ids = {kr.id for o in objectives for kr in o.key_results}
    return replace(
        scorecard,
        objectives=objectives,
        changes=tuple(c for c in scorecard.changes if c.kr in kr_ids),
        warnings=tuple(w for w in scorecard.warnings if w.kr is None or w.kr in kr_ids),
    )


def route_scopes(plan: Plan, scorecard: Scorecard) -> list[RouteScope]:
    scopes = []
    for route in plan.routes:
        objective_ids = [o.id for o in plan.objectives if route in o.notify]
        if objective_ids:
            scopes.append(RouteScope(route, scope_scorecard(scorecard, objective_ids)))
    return scopes


def idempotency_key(target: str, kind: str, scorecard: Scorecard, payload: Any) -> str:
    """Stable for one message of one pass; differs for any other message."""
    body = json.dumps(payload, sort_keys=True, default=str)
    seed = f"{target}|{kind}|{scorecard.cycle.name}|{scorecard.cycle.as_of.isoformat()}|{body}"
    return "okr-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _slack_payload(rendered: Any) -> dict[str, Any]:
    return {"text": rendered.text, "blocks": list(rendered.blocks)}


def render_for(target: RouteTarget, kind: OutboxKind, scorecard: Scorecard,
               jira_base_url: str | None) -> dict[str, Any] | None:
    """The payload of one message kind for one target, or ``None`` when there is no news."""
    if target.slack is not None:
        if kind == "scorecard":
            return _slack_payload(render_slack_scorecard(scorecard, jira_base_url=jira_base_url))
        if kind == "change_note":
            note = render_slack_change_note(scorecard, scorecard.changes)
            return None if note is None else _slack_payload(note)
        if kind == "digest":
            return _slack_payload(render_slack_digest(scorecard))
        reminder = render_slack_checkin_reminder(scorecard)
        return None if reminder is None else _slack_payload(reminder)
    if kind == "scorecard":
        card: dict[str, Any] | None = render_teams_scorecard_card(
            scorecard, jira_base_url=jira_base_url)
    elif kind == "change_note":
        card = render_teams_change_card(scorecard, scorecard.changes)
    elif kind == "digest":
        card = render_teams_digest_card(scorecard)
    else:
        card = render_teams_checkin_reminder_card(scorecard)
    return None if card is None else {"card": card}


def _message(route: str, target: RouteTarget, kind: OutboxKind, scorecard: Scorecard,
             jira_base_url: str | None) -> OutboxItem | None:
    payload = render_for(target, kind, scorecard, jira_base_url)
    if payload is None:
        return None
    return OutboxItem(
        idempotency_key=idempotency_key(target.key, kind, scorecard, payload),
        route=route,
        target=target.key,
        kind=kind,
        payload=payload,
    )


def plan_messages(
    plan: Plan,
    scorecard: Scorecard,
    store: Store | None,
    *,
    jira_base_url: str | None = None,
) -> list[OutboxItem]:
    """Messages a pass enqueues: standing scorecards where needed, change notes for news."""
    refs: Mapping[str, bool] = {}
    if store is not None:
        refs = {
            target.key: store.get_message_ref(target.key, "scorecard") is not None
            or _has_pending(store, target.key)
            for targets in plan.routes.values()
            for target in targets
        }
    messages: list[OutboxItem] = []
    for scope in route_scopes(plan, scorecard):
        news = bool(scope.scorecard.changes)
        for target in plan.routes[scope.route]:
            editable = target.teams_workflow is None
            has_standing = refs.get(target.key, False)
            if editable and (news or not has_standing):
                item = _message(scope.route, target, "scorecard", scope.scorecard, jira_base_url)
                if item is not None:
                    messages.append(item)
            elif not editable and not has_standing:
                # A Workflows post cannot be edited: post the scorecard once, then news only.
                item = _message(scope.route, target, "scorecard", scope.scorecard, jira_base_url)
                if item is not None:
                    messages.append(item)
                continue
            if news:
                note = _message(scope.route, target, "change_note", scope.scorecard, jira_base_url)
                if note is not None:
                    messages.append(note)
    return messages


def plan_scheduled(plan: Plan, scorecard: Scorecard, kind: OutboxKind,
                   jira_base_url: str | None = None) -> list[OutboxItem]:
    """A weekly digest or a check-in reminder for every route (the service's schedule)."""
    messages = []
    for scope in route_scopes(plan, scorecard):
        for target in plan.routes[scope.route]:
            item = _message(scope.route, target, kind, scope.scorecard, jira_base_url)
            if item is not None:
                messages.append(item)
    return messages


def _has_pending(store: Store, target: str) -> bool:
    # A standing message that is queued but not yet delivered counts as existing,
    # so a slow target is not handed a second "first" scorecard.
    return any(row.kind == "scorecard" for row in store.list_outbox(target=target,
                                                                    status="pending"))
