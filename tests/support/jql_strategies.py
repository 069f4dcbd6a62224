"""Hypothesis strategies: random sandbox issues, and random JQL in the locally evaluable subset.

The JQL is written the many ways Jira's grammar allows (keyword case, aliases, quoting,
escapes, ``&&``/``||``/``!``, lists with EMPTY, the four date formats) so that the local
evaluator and the sandbox's own JQL are compared on the text, not on a shared tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.sandbox.jira.model import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    IssueRecord,
    JiraDataset,
    Project,
    SandboxClock,
)
from okr_sync.sandbox.jira.render import FieldSelection, FieldSetup, IssueRenderer
from okr_sync.sync.jql_local.syntax import RESERVED_WORDS

PROJECTS = ("ENT", "SUP", "OPS")
LABELS = ("sso", "Backend", "on-call", "tech-debt", "42", "k8s")
COMPONENTS = ("Auth", "Billing", "Admin Console", "CI/CD")
VERSIONS = ("2026.10", "2026.11", "v2")
ACCOUNTS = ("5b10ac8d82e05b22cc7d4ef5", "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
            "712020:0e3f1c9a-1111-4a2b-9c3d-123456789abc")
#: Zones with no clock change between these dates (so every wall time is unambiguous).
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin", "Pacific/Chatham")
START = datetime(2026, 10, 5, tzinfo=UTC)
SPAN_MINUTES = 60 * 24 * 18


@dataclass
class World:
    dataset: JiraDataset
    mirror: dict[str, JiraIssue]
    tz: ZoneInfo


def _catalog() -> list[Project]:
    out = []
    for index, key in enumerate(PROJECTS):
        project = Project(10000 + index, key, f"{key.title()} Project")
        project.components = {name: 20000 + 10 * index + i for i, name in enumerate(COMPONENTS)}
        project.versions = {name: (30000 + 10 * index + i, i == 0)
                            for i, name in enumerate(VERSIONS)}
        out.append(project)
    return out


def _instant(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes, seconds=minutes % 60, milliseconds=minutes % 997)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A small Jira: epics, stories with or without an epic, sub-tasks under them."""
    records: list[IssueRecord] = []
    numbers = dict.fromkeys(PROJECTS, 0)
    count = draw(st.integers(1, 25))
    for index in range(count):
        project = draw(st.sampled_from(PROJECTS))
        numbers[project] += 1
        parents = [r for r in records if r.issuetype != "Sub-task"]
        kind = draw(st.sampled_from(["Epic", "Story", "Task", "Bug", "Sub-task"]))
        if kind == "Sub-task" and not parents:
            kind = "Story"
        parent = None
        if kind == "Sub-task":
            parent = draw(st.sampled_from(parents)).id
        elif kind != "Epic" and draw(st.booleans()):
            epics = [r for r in records if r.issuetype == "Epic"]
            # Any issue may be a parent on Cloud; an epic is the usual one.
            parent = draw(st.sampled_from(epics or parents)).id if (epics or parents) else None
        status = draw(st.sampled_from(STATUSES))
        created = draw(st.integers(0, SPAN_MINUTES))
        updated = draw(st.integers(created, SPAN_MINUTES))
        done = status.category == "done"
        records.append(IssueRecord(
            id=1000 + index, key=f"{project}-{numbers[project]}", project=project,
            issuetype=kind, summary=f"issue {index}", status=status.name,
            priority=draw(st.none() | st.sampled_from([p.name for p in PRIORITIES])),
            created=_instant(created), updated=_instant(updated),
            labels=draw(st.lists(st.sampled_from(LABELS), max_size=3, unique=True)),
            components=draw(st.lists(st.sampled_from(COMPONENTS), max_size=2, unique=True)),
            fix_versions=draw(st.lists(st.sampled_from(VERSIONS), max_size=2, unique=True)),
            parent_id=parent,
            resolution=draw(st.sampled_from([r.name for r in RESOLUTIONS])) if done else None,
            resolutiondate=_instant(updated) if done else None,
            assignee=draw(st.none() | st.sampled_from(ACCOUNTS)),
            reporter=draw(st.none() | st.sampled_from(ACCOUNTS)),
        ))
    dataset = JiraDataset(_catalog(), records, clock=SandboxClock(START + timedelta(days=30)))
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    renderer = IssueRenderer(dataset, "http://sandbox.invalid", "3", tz, FieldSetup(), cloud=True)
    every = FieldSelection.parse(["*all"], "id")
    mirror = {}
    for record in records:
        item = JiraIssue.from_json(renderer.issue(record, every),
                                   extra_fields=("assignee", "reporter"))
        mirror[item.id] = item
    return World(dataset, mirror, tz)


# ------------------------------------------------------------------------ JQL text
def _cased(draw: st.DrawFn, word: str) -> str:
    return draw(st.sampled_from([word, word.upper(), word.lower(), word.title()]))


def _value(draw: st.DrawFn, text: str) -> str:
    bare_ok = (text and not text.isdigit() and text.lower() not in RESERVED_WORDS
               and all(c.isalnum() or c in "-_" for c in text))
    style = draw(st.sampled_from(["bare", "double", "single"] if bare_ok else ["double", "single"]))
    if style == "bare":
        return text
    quote = '"' if style == "double" else "'"
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return f"{quote}{escaped}{quote}"


def _names(field: str, world_keys: list[str], world_ids: list[str]) -> list[str]:
    return {
        "project": list(PROJECTS),
        "issuetype": [t.name for t in ISSUE_TYPES],
        "status": [s.name for s in STATUSES],
        "priority": [p.name for p in PRIORITIES],
        "resolution": [r.name for r in RESOLUTIONS] + ["Unresolved"],
        "statusCategory": [*STATUS_CATEGORIES, "To Do", "In Progress", "Done", "2", "3", "4"],
        "labels": list(LABELS),
        "component": list(COMPONENTS),
        "fixVersion": list(VERSIONS),
        "parent": world_keys + world_ids,
        '"Epic Link"': world_keys + world_ids,
        "assignee": list(ACCOUNTS),
        "reporter": list(ACCOUNTS),
    }[field]


