"""``okr-sync serve`` (the real command, in a subprocess) with distinctive secrets: none in
its logs, ``/metrics``, the report pages, ``/readyz``, webhook answers or the database; and
unsigned webhooks are refused unless the operator opts in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from okr_sync.sync.service.webhooks import SIGNATURE_HEADER, sign
from support.secret_world import (
    WEBHOOK_SECRET,
    SecretWorld,
    all_leaks,
    cli_plan,
    database_dump,
    secret_world,
)
from support.serve_cli import serve_cli, wait_for

pytestmark = pytest.mark.slow  # processes started and stopped

TIMEOUT = 30
EVENT = json.dumps({"webhookEvent": "jira:issue_updated",
                    "issue": {"id": "10001", "key": "ENT-1",
                              "fields": {"project": {"key": "ENT"}}}}).encode()


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[SecretWorld]:
    with secret_world(tmp_path, database_url) as sandboxes:
        yield SecretWorld(sandboxes, cli_plan(tmp_path))


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(url + "/webhooks/jira", data=body, timeout=TIMEOUT,
                         headers={"Content-Type": "application/json", **(headers or {})})


def _shown(name: str, response: requests.Response) -> tuple[str, str]:
    return name, f"{response.status_code} {dict(response.headers)}\n{response.text}"


def test_serve_given_distinctive_secrets_never_shows_them_on_http_logs_or_database(
    world: SecretWorld, tmp_path: Path
) -> None:
    with serve_cli(world.environment(), tmp_path, "--interval", "1h") as service:
        url = service.url
        wait_for("the first pass", service.finished_passes)
        answers = {
            "signed webhook": _post(url, EVENT, {SIGNATURE_HEADER: sign(WEBHOOK_SECRET, EVENT),
                                                 "X-Atlassian-Webhook-Identifier": "d-1"}),
            "unsigned webhook": _post(url, EVENT),
            "forged webhook": _post(url, EVENT, {SIGNATURE_HEADER: sign("guess", EVENT)}),
            "metrics": requests.get(url + "/metrics", timeout=TIMEOUT),
            "report": requests.get(url + "/report", timeout=TIMEOUT),
            "index": requests.get(url + "/", timeout=TIMEOUT),
            "readyz": requests.get(url + "/readyz", timeout=TIMEOUT),
            "healthz": requests.get(url + "/healthz", timeout=TIMEOUT),
            "not found": requests.get(url + "/.env", timeout=TIMEOUT),
        }
        assert service.stop() == 0
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {"signed webhook": 202, "unsigned webhook": 401, "forged webhook": 401,
                        "metrics": 200, "report": 200, "index": 200, "readyz": 200,
                        "healthz": 200, "not found": 404}
    assert "okr_sync_passes_total" in answers["metrics"].text
    assert world.world.slack.messages("C0DEMO0001")  # the tokens were used for real
    artefacts = [
        *(_shown(name, response) for name, response in answers.items()),
        ("serve logs", service.log_text()),
        ("database", database_dump(world.world.database_url)),
    ]
    assert all_leaks(artefacts) == []


@pytest.mark.parametrize("allow", [None, "false", "true"])
def test_serve_given_no_webhook_secret_refuses_unsigned_webhooks_unless_opted_in(
    allow: str | None, tmp_path: Path, sqlite_url: str
) -> None:
    with secret_world(tmp_path, sqlite_url) as sandboxes:
        env = SecretWorld(sandboxes, cli_plan(tmp_path)).environment()
        del env["OKR_SYNC_WEBHOOK_SECRET"]
        if allow is not None:
            env["OKR_SYNC_WEBHOOK_ALLOW_UNSIGNED"] = allow
        with serve_cli(env, tmp_path, "--interval", "1h") as service:
            answer = _post(service.url, EVENT)
            metrics = requests.get(service.url + "/metrics", timeout=TIMEOUT).text
            assert service.stop() == 0
    if allow == "true":
        assert answer.status_code == 202
        assert "webhook accepted" in service.messages()
    else:
        assert answer.status_code == 403
        assert "OKR_SYNC_WEBHOOK_SECRET" in answer.json()["error"]
        assert 'okr_sync_webhooks_total{result="unsigned_refused"} 1.0' in metrics
        assert "webhook accepted" not in service.messages()
