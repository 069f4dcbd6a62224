"""The benchmark's workload, generated deterministically from a seed.

* :func:`make_dataset` - N issues in 20 projects (epics, sub-tasks, story points, labels,
  components, fix versions, priorities, statuses of every category), from the sandbox's own
  seeded generator.
* :func:`make_plan` - a plan of KRs in issue 10's proportions (of 400: 300 structured
  selectors, 80 raw-JQL measures, 20 raw-JQL counts) and routes to Slack channels and Teams
  Workflows (of 30: 26 Slack, 4 Teams), as a plain document ready to be written as YAML.
* :func:`change_issues` - a burst of edits in Jira (transitions, story points, labels,
  priorities) touching a given share of the issues.

The same seed always gives the same dataset, plan and edits, so request counts compare
across versions and machines.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from okr_sync.sandbox.jira.data import JiraDataset, generate_dataset

PROJECTS: tuple[str, ...] = (
    "ENT", "SUP", "OPS", "PAY", "WEB", "MOB", "API", "DAT", "SEC", "INF",
    "CRM", "ERP", "HR", "FIN", "MKT", "SAL", "LOG", "QA", "DOC", "RND",
)
#: The names of the Teams Workflows URL variables the plan's Teams routes read.
WORKFLOW_ENV = "BENCH_TEAMS_WORKFLOW_{n}"
_PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
_TYPES = ("Story", "Task", "Bug")
_CATEGORIES = ("new", "indeterminate", "done")


@dataclass(frozen=True)
class PlanShape:
    """How many KRs of each kind, and how many routes."""

    structured: int = 300
    raw: int = 80
    counts: int = 20
    routes: int = 30
    #: Of the raw-JQL measures, how many use a relative date (re-run every pass).
    volatile: int = 4

    @property
    def key_results(self) -> int:
        return self.structured + self.raw + self.counts

    @property
    def teams_routes(self) -> int:
        return max(1, round(self.routes * 4 / 30))

    @classmethod
    def scaled(cls, key_results: int, routes: int) -> PlanShape:
        """Issue 10's proportions for ``key_results`` KRs (75 % / 20 % / 5 %)."""
        structured = round(key_results * 0.75)
        raw = round(key_results * 0.2)
        return cls(structured, raw, key_results - structured - raw, routes,
                   volatile=max(1, round(raw * 0.05)))


FULL_SHAPE = PlanShape()


def make_dataset(seed: int, issues: int) -> JiraDataset:
    """``issues`` issues in :data:`PROJECTS`, from the sandbox's seeded generator."""
    return generate_dataset(seed=seed, issues=issues, projects=PROJECTS)


def _quoted(values: list[str]) -> str:
    return ", ".join(json.dumps(v) for v in values)


