"""The service's HTTP side: ``/healthz``, ``/readyz``, ``/metrics``, ``POST /webhooks/jira``,
the HTML scorecard at ``GET /`` and ``GET /report``, Slack's ``POST /slack/commands``
and ``/slack/interactions`` (:mod:`.slack_interactions`), and the Teams bot's
``POST /api/messages`` (:mod:`.bot_framework`).

Readiness (for a load balancer or Kubernetes): the database answers, and on the
leader the last completed pass is at most three schedule periods old (before the
first one completes: leadership began less than three periods ago), and that
pass measured something: while its Jira sources fail it is not ready, with the
reason. A follower runs no passes, so it is ready whenever the database answers.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, get_sockaddr, select_address_family
from werkzeug.wrappers import Request, Response

from okr_sync.sync.delivery.render.report.data import NoScorecardError
from okr_sync.sync.service.loop import StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.request_io import match_route
from okr_sync.sync.service.server import BoundedWSGIServer, ConnectionLimits
from okr_sync.sync.service.webhooks import MAIN_SOURCE, SOURCE_ENVIRON_KEY
from okr_sync.sync.state import SnapshotError
from okr_sync.sync.store.database import is_sqlite_memory

log = logging.getLogger("okr_sync.service")

#: The leader is stale (not ready) when its last completed pass is this many periods old.
STALE_PERIODS = 3
DB_TIMEOUT_S = 3


class DatabaseProbe:
    """Whether the state store answers, on a connection of its own.

    Not through the store's engine: its SQLite transactions begin IMMEDIATE and
    would queue behind a pass that is writing. A SQLite file is opened read-write
    without creating it, so a vanished database is reported, not silently re-made.
    """

    def __init__(self, database_url: str) -> None:
        self._url = make_url(database_url)
        self._engine: sa.Engine | None = None
        if self._url.get_backend_name() != "sqlite":
            self._engine = sa.create_engine(
                self._url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                connect_args={"connect_timeout": DB_TIMEOUT_S},
            )

    def __call__(self) -> str | None:
        """None when reachable, else a short reason (no connection details)."""
        try:
            if self._engine is not None:
                with self._engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            elif not is_sqlite_memory(self._url):
                path = quote(self._url.database or "")
                conn3 = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=DB_TIMEOUT_S)
                try:
                    conn3.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                finally:
                    conn3.close()
        except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as error:
            return f"database unreachable ({type(error).__name__})"
        return None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None = None


def assess_readiness(
    view: StatusView, now: datetime, period: timedelta, database_problem: str | None
) -> Readiness:
    """Pure readiness rule (see the module docstring)."""
    if database_problem is not None:
        return Readiness(False, database_problem)
    if view.role == "stopped":
        return Readiness(False, "stopping")
    if view.role != "leader":
        return Readiness(True)
    if view.source_problem is not None:
        # Serving the last scorecard as if current would be a false message.
        return Readiness(False, f"Jira sources failing: {view.source_problem}"[:500])
    limit = period * STALE_PERIODS
    if view.last_success_at is not None and (
        view.leader_since is None or view.last_success_at >= view.leader_since
    ):
        age = now - view.last_success_at
        if age <= limit:
            return Readiness(True)
        return Readiness(False, f"last completed pass {age.total_seconds():.0f}s ago "
                                f"(limit {limit.total_seconds():.0f}s)")
    since = view.leader_since or view.started_at
    if now - since < limit:
        return Readiness(True)
    return Readiness(False, f"no pass completed in {(now - since).total_seconds():.0f}s "
                            f"(limit {limit.total_seconds():.0f}s)")


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class ServiceApp:
    """The WSGI application of ``okr-sync serve``."""

    def __init__(
        self,
        *,
        status: Callable[[], StatusView],
        period: Callable[[datetime], timedelta],
        metrics: ServiceMetrics,
        webhook: Callable[[Request], Response],
        database_probe: Callable[[], str | None],
        clock: Callable[[], datetime],
        bot: Callable[[Request], Response] | None = None,
        report: Callable[[], str] | None = None,
        slack: Callable[[Request], Response] | None = None,
    ) -> None:
        self.status = status
        #: ``POST /api/messages``, the Teams bot's messaging endpoint (None: 404).
        self.bot = bot
        #: The HTML scorecard of the latest pass (raises NoScorecardError before one).
        self.report = report
        self.period = period
        self.metrics = metrics
        self.webhook = webhook
        self.database_probe = database_probe
        self.clock = clock
        #: ``/slack/commands`` and ``/slack/interactions`` (slack_interactions.py), when
        #: a Slack signing secret is set; else they are not found.
        self.slack = slack
        self.routes = Map([
            Rule("/slack/commands", endpoint="slack", methods=["POST"]),
            Rule("/slack/interactions", endpoint="slack", methods=["POST"]),
            Rule("/healthz", endpoint="healthz", methods=["GET"]),
            Rule("/readyz", endpoint="readyz", methods=["GET"]),
            Rule("/metrics", endpoint="metrics", methods=["GET"]),
            Rule("/webhooks/jira", endpoint="webhook", methods=["POST"]),
            Rule("/webhooks/jira/<source>", endpoint="webhook", methods=["POST"]),
            Rule("/", endpoint="report", methods=["GET"]),
            Rule("/report", endpoint="report", methods=["GET"]),
            Rule("/api/messages", endpoint="bot", methods=["POST"]),
        ])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def dispatch(self, request: Request) -> Response:
        matched = match_route(self.routes, request)
        if isinstance(matched, Response):
            return matched
        endpoint, arguments = matched
        try:
            if endpoint == "healthz":
                return _json(200, {"status": "ok"})
            if endpoint == "bot":
                return self.bot(request) if self.bot else _json(404, {"error": "not found"})
            if endpoint == "readyz":
                return self.readyz()
            if endpoint == "metrics":
                body, content_type = self.metrics.exposition()
                return Response(body, status=200, content_type=content_type)
            if endpoint == "report":
                return self.report_page()
            if endpoint == "slack":
                return self.slack(request) if self.slack else _json(404, {"error": "not found"})
            # The webhook handler reads the source its path names (webhooks.source_of).
            request.environ[SOURCE_ENVIRON_KEY] = arguments.get("source", MAIN_SOURCE)
            return self.webhook(request)
        except Exception:
            log.exception("request failed", extra={"path": request.path})
            return _json(500, {"error": "internal error"})

    def report_page(self) -> Response:
        if self.report is None:
            return _json(404, {"error": "not found"})
        return report_response(self.report)

    def readyz(self) -> Response:
        view = self.status()
        now = self.clock()
        result = assess_readiness(view, now, self.period(now), self.database_probe())
        body: dict[str, Any] = {
            "status": "ready" if result.ready else "not ready",
            "role": view.role,
            "leader_since": _iso(view.leader_since),
            "last_success": _iso(view.last_success_at),
            "last_outcome": view.last_outcome,
            "passes": view.passes,
        }
        if result.reason is not None:
            body["reason"] = result.reason
        if view.failing_sources:
            # One Jira source down does not make the service unready while another's KRs
            # are measured; it is named, so an operator sees which site to look at.
            body["failing_sources"] = list(view.failing_sources)
            body["source_failures"] = [line[:300] for line in view.source_failures]
        return _json(200 if result.ready else 503, body)


class _Handler(WSGIRequestHandler):
    """Access lines go through logging (structured), not straight to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("http request", extra={"method": self.command, "path": self.path,
                                          "status": str(code)})

    def log_error(self, format: str, *args: Any) -> None:
        log.warning("http server: " + format % args)

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        # A client that goes away is routine on a public port: one line, no traceback.
        log.info("http client disconnected", extra={"path": self.path,
                                                    "error": type(error).__name__})


