"""``serve``'s HTTP side under hostile clients, over real sockets on loopback.

Stalled and slow-loris connections cost no thread and are dropped; ``/healthz`` keeps
answering; a webhook client that disconnects mid-body leaves one log line, no
traceback, and no pass. Every wait is bounded and polled; nothing asserts a duration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
import requests
from pydantic import SecretStr

from okr_sync.sync.service.http import HttpServer, ServiceApp
from okr_sync.sync.service.loop import StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.server import PROBE_WORKERS, ConnectionLimits
from okr_sync.sync.service.webhooks import SIGNATURE_HEADER, JiraWebhookEndpoint, WebhookEvent, sign

_NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
SECRET = SecretStr("whsec-resources-secret")
TIMEOUT = 30.0
WORKERS = 8


def wait_until(what: str, probe: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class Harness:
    def __init__(self, limits: ConnectionLimits) -> None:
        self.events: list[WebhookEvent] = []
        self.metrics = ServiceMetrics()
        endpoint = JiraWebhookEndpoint(
            SECRET, self.events.append, clock=lambda: _NOW,
            on_result=lambda r: self.metrics.webhooks.labels(r).inc())
        app = ServiceApp(
            status=lambda: StatusView(started_at=_NOW, role="follower"),
            period=lambda at: timedelta(minutes=5), metrics=self.metrics, webhook=endpoint,
            database_probe=lambda: None, clock=lambda: _NOW)
        self.server = HttpServer(
            app, host="127.0.0.1", port=0, limits=limits,
            on_cut_short=lambda path: self.metrics.webhooks.labels("disconnected").inc())
        self.address = ("127.0.0.1", self.server.port)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def connect(self) -> socket.socket:
        conn = socket.create_connection(self.address, timeout=TIMEOUT)
        return conn

    def healthz(self, timeout: float = TIMEOUT) -> int:
        return requests.get(self.url + "/healthz", timeout=timeout).status_code

    def readyz(self, timeout: float) -> int:
        return requests.get(self.url + "/readyz", timeout=timeout).status_code


@pytest.fixture
def harness_factory() -> Iterator[Callable[[ConnectionLimits], Harness]]:
    started: list[Harness] = []

    def start(limits: ConnectionLimits) -> Harness:
        harness = Harness(limits)
        harness.server.start()
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.server.stop()


def _server_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("okr-sync-http"))


def _closed_by_server(conn: socket.socket) -> bool:
    """Whether the server closed ``conn`` (reads EOF or a reset; blocks at most TIMEOUT)."""
    conn.settimeout(TIMEOUT)
    try:
        while conn.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_serve_http_given_200_stalled_connections_answers_healthz_with_bounded_threads(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    harness = harness_factory(ConnectionLimits(workers=WORKERS))
    with ExitStack() as stack:
        for _ in range(200):
            stack.enter_context(harness.connect())
        # Werkzeug's threaded server held one thread per stalled connection (803 for 800).
        assert harness.healthz() == 200
        assert _server_threads() <= WORKERS + PROBE_WORKERS + 1  # workers, accepting thread
        assert [harness.healthz() for _ in range(5)] == [200] * 5


#: How long /healthz and /readyz may take while slow clients drip (the issue's bound is
#: "keeps answering"; this is generous, and a worker held by a dripping body took 60 s).
ANSWER_BOUND_S = 5.0


def _drip(conns: list[socket.socket], stop: threading.Event, interval: float) -> None:
    """Send one byte on every connection each ``interval`` until ``stop`` (bounded)."""
    for _ in range(int(TIMEOUT / interval)):
        if stop.wait(interval):
            return
        for conn in conns:
            with contextlib.suppress(OSError):  # the server may have closed it
                conn.send(b"x")


def test_serve_http_given_many_clients_dripping_bodies_and_heads_keeps_answering_healthz(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    # Default timeouts: the clients below outlast none of them while the checks run.
    harness = harness_factory(ConnectionLimits(workers=WORKERS))
    stop = threading.Event()
    with ExitStack() as stack:
        bodies = [stack.enter_context(harness.connect()) for _ in range(40)]
        heads = [stack.enter_context(harness.connect()) for _ in range(40)]
        for conn in bodies:  # a whole head, then a body one byte at a time
            conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                         b"Content-Type: application/json\r\n\r\n{")
        for conn in heads:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        dripper = threading.Thread(target=_drip, args=(bodies + heads, stop, 0.5), daemon=True)
        dripper.start()
        stack.callback(dripper.join, TIMEOUT)
        stack.callback(stop.set)
        time.sleep(1.0)  # the bodies have reached the server and begun dripping
        # Before, each body-dripping client held a worker up to 60 s: 8 of them stopped
        # /healthz and /readyz for a minute.
        for _ in range(3):
            assert harness.healthz(timeout=ANSWER_BOUND_S) == 200
            assert harness.readyz(timeout=ANSWER_BOUND_S) == 200
            time.sleep(0.5)
        assert _server_threads() <= WORKERS + PROBE_WORKERS + 1
    assert harness.events == []


def test_serve_http_given_slow_loris_heads_drops_them_after_the_header_timeout(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    harness = harness_factory(ConnectionLimits(workers=WORKERS, header_timeout=1.0))
    with ExitStack() as stack:
        loris = [stack.enter_context(harness.connect()) for _ in range(50)]
        for conn in loris:  # a request head that never ends
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert harness.healthz() == 200
        assert _server_threads() <= WORKERS + PROBE_WORKERS + 1
        assert all(_closed_by_server(conn) for conn in loris)
        assert harness.healthz() == 200


def test_serve_http_given_more_waiting_connections_than_the_cap_drops_the_oldest(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    # A long header timeout: only the cap may close connections here, even on a slow machine.
    harness = harness_factory(ConnectionLimits(workers=WORKERS, pending=40, header_timeout=120))
    with ExitStack() as stack:
        first = [stack.enter_context(harness.connect()) for _ in range(40)]
        later = [stack.enter_context(harness.connect()) for _ in range(40)]
        assert harness.healthz() == 200
        # The first ones made room for the later ones and for the health check.
        assert all(_closed_by_server(conn) for conn in first[:30])
        for conn in later[-5:]:
            conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert conn.recv(64).startswith(b"HTTP/1.1 200")


def test_serve_http_given_body_dripped_past_the_request_timeout_drops_the_request(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    harness = harness_factory(ConnectionLimits(workers=WORKERS, request_timeout=1.0))
    with harness.connect() as conn:
        conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                     b"Content-Type: application/json\r\n\r\n{")
        dropped = False
        for _ in range(int(TIMEOUT / 0.2)):
            try:
                conn.sendall(b" ")
            except OSError:
                dropped = True
                break
            time.sleep(0.2)
        assert dropped or _closed_by_server(conn)
    assert harness.events == []
    assert harness.healthz() == 200


def test_serve_http_given_webhook_client_leaving_mid_body_logs_one_line_no_traceback(
    harness_factory: Callable[[ConnectionLimits], Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness = harness_factory(ConnectionLimits(workers=WORKERS))
    body = json.dumps({"webhookEvent": "jira:issue_updated"}).encode()
    with harness.connect() as conn:
        conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"{SIGNATURE_HEADER}: {sign(SECRET, body)}\r\n\r\n".encode() + body)
    line = "http client disconnected before sending its whole request body"
    wait_until("the disconnect to be logged",
               lambda: any(r.getMessage() == line for r in caplog.records))
    assert harness.healthz() == 200
    assert [r for r in caplog.records if r.exc_info] == []
    assert "Traceback" not in caplog.text
    assert [r.getMessage() for r in caplog.records].count(line) == 1
    assert harness.events == []
    exposition = harness.metrics.exposition()[0].decode()
    assert 'okr_sync_webhooks_total{result="disconnected"} 1.0' in exposition


def _answer(conn: socket.socket) -> bytes:
    conn.settimeout(TIMEOUT)
    received = b""
    while chunk := conn.recv(4096):
        received += chunk
    return received


def test_serve_http_given_expect_100_continue_body_answers_continue_once_then_accepts(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    harness = harness_factory(ConnectionLimits(workers=WORKERS))
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-1"}}).encode()
    with harness.connect() as conn:
        conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     + f"Content-Length: {len(body)}\r\n{SIGNATURE_HEADER}: "
                       f"{sign(SECRET, body)}\r\n\r\n".encode())
        # The body is read before any worker runs, so the server must invite it first.
        assert conn.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(body)
        answer = _answer(conn)
    assert answer.startswith(b"HTTP/1.1 202"), answer
    assert b"100 Continue" not in answer
    assert [event.issue_key for event in harness.events] == ["OPS-1"]


def test_serve_http_given_chunked_body_split_anywhere_reads_it_whole(
    harness_factory: Callable[[ConnectionLimits], Harness],
) -> None:
    harness = harness_factory(ConnectionLimits(workers=WORKERS))
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-2"}}).encode()
    chunks = b"".join(b"%x\r\n" % len(body[i:i + 3]) + body[i:i + 3] + b"\r\n"
                      for i in range(0, len(body), 3))
    with harness.connect() as conn:
        conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     + f"{SIGNATURE_HEADER}: {sign(SECRET, body)}\r\n\r\n".encode())
        for at in range(0, len(chunks), 7):  # split anywhere, headers of chunks included
            conn.sendall(chunks[at:at + 7])
            time.sleep(0.001)
        conn.sendall(b"0\r\n\r\n")
        answer = _answer(conn)
    assert answer.startswith(b"HTTP/1.1 202"), answer
    assert [event.issue_key for event in harness.events] == ["OPS-2"]


@pytest.mark.parametrize("length", [b"\xb2", b"1" * 5000])
def test_serve_http_given_content_length_not_ascii_digits_refuses_it_and_keeps_serving(
    harness_factory: Callable[[ConnectionLimits], Harness], length: bytes,
) -> None:
    harness = harness_factory(ConnectionLimits(workers=2))
    with harness.connect() as conn:
        conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     + length + b"\r\n\r\n")
        assert _closed_by_server(conn)
    assert harness.healthz() == 200
    assert harness.events == []


def test_serve_http_given_an_error_handling_one_connection_drops_it_and_keeps_accepting(
    harness_factory: Callable[[ConnectionLimits], Harness],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = harness_factory(ConnectionLimits(workers=2))
    server = harness.server._server
    planned = server._plan_body
    failures: list[str] = []

    def fail_once(incoming: object) -> bool:
        if not failures:
            failures.append("raised")
            raise RuntimeError("secret-in-request-bytes")
        return planned(incoming)  # type: ignore[arg-type]

    monkeypatch.setattr(server, "_plan_body", fail_once)
    with caplog.at_level(logging.INFO), harness.connect() as conn:
        conn.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        assert _closed_by_server(conn)
    assert failures == ["raised"]
    assert harness.healthz() == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "secret-in-request-bytes" not in caplog.text
