"""JiraClient.reconcile: ordered id queries, and missing ids confirmed by a second run."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from pydantic import SecretStr
from responses import matchers
from responses.registries import OrderedRegistry

from okr_sync.connectors.jira.client import JiraClient, JiraSource

SITE = "https://acme.atlassian.net"
DC_SITE = "https://jira.example.org"
SEARCH_JQL = f"{SITE}/rest/api/3/search/jql"
DC_SEARCH = f"{DC_SITE}/rest/api/2/search"


def ids_page(*ids: str) -> dict[str, Any]:
    return {"issues": [{"id": i} for i in ids], "isLast": True}


def dc_ids_page(ids: list[str], *, start: int, total: int, max_results: int = 2) -> dict[str, Any]:
    return {
        "startAt": start,
        "maxResults": max_results,
        "total": total,
        "issues": [{"id": i} for i in ids],
    }


def cloud_client() -> JiraClient:
    source = JiraSource(
        SITE, email="bot@acme.test", api_token=SecretStr("cloud-token"),
        story_points_field="customfield_10016",
    )  # fmt: skip
    return JiraClient(source, sleep=lambda _: None, rng=random.Random(1))


def dc_client() -> JiraClient:
    source = JiraSource(
        DC_SITE, pat=SecretStr("dc-pat"), story_points_field="customfield_10016",
        epic_link_field=None,
    )  # fmt: skip
    return JiraClient(source, sleep=lambda _: None, rng=random.Random(1))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as mock:
        yield mock


def serve_info(rsps: responses.RequestsMock, site: str, kind: str) -> None:
    rsps.get(
        f"{site}/rest/api/2/serverInfo",
        json={"baseUrl": site, "versionNumbers": [1001, 0, 0], "deploymentType": kind},
    )


def expect_ids(rsps: responses.RequestsMock, jql: str, *ids: str) -> None:
    rsps.post(
        SEARCH_JQL,
        json=ids_page(*ids),
        match=[matchers.json_params_matcher({"jql": jql, "fields": ["id"]}, strict_match=False)],
    )


@pytest.mark.parametrize(
    ("scope", "sent"),
    [
        ("project = ENT AND labels = okr", "project = ENT AND labels = okr ORDER BY created ASC"),
        ('summary ~ "order by" AND project = ENT',
         'summary ~ "order by" AND project = ENT ORDER BY created ASC'),
        ("project = ENT ORDER BY key DESC", "project = ENT ORDER BY key DESC"),
    ],
)  # fmt: skip
def test_reconcile_given_scope_jql_orders_it_by_creation_unless_it_has_an_order(
    rsps: responses.RequestsMock, scope: str, sent: str
) -> None:
    serve_info(rsps, SITE, "Cloud")
    expect_ids(rsps, sent, "1", "2")

    result = cloud_client().reconcile(scope, ["1", "2"])

    assert result.missing_ids == frozenset()


def test_reconcile_given_nothing_missing_runs_the_query_once(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps, SITE, "Cloud")
    expect_ids(rsps, 'project in ("ENT") ORDER BY created ASC', "1", "2", "3")
    client = cloud_client()

    result = client.reconcile(["ENT"], ["1", "2"])

    assert (result.present_ids, result.new_ids) == ({"1", "2"}, {"3"})
    assert client.request_count == 2


def test_reconcile_given_id_skipped_by_first_run_only_does_not_report_it_missing(
    rsps: responses.RequestsMock,
) -> None:
    # "2" slipped past a page boundary in the first run; "4" is really gone.
    serve_info(rsps, SITE, "Cloud")
    expect_ids(rsps, 'project in ("ENT") ORDER BY created ASC', "1", "3")
    expect_ids(rsps, 'project in ("ENT") ORDER BY created ASC', "1", "2", "3")

    result = cloud_client().reconcile(["ENT"], ["1", "2", "4"])

    assert result.missing_ids == {"4"}
    assert result.present_ids == {"1", "2"}
    assert result.new_ids == {"3"}


def test_reconcile_given_data_center_pages_by_offset_in_creation_order(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps, DC_SITE, "Server")
    jql = 'project in ("ENT") ORDER BY created ASC'
    for run in (["1", "2", "4"], ["1", "2", "4"]):
        for start in (0, 2):
            rsps.get(
                DC_SEARCH,
                json=dc_ids_page(run[start : start + 2], start=start, total=3),
                match=[
                    matchers.query_param_matcher(
                        {"jql": jql, "startAt": str(start), "fields": "id"}, strict_match=False
                    )
                ],
            )

    result = dc_client().reconcile(["ENT"], ["1", "2", "3"])

    assert result.missing_ids == {"3"}
    assert result.new_ids == {"4"}