class UnsignedWebhookRefusal:
    """``POST /webhooks/jira`` when serve has no webhook secret and the operator did not
    opt in to unsigned deliveries (DESIGN A4): 403, and no pass is triggered."""

    def __init__(self, on_result: Callable[[str], None] | None = None) -> None:
        self.on_result = on_result or (lambda result: None)

    def __call__(self, request: Request) -> Response:
        log.warning("webhook refused: no OKR_SYNC_WEBHOOK_SECRET is set",
                    extra={"remote": request.remote_addr})
        self.on_result("unsigned_refused")
        return _json(403, {"error": "webhooks are refused: the service has no webhook secret "
                                    "(OKR_SYNC_WEBHOOK_SECRET)"})


class ListenError(OSError):
    """The HTTP port cannot be opened (in use, not permitted): a usage error at the CLI."""


class HttpServer:
    """A bounded Werkzeug server (:mod:`okr_sync.sync.service.server`) on ``host:port``
    (0: any free port), accepting in a thread of its own."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, host: str, port: int,
                 limits: ConnectionLimits | None = None,
                 on_cut_short: Callable[[str], None] | None = None) -> None:
        # The socket is bound here, not by Werkzeug, which prints a busy port's error
        # and calls sys.exit(1) instead of raising.
        family = select_address_family(host, port)
        try:
            with socket.socket(family, socket.SOCK_STREAM) as listener:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(get_sockaddr(host, port, family))
                listener.listen(socket.SOMAXCONN)
                # Werkzeug duplicates the descriptor, so this one may close.
                self._server = BoundedWSGIServer(
                    host, port, app, handler=_Handler, fd=listener.fileno(), limits=limits,
                    on_cut_short=on_cut_short,
                )
        except OSError as error:
            raise ListenError(error.errno, f"cannot listen on {host} port {port}: "
                              f"{error.strerror or error}") from error
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="okr-sync-http", daemon=True,
        )

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.port)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def report_response(render: Callable[[], str]) -> Response:
    """``GET /report``: the rendered scorecard page, or why there is none (JSON)."""
    try:
        page = render()
    except NoScorecardError as error:
        return _json(404, {"error": str(error)})
    except SnapshotError:
        return _json(503, {"error": "the stored scorecard cannot be read by this version"})
    response = Response(page, status=200, mimetype="text/html")
    # The page is the state of the last pass: a cache must not serve an older one.
    response.headers["Cache-Control"] = "no-store"
    return response
