"""Load and validate a plan file, reporting every error as ``FILE:LINE:COLUMN: path: message``.

A bad plan is refused as a whole: :func:`load_plan` raises :class:`PlanError`
listing all problems at once (YAML syntax, shape, and cross-references), so a
user fixes the file in one go. Nothing is fetched or posted before this passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from okr_sync.config.plan import DEFAULT_SOURCE, JiraMeasure, Plan, default_perspectives

PathPart = str | int
Position = tuple[int, int]


@dataclass(frozen=True)
class PlanIssue:
    """One problem in a plan file. Line and column are 1-based."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class PlanError(Exception):
    """The plan is invalid; :attr:`issues` lists every problem found."""

    def __init__(self, issues: list[PlanIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def format_path(path: Iterable[PathPart]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(plan)"


class _Positions:
    """Where each node of the YAML document starts, by its path."""

    def __init__(self, root: Any) -> None:
        self._positions: dict[tuple[PathPart, ...], Position] = {(): (0, 0)}
        self._walk(root, ())

    def _walk(self, node: Any, path: tuple[PathPart, ...]) -> None:
        if isinstance(node, CommentedMap):
            for key in node:
                key_line, key_col = node.lc.key(key)
                self._positions[(*path, str(key))] = (key_line, key_col)
                self._walk(node[key], (*path, str(key)))
        elif isinstance(node, CommentedSeq):
            for index, item in enumerate(node):
                line, col = node.lc.item(index)
                self._positions[(*path, index)] = (line, col)
                self._walk(item, (*path, index))

    def at(self, path: Iterable[PathPart]) -> Position:
        """Position of the deepest existing node on ``path`` (1-based)."""
        parts = tuple(path)
        while parts not in self._positions:
            parts = parts[:-1]
        line, col = self._positions[parts]
        return line + 1, col + 1


def _to_plain(node: Any) -> Any:
    """ruamel's commented containers -> plain dicts and lists with string keys."""
    if isinstance(node, CommentedMap):
        return {str(key): _to_plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_to_plain(item) for item in node]
    return node


_TYPE_TAG = re.compile(r"^(str|int|float|bool|date|list\[.*\]|literal\[.*\]|[a-z-]+\[.*\])$")
_MEASURE_TAGS = {"done_ratio", "count", "sum", "milestone", "manual"}


def _pydantic_path(loc: tuple[int | str, ...]) -> list[PathPart]:
    """Drop pydantic's union-member and discriminator tags so the path matches the YAML."""
    return [
        part
        for part in loc
        if not (isinstance(part, str) and (part in _MEASURE_TAGS or _TYPE_TAG.match(part)))
    ]


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

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.path = path
        self.display = str(path)
        self._text = text

    def load(self) -> Plan:
        try:
            text = self._text if self._text is not None else self.path.read_text("utf-8")
        except OSError as error:
            raise PlanError(
                [PlanIssue(self.display, 1, 1, "(plan)", f"cannot read: {error.strerror}")]
            ) from None
        document = self._parse_yaml(text)
        positions = _Positions(document)
        data = _to_plain(document)
        if not isinstance(data, dict):
            raise PlanError(
                [PlanIssue(self.display, 1, 1, "(plan)", "the plan must be a YAML mapping")]
            )
        issues = [self._issue(positions, p, m) for p, m in structure_check(data)]
        try:
            plan = Plan.model_validate(data)
        except ValidationError as error:
            seen_paths: set[str] = set()
            for e in error.errors():
                path = _pydantic_path(e["loc"])
                # A value that fits no member of a union is reported once, not per member.
                if format_path(path) in seen_paths:
                    continue
                seen_paths.add(format_path(path))
                issues.append(self._issue(positions, path, _message(dict(e))))
            raise PlanError(self._sorted(issues)) from None
        issues += [self._issue(positions, p, m) for p, m in cross_check(plan)]
        if issues:
            raise PlanError(self._sorted(issues))
        return plan

    def _parse_yaml(self, text: str) -> Any:
        yaml = YAML(typ="rt")
        try:
            return yaml.load(text)
        except MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = error.problem or error.context or "invalid YAML"
            raise PlanError([PlanIssue(self.display, line, col, "(yaml)", problem)]) from None
        except YAMLError as error:
            raise PlanError([PlanIssue(self.display, 1, 1, "(yaml)", str(error))]) from None

    def _issue(self, positions: _Positions, path: list[PathPart], message: str) -> PlanIssue:
        line, column = positions.at(path)
        return PlanIssue(self.display, line, column, format_path(path), message)

    @staticmethod
    def _sorted(issues: list[PlanIssue]) -> list[PlanIssue]:
        unique = {(i.line, i.column, i.path, i.message): i for i in issues}
        return sorted(unique.values(), key=lambda i: (i.line, i.column, i.path))


def load_plan(path: str | Path) -> Plan:
    """Load and fully validate a plan file; raise :class:`PlanError` listing every problem."""
    return PlanLoader(Path(path)).load()


def load_plan_text(text: str, *, name: str = "<plan>") -> Plan:
    return PlanLoader(Path(name), text).load()


# --- cross-checks: rules that relate several nodes -------------------------------------

Problem = tuple[list[PathPart], str]


def cross_check(plan: Plan) -> Iterator[Problem]:
    """Rules that need the validated model (run only when the shape is valid)."""
    yield from _check_contributors(plan)
    yield from _check_sources(plan)


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
    parents = {_str_field(o, "id"): _str_field(o, "parent") for _, o in objectives}
    reported: set[str] = set()
    for index, objective in objectives:
        own_id = _str_field(objective, "id")
        if own_id is None or own_id in reported:
            continue
        chain = [own_id]
        current = parents.get(own_id)
        # Bounded by the number of objectives: each step visits a new one or stops.
        while current is not None and current in parents and current not in chain:
            chain.append(current)
            current = parents[current]
        if current == own_id and len(chain) > 1:
            reported |= set(chain)
            loop = " -> ".join([*chain, own_id])
            yield ["objectives", index, "parent"], f"parent cycle: {loop}"


def _as_date(value: Any) -> date | None:
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
    for index, objective in objectives:
        path: list[PathPart] = ["objectives", index]
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


def _check_contributors(plan: Plan) -> Iterator[Problem]:
    for index, objective in enumerate(plan.objectives):
        children = plan.children(objective.id)
        weights = [kr.weight for kr in objective.key_results] + [c.weight for c in children]
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


def _measures(plan: Plan) -> Iterator[tuple[list[PathPart], JiraMeasure]]:
    for o_index, objective in enumerate(plan.objectives):
        for k_index, kr in enumerate(objective.key_results):
            if kr.measure.kind != "manual":
                path: list[PathPart] = ["objectives", o_index, "key_results", k_index, "measure"]
                yield path, kr.measure
    for index, kpi in enumerate(plan.kpis):
        if kpi.measure is not None and kpi.measure.kind != "manual":
            yield ["kpis", index, "measure"], kpi.measure


def _check_sources(plan: Plan) -> Iterator[Problem]:
    for path, measure in _measures(plan):
        source = plan.jira.get(measure.source)
        if source is None:
            yield [*path, "source"], f"unknown Jira source {measure.source!r}"
            continue
        if measure.select is None:
            continue
        projects = measure.select.values("project")
        if projects is None:
            if not source.projects:
                yield (
                    [*path, "select"],
                    (f"`select` without `project` needs `jira.{measure.source}.projects`"),
                )
            continue
        allowed = {p.upper() for p in source.projects}
        for project in projects:
            if source.projects and project.upper() not in allowed:
                yield (
                    [*path, "select", "project"],
                    (f"project {project!r} is outside jira.{measure.source}.projects"),
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
    "load_plan_text",
    "plan_json_schema",
    "plan_json_schema_text",
]
