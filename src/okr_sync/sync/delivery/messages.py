"""Which messages a new scorecard deserves, per route target (rendered, not yet sent).

Quiet by design: a route gets its standing scorecard message when it has none
yet or when one of its KRs changed (``notify.min_delta``, band or confidence),
and a change note only for news. A pass with no change plans nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from okr_sync.config.plan import Plan, RouteTarget
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.delivery.addressing import Contact, Contacts, JiraBase
from okr_sync.sync.delivery.targets import TargetRef
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.store import OutboxItem, OutboxKind


@dataclass(frozen=True)
class TargetScope:
    """One destination and the part of the scorecard it is told about.

    Several routes may name the same target (one Slack channel for two teams): it
    gets one standing message covering the objectives of all of them.
    """

    route: str
    target: RouteTarget
    scorecard: Scorecard

    @property
    def ref(self) -> TargetRef:
        return TargetRef.for_route(self.target)


def scope_scorecard(scorecard: Scorecard, objective_ids: Iterable[str], *,
                    warnings: bool = True) -> Scorecard:
    """Only the given objectives, their KRs' changes and warnings (none unless
    ``warnings``: see :func:`channel_warnings`)."""
    wanted = set(objective_ids)
    objectives = tuple(o for o in scorecard.objectives if o.id in wanted)
    kr_ids = {kr.id for o in objectives for kr in o.key_results} | wanted
    return replace(
        scorecard,
        objectives=objectives,
        changes=tuple(c for c in scorecard.changes if c.kr in kr_ids),
        warnings=tuple(w for w in scorecard.warnings if w.kr is None or w.kr in kr_ids)
        if warnings else (),
    )


def channel_warnings(plan: Plan) -> bool:
    """Whether Slack and Teams messages carry the scoring warnings.

    Warnings (double counting, scope growth, items without points, stale or failed
    measures...) are for the people who run the plan: ``status``, ``explain`` and the
    report show them. Leadership channels get them only when the plan opts in with
    ``notify.warnings: channel``; a stale or unmeasured KR is marked on its own line
    either way.
    """
    return plan.notify.warnings == "channel"


def plan_contacts(plan: Plan) -> Contacts:
    """KR id -> its owner's contact, for the owners ``people`` gives chat ids."""
    contacts: dict[str, Contact] = {}
    for objective, kr in plan.key_results():
        owner = kr.owner or objective.owner
        person = plan.person(owner)
        if owner is None or person is None or (person.slack is None and person.teams is None):
            continue
        contacts[kr.id] = Contact(name=person.name or owner, slack=person.slack,
                                  teams=person.teams)
    return contacts


def target_scopes(plan: Plan, scorecard: Scorecard) -> list[TargetScope]:
    routes_of: dict[str, list[str]] = {}
    targets: dict[str, RouteTarget] = {}
    for route, route_targets in plan.routes.items():
        for target in route_targets:
            key = TargetRef.for_route(target).key
            targets.setdefault(key, target)
            if route not in routes_of.setdefault(key, []):
                routes_of[key].append(route)
    scopes = []
    warnings = channel_warnings(plan)
    for key, routes in routes_of.items():
        objective_ids = [o.id for o in plan.objectives if set(routes) & set(o.notify)]
        if objective_ids:
            scopes.append(TargetScope(",".join(routes), targets[key],
                                      scope_scorecard(scorecard, objective_ids,
                                                      warnings=warnings)))
    return scopes


def delivery_action(kind: str, target: TargetRef, has_standing_message: bool) -> str:
    """How a message reaches its target: ``post``, ``update`` (in place) or ``reply``."""
    if kind == "scorecard" and target.edits_in_place:
        return "update" if has_standing_message else "post"
    if kind == "change_note" and target.threads_notes:
        return "reply"
    return "post"


def idempotency_key(target: str, kind: str, scorecard: Scorecard, payload: Any) -> str:
    """Stable for one message of one pass; differs for any other message."""
    body = json.dumps(payload, sort_keys=True, default=str)
    seed = f"{target}|{kind}|{scorecard.cycle.name}|{scorecard.cycle.as_of.isoformat()}|{body}"
    return "okr-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _slack_payload(rendered: Any) -> dict[str, Any]:
    return {"text": rendered.text, "blocks": list(rendered.blocks)}


