"""``serve``'s probes under clients that ask for a large page and never read it, and its
memory budget for whole requests waiting for a worker, over real sockets on loopback.

Every wait is bounded and polled; nothing asserts a duration.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
import requests
from werkzeug.wrappers import Response

from okr_sync.sync.service.framing import MAX_HEAD_BYTES
from okr_sync.sync.service.http import HttpServer, ServiceApp
from okr_sync.sync.service.loop import StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.server import ConnectionLimits, _Incoming

_NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
TIMEOUT = 30.0
WORKERS = 4
#: Far more than loopback's largest send buffer (4 MiB) plus a tiny receive window.
LARGE_PAGE = "x" * (16 * 1024 * 1024)
#: How long a probe may take while every general worker is held (generous: held workers
#: blocked it for their whole write timeout, 10 s per write, before).
ANSWER_BOUND_S = 5.0


def wait_until(what: str, probe: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _app() -> ServiceApp:
    return ServiceApp(
        status=lambda: StatusView(started_at=_NOW, role="follower"),
        period=lambda at: timedelta(minutes=5), metrics=ServiceMetrics(),
        webhook=lambda request: Response(status=404),
        database_probe=lambda: None, clock=lambda: _NOW, report=lambda: LARGE_PAGE)


@pytest.fixture
def server() -> Iterator[HttpServer]:
    started = HttpServer(_app(), host="127.0.0.1", port=0,
                         limits=ConnectionLimits(workers=WORKERS))
    started.start()
    yield started
    started.stop()


def _non_reader(port: int) -> socket.socket:
    """A client with a tiny receive window that asks for the large page, then never reads."""
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.settimeout(TIMEOUT)
    conn.connect(("127.0.0.1", port))
    conn.sendall(b"GET /report HTTP/1.1\r\nHost: x\r\n\r\n")
    return conn


@pytest.mark.slow
def test_serve_http_given_every_worker_held_by_clients_not_reading_a_large_page_answers_probes(
    server: HttpServer,
) -> None:
    url = f"http://127.0.0.1:{server.port}"
    with ExitStack() as stack:  # closing the clients frees the held workers at the end
        for _ in range(WORKERS):
            stack.enter_context(_non_reader(server.port))
        wait_until("every general worker writing to a client that does not read",
                   lambda: len(server._server._active) >= WORKERS)
        # Before, the probes waited behind them: 16 such clients failed Kubernetes'
        # liveness probe and the pod was restarted.
        for _ in range(3):
            assert requests.get(url + "/healthz", timeout=ANSWER_BOUND_S).status_code == 200
            assert requests.get(url + "/readyz", timeout=ANSWER_BOUND_S).status_code == 200


def _incoming(request: bytes) -> tuple[_Incoming, socket.socket]:
    ours, theirs = socket.socketpair()
    incoming = _Incoming(ours, ("127.0.0.1", 1), time.monotonic(), data=bytearray(request))
    return incoming, theirs


def test_bounded_server_given_queued_requests_filling_the_budget_counts_them_and_refuses_503(
) -> None:
    # Workers are not started: every whole request stays queued.
    body = 1024 * 1024
    limits = ConnectionLimits(workers=1, pending=512, max_body=body,
                              buffer_budget=MAX_HEAD_BYTES + 2 * body)
    http = HttpServer(_app(), host="127.0.0.1", port=0, limits=limits)
    bounded = http._server
    request = (b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body
               + b"{" * body)
    selector = selectors.DefaultSelector()
    clients = []
    try:
        for _ in range(3):
            incoming, client = _incoming(request)
            clients.append(client)
            bounded._waiting[incoming.conn.fileno()] = incoming
            bounded._buffered += len(incoming.data)
            bounded._dispatch(selector, incoming, len(request))
        # Two whole requests fit the budget and stay counted while they wait for a worker;
        # before, they counted for nothing once queued (512 of 1 MiB were ~545 MiB).
        assert bounded.queued_bytes == 2 * len(request)
        assert bounded.queued_bytes + bounded.buffered_bytes <= limits.buffer_budget
        clients[2].settimeout(TIMEOUT)
        assert clients[2].recv(4096).startswith(b"HTTP/1.0 503")
        # A probe (a few bytes) is still queued for its own worker.
        incoming, client = _incoming(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append(client)
        bounded._waiting[incoming.conn.fileno()] = incoming
        bounded._dispatch(selector, incoming, len(incoming.data))
        assert bounded._probes.qsize() == 1
    finally:
        bounded._stop_workers()
        assert bounded.queued_bytes == 0  # closing queued requests un-counts them
        for client in clients:
            client.close()
        selector.close()
        bounded.server_close()
