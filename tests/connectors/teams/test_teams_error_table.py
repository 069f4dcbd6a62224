"""The Teams error tables in force, row by row, over real HTTP on 127.0.0.1.

Both clients send to a scripted loopback server (the bot signs in through
the Teams sandbox's Entra); each row asserts the typed error, the requests
sent and the waits the :class:`~okr_sync.connectors.http.Retrier` recorded.
The Workflows and bot tables differ where Microsoft says so: the bot retries
412 and treats 500 as permanent. A connect timeout cannot be produced on
loopback, so that row uses ``responses``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import requests
import responses
from pydantic import SecretStr

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.teams.client import (
    TeamsAuthError,
    TeamsBotClient,
    TeamsPayloadError,
    TeamsPermanentError,
    TeamsRateLimitedError,
    TeamsTransientError,
    TeamsWorkflowClient,
)
from okr_sync.sandbox.teams.server import TeamsSandbox
from support.scripted_http import Reply, ScriptedServer, closed_port_url

Kind = Literal["workflow", "bot"]
SECRET = "teams-table-app-secret"
SIG = "T4bleS1gnature"
CONVERSATION = "19:table@thread.tacv2"
OK = Reply(201, {"id": "1:posted"})
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=60.0, jitter=0.0, timeout=0.3)
EXHAUSTED = (0.5, 1.0)
ERROR = {"error": {"code": "Denied", "message": "no"}}


@dataclass(frozen=True)
class Row:
    script: tuple[Reply, ...]
    error: type[Exception] | None  # None: the call succeeds in the end
    requests: int
    waits: tuple[float, ...]


def both(row: Row) -> dict[Kind, Row]:
    return {"workflow": row, "bot": row}


ROWS: dict[str, dict[Kind, Row]] = {
    "429 with Retry-After waits at least it": both(
        Row((Reply(429, headers={"Retry-After": "7"}), OK), None, 2, (7.0,))),
    "429 without Retry-After backs off": both(Row((Reply(429), OK), None, 2, (0.5,))),
    "429 until exhausted": both(Row((Reply(429),), TeamsRateLimitedError, 3, EXHAUSTED)),
    "502 is retried": both(Row((Reply(502), OK), None, 2, (0.5,))),
    "503 is retried": both(Row((Reply(503), OK), None, 2, (0.5,))),
    "504 is retried": both(Row((Reply(504), OK), None, 2, (0.5,))),
    "503 until exhausted": both(Row((Reply(503),), TeamsTransientError, 3, EXHAUSTED)),
    "500: retried by workflows, permanent for the bot": {
        "workflow": Row((Reply(500), OK), None, 2, (0.5,)),
        "bot": Row((Reply(500, ERROR),), TeamsPermanentError, 1, ()),
    },
    "412: permanent for workflows, retried by the bot": {
        "workflow": Row((Reply(412, ERROR),), TeamsPermanentError, 1, ()),
        "bot": Row((Reply(412), OK), None, 2, (0.5,)),
    },
    # The bot asks for a fresh token once on a 401 (a revoked token), never retries.
    "401 fails fast": {
        "workflow": Row((Reply(401, ERROR),), TeamsAuthError, 1, ()),
        "bot": Row((Reply(401, ERROR),), TeamsAuthError, 2, ()),
    },
    "403 fails fast": both(Row((Reply(403, ERROR),), TeamsAuthError, 1, ())),
    "400 is the payload's fault": both(Row((Reply(400, ERROR),), TeamsPayloadError, 1, ())),
    "read timeout once": both(Row((Reply(body={"id": "1:x"}, delay=1.0), OK), None, 2, (0.5,))),
    "read timeout until exhausted": both(
        Row((Reply(body={"id": "1:x"}, delay=1.0),), TeamsTransientError, 3, EXHAUSTED)),
    "body cut short of Content-Length": both(
        Row((Reply(201, {"id": "1:x"}, truncate=True),), TeamsTransientError, 3, EXHAUSTED)),
}  # fmt: skip

CASES = [
    pytest.param(kind, row, id=f"{kind}: {name}")
    for name, by_kind in ROWS.items()
    for kind, row in by_kind.items()
]


class CountingSession(requests.Session):
    """A session that counts the requests it sends (a refused connect never reaches a server)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent += 1
        return super().request(*args, **kwargs)


