"""Load and validate a plan file, reporting every error as ``FILE:LINE:COLUMN: path: message``.

A bad plan is refused as a whole: :func:`load_plan` raises :class:`PlanError`
listing all problems at once (YAML syntax, shape, and cross-references), so a
user fixes the file in one go. Nothing is fetched or posted before this passes.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from yaml import MarkedYAMLError, YAMLError

from okr_sync.config.kr_types import drop_number_for_mapping, milestone_problems
from okr_sync.config.people import checkin_policy_problems
from okr_sync.config.plan import DEFAULT_SOURCE, Plan, default_perspectives
from okr_sync.config.plan_issues import (
    MAX_LISTED_ISSUES,
    PlanError,
    PlanIssue,
    listed_issues,
)
from okr_sync.config.plan_sources import source_problems
from okr_sync.config.plan_yaml import (
    MAX_PLAN_BYTES,
    PositionTree,
    YamlDocument,
    check_size,
    decode_plan,
    format_path,
    read_yaml,
)
from okr_sync.config.yaml_values import PathPart, YamlProblem

#: Slack conversation ids: C (channel), G (private channel, older), D (direct message).
_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")


_TYPE_TAG = re.compile(r"^(str|int|float|bool|date|list\[.*\]|literal\[.*\]|[a-z-]+\[.*\])$")
_MEASURE_TAGS = {"done_ratio", "count", "sum", "milestone", "manual", "RangeTarget"}


def _pydantic_path(loc: tuple[int | str, ...]) -> list[PathPart]:
    """Drop pydantic's union-member and discriminator tags so the path matches the YAML."""
    path: list[PathPart] = []
    for part in loc:
        # A milestone's `date` key is a field, not the `date` tag of a union member.
        is_key = part == "date" and len(path) >= 2 and path[-2] == "milestones"
        if is_key or not (isinstance(part, str)
                          and (part in _MEASURE_TAGS or _TYPE_TAG.match(part))):
            path.append(part)
    return path


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return "missing `kind` (done_ratio, count, sum, milestone or manual)"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        expected = error.get("ctx", {}).get("expected_tags")
        return f"unknown measure kind {tag!r} (expected one of {expected})"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


class PlanLoader:
    """Parses one plan file and collects every problem in it."""

    def __init__(
        self,
        path: Path,
        text: str | bytes | None = None,
        *,
        connectable_sources: frozenset[str] | None = None,
    ) -> None:
        self.path = path
        self.display = str(path)
        self._text = text
        self.connectable_sources = connectable_sources

    def load(self) -> Plan:
        document = self._read()
        positions = document.positions
        data = document.data
        if not isinstance(data, dict):
            raise PlanError(
                [PlanIssue(self.display, 1, 1, "(plan)", "the plan must be a YAML mapping")]
            )
        issues = [self._issue(positions, p, m)
                  for p, m in islice(structure_check(data), MAX_LISTED_ISSUES + 1)]
        try:
            plan = Plan.model_validate(data)
        except ValidationError as error:
            seen_paths: set[str] = set()
            # Enough to list MAX_LISTED_ISSUES after de-duplication, without formatting the
            # tens of thousands a file of unknown keys has (each costs time, none helps).
            first = error.errors()[:MAX_LISTED_ISSUES * 4]
            errors = drop_number_for_mapping(first, _pydantic_path)
            for e in errors:
                path = _pydantic_path(e["loc"])
                # A value that fits no member of a union is reported once, not per member.
                if format_path(path) in seen_paths:
                    continue
                seen_paths.add(format_path(path))
                issues.append(self._issue(positions, path, _message(dict(e))))
            raise PlanError(self._sorted(issues)) from None
        issues += [self._issue(positions, p, m)
                   for p, m in cross_check(plan, self.connectable_sources)]
        if issues:
            raise PlanError(self._sorted(issues))
        return plan

    def _read(self) -> YamlDocument:
        try:
            text = self._text if self._text is not None else self._read_file()
            if isinstance(text, bytes):
                text = decode_plan(text)
            return read_yaml(text)
        except YamlProblem as problem:
            path = format_path(problem.path) if problem.path else "(yaml)"
            issue = PlanIssue(self.display, problem.line, problem.column, path, problem.message)
            raise PlanError([issue]) from None
        except MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem_text = error.problem or error.context or "invalid YAML"
            raise PlanError([PlanIssue(self.display, line, col, "(yaml)", problem_text)]) from None
        except YAMLError as error:
            raise PlanError([PlanIssue(self.display, 1, 1, "(yaml)", str(error))]) from None

    def _read_file(self) -> bytes:
        try:
            with self.path.open("rb") as file:
                # One byte over the limit is enough to refuse it, whatever the file's size.
                raw = file.read(MAX_PLAN_BYTES + 1)
                if len(raw) > MAX_PLAN_BYTES:
                    # Name the file's real size when it has one (not a pipe).
                    info = os.fstat(file.fileno())
                    regular = stat.S_ISREG(info.st_mode)
                    check_size(max(len(raw), info.st_size), exact=regular)
        except OSError as error:
            raise PlanError(
                [PlanIssue(self.display, 1, 1, "(plan)", f"cannot read: {error.strerror}")]
            ) from None
        return raw

    def _issue(self, positions: PositionTree, path: list[PathPart], message: str) -> PlanIssue:
        line, column = positions.at(path)
        return PlanIssue(self.display, line, column, format_path(path), message)

    def _sorted(self, issues: list[PlanIssue]) -> list[PlanIssue]:
        return listed_issues(self.display, issues)


