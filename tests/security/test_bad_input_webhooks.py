"""Webhook bodies that are huge, not JSON, unsigned, wrongly signed or replayed: refused
with the right status over real HTTP, and no pass is triggered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
    JiraWebhookEndpoint,
    WebhookEvent,
    sign,
)
from okr_sync.sync.store.locks import Leadership
from okr_sync.sync.store.reader import ReadOnlyStore
from support.clocks import FakeClock
from support.hypothesis_profile import examples
from support.paths import DEMO_PLAN

SECRET = SecretStr("whsec-bad-input")
MAX_BODY = 64 * 1024
_NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
TIMEOUT = 30
EVENT = json.dumps({"webhookEvent": "jira:issue_updated",
                    "issue": {"key": "ENT-1", "fields": {"project": {"key": "ENT"}}}}).encode()


class CountingRuntime(Runtime):
    """Passes recorded instead of run (no store: no run lock)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(Settings(_env_file=None, database_url=database_url),
                         load_plan(DEMO_PLAN), ReadOnlyStore(), JiraConnections({}), None)
        self.passes: list[PassOptions] = []

    def run_pass(self, options: PassOptions) -> PassResult:
        self.passes.append(options)
        return PassResult(Scorecard(CycleInfo("2026-Q4", date(2026, 10, 1), date(2026, 12, 31),
                                              _NOW, 0.4), ()))


@dataclass
class Service:
    url: str
    clock: FakeClock
    scheduler: Scheduler
    runtime: CountingRuntime
    events: list[WebhookEvent] = field(default_factory=list)

    def post(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}/webhooks/jira", data=body, headers=headers,
                             timeout=TIMEOUT)

    def passes_after_debounce(self) -> int:
        """Ticks the scheduler past any debounce; the number of passes run so far."""
        for _ in range(3):
            self.clock.advance(120)
            self.scheduler.tick()
        return len(self.runtime.passes)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path_factory.mktemp('webhooks') / 'okr-sync.db'}"
    clock = FakeClock(_NOW)
    runtime = CountingRuntime(url)
    # A long schedule: every pass after the first is one a webhook triggered.
    scheduler = Scheduler(runtime, Schedule.parse("7d"), leadership=Leadership(url),
                          metrics=ServiceMetrics(), clock=clock)
    holder = Service("", clock, scheduler, runtime)

    def on_event(event: WebhookEvent) -> None:
        holder.events.append(event)
        scheduler.on_webhook(event)

    endpoint = JiraWebhookEndpoint(SECRET, on_event, clock=clock, max_body=MAX_BODY)
    app = ServiceApp(status=scheduler.state.view, period=lambda at: timedelta(days=7),
                     metrics=scheduler.metrics, webhook=endpoint, database_probe=lambda: None,
                     clock=clock)
    server = HttpServer(app, host="127.0.0.1", port=0).start()
    holder.url = f"http://127.0.0.1:{server.port}"
    scheduler.tick()  # the scheduled first pass
    assert len(runtime.passes) == 1
    try:
        yield holder
    finally:
        server.stop()
        scheduler.close()


SIGNATURES = st.one_of(
    st.none(),
    # What an HTTP client can send in a header: visible ASCII (inner spaces allowed).
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=80)
    .map(str.strip).filter(bool),
    st.sampled_from(["sha256=", "sha256=" + "0" * 64, "sha1=abc", "SHA256=zz", "=",
                     "sha256=" + "g" * 64, "sha256 = " + "0" * 64]),
)


@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.binary(max_size=2048), signature=SIGNATURES)
def test_webhook_given_unsigned_or_wrongly_signed_body_answers_401_and_runs_nothing(
    service: Service, body: bytes, signature: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    events, passes = len(service.events), len(service.runtime.passes)
    answer = service.post(body, headers)
    assert answer.status_code == 401
    assert len(service.events) == events
    assert service.passes_after_debounce() == passes


@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(
    st.binary(max_size=2048),
    st.sampled_from([b"", b"null", b"[]", b"[1,2]", b'"text"', b"1e999", b"{" * 5000,
                     b"\xff\xfe{}", b"<xml/>"]),
).filter(lambda b: not _is_json_object(b)))
def test_webhook_given_signed_body_that_is_not_a_json_object_answers_400_and_runs_nothing(
    service: Service, body: bytes
) -> None:
    events, passes = len(service.events), len(service.runtime.passes)
    answer = service.post(body, {SIGNATURE_HEADER: sign(SECRET, body)})
    assert answer.status_code == 400
    assert len(service.events) == events
    assert service.passes_after_debounce() == passes


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


@pytest.mark.parametrize("size", [MAX_BODY + 1, 20 * 1024 * 1024])
def test_webhook_given_huge_body_answers_413_and_runs_nothing(service: Service,
                                                              size: int) -> None:
    body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    events, passes = len(service.events), len(service.runtime.passes)
    try:
        status = service.post(body, {SIGNATURE_HEADER: sign(SECRET, body)}).status_code
    except requests.ConnectionError:
        status = None  # the server may close before the client finished sending
    assert status in (413, None)
    chunked = requests.post(f"{service.url}/webhooks/jira", data=iter([body[:MAX_BODY], b"x"]),
                            headers={SIGNATURE_HEADER: sign(SECRET, body)}, timeout=TIMEOUT)
    assert chunked.status_code == 413
    assert len(service.events) == events
    assert service.passes_after_debounce() == passes


def test_webhook_given_replayed_delivery_answers_200_duplicate_and_runs_one_pass(
    service: Service,
) -> None:
    passes = service.passes_after_debounce()
    headers = {SIGNATURE_HEADER: sign(SECRET, EVENT), IDENTIFIER_HEADER: "replay-1"}
    answers = [service.post(EVENT, headers).status_code for _ in range(5)]
    assert answers == [202, 200, 200, 200, 200]
    # Without Jira's identifier, the same body is the same delivery.
    bare = {SIGNATURE_HEADER: sign(SECRET, EVENT)}
    assert [service.post(EVENT, bare).status_code for _ in range(3)] == [202, 200, 200]
    assert service.passes_after_debounce() == passes + 1  # the two accepted ones coalesce
