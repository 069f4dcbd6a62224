"""The issue-10 benchmark workload scaled down (40 KRs and KPIs over 800 issues) with
nothing news after the first pass (``min_delta`` 1.0): later passes store snapshots but
publish none, so items join and leave KRs between one publication and the next."""

from __future__ import annotations

from pathlib import Path

from benchmarks.workload import (
    PROJECTS,
    PlanShape,
    make_dataset,
    make_plan,
    slack_channels,
    write_plan,
)
from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.sandbox.jira.model import JiraDataset

#: O001.KR1 of this plan selects CRM issues labelled ``backend``.
KR = "O001.KR1"


def quiet_benchmark(tmp_path: Path, *, seed: int = 3, issues: int = 800
                    ) -> tuple[JiraDataset, Plan, tuple[str, ...]]:
    """The dataset, its plan (written under ``tmp_path``) and the plan's Slack channels."""
    dataset = make_dataset(seed=seed, issues=issues)
    plan_doc = make_plan(seed, dataset, PlanShape.scaled(40, 4))
    plan_doc["notify"] = {**plan_doc.get("notify", {}), "min_delta": 1.0}
    plan = load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml"))
    return dataset, plan, tuple(slack_channels(plan_doc))


def crm_story(dataset: JiraDataset, *, backend: bool) -> int:
    """The first CRM story without children that is (or is not) labelled ``backend``."""
    return min(i.id for i in dataset.issues.values()
               if i.project == "CRM" and ("backend" in i.labels) == backend
               and i.issuetype == "Story" and not dataset.children(i.id))


def other_project(project: str) -> str:
    """A project of the workload other than ``project`` (its selectors read them all)."""
    return next(p for p in PROJECTS if p != project)