@pytest.fixture(scope="module")
def login() -> Iterator[TeamsSandbox]:
    with TeamsSandbox(app_secret=SECRET) as sandbox:
        yield sandbox


def send(
    kind: Kind, base_url: str, login: TeamsSandbox, session: CountingSession, slept: list[float]
) -> None:
    """Post once through a fresh client of ``kind``, recording its waits into ``slept``."""
    if kind == "workflow":
        workflow = TeamsWorkflowClient(
            SecretStr(f"{base_url}/workflows/w1/triggers/manual/paths/invoke?sig={SIG}"),
            policy=POLICY, sleep=slept.append, session=session,
        )  # fmt: skip
        try:
            workflow.post_card({"type": "AdaptiveCard", "version": "1.5", "body": []})
        finally:
            assert workflow.retrier.waits == slept
        return
    bot = TeamsBotClient(
        login.app_id, SecretStr(SECRET), login.tenant_id, base_url,
        http_client=login.msal_http_client(timeout=5.0), policy=POLICY, sleep=slept.append,
        session=session,
    )  # fmt: skip
    try:
        assert bot.post_activity(CONVERSATION, {"type": "message", "text": "hi"}) == "1:posted"
    finally:
        assert bot.retrier.waits == slept


def assert_hides_secrets(error: BaseException) -> None:
    for text in (str(error), repr(error)):
        assert SIG not in text and SECRET not in text
    assert error.__cause__ is None and error.__suppress_context__


@pytest.mark.parametrize(("kind", "row"), CASES)
def test_teams_error_table_given_server_answer_resolves_by_row(
    kind: Kind, row: Row, login: TeamsSandbox
) -> None:
    session = CountingSession()
    waits: list[float] = []
    with ScriptedServer(row.script) as server:
        if row.error is None:
            send(kind, server.url, login, session, waits)
        else:
            with pytest.raises(row.error) as caught:
                send(kind, server.url, login, session, waits)
            assert type(caught.value) is row.error
            assert_hides_secrets(caught.value)
        assert len(server.received) == session.sent == row.requests
    assert tuple(waits) == row.waits


@pytest.mark.parametrize("kind", ["workflow", "bot"])
def test_teams_error_table_given_connection_refused_retries_then_is_transient(
    kind: Kind, login: TeamsSandbox
) -> None:
    session = CountingSession()
    waits: list[float] = []
    with pytest.raises(TeamsTransientError) as caught:
        send(kind, closed_port_url(), login, session, waits)
    assert type(caught.value) is TeamsTransientError
    assert caught.value.code == "connection_error"
    assert session.sent == 3 and tuple(waits) == EXHAUSTED
    assert_hides_secrets(caught.value)


@pytest.mark.parametrize("kind", ["workflow", "bot"])
def test_teams_error_table_given_tls_failure_is_permanent_naming_only_the_type(
    kind: Kind, login: TeamsSandbox
) -> None:
    session = CountingSession()
    waits: list[float] = []
    with ScriptedServer([OK]) as server, pytest.raises(TeamsPermanentError) as caught:
        send(kind, server.tls_url, login, session, waits)
    assert type(caught.value) is TeamsPermanentError
    assert caught.value.code == "tls_error"
    assert str(caught.value).endswith("failed: tls_error (SSLError)")
    assert session.sent == 1 and waits == []
    assert_hides_secrets(caught.value)


def test_teams_error_table_given_connect_timeout_retries_then_is_transient() -> None:
    url = f"https://prod-01.westeurope.logic.azure.com/workflows/w1/invoke?sig={SIG}"
    session = CountingSession()
    waits: list[float] = []
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        for _ in range(3):
            mocked.post(url, body=requests.ConnectTimeout("slow"))
        with pytest.raises(TeamsTransientError) as caught:
            TeamsWorkflowClient(
                SecretStr(url), policy=POLICY, sleep=waits.append, session=session
            ).post_card({"type": "AdaptiveCard", "version": "1.5", "body": []})
    assert (type(caught.value), caught.value.code) == (TeamsTransientError, "timeout")
    assert session.sent == 3 and tuple(waits) == EXHAUSTED
    assert_hides_secrets(caught.value)
