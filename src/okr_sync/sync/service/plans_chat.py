"""Check-ins from Slack and Teams in ``serve --plans``: one Slack app and one Teams bot
for every plan of the folder, on every replica.

A request is routed to its plan first, then answered by the single-plan handler of
that plan (:class:`.slack_interactions.SlackInteractions`,
:class:`.bot_framework.BotMessagingEndpoint`) on the plan's own store:

- a "Check in" button's value (``<plan>:<KR>``), the modal's ``private_metadata``
  (the same) and a Teams form's ``data.plan`` name the plan
  (:mod:`okr_sync.sync.delivery.render.checkin_plan`);
- ``/okr checkin KR`` and ``/okr explain KR`` find the plan by the KR id when exactly
  one plan has it; otherwise the person is asked for ``plan:KR`` and told which plans
  have it; ``/okr status [plan]`` names the plan unless the folder holds one.

Any replica answers, whether or not it holds the plan's lease: the check-in is a
plain insert into the plan's store (the run lock and fencing guard pass commits and
outbox claims, which this does not touch; a pass running meanwhile reads it, or the
next one does), and the pass is asked for through
:meth:`.multi.PlanCoordinator.request_pass` (the plan's worker here, else the store
flag its lease holder collects, as for a Jira webhook). Slack's replay protection is
shared by the replicas: accepted signatures go to the configured database
(``Store.first_sighting``), so a replay to another replica is refused too.
"""

from __future__ import annotations

import difflib
import logging
import shlex
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from okr_sync.config.plan import Plan
from okr_sync.config.settings import Settings
from okr_sync.connectors.teams.bot_auth import (
    BotFrameworkKeys,
    BotTokenValidator,
)
from okr_sync.sync.delivery.render.checkin_plan import PLAN_SEPARATOR, split_plan_ref
from okr_sync.sync.delivery.render.slack_checkin import (
    CHECKIN_ACTION,
    CHECKIN_VIEW,
    HELP_TEXT,
    NOTE_INPUT,
)
from okr_sync.sync.delivery.render.teams_checkin import checkin_refused_card
from okr_sync.sync.service.bot_framework import (
    MAX_ACTIVITY_BYTES,
    BotMessagingEndpoint,
    _invoke_card,
    admission_refusal,
    read_activity,
)
from okr_sync.sync.service.multi import PlanCoordinator
from okr_sync.sync.service.plans import FolderPlan
from okr_sync.sync.service.slack_interactions import (
    MAX_BODY_BYTES,
    BackgroundWork,
    SlackInteractions,
    SlackPorts,
    _ack,
    _ephemeral,
    _json,
    slack_ports,
    verified_form,
)
from okr_sync.sync.service.slack_requests import (
    SlackRequestError,
    interaction_payload,
    parse_slash_command,
)
from okr_sync.sync.service.slack_signature import SlackVerifier
from okr_sync.sync.service.webhooks import WebhookEvent

log = logging.getLogger("okr_sync.service.slack")

PLANS_HELP = ("With several plans: `/okr checkin PLAN:KR …` when a key result id is in "
              "more than one plan, `/okr status PLAN` for one plan's scorecard.")


class Unrouted(Exception):
    """The plan of a request could not be told; the message says why (to the person)."""


