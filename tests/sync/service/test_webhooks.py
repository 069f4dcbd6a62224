"""Jira webhooks: signature, size limit, deduplication, and one debounced pass per burst."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import Settings
from okr_sync.scoring.scorecard import CycleInfo, Scorecard
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import JiraConnections, Runtime
from okr_sync.sync.service.http import HttpServer, ServiceApp
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import (
    IDENTIFIER_HEADER,
    SIGNATURE_HEADER,
    Debouncer,
    DeliveryCache,
    JiraWebhookEndpoint,
    WebhookEvent,
    WebhookPayloadError,
    delivery_id,
    parse_event,
    sign,
    verify_signature,
)
from okr_sync.sync.store.locks import Leadership
from okr_sync.sync.store.reader import ReadOnlyStore
from support.clocks import FakeClock
from support.paths import DEMO_PLAN

SECRET = SecretStr("whsec-test-secret-1234")
_NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
TIMEOUT = 10


def issue_event(key: str = "ENT-7", project: str | None = "ENT", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"summary": "Ship SSO"}
    if project is not None:
        fields["project"] = {"key": project, "id": "10000"}
    doc = {"timestamp": 1_790_000_000_000, "webhookEvent": "jira:issue_updated",
           "issue_event_type_name": "issue_generic",
           "issue": {"id": "10042", "key": key, "fields": fields},
           "changelog": {"id": "1", "items": [{"field": "status", "toString": "Done"}]}}
    doc.update(extra)
    return doc


def signed_headers(body: bytes, identifier: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}
    if identifier is not None:
        headers[IDENTIFIER_HEADER] = identifier
    return headers


# -- pure parts -----------------------------------------------------------------------


def test_verify_signature_given_hmac_of_raw_body_accepts_and_anything_else_refuses() -> None:
    body = json.dumps(issue_event()).encode()
    good = sign(SECRET, body)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert verify_signature(SECRET, body, good)
    assert verify_signature(SECRET, body, good.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(SECRET, body + b" ", good)
    assert not verify_signature(SECRET, body, sign("other-secret", body))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "")
    assert not verify_signature(SECRET, body, good.removeprefix("sha256="))
    assert not verify_signature(SECRET, body, "sha1=" + good.removeprefix("sha256="))
    assert not verify_signature(SECRET, body, "sha256=ünïcode")


def test_parse_event_given_issue_payload_reads_event_and_project() -> None:
    event = parse_event(json.dumps(issue_event()).encode(), delivery_id="id:1", retry="2")
    assert event == WebhookEvent("id:1", "jira:issue_updated", "ENT-7", "ENT", 2)


def test_parse_event_given_no_project_field_uses_key_prefix() -> None:
    body = json.dumps(issue_event(key="OPS-12", project=None)).encode()
    assert parse_event(body, delivery_id="x").project == "OPS"
    assert parse_event(b'{"webhookEvent": "project_created"}', delivery_id="x").project is None


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_parse_event_given_non_object_body_raises_payload_error(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event(body, delivery_id="x")


def test_delivery_id_given_identifier_uses_it_else_body_hash() -> None:
    assert delivery_id("abc-123", b"{}") == "id:abc-123"
    assert delivery_id(None, b"{}") == delivery_id("  ", b"{}")
    assert delivery_id(None, b"{}").startswith("sha256:")
    assert delivery_id(None, b"{}") != delivery_id(None, b"{ }")


def test_delivery_cache_given_repeat_within_ttl_reports_duplicate_then_forgets() -> None:
    cache = DeliveryCache(ttl=timedelta(minutes=10), max_entries=100)
    assert not cache.seen_before("a", _NOW)
    assert cache.seen_before("a", _NOW + timedelta(minutes=9))
    assert not cache.seen_before("a", _NOW + timedelta(minutes=21))


def test_delivery_cache_given_more_entries_than_its_bound_evicts_the_oldest() -> None:
    cache = DeliveryCache(ttl=timedelta(hours=1), max_entries=3)
    for key in "abcd":
        assert not cache.seen_before(key, _NOW)
    assert len(cache) == 3
    assert not cache.seen_before("a", _NOW)  # evicted, so new again
    assert cache.seen_before("d", _NOW)


def test_debouncer_given_burst_fires_once_after_the_last_event() -> None:
    debouncer = Debouncer(timedelta(seconds=5))
    assert debouncer.take(_NOW) is None and debouncer.due_at() is None
    for offset, project in ((0, "ENT"), (2, "SUP"), (4, "ENT")):
        debouncer.add(_NOW + timedelta(seconds=offset), project)
    assert debouncer.due_at() == _NOW + timedelta(seconds=9)
    assert debouncer.take(_NOW + timedelta(seconds=8)) is None
    trigger = debouncer.take(_NOW + timedelta(seconds=9))
    assert trigger is not None
    assert (trigger.events, trigger.projects) == (3, frozenset({"ENT", "SUP"}))
    assert debouncer.take(_NOW + timedelta(seconds=60)) is None


def test_debouncer_given_endless_stream_fires_at_max_wait() -> None:
    debouncer = Debouncer(timedelta(seconds=5), max_wait=timedelta(seconds=20))
    for second in range(0, 30, 2):
        debouncer.add(_NOW + timedelta(seconds=second))
        if debouncer.take(_NOW + timedelta(seconds=second)) is not None:
            assert second == 20
            return
    pytest.fail("the debouncer never fired")


# -- the endpoint over HTTP -------------------------------------------------------------


def empty_scorecard() -> Scorecard:
    return Scorecard(CycleInfo("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), _NOW, 0.4), ())


class CountingRuntime(Runtime):
    """A runtime whose passes are recorded instead of run (no store: no run lock)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(Settings(_env_file=None, database_url=database_url),
                         load_plan(DEMO_PLAN), ReadOnlyStore(), JiraConnections({}), None)
        self.passes: list[PassOptions] = []

    def run_pass(self, options: PassOptions) -> PassResult:
        self.passes.append(options)
        return PassResult(empty_scorecard())


