"""Hypothesis-fuzzed Jira issue payloads never crash the mapping.

An issue either maps to a record that keeps the promises the rest of okr-sync relies on
(ASCII-digit id, PROJECT-NUMBER key, finite story points, aware timestamps), or is refused
with a typed error naming it: an id or key Jira never promises is skipped and counted
(:class:`JiraIssueIdentityError`) and named in the pass's warnings; any other shape fails
its source with a
:class:`JiraIssueShapeError` - never a ``KeyError``/``TypeError`` traceback. Through the
client and the sandbox Jira too: the good issues of a page still arrive, the skipped
ones are counted once each.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from okr_sync.config.plan_loader import load_plan
from okr_sync.connectors.errors import ConnectorError, PermanentError
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.records import (
    JiraIssue,
    JiraIssueIdentityError,
    JiraIssueShapeError,
    is_issue_key,
)
from okr_sync.connectors.jira.source import JiraSource
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world
from support.hypothesis_profile import examples
from support.paths import DEMO_PLAN

POINTS = "customfield_10016"

BASE_ISSUE: dict[str, Any] = {
    "id": "10042",
    "key": "ENT-42",
    "self": "https://example.atlassian.net/rest/api/3/issue/10042",
    "fields": {
        "project": {"id": "10000", "key": "ENT", "name": "Enterprise"},
        "issuetype": {"id": "10001", "name": "Story", "subtask": False},
        "parent": {"id": "10040", "key": "ENT-40"},
        "summary": "Ship SSO",
        "status": {"name": "Done", "statusCategory": {"id": 3, "key": "done"}},
        "resolution": {"name": "Done"},
        "resolutiondate": "2026-10-05T10:00:00.000+0000",
        "priority": {"name": "High"},
        "labels": ["okr", "sso"],
        "components": [{"name": "auth"}],
        "fixVersions": [{"name": "1.0"}],
        POINTS: 5,
        "created": "2026-10-01T09:00:00.000+0000",
        "updated": "2026-10-05T10:00:00.000+0000",
    },
}

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "ENT-\u00b2", "12 OR id > 0", "-4", "1e308", "NaN", "2026-02-30",
                     "2026-10-05T10:00:00", "9999-12-31T23:59:59.999+1400", "\u202e", "\x00"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_issue(draw: st.DrawFn, base: dict[str, Any] = BASE_ISSUE) -> Any:
    if draw(st.integers(0, 20)) == 0:
        return draw(JSON_VALUES)  # not even an object
    issue = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(issue)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = issue
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.integers(0, 3)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return issue


def _map(raw: Any) -> JiraIssue:
    return JiraIssue.from_json(raw, story_points_fields=[POINTS], epic_link_field=None,
                               extra_fields=[POINTS, "labels"])


def _assert_record_keeps_its_promises(issue: JiraIssue) -> None:
    assert issue.id.isascii() and issue.id.isdigit()
    assert is_issue_key(issue.key)
    assert issue.story_points is None or math.isfinite(issue.story_points)
    for moment in (issue.created, issue.updated, issue.resolution_date):
        assert moment is None or moment.tzinfo is not None
    assert all(isinstance(label, str) for label in issue.labels)


@settings(max_examples=examples(500), deadline=None)
@given(raw=mutated_issue())
def test_issue_mapping_given_fuzzed_payload_returns_sound_record_or_typed_refusal(
    raw: Any,
) -> None:
    try:
        issue = _map(raw)
    except JiraIssueShapeError as error:
        assert isinstance(error, PermanentError)
        assert str(error).startswith("Jira sent issue ")
        return
    _assert_record_keeps_its_promises(issue)


def test_issue_mapping_given_the_unmutated_payload_reads_every_field() -> None:
    issue = _map(copy.deepcopy(BASE_ISSUE))
    assert (issue.id, issue.key, issue.project, issue.status_category, issue.story_points,
            issue.labels, issue.parent_key) == (
        "10042", "ENT-42", "ENT", "done", 5.0, ("okr", "sso"), "ENT-40")


# -- through the client, against the sandbox Jira --------------------------------------


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=4, issues=60)) as sandbox:
        yield sandbox


def _client(sandbox: JiraSandbox) -> JiraClient:
    email, token = sandbox.basic_auth
    return JiraClient(JiraSource(sandbox.url, email=email, api_token=SecretStr(token),
                                 timeout=10), sleep=lambda seconds: None)


@settings(max_examples=examples(60), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_search_given_page_with_fuzzed_issues_keeps_the_good_ones_and_counts_skips(
    jira: JiraSandbox, data: st.DataObject
) -> None:
    replaced: dict[int, Any] = {}

    def rewrite(payload: Any) -> Any:
        issues = payload.get("issues") if isinstance(payload, dict) else None
        if not issues:
            return payload
        changed = dict(payload)
        changed["issues"] = [replaced.get(n, issue) for n, issue in enumerate(issues)]
        return changed

    expected = sum(1 for record in jira.dataset if record.project == "ENT")
    count = data.draw(st.integers(1, 3), label="bad issues")
    jira.faults.clear()
    jira.faults.rewrite(rewrite, paths="search/jql")
    client = _client(jira)
    try:
        # The page is drawn after the client read its field list (the first search).
        for n in range(count):
            replaced[n] = data.draw(mutated_issue(), label=f"issue {n}")
        try:
            issues = list(client.search('project = "ENT"', page_size=100))
        except JiraIssueShapeError as error:
            assert "Jira sent issue" in str(error)  # the source fails, naming the issue
            return
        except ConnectorError as error:  # an issue that is not even an object: a bad page
            assert "search page without an issue list" in str(error)
            return
        for issue in issues:
            _assert_record_keeps_its_promises(issue)
        skipped = len(client.skipped_issues)
        assert all(isinstance(e, JiraIssueIdentityError) for e in client.skipped_issues.values())
        # Every good issue arrived; at most the replaced ones are missing or skipped.
        assert expected - count <= len(issues) <= expected
        assert skipped <= count
    finally:
        jira.faults.clear()
        client.close()


# -- a whole pass: the skipped issue is counted and reported ---------------------------


def test_pass_given_issue_with_unpromised_key_skips_it_and_reports_it_in_the_scorecard(
    tmp_path: Path,
) -> None:
    def bad_key(payload: Any) -> Any:
        issues = payload.get("issues") if isinstance(payload, dict) else None
        if not issues:
            return payload
        first = dict(issues[0])
        first["key"] = "SUP-\u00b2"
        return {**payload, "issues": [first, *issues[1:]]}

    with sandbox_world(tmp_path, issues=120, seed=9) as world:
        world.jira.faults.rewrite(bad_key, paths="search/jql", count=1)
        runtime = world.runtime(load_plan(DEMO_PLAN))
        result = runtime.run_locked(PassOptions())
    assert result.exit_code == 0, result.failures
    skipped = [w.message for w in result.scorecard.warnings if "skipped" in w.message]
    assert len(skipped) == 1, skipped
    assert skipped[0].startswith("source main: 1 issue skipped, id or key not what Jira "
                                 "promises: 'SUP-\u00b2' (id ")
