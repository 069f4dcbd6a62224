"""The HTTP side and the main loop of ``okr-sync serve --plans DIR``.

Endpoints: ``/healthz``; ``/readyz``, this replica's summary: ready (200) while the
database answers and its last lease round succeeded, with every plan running here and
its own readiness in the body (a plan whose Jira fails does not take the replica - and
the other plans' webhooks - out of the load balancer); ``/readyz/<plan>``, one plan:
on the replica running it the single-plan rule (fresh pass, Jira sources answering),
elsewhere which replica runs it (200) or that none does (503); ``/metrics`` with a
``plan`` label (:mod:`.plan_metrics`); ``POST /webhooks/jira``, for every plan;
``GET /`` (and ``/report``), the list of plans, and ``GET /report/<plan>``, a plan's
HTML scorecard from its own store (any replica serves any plan); Slack's
``POST /slack/commands`` and ``/slack/interactions`` and the Teams bot's
``POST /api/messages``, routed to their plan by :mod:`.plans_chat`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from okr_sync.config.settings import Settings
from okr_sync.connectors.teams.bot_auth import BotFrameworkKeys
from okr_sync.exit_codes import ExitCode
from okr_sync.sync.logs import register_secret
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.http import (
    DatabaseProbe,
    HttpServer,
    UnsignedWebhookRefusal,
    _iso,
    _json,
    assess_readiness,
    report_response,
)
from okr_sync.sync.service.loop import DEFAULT_DEBOUNCE, MIN_SLEEP_S
from okr_sync.sync.service.multi import PlanCoordinator
from okr_sync.sync.service.plan_worker import PlanWorker
from okr_sync.sync.service.plans import FolderPlan, plan_id_of
from okr_sync.sync.service.plans_chat import PlansChat
from okr_sync.sync.service.request_io import match_route
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import MAIN_SOURCE, SOURCE_ENVIRON_KEY, JiraWebhookEndpoint

log = logging.getLogger("okr_sync.service")


class PlansApp:
    """The WSGI application of ``serve --plans``."""

    def __init__(self, coordinator: PlanCoordinator, *, webhook: Callable[[Request], Response],
                 database_probe: Callable[[], str | None],
                 clock: Callable[[], datetime], chat: PlansChat | None = None,
                 jira_sites: Sequence[str] = (),
                 source_sites: Mapping[str, str] | None = None) -> None:
        self.coordinator = coordinator
        self.chat = chat
        self.jira_sites = jira_sites
        self.source_sites = source_sites
        self.webhook = webhook
        self.database_probe = database_probe
        self.clock = clock
        self.routes = Map([
            Rule("/healthz", endpoint="healthz", methods=["GET"]),
            Rule("/readyz", endpoint="readyz", methods=["GET"]),
            Rule("/readyz/<plan>", endpoint="plan_readyz", methods=["GET"]),
            Rule("/metrics", endpoint="metrics", methods=["GET"]),
            Rule("/webhooks/jira", endpoint="webhook", methods=["POST"]),
            Rule("/webhooks/jira/<source>", endpoint="webhook", methods=["POST"]),
            Rule("/", endpoint="plans", methods=["GET"]),
            Rule("/report", endpoint="plans", methods=["GET"]),
            Rule("/report/<plan>", endpoint="report", methods=["GET"]),
            Rule("/slack/commands", endpoint="slack", methods=["POST"]),
            Rule("/slack/interactions", endpoint="slack", methods=["POST"]),
            Rule("/api/messages", endpoint="bot", methods=["POST"]),
        ])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        response = self.dispatch(Request(environ))
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def dispatch(self, request: Request) -> Response:
        matched = match_route(self.routes, request)
        if isinstance(matched, Response):
            return matched
        endpoint, args = matched
        try:
            if endpoint == "healthz":
                return _json(200, {"status": "ok"})
            if endpoint == "readyz":
                return self.readyz()
            if endpoint == "plan_readyz":
                return self.plan_readyz(str(args["plan"]))
            if endpoint == "metrics":
                body, content_type = self.coordinator.metrics.exposition()
                return Response(body, status=200, content_type=content_type)
            if endpoint == "plans":
                return self.plans_page()
            if endpoint == "report":
                return self.report(str(args["plan"]))
            if endpoint in ("slack", "bot"):
                if self.chat is None:
                    return _json(404, {"error": "not found"})
                return self.chat.slack(request) if endpoint == "slack" else self.chat.bot(request)
            # The webhook handler reads the source its path names (webhooks.source_of).
            request.environ[SOURCE_ENVIRON_KEY] = args.get("source", MAIN_SOURCE)
            return self.webhook(request)
        except Exception:
            log.exception("request failed", extra={"path": request.path})
            return _json(500, {"error": "internal error"})

    def plans_page(self) -> Response:
        """``GET /``: every plan of the folder, linking to its scorecard."""
        from html import escape

        items = "".join(
            f'<li><a href="/report/{escape(plan_id)}">{escape(plan_id)}</a> '
            f"({len(folder_plan.plan.objectives)} objectives, cycle "
            f"{escape(str(folder_plan.plan.cycle.start))} to "
            f"{escape(str(folder_plan.plan.cycle.end))})</li>"
            for plan_id, folder_plan in sorted(self.coordinator.folder.plans.items()))
        page = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>okr-sync plans"
                f"</title></head><body><h1>Plans</h1><ul>{items}</ul></body></html>")
        response = Response(page, status=200, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def report(self, plan_id: str) -> Response:
        """``GET /report/<plan>``: the plan's scorecard, read from its own store."""
        folder_plan = self.coordinator.folder.plans.get(plan_id)
        if folder_plan is None:
            return _json(404, {"error": f"no plan {plan_id!r} in the plans folder"})
        from okr_sync.sync.delivery.render.report import load_report_data, render_html_report

        store = self.coordinator.plan_store(plan_id)
        try:
            return report_response(lambda: render_html_report(load_report_data(
                store, folder_plan.plan, jira_sites=self.jira_sites,
                source_sites=self.source_sites)))
        except SQLAlchemyError as error:
            log.warning("plan report not read", extra={"plan": plan_id,
                                                       "error": type(error).__name__})
            return _json(503, {"error": f"plan {plan_id!r}'s store cannot be read (not set "
                                        "up by a first pass yet, or the database is down)"})

    @staticmethod
    def _plan_body(worker: PlanWorker, now: datetime, database_problem: str | None
                   ) -> tuple[bool, dict[str, Any]]:
        view = worker.view()
        result = assess_readiness(view, now, worker.period(now), database_problem)
        reason = result.reason or worker.setup_problem
        ready = result.ready and worker.setup_problem is None
        body: dict[str, Any] = {
            "status": "ready" if ready else "not ready", "role": view.role,
            "leader_since": _iso(view.leader_since), "last_success": _iso(view.last_success_at),
            "last_outcome": view.last_outcome, "passes": view.passes,
        }
        if reason is not None:
            body["reason"] = reason
        return ready, body

    def readyz(self) -> Response:
        now = self.clock()
        problem = self.database_probe()
        coordinator = self.coordinator
        view = coordinator.view
        plans = {plan: self._plan_body(worker, now, problem)[1]
                 for plan, worker in sorted(coordinator.local_plans().items())}
        body: dict[str, Any] = {
            "replica": coordinator.replica,
            "live_replicas": view.live_replicas,
            "plans": plans,
            "plans_in_folder": len(coordinator.folder.plans),
            "skipped_files": sorted(str(p) for p in coordinator.folder.problems),
            "last_lease_round": _iso(view.last_round_ok_at),
        }
        reason = problem
        last = view.last_round_ok_at
        if reason is None and (last is None or now - last > coordinator.ttl):
            reason = view.last_round_problem or "no lease round completed yet"
        body["status"] = "ready" if reason is None else "not ready"
        if reason is not None:
            body["reason"] = reason
        return _json(200 if reason is None else 503, body)

    def plan_readyz(self, plan: str) -> Response:
        coordinator = self.coordinator
        now = self.clock()
        worker = coordinator.local_plans().get(plan)
        if worker is not None:
            ready, body = self._plan_body(worker, now, self.database_probe())
            body |= {"plan": plan, "replica": coordinator.replica}
            return _json(200 if ready else 503, body)
        for path, problem in coordinator.folder.problems.items():
            if plan_id_of(path) == plan:
                return _json(503, {"plan": plan, "status": "not ready", "reason": problem.text})
        if plan not in coordinator.folder.plans:
            return _json(404, {"error": f"no plan {plan!r} in the plans folder"})
        lease = coordinator.view.leases.get(plan)
        if lease is None or not lease.live(now):
            return _json(503, {"plan": plan, "status": "not ready",
                               "reason": "no live replica runs this plan"})
        return _json(200, {"plan": plan, "status": "elsewhere", "replica": lease.replica,
                           "lease_expires": _iso(lease.expires_at)})