class _PlanMaker:
    def __init__(self, seed: int, dataset: JiraDataset, shape: PlanShape) -> None:
        self.rng = random.Random(seed * 7919 + 17)
        self.shape = shape
        self.epics: dict[str, list[str]] = {}
        self.labels: dict[str, list[str]] = {}
        self.components: dict[str, list[str]] = {}
        self.versions: dict[str, list[str]] = {}
        for issue in dataset:
            if issue.issuetype == "Epic":
                self.epics.setdefault(issue.project, []).append(issue.key)
            bucket = self.labels.setdefault(issue.project, [])
            bucket.extend(label for label in issue.labels if label not in bucket)
        for key, project in dataset.projects.items():
            self.components[key] = sorted(project.components)
            self.versions[key] = sorted(project.versions)
        for values in (*self.epics.values(), *self.labels.values()):
            values.sort()

    def project(self) -> str:
        return self.rng.choice(PROJECTS)

    def selector(self, index: int) -> dict[str, Any]:
        """A structured selector: a project plus one or two narrowing keys.

        The first selectors take the projects in turn, so every project is in the scope.
        """
        project = PROJECTS[index] if index < len(PROJECTS) else self.project()
        select: dict[str, Any] = {"project": project}
        epics = self.epics.get(project, [])
        options = ["issuetype", "labels", "components", "fix_version", "priority",
                   "status_category"] + (["epic"] * 3 if epics else [])
        for key in self.rng.sample(options, self.rng.choice((1, 1, 2))):
            if key == "epic" and "epic" not in select:
                select["epic"] = self.rng.choice(epics)
            elif key == "issuetype":
                select["issuetype"] = self.rng.sample(_TYPES, self.rng.randint(1, 2))
            elif key == "labels" and self.labels.get(project):
                select["labels"] = self.rng.choice(self.labels[project])
            elif key == "components" and self.components.get(project):
                select["components"] = self.rng.choice(self.components[project])
            elif key == "fix_version" and self.versions.get(project):
                select["fix_version"] = self.rng.choice(self.versions[project])
            elif key == "priority":
                select["priority"] = self.rng.sample(_PRIORITIES, 2)
            elif key == "status_category":
                select["status_category"] = self.rng.sample(_CATEGORIES, 2)
        if index % 5 == 0:
            select["include_subtasks"] = True
        return select

    def structured_measure(self, index: int) -> dict[str, Any]:
        select = self.selector(index)
        roll = index % 10
        if roll < 5:
            return {"kind": "done_ratio", "select": select}
        if roll < 7:
            return {"kind": "done_ratio", "unit": "story_points", "select": select}
        if roll < 9 or "epic" not in select:
            return {"kind": "sum", "field": "story_points", "done_only": True, "select": select}
        return {"kind": "milestone", "select": select}

    def raw_jql(self, index: int) -> str:
        """Raw JQL of the shapes teams write; ``index`` < volatile ones use a relative date."""
        project = self.project()
        pick = index % 6
        if pick == 0:
            jql = (f"project = {project} AND issuetype = Bug AND priority in "
                   f"({_quoted(self.rng.sample(_PRIORITIES[:3], 2))})")
        elif pick == 1 and self.labels.get(project):
            other = self.project()
            jql = (f"project in ({project}, {other}) AND labels = "
                   f"{json.dumps(self.rng.choice(self.labels[project]))}")
        elif pick == 2 and self.epics.get(project):
            jql = f"parent = {self.rng.choice(self.epics[project])}"
        elif pick == 3 and self.components.get(project):
            jql = (f"project = {project} AND component = "
                   f"{json.dumps(self.rng.choice(self.components[project]))} "
                   "AND issuetype != Epic")
        elif pick == 4 and self.versions.get(project):
            jql = (f"project = {project} AND fixVersion = "
                   f"{json.dumps(self.rng.choice(self.versions[project]))}")
        else:
            jql = f"project = {project} AND issuetype in (Story, Task) ORDER BY created DESC"
        if index < self.shape.volatile:
            jql = f"project = {project} AND updated >= -14d AND issuetype != Epic"
        return jql

    def raw_measure(self, index: int) -> dict[str, Any]:
        jql = self.raw_jql(index)
        roll = self.rng.randrange(4)
        if roll < 2:
            return {"kind": "done_ratio", "jql": jql}
        if roll == 2:
            return {"kind": "sum", "field": "story_points", "done_only": True, "jql": jql}
        return {"kind": "milestone", "jql": jql} if jql.startswith("parent") else {
            "kind": "done_ratio", "unit": "story_points", "jql": jql}

    def count_jql(self) -> str:
        project = self.project()
        category = self.rng.choice(("Done", "In Progress", "To Do"))
        return (f"project = {project} AND issuetype = Bug AND "
                f"statusCategory = {json.dumps(category)}")


