"""``okr-sync serve``: scheduled syncs, webhooks, health and metrics, until SIGTERM.

:func:`serve` wires the pieces: the :class:`~okr_sync.sync.service.loop.Scheduler`
(on the calling thread), the HTTP server (:mod:`okr_sync.sync.service.http`, its own
threads) and the signal handlers. The first SIGTERM or SIGINT stops the loop once
the current step is done (a running pass finishes); a second one abandons the
running pass (its run is recorded as failed, the transaction rolls back, outbox
rows in flight are settled by the next pass as after a crash). Either way the run
lock and the leadership are released, the HTTP server stops, and serve returns 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from werkzeug.wrappers import Request, Response

from okr_sync.connectors.teams.bot_auth import BotFrameworkKeys, BotTokenValidator
from okr_sync.exit_codes import ExitCode
from okr_sync.sync.delivery.render.report import load_report_data, render_html_report
from okr_sync.sync.logs import register_secret
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.bot_framework import BotMessagingEndpoint
from okr_sync.sync.service.framing import MAX_HEAD_BYTES
from okr_sync.sync.service.http import (
    DatabaseProbe,
    HttpServer,
    ServiceApp,
    UnsignedWebhookRefusal,
)
from okr_sync.sync.service.loop import (
    DEFAULT_DEBOUNCE,
    PassAbandoned,
    Scheduler,
    StatusView,
)
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule, ScheduleError, parse_duration
from okr_sync.sync.service.server import ConnectionLimits
from okr_sync.sync.service.slack_interactions import build_slack_endpoint
from okr_sync.sync.service.webhooks import MAX_BODY_BYTES, JiraWebhookEndpoint, WebhookEvent
from okr_sync.sync.store.locks import Leadership
from okr_sync.sync.store.store import Store

__all__ = [
    "Schedule",
    "ScheduleError",
    "ServiceHandle",
    "parse_duration",
    "serve",
]

log = logging.getLogger("okr_sync.service")



def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceHandle:
    """Given to ``on_started`` once the HTTP server listens (e.g. to learn port 0's port)."""

    host: str
    port: int
    scheduler: Scheduler
    metrics: ServiceMetrics

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def status(self) -> StatusView:
        return self.scheduler.state.view()

    def stop(self) -> None:
        self.scheduler.stop()


def serve(
    runtime_factory: Callable[[], Runtime],
    schedule: Schedule,
    *,
    port: int = 8080,
    host: str = "0.0.0.0",  # noqa: S104 - a container service listens on all interfaces
    webhook_secret: SecretStr | None = None,
    allow_unsigned_webhooks: bool = False,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] | None = None,
    stop_event: threading.Event | None = None,
    install_signal_handlers: bool = True,
    debounce: timedelta = DEFAULT_DEBOUNCE,
    poll: timedelta | None = None,
    max_body: int = MAX_BODY_BYTES,
    holder: str | None = None,
    metrics: ServiceMetrics | None = None,
    on_started: Callable[[ServiceHandle], None] | None = None,
    max_ticks: int | None = None,
) -> int:
    """Run the service until stopped; returns the exit code (0 after a graceful stop).

    ``runtime_factory`` connects (store, clients); it is called once, and its
    errors (ConfigurationError, SchemaError) propagate for the CLI to report.
    ``stop_event``, when given, stops the service when set (tests, embedding).
    Signal handlers are installed only when called on the main thread. A busy
    port raises OSError before anything runs. ``/`` and ``/report`` serve the HTML
    scorecard of the runtime's store.
    """
    runtime = runtime_factory()
    try:
        for secret in _secrets(runtime, webhook_secret):
            register_secret(secret)
        metrics = metrics if metrics is not None else ServiceMetrics()
        leadership = Leadership(runtime.settings.database_url, "leader", holder=holder)
        scheduler = Scheduler(
            runtime, schedule, leadership=leadership, metrics=metrics, clock=clock,
            debounce=debounce, poll=poll,
        )
        probe = DatabaseProbe(runtime.settings.database_url)
        # A check-in from Teams asks for a pass (debounced like a webhook), so the change
        # note with its note follows within moments rather than at the next scheduled pass.
        bot = bot_endpoint(runtime, clock, on_checkin=lambda kr: scheduler.on_webhook(
            WebhookEvent(f"teams-checkin:{kr}")))
        counter = metrics.webhooks

        def count_webhook(result: str) -> None:
            counter.labels(result).inc()

        source_secrets = webhook_secrets(runtime)
        webhook: Callable[[Request], Response] = (
            UnsignedWebhookRefusal(count_webhook)
            if webhook_secret is None and not allow_unsigned_webhooks and not source_secrets
            else JiraWebhookEndpoint(webhook_secret, scheduler.on_webhook, clock=clock,
                                     max_body=max_body, on_result=count_webhook,
                                     source_secrets=source_secrets,
                                     sources={n.lower() for n in runtime.plan.jira} | {"main"},
                                     allow_unsigned=allow_unsigned_webhooks)
        )
        # A check-in from Slack asks for a pass (debounced like a webhook), so its value
        # and note reach the scorecard and the change note without waiting for the schedule.
        slack = build_slack_endpoint(
            runtime, lambda kr: scheduler.on_webhook(WebhookEvent(f"slack-checkin:{kr}")),
            clock=clock)
        app = ServiceApp(
            status=scheduler.state.view, bot=bot,
            period=lambda at: schedule.period(at.astimezone(runtime.plan.cycle.zone)),
            metrics=metrics, webhook=webhook, database_probe=probe, clock=clock,
            report=report_page(runtime), slack=slack,
        )
        # The server reads a body before a worker runs: up to the webhook's own limit.
        limits = ConnectionLimits(max_body=max_body, buffer_budget=max(
            ConnectionLimits.buffer_budget, 4 * (max_body + MAX_HEAD_BYTES)))
        server = HttpServer(app, host=host, port=port, limits=limits,
                            on_cut_short=webhook_cut_short(count_webhook))
        try:
            return _run(scheduler, server, schedule, webhook_secret,
                        allow_unsigned_webhooks=allow_unsigned_webhooks,
                        own_secrets=sorted(source_secrets), sleep=sleep,
                        stop_event=stop_event, install_signal_handlers=install_signal_handlers,
                        on_started=on_started, max_ticks=max_ticks)
        finally:
            if bot is not None:
                bot.close()
            probe.close()
            if slack is not None:
                slack.close()
    finally:
        runtime.close()


