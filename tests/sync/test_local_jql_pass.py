"""Passes over the sandbox with raw JQL answered on the mirror.

Two sandboxes start from the same seeded dataset and take the same changes: one
runtime answers raw JQL locally, the other asks Jira for every raw JQL (the fetch
plan with ``local_jql=False``). Their scorecards must be identical, and the local
one must make no id-only membership request and no count for the local measures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.config.plan import Plan
from okr_sync.sandbox.jira import jql_eval
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.model import IssueRecord, JiraDataset
from okr_sync.sync.fetch_plan import build_fetch_plan
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.store import Store
from support.plan_builders import PlanBuilder, objective

RATIO = "project = OPS AND labels in (infra, k8s) AND priority != Low"
COUNT = "project = SUP AND issuetype = Bug AND statusCategory != Done"
SUM = ('project in (ENT, OPS) AND NOT labels in (sso) AND resolution != Unresolved '
       'AND created >= "2026/01/01 00:00" ORDER BY created DESC')
REMOTE = "project = ENT AND summary ~ SSO"  # text search: always Jira's
ALICE = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"
MINE = f'project in (ENT, SUP) AND (assignee = "{ALICE}" OR reporter = "{ALICE}")'
LOCAL_OWNERS = {"RATIO", "COUNT", "SUM", "EPIC", "MINE"}


def _plan(epic_key: str) -> Plan:
    def kr(kr_id: str, measure: dict[str, object], **extra: object) -> dict[str, object]:
        return {"id": kr_id, "title": kr_id, "measure": measure, **extra}

    return (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT", "SUP", "OPS"]}})
        .with_objective(objective(
            "O",
            kr("SCOPED", {"kind": "done_ratio", "select": {"project": "ENT", "labels": "sso"}}),
            kr("RATIO", {"kind": "done_ratio", "unit": "story_points", "jql": RATIO}),
            kr("COUNT", {"kind": "count", "jql": COUNT}, baseline=60, target=5),
            kr("SUM", {"kind": "sum", "field": "story_points", "done_only": True, "jql": SUM},
               target=5000),
            kr("EPIC", {"kind": "milestone",
                        "jql": f'project = ENT AND "Epic Link" = {epic_key}'}),
            kr("MINE", {"kind": "done_ratio", "jql": MINE}),
            kr("REMOTE", {"kind": "done_ratio", "jql": REMOTE}),
        ))
        .build()
    )


def _epic(world: SandboxWorld) -> IssueRecord:
    return next(r for r in sorted(world.dataset.issues.values(), key=lambda r: r.id)
                if r.project == "ENT" and r.issuetype == "Epic"
                and any(c.parent_id == r.id for c in world.dataset.issues.values()))


@pytest.fixture
def worlds(tmp_path: Path) -> Iterator[tuple[SandboxWorld, SandboxWorld]]:
    (tmp_path / "local").mkdir()
    (tmp_path / "jira").mkdir()
    with (
        sandbox_world(tmp_path / "local", dataset=_dataset()) as one,
        sandbox_world(tmp_path / "jira", dataset=_dataset()) as two,
    ):
        yield one, two


def _dataset() -> JiraDataset:
    data = generate_dataset(seed=11, issues=900)
    for record in sorted(data.issues.values(), key=lambda r: r.id)[::7]:
        record.assignee = ALICE  # as found in Jira before the first pass
    return data


def _runtime(world: SandboxWorld, *, local: bool) -> Runtime:
    plan = _plan(_epic(world).key)
    runtime = world.runtime(plan)
    runtime.fetch_plan = build_fetch_plan(plan, local_jql=local)
    runtime.clock = world.dataset.now
    return runtime


def _values(result: PassResult) -> dict[str, float | None]:
    return {kr.id: kr.value for kr in result.scorecard.key_results()}


def _id_only_jqls(world: SandboxWorld) -> list[str]:
    return [str(r.body["jql"]) for r in world.jira.log.matching(path="/search/jql")
            if isinstance(r.body, dict) and r.body.get("fields") == ["id"]]


def _counts(world: SandboxWorld) -> list[str]:
    return [str(r.body["jql"]) for r in world.jira.log.matching(path="approximate-count")
            if isinstance(r.body, dict)]


def _change(world: SandboxWorld) -> None:
    """The same edits in either sandbox: moves into and out of every local measure."""
    data = world.dataset
    data.advance(timedelta(minutes=10))
    records = sorted(data.issues.values(), key=lambda r: r.id)
    infra = next(r for r in records if r.project == "OPS" and "infra" in r.labels
                 and r.priority != "Low" and r.status_category != "done")
    data.transition(infra.id, "done")
    data.set_story_points(infra.id, (infra.story_points or 0) + 8)
    joiner = next(r for r in records if r.project == "OPS" and not {"infra", "k8s"} & set(
        r.labels) and r.priority not in (None, "Low"))
    data.update(joiner.id, labels=[*joiner.labels, "k8s"])
    bug = next(r for r in records if r.project == "SUP" and r.issuetype == "Bug"
               and r.status_category != "done")
    data.transition(bug.id, "done")
    data.add_issue("SUP", "Bug", priority="High")
    child = next(r for r in records if r.parent_id == _epic(world).id
                 and r.status_category != "done")
    data.transition(child.id, "done")
    sso = next(r for r in records if r.project == "ENT" and "sso" not in r.labels
               and r.status_category == "done" and not r.is_subtask)
    data.update(sso.id, labels=[*sso.labels, "sso"])
    assigned = [r for r in records if r.assignee == ALICE and r.project == "ENT"]
    data.update(assigned[0].id, assignee=None)
    data.update(assigned[1].id, reporter=ALICE, assignee=None)
    data.update(records[3].id, assignee=ALICE)


def test_pass_given_changes_answers_local_jql_without_requests_and_equals_jira(
    worlds: tuple[SandboxWorld, SandboxWorld],
) -> None:
    local_world, jira_world = worlds
    local, remote = _runtime(local_world, local=True), _runtime(jira_world, local=False)
    assert local.fetch_plan is not None
    assert {q.owner for q in local.fetch_plan["main"].memberships
            if q.local is not None} == LOCAL_OWNERS
    # The mirror keeps the people the local JQL reads.
    assert set(local.fetch_plan["main"].extra_fields) == {"assignee", "reporter"}
    first, first_jira = local.run_locked(PassOptions()), remote.run_locked(PassOptions())
    assert first.exit_code == 0 and first_jira.exit_code == 0, first.failures
    assert _values(first) == _values(first_jira)
    # The first pass compares every local answer with Jira's (one id-only search each).
    assert sorted(_id_only_jqls(local_world)).count(RATIO) == 1
    assert isinstance(local.store, Store)
    assert {(c.kr_id, c.verdict) for c in local.store.jql_checks("main")} == {
        (owner, "match") for owner in LOCAL_OWNERS}
    for world in worlds:
        _change(world)
        world.jira.log.clear()
    second, second_jira = local.run_locked(PassOptions()), remote.run_locked(PassOptions())
    assert second.exit_code == 0 and second_jira.exit_code == 0, second.failures
    assert _values(second) == _values(second_jira)
    assert _values(second) != _values(first)
    # Only the text search went to Jira; the other raw JQL cost nothing.
    assert _id_only_jqls(local_world) == [REMOTE]
    assert _counts(local_world) == []
    assert set(_id_only_jqls(jira_world)) == {RATIO, SUM, REMOTE, MINE, _plan(
        _epic(jira_world).key).key_result("EPIC").measure.jql}
    assert _counts(jira_world) == [COUNT]
    # A pass with nothing new reuses every membership: one search in all (the runtime
    # keeps its Jira session and the site's facts between passes).
    local_world.jira.log.clear()
    quiet = local.run_locked(PassOptions())
    assert _values(quiet) == _values(second)
    assert [r.path.rsplit("/", 1)[-1] for r in local_world.jira.log.records] == ["jql"]


def test_resync_full_given_local_jql_compares_each_with_jira_once(
    worlds: tuple[SandboxWorld, SandboxWorld],
) -> None:
    world = worlds[0]
    runtime = _runtime(world, local=True)
    runtime.run_locked(PassOptions())
    world.jira.log.clear()
    full = runtime.run_locked(PassOptions(kind="resync", full=True))
    assert full.exit_code == 0, full.failures
    local_jqls = {q.jql for q in runtime.fetch_plan["main"].memberships  # type: ignore[index]
                  if q.local is not None}
    asked = _id_only_jqls(world)
    assert all(asked.count(jql) == 1 for jql in local_jqls)


def test_pass_given_jira_disagrees_switches_that_measure_back_to_jira_and_reports_it(
    worlds: tuple[SandboxWorld, SandboxWorld], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    world = worlds[0]
    runtime = _runtime(world, local=True)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    # From now on this "Jira" reads statusCategory = Done as "In Progress": a clause
    # whose meaning differs from the mirror's reading.
    monkeypatch.setitem(jql_eval._CATEGORY_VALUES, "done", "indeterminate")
    truth = sum(1 for r in world.dataset.issues.values() if r.project == "SUP"
                and r.issuetype == "Bug" and r.status_category != "indeterminate")
    with caplog.at_level(logging.WARNING, logger="okr_sync.sync.pull_local"):
        full = runtime.run_locked(PassOptions(kind="resync", full=True))
    assert full.exit_code == 0, full.failures
    warnings = [r.getMessage() for r in caplog.records if r.name == "okr_sync.sync.pull_local"]
    assert len(warnings) == 1 and "COUNT" in warnings[0] and "asked from Jira" in warnings[0]
    assert _values(full)["COUNT"] == truth  # Jira's answer is used at once
    assert isinstance(runtime.store, Store)
    verdicts = {c.kr_id: c.verdict for c in runtime.store.jql_checks("main")}
    assert verdicts == {"RATIO": "match", "SUM": "match", "EPIC": "match", "MINE": "match",
                        "COUNT": "mismatch"}
    # Later passes ask Jira for it (a count), and do not log it again.
    caplog.clear()
    _change(world)
    world.jira.log.clear()
    with caplog.at_level(logging.WARNING, logger="okr_sync.sync.pull_local"):
        later = runtime.run_locked(PassOptions())
    assert later.exit_code == 0, later.failures
    assert _counts(world) == [COUNT]
    assert [r for r in caplog.records if r.name == "okr_sync.sync.pull_local"] == []
    assert _id_only_jqls(world) == [REMOTE]
    runtime.close()
    # `status` names the measure, in JSON and in text.
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("version: 1\n")
    env = {**world.environment(), "OKR_SYNC_PLAN": str(plan_file)}
    doc = json.loads(CliRunner().invoke(app, ["status", "--output", "json"], env=env).stdout)
    mismatches = doc["local_jql"]["mismatches"]
    assert [(m["owner"], m["source"]) for m in mismatches] == [("COUNT", "main")]
    assert "only Jira" in mismatches[0]["detail"] or "only the mirror" in mismatches[0]["detail"]
    assert {c["owner"] for c in doc["local_jql"]["confirmed"]} == {"RATIO", "SUM", "EPIC",
                                                                  "MINE"}
    text = CliRunner().invoke(app, ["status"], env=env).stdout
    assert "raw JQL asked from Jira: COUNT (source main)" in text


def _miss_changes(world: SandboxWorld) -> tuple[IssueRecord, IssueRecord]:
    """Behind the cursor's back (no `updated` change, as eventual consistency can do):
    one RATIO member finished, one deleted."""
    members = sorted((r for r in world.dataset.issues.values() if r.project == "OPS"
                      and {"infra", "k8s"} & set(r.labels) and r.priority not in (None, "Low")
                      and not r.is_subtask), key=lambda r: r.id)
    missed = next(r for r in members if r.status_category != "done" and r.story_points)
    missed.status, missed.resolution = "Done", "Done"
    gone = next(r for r in members if r.id != missed.id and r.story_points)
    with world.dataset.lock:
        world.dataset.deleted[gone.id] = world.dataset.issues.pop(gone.id)
    return missed, gone


def test_resync_kr_given_mirror_missed_changes_rereads_the_difference_without_mismatch(
    worlds: tuple[SandboxWorld, SandboxWorld], caplog: pytest.LogCaptureFixture,
) -> None:
    world, jira_world = worlds
    runtime, remote = _runtime(world, local=True), _runtime(jira_world, local=False)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    assert remote.run_locked(PassOptions()).exit_code == 0
    missed, gone = _miss_changes(world)
    _miss_changes(jira_world)
    stale = runtime.run_locked(PassOptions())
    world.jira.log.clear()
    resync_kr = PassOptions(kind="resync", refetch=frozenset({"RATIO"}))
    with caplog.at_level(logging.WARNING, logger="okr_sync.sync.pull_local"):
        resync = runtime.run_locked(resync_kr)
    assert resync.exit_code == 0, resync.failures
    truth = remote.run_locked(resync_kr)
    assert _values(resync)["RATIO"] == _values(truth)["RATIO"] != _values(stale)["RATIO"]
    # Its members were read again (the missed change), one comparison; no mismatch.
    assert _id_only_jqls(world) == [RATIO]
    reads = " ".join(str(r.body["jql"]) for r in world.jira.log.matching(path="/search/jql")
                     if isinstance(r.body, dict) and str(r.body["jql"]).startswith("id in"))
    assert str(missed.id) in reads and str(gone.id) in reads
    assert [r for r in caplog.records if r.name == "okr_sync.sync.pull_local"] == []
    assert isinstance(runtime.store, Store)
    assert {c.kr_id: c.verdict for c in runtime.store.jql_checks("main")}["RATIO"] == "match"
    assert str(gone.id) not in {doc["id"] for doc in runtime.store.get_issues("main")}


def test_daily_reconcile_given_mirror_missed_a_joiner_rereads_it_and_agrees_with_jira(
    worlds: tuple[SandboxWorld, SandboxWorld], caplog: pytest.LogCaptureFixture,
) -> None:
    world, jira_world = worlds
    runtime, remote = _runtime(world, local=True), _runtime(jira_world, local=False)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    assert remote.run_locked(PassOptions()).exit_code == 0
    for each in worlds:  # joins RATIO without an `updated` change
        joiner = next(r for r in sorted(each.dataset.issues.values(), key=lambda r: r.id)
                      if r.project == "OPS" and not {"infra", "k8s"} & set(r.labels)
                      and r.priority not in (None, "Low") and r.story_points)
        joiner.labels = [*joiner.labels, "k8s"]
    stale = runtime.run_locked(PassOptions())
    for each in worlds:
        each.dataset.advance(timedelta(hours=25))  # the daily reconcile is due
    world.jira.log.clear()
    with caplog.at_level(logging.WARNING, logger="okr_sync.sync.pull_local"):
        daily = runtime.run_locked(PassOptions())
    truth = remote.run_locked(PassOptions(kind="resync", refetch=frozenset({"RATIO"})))
    assert daily.exit_code == 0 and truth.exit_code == 0, daily.failures
    assert _values(daily)["RATIO"] == _values(truth)["RATIO"] != _values(stale)["RATIO"]
    reads = [str(r.body["jql"]) for r in world.jira.log.matching(path="/search/jql")
             if isinstance(r.body, dict) and str(r.body["jql"]).startswith("id in")]
    assert reads == [f"id in ({joiner.id})"]
    assert [r for r in caplog.records if r.name == "okr_sync.sync.pull_local"] == []
    assert isinstance(runtime.store, Store)
    assert {c.verdict for c in runtime.store.jql_checks("main")} == {"match"}


def test_resync_kr_given_a_deleted_member_jira_refuses_by_id_marks_it_deleted_and_measures(
    worlds: tuple[SandboxWorld, SandboxWorld],
) -> None:
    world, jira_world = worlds
    runtime, remote = _runtime(world, local=True), _runtime(jira_world, local=False)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    assert remote.run_locked(PassOptions()).exit_code == 0
    gone_ids = []
    for each in worlds:  # deleted behind the cursor's back: the mirror still holds it
        gone = next(r for r in sorted(each.dataset.issues.values(), key=lambda r: r.id)
                    if r.project == "OPS" and {"infra", "k8s"} & set(r.labels)
                    and r.priority not in (None, "Low") and r.story_points
                    and not each.dataset.children(r.id))
        each.dataset.delete(gone.id)
        gone_ids.append(gone.id)
    world.jira.log.clear()
    resync_kr = PassOptions(kind="resync", refetch=frozenset({"RATIO"}))
    resync = runtime.run_locked(resync_kr)
    truth = remote.run_locked(resync_kr)
    # Jira refused the `id in (...)` naming it (400); each issue was read, 404 = deleted.
    refused = [r for r in world.jira.log.matching(path="/search/jql") if r.status == 400]
    assert refused and str(gone_ids[0]) in str(refused[0].body["jql"])
    assert [r.status for r in world.jira.log.records
            if r.path == f"/rest/api/3/issue/{gone_ids[0]}"] == [404]
    assert resync.exit_code == 0 and not any("RATIO" in f for f in resync.failures)
    assert _values(resync)["RATIO"] == _values(truth)["RATIO"] is not None
    assert isinstance(runtime.store, Store)
    assert str(gone_ids[0]) not in {doc["id"] for doc in runtime.store.get_issues("main")}


def test_pass_given_a_member_deleted_between_search_and_read_leaves_it_out_and_measures(
    worlds: tuple[SandboxWorld, SandboxWorld],
) -> None:
    racy_world, calm_world = worlds
    racy, calm = _runtime(racy_world, local=False), _runtime(calm_world, local=False)
    assert racy.run_locked(PassOptions()).exit_code == 0
    assert calm.run_locked(PassOptions()).exit_code == 0
    member = next(r.id for r in sorted(racy_world.dataset.issues.values(), key=lambda r: r.id)
                  if r.project == "OPS" and {"infra", "k8s"} & set(r.labels)
                  and r.priority not in (None, "Low") and r.story_points
                  and not racy_world.dataset.children(r.id))
    calm_world.dataset.delete(member)

    def delete_after_membership(page: Any) -> Any:
        # Jira answers RATIO's id-only search with the member, then it is deleted.
        ids = {str(issue.get("id")) for issue in page.get("issues", [])}
        if str(member) in ids:
            racy_world.dataset.delete(member)
            racy_world.jira.faults.clear()  # later answers (Jira's 400) stay as they are
        return page

    racy_world.jira.faults.rewrite(delete_after_membership, paths="/search/jql")
    resync_kr = PassOptions(kind="resync", refetch=frozenset({"RATIO"}))
    raced, truth = racy.run_locked(resync_kr), calm.run_locked(resync_kr)
    assert raced.exit_code == 0, raced.failures
    assert [r.status for r in racy_world.jira.log.records
            if r.path == f"/rest/api/3/issue/{member}"] == [404]
    assert _values(raced)["RATIO"] == _values(truth)["RATIO"] is not None



def _counting_mirrored_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read (a transaction each) of which ids the store mirrors, from now on."""
    from okr_sync.sync.store import measures

    reads: list[str] = []
    among, every = measures.MeasureOps.mirrored_among, measures.MeasureOps.mirrored_ids

    def counted_among(self: Any, source: str, ids: Any) -> set[str]:
        reads.append(f"among {len(ids)}")
        return among(self, source, ids)

    def counted_every(self: Any, source: str) -> set[str]:
        reads.append("all")
        return every(self, source)

    monkeypatch.setattr(measures.MeasureOps, "mirrored_among", counted_among)
    monkeypatch.setattr(measures.MeasureOps, "mirrored_ids", counted_every)
    return reads


def test_daily_reconcile_given_jira_disagreeing_asks_the_store_about_members_in_few_reads(
    worlds: tuple[SandboxWorld, SandboxWorld], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each "is this id mirrored?" asked on its own is a transaction: comparing the
    # mirror with Jira's members must not ask about them one by one (29 reads before).
    world = worlds[0]
    runtime = _runtime(world, local=True)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    monkeypatch.setitem(jql_eval._CATEGORY_VALUES, "done", "indeterminate")
    world.dataset.advance(timedelta(hours=25))  # the daily reconcile is due
    reads = _counting_mirrored_reads(monkeypatch)
    daily = runtime.run_locked(PassOptions())
    assert daily.exit_code == 0, daily.failures
    assert len(reads) <= 2, reads
    runtime.close()
