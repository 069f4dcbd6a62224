"""Webhooks and readiness with several Jira sources (issue 14 item 1), through ``serve``
over loopback: each source posts to ``/webhooks/jira/<source>`` and is checked with its
own secret; ``/readyz`` names a failing source while the other's KRs are measured."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from okr_sync.sync.service.app import ServiceHandle, serve
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import sign
from support.two_sources import TwoSources, two_sources

TIMEOUT = 10
SHARED_SECRET = "shared-webhook-secret"
LEGACY_SECRET = "legacy-webhook-secret"
BODY = (b'{"webhookEvent": "jira:issue_updated", "timestamp": 1, '
        b'"issue": {"id": "1", "key": "OPS-1", "fields": {"project": {"key": "OPS"}}}}')


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TwoSources]:
    with two_sources(tmp_path) as w:
        yield w


@contextmanager
def _serving(world: TwoSources, secrets: tuple[str | None, str | None]
             ) -> Iterator[ServiceHandle]:
    """serve() on port 0 with legacy's Data Center refusing its token; ``secrets``: the
    shared webhook secret and legacy's own."""
    runtime = world.runtime(legacy_pat="revoked-pat", webhook_secrets=secrets)
    stop, started = threading.Event(), threading.Event()
    handles: list[ServiceHandle] = []

    def on_started(handle: ServiceHandle) -> None:
        handles.append(handle)
        started.set()

    thread = threading.Thread(target=lambda: serve(
        lambda: runtime, Schedule.parse("1h"), host="127.0.0.1", port=0, stop_event=stop,
        on_started=on_started, webhook_secret=runtime.settings.webhook_secret,
        debounce=timedelta(0), install_signal_handlers=False))
    thread.start()
    try:
        assert started.wait(TIMEOUT)
        handle = handles[0]
        for _ in range(200):  # bounded: the first pass runs right after start
            if handle.status().passes:
                break
            time.sleep(0.05)
        assert handle.status().passes == 1
        yield handle
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert not thread.is_alive()


@pytest.fixture
def service(world: TwoSources) -> Iterator[ServiceHandle]:
    with _serving(world, (SHARED_SECRET, LEGACY_SECRET)) as handle:
        yield handle


def _post(handle: ServiceHandle, path: str, secret: str | None, delivery: str) -> int:
    headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": delivery}
    if secret is not None:
        headers["X-Hub-Signature"] = sign(secret, BODY)
    return requests.post(handle.url + path, data=BODY, headers=headers,
                         timeout=TIMEOUT).status_code


def test_webhook_given_a_source_with_its_own_secret_checks_each_path_with_its_secret(
    service: ServiceHandle,
) -> None:
    assert _post(service, "/webhooks/jira/legacy", SHARED_SECRET, "d1") == 401
    assert _post(service, "/webhooks/jira/legacy", LEGACY_SECRET, "d1") == 202
    assert _post(service, "/webhooks/jira/legacy", LEGACY_SECRET, "d1") == 200  # duplicate
    # The same delivery id from the other site is no duplicate of legacy's.
    assert _post(service, "/webhooks/jira", LEGACY_SECRET, "d1") == 401
    assert _post(service, "/webhooks/jira", SHARED_SECRET, "d1") == 202
    assert _post(service, "/webhooks/jira/main", SHARED_SECRET, "d2") == 202
    assert _post(service, "/webhooks/jira/nowhere", SHARED_SECRET, "d3") == 404
    for _ in range(100):  # bounded: accepted deliveries trigger a pass within seconds
        if service.status().passes > 1:
            break
        time.sleep(0.05)
    assert service.status().passes > 1


def test_readyz_given_one_source_failing_names_it_while_the_other_is_measured(
    service: ServiceHandle,
) -> None:
    response = requests.get(service.url + "/readyz", timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 200, body
    assert body["failing_sources"] == ["legacy"]
    assert body["source_failures"][0].startswith("source legacy: ")
    assert body["last_success"] is not None
    metrics = requests.get(service.url + "/metrics", timeout=TIMEOUT).text
    assert 'okr_sync_jira_source_up{source="legacy"} 0.0' in metrics
    assert 'okr_sync_jira_source_up{source="main"} 1.0' in metrics


def test_webhook_given_only_legacy_has_a_secret_accepts_legacy_and_refuses_unsigned_main(
    world: TwoSources,
) -> None:
    with _serving(world, (None, LEGACY_SECRET)) as handle:
        assert _post(handle, "/webhooks/jira/legacy", LEGACY_SECRET, "e1") == 202
        assert _post(handle, "/webhooks/jira/legacy", None, "e2") == 401
        assert _post(handle, "/webhooks/jira", None, "e3") == 403
        assert _post(handle, "/webhooks/jira/main", LEGACY_SECRET, "e4") == 403


def test_webhook_given_a_plan_naming_its_source_legacy_accepts_either_case_of_path(
    tmp_path: Path,
) -> None:
    # Settings name sources in lower case; the plan writes "Legacy". Before, only
    # /webhooks/jira/Legacy was accepted here (and only /legacy with --plans).
    with two_sources(tmp_path, legacy_name="Legacy") as world, \
            _serving(world, (SHARED_SECRET, LEGACY_SECRET)) as handle:
        assert _post(handle, "/webhooks/jira/legacy", LEGACY_SECRET, "f1") == 202
        assert _post(handle, "/webhooks/jira/Legacy", LEGACY_SECRET, "f2") == 202
        assert _post(handle, "/webhooks/jira/LEGACY", SHARED_SECRET, "f3") == 401


def test_webhook_given_a_source_client_leaving_mid_body_counts_it_disconnected(
    service: ServiceHandle,
) -> None:
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
        conn.sendall(b"POST /webhooks/jira/legacy HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    marker = 'okr_sync_webhooks_total{result="disconnected"} 1.0'
    for _ in range(200):  # bounded: the server sees the close within moments
        if marker in requests.get(service.url + "/metrics", timeout=TIMEOUT).text:
            break
        time.sleep(0.05)
    # Before, only a client of the exact path /webhooks/jira was counted.
    assert marker in requests.get(service.url + "/metrics", timeout=TIMEOUT).text
