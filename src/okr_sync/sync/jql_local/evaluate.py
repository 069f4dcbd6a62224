"""Which raw JQL the mirror answers exactly, and the answer (pure, no I/O).

:func:`analyse` accepts a query only when every clause's meaning on Jira is known
from the issue fields the mirror keeps:

- ``project`` (keys), ``issuetype``/``type``, ``status``, ``priority``, ``resolution``
  (``Unresolved`` is empty) by name, case-insensitive; a number there is an id the
  mirror does not keep, so Jira is asked;
- ``statusCategory`` by key (``new``, ``indeterminate``, ``done``), name (``To Do``,
  ``In Progress``, ``Done``) or id (2, 4, 3);
- ``labels``, ``component``, ``fixVersion`` (names; several values per issue);
- ``parent`` and ``"Epic Link"`` (an issue key or id; Jira Cloud only, where
  ``parent`` covers epics: on Data Center the mirror cannot tell them apart);
- ``assignee`` and ``reporter`` by account id (Jira Cloud; the fetch then asks for
  those fields, see :attr:`LocalJql.jira_fields`);
- ``created``/``createdDate``, ``updated``/``updatedDate``, ``resolved``/``resolutionDate``
  compared (``<``, ``<=``, ``>``, ``>=``) with an absolute date ``yyyy/MM/dd``,
  ``yyyy-MM-dd``, ``yyyy/MM/dd HH:mm`` or ``yyyy-MM-dd HH:mm`` read in the Jira user's
  time zone (a wall time that zone skips or repeats is left to Jira);
- ``=``, ``!=``, ``IN``, ``NOT IN``, ``IS [NOT] EMPTY``, ``AND``/``OR``/``NOT``,
  parentheses; ``ORDER BY`` is ignored.

As on Jira, ``NOT`` is pushed down to the clauses (De Morgan), so ``!=``, ``NOT IN``
and a negated comparison never match an issue whose field is empty. The query must
be restricted, by a top-level ``AND`` of ``project =`` / ``project IN``, to projects
the mirror holds in full (checked by the caller against the fetch plan).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from okr_sync.connectors.jira.records import STATUS_CATEGORY_UNDEFINED, JiraIssue
from okr_sync.sync.jql_local.syntax import (
    And,
    Clause,
    Empty,
    Expr,
    Literal_,
    Not,
    NotLocal,
    Operator,
    Or,
    parse,
)

__all__ = ["KeyResolver", "LocalJql", "Matcher", "NotLocal", "analyse", "compile_matcher"]

Kind = Literal["project", "name", "category", "multi", "ref", "date", "user"]

#: Clause names (lower-cased, aliases included) -> (canonical field, kind).
_FIELDS: dict[str, tuple[str, Kind]] = {
    "project": ("project", "project"),
    "issuetype": ("issuetype", "name"),
    "type": ("issuetype", "name"),
    "status": ("status", "name"),
    "priority": ("priority", "name"),
    "resolution": ("resolution", "name"),
    "statuscategory": ("statusCategory", "category"),
    "labels": ("labels", "multi"),
    "component": ("component", "multi"),
    "fixversion": ("fixVersion", "multi"),
    "parent": ("parent", "ref"),
    "epic link": ("Epic Link", "ref"),
    "assignee": ("assignee", "user"),
    "reporter": ("reporter", "user"),
    "created": ("created", "date"),
    "createddate": ("created", "date"),
    "updated": ("updated", "date"),
    "updateddate": ("updated", "date"),
    "resolved": ("resolved", "date"),
    "resolutiondate": ("resolved", "date"),
}
#: The mirror attributes (of :class:`JiraIssue`) each canonical field reads.
MIRROR_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "project": ("project",), "issuetype": ("issuetype",), "status": ("status",),
    "priority": ("priority",), "resolution": ("resolution",),
    "statusCategory": ("status_category",), "labels": ("labels",),
    "component": ("components",), "fixVersion": ("fix_versions",),
    "parent": ("parent_id", "parent_key"),
    "Epic Link": ("parent_id", "parent_key", "is_subtask", "issuetype"),
    "created": ("created",), "updated": ("updated",), "resolved": ("resolution_date",),
    "assignee": ("fields",), "reporter": ("fields",),
}
#: Raw Jira fields (beyond what every search reads) a canonical field needs in the mirror.
JIRA_FIELDS: dict[str, str] = {"assignee": "assignee", "reporter": "reporter"}
_CAN_BE_EMPTY = frozenset({"priority", "resolution", "labels", "component", "fixVersion",
                           "parent", "Epic Link", "resolved", "assignee", "reporter"})
_CLOUD_ONLY = frozenset({"parent", "Epic Link", "assignee", "reporter"})
_ORDERABLE = frozenset({*_FIELDS, "key", "issuekey", "id", "rank"}) - {"labels"}
_CATEGORIES = {
    "new": "new", "to do": "new", "2": "new",
    "indeterminate": "indeterminate", "in progress": "indeterminate", "4": "indeterminate",
    "done": "done", "3": "done",
}
_ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")
# Cloud account ids: 24 hex digits (older accounts) or "<number>:<uuid>".
_ACCOUNT_ID = re.compile(r"[0-9a-f]{24}|[0-9]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                         r"[0-9a-f]{12}")
_DATE = re.compile(r"(\d{4})([/-])(\d{2})\2(\d{2})(?: (\d{2}):(\d{2}))?")
_NEGATED: dict[Operator, Operator] = {
    "=": "!=", "!=": "=", "in": "not in", "not in": "in", "is": "is not", "is not": "is",
    ">": "<=", "<=": ">", ">=": "<", "<": ">=", "~": "!~", "!~": "~",
}
_MEMBERSHIP: frozenset[Operator] = frozenset({"=", "!=", "in", "not in"})
_EMPTINESS: frozenset[Operator] = frozenset({"is", "is not"})
_RANGES: frozenset[Operator] = frozenset({">", ">=", "<", "<="})

#: ``matcher(issue, mirror)``: whether ``issue`` matches; ``mirror`` looks up parents by id.
Matcher = Callable[[JiraIssue, Mapping[str, JiraIssue]], bool]
_Pred = Matcher
#: An issue key (upper-case) -> the id of the issue it names now or named before a move
#: (None: not known).
KeyResolver = Callable[[str], str | None]


@dataclass(frozen=True)
class LocalJql:
    """A raw JQL the mirror can answer, once its projects are known to be mirrored."""

    jql: str
    where: Expr
    #: The top-level ``project`` restriction (upper-case keys).
    projects: frozenset[str]
    #: Every project key the query names anywhere (all must be mirrored).
    named_projects: frozenset[str]
    #: Canonical fields the query reads (see :data:`MIRROR_ATTRIBUTES`).
    fields: frozenset[str]

    @property
    def needs_cloud(self) -> bool:
        return bool(self.fields & _CLOUD_ONLY)

    @property
    def jira_fields(self) -> frozenset[str]:
        """Jira fields to request beyond the standard ones (kept raw in ``JiraIssue.fields``)."""
        return frozenset(JIRA_FIELDS[f] for f in self.fields if f in JIRA_FIELDS)

    @property
    def mirror_attributes(self) -> frozenset[str]:
        return frozenset(a for f in self.fields for a in MIRROR_ATTRIBUTES[f])

    @property
    def issue_keys(self) -> frozenset[str]:
        """The issue keys (upper-case) its ``parent`` / ``"Epic Link"`` clauses name."""
        return frozenset(
            o.text.upper() for c in _clauses(self.where) if _FIELDS[c.field][1] == "ref"
            for o in c.operands if isinstance(o, Literal_) and not o.text.isdigit()
        )


def analyse(jql: str, *, restricted: bool = True) -> LocalJql:
    """Check ``jql`` is in the locally evaluable subset; :class:`NotLocal` says why not.

    ``restricted=False`` also accepts a query without a project restriction (its
    :attr:`LocalJql.projects` empty): such a predicate cannot answer the query on the
    mirror, but it can tell whether one given issue matches.
    """
    query = parse(jql)
    if query.where is None:
        raise NotLocal("no condition (Jira refuses an unbounded query)")
    for name in query.order_by:
        if name not in _ORDERABLE:
            raise NotLocal(f"ORDER BY {name}")
    fields: set[str] = set()
    named: set[str] = set()
    for clause in _clauses(query.where):
        field, kind = _check_clause(clause)
        fields.add(field)
        if kind == "project":
            named |= {o.text.upper() for o in clause.operands if isinstance(o, Literal_)}
    projects = _restriction(query.where)
    if projects is None:
        if restricted:
            raise NotLocal("no top-level `project =` / `project in` restriction")
        projects = frozenset()
    return LocalJql(jql, query.where, projects, frozenset(named), frozenset(fields))


def _clauses(expr: Expr) -> list[Clause]:
    if isinstance(expr, Clause):
        return [expr]
    if isinstance(expr, Not):
        return _clauses(expr.term)
    return [c for term in expr.terms for c in _clauses(term)]


def _restriction(where: Expr) -> frozenset[str] | None:
    terms = where.terms if isinstance(where, And) else (where,)
    found: frozenset[str] | None = None
    for term in terms:
        if isinstance(term, Clause) and term.field == "project" and term.op in ("=", "in"):
            keys = frozenset(o.text.upper() for o in term.operands if isinstance(o, Literal_))
            if not all(isinstance(o, Literal_) for o in term.operands):
                continue  # `project in (A, EMPTY)` restricts nothing more than A does
            found = keys if found is None else found & keys
    return found


def _check_clause(clause: Clause) -> tuple[str, Kind]:
    if clause.field not in _FIELDS:
        raise NotLocal(f"the field {clause.field!r}")
    field, kind = _FIELDS[clause.field]
    op = clause.op
    if op in ("~", "!~"):
        raise NotLocal("text search")
    if clause.is_list != (op in ("in", "not in")):
        raise NotLocal(f"{op.upper()} with {'a list' if clause.is_list else 'one value'}")
    if op in _EMPTINESS:
        if field not in _CAN_BE_EMPTY:
            raise NotLocal(f"{field} IS EMPTY")
        return field, kind
    if kind == "date":
        if op not in _RANGES:
            raise NotLocal(f"{field} {op.upper()} (only <, <=, >, >= compare dates exactly)")
        _date_parts(_literal(clause, field))
        return field, kind
    if op not in _MEMBERSHIP:
        raise NotLocal(f"{field} {op}")
    for operand in clause.operands:
        if isinstance(operand, Empty):
            if field not in _CAN_BE_EMPTY:
                raise NotLocal(f"{field} compared with EMPTY")
            continue
        _check_value(field, kind, operand.text)
    return field, kind


def _literal(clause: Clause, field: str) -> str:
    operand = clause.operands[0]
    if not isinstance(operand, Literal_):
        raise NotLocal(f"{field} compared with EMPTY")
    return operand.text


def _check_value(field: str, kind: Kind, text: str) -> None:
    if kind == "category":
        if text.lower() not in _CATEGORIES:
            raise NotLocal(f"the status category {text!r}")
    elif kind == "user":
        if not _ACCOUNT_ID.fullmatch(text):
            raise NotLocal(f"{field} = {text!r} (not an account id)")
    elif kind == "ref":
        if not (text.isascii() and (text.isdigit() or _ISSUE_KEY.fullmatch(text))):
            raise NotLocal(f"{field} = {text!r} (not an issue key or id)")
    elif kind == "project":
        if text.isdigit() or not text.strip():
            raise NotLocal(f"the project {text!r} (an id or a name, not a key)")
    elif field != "labels" and (text.isdigit() or not text.strip()):
        # Jira reads a number as the id first; the mirror keeps names only.
        raise NotLocal(f"{field} = {text!r} (an id)")


def _date_parts(text: str) -> tuple[int, int, int, int, int]:
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise NotLocal(f"the date {text!r} (only absolute yyyy/MM/dd [HH:mm] dates)")
    year, _, month, day, hour, minute = match.groups()
    parts = (int(year), int(month), int(day), int(hour or 0), int(minute or 0))
    try:
        datetime(*parts)
    except ValueError:
        raise NotLocal(f"the date {text!r} does not exist") from None
    return parts


def _instant(text: str, tz: ZoneInfo) -> datetime:
    """A date literal as Jira reads it: a wall time in the user's zone."""
    wall = datetime(*_date_parts(text))
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise NotLocal(f"{text!r} is skipped or repeated in {tz.key} (a clock change)")
    return first