def render_for(target: RouteTarget, kind: OutboxKind, scorecard: Scorecard,
               jira_base_url: JiraBase, previous: Scorecard | None = None, *,
               contacts: Contacts | None = None,
               slack_buttons: bool = False,
               checkin_form: bool = False) -> dict[str, Any] | None:
    """The payload of one message kind for one target, or ``None`` when there is no news.

    ``previous`` (digests only) is the scorecard published a week earlier: the digest
    then shows the week's biggest moves. ``contacts`` mention owners in change notes
    and reminders only: the standing scorecard is edited on every sync and must not
    ping anyone. A Teams payload carries the ``summary`` its bot activity shows in
    notifications. ``slack_buttons``: Slack change notes and reminders carry "Check in"
    buttons (only when serve answers the Slack app's interactivity). ``checkin_form``: a
    bot's change notes and reminders carry check-in forms (only the bot can answer them:
    a Workflows post has no messaging endpoint).
    """
    # The renderers are imported here, for a message to render: a pass with no news
    # plans none and so imports none of them (they cost ~25 ms of CPU at start).
    from okr_sync.sync.delivery.render import (
        render_slack_change_note,
        render_slack_checkin_reminder,
        render_slack_digest,
        render_slack_scorecard,
        render_teams_change_card,
        render_teams_checkin_reminder_card,
        render_teams_digest_card,
        render_teams_scorecard_card,
        teams_summary,
    )

    form = checkin_form and target.teams_bot is not None
    if target.slack is not None:
        if kind == "scorecard":
            return _slack_payload(render_slack_scorecard(scorecard, jira_base_url=jira_base_url))
        if kind == "change_note":
            note = render_slack_change_note(scorecard, scorecard.changes, contacts=contacts,
                                            checkin_buttons=slack_buttons)
            return None if note is None else _slack_payload(note)
        if kind == "digest":
            return _slack_payload(render_slack_digest(scorecard, previous))
        reminder = render_slack_checkin_reminder(scorecard, contacts=contacts,
                                                 checkin_buttons=slack_buttons)
        return None if reminder is None else _slack_payload(reminder)
    if kind == "scorecard":
        card: dict[str, Any] | None = render_teams_scorecard_card(
            scorecard, jira_base_url=jira_base_url)
    elif kind == "change_note":
        card = render_teams_change_card(scorecard, scorecard.changes, contacts=contacts,
                                        checkin_form=form)
    elif kind == "digest":
        card = render_teams_digest_card(scorecard, previous)
    else:
        card = render_teams_checkin_reminder_card(scorecard, contacts=contacts,
                                                  checkin_form=form)
    if card is None:
        return None
    return {"card": card, "summary": teams_summary(kind, scorecard)}


def _message(route: str, target: RouteTarget, kind: OutboxKind, scorecard: Scorecard,
             jira_base_url: JiraBase, previous: Scorecard | None = None, *,
             contacts: Contacts | None = None, slack_buttons: bool = False,
             checkin_form: bool = False) -> OutboxItem | None:
    payload = render_for(target, kind, scorecard, jira_base_url, previous, contacts=contacts,
                         slack_buttons=slack_buttons, checkin_form=checkin_form)
    if payload is None:
        return None
    key = TargetRef.for_route(target).key
    return OutboxItem(
        idempotency_key=idempotency_key(key, kind, scorecard, payload),
        route=route,
        target=key,
        kind=kind,
        payload=payload,
    )


def plan_messages(
    plan: Plan,
    scorecard: Scorecard,
    store: StoreReader,
    *,
    jira_base_url: JiraBase = None,
    slack_buttons: bool = False,
    checkin_form: bool = False,
) -> list[OutboxItem]:
    """Messages a pass enqueues: standing scorecards where needed, change notes for news.

    A target has its standing scorecard when it was posted, and also while one is
    queued, so a slow target is not handed a second "first" scorecard, or failed for
    good, so a dead channel is not sent a new scorecard every pass (its failure is
    shown by `status` until the plan or channel is fixed).
    """
    scopes = target_scopes(plan, scorecard)
    # One read for every target: planning stays a constant number of queries however
    # many routes the plan has.
    known = store.target_messages([scope.ref.key for scope in scopes])
    contacts = plan_contacts(plan)
    messages: list[OutboxItem] = []
    for scope in scopes:
        target = scope.target
        news = bool(scope.scorecard.changes)
        has_standing = known[scope.ref.key].has_standing
        # A Workflows post cannot be edited: the scorecard goes out once, then news only.
        if not has_standing or (news and scope.ref.edits_in_place):
            item = _message(scope.route, target, "scorecard", scope.scorecard, jira_base_url)
            if item is not None:
                messages.append(item)
        if news and has_standing:
            note = _message(scope.route, target, "change_note", scope.scorecard, jira_base_url,
                            contacts=contacts, slack_buttons=slack_buttons,
                            checkin_form=checkin_form)
            if note is not None:
                messages.append(note)
    return messages


def plan_scheduled(plan: Plan, scorecard: Scorecard, kind: OutboxKind,
                   jira_base_url: JiraBase = None, *,
                   previous: Scorecard | None = None,
                   slack_buttons: bool = False,
                   checkin_form: bool = False) -> list[OutboxItem]:
    """A weekly digest or a check-in reminder for every target (the service's schedule);
    ``previous``: see :func:`render_for`."""
    messages = []
    contacts = plan_contacts(plan) if kind == "reminder" else None
    for scope in target_scopes(plan, scorecard):
        item = _message(scope.route, scope.target, kind, scope.scorecard, jira_base_url,
                        previous, contacts=contacts, slack_buttons=slack_buttons,
                        checkin_form=checkin_form)
        if item is not None:
            messages.append(item)
    return messages