class PlansChat:
    """``/slack/commands``, ``/slack/interactions`` and ``/api/messages`` of every plan."""

    def __init__(self, coordinator: PlanCoordinator, settings: Settings, *,
                 clock: Callable[[], datetime], keys: BotFrameworkKeys | None = None) -> None:
        self.coordinator = coordinator
        self.clock = clock
        self._guard = threading.Lock()
        self._slack: dict[str, tuple[tuple[float, int], SlackInteractions]] = {}
        self._bots: dict[str, tuple[tuple[float, int], BotMessagingEndpoint]] = {}
        secret = settings.slack_signing_secret
        self.verifier: SlackVerifier | None = None
        if secret is not None:
            shared = coordinator.store
            self.verifier = SlackVerifier(
                secret, clock=clock,
                first_sighting=lambda key, ttl, now: shared.first_sighting(key, ttl, now=now))
            self.work = BackgroundWork()
            self.ports = slack_ports(settings, lambda kr: None)
            log.info("slack check-ins: POST /slack/commands and /slack/interactions answer "
                     "for every plan", extra={"modal": self.ports.open_view is not None})
        self.validator: BotTokenValidator | None = None
        if settings.teams_bot_checkins and settings.teams_app_id is not None:
            self.validator = BotTokenValidator(
                settings.teams_app_id,
                keys or BotFrameworkKeys(settings.teams_openid_metadata_url))
        self.tenant_ids = settings.teams_tenant_id_set

    def close(self) -> None:
        if self.verifier is not None:
            self.work.close()
        if self.validator is not None:
            self.validator.keys.close()

    # -- routing ---------------------------------------------------------------------------

    def route(self, ref: str) -> tuple[str, str]:
        """(plan, KR) for ``plan:KR``, or for a KR id exactly one plan has; else Unrouted."""
        plans = self.coordinator.folder.plans
        plan_id, kr_id = split_plan_ref(ref, plans)
        if plan_id is not None:
            if kr_id not in _kr_ids(plans[plan_id].plan):
                raise Unrouted(f"plan {plan_id} has no key result {kr_id[:128]!r}")
            return plan_id, kr_id
        having = sorted(p for p, folder_plan in plans.items()
                        if ref in _kr_ids(folder_plan.plan))
        if len(having) == 1:
            return having[0], ref
        if having:
            raise Unrouted(
                f"{ref[:128]} is a key result of several plans ({', '.join(having)}): say "
                f"which, e.g. `/okr checkin {having[0]}{PLAN_SEPARATOR}{ref[:128]} …`")
        every = sorted({k for p in plans.values() for k in _kr_ids(p.plan)})
        close = difflib.get_close_matches(ref, every, n=1, cutoff=0.6)
        hint = f": did you mean {close[0]}?" if close else ""
        raise Unrouted(f"unknown key result {ref[:128]!r} in every plan{hint}")

    def _plan_ids(self) -> str:
        return ", ".join(sorted(self.coordinator.folder.plans)) or "none"

    def _ask_pass(self, plan_id: str, origin: str) -> Callable[[str], None]:
        return lambda kr: self.coordinator.request_pass(
            plan_id, WebhookEvent(f"{origin}-checkin:{kr}"))

    def _served(self, plan_id: str) -> FolderPlan:
        """The plan, read once: the folder may drop it between routing and answering."""
        folder_plan = self.coordinator.folder.plans.get(plan_id)
        if folder_plan is None:
            raise Unrouted(f"the plan {plan_id[:128]!r} is no longer served here")
        return folder_plan

    def slack_for(self, plan_id: str) -> SlackInteractions:
        """The plan's Slack handler (made again when its plan file changed)."""
        assert self.verifier is not None
        folder_plan = self._served(plan_id)
        with self._guard:
            cached = self._slack.get(plan_id)
            if cached is not None and cached[0] == folder_plan.stamp:
                return cached[1]
            open_view = self.ports.open_view

            def tagged_view(trigger: str, view: dict[str, Any]) -> None:
                # The modal's submission must say its plan too.
                assert open_view is not None
                view = view | {"private_metadata":
                               f"{plan_id}{PLAN_SEPARATOR}{view.get('private_metadata', '')}"}
                open_view(trigger, view)

            ports = SlackPorts(open_view=None if open_view is None else tagged_view,
                               respond=self.ports.respond,
                               on_checkin=self._ask_pass(plan_id, "slack"))
            handler = SlackInteractions(folder_plan.plan, self.coordinator.plan_store(plan_id),
                                        self.verifier, ports, clock=self.clock, work=self.work)
            self._slack[plan_id] = (folder_plan.stamp, handler)
            return handler

    # -- Slack -----------------------------------------------------------------------------

    def slack(self, request: Request) -> Response:
        if self.verifier is None:
            return _json(404, {"error": "not found"})
        form = verified_form(request, self.verifier, MAX_BODY_BYTES)
        if isinstance(form, Response):
            return form
        try:
            if request.path.endswith("/commands"):
                return self.command(form)
            return self.interaction(interaction_payload(form))
        except (SlackRequestError, Unrouted) as error:
            return _json(200, _ephemeral(f"Sorry: {error}"))

    def command(self, form: Mapping[str, str]) -> Response:
        command = parse_slash_command(form)
        name, args = command.subcommand, command.args
        plans = self.coordinator.folder.plans
        if name in ("checkin", "explain") and args:
            try:
                plan_id, kr_id = self.route(args[0])
            except Unrouted as error:
                verb = "Not checked in" if name == "checkin" else "Sorry"
                return _json(200, _ephemeral(f"{verb}: {error}"))
            text = shlex.join([name, kr_id, *args[1:]])
            return self.slack_for(plan_id).command(dict(form) | {"text": text})
        if name == "status":
            if args and args[0] in plans:
                plan_id = args[0]
            elif not args and len(plans) == 1:
                plan_id = next(iter(plans))
            else:
                said = f"no plan {args[0][:128]!r}" if args else "several plans run here"
                return _json(200, _ephemeral(
                    f"Sorry: {said}; say which: /okr status PLAN (plans: {self._plan_ids()})"))
            return self.slack_for(plan_id).command(dict(form) | {"text": "status"})
        if name in ("checkin", "explain"):
            return _json(200, _ephemeral(f"Sorry: give the key result: /okr {name} KR …"))
        if name == "help":
            return _json(200, _ephemeral(f"{HELP_TEXT}\n{PLANS_HELP}"))
        return _json(200, _ephemeral(f"Unknown command {name!r}.\n{HELP_TEXT}\n{PLANS_HELP}"))

    def interaction(self, payload: Mapping[str, Any]) -> Response:
        kind = payload.get("type")
        if kind == "block_actions":
            actions = payload.get("actions")
            action = actions[0] if isinstance(actions, list) and actions else {}
            action = action if isinstance(action, dict) else {}
            if not str(action.get("action_id") or "").startswith(CHECKIN_ACTION):
                return _ack()
            try:
                plan_id, kr_id = self.route(str(action.get("value") or ""))
            except Unrouted as error:
                url = payload.get("response_url")
                if isinstance(url, str) and url:
                    message = _ephemeral(f"Not checked in: {error}") | {"replace_original": False}
                    self.work.submit(lambda: self.ports.respond(url, message))
                return _ack()
            return self.slack_for(plan_id).button(
                dict(payload) | {"actions": [action | {"value": kr_id}]})
        if kind == "view_submission":
            view = payload.get("view")
            view = view if isinstance(view, dict) else {}
            if view.get("callback_id") != CHECKIN_VIEW:
                return _ack()
            try:
                plan_id, kr_id = self.route(str(view.get("private_metadata") or ""))
            except Unrouted as error:
                return _json(200, {"response_action": "errors",
                                   "errors": {NOTE_INPUT[0]: f"Not checked in: {error}"}})
            return self.slack_for(plan_id).submission(
                dict(payload) | {"view": view | {"private_metadata": kr_id}})
        return _ack()

    # -- Teams -----------------------------------------------------------------------------

    def bot_for(self, plan_id: str) -> BotMessagingEndpoint:
        assert self.validator is not None
        folder_plan = self._served(plan_id)
        with self._guard:
            cached = self._bots.get(plan_id)
            if cached is not None and cached[0] == folder_plan.stamp:
                return cached[1]
            endpoint = BotMessagingEndpoint(
                self.validator, plan=folder_plan.plan, clock=self.clock,
                store=self.coordinator.plan_store(plan_id),
                # Answered activity ids: one bot for every plan, on every replica.
                sightings=self.coordinator.store, tenant_ids=self.tenant_ids,
                on_checkin=self._ask_pass(plan_id, "teams"))
            self._bots[plan_id] = (folder_plan.stamp, endpoint)
            return endpoint

    def bot(self, request: Request) -> Response:
        """Route the activity to its plan's endpoint, which checks the token first."""
        if self.validator is None:
            return _json(404, {"error": "not found"})
        # Kept on the request: the plan's endpoint reads the body again.
        activity = read_activity(request, MAX_ACTIVITY_BYTES, keep=True)
        if isinstance(activity, Response):
            return activity
        data = _action_data(activity)
        plans = self.coordinator.folder.plans
        plan = data.get("plan")
        kr = data.get("kr")
        problem = "okr-sync does not know this action."
        gone = f"The plan {str(plan)[:128]!r} of this form is no longer served here."
        try:
            if isinstance(plan, str) and plan in plans:
                return self.bot_for(plan)(request)
        except Unrouted:  # dropped from the folder since the line above
            return self._unrouted(request, activity, gone)
        if isinstance(plan, str):
            problem = gone
        elif isinstance(kr, str):
            try:
                return self.bot_for(self.route(kr)[0])(request)
            except Unrouted as error:
                problem = f"Not checked in: {error}."
        return self._unrouted(request, activity, problem)

    def _unrouted(self, request: Request, activity: Mapping[str, Any], problem: str
                  ) -> Response:
        """A request no plan's endpoint takes: checked like theirs, answered with why."""
        assert self.validator is not None
        refusal = admission_refusal(self.validator, self.tenant_ids, request, activity)
        if refusal is not None:
            return refusal
        if activity.get("type") != "invoke":
            return Response(status=200)
        return _invoke_card(checkin_refused_card(problem))


def _kr_ids(plan: Plan) -> set[str]:
    return {kr.id for _, kr in plan.key_results()}


def _action_data(activity: Mapping[str, Any]) -> dict[str, Any]:
    value = activity.get("value")
    action = value.get("action") if isinstance(value, dict) else None
    data = action.get("data") if isinstance(action, dict) else None
    return data if isinstance(data, dict) else {}
