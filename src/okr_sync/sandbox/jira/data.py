"""Jira sandbox datasets: the model (re-exported from :mod:`.model`) and a seeded generator.

``generate_dataset(seed=1, issues=5000)`` always builds the same issues for the same
arguments: epics with children, stories/tasks/bugs, sub-tasks, story points with gaps, a
status mix that drifts towards done with age, and timestamps spread around the cycle.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from okr_sync.sandbox.jira.model import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    ChangeHistory,
    IssueRecord,
    IssueType,
    JiraDataset,
    Mutation,
    NamedItem,
    Project,
    SandboxClock,
    Status,
    StatusCategory,
    issue_type_named,
    status_named,
)

__all__ = [
    "DEFAULT_CYCLE_START",
    "ISSUE_TYPES",
    "PRIORITIES",
    "RESOLUTIONS",
    "STATUSES",
    "STATUS_CATEGORIES",
    "ChangeHistory",
    "IssueRecord",
    "IssueType",
    "JiraDataset",
    "Mutation",
    "NamedItem",
    "Project",
    "SandboxClock",
    "Status",
    "StatusCategory",
    "generate_dataset",
    "issue_type_named",
    "status_named",
]

DEFAULT_CYCLE_START = datetime(2026, 10, 1, tzinfo=UTC)

_PROJECT_NAMES = {"ENT": "Enterprise", "SUP": "Customer Support", "OPS": "Operations"}
_COMPONENTS = {
    "ENT": ("Auth", "Billing", "Admin Console", "Public API"),
    "SUP": ("Triage", "Integrations", "Mobile"),
    "OPS": ("Platform", "Observability", "CI/CD"),
}
_LABELS = {
    "ENT": ("sso", "enterprise", "security", "billing", "api", "compliance"),
    "SUP": ("customer", "regression", "hotfix", "escalation", "mobile"),
    "OPS": ("infra", "on-call", "cost", "k8s", "tech-debt"),
}
_GENERIC_COMPONENTS = ("Core", "Frontend", "Backend")
_GENERIC_LABELS = ("frontend", "backend", "tech-debt", "quick-win")
_VERBS = ("Add", "Support", "Improve", "Migrate", "Refactor", "Document", "Automate", "Expose")
_OBJECTS = (
    "SAML single sign-on", "SCIM provisioning", "audit log export", "invoice PDFs",
    "usage-based billing", "rate limiting", "webhook retries", "CSV import", "role permissions",
    "search indexing", "dashboard filters", "API pagination", "mobile push notifications",
    "backup restore", "log retention", "alert routing", "deployment pipeline", "cost reports",
    "tenant isolation", "session timeout", "password policy", "data residency",
)
_BUG_PHRASES = (
    "Crash when opening", "Timeout while loading", "Wrong totals in", "Blank page on",
    "Duplicate emails from", "Slow response in", "Error 500 from", "Broken layout in",
)
_POINTS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0)


@dataclass
class _Draft:
    project: str
    issuetype: str
    created: datetime
    parent: int | None = None  # index into the draft list
    status: str = "To Do"
    updated: datetime | None = None
    resolutiondate: datetime | None = None
    resolution: str | None = None
    story_points: float | None = None
    priority: str = "Medium"
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    fix_versions: list[str] = field(default_factory=list)
    summary: str = ""


def _between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    if high <= low:
        return low
    span_ms = int((high - low).total_seconds() * 1000)
    return low + timedelta(milliseconds=rng.randint(0, span_ms))


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``total`` by ``weights`` (deterministic)."""
    raw = [total * w / sum(weights) for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _projects(keys: Sequence[str], start: datetime, now: datetime) -> list[Project]:
    out: list[Project] = []
    next_id = 10000
    for index, key in enumerate(keys):
        project = Project(10000 + index, key, _PROJECT_NAMES.get(key, f"{key.title()} Project"))
        for name in _COMPONENTS.get(key, _GENERIC_COMPONENTS):
            project.components[name] = next_id
            next_id += 1
        for months in (-1, 0, 1, 2):
            month_index = start.month - 1 + months
            year, month = start.year + month_index // 12, month_index % 12 + 1
            release = datetime(year, month, 1, tzinfo=UTC) + timedelta(days=27)
            project.versions[f"{year}.{month:02d}"] = (next_id, release < now)
            next_id += 1
        out.append(project)
    return out


def generate_dataset(
    seed: int = 1,
    issues: int = 500,
    projects: Sequence[str] = ("ENT", "SUP", "OPS"),
    start: datetime = DEFAULT_CYCLE_START,
    *,
    cycle_days: int = 92,
    now: datetime | None = None,
    frozen_clock: bool = True,
) -> JiraDataset:
    """A realistic dataset of exactly ``issues`` issues; the clock starts at ``now``.

    ``now`` defaults to the middle of the cycle that begins at ``start``.
    """
    if issues < 0 or not projects:
        raise ValueError("need a non-negative issue count and at least one project")
    start = start.astimezone(UTC)
    now = (now or start + timedelta(days=cycle_days // 2, hours=9)).astimezone(UTC)
    rng = random.Random(seed)
    catalog = _projects(projects, start, now)
    window = start - timedelta(days=30)
    drafts: list[_Draft] = []
    weights = [max(0.4, 1.0 - 0.2 * i) for i in range(len(projects))]
    for project, count in zip(catalog, _split(issues, weights), strict=True):
        _draft_project(rng, drafts, project, count, window, now)
    by_key = {p.key: p for p in catalog}
    for draft in drafts:
        _decorate(rng, draft, by_key[draft.project], drafts, (window, now))
    _settle_epics(rng, drafts, now)
    return _assemble(drafts, catalog, SandboxClock(now, frozen=frozen_clock))


def _draft_project(
    rng: random.Random, drafts: list[_Draft], project: Project, count: int,
    window: datetime, now: datetime,
) -> None:
    latest = now - timedelta(minutes=5)
    epics_n = 0 if count < 3 else max(1, round(count * 0.06))
    subtasks_n = round(count * 0.15) if count >= 4 else 0
    standard_n = count - epics_n - subtasks_n
    epic_idx: list[int] = []
    for _ in range(epics_n):
        created = _between(rng, window, min(latest, window + (latest - window) * 0.4))
        drafts.append(_Draft(project.key, "Epic", created))
        epic_idx.append(len(drafts) - 1)
    bug_weight = 0.45 if project.key == "SUP" else 0.2
    standard_idx: list[int] = []
    for _ in range(standard_n):
        itype = rng.choices(("Story", "Task", "Bug"), (0.55, 0.25, bug_weight))[0]
        parent = rng.choice(epic_idx) if epic_idx and rng.random() < 0.7 else None
        low = drafts[parent].created if parent is not None else window
        drafts.append(_Draft(project.key, itype, _between(rng, low, latest), parent=parent))
        standard_idx.append(len(drafts) - 1)
    for _ in range(subtasks_n):
        parent = rng.choice(standard_idx)
        created = _between(rng, drafts[parent].created, latest)
        drafts.append(_Draft(project.key, "Sub-task", created, parent=parent))


def _decorate(
    rng: random.Random, draft: _Draft, project: Project, drafts: list[_Draft],
    span: tuple[datetime, datetime],
) -> None:
    target = draft.issuetype
    if target == "Bug":
        draft.summary = f"{rng.choice(_BUG_PHRASES)} {rng.choice(_OBJECTS)}"
        draft.priority = rng.choices([p.name for p in PRIORITIES], (15, 30, 40, 10, 5))[0]
    else:
        draft.summary = f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        draft.priority = rng.choices([p.name for p in PRIORITIES], (5, 20, 55, 15, 5))[0]
    if target == "Epic":
        draft.summary = f"{rng.choice(_OBJECTS).capitalize()} initiative"
    points_odds = {"Story": 0.85, "Task": 0.55, "Bug": 0.35, "Sub-task": 0.1, "Epic": 0.0}
    if rng.random() < points_odds[target]:
        draft.story_points = rng.choices(_POINTS, (10, 20, 25, 25, 15, 5))[0]
    pool = _LABELS.get(draft.project, _GENERIC_LABELS)
    if rng.random() > 0.35:
        draft.labels = sorted(rng.sample(pool, rng.randint(1, min(3, len(pool)))))
    if rng.random() > 0.3:
        names = list(project.components)
        draft.components = sorted(rng.sample(names, rng.randint(1, min(2, len(names)))))
    if target != "Epic":
        _draft_status(rng, draft, drafts, project, span)


def _draft_status(
    rng: random.Random, draft: _Draft, drafts: list[_Draft], project: Project,
    span: tuple[datetime, datetime],
) -> None:
    oldest, now_hint = span
    age = (now_hint - draft.created) / max(now_hint - oldest, timedelta(seconds=1))
    parent_done = (
        draft.issuetype == "Sub-task" and draft.parent is not None
        and status_named(drafts[draft.parent].status).category == "done"
    )
    p_done = 0.9 if parent_done else 0.1 + 0.65 * age
    roll = rng.random()
    if roll < p_done:
        draft.status = "Won't Do" if rng.random() < 0.08 else "Done"
        draft.resolution = "Won't Do" if draft.status == "Won't Do" else rng.choices(
            ("Done", "Duplicate", "Cannot Reproduce"), (0.9, 0.05, 0.05))[0]
        draft.resolutiondate = _between(rng, draft.created, now_hint)
        draft.updated = _between(
            rng, draft.resolutiondate, min(now_hint, draft.resolutiondate + timedelta(days=2)))
    else:
        if roll < p_done + (1 - p_done) * 0.45:
            draft.status = "In Review" if rng.random() < 0.3 else "In Progress"
        else:
            draft.status = "Backlog" if rng.random() < 0.35 else "To Do"
        draft.updated = _between(rng, draft.created, now_hint)
    released = [name for name, (_, done) in project.versions.items() if done]
    upcoming = [name for name, (_, done) in project.versions.items() if not done]
    if draft.resolutiondate is not None and released and rng.random() < 0.7:
        draft.fix_versions = [rng.choice(released)]
    elif draft.resolutiondate is None and upcoming and rng.random() < 0.4:
        draft.fix_versions = [rng.choice(upcoming)]


def _settle_epics(rng: random.Random, drafts: list[_Draft], now: datetime) -> None:
    """An epic's status follows its children, as teams usually keep it."""
    children: dict[int, list[_Draft]] = {}
    for draft in drafts:
        if draft.parent is not None and draft.issuetype != "Sub-task":
            children.setdefault(draft.parent, []).append(draft)
    for index, epic in enumerate(drafts):
        if epic.issuetype != "Epic":
            continue
        kids = children.get(index, [])
        cats = [status_named(k.status).category for k in kids]
        if kids and all(c == "done" for c in cats) and rng.random() < 0.8:
            epic.status, epic.resolution = "Done", "Done"
            epic.resolutiondate = max(k.resolutiondate or k.created for k in kids)
        elif any(c != "new" for c in cats):
            epic.status = "In Progress"
        else:
            epic.status = "To Do"
        latest = max([epic.created, *(k.created for k in kids)])
        floor = epic.resolutiondate or latest
        epic.updated = _between(rng, floor, min(now, floor + timedelta(days=3)))


def _assemble(drafts: list[_Draft], catalog: list[Project], clock: SandboxClock) -> JiraDataset:
    order = sorted(range(len(drafts)), key=lambda i: (drafts[i].created, i))
    ids = {index: 10000 + rank for rank, index in enumerate(order)}
    numbers = {p.key: 0 for p in catalog}
    records: list[IssueRecord] = []
    for index in order:
        draft = drafts[index]
        numbers[draft.project] += 1
        records.append(IssueRecord(
            id=ids[index], key=f"{draft.project}-{numbers[draft.project]}",
            project=draft.project, issuetype=draft.issuetype, summary=draft.summary,
            status=draft.status, priority=draft.priority, created=draft.created,
            updated=draft.updated or draft.created, labels=draft.labels,
            components=draft.components, fix_versions=draft.fix_versions,
            parent_id=ids[draft.parent] if draft.parent is not None else None,
            story_points=draft.story_points, resolution=draft.resolution,
            resolutiondate=draft.resolutiondate,
        ))
    return JiraDataset(catalog, records, clock=clock)
