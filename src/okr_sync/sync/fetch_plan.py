"""From a plan, the fewest Jira queries that measure it (pure; unit-tested as exact JQL).

Per source: one incremental search over the union of the structured selectors'
scope (not one per KR), requesting only the fields the measures need; id-only
membership queries for raw-``jql`` measures; approximate-count for raw-``jql``
``count`` measures, which need nothing but a number.

A raw JQL that :mod:`okr_sync.sync.jql_local` reads exactly, restricted to projects
of the plan (a selector's or the source's ``projects``), is answered on the mirror
instead: its projects join the mirrored scope, and it costs no request of its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from okr_sync.config.plan import (
    STORY_POINTS,
    JiraMeasure,
    JiraSourceConfig,
    Plan,
    Selector,
    SumMeasure,
    selector_projects,
)
from okr_sync.connectors.jira.jql import jql_string, projects_jql
from okr_sync.sync.jql_local import LocalJql, NotLocal, analyse

MembershipMode = Literal["ids", "count"]

# Functions and relative dates whose results move with the clock, not with issue
# updates: such JQL is re-run every pass, not only when its source changed.
_VOLATILE_FUNCTION = re.compile(
    r"\b(now|currentUser|currentLogin|lastLogin|openSprints|closedSprints|futureSprints|"
    r"startOf(Day|Week|Month|Year)|endOf(Day|Week|Month|Year)|membersOf|issueHistory|"
    r"updatedBy|watchedIssues|votedIssues)\s*\(",
    re.IGNORECASE,
)
_RELATIVE_DATE = re.compile(r"""(?:[<>]=?|=|!=)\s*["']?[-+]?\d+\s*[wdhm]\b["']?""", re.IGNORECASE)


def is_volatile_jql(jql: str) -> bool:
    """True when the JQL's result can change without any issue being updated."""
    return bool(_VOLATILE_FUNCTION.search(jql) or _RELATIVE_DATE.search(jql))


@dataclass(frozen=True)
class MembershipQuery:
    """A raw-JQL measure of a KR or KPI (``owner``)."""

    owner: str
    jql: str
    mode: MembershipMode
    volatile: bool
    #: Set when the mirror can answer it (its projects are in the mirrored scope).
    local: LocalJql | None = None
    #: Set for a query Jira answers whose predicate one issue's own fields decide: a
    #: pass whose changed issues neither are its members nor match it keeps its answer.
    screen: LocalJql | None = None


@dataclass(frozen=True)
class SourceFetchPlan:
    source: str
    #: The mirrored scope. With raw JQL answered locally, every issue of these projects
    #: (sub-tasks included) must stay in the mirror with :attr:`local_attributes`: a
    #: local answer is only right if the mirror holds every issue that could match.
    projects: tuple[str, ...]
    extra_fields: tuple[str, ...]
    memberships: tuple[MembershipQuery, ...]
    #: The epic keys the structured selectors name (resolved once per pass, not per KR).
    epics: tuple[str, ...] = ()

    @property
    def local_attributes(self) -> frozenset[str]:
        """The mirror attributes raw JQL answered locally reads (the mirror must keep them)."""
        return frozenset(
            a for q in self.memberships if q.local is not None for a in q.local.mirror_attributes
        )

    @property
    def scope_jql(self) -> str | None:
        """The structured selectors' scope, or ``None`` when no KR uses ``select``."""
        return projects_jql(self.projects) if self.projects else None


def fetch_fingerprint(plan: Plan, source_plan: SourceFetchPlan) -> str:
    """What a source's mirror is fetched for (projects, fields): stored with each snapshot,
    so a pass (and ``backfill``) knows whether the mirror suits the plan."""
    config = plan.jira[source_plan.source]
    return json.dumps([source_plan.projects, source_plan.extra_fields,
                       config.story_points_field])


def build_fetch_plan(plan: Plan, *, local_jql: bool = True) -> dict[str, SourceFetchPlan]:
    """The queries each Jira source needs for this plan (sources with no measure are left out).

    ``local_jql=False`` asks Jira for every raw JQL (as before local evaluation).
    """
    by_source: dict[str, list[tuple[str, JiraMeasure]]] = {}
    for owner, measure in plan.jira_measures():
        by_source.setdefault(measure.source, []).append((owner, measure))
    result = {}
    for source_name, measures in by_source.items():
        source = plan.jira[source_name]
        projects: dict[str, None] = {}
        fields: dict[str, None] = {}
        raw: list[tuple[str, JiraMeasure, str]] = []
        epics: dict[str, None] = {}
        for owner, measure in measures:
            if isinstance(measure, SumMeasure) and measure.field != STORY_POINTS:
                fields[measure.field] = None
            if measure.select is not None:
                for project in selector_projects(measure.select, source):
                    projects[project.upper()] = None
                epics.update(dict.fromkeys(measure.select.values("epic") or ()))
            elif measure.jql is not None:
                raw.append((owner, measure, measure.jql))
        # Keys the plan names as projects: a JQL value among them is a key, not a name.
        known = {*projects, *(p.upper() for p in source.projects)}
        memberships = []
        for owner, measure, jql in raw:
            local = _local(jql, known) if local_jql else None
            if local is not None:
                projects.update(dict.fromkeys(sorted(local.projects)))
                fields.update(dict.fromkeys(sorted(local.jira_fields)))
            mode: MembershipMode = "count" if measure.kind == "count" else "ids"
            volatile = is_volatile_jql(jql)
            screen = (_screen(jql, known) if local is None and mode == "ids" and not volatile
                      else None)
            if screen is not None:
                # A screen reads these on the changed issues the incremental search sends.
                fields.update(dict.fromkeys(sorted(screen.jira_fields)))
            memberships.append(MembershipQuery(owner, jql, mode, volatile, local, screen))
        result[source_name] = SourceFetchPlan(
            source=source_name,
            projects=tuple(sorted(projects)),
            extra_fields=tuple(fields),
            memberships=tuple(memberships),
            epics=tuple(epics),
        )
    return result


def _local(jql: str, known_projects: set[str]) -> LocalJql | None:
    try:
        local = analyse(jql)
    except NotLocal:
        return None
    if not (local.projects | local.named_projects) <= known_projects:
        return None
    return local


def _screen(jql: str, known_projects: set[str]) -> LocalJql | None:
    try:
        local = analyse(jql, restricted=False)
    except NotLocal:
        return None
    # A project it names must be a key (a name reads otherwise); whether an issue is in
    # an epic depends on another issue, which a change of that one does not show.
    if not local.named_projects <= known_projects or "Epic Link" in local.fields:
        return None
    return local


def _in_clause(field: str, values: list[str]) -> str:
    return f"{field} in ({', '.join(jql_string(v) for v in values)})"


def selector_jql(select: Selector, source: JiraSourceConfig) -> str:
    """A JQL equivalent of a structured selector, for links that show its items in Jira."""
    clauses = [_in_clause("project", selector_projects(select, source))]
    for key, field in (
        ("issuetype", "issuetype"),
        ("labels", "labels"),
        ("components", "component"),
        ("fix_version", "fixVersion"),
        ("epic", "parent"),
        ("priority", "priority"),
        ("status_category", "statusCategory"),
    ):
        values = select.values(key)
        if values:
            clauses.append(_in_clause(field, values))
    if not select.include_subtasks:
        clauses.append("issuetype not in subTaskIssueTypes()")
    return " AND ".join(clauses)


def measure_jql(measure: JiraMeasure, source: JiraSourceConfig) -> str:
    if measure.jql is not None:
        return measure.jql
    assert measure.select is not None
    return selector_jql(measure.select, source)


def measure_jqls(plan: Plan, source_name: str) -> dict[str, str]:
    """Owner -> the JQL that selects its items, for every measure of one source."""
    source = plan.jira[source_name]
    return {
        owner: measure_jql(measure, source)
        for owner, measure in plan.jira_measures()
        if measure.source == source_name
    }


def jira_filter_url(base_url: str, jql: str) -> str:
    """Link to Jira's issue navigator for ``jql``."""
    return f"{base_url.rstrip('/')}/issues/?jql={quote(jql, safe='')}"


