"""Fault injection of the Jira sandbox: 429 with Retry-After, 5xx bursts, latency, bad bodies."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
import requests

from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox

TIMEOUT = 10


@pytest.fixture
def jira() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=21, issues=150)) as sandbox:
        yield sandbox


def _search(jira: JiraSandbox, timeout: float = TIMEOUT) -> requests.Response:
    return requests.get(f"{jira.url}/rest/api/3/search/jql", params={"jql": "project = ENT"},
                        auth=jira.basic_auth, timeout=timeout)


def _myself(jira: JiraSandbox) -> requests.Response:
    return requests.get(f"{jira.url}/rest/api/3/myself", auth=jira.basic_auth, timeout=TIMEOUT)


def test_rate_limit_given_every_third_request_answers_429_on_those(jira: JiraSandbox) -> None:
    jira.faults.rate_limit(every=3, retry_after=7, paths="/search/jql")
    statuses = [_search(jira).status_code for _ in range(7)]
    assert statuses == [200, 200, 429, 200, 200, 429, 200]
    assert _myself(jira).status_code == 200  # other paths are not counted or limited
    assert jira.log.count(fault="rate_limit") == 2


def test_rate_limit_given_429_sends_jiras_headers_and_error_body(jira: JiraSandbox) -> None:
    jira.faults.rate_limit(count=1, retry_after=5, reason="jira-cost-based")
    response = _search(jira)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", response.headers["X-RateLimit-Reset"])
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Limit"].isdigit()
    assert response.headers["RateLimit-Reason"] == "jira-cost-based"
    assert set(response.json()) == {"errorMessages", "errors"}
    assert jira.log.records[-1].retry_after == 5
    assert _search(jira).status_code == 200  # count=1: only once


def test_server_errors_given_burst_after_a_request_answers_503_in_a_row(
    jira: JiraSandbox,
) -> None:
    jira.faults.server_errors(2, after=1, retry_after=3)
    responses = [_search(jira) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 503, 503, 200]
    assert responses[1].headers["Retry-After"] == "3"
    assert responses[1].headers["Content-Type"].startswith("text/html")


def test_server_errors_given_other_status_and_no_retry_after(jira: JiraSandbox) -> None:
    jira.faults.server_errors(1, status=502)
    response = _search(jira)
    assert response.status_code == 502 and "Retry-After" not in response.headers


def test_malformed_given_one_answers_200_with_truncated_json_once(jira: JiraSandbox) -> None:
    jira.faults.malformed(1, paths="/search/jql")
    broken = _search(jira)
    assert broken.status_code == 200
    assert broken.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    assert _search(jira).json()["issues"]
    assert jira.log.count(fault="malformed") == 1


def test_latency_given_delay_beyond_client_timeout_times_out(jira: JiraSandbox) -> None:
    jira.faults.latency(1.0, count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        _search(jira, timeout=0.2)
    jira.faults.clear()
    assert _search(jira).status_code == 200


def test_clear_given_active_faults_removes_them(jira: JiraSandbox) -> None:
    jira.faults.rate_limit()
    assert _search(jira).status_code == 429
    jira.faults.clear()
    assert [_search(jira).status_code for _ in range(3)] == [200, 200, 200]


def test_faults_given_rate_limit_and_burst_a_retrying_fetch_gets_identical_results(
    jira: JiraSandbox,
) -> None:
    def fetch_all() -> list[str]:
        ids: list[str] = []
        token: str | None = None
        for _ in range(200):
            response = requests.get(
                f"{jira.url}/rest/api/3/search/jql", auth=jira.basic_auth, timeout=TIMEOUT,
                params={"jql": "project in (ENT, SUP, OPS)", "maxResults": 10,
                        "nextPageToken": token})
            if response.status_code in (429, 503):
                continue
            body = response.json()
            ids.extend(i["id"] for i in body["issues"])
            token = body.get("nextPageToken")
            if token is None:
                return ids
        raise AssertionError("did not finish")

    clean = fetch_all()
    jira.faults.rate_limit(every=3, retry_after=1)
    jira.faults.server_errors(3, after=4, status=503)
    faulty = fetch_all()
    assert faulty == clean and len(clean) == 150
    assert jira.log.count(status=429) > 0 and jira.log.count(status=503) == 3


def test_rewrite_given_transform_answers_its_json_once_then_the_dataset(jira: JiraSandbox) -> None:
    jira.faults.rewrite(lambda me: {**me, "timeZone": "America"}, paths="/myself", count=1)
    assert _myself(jira).json()["timeZone"] == "America"
    assert _myself(jira).json()["timeZone"] == "America/New_York"
    assert jira.log.count(fault="rewrite") == 1


def test_rewrite_given_nan_writes_it_as_python_json_would(jira: JiraSandbox) -> None:
    jira.faults.rewrite(lambda me: {**me, "points": float("nan")}, paths="/myself")
    assert '"points":NaN' in _myself(jira).text


def test_rewrite_given_a_refused_request_answers_200_with_the_rewrite(jira: JiraSandbox) -> None:
    jira.faults.rewrite(lambda _: {"issues": [], "nextPageToken": "made-up"}, paths="/search/jql")
    answer = requests.get(f"{jira.url}/rest/api/3/search/jql",
                          params={"jql": "project = ENT", "nextPageToken": "no-such-token"},
                          auth=jira.basic_auth, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["nextPageToken"] == "made-up"


def test_drip_given_seconds_per_byte_sends_the_body_slowly_but_whole(jira: JiraSandbox) -> None:
    jira.faults.drip(0.002, paths="/myself", count=1)
    started = time.monotonic()
    answer = _myself(jira)
    elapsed = time.monotonic() - started
    assert answer.json()["timeZone"] == "America/New_York"
    assert elapsed >= 0.002 * len(answer.content) * 0.9
    assert jira.log.count(fault="drip") == 1


def test_reset_given_two_drops_the_connection_twice_without_an_answer(jira: JiraSandbox) -> None:
    jira.faults.reset(2, paths="/search/jql")
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            _search(jira)
    assert _search(jira).status_code == 200
    assert jira.log.count(fault="reset") == 2


def test_garbage_given_one_answers_200_with_a_body_that_is_not_json_once(
    jira: JiraSandbox,
) -> None:
    jira.faults.garbage(1)
    response = _search(jira)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert _search(jira).json()["issues"]
    assert jira.log.count(fault="garbage") == 1


def test_revoke_given_after_one_answers_401_from_the_second_request_on(
    jira: JiraSandbox,
) -> None:
    jira.faults.revoke(after=1, paths="/search/jql")
    assert _search(jira).status_code == 200
    refused = [_search(jira) for _ in range(2)]
    assert [r.status_code for r in refused] == [401, 401]
    assert refused[0].json()["errorMessages"]
    assert _myself(jira).status_code == 200  # only the paths named
