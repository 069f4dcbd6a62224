"""A dry run against a 3,000-issue sandbox, checked against an independent computation.

The expected values are computed here straight from the sandbox's own records with
plain Python, not through okr-sync's selectors or measures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import yaml
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.model import IssueRecord
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world

CYCLE_START = datetime(2026, 10, 1, tzinfo=UTC)
AS_OF = "2026-11-16"

Pick = Callable[[IssueRecord], bool]


def _plan(epic_key: str) -> dict:
    def kr(kr_id: str, measure: dict, **extra) -> dict:
        return {"id": kr_id, "title": kr_id, "measure": measure, **extra}

    return {
        "version": 1,
        "cycle": {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31"},
        "jira": {"main": {"projects": ["ENT", "SUP", "OPS"]}},
        "objectives": [{
            "id": "O", "title": "All measures",
            "key_results": [
                kr("RATIO", {"kind": "done_ratio", "select": {
                    "project": "ENT", "labels": ["sso", "security"],
                    "issuetype": ["Story", "Task"]}}),
                kr("POINTS", {"kind": "done_ratio", "unit": "story_points", "select": {
                    "components": ["auth", "Billing"], "priority": ["High", "highest"]}}),
                kr("FROZEN", {"kind": "done_ratio", "scope": "frozen", "select": {
                    "project": "OPS", "fix_version": ["2026.09", "2026.10"]}}),
                kr("SUBTASKS", {"kind": "done_ratio", "select": {
                    "project": "SUP", "include_subtasks": True, "components": "Mobile"}}),
                kr("COUNT", {"kind": "count", "select": {
                    "project": "SUP", "issuetype": "Bug",
                    "status_category": ["new", "indeterminate"]}},
                   baseline=300, target=50),
                kr("COUNT_JQL", {"kind": "count", "jql":
                    "project = SUP AND issuetype = Bug AND statusCategory != Done"},
                   baseline=300, target=50),
                kr("SUM", {"kind": "sum", "field": "story_points", "done_only": True,
                           "select": {"project": "SUP"}}, target=2000),
                kr("SUM_ALL", {"kind": "sum", "field": "story_points", "select": {
                    "project": "ENT", "labels": "api"}}, target=500),
                kr("MILESTONE", {"kind": "milestone", "select": {"epic": epic_key}}),
                kr("RAW_RATIO", {"kind": "done_ratio", "jql":
                    "project = OPS AND labels in (infra, k8s) AND priority != Low"}),
                kr("MANUAL", {"kind": "manual"}, target=10, current=7),
            ],
        }],
    }


def _expected(records: list[IssueRecord], epic_id: int) -> dict[str, float]:
    def done(r: IssueRecord) -> bool:
        return r.status_category == "done"

    def pick(cond: Pick, *, subtasks: bool = False) -> list[IssueRecord]:
        return [r for r in records if cond(r) and (subtasks or not r.is_subtask)]

    def ratio(items: list[IssueRecord]) -> float:
        return sum(done(r) for r in items) / len(items) if items else 0.0

    ratio_items = pick(lambda r: r.project == "ENT" and bool({"sso", "security"} & set(r.labels))
                       and r.issuetype in ("Story", "Task"))
    points_items = pick(lambda r: bool({"Auth", "Billing"} & set(r.components))
                        and r.priority in ("High", "Highest"))
    total_points = sum(r.story_points or 0 for r in points_items)
    frozen = pick(lambda r: r.project == "OPS"
                  and bool({"2026.09", "2026.10"} & set(r.fix_versions))
                  and r.created < CYCLE_START)
    subtasks = pick(lambda r: r.project == "SUP" and "Mobile" in r.components, subtasks=True)
    open_bugs = pick(lambda r: r.project == "SUP" and r.issuetype == "Bug" and not done(r))
    open_bugs_jql = [r for r in records if r.project == "SUP" and r.issuetype == "Bug"
                     and not done(r)]
    sup = pick(lambda r: r.project == "SUP")
    api = pick(lambda r: r.project == "ENT" and "api" in r.labels)
    epic_children = pick(lambda r: r.parent_id == epic_id)
    raw = [r for r in records if r.project == "OPS" and bool({"infra", "k8s"} & set(r.labels))
           and r.priority != "Low"]
    return {
        "RATIO": ratio(ratio_items),
        "POINTS": (sum(r.story_points or 0 for r in points_items if done(r)) / total_points)
        if total_points else 0.0,
        "FROZEN": ratio(frozen),
        "SUBTASKS": ratio(subtasks),
        "COUNT": float(len(open_bugs)),
        "COUNT_JQL": float(len(open_bugs_jql)),
        "SUM": float(sum(r.story_points or 0 for r in sup if done(r))),
        "SUM_ALL": float(sum(r.story_points or 0 for r in api)),
        "MILESTONE": 1.0 if epic_children and all(done(r) for r in epic_children) else 0.0,
        "RAW_RATIO": ratio(raw),
        "MANUAL": 7.0,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorld]:
    dataset = generate_dataset(seed=3, issues=3000)
    with sandbox_world(tmp_path_factory.mktemp("world"), dataset=dataset) as w:
        yield w


def test_dry_run_given_3000_issues_matches_independent_computation(world, tmp_path) -> None:
    records = sorted(world.dataset.issues.values(), key=lambda r: r.id)
    epic = next(r for r in records if r.issuetype == "Epic" and r.project == "ENT"
                and len(world.dataset.children(r.id)) >= 5)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(_plan(epic.key), sort_keys=False))
    env = {**world.environment(), "OKR_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = CliRunner().invoke(
        app, ["run", "--dry-run", "--plan", str(plan), "--as-of", AS_OF, "--output", "json"],
        env=env)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    values = {kr["id"]: kr["value"] for o in doc["objectives"] for kr in o["key_results"]}
    expected = _expected(records, epic.id)
    assert values == pytest.approx({k: round(v, 4) for k, v in expected.items()}, abs=1e-4)
    assert all(v > 0 for k, v in expected.items() if k != "MILESTONE"), expected
    assert not (tmp_path / "x.db").exists()  # a dry run writes nothing
    assert doc["deliveries"] == []