def make_plan(seed: int, dataset: JiraDataset, shape: PlanShape = FULL_SHAPE) -> dict[str, Any]:
    """A plan document (validated by okr-sync when it loads it) for ``dataset``."""
    maker = _PlanMaker(seed, dataset, shape)
    measures: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i in range(shape.structured):
        measure = maker.structured_measure(i)
        extra = {"target": 40} if measure["kind"] == "sum" else {}
        measures.append((measure, extra))
    for i in range(shape.raw):
        measure = maker.raw_measure(i)
        extra = {"target": 40} if measure["kind"] == "sum" else {}
        measures.append((measure, extra))
    for _ in range(shape.counts):
        measures.append(({"kind": "count", "jql": maker.count_jql()},
                         {"baseline": 60, "target": 5}))
    maker.rng.shuffle(measures)
    route_names = [f"r{n:02d}" for n in range(1, shape.routes + 1)]
    objectives = []
    per_objective = 4
    for number, start in enumerate(range(0, len(measures), per_objective), start=1):
        chunk = measures[start:start + per_objective]
        objective_id = f"O{number:03d}"
        objectives.append({
            "id": objective_id,
            "title": f"Objective {number}",
            "perspective": ("financial", "customer", "internal", "learning")[number % 4],
            "notify": [route_names[(number - 1) % len(route_names)]],
            "key_results": [
                {"id": f"{objective_id}.KR{k}", "title": f"Key result {k} of {objective_id}",
                 "measure": measure, **extra}
                for k, (measure, extra) in enumerate(chunk, start=1)
            ],
        })
    routes: dict[str, list[dict[str, Any]]] = {}
    teams_from = len(route_names) - shape.teams_routes
    for n, name in enumerate(route_names):
        if n >= teams_from:
            routes[name] = [{"teams_workflow": {"url_env": WORKFLOW_ENV.format(n=n + 1)}}]
        else:
            routes[name] = [{"slack": {"channel": slack_channel(n + 1)}}]
    return {
        "version": 1,
        "cycle": {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31",
                  "timezone": "UTC"},
        "jira": {"main": {"projects": list(PROJECTS), "story_points_field": "auto"}},
        "objectives": objectives,
        "routes": routes,
    }


def slack_channel(n: int) -> str:
    return f"C0BENCH{n:04d}"


def slack_channels(plan: dict[str, Any]) -> list[str]:
    return [t["slack"]["channel"] for targets in plan["routes"].values()
            for t in targets if "slack" in t]


def workflow_envs(plan: dict[str, Any]) -> list[str]:
    return [t["teams_workflow"]["url_env"] for targets in plan["routes"].values()
            for t in targets if "teams_workflow" in t]


def write_plan(plan: dict[str, Any], path: Path) -> Path:
    """Write the plan as YAML (JSON is YAML), one file okr-sync and the naive script read."""
    path.write_text(json.dumps(plan, indent=1) + "\n", encoding="utf-8")
    return path


def change_issues(dataset: JiraDataset, seed: int, share: float,
                  *, advance: timedelta = timedelta(minutes=10)) -> list[int]:
    """Edit ``share`` of the issues the way a day of work does; returns their ids.

    The clock moves ``advance`` first, so the edits are newer than any earlier pass.
    """
    rng = random.Random(seed)
    dataset.advance(advance)
    ids = sorted(issue.id for issue in dataset)
    chosen = rng.sample(ids, max(1, round(len(ids) * share)))
    for issue_id in chosen:
        edit_issue(dataset, issue_id, rng)
    return chosen


def edit_issue(dataset: JiraDataset, issue_id: int, rng: random.Random) -> None:
    """One edit: most often a transition, else story points, labels or priority."""
    issue = dataset.get(issue_id)
    roll = rng.random()
    if roll < 0.6 and issue.issuetype != "Epic":
        target = "Done" if issue.status_category != "done" else "In Progress"
        dataset.transition(issue_id, rng.choice((target, target, "In Review"))
                           if target != "Done" else target)
    elif roll < 0.8:
        dataset.set_story_points(issue_id, rng.choice((1.0, 2.0, 3.0, 5.0, 8.0, None)))
    elif roll < 0.9:
        labels = sorted({*issue.labels, rng.choice(("frontend", "backend", "quick-win"))})
        dataset.update(issue_id, labels=labels)
    else:
        dataset.update(issue_id, priority=rng.choice(_PRIORITIES))