# ------------------------------------------------------------------ evaluation
def compile_matcher(local: LocalJql, *, tz: ZoneInfo | None, cloud: bool,
                    keys: KeyResolver | None = None) -> Matcher:
    """The predicate of ``local`` for one Jira site; :class:`NotLocal` when it cannot be.

    ``tz`` is the Jira user's zone, ``None`` when Jira did not name a usable one (a
    date is then left to Jira, which knows how it reads it).

    ``keys`` resolves the issue keys of ``parent`` clauses the way Jira does (a key an
    issue had before it moved still names it): a parent is then compared by id, and an
    issue whose parent is not the one a key names now cannot be decided while that key
    is unknown (it may be its former key), so the predicate raises :class:`NotLocal` for
    it. Without ``keys`` a key is compared with the parent's current key.
    """
    if local.needs_cloud and not cloud:
        raise NotLocal("parent, Epic Link, assignee or reporter on Data Center")
    return _compile(_push_not(local.where, negate=False), tz, keys)


def _push_not(expr: Expr, *, negate: bool) -> Expr:
    if isinstance(expr, Not):
        return _push_not(expr.term, negate=not negate)
    if isinstance(expr, And | Or):
        terms = tuple(_push_not(t, negate=negate) for t in expr.terms)
        flip = isinstance(expr, And) == negate
        return Or(terms) if flip else And(terms)
    if negate:
        return Clause(expr.field, _NEGATED[expr.op], expr.operands, expr.is_list)
    return expr