@dataclass
class Service:
    url: str
    clock: FakeClock
    scheduler: Scheduler
    runtime: CountingRuntime
    metrics: ServiceMetrics
    events: list[WebhookEvent] = field(default_factory=list)

    def post(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}/webhooks/jira", data=body, headers=headers,
                             timeout=TIMEOUT)


@pytest.fixture
def service(sqlite_url: str) -> Iterator[Service]:
    clock = FakeClock(_NOW)
    runtime = CountingRuntime(sqlite_url)
    metrics = ServiceMetrics()
    scheduler = Scheduler(runtime, Schedule.parse("5m"), leadership=Leadership(sqlite_url),
                          metrics=metrics, clock=clock)
    holder = Service("", clock, scheduler, runtime, metrics)

    def on_event(event: WebhookEvent) -> None:
        holder.events.append(event)
        scheduler.on_webhook(event)

    endpoint = JiraWebhookEndpoint(SECRET, on_event, clock=clock, max_body=64 * 1024,
                                   on_result=lambda r: metrics.webhooks.labels(r).inc())
    app = ServiceApp(status=scheduler.state.view, period=lambda at: timedelta(minutes=5),
                     metrics=metrics, webhook=endpoint, database_probe=lambda: None, clock=clock)
    server = HttpServer(app, host="127.0.0.1", port=0).start()
    holder.url = f"http://127.0.0.1:{server.port}"
    try:
        yield holder
    finally:
        server.stop()
        scheduler.close()


def test_webhook_given_burst_of_three_signed_events_triggers_one_debounced_pass(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    service.scheduler.tick()  # becomes leader, runs the scheduled first pass
    assert len(service.runtime.passes) == 1
    for n, key in enumerate(["ENT-1", "ENT-2", "SUP-3"]):
        body = json.dumps(issue_event(key=key, project=key.split("-")[0])).encode()
        response = service.post(body, signed_headers(body, f"delivery-{n}"))
        assert response.status_code == 202
        assert response.json() == {"status": "accepted"}
        service.clock.advance(1)
    service.scheduler.tick()
    assert len(service.runtime.passes) == 1  # still inside the debounce window
    service.clock.advance(5)
    with caplog.at_level("INFO", logger="okr_sync.service"):
        service.scheduler.tick()
        service.clock.advance(10)
        service.scheduler.tick()
    assert len(service.runtime.passes) == 2
    assert service.runtime.passes[1].kind == "serve"
    starts = [r for r in caplog.records if r.getMessage() == "pass starting"]
    assert [(r.__dict__["reason"], r.__dict__["projects"], r.__dict__["events"])
            for r in starts] == [("webhook", ["ENT", "SUP"], 3)]


def test_webhook_given_retried_delivery_with_same_identifier_ignores_it(service: Service) -> None:
    body = json.dumps(issue_event()).encode()
    first = service.post(body, signed_headers(body, "same-id"))
    retry = service.post(body, signed_headers(body, "same-id") | {"X-Atlassian-Webhook-Retry": "1"})
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json() == {"status": "duplicate"}
    no_id_1 = service.post(body, signed_headers(body))
    no_id_2 = service.post(body, signed_headers(body))
    assert (no_id_1.status_code, no_id_2.status_code) == (202, 200)
    assert len(service.events) == 2


def test_webhook_given_missing_or_wrong_signature_refuses_with_401(service: Service) -> None:
    body = json.dumps(issue_event()).encode()
    unsigned = service.post(body, {"Content-Type": "application/json"})
    forged = service.post(body, {SIGNATURE_HEADER: sign("guess", body)})
    tampered = service.post(body + b" ", signed_headers(body))
    assert [r.status_code for r in (unsigned, forged, tampered)] == [401, 401, 401]
    assert service.events == []
    # A refused delivery is not remembered: the genuine one is still accepted.
    assert service.post(body, signed_headers(body)).status_code == 202
    assert 'okr_sync_webhooks_total{result="unauthorized"} 3.0' in (
        service.metrics.exposition()[0].decode())


def test_webhook_given_body_over_the_limit_refuses_with_413(service: Service) -> None:
    body = json.dumps(issue_event(padding="x" * (64 * 1024))).encode()
    response = service.post(body, signed_headers(body))
    assert response.status_code == 413
    chunked = requests.post(f"{service.url}/webhooks/jira", data=iter([body]),
                            headers=signed_headers(body), timeout=TIMEOUT)
    assert chunked.status_code == 413
    assert service.events == []


def test_webhook_given_signed_non_json_body_answers_400(service: Service) -> None:
    body = b"<xml/>"
    response = service.post(body, signed_headers(body))
    assert response.status_code == 400 and "error" in response.json()


def test_webhook_given_get_request_answers_405(service: Service) -> None:
    response = requests.get(f"{service.url}/webhooks/jira", timeout=TIMEOUT)
    assert response.status_code == 405


def test_webhook_endpoint_given_no_secret_accepts_unsigned_deliveries() -> None:
    events: list[WebhookEvent] = []
    endpoint = JiraWebhookEndpoint(None, events.append, clock=FakeClock(_NOW))
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    body = json.dumps(issue_event()).encode()
    request = Request(EnvironBuilder(method="POST", data=body).get_environ())
    assert endpoint(request).status_code == 202
    assert [e.project for e in events] == ["ENT"]