def serve_plans(
    folder: Path,
    settings: Settings,
    schedule: Schedule,
    *,
    runtime_factory: Callable[[Settings, FolderPlan], Runtime],
    check: Callable[..., None] | None = None,
    port: int = 8080,
    host: str = "0.0.0.0",  # noqa: S104 - a container service listens on all interfaces
    webhook_secret: SecretStr | None = None,
    allow_unsigned_webhooks: bool = False,
    clock: Callable[[], datetime],
    stop_event: threading.Event | None = None,
    install_signal_handlers: bool = True,
    debounce: timedelta = DEFAULT_DEBOUNCE,
    poll: timedelta | None = None,
    replica: str | None = None,
    on_started: Callable[[PlanCoordinator, int], None] | None = None,
    bot_keys: BotFrameworkKeys | None = None,
) -> int:
    """Run the plans of ``folder`` until stopped; returns the exit code (0 when stopped).

    The configured database's store is opened (and migrated) for the lease tables; a
    database that cannot be used raises here, before anything listens.
    """
    for secret in (webhook_secret, make_url(settings.database_url).password,
                   *settings.secret_values()):
        register_secret(secret)
    coordinator = PlanCoordinator(folder, settings, schedule, runtime_factory=runtime_factory,
                                  check=check, clock=clock, replica=replica,
                                  debounce=debounce, poll=poll)
    stop = stop_event if stop_event is not None else threading.Event()
    probe = DatabaseProbe(settings.database_url)
    try:
        counter = coordinator.metrics.webhooks
        # A source that signs with a secret of its own (OKR_SYNC_JIRA__<NAME>__WEBHOOK_SECRET)
        # posts to /webhooks/jira/<name>; a delivery concerns every plan either way.
        source_secrets = {name.lower(): source.webhook_secret
                          for name, source in settings.jira.items()
                          if source.webhook_secret is not None}
        webhook: Callable[[Request], Response] = (
            UnsignedWebhookRefusal(lambda r: counter.labels(r).inc())
            if webhook_secret is None and not allow_unsigned_webhooks and not source_secrets
            else JiraWebhookEndpoint(webhook_secret, coordinator.on_webhook, clock=clock,
                                     on_result=lambda r: counter.labels(r).inc(),
                                     source_secrets=source_secrets,
                                     sources={s.lower() for s in settings.connected_sources()}
                                     | {MAIN_SOURCE},
                                     allow_unsigned=allow_unsigned_webhooks)
        )
        chat = PlansChat(coordinator, settings, clock=clock, keys=bot_keys)
        server = HttpServer(PlansApp(coordinator, webhook=webhook, database_probe=probe,
                                     clock=clock, chat=chat, jira_sites=settings.jira_sites(),
                                     source_sites=settings.jira_source_sites()),
                            host=host, port=port)
        server.start()
        try:
            log.info("listening", extra={"host": server.host, "port": server.port,
                                         "schedule": schedule.describe(), "plans": str(folder),
                                         "replica": coordinator.replica,
                                         "lease_s": coordinator.ttl.total_seconds()})
            if on_started is not None:
                on_started(coordinator, server.port)
            with _signals(stop, enabled=install_signal_handlers) as hurry:
                _loop(coordinator, stop)
                log.info("stopping: every plan finishes its current step")
                coordinator.stop_all(wait=not hurry.is_set())
        finally:
            server.stop()
            chat.close()
            log.info("stopped", extra={"replica": coordinator.replica})
    finally:
        probe.close()
        coordinator.close()
    return ExitCode.OK


def _loop(coordinator: PlanCoordinator, stop: threading.Event) -> None:
    while not stop.is_set():
        started = coordinator.clock()
        coordinator.round()
        spent = (coordinator.clock() - started).total_seconds()
        stop.wait(max(MIN_SLEEP_S, coordinator.heartbeat.total_seconds() - spent))


@contextmanager
def _signals(stop: threading.Event, *, enabled: bool) -> Iterator[threading.Event]:
    """First SIGTERM/SIGINT: stop after every plan's current step. A second one: exit
    without waiting (passes in flight end with the process; their locks go with it)."""
    hurry = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield hurry
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():
            hurry.set()
            raise SystemExit(ExitCode.OK)
        log.info("stopping: the current steps finish first (signal again to abandon)",
                 extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield hurry
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
