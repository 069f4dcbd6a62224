"""The sandbox's Cloud responses validate against Atlassian's published OpenAPI schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
import pytest
import requests

from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from support.paths import REPO

TIMEOUT = 10
_CANDIDATES = (
    REPO / "tests" / "specs" / "jira-cloud-platform-v3.openapi.json",
    REPO.parent / "shared" / "specs" / "jira-cloud-platform-v3.openapi.json",
)
_SPEC_PATH = next((path for path in _CANDIDATES if path.exists()), None)

# Without the spec there is nothing to conform to: skip, never pass on nothing.
pytestmark = pytest.mark.skipif(
    _SPEC_PATH is None,
    reason="the Jira OpenAPI spec is not available (tests/specs or ../shared/specs)")


@cache
def _spec() -> dict[str, Any]:
    assert _SPEC_PATH is not None
    loaded: dict[str, Any] = json.loads(_SPEC_PATH.read_text(encoding="utf-8"))
    assert loaded["paths"] and loaded["components"]["schemas"], f"{_SPEC_PATH} is empty"
    return loaded


def _response_schema(path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    operation = _spec()["paths"][path][method]
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"][
        "schema"]
    return schema


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate with the spec's components in scope, so "#/components/..." refs resolve."""
    document = {"allOf": [schema], "components": _spec()["components"]}
    jsonschema.Draft7Validator(document).validate(instance)


def _error_schema() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/ErrorCollection"}


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=31, issues=250)) as sandbox:
        yield sandbox


def _get(jira: JiraSandbox, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{jira.url}{path}", params=params, auth=jira.basic_auth,
                        timeout=TIMEOUT)


def test_validator_given_a_wrong_shape_rejects_it() -> None:
    schema = _response_schema("/rest/api/3/search/jql")
    with pytest.raises(jsonschema.ValidationError):
        _validate({"issues": [], "total": 3}, schema)  # no `total` on the new endpoint
    with pytest.raises(jsonschema.ValidationError):
        _validate({"count": "3"}, _response_schema("/rest/api/3/search/approximate-count",
                                                   "post"))


@pytest.mark.parametrize("params", [
    {"jql": "project = ENT"},
    {"jql": "project = ENT", "fields": "*all", "maxResults": 7, "expand": "names,schema"},
    {"jql": "project = OPS ORDER BY created", "fields": "key,summary", "maxResults": 5000},
])
def test_search_jql_page_given_params_matches_search_and_reconcile_results(
    jira: JiraSandbox, params: dict[str, Any],
) -> None:
    body = _get(jira, "/rest/api/3/search/jql", **params).json()
    assert body["issues"]
    _validate(body, _response_schema("/rest/api/3/search/jql"))
    if "nextPageToken" in body:
        last = _get(jira, "/rest/api/3/search/jql", nextPageToken=body["nextPageToken"],
                    **{**params, "maxResults": 5000}).json()
        _validate(last, _response_schema("/rest/api/3/search/jql"))


def test_approximate_count_matches_jql_count_results_bean(jira: JiraSandbox) -> None:
    body = requests.post(f"{jira.url}/rest/api/3/search/approximate-count",
                         json={"jql": "project = SUP"}, auth=jira.basic_auth,
                         timeout=TIMEOUT).json()
    _validate(body, _response_schema("/rest/api/3/search/approximate-count", "post"))


def test_field_list_matches_field_details(jira: JiraSandbox) -> None:
    _validate(_get(jira, "/rest/api/3/field").json(), _response_schema("/rest/api/3/field"))


def test_server_info_matches_server_information(jira: JiraSandbox) -> None:
    body = _get(jira, "/rest/api/3/serverInfo").json()
    _validate(body, _response_schema("/rest/api/3/serverInfo"))


def test_myself_matches_user(jira: JiraSandbox) -> None:
    _validate(_get(jira, "/rest/api/3/myself").json(), _response_schema("/rest/api/3/myself"))


def test_issue_matches_issue_bean(jira: JiraSandbox) -> None:
    issue_id = next(iter(jira.dataset)).id
    body = _get(jira, f"/rest/api/3/issue/{issue_id}").json()
    _validate(body, _response_schema("/rest/api/3/issue/{issueIdOrKey}"))


def test_error_bodies_match_error_collection(jira: JiraSandbox) -> None:
    bad_jql = _get(jira, "/rest/api/3/search/jql", jql="project = ")
    legacy = _get(jira, "/rest/api/3/search", jql="project = ENT")
    anonymous = requests.get(f"{jira.url}/rest/api/3/field", timeout=TIMEOUT)
    assert (bad_jql.status_code, legacy.status_code, anonymous.status_code) == (400, 410, 401)
    for response in (bad_jql, legacy, anonymous):
        _validate(response.json(), _error_schema())


def test_jql_parse_given_valid_and_invalid_queries_matches_parsed_jql_queries(
    jira: JiraSandbox,
) -> None:
    response = requests.post(f"{jira.url}/rest/api/3/jql/parse", params={"validation": "strict"},
                             json={"queries": ["project = ENT", "project = "]},
                             auth=jira.basic_auth, timeout=TIMEOUT)
    body = response.json()
    _validate(body, _response_schema("/rest/api/3/jql/parse", "post"))
    assert [q["query"] for q in body["queries"]] == ["project = ENT", "project = "]
    assert "errors" not in body["queries"][0] and body["queries"][1]["errors"]


def test_jql_parse_given_no_validation_parameter_is_400(jira: JiraSandbox) -> None:
    response = requests.post(f"{jira.url}/rest/api/3/jql/parse", json={"queries": ["x = 1"]},
                             auth=jira.basic_auth, timeout=TIMEOUT)
    assert response.status_code == 400
    _validate(response.json(), _error_schema())


def test_project_given_key_matches_project_and_unknown_key_is_404(jira: JiraSandbox) -> None:
    found = _get(jira, "/rest/api/3/project/ENT")
    _validate(found.json(), _response_schema("/rest/api/3/project/{projectIdOrKey}"))
    assert found.json()["key"] == "ENT"
    missing = _get(jira, "/rest/api/3/project/NOPE")
    assert missing.status_code == 404
    _validate(missing.json(), _error_schema())