def load_plan(path: str | Path, *, connectable_sources: frozenset[str] | None = None) -> Plan:
    """Load and fully validate a plan file; raise :class:`PlanError` listing every problem.

    ``connectable_sources``: the Jira sources settings can connect; a measure on another
    is a plan issue at its position (the command line passes what settings offer).
    """
    return PlanLoader(Path(path), connectable_sources=connectable_sources).load()


def load_plan_text(text: str, *, name: str = "<plan>") -> Plan:
    return PlanLoader(Path(name), text).load()


def load_plan_bytes(raw: bytes, *, name: str = "<plan>") -> Plan:
    """As :func:`load_plan`, for a file's content already read (UTF-8 expected)."""
    return PlanLoader(Path(name), raw).load()


# --- cross-checks: rules that relate several nodes -------------------------------------

Problem = tuple[list[PathPart], str]


def cross_check(plan: Plan, connectable: frozenset[str] | None = None) -> Iterator[Problem]:
    """Rules that need the validated model (run only when the shape is valid)."""
    yield from _check_contributors(plan)
    yield from source_problems(plan, connectable)
    yield from milestone_problems(plan)
    for index, message in checkin_policy_problems(plan.checkins, plan.people):
        yield ["checkins", "allowed", index], message


def _items(data: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    raw = data.get(key)
    if not isinstance(raw, list):
        return []
    return [(index, item) for index, item in enumerate(raw) if isinstance(item, dict)]


def _str_field(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def structure_check(data: dict[str, Any]) -> Iterator[Problem]:
    """Rules between nodes, checked on the raw document so they are reported even
    when other parts of the plan fail validation (every error at once)."""
    yield from _check_cycle(data)
    yield from _check_unique_ids(data)
    yield from _check_references(data)
    yield from _check_parent_cycles(data)
    yield from _check_owners(data)


def _check_unique_ids(data: dict[str, Any]) -> Iterator[Problem]:
    seen: dict[str, str] = {}

    def claim(item: dict[str, Any], path: list[PathPart]) -> Iterator[Problem]:
        item_id = _str_field(item, "id")
        if item_id is None:
            return
        if item_id in seen:
            yield [*path, "id"], f"duplicate id {item_id!r} (first used at {seen[item_id]})"
        else:
            seen[item_id] = format_path(path)

    for o_index, objective in _items(data, "objectives"):
        yield from claim(objective, ["objectives", o_index])
        for k_index, kr in _items(objective, "key_results"):
            yield from claim(kr, ["objectives", o_index, "key_results", k_index])
    for index, kpi in _items(data, "kpis"):
        yield from claim(kpi, ["kpis", index])
    perspective_seen: set[str] = set()
    for index, perspective in _items(data, "perspectives"):
        perspective_id = _str_field(perspective, "id")
        if perspective_id in perspective_seen:
            yield ["perspectives", index, "id"], f"duplicate perspective id {perspective_id!r}"
        elif perspective_id is not None:
            perspective_seen.add(perspective_id)


def _check_parent_cycles(data: dict[str, Any]) -> Iterator[Problem]:
    objectives = _items(data, "objectives")
    parents: dict[str, str | None] = {}
    first_index: dict[str, int] = {}
    for index, objective in objectives:
        own_id = _str_field(objective, "id")
        if own_id is not None and own_id not in parents:
            parents[own_id] = _str_field(objective, "parent")
            first_index[own_id] = index
    for cycle in find_parent_cycles(parents):
        loop = " -> ".join([*cycle, cycle[0]])
        yield ["objectives", first_index[cycle[0]], "parent"], f"parent cycle: {loop}"


def find_parent_cycles(parents: Mapping[str, str | None]) -> list[list[str]]:
    """Each loop of ``parent`` links once, starting at its first objective (in plan order).

    Linear in the number of objectives: every objective is walked over once, so a
    plan with a long chain of parents costs no more than a flat one.
    """
    order = {objective_id: index for index, objective_id in enumerate(parents)}
    finished: set[str] = set()
    cycles: list[list[str]] = []
    for start in parents:
        if start in finished:
            continue
        chain: dict[str, int] = {}
        current: str | None = start
        while current is not None and current in parents and current not in finished:
            if current in chain:
                loop = list(chain)[chain[current]:]
                if len(loop) > 1:
                    # Reported from the loop's objective that comes first in the plan.
                    first = min(range(len(loop)), key=lambda i: order[loop[i]])
                    cycles.append(loop[first:] + loop[:first])
                break
            chain[current] = len(chain)
            current = parents[current]
        finished.update(chain)
    return cycles


def _as_date(value: Any) -> date | None:
    # A datetime is a date subclass, but not a valid cycle date (the model says why).
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _check_cycle(data: dict[str, Any]) -> Iterator[Problem]:
    cycle = data.get("cycle")
    if not isinstance(cycle, dict):
        return
    start, end = _as_date(cycle.get("start")), _as_date(cycle.get("end"))
    if start is not None and end is not None and start >= end:
        yield ["cycle", "end"], "the cycle must end after it starts (start < end)"


def _check_references(data: dict[str, Any]) -> Iterator[Problem]:
    objectives = _items(data, "objectives")
    objective_ids = {_str_field(o, "id") for _, o in objectives}
    raw_perspectives = data.get("perspectives")
    perspective_ids = (
        {_str_field(p, "id") for _, p in _items(data, "perspectives")}
        if isinstance(raw_perspectives, list)
        else {p.id for p in default_perspectives()}
    )
    routes = data.get("routes")
    route_names = set(routes) if isinstance(routes, dict) else set()
    kpi_ids = {_str_field(k, "id") for _, k in _items(data, "kpis")}
    for index, objective in objectives:
        path: list[PathPart] = ["objectives", index]
        guardrails = objective.get("guardrails")
        for g_index, kpi in enumerate(guardrails if isinstance(guardrails, list) else []):
            if isinstance(kpi, str) and kpi not in kpi_ids:
                yield [*path, "guardrails", g_index], f"unknown KPI {kpi!r}"
        parent = _str_field(objective, "parent")
        if parent is not None:
            if parent == _str_field(objective, "id"):
                yield [*path, "parent"], "an objective cannot be its own parent"
            elif parent not in objective_ids:
                yield [*path, "parent"], f"unknown parent objective {parent!r}"
        perspective = _str_field(objective, "perspective")
        if perspective is not None and perspective not in perspective_ids:
            yield [*path, "perspective"], f"unknown perspective {perspective!r}"
        notify = objective.get("notify")
        for r_index, route in enumerate(notify if isinstance(notify, list) else []):
            if isinstance(route, str) and route not in route_names:
                yield [*path, "notify", r_index], f"unknown route {route!r}"
    for index, kpi in _items(data, "kpis"):
        perspective = _str_field(kpi, "perspective")
        if perspective is not None and perspective not in perspective_ids:
            yield ["kpis", index, "perspective"], f"unknown perspective {perspective!r}"
    yield from _check_slack_channels(routes if isinstance(routes, dict) else {})


def _check_owners(data: dict[str, Any]) -> Iterator[Problem]:
    """An owner that is not a key of ``people`` is free text, unless it is so close to
    a key that it is surely a typo of it (``alcie``, ``Alice`` for ``alice``)."""
    people = data.get("people")
    keys = [key for key in people if isinstance(key, str)] if isinstance(people, dict) else []
    if not keys:
        return
    folded = {key.casefold(): key for key in keys}

    def check(owner: str | None, path: list[PathPart]) -> Iterator[Problem]:
        if owner is None or owner in keys:
            return
        close = difflib.get_close_matches(owner.casefold(), list(folded), n=1, cutoff=0.8)
        if close:
            yield path, (f"unknown person {owner!r}: did you mean {folded[close[0]]!r}? "
                         "(an owner is a key of `people`, or free text shown as written)")

    for index, objective in _items(data, "objectives"):
        path: list[PathPart] = ["objectives", index]
        yield from check(_str_field(objective, "owner"), [*path, "owner"])
        for k_index, kr in _items(objective, "key_results"):
            yield from check(_str_field(kr, "owner"), [*path, "key_results", k_index, "owner"])


def _check_slack_channels(routes: dict[Any, Any]) -> Iterator[Problem]:
    # chat.postMessage takes a name too, but chat.update and the history lookup need the
    # id, and a renamed channel would silently lose its standing message.
    for name, targets in routes.items():
        for t_index, target in enumerate(targets if isinstance(targets, list) else []):
            slack = target.get("slack") if isinstance(target, dict) else None
            channel = _str_field(slack, "channel") if isinstance(slack, dict) else None
            if channel is not None and not _SLACK_CHANNEL_ID.match(channel):
                yield (
                    ["routes", name, t_index, "slack", "channel"],
                    (f"{channel!r} is not a Slack channel id: use the channel id, e.g. "
                     "C0123ABCD; find it in the channel's details"),
                )


def _check_contributors(plan: Plan) -> Iterator[Problem]:
    # One pass to group children by parent: asking the plan per objective is quadratic.
    child_weights: dict[str, list[float]] = {}
    for child in plan.objectives:
        if child.parent is not None:
            child_weights.setdefault(child.parent, []).append(child.weight)
    for index, objective in enumerate(plan.objectives):
        weights = [kr.weight for kr in objective.key_results]
        weights += child_weights.get(objective.id, [])
        path: list[PathPart] = ["objectives", index]
        if not weights:
            yield (
                [*path, "key_results"],
                (f"objective {objective.id!r} has no contributors (no key results, no children)"),
            )
        elif sum(weights) <= 0:
            yield (
                [*path, "key_results"],
                (f"the weights of objective {objective.id!r}'s contributors sum to 0"),
            )


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of the plan file, for editor completion (``okr-sync schema``)."""
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "okr-sync plan"
    return schema


def plan_json_schema_text() -> str:
    return json.dumps(plan_json_schema(), indent=2, sort_keys=True)


__all__ = [
    "DEFAULT_SOURCE",
    "PlanError",
    "PlanIssue",
    "load_plan",
    "load_plan_bytes",
    "load_plan_text",
    "plan_json_schema",
    "plan_json_schema_text",
]
