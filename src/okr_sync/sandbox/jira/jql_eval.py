"""Evaluate parsed JQL over the sandbox's issue records.

A query is compiled once into a predicate and a sort key (fast over thousands of issues).
Semantics follow Jira: ``NOT`` is pushed down to the clauses (De Morgan, as Jira's
DeMorgansVisitor does), so ``!=``, ``NOT IN`` and negated ranges never match an empty field.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from okr_sync.sandbox.jira.data import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    IssueRecord,
    JiraDataset,
    issue_type_named,
)
from okr_sync.sandbox.jira.jql import (
    And,
    Clause,
    EmptyValue,
    Expr,
    FunctionCall,
    JqlValidationError,
    Not,
    Op,
    Operand,
    Or,
    OrderKey,
    Query,
    UnboundedJqlError,
    Value,
    parse_jql,
)
from okr_sync.sandbox.jira.jql_dates import DATE_FUNCTIONS, date_function, parse_date_literal

__all__ = ["CompiledQuery", "JqlContext", "compile_query", "search"]

Pred = Callable[[IssueRecord], bool]
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$")
_RANGES = (Op.GT, Op.GE, Op.LT, Op.LE)
_MEMBERSHIP = (Op.EQ, Op.NE, Op.IN, Op.NOT_IN)
_EMPTINESS = (Op.IS, Op.IS_NOT)
_DATE_FORMATS = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
    "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
)
_ISSUE_TYPE_FUNCTIONS = {
    "standardissuetypes": frozenset(t.name.lower() for t in ISSUE_TYPES if not t.subtask),
    "subtaskissuetypes": frozenset(t.name.lower() for t in ISSUE_TYPES if t.subtask),
}
_KNOWN_FUNCTIONS = DATE_FUNCTIONS | frozenset(_ISSUE_TYPE_FUNCTIONS)
_PRIORITY_RANK = {p.name.lower(): len(PRIORITIES) - i for i, p in enumerate(PRIORITIES)}
_CATEGORY_RANK = {"new": 0, "indeterminate": 1, "done": 2}


@dataclass(frozen=True)
class JqlContext:
    """What a query needs besides the issues: the caller's zone, now, and the field setup.

    ``custom_fields`` maps lower-cased clause names (``"story point estimate"``,
    ``"cf[10016]"``, ``"customfield_10016"``) to a role: ``story_points``, ``epic_link`` or
    ``unset_number`` (a numeric custom field that holds no data, e.g. a decoy).
    """

    dataset: JiraDataset
    tz: ZoneInfo
    now: datetime
    custom_fields: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # -> (role, name)
    parent_includes_epics: bool = True  # Cloud: epic children carry `parent`; DC: sub-tasks only
    #: Jira (Cloud and Data Center) refuses (400) an ``id in (...)`` / ``id = N`` naming
    #: an issue it does not have (deleted): "An issue with key '10042' does not exist for
    #: field 'id'". The server turns it on; direct evaluations (tests) leave it off.
    refuse_unknown_ids: bool = False


@dataclass(frozen=True)
class CompiledQuery:
    query: Query
    predicate: Pred
    sort_key: Callable[[list[IssueRecord]], list[IssueRecord]]

    def run(self, issues: Iterable[IssueRecord]) -> list[IssueRecord]:
        return self.sort_key([i for i in issues if self.predicate(i)])


def search(
    jql: str, ctx: JqlContext, *, require_bounded: bool, max_order_fields: int | None = None,
) -> list[IssueRecord]:
    """Parse, validate and run ``jql``; raise a :class:`JqlError` subclass when Jira would."""
    query = parse_jql(jql)
    if require_bounded and not query.bounded:
        raise UnboundedJqlError()
    compiled = compile_query(query, ctx, max_order_fields=max_order_fields)
    with ctx.dataset.lock:
        return compiled.run(ctx.dataset)


def _push_not(expr: Expr, negate: bool = False) -> Expr:
    if isinstance(expr, Not):
        return _push_not(expr.term, not negate)
    if isinstance(expr, And):
        terms = tuple(_push_not(t, negate) for t in expr.terms)
        return Or(terms) if negate else And(terms)
    if isinstance(expr, Or):
        terms = tuple(_push_not(t, negate) for t in expr.terms)
        return And(terms) if negate else Or(terms)
    if negate:
        return Clause(expr.field, expr.op.negated(), expr.operands, expr.is_list)
    return expr


def compile_query(
    query: Query, ctx: JqlContext, *, max_order_fields: int | None = None,
) -> CompiledQuery:
    errors: list[str] = []
    predicate: Pred = _always
    if query.where is not None:
        predicate = _compile(_push_not(query.where), ctx, errors)
    if max_order_fields is not None and len(query.order_by) > max_order_fields:
        errors.append(f"The ORDER BY clause can contain at most {max_order_fields} fields.")
    sorter = _sorter(query.order_by, ctx, errors)
    if errors:
        raise JqlValidationError(list(dict.fromkeys(errors)))
    return CompiledQuery(query, predicate, sorter)


def _always(_: IssueRecord) -> bool:
    return True


def _compile(expr: Expr, ctx: JqlContext, errors: list[str]) -> Pred:
    if isinstance(expr, And):
        parts = [_compile(t, ctx, errors) for t in expr.terms]
        return lambda issue: all(p(issue) for p in parts)
    if isinstance(expr, Or):
        parts = [_compile(t, ctx, errors) for t in expr.terms]
        return lambda issue: any(p(issue) for p in parts)
    if isinstance(expr, Not):  # _push_not removed these; kept for direct callers
        inner = _compile(expr.term, ctx, errors)
        return lambda issue: not inner(issue)
    try:
        return _clause(expr, ctx)
    except JqlValidationError as exc:
        errors.extend(exc.messages)
        return _always


# ----------------------------------------------------------------- field table
@dataclass(frozen=True)
class _Field:
    name: str  # as Jira names it in messages
    kind: str  # issue | choice | multi | ref | date | number | text
    getter: Callable[[IssueRecord], Any]
    values: Callable[[str], Hashable | None] | None = None  # operand -> canonical (choice)
    ranks: Mapping[Any, int] | None = None  # choice fields that support ranges


def _names(items: Iterable[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        out[item.name.lower()] = item.name.lower()
        out[str(item.id)] = item.name.lower()
    return out


_STATUS_VALUES = _names(STATUSES)
_TYPE_VALUES = {**_names(ISSUE_TYPES), "subtask": "sub-task"}
_PRIORITY_VALUES = _names(PRIORITIES)
_RESOLUTION_VALUES = _names(RESOLUTIONS)
_CATEGORY_VALUES = {
    **{c.key: c.key for c in STATUS_CATEGORIES.values()},
    **{c.name.lower(): c.key for c in STATUS_CATEGORIES.values()},
    **{str(c.id): c.key for c in STATUS_CATEGORIES.values()},
}


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _field(name: str, ctx: JqlContext) -> _Field:
    lowered = name.lower()
    ds = ctx.dataset
    system: dict[str, _Field] = {
        "issuekey": _Field("key", "issue", lambda i: i),
        "project": _Field("project", "choice", lambda i: i.project.lower(), _project_value(ds)),
        "issuetype": _Field("issuetype", "choice", lambda i: i.issuetype.lower(),
                            _TYPE_VALUES.get),
        "status": _Field("status", "choice", lambda i: i.status.lower(), _STATUS_VALUES.get),
        "statuscategory": _Field("statusCategory", "choice", lambda i: i.status_category,
                                 _CATEGORY_VALUES.get, _CATEGORY_RANK),
        "priority": _Field("priority", "choice", lambda i: _lower(i.priority),
                           _PRIORITY_VALUES.get, _PRIORITY_RANK),
        "resolution": _Field("resolution", "choice", lambda i: _lower(i.resolution),
                             _RESOLUTION_VALUES.get),
        "labels": _Field("labels", "multi", lambda i: [v.lower() for v in i.labels]),
        "component": _Field("component", "multi", lambda i: [v.lower() for v in i.components],
                            _known(ds.component_names)),
        "fixversion": _Field("fixVersion", "multi",
                             lambda i: [v.lower() for v in i.fix_versions],
                             _known(ds.version_names)),
        "parent": _Field("parent", "ref", lambda i: _parent(i, ctx, epic_only=False)),
        "created": _Field("created", "date", lambda i: i.created),
        "updated": _Field("updated", "date", lambda i: i.updated),
        "resolutiondate": _Field("resolved", "date", lambda i: i.resolutiondate),
        "summary": _Field("summary", "text", lambda i: i.summary),
        # Cloud names people by account id only (exact, as Jira stores it).
        "assignee": _Field("assignee", "user", lambda i: i.assignee),
        "reporter": _Field("reporter", "user", lambda i: i.reporter),
    }
    aliases = {"id": "issuekey", "key": "issuekey", "issue": "issuekey", "type": "issuetype",
               "createddate": "created", "updateddate": "updated", "resolved": "resolutiondate",
               "fixversions": "fixversion", "components": "component", "label": "labels"}
    lowered = aliases.get(lowered, lowered)
    if lowered in system:
        return system[lowered]
    role, display = ctx.custom_fields.get(lowered, ("", name))
    if role == "story_points":
        return _Field(display, "number", lambda i: i.story_points)
    if role == "unset_number":
        return _Field(display, "number", lambda i: None)
    if role == "epic_link":
        return _Field(display, "ref", lambda i: _parent(i, ctx, epic_only=True))
    raise JqlValidationError(
        f"Field '{name}' does not exist or you do not have permission to view it.")


def _project_value(ds: JiraDataset) -> Callable[[str], str | None]:
    lookup: dict[str, str] = {}
    for project in ds.projects.values():
        for alias in (project.key, project.name, str(project.id)):
            lookup[alias.lower()] = project.key.lower()
    return lookup.get


def _known(names: Callable[[], set[str]]) -> Callable[[str], str | None]:
    def value(text: str) -> str | None:
        return text.lower() if text.lower() in names() else None
    return value


def _parent(issue: IssueRecord, ctx: JqlContext, *, epic_only: bool) -> int | None:
    if issue.parent_id is None:
        return None
    if issue.is_subtask:
        return None if epic_only else issue.parent_id
    if not epic_only and not ctx.parent_includes_epics:
        return None
    parent = ctx.dataset.issues.get(issue.parent_id) or ctx.dataset.deleted.get(issue.parent_id)
    is_epic = parent is not None and issue_type_named(parent.issuetype).name == "Epic"
    return issue.parent_id if is_epic or not epic_only else None


# -------------------------------------------------------------------- clauses
def _operator_error(op: Op, f: _Field) -> JqlValidationError:
    return JqlValidationError(
        f"The operator '{op.value}' is not supported by the '{f.name}' field.")


def _clause(clause: Clause, ctx: JqlContext) -> Pred:
    f = _field(clause.field, ctx)
    op = clause.op
    if clause.is_list and op not in (Op.IN, Op.NOT_IN):
        shown = ", ".join(o.text if isinstance(o, Value) else "EMPTY" for o in clause.operands)
        raise JqlValidationError(
            f"The operator '{op.value}' does not support the list value '({shown})' "
            f"for field '{f.name}'.")
    single = clause.operands[0]
    if op in (Op.IN, Op.NOT_IN) and not clause.is_list and not isinstance(single, FunctionCall):
        raise JqlValidationError(
            f"The operator '{op.value}' does not support the non-list value "
            f"'{single.text if isinstance(single, Value) else 'EMPTY'}' for field '{f.name}'.")
    if op in (Op.LIKE, Op.NOT_LIKE) or f.kind == "text":
        return _text_clause(f, op, single)
    if op in _EMPTINESS:
        want_empty = op is Op.IS
        return lambda issue: _is_empty(f, issue) == want_empty
    if op in _RANGES:
        return _range_clause(f, op, single, ctx)
    wanted: set[Hashable] = set()
    want_empty = False
    for operand in clause.operands:
        unresolved = (f.name == "resolution" and isinstance(operand, Value)
                      and operand.text.lower() == "unresolved")
        if isinstance(operand, EmptyValue) or unresolved:
            want_empty = True
        else:
            wanted |= _resolve(f, operand, ctx)
    return _membership(f, op, frozenset(wanted), want_empty)


def _is_empty(f: _Field, issue: IssueRecord) -> bool:
    value = f.getter(issue)
    return value is None or (f.kind == "multi" and not value)


def _values(f: _Field, issue: IssueRecord) -> Collection[Hashable]:
    value = f.getter(issue)
    if f.kind == "multi":
        return value  # type: ignore[no-any-return]
    if f.kind == "issue":
        return (value.id,)
    return () if value is None else (value,)


def _membership(f: _Field, op: Op, wanted: frozenset[Hashable], want_empty: bool) -> Pred:
    def positive(issue: IssueRecord) -> bool:
        values = _values(f, issue)
        if not values:
            return want_empty
        return any(v in wanted for v in values)

    def negative(issue: IssueRecord) -> bool:
        values = _values(f, issue)
        return bool(values) and not any(v in wanted for v in values)

    return positive if op in (Op.EQ, Op.IN) else negative


def _resolve(f: _Field, operand: Operand, ctx: JqlContext) -> set[Hashable]:
    if isinstance(operand, FunctionCall):
        return _resolve_function(f, operand, ctx)
    assert isinstance(operand, Value)
    text = operand.text
    if f.kind == "issue" or f.kind == "ref":
        return _resolve_issue(f, text, ctx)
    if f.kind == "date":
        return {_date(f, text, ctx)}
    if f.kind == "number":
        return {_number(f, text)}
    if f.kind == "user":
        return {text}
    if f.kind == "choice":
        assert f.values is not None
        canonical = f.values(text.lower())
        if canonical is None:
            raise JqlValidationError(
                f"The value '{text}' does not exist for the field '{f.name}'.")
        return {canonical}
    if f.values is not None and f.values(text) is None:  # component / fixVersion
        raise JqlValidationError(f"The value '{text}' does not exist for the field '{f.name}'.")
    return {text.lower()}


def _resolve_function(f: _Field, call: FunctionCall, ctx: JqlContext) -> set[Hashable]:
    lowered = call.name.lower()
    if lowered not in _KNOWN_FUNCTIONS:
        raise JqlValidationError(f"Unable to find JQL function '{call.name}()'.")
    if lowered in _ISSUE_TYPE_FUNCTIONS and f.name == "issuetype":
        return set(_ISSUE_TYPE_FUNCTIONS[lowered])
    if lowered in DATE_FUNCTIONS and f.kind == "date":
        return {_function_date(call, ctx)}
    raise JqlValidationError(
        f"A value provided by the function '{call.name}' is invalid for the field '{f.name}'.")


def _function_date(call: FunctionCall, ctx: JqlContext) -> datetime:
    try:
        return date_function(call.name, call.args, ctx.tz, ctx.now)
    except ValueError as exc:
        raise JqlValidationError(
            f"Incorrect number of arguments or invalid argument for function "
            f"'{call.name}()'.") from exc


def _date(f: _Field, text: str, ctx: JqlContext) -> datetime:
    instant = parse_date_literal(text, ctx.tz, ctx.now)
    if instant is None:
        raise JqlValidationError(
            f"Date value '{text}' for field '{f.name}' is invalid. {_DATE_FORMATS}")
    return instant


def _number(f: _Field, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise JqlValidationError(
            f"The value '{text}' is not a valid number for the field '{f.name}'.") from None


def _resolve_issue(f: _Field, text: str, ctx: JqlContext) -> set[Hashable]:
    if text.isdigit():
        if f.kind == "issue" and ctx.refuse_unknown_ids and int(text) not in ctx.dataset.issues:
            raise JqlValidationError(
                f"An issue with key '{text}' does not exist for field '{f.name}'.")
        return {int(text)}
    if not _KEY.match(text):
        raise JqlValidationError(f"The issue key '{text}' for field '{f.name}' is invalid.")
    issue_id = ctx.dataset.resolve_key(text)
    return set() if issue_id is None else {issue_id}


def _range_clause(f: _Field, op: Op, operand: Operand, ctx: JqlContext) -> Pred:
    compare: Callable[[Any, Any], bool] = {
        Op.GT: operator.gt, Op.GE: operator.ge, Op.LT: operator.lt, Op.LE: operator.le}[op]
    if isinstance(operand, EmptyValue):
        raise JqlValidationError(
            f"The operator '{op.value}' does not support searching for EMPTY values.")
    if f.kind == "issue":
        if not isinstance(operand, Value):
            raise _operator_error(op, f)
        return _issue_range(f, operand.text, compare)
    if f.kind == "choice" and f.ranks is not None:
        ranks = f.ranks
        bound = ranks[next(iter(_resolve(f, operand, ctx)))]
        return lambda issue: (v := f.getter(issue)) is not None and compare(ranks[v], bound)
    if f.kind not in ("date", "number"):
        raise _operator_error(op, f)
    resolved = _resolve(f, operand, ctx)
    bound_value: Any = next(iter(resolved))
    return lambda issue: (v := f.getter(issue)) is not None and compare(v, bound_value)


def _issue_range(f: _Field, text: str, compare: Callable[[Any, Any], bool]) -> Pred:
    if text.isdigit():
        bound = int(text)
        return lambda issue: compare(issue.id, bound)
    match = _KEY.match(text)
    if not match:
        raise JqlValidationError(f"The issue key '{text}' for field '{f.name}' is invalid.")
    project, number = match[1].upper(), int(match[2])
    return lambda issue: issue.project == project and compare(issue.key_number, number)


def _text_clause(f: _Field, op: Op, operand: Operand) -> Pred:
    if f.kind != "text" or op not in (Op.LIKE, Op.NOT_LIKE, Op.IS, Op.IS_NOT):
        raise _operator_error(op, f)
    if op in _EMPTINESS:
        want_empty = op is Op.IS
        return lambda issue: (not f.getter(issue)) == want_empty
    if not isinstance(operand, Value):
        raise JqlValidationError(f"The field '{f.name}' only supports text values.")
    words = [w.rstrip("*") for w in re.findall(r"[\w*]+", operand.text.lower())]

    def like(issue: IssueRecord) -> bool:
        text = (f.getter(issue) or "").lower()
        return all(w in text for w in words)

    if op is Op.LIKE:
        return like
    return lambda issue: bool(f.getter(issue)) and not like(issue)


# -------------------------------------------------------------------- ORDER BY
def _sort_value(f: _Field, issue: IssueRecord) -> Any:
    if f.kind == "issue":
        return (issue.project, issue.key_number)
    value = f.getter(issue)
    if f.kind == "multi":
        return min(value) if value else None
    if f.kind == "choice" and f.ranks is not None and value is not None:
        return f.ranks[value]
    return value


def _sorter(
    order: tuple[OrderKey, ...], ctx: JqlContext, errors: list[str],
) -> Callable[[list[IssueRecord]], list[IssueRecord]]:
    keys: list[tuple[_Field, bool]] = []
    for key in order or (OrderKey("key", True),):
        try:
            f = _field(key.field, ctx)
        except JqlValidationError as exc:
            errors.extend(exc.messages)
            continue
        if f.name == "labels":
            errors.append(f"Field '{key.field}' does not support sorting.")
            continue
        keys.append((f, bool(key.descending)))

    def run(issues: list[IssueRecord]) -> list[IssueRecord]:
        ordered = sorted(issues, key=lambda i: i.id)
        for f, descending in reversed(keys):
            ordered.sort(key=_empty_last(f), reverse=descending)
        return ordered

    return run


def _empty_last(f: _Field) -> Callable[[IssueRecord], tuple[bool, Any]]:
    """Sort key: empty values sort last ascending and first descending, as in Jira."""
    def key(issue: IssueRecord) -> tuple[bool, Any]:
        value = _sort_value(f, issue)
        return (value is None, value if value is not None else 0)
    return key