def _compile(expr: Expr, tz: ZoneInfo | None, keys: KeyResolver | None) -> _Pred:
    if isinstance(expr, And):
        parts = [_compile(t, tz, keys) for t in expr.terms]
        return lambda issue, mirror: all(p(issue, mirror) for p in parts)
    if isinstance(expr, Or):
        parts = [_compile(t, tz, keys) for t in expr.terms]
        return lambda issue, mirror: any(p(issue, mirror) for p in parts)
    assert isinstance(expr, Clause), "NOT is pushed down to the clauses first"
    return _clause(expr, tz, keys)


def _clause(clause: Clause, tz: ZoneInfo | None, keys: KeyResolver | None = None) -> _Pred:
    field, kind = _FIELDS[clause.field]
    op = clause.op
    if kind == "date":
        return _date_clause(field, op, clause, tz)
    if kind == "ref" and keys is not None and op in _MEMBERSHIP:
        return _ref_clause(field, op, clause, keys)
    values = _VALUES[field]
    if op in _EMPTINESS:
        want = op == "is"
        return lambda issue, mirror: (not values(issue, mirror)) == want
    wanted = frozenset(_canonical(kind, field, o.text)
                       for o in clause.operands if isinstance(o, Literal_))
    want_empty = any(isinstance(o, Empty) for o in clause.operands)
    if field == "resolution" and any(
        isinstance(o, Literal_) and o.text.lower() == "unresolved" for o in clause.operands
    ):
        want_empty = True
    if op in ("=", "in"):
        def positive(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> bool:
            have = values(issue, mirror)
            return want_empty if not have else not wanted.isdisjoint(have)
        return positive

    def negative(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> bool:
        have = values(issue, mirror)
        return bool(have) and wanted.isdisjoint(have)
    return negative


def _ref_clause(field: str, op: Operator, clause: Clause, keys: KeyResolver) -> _Pred:
    """A ``parent`` clause whose keys are resolved by ``keys`` (once, on first use)."""
    values = _VALUES[field]
    named = frozenset(o.text.upper() for o in clause.operands if isinstance(o, Literal_))
    want_empty = any(isinstance(o, Empty) for o in clause.operands)
    resolved: list[tuple[frozenset[str], bool]] = []

    def wanted() -> tuple[frozenset[str], bool]:
        # Resolved when an issue with a parent first asks: a pass whose changed issues
        # have no parent reads nothing.
        if not resolved:
            found = {key: (key if key.isdigit() else keys(key)) for key in named}
            ids = frozenset(i for i in found.values() if i is not None)
            resolved.append((named | ids, any(i is None for i in found.values())))
        return resolved[0]

    def names_it(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> bool | None:
        """Whether the issue's parent is one the clause names (None: cannot tell)."""
        have = values(issue, mirror)
        ids, unknown = wanted()
        if not ids.isdisjoint(have):
            return True
        # A key not resolved may be the parent's former key: Jira knows, the mirror not.
        return None if unknown else False

    def parent_named(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> bool:
        named_it = names_it(issue, mirror)
        if named_it is None:
            raise NotLocal(f"the parent of {issue.key}: a key in {clause.field} is unknown")
        return named_it

    if op in ("=", "in"):
        def positive(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> bool:
            return parent_named(issue, mirror) if values(issue, mirror) else want_empty
        return positive

    def negative(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> bool:
        return not parent_named(issue, mirror) if values(issue, mirror) else False
    return negative


def _canonical(kind: Kind, field: str, text: str) -> str:
    if kind == "project" or kind == "ref":
        return text.upper()
    if kind == "user":
        return text
    if kind == "category":
        return _CATEGORIES[text.lower()]
    return text.lower()


def _date_clause(field: str, op: Operator, clause: Clause, tz: ZoneInfo | None) -> _Pred:
    attribute = MIRROR_ATTRIBUTES[field][0]
    if op in _EMPTINESS:
        want = op == "is"
        return lambda issue, _: (getattr(issue, attribute) is None) == want
    if tz is None:
        raise NotLocal("a date, and Jira named no usable time zone for the user")
    bound = _instant(_literal(clause, field), tz)
    compare: Callable[[datetime, datetime], bool] = {
        ">": datetime.__gt__, ">=": datetime.__ge__,
        "<": datetime.__lt__, "<=": datetime.__le__,
    }[op]

    def match(issue: JiraIssue, _: Mapping[str, JiraIssue]) -> bool:
        value: datetime | None = getattr(issue, attribute)
        return value is not None and compare(value, bound)
    return match


def _one(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value.lower(),)


def _parent(issue: JiraIssue, _: Mapping[str, JiraIssue]) -> tuple[str, ...]:
    if issue.parent_id is None:
        return ()
    return (issue.parent_id, *((issue.parent_key.upper(),) if issue.parent_key else ()))


def _epic(issue: JiraIssue, mirror: Mapping[str, JiraIssue]) -> tuple[str, ...]:
    if issue.parent_id is None or issue.is_subtask:
        return ()
    parent = mirror.get(issue.parent_id)
    if parent is None:
        # Whether the parent is an epic is not known here: Jira knows.
        raise NotLocal(f"the parent of {issue.key} is not mirrored")
    return _parent(issue, mirror) if parent.issuetype.lower() == "epic" else ()


def _status(issue: JiraIssue, _: Mapping[str, JiraIssue]) -> tuple[str, ...]:
    if issue.status_category == STATUS_CATEGORY_UNDEFINED:
        # Jira sent the issue without its status: whether it matches is Jira's to say.
        raise NotLocal(f"{issue.key} was mirrored without a status")
    return _one(issue.status)


def _status_category(issue: JiraIssue, _: Mapping[str, JiraIssue]) -> tuple[str, ...]:
    _status(issue, _)
    return (issue.status_category,)


def _user(name: str) -> Callable[[JiraIssue, Mapping[str, JiraIssue]], tuple[str, ...]]:
    def values(issue: JiraIssue, _: Mapping[str, JiraIssue]) -> tuple[str, ...]:
        if name not in issue.fields:
            # Mirrored before the plan needed this field: never guess it empty.
            raise NotLocal(f"{issue.key} was mirrored without {name}")
        person = issue.fields[name]
        account = person.get("accountId") if isinstance(person, Mapping) else None
        return (str(account),) if account else ()
    return values


_VALUES: dict[str, Callable[[JiraIssue, Mapping[str, JiraIssue]], tuple[str, ...]]] = {
    "project": lambda i, _: (i.project.upper(),),
    "issuetype": lambda i, _: _one(i.issuetype),
    "status": _status,
    "priority": lambda i, _: _one(i.priority),
    "resolution": lambda i, _: _one(i.resolution),
    "statusCategory": _status_category,
    "labels": lambda i, _: tuple(v.lower() for v in i.labels),
    "component": lambda i, _: tuple(v.lower() for v in i.components),
    "fixVersion": lambda i, _: tuple(v.lower() for v in i.fix_versions),
    "parent": _parent,
    "Epic Link": _epic,
    "assignee": _user("assignee"),
    "reporter": _user("reporter"),
}
