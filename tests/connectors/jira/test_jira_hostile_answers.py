"""Issue 11: answers Jira may give that crashed or fooled the connector, over loopback.

Each case is injected into the Jira sandbox (``faults.rewrite`` / ``faults.drip``) and must
end like a clean answer, or in one typed error or warning naming what is wrong.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.http import RequestDeadlineError, RetryPolicy
from okr_sync.connectors.jira.client import JiraClient, JiraSource
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox


def _client(sandbox: JiraSandbox, **options: Any) -> JiraClient:
    waits: list[float] = []
    if sandbox.cloud:
        email, token = sandbox.basic_auth
        source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10,
                            **options)
    else:
        source = JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10, **options)
    return JiraClient(source, sleep=waits.append)


@pytest.fixture
def jira() -> Any:
    with JiraSandbox(generate_dataset(seed=11, issues=40)) as sandbox:
        yield sandbox


# -- 9a: a body that drips in ------------------------------------------------------------
def test_request_given_body_dripping_past_the_deadline_fails_as_transient_timeout_at_once(
    jira: JiraSandbox,
) -> None:
    jira.faults.drip(0.05, paths="serverInfo")  # ~500 bytes: 25 s, every read in time
    client = _client(jira, retry=RetryPolicy(deadline=1.0))
    started = time.monotonic()

    with client, pytest.raises(RequestDeadlineError) as raised:
        client.server_info()

    assert time.monotonic() - started < 5
    assert raised.value.status is None
    assert jira.log.count(path="serverInfo") == 1  # not retried in-process


def test_request_given_slow_body_within_the_deadline_reads_it_whole(jira: JiraSandbox) -> None:
    jira.faults.drip(0.001, paths="serverInfo")
    with _client(jira, retry=RetryPolicy(deadline=30.0)) as client:
        assert client.server_info()["deploymentType"] == "Cloud"
