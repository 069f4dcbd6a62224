"""A sandbox Jira mutated day by day and scored by a real pass at the end of each day.

What ``backfill`` must reproduce: the daily values those live passes measured.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from okr_sync.config.plan import Plan
from okr_sync.config.settings import Settings
from okr_sync.sandbox.jira.data import JiraDataset, generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sync.delivery.outbox import Senders
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime, build_runtime
from support.clocks import FakeClock
from support.plan_builders import PlanBuilder, objective

ZONE = ZoneInfo("Europe/Berlin")  # the plan's zone; the Jira user's is New York
CYCLE_START = date(2026, 10, 1)
#: (value, score, band, confidence) of a KR on one day.
DayResult = tuple[float | None, float | None, str | None, str | None]


def _kr(kr_id: str, measure: dict[str, object], **extra: object) -> dict[str, object]:
    return {"id": kr_id, "title": f"KR {kr_id}", "measure": measure, **extra}


def backfill_plan(epic_key: str) -> Plan:
    return backfill_plan_builder(epic_key).build()


def backfill_plan_builder(epic_key: str) -> PlanBuilder:
    """KRs of every kind, over ENT and SUP (OPS is outside: moving there leaves)."""
    return (
        PlanBuilder()
        .with_cycle(timezone=str(ZONE))
        .set("jira", {"main": {"projects": ["ENT", "SUP"]}})
        .with_objective(objective(
            "O1",
            _kr("O1.KR1", {"kind": "done_ratio", "select": {"project": "ENT"}}),
            _kr("O1.KR2", {"kind": "done_ratio", "unit": "story_points",
                           "select": {"project": ["ENT", "SUP"], "issuetype": ["Story", "Bug",
                                                                               "Task"]}}),
            _kr("O1.KR3", {"kind": "count", "select": {
                "project": "SUP", "status_category": ["new", "indeterminate"]}},
                baseline=40, target=5),
        ))
        .with_objective(objective(
            "O2",
            _kr("O2.KR1", {"kind": "sum", "field": "story_points", "done_only": True,
                           "select": {"project": ["ENT", "SUP"], "epic": epic_key}},
                target=30),
            _kr("O2.KR2", {"kind": "done_ratio", "select": {
                "project": ["ENT", "SUP"], "labels": ["sso", "customer", "quick-win"]}}),
            _kr("O2.KR3", {"kind": "count",
                           "jql": "project = SUP AND statusCategory = Done"}, target=40),
            _kr("O2.KR4", {"kind": "manual"}, target=10, current=3),
        ))
    )


@dataclass
class Simulation:
    dataset: JiraDataset
    jira: JiraSandbox
    runtime: Runtime
    clock: FakeClock
    epic_key: str
    #: Day -> KR id -> what that day's live pass measured.
    live: dict[date, dict[str, DayResult]] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)

    def day_end(self, day: date) -> datetime:
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZONE) - timedelta(
            seconds=1)

    def live_pass(self, day: date) -> None:
        at = self.day_end(day).astimezone(UTC)
        self.dataset.set_now(at)
        self.clock.set(at)
        result = self.runtime.run_locked(PassOptions())
        self.live[day] = {kr.id: (kr.value, kr.score, kr.band, kr.confidence)
                          for kr in result.scorecard.key_results() if not kr.stale}


def _mutate(rng: random.Random, data: JiraDataset, touched: set[int], deleted: list[int],
            day_index: int) -> None:
    """A day of work: transitions, reopens, point edits, moves, relabels, new issues."""
    live = sorted(data.issues)
    epics = [i for i in live if data.issues[i].issuetype == "Epic"]
    movable = [i for i in live if not data.issues[i].is_subtask and i not in epics]
    for _ in range(rng.randint(3, 6)):
        data.advance(timedelta(minutes=rng.randint(20, 90)))
        issue_id = rng.choice(movable)
        if issue_id not in data.issues:
            continue
        issue = data.issues[issue_id]
        action = rng.random()
        touched.add(issue_id)
        if action < 0.3:
            data.transition(issue_id, rng.choice(["done", "indeterminate", "Won't Do"]))
        elif action < 0.4:
            data.reopen(issue_id)
        elif action < 0.55:
            data.set_story_points(issue_id, rng.choice([None, 1.0, 2.0, 3.0, 5.0, 8.0]))
        elif action < 0.65:
            target = {"ENT": "SUP", "SUP": rng.choice(["ENT", "OPS"]), "OPS": "ENT"}
            data.move(issue_id, target[issue.project])
        elif action < 0.75:
            labels = set(issue.labels) ^ {rng.choice(["sso", "customer", "quick-win"])}
            data.update(issue_id, labels=sorted(labels))
        elif action < 0.85:
            data.update(issue_id, parent_id=rng.choice([None, *epics]))
        elif action < 0.92:
            project = data.projects[issue.project]
            data.update(issue_id,
                        components=rng.sample(sorted(project.components), k=1),
                        fix_versions=rng.sample(sorted(project.versions), k=1))
        else:
            created = data.add_issue(rng.choice(["ENT", "SUP", "OPS"]), "Story",
                                     story_points=rng.choice([None, 3.0, 5.0]))
            touched.add(created.id)
    if day_index % 4 == 2:
        # Deleted issues leave no changelog: the ones deleted here were not changed while
        # the passes watched them (what a live pass last read is then their whole story).
        untouched = [i for i in movable if i in data.issues and i not in touched]
        if untouched:
            gone = rng.choice(untouched)
            data.advance(timedelta(minutes=5))
            deleted.extend(data.delete(gone))


@contextmanager
def simulation(tmp_path: Path, *, deployment: str = "cloud", days: int = 32,
               seed: int = 5, issues: int = 70,
               plan_for: Callable[[str], Plan] = backfill_plan) -> Iterator[Simulation]:
    """``plan_for`` builds the plan from the epic's key (the mutations do not depend on
    it: the same seed gives the same month of Jira whatever the plan)."""
    start = datetime.combine(CYCLE_START, time(6), tzinfo=ZONE).astimezone(UTC)
    dataset = generate_dataset(seed=seed, issues=issues, now=start)
    epic = next(i for i in dataset if i.issuetype == "Epic" and i.project == "ENT")
    plan = plan_for(epic.key)
    with JiraSandbox(dataset, deployment="dc" if deployment == "dc" else "cloud") as jira:
        if deployment == "cloud-per-issue":
            jira.bulk_changelog_status = 404
        email, token = jira.basic_auth
        settings = Settings(
            _env_file=None, database_url=f"sqlite:///{tmp_path / 'okr-sync.db'}",
            jira_url=jira.url,
            jira_email=email if deployment != "dc" else None,
            jira_api_token=SecretStr(token) if deployment != "dc" else None,
            jira_pat=SecretStr(jira.pat) if deployment == "dc" else None)
        clock = FakeClock(start)
        runtime = build_runtime(settings, plan, senders=Senders(), clock=clock)
        sim = Simulation(dataset, jira, runtime, clock, epic.key)
        rng = random.Random(seed)
        touched: set[int] = set()
        try:
            for index in range(days):
                day = CYCLE_START + timedelta(days=index)
                dataset.set_now(datetime.combine(day, time(7), tzinfo=ZONE).astimezone(UTC))
                _mutate(rng, dataset, touched, sim.deleted, index)
                sim.live_pass(day)
            yield sim
        finally:
            runtime.close()