def bot_endpoint(runtime: Runtime, clock: Callable[[], datetime] = utc_now,
                 keys: BotFrameworkKeys | None = None,
                 on_checkin: Callable[[str], None] | None = None,
                 ) -> BotMessagingEndpoint | None:
    """``POST /api/messages`` when the bot's check-ins are on (OKR_SYNC_TEAMS_BOT_CHECKINS)."""
    settings = runtime.settings
    store = runtime.store
    if not settings.teams_bot_checkins or settings.teams_app_id is None or \
            not isinstance(store, Store):
        return None
    keys = keys or BotFrameworkKeys(settings.teams_openid_metadata_url)
    return BotMessagingEndpoint(BotTokenValidator(settings.teams_app_id, keys),
                                plan=runtime.plan, store=store, clock=clock,
                                tenant_ids=settings.teams_tenant_id_set,
                                on_checkin=on_checkin)


def webhook_secrets(runtime: Runtime) -> dict[str, SecretStr]:
    """The plan's sources that sign their webhooks with a secret of their own
    (``OKR_SYNC_JIRA__<NAME>__WEBHOOK_SECRET``); the others use OKR_SYNC_WEBHOOK_SECRET."""
    secrets = {}
    for name in runtime.plan.jira:
        connection = runtime.settings.jira.get(name.lower())
        if connection is not None and connection.webhook_secret is not None:
            secrets[name.lower()] = connection.webhook_secret  # as webhooks.source_of
    return secrets


