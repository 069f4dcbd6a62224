"""The Jira error table in force, row by row, over real HTTP on 127.0.0.1.

Each row scripts what the server does (or that nothing listens, or that it
does not speak TLS) and asserts the typed error, the requests sent and the
waits the :class:`~okr_sync.connectors.http.Retrier` recorded. A connect
timeout cannot be produced on loopback, so that row uses ``responses``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests
import responses
from pydantic import SecretStr

from okr_sync.connectors.errors import MalformedResponseError, PermanentError, TransientError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.jira.client import JiraAuthError, JiraClient, JiraSource
from okr_sync.connectors.jira.transport import JIRA_ERROR_TABLE
from support.scripted_http import Reply, ScriptedServer, closed_port_url

EMAIL = "okr-bot@acme.test"
TOKEN = "jira-table-secret-token"
INFO = {"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0]}
OK = Reply(200, INFO)
#: Exact waits (no jitter): 0.5 s, then 1 s; three attempts in all.
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=60.0, jitter=0.0)
EXHAUSTED = (0.5, 1.0)
DENIED = {"errorMessages": ["Client must be authenticated to access this resource."]}


@dataclass(frozen=True)
class Row:
    script: tuple[Reply, ...]
    error: type[Exception] | None  # None: the call succeeds in the end
    requests: int
    waits: tuple[float, ...]


ROWS: dict[str, Row] = {
    "429 with Retry-After waits at least it": Row(
        (Reply(429, headers={"Retry-After": "7"}), OK), None, 2, (7.0,)),
    "429 without Retry-After backs off": Row((Reply(429), OK), None, 2, (0.5,)),
    "500 is retried": Row((Reply(500), OK), None, 2, (0.5,)),
    "502 is retried": Row((Reply(502), OK), None, 2, (0.5,)),
    "503 is retried": Row((Reply(503), OK), None, 2, (0.5,)),
    "504 is retried": Row((Reply(504), OK), None, 2, (0.5,)),
    "503 until exhausted": Row((Reply(503),), TransientError, 3, EXHAUSTED),
    "501 is not listed: refused at once": Row((Reply(501),), PermanentError, 1, ()),
    "401 fails fast": Row((Reply(401, DENIED),), JiraAuthError, 1, ()),
    "403 fails fast": Row((Reply(403, DENIED),), JiraAuthError, 1, ()),
    "read timeout once": Row((Reply(body=INFO, delay=1.0), OK), None, 2, (0.5,)),
    "read timeout until exhausted": Row((Reply(body=INFO, delay=1.0),), TransientError, 3,
                                        EXHAUSTED),
    "body cut short of Content-Length": Row((Reply(body=INFO, truncate=True),), TransientError,
                                            3, EXHAUSTED),
    "JSON cut in half": Row((Reply(body=b'{"deploymentType": "Clo'),), MalformedResponseError,
                            3, EXHAUSTED),
}  # fmt: skip


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(url: str, sleep: RecordingSleep) -> JiraClient:
    source = JiraSource(url, email=EMAIL, api_token=SecretStr(TOKEN), timeout=0.3, retry=POLICY)
    return JiraClient(source, sleep=sleep)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_jira_error_table_given_server_answer_resolves_by_row(row: Row) -> None:
    sleep = RecordingSleep()
    with ScriptedServer(row.script) as server, client_for(server.url, sleep) as client:
        if row.error is None:
            assert client.server_info() == INFO
        else:
            with pytest.raises(row.error) as caught:
                client.server_info()
            assert type(caught.value) is row.error
            assert TOKEN not in str(caught.value)
        assert len(server.received) == client.request_count == row.requests
    assert tuple(client.retrier.waits) == tuple(sleep.waits) == row.waits


def test_jira_error_table_given_connection_refused_retries_then_is_transient() -> None:
    sleep = RecordingSleep()
    with client_for(closed_port_url(), sleep) as client, pytest.raises(TransientError) as caught:
        client.server_info()
    assert type(caught.value) is TransientError
    assert client.request_count == 3
    assert tuple(client.retrier.waits) == EXHAUSTED


def test_jira_error_table_given_tls_failure_is_permanent_naming_only_the_type() -> None:
    sleep = RecordingSleep()
    with ScriptedServer([OK]) as server, client_for(server.tls_url, sleep) as client:
        with pytest.raises(PermanentError) as caught:
            client.server_info()
        site = server.tls_url
    assert type(caught.value) is PermanentError
    assert str(caught.value) == (
        f"Jira at {site}: GET /rest/api/2/serverInfo could not be sent (SSLError); "
        "check the site's certificate and any proxy"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert client.request_count == 1 and sleep.waits == []


def test_jira_error_table_given_connect_timeout_retries_then_is_transient() -> None:
    site = "https://acme.atlassian.net"
    sleep = RecordingSleep()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        for _ in range(3):
            mocked.get(f"{site}/rest/api/2/serverInfo", body=requests.ConnectTimeout("slow"))
        with client_for(site, sleep) as client, pytest.raises(TransientError) as caught:
            client.server_info()
    assert type(caught.value) is TransientError
    assert client.request_count == 3
    assert tuple(client.retrier.waits) == EXHAUSTED


def test_jira_error_table_given_unlisted_statuses_fails_and_keeps_default_rows() -> None:
    assert not JIRA_ERROR_TABLE.for_status(501).retries
    assert not JIRA_ERROR_TABLE.for_status(418).retries
    assert JIRA_ERROR_TABLE.for_status(429).retries and JIRA_ERROR_TABLE.for_status(503).retries
