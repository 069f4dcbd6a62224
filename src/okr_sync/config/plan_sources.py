"""Plan rules about Jira sources: their names, and that every measure's source exists,
can be connected by settings, and covers the projects the measure selects."""

from __future__ import annotations

import re
from collections.abc import Iterator

from okr_sync.config.plan import SOURCE_NAME_PATTERN, JiraMeasure, Plan
from okr_sync.config.plan_yaml import PathPart

Problem = tuple[list[PathPart], str]


def _measures(plan: Plan) -> Iterator[tuple[list[PathPart], JiraMeasure]]:
    for o_index, objective in enumerate(plan.objectives):
        for k_index, kr in enumerate(objective.key_results):
            if kr.measure.kind != "manual":
                path: list[PathPart] = ["objectives", o_index, "key_results", k_index, "measure"]
                yield path, kr.measure
    for index, kpi in enumerate(plan.kpis):
        if kpi.measure is not None and kpi.measure.kind != "manual":
            yield ["kpis", index, "measure"], kpi.measure


_SOURCE_NAME = re.compile(SOURCE_NAME_PATTERN)


def _check_source_names(plan: Plan) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for name in plan.jira:
        if not _SOURCE_NAME.match(name):
            yield ["jira", name], (f"source name {name!r} must be letters, digits and single "
                                   "underscores (it is part of OKR_SYNC_JIRA__<NAME>__URL)")
        elif name.lower() in seen:
            yield ["jira", name], (f"source name {name!r} differs from {seen[name.lower()]!r} "
                                   "only in case (settings names are upper case)")
        seen.setdefault(name.lower(), name)


def source_problems(plan: Plan, connectable: frozenset[str] | None) -> Iterator[Problem]:
    """``connectable``: the sources settings connect (None: not checked)."""
    yield from _check_source_names(plan)
    for path, measure in _measures(plan):
        source = plan.jira.get(measure.source)
        if source is None:
            yield [*path, "source"], f"unknown Jira source {measure.source!r}"
            continue
        if connectable is not None and measure.source.lower() not in connectable:
            # Said now rather than when `run` connects, after a validate that passed.
            variable = f"OKR_SYNC_JIRA__{measure.source.upper()}__URL"
            yield (
                [*path, "source"],
                (f"Jira source {measure.source!r} has no settings: set {variable} and its "
                 "credentials (__EMAIL + __API_TOKEN, or __PAT)"),
            )
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