def webhook_cut_short(count_webhook: Callable[[str], None]) -> Callable[[str], None]:
    """Counts a webhook whose body never wholly arrived, on ``/webhooks/jira`` and on each
    source's ``/webhooks/jira/<source>``, as ``disconnected``."""

    def on_cut_short(path: str) -> None:
        if path.startswith("/webhooks/jira"):
            count_webhook("disconnected")

    return on_cut_short


def report_page(runtime: Runtime) -> Callable[[], str] | None:
    """``GET /report``: the HTML scorecard from the runtime's store (None without one)."""
    store = runtime.store
    if not isinstance(store, Store):
        return None
    sites = runtime.settings.jira_sites()
    source_sites = runtime.settings.jira_source_sites()

    def page() -> str:
        return render_html_report(load_report_data(store, runtime.plan, jira_sites=sites,
                                                    source_sites=source_sites))

    return page


def _run(
    scheduler: Scheduler,
    server: HttpServer,
    schedule: Schedule,
    webhook_secret: SecretStr | None,
    *,
    allow_unsigned_webhooks: bool,
    own_secrets: list[str],
    sleep: Callable[[float], None] | None,
    stop_event: threading.Event | None,
    install_signal_handlers: bool,
    on_started: Callable[[ServiceHandle], None] | None,
    max_ticks: int | None,
) -> int:
    server.start()
    watcher = _watch(stop_event, scheduler) if stop_event is not None else None
    try:
        log.info("listening", extra={"host": server.host, "port": server.port,
                                     "schedule": schedule.describe(),
                                     "holder": scheduler.holder})
        if webhook_secret is None and allow_unsigned_webhooks:
            log.warning("no webhook secret: POST /webhooks/jira accepts unsigned requests "
                        "(OKR_SYNC_WEBHOOK_ALLOW_UNSIGNED=true)")
        elif webhook_secret is None and own_secrets:
            log.warning("no OKR_SYNC_WEBHOOK_SECRET: only the Jira sources with a webhook "
                        "secret of their own accept webhooks", extra={"sources": own_secrets})
        elif webhook_secret is None:
            log.warning("no webhook secret: POST /webhooks/jira refuses every request "
                        "(set OKR_SYNC_WEBHOOK_SECRET, or OKR_SYNC_WEBHOOK_ALLOW_UNSIGNED=true)")
        if on_started is not None:
            on_started(ServiceHandle(server.host, server.port, scheduler, scheduler.metrics))
        with _signals(scheduler, enabled=install_signal_handlers):
            try:
                scheduler.run(sleep, max_ticks=max_ticks)
            except PassAbandoned:
                log.warning("pass abandoned on a second stop signal")
    finally:
        scheduler.stop()
        if watcher is not None:
            watcher.join(timeout=5)
        try:
            scheduler.close()
        finally:
            server.stop()
            log.info("stopped", extra={"holder": scheduler.holder})
    return ExitCode.OK


def _watch(stop_event: threading.Event, scheduler: Scheduler) -> threading.Thread:
    """Relay an external stop event to the scheduler (which also wakes its sleep)."""

    def relay() -> None:
        while not scheduler.stop_event.is_set():
            if stop_event.wait(0.1):
                scheduler.stop()
                return

    thread = threading.Thread(target=relay, name="okr-sync-stop", daemon=True)
    thread.start()
    return thread


@contextmanager
def _signals(scheduler: Scheduler, *, enabled: bool) -> Iterator[None]:
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        received.append(signum)
        if len(received) == 1:
            log.info("stopping: the current step finishes first (signal again to abandon)",
                     extra={"signal": signal.Signals(signum).name})
            scheduler.stop()
        elif scheduler.pass_running:
            raise PassAbandoned()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _secrets(runtime: Runtime, webhook_secret: SecretStr | None) -> list[str | SecretStr | None]:
    """Every secret the service could come across, so log lines can mask it."""
    settings = runtime.settings
    secrets: list[str | SecretStr | None] = [
        *settings.secret_values(), webhook_secret, make_url(settings.database_url).password,
    ]
    for targets in runtime.plan.routes.values():
        for target in targets:
            if target.teams_workflow is not None:
                secrets.append(os.environ.get(target.teams_workflow.url_env))
    return secrets