_FIELDS = ("project", "issuetype", "status", "priority", "resolution", "statusCategory", "labels",
           "component", "fixVersion", "parent", '"Epic Link"', "assignee", "reporter")
_ALIASES = {"issuetype": ["issuetype", "type"], "labels": ["labels"], "component": ["component"],
            "fixVersion": ["fixVersion", "fixversion"], '"Epic Link"': ['"Epic Link"',
                                                                           "'epic link'"]}
_EMPTIABLE = {"priority", "resolution", "labels", "component", "fixVersion", "parent",
              '"Epic Link"', "assignee", "reporter"}
_DATES = {"created": ["created", "createdDate"], "updated": ["updated", "updatedDate"],
          "resolved": ["resolved", "resolutionDate"]}


@st.composite
def _clause(draw: st.DrawFn, keys: list[str], ids: list[str]) -> str:
    field = draw(st.sampled_from([*_FIELDS, *_DATES]))
    if field in _DATES:
        name = _cased(draw, draw(st.sampled_from(_DATES[field])))
        if field == "resolved" and draw(st.integers(0, 4)) == 0:
            return f"{name} IS {'NOT ' if draw(st.booleans()) else ''}EMPTY"
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        wall = START + timedelta(minutes=draw(st.integers(-60, SPAN_MINUTES + 60)))
        sep = draw(st.sampled_from(["/", "-"]))
        text = wall.strftime(f"%Y{sep}%m{sep}%d")
        with_time = draw(st.booleans())
        if with_time:
            text += wall.strftime(" %H:%M")
        # A space or a "/" must be quoted; "2026-10-05" may stand bare.
        literal = _value(draw, text) if sep == "-" and not with_time else f'"{text}"'
        return f"{name} {op} {literal}"
    name = draw(st.sampled_from(_ALIASES.get(field, [field])))
    name = name if name.startswith(("'", '"')) else _cased(draw, name)
    values = _names(field, keys, ids)
    choices = ["=", "!=", "in", "not in"] + (["is", "is not"] if field in _EMPTIABLE else [])
    op = draw(st.sampled_from(choices))
    if op in ("is", "is not"):
        return f"{name} {_cased(draw, op)} {_cased(draw, draw(st.sampled_from(['EMPTY', 'null'])))}"
    def one() -> str:
        if field in _EMPTIABLE and draw(st.integers(0, 6)) == 0:
            return _cased(draw, "empty")
        text = draw(st.sampled_from(values))
        if field not in ("parent", '"Epic Link"', "statusCategory", "project", "assignee",
                         "reporter"):
            text = draw(st.sampled_from([text, text.lower(), text.upper()]))
        return _value(draw, text)
    if op in ("in", "not in"):
        items = [one() for _ in range(draw(st.integers(1, 3)))]
        return f"{name} {_cased(draw, op)} ({', '.join(items)})"
    return f"{name} {op} {one()}"


def _join(draw: st.DrawFn, word: str, parts: list[str]) -> str:
    symbol = {"and": "&&", "or": "||"}[word]
    glue = draw(st.sampled_from([f" {word} ", f" {word.upper()} ", f" {symbol} "]))
    return glue.join(parts)


def _expression(draw: st.DrawFn, keys: list[str], ids: list[str], depth: int) -> str:
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        text = draw(_clause(keys, ids))
    else:
        kind = draw(st.sampled_from(["and", "or", "not"]))
        if kind == "not":
            inner = _expression(draw, keys, ids, depth - 1)
            text = f"{draw(st.sampled_from(['NOT ', 'not ', '!']))}({inner})"
        else:
            parts = [_expression(draw, keys, ids, depth - 1)
                     for _ in range(draw(st.integers(2, 3)))]
            text = f"({_join(draw, kind, parts)})"
    return text


@st.composite
def local_jql(draw: st.DrawFn, world: World) -> str:
    """A JQL restricted to some projects, with a random condition and maybe an ORDER BY."""
    keys = sorted({i.key for i in world.mirror.values()})
    ids = sorted(world.mirror)
    projects = draw(st.lists(st.sampled_from(PROJECTS), min_size=1, max_size=3, unique=True))
    head = (f"project = {projects[0]}" if len(projects) == 1 and draw(st.booleans())
            else f"{_cased(draw, 'project')} in ({', '.join(projects)})")
    body = _expression(draw, keys, ids, draw(st.integers(0, 3)))
    order = draw(st.sampled_from(["", " ORDER BY created DESC", " order by key, priority asc"]))
    return f"{head} {draw(st.sampled_from(['AND', 'and', '&&']))} {body}{order}"


def sandbox_ids(world: World, jql: str) -> set[str]:
    """The sandbox's own answer (its JQL implementation, as Jira Cloud)."""
    from okr_sync.sandbox.jira.jql_eval import JqlContext, search

    ctx = JqlContext(world.dataset, world.tz, world.dataset.now(),
                     FieldSetup().custom_clauses(), parent_includes_epics=True)
    return {str(r.id) for r in search(jql, ctx, require_bounded=True)}


def describe(world: World) -> list[dict[str, Any]]:
    """The mirror in short, for a failing example's report."""
    return [{"key": i.key, "id": i.id, "type": i.issuetype, "parent": i.parent_key,
             "status": i.status, "priority": i.priority, "labels": i.labels,
             "created": i.created.isoformat()} for i in world.mirror.values()]
