"""The sandbox's JQL subset: parser, evaluator, dates in the user's zone, ORDER BY, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from okr_sync.sandbox.jira.data import (
    IssueRecord,
    JiraDataset,
    Project,
    SandboxClock,
    generate_dataset,
)
from okr_sync.sandbox.jira.jql import (
    JqlError,
    JqlSyntaxError,
    JqlValidationError,
    UnboundedJqlError,
    parse_jql,
)
from okr_sync.sandbox.jira.jql_dates import date_function, parse_date_literal
from okr_sync.sandbox.jira.jql_eval import JqlContext, search
from okr_sync.sandbox.jira.render import FieldSetup

NEW_YORK = ZoneInfo("America/New_York")
# Sunday 2026-10-11 08:00 in New York (EDT, UTC-4).
_NOW = datetime(2026, 10, 11, 12, 0, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _issue(issue_id: int, key: str, issuetype: str, status: str, **fields: Any) -> IssueRecord:
    created = _utc(fields.pop("created", "2026-10-01T12:00:00"))
    updated = _utc(fields.pop("updated", "2026-10-01T12:00:00"))
    resolved = fields.pop("resolved", None)
    return IssueRecord(
        id=issue_id, key=key, project=key.split("-")[0], issuetype=issuetype,
        summary=fields.pop("summary", f"Work item {key}"), status=status,
        priority=fields.pop("priority", "Medium"), created=created, updated=updated,
        resolutiondate=_utc(resolved) if resolved else None, **fields)


def _dataset() -> JiraDataset:
    projects = [
        Project(10000, "ENT", "Enterprise", {"Auth": 1, "Billing": 2},
                {"2026.10": (11, True), "2026.11": (12, False)}),
        Project(10001, "SUP", "Customer Support", {"Triage": 3}, {}),
    ]
    issues = [
        _issue(10000, "ENT-1", "Epic", "In Progress", summary="Single sign-on initiative",
               priority="High", created="2026-10-01T12:00:00", updated="2026-10-05T12:00:00"),
        _issue(10001, "ENT-2", "Story", "Done", parent_id=10000, resolution="Done",
               resolved="2026-10-10T13:59:59.999", story_points=5.0, labels=["sso", "security"],
               components=["Auth"], fix_versions=["2026.10"], created="2026-10-02T09:00:00",
               updated="2026-10-10T14:00:00"),
        _issue(10002, "ENT-3", "Story", "To Do", parent_id=10000, priority=None,
               created="2026-10-03T00:00:00", updated="2026-10-10T13:59:59.999"),
        _issue(10003, "ENT-4", "Sub-task", "In Review", parent_id=10001, story_points=1.0,
               labels=["sso"], priority="Low", created="2026-10-04T00:00:00",
               updated="2026-10-11T04:00:00"),
        _issue(10004, "SUP-1", "Bug", "Won't Do", resolution="Won't Do",
               resolved="2026-10-09T12:00:00", priority="Highest", labels=["customer"],
               components=["Triage"], story_points=3.0, created="2026-10-05T00:00:00",
               updated="2026-10-09T00:00:00", summary='Crash when saying "hi"'),
        _issue(10005, "SUP-2", "Task", "Backlog", priority="Lowest", story_points=8.0,
               created="2026-10-06T00:00:00", updated="2026-10-06T00:00:00"),
    ]
    return JiraDataset(projects, issues, clock=SandboxClock(_NOW))


@pytest.fixture(scope="module")
def ctx() -> JqlContext:
    dataset = _dataset()
    return JqlContext(dataset, NEW_YORK, dataset.now(), FieldSetup().custom_clauses())


def _keys(jql: str, ctx: JqlContext) -> list[str]:
    return [i.key for i in search(jql, ctx, require_bounded=True)]


ALL = {"ENT-1", "ENT-2", "ENT-3", "ENT-4", "SUP-1", "SUP-2"}

CASES = [
    # project, key, id (id / key / issue are one field in Jira)
    ("project = ENT", {"ENT-1", "ENT-2", "ENT-3", "ENT-4"}),
    ("PROJECT = sup", {"SUP-1", "SUP-2"}),
    ("project = 'Customer Support'", {"SUP-1", "SUP-2"}),
    ("project in (ENT, SUP)", ALL),
    ("project != ENT", {"SUP-1", "SUP-2"}),
    ("project not in (ENT)", {"SUP-1", "SUP-2"}),
    ("key = ENT-2", {"ENT-2"}),
    ("id = 10001", {"ENT-2"}),
    ("issue in (ENT-1, 10005)", {"ENT-1", "SUP-2"}),
    ("key > ENT-2", {"ENT-3", "ENT-4"}),
    ("id <= 10001", {"ENT-1", "ENT-2"}),
    ("key != ENT-1 AND project = ENT", {"ENT-2", "ENT-3", "ENT-4"}),
    # issue type, status, status category
    ("issuetype = Story", {"ENT-2", "ENT-3"}),
    ("type in (Bug, Task)", {"SUP-1", "SUP-2"}),
    ("issuetype in subTaskIssueTypes()", {"ENT-4"}),
    ("issuetype in standardIssueTypes() AND project = SUP", {"SUP-1", "SUP-2"}),
    ("status = 'In Review'", {"ENT-4"}),
    ("status = done", {"ENT-2"}),
    ('status in ("To Do", Backlog)', {"ENT-3", "SUP-2"}),
    ("status != Done", ALL - {"ENT-2"}),
    ("statusCategory = Done", {"ENT-2", "SUP-1"}),
    ("statusCategory = done", {"ENT-2", "SUP-1"}),
    ('statusCategory = "In Progress"', {"ENT-1", "ENT-4"}),
    ("statusCategory = indeterminate", {"ENT-1", "ENT-4"}),
    ("statusCategory in (new, 3)", {"ENT-3", "SUP-2", "ENT-2", "SUP-1"}),
    ('statusCategory = "To Do"', {"ENT-3", "SUP-2"}),
    ("statusCategory != Done", {"ENT-1", "ENT-3", "ENT-4", "SUP-2"}),
    # priority: empty never matches != / NOT IN; ranges follow Jira's sequence
    ("priority = High", {"ENT-1"}),
    ("priority is EMPTY", {"ENT-3"}),
    ("priority = EMPTY", {"ENT-3"}),
    ("priority is not null", ALL - {"ENT-3"}),
    ("priority != Medium", {"ENT-1", "ENT-4", "SUP-1", "SUP-2"}),
    ("priority in (High, EMPTY)", {"ENT-1", "ENT-3"}),
    ("priority not in (High, Low)", {"ENT-2", "SUP-1", "SUP-2"}),
    ("priority > Medium", {"ENT-1", "SUP-1"}),
    ("priority <= Low", {"ENT-4", "SUP-2"}),
    # resolution
    ("resolution = Unresolved", {"ENT-1", "ENT-3", "ENT-4", "SUP-2"}),
    ('resolution = "Won\'t Do"', {"SUP-1"}),
    # multi-valued fields
    ("labels = sso", {"ENT-2", "ENT-4"}),
    ("labels in (SSO)", {"ENT-2", "ENT-4"}),
    ("labels != sso", {"SUP-1"}),
    ("labels is EMPTY", {"ENT-1", "ENT-3", "SUP-2"}),
    ("labels not in (sso, customer)", set()),
    ("labels in (customer, EMPTY) AND project = SUP", {"SUP-1", "SUP-2"}),
    ("component = auth", {"ENT-2"}),
    ("component is not EMPTY", {"ENT-2", "SUP-1"}),
    ("fixVersion = '2026.10'", {"ENT-2"}),
    ("fixVersion is EMPTY AND project = ENT", {"ENT-1", "ENT-3", "ENT-4"}),
    # hierarchy
    ("parent = ENT-1", {"ENT-2", "ENT-3"}),
    ("parent = 10001", {"ENT-4"}),
    ("parent in (ENT-1, ENT-2)", {"ENT-2", "ENT-3", "ENT-4"}),
    ('"Epic Link" = ENT-1', {"ENT-2", "ENT-3"}),
    ("parent is EMPTY", {"ENT-1", "SUP-1", "SUP-2"}),
    # story points under every name Jira accepts
    ('"Story point estimate" >= 5', {"ENT-2", "SUP-2"}),
    ("cf[10016] = 3", {"SUP-1"}),
    ("customfield_10016 in (1, 8)", {"ENT-4", "SUP-2"}),
    ("cf[10016] is EMPTY", {"ENT-1", "ENT-3"}),
    ('"story point estimate" != 5', {"ENT-4", "SUP-1", "SUP-2"}),
    ("cf[10016] < 3.5", {"ENT-4", "SUP-1"}),
    # text
    ("summary ~ sign", {"ENT-1"}),
    ('summary ~ "say\\"ing \\"hi"', {"SUP-1"}),
    ("summary !~ crash", ALL - {"SUP-1"}),
    # precedence: AND binds tighter than OR; NOT binds tightest
    ("project = SUP OR project = ENT AND issuetype = Epic", {"SUP-1", "SUP-2", "ENT-1"}),
    ("(project = SUP OR project = ENT) AND issuetype = Epic", {"ENT-1"}),
    ("NOT project = ENT", {"SUP-1", "SUP-2"}),
    ("NOT project = ENT OR issuetype = Epic", {"SUP-1", "SUP-2", "ENT-1"}),
    ("NOT (project = ENT AND issuetype = Story)", ALL - {"ENT-2", "ENT-3"}),
    ("NOT NOT project = SUP", {"SUP-1", "SUP-2"}),
    ("not labels = sso", {"SUP-1"}),
    ("NOT priority = Medium", {"ENT-1", "ENT-4", "SUP-1", "SUP-2"}),
    ("NOT (labels = sso OR priority is EMPTY)", {"SUP-1"}),
    ("NOT resolved > '2026/10/01'", set()),
    ("project = ENT && !(issuetype = Epic) || key = SUP-2", {"ENT-2", "ENT-3", "ENT-4", "SUP-2"}),
    ("((project = ENT) and ((labels = sso)))", {"ENT-2", "ENT-4"}),
    ("project = ENT\n  AND\n  status = 'To Do'", {"ENT-3"}),
]


@pytest.mark.parametrize(("jql", "expected"), CASES, ids=[c[0] for c in CASES])
def test_search_given_query_returns_matching_issues(
    jql: str, expected: set[str], ctx: JqlContext,
) -> None:
    assert set(_keys(jql, ctx)) == expected


DATE_CASES = [
    # Literal values are wall-clock minutes in the user's zone (New York, UTC-4 in October):
    # ENT-2 was updated at 10:00:00.000 EDT, ENT-3 at 09:59:59.999 EDT.
    ('updated >= "2026/10/10 10:00" AND project = ENT', {"ENT-2", "ENT-4"}),
    ('updated >= "2026-10-10 10:00" AND project = ENT', {"ENT-2", "ENT-4"}),
    ('updated > "2026/10/10 09:59" AND project = ENT', {"ENT-2", "ENT-3", "ENT-4"}),
    ('updated < "2026/10/10 10:00" AND project = ENT', {"ENT-1", "ENT-3"}),
    ("updated >= 2026-10-10 AND updated < 2026/10/11", {"ENT-2", "ENT-3"}),
    ("resolved >= '2026/10/09'", {"ENT-2", "SUP-1"}),
    ("resolutiondate is EMPTY", {"ENT-1", "ENT-3", "ENT-4", "SUP-2"}),
    ("createdDate <= '2026/10/01 08:00'", {"ENT-1"}),
    # Relative periods count from the sandbox clock (2026-10-11 12:00 UTC).
    ("updated >= -1d", {"ENT-2", "ENT-3", "ENT-4"}),
    ("updated >= -8h", {"ENT-4"}),
    ("updated > -8h", set()),
    ("updated >= '-480m'", {"ENT-4"}),
    ("updated >= '-5d 12h'", ALL - {"ENT-1"}),
    ("created > -1w", {"SUP-1", "SUP-2"}),
    # Functions are evaluated in the user's zone.
    ("updated >= startOfDay()", {"ENT-4"}),
    ("updated < startOfDay(-1)", {"ENT-1", "SUP-1", "SUP-2"}),
    ("updated <= now() AND updated > endOfDay(-2)", {"ENT-2", "ENT-3", "ENT-4"}),
    ("created >= startOfMonth()", ALL),
]


@pytest.mark.parametrize(("jql", "expected"), DATE_CASES, ids=[c[0] for c in DATE_CASES])
def test_search_given_dates_in_user_timezone_matches_at_minute_boundaries(
    jql: str, expected: set[str], ctx: JqlContext,
) -> None:
    assert set(_keys(jql, ctx)) == expected


def test_parse_date_literal_given_utc_zone_shifts_the_boundary() -> None:
    in_new_york = parse_date_literal("2026/10/10 10:00", NEW_YORK, _NOW)
    in_utc = parse_date_literal("2026/10/10 10:00", ZoneInfo("UTC"), _NOW)
    assert in_new_york == _utc("2026-10-10T14:00:00")
    assert in_utc == _utc("2026-10-10T10:00:00")


@pytest.mark.parametrize("text", ["2026/13/01", "2026/10/10 25:00", "yesterday", "10/10/2026",
                                  "2026/10-10", "-5x", ""])
def test_parse_date_literal_given_invalid_value_returns_none(text: str) -> None:
    assert parse_date_literal(text, NEW_YORK, _NOW) is None


TUESDAY = datetime(2026, 10, 13, 12, 0, tzinfo=UTC)
FUNCTION_CASES = [
    ("now", (), TUESDAY),
    ("startOfDay", (), _utc("2026-10-13T04:00:00")),
    ("endOfDay", (), _utc("2026-10-14T03:59:59.999")),
    ("startOfWeek", (), _utc("2026-10-11T04:00:00")),  # Sunday, as en_US Jira
    ("endOfWeek", (), _utc("2026-10-18T03:59:59.999")),
    ("startOfWeek", ("-1",), _utc("2026-10-04T04:00:00")),
    ("startOfMonth", ("-1",), _utc("2026-09-01T04:00:00")),
    ("endOfMonth", (), _utc("2026-11-01T03:59:59.999")),  # DST ends Nov 1 at 02:00
    ("startOfMonth", ("+2",), _utc("2026-12-01T05:00:00")),  # EST in December
    ("startOfYear", (), _utc("2026-01-01T05:00:00")),
    ("endOfYear", (), _utc("2027-01-01T04:59:59.999")),
    ("startOfDay", ("-1d",), _utc("2026-10-12T04:00:00")),
    ("startOfDay", ("8h",), _utc("2026-10-13T12:00:00")),
]


@pytest.mark.parametrize(("name", "args", "expected"), FUNCTION_CASES,
                         ids=[f"{c[0]}({','.join(c[1])})" for c in FUNCTION_CASES])
def test_date_function_given_new_york_user_returns_local_boundary(
    name: str, args: tuple[str, ...], expected: datetime,
) -> None:
    assert date_function(name, args, NEW_YORK, TUESDAY) == expected


ORDER_CASES = [
    ("project = ENT ORDER BY key ASC", ["ENT-1", "ENT-2", "ENT-3", "ENT-4"]),
    ("project in (ENT, SUP)", ["SUP-2", "SUP-1", "ENT-4", "ENT-3", "ENT-2", "ENT-1"]),
    ("project in (ENT, SUP) ORDER BY updated DESC",
     ["ENT-4", "ENT-2", "ENT-3", "SUP-1", "SUP-2", "ENT-1"]),
    ("project in (ENT, SUP) order by created",
     ["ENT-1", "ENT-2", "ENT-3", "ENT-4", "SUP-1", "SUP-2"]),
    # Empty values sort last ascending, first descending.
    ("project in (ENT, SUP) ORDER BY priority DESC, key ASC",
     ["ENT-3", "SUP-1", "ENT-1", "ENT-2", "ENT-4", "SUP-2"]),
    ("project in (ENT, SUP) ORDER BY resolved ASC, key DESC",
     ["SUP-1", "ENT-2", "SUP-2", "ENT-4", "ENT-3", "ENT-1"]),
    ('project in (ENT, SUP) ORDER BY "Story point estimate" DESC, id',
     ["ENT-1", "ENT-3", "SUP-2", "ENT-2", "SUP-1", "ENT-4"]),
    ("project = SUP ORDER BY statusCategory ASC", ["SUP-2", "SUP-1"]),
]


@pytest.mark.parametrize(("jql", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_search_given_order_by_returns_issues_in_that_order(
    jql: str, expected: list[str], ctx: JqlContext,
) -> None:
    assert _keys(jql, ctx) == expected


ERROR_CASES: list[tuple[str, type[JqlError], str]] = [
    ("project = ENT AND", JqlSyntaxError,
     "Error in the JQL Query: Expecting a field name before the end of the query."),
    ("project ENT", JqlSyntaxError,
     "Error in the JQL Query: Expecting operator but got 'ENT'. The valid operators are "
     "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. "
     "(line 1, character 9)"),
    ("project = ENT foo", JqlSyntaxError,
     "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'foo'. "
     "(line 1, character 15)"),
    ("project = ENT\nAND status = Done bar", JqlSyntaxError,
     "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'bar'. "
     "(line 2, character 19)"),
    ('status = "To Do', JqlSyntaxError,
     "Error in the JQL Query: The quoted string 'To Do' has not been completed. "
     "(line 1, character 10)"),
    ("(project = ENT", JqlSyntaxError,
     "Error in the JQL Query: Expecting ')' before the end of the query."),
    ("project = ENT)", JqlSyntaxError,
     "Error in the JQL Query: Expecting either 'OR' or 'AND' but got ')'. "
     "(line 1, character 14)"),
    ("project = ", JqlSyntaxError,
     "Error in the JQL Query: Expecting either a value, list or function before the end of "
     "the query."),
    ("labels = and", JqlSyntaxError,
     "Error in the JQL Query: 'and' is a reserved JQL word. You must surround it in quotation "
     "marks to use it in a query. (line 1, character 10)"),
    ("labels = 50%", JqlSyntaxError,
     "Error in the JQL Query: The character '%' is a reserved JQL character. You must enclose "
     "it in a string or use the escape '\\u0025' instead. (line 1, character 12)"),
    ("status is Done", JqlSyntaxError,
     "Error in the JQL Query: Expecting 'EMPTY' but got 'Done'. (line 1, character 11)"),
    ("project = ENT ORDER created", JqlSyntaxError,
     "Error in the JQL Query: Expecting 'by' but got 'created'. (line 1, character 21)"),
    ("status was Done", JqlSyntaxError, "Error in the JQL Query: The history operator"),
    ("foo = bar", JqlValidationError,
     "Field 'foo' does not exist or you do not have permission to view it."),
    ("project = NOPE", JqlValidationError,
     "The value 'NOPE' does not exist for the field 'project'."),
    ("status = Shipped", JqlValidationError,
     "The value 'Shipped' does not exist for the field 'status'."),
    ("component = Nope", JqlValidationError,
     "The value 'Nope' does not exist for the field 'component'."),
    ("created > 'yesterday'", JqlValidationError,
     "Date value 'yesterday' for field 'created' is invalid. Valid formats include: "
     "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
     "e.g. '-5d', '4w 2d'."),
    ("status > Done", JqlValidationError,
     "The operator '>' is not supported by the 'status' field."),
    ("summary = crash", JqlValidationError,
     "The operator '=' is not supported by the 'summary' field."),
    ("project = (ENT, SUP)", JqlValidationError,
     "The operator '=' does not support the list value '(ENT, SUP)' for field 'project'."),
    ("key = foo", JqlValidationError, "The issue key 'foo' for field 'key' is invalid."),
    ("cf[10016] = abc", JqlValidationError,
     "The value 'abc' is not a valid number for the field 'Story point estimate'."),
    ("created > nope()", JqlValidationError, "Unable to find JQL function 'nope()'."),
    ("issuetype = now()", JqlValidationError,
     "A value provided by the function 'now' is invalid for the field 'issuetype'."),
    ("project = ENT ORDER BY labels", JqlValidationError,
     "Field 'labels' does not support sorting."),
    ("ORDER BY created DESC", UnboundedJqlError,
     "Unbounded JQL queries are not allowed here. Please add a search restriction to your "
     "query."),
    ("", UnboundedJqlError, "Unbounded JQL queries are not allowed here."),
]


@pytest.mark.parametrize(("jql", "error", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_search_given_invalid_query_raises_typed_error_with_jira_message(
    jql: str, error: type[JqlError], message: str, ctx: JqlContext,
) -> None:
    with pytest.raises(error) as caught:
        search(jql, ctx, require_bounded=True)
    assert caught.value.messages[0].startswith(message)


def test_search_given_several_bad_clauses_lists_every_error(ctx: JqlContext) -> None:
    with pytest.raises(JqlValidationError) as caught:
        search("foo = 1 AND project = NOPE", ctx, require_bounded=True)
    assert caught.value.messages == [
        "Field 'foo' does not exist or you do not have permission to view it.",
        "The value 'NOPE' does not exist for the field 'project'.",
    ]


def test_search_given_eight_order_fields_and_a_limit_of_seven_refuses(ctx: JqlContext) -> None:
    jql = "project = ENT ORDER BY " + ", ".join(["key"] * 8)
    with pytest.raises(JqlValidationError):
        search(jql, ctx, require_bounded=True, max_order_fields=7)
    assert len(search(jql, ctx, require_bounded=True)) == 4


def test_search_given_unbounded_query_where_allowed_returns_everything(ctx: JqlContext) -> None:
    assert len(search("ORDER BY key", ctx, require_bounded=False)) == len(ALL)


def test_search_given_moved_issue_finds_it_by_its_old_key() -> None:
    dataset = _dataset()
    dataset.move(10005, "ENT")
    ctx = JqlContext(dataset, NEW_YORK, dataset.now(), {})
    found = search("key = SUP-2", ctx, require_bounded=True)
    assert [(i.id, i.key) for i in found] == [(10005, "ENT-5")]


def test_search_given_data_center_parent_matches_only_subtask_parents() -> None:
    dataset = _dataset()
    ctx = JqlContext(dataset, NEW_YORK, _NOW, FieldSetup.data_center().custom_clauses(),
                     parent_includes_epics=False)
    assert [i.key for i in search("parent = ENT-1", ctx, require_bounded=True)] == []
    assert [i.key for i in search("parent = ENT-2", ctx, require_bounded=True)] == ["ENT-4"]
    epic = search('"Epic Link" = ENT-1 ORDER BY key', ctx, require_bounded=True)
    assert [i.key for i in epic] == ["ENT-2", "ENT-3"]
    assert len(search('"Story Points" > 4', ctx, require_bounded=True)) == 2


def test_parse_jql_given_not_and_or_builds_the_expected_tree() -> None:
    query = parse_jql("NOT a = 1 OR b = 2 AND c = 3 ORDER BY d DESC, e")
    assert repr(query.where) == (
        "Or(terms=(Not(term=Clause(field='a', op=<Op.EQ: '='>, operands=(Value(text='1', "
        "quoted=False),), is_list=False)), And(terms=(Clause(field='b', op=<Op.EQ: '='>, "
        "operands=(Value(text='2', quoted=False),), is_list=False), Clause(field='c', "
        "op=<Op.EQ: '='>, operands=(Value(text='3', quoted=False),), is_list=False)))))"
    )
    assert [(k.field, k.descending) for k in query.order_by] == [("d", True), ("e", None)]


def test_search_given_generated_dataset_agrees_with_a_plain_filter() -> None:
    dataset = generate_dataset(seed=7, issues=1500)
    ctx = JqlContext(dataset, NEW_YORK, dataset.now(), FieldSetup().custom_clauses())
    jql = ("project in (ENT, OPS) AND statusCategory != done AND (labels = sso OR "
           "cf[10016] >= 5) AND issuetype != Epic")
    expected = {
        i.id for i in dataset
        if i.project in ("ENT", "OPS") and i.status_category != "done"
        and ("sso" in i.labels or (i.story_points or 0) >= 5) and i.issuetype != "Epic"
    }
    found = {i.id for i in search(jql, ctx, require_bounded=True)}
    assert found == expected
    assert 10 < len(found) < len(dataset)
