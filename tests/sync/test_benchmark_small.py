"""The benchmark's small version (2,000 issues, 40 KRs): request counts and equality, no times.

The same seeded workload as ``python -m benchmarks`` (``benchmarks/workload.py``), scaled
down, against the sandboxes in-process and without injected latency.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import endpoint_of, naive_tasks
from benchmarks.naive import run_pass
from benchmarks.report import SESSION_REQUESTS, cold_minimum, slope
from benchmarks.workload import (
    FULL_SHAPE,
    PROJECTS,
    PlanShape,
    change_issues,
    edit_issue,
    make_dataset,
    make_plan,
    slack_channels,
    write_plan,
)
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.fetch_plan import build_fetch_plan
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import build_runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world

ISSUES = 2000
SHAPE = PlanShape.scaled(40, 4)
SEARCHES = ("search/jql", "search/approximate-count")


@dataclass
class Measured:
    result: PassResult
    jira: Counter[str]
    slack: int
    teams: int
    #: Mirror rows and measure-state rows the pass read from the store.
    issue_rows: int = 0
    state_rows: int = 0

    @property
    def jira_total(self) -> int:
        return sum(self.jira.values())

    @property
    def searches(self) -> int:
        return sum(self.jira[e] for e in SEARCHES)


@dataclass
class Bench:
    world: SandboxWorld
    plan_path: Path
    plan_doc: dict[str, Any]
    passes: dict[str, Measured] = field(default_factory=dict)
    naive_requests: int = 0
    changed: int = 0
    full_fresh: Scorecard | None = None
    pass_logs: list[logging.LogRecord] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "pass finished":
            self.into.append(record)


def selector_scope(plan: Any) -> set[str]:
    """The projects the structured selectors read: the mirror's scope."""
    return set(build_fetch_plan(plan)["main"].projects)


def _measure(world: SandboxWorld, run: Any, store: Any = None) -> Measured:
    jira, slack, teams = len(world.jira.log), len(world.slack.requests), len(world.teams.requests)
    rows = (store.issue_rows_read, store.measure_state_rows_read) if store else (0, 0)
    result = run()
    return Measured(
        result,
        Counter(endpoint_of(r.path) for r in world.jira.log.records[jira:]),
        len(world.slack.requests) - slack,
        len(world.teams.requests) - teams,
        store.issue_rows_read - rows[0] if store else 0,
        store.measure_state_rows_read - rows[1] if store else 0,
    )


def _outside_every_remote_answer(dataset: Any) -> int:
    """An issue of ENT that is no child of another: no `parent = ...` query holds it."""
    return min(i.id for i in dataset if i.project == "ENT" and i.parent_id is None
               and i.issuetype != "Epic")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    workdir = tmp_path_factory.mktemp("bench")
    dataset = make_dataset(seed=1, issues=ISSUES)
    plan_doc = make_plan(1, dataset, SHAPE)
    plan_path = write_plan(plan_doc, workdir / "okr-plan.yaml")
    plan = load_plan(plan_path)
    with sandbox_world(workdir, dataset=dataset, channels=tuple(slack_channels(plan_doc))) as w:
        bench = Bench(w, plan_path, plan_doc)
        logger = logging.getLogger("okr_sync.sync.pipeline")
        handler, level = _Collect(bench.pass_logs), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        runtime = w.runtime(plan)
        try:
            def one() -> PassResult:
                return runtime.run_locked(PassOptions())

            bench.passes["cold"] = _measure(w, one, runtime.store)
            dataset.advance(timedelta(minutes=5))
            bench.passes["no_change"] = _measure(w, one, runtime.store)
            # A one-issue pass (as a webhook's in `serve`): an issue no raw JQL Jira
            # answers holds, before and after its edit.
            dataset.advance(timedelta(minutes=1))
            edit_issue(dataset, _outside_every_remote_answer(dataset), random.Random(3))
            bench.passes["one_issue"] = _measure(w, one, runtime.store)
            bench.changed = len(change_issues(dataset, 7, 0.01))
            bench.passes["changed"] = _measure(w, one, runtime.store)
            mark = len(w.jira.log)
            run_pass(naive_tasks(plan_doc, plan_path, w.jira, w.slack))
            bench.naive_requests = len(w.jira.log) - mark
            settings = w.settings().model_copy(
                update={"database_url": f"sqlite:///{workdir / 'fresh.db'}"})
            fresh = build_runtime(settings, plan, senders=w.senders())
            try:
                bench.full_fresh = fresh.run_locked(PassOptions(full=True)).scorecard
            finally:
                fresh.close()
        finally:
            runtime.close()
            logger.removeHandler(handler)
            logger.setLevel(level)
        yield bench


def test_benchmark_given_cold_pass_requests_at_most_1_2_times_the_minimum(bench: Bench) -> None:
    cold = bench.passes["cold"]
    plan = load_plan(bench.plan_path)
    assert selector_scope(plan) == set(PROJECTS)
    in_scope = ISSUES
    minimum = cold_minimum(in_scope, SHAPE)["all_remote"]
    assert cold.result.issues_fetched == in_scope
    assert cold.jira_total <= 1.2 * minimum
    assert cold.jira["search/jql"] >= math.ceil(in_scope / 100)


def test_benchmark_given_cold_pass_lists_no_scope_it_just_read(bench: Bench) -> None:
    cold = bench.passes["cold"]
    # The session, the scope at the page cap, and one request per raw-JQL measure (Jira's
    # answer, or its confirmation of the mirror's first answer): no id-only listing of the
    # scope for the reconcile, which the read of every issue already did.
    pages = math.ceil(ISSUES / 100)
    assert cold.jira_total == SESSION_REQUESTS + pages + SHAPE.raw + SHAPE.counts


def test_benchmark_given_no_change_pass_makes_the_minimal_requests(bench: Bench) -> None:
    quiet = bench.passes["no_change"]
    # One search per source (the change probe) plus one per volatile raw-JQL measure.
    assert quiet.searches == 1 + SHAPE.volatile
    # The same runtime (as in `serve`) keeps its Jira session and the site's facts: no
    # serverInfo, myself or field request again (a new `run` process makes those 3).
    assert quiet.jira_total == quiet.searches
    assert (quiet.slack, quiet.teams) == (0, 0)


def test_benchmark_given_one_issue_pass_reruns_only_the_volatile_raw_jql(bench: Bench) -> None:
    one = bench.passes["one_issue"]
    plan = build_fetch_plan(load_plan(bench.plan_path))["main"]
    # The plan has raw JQL Jira answers that is not volatile: kept, as the edit moved none.
    assert any(q.local is None and not q.volatile for q in plan.memberships)
    assert one.result.issues_fetched >= 1
    # The incremental search, then one id-only search per volatile raw-JQL measure.
    assert one.searches == one.jira_total == 1 + SHAPE.volatile


def test_benchmark_given_no_change_after_the_publishing_cold_pass_reads_no_issue_rows(
    bench: Bench,
) -> None:
    # The cold pass published (and told its raw-JQL answers in id order, the store keeps
    # them sorted as text): the quiet pass after it still reuses every evaluation.
    # The counters see the pass's reads: the changed pass reads the measure states.
    assert bench.passes["changed"].state_rows > 0
    quiet = bench.passes["no_change"]
    assert quiet.state_rows == 0
    # Only the few issues the change probe's overlap sent again are read, to compare.
    assert quiet.issue_rows <= quiet.result.issues_fetched < ISSUES // 100


def test_benchmark_given_one_percent_changed_needs_far_fewer_requests_than_naive(
    bench: Bench,
) -> None:
    changed = bench.passes["changed"]
    assert bench.changed == ISSUES // 100
    # At most: the session, the changed issues at the page cap, and one request per
    # raw-JQL measure (never the whole dataset again).
    bound = SESSION_REQUESTS + math.ceil(bench.changed / 100) + 1 + SHAPE.raw + SHAPE.counts
    assert changed.jira_total <= bound
    assert changed.result.issues_fetched < 3 * bench.changed
    assert bench.naive_requests >= 5 * changed.jira_total
    assert bench.naive_requests >= SHAPE.key_results  # every KR's JQL, every pass


def _scores(scorecard: Scorecard) -> dict[str, tuple[float | None, float | None]]:
    values = {kr.id: (kr.value, kr.score) for kr in scorecard.key_results()}
    values |= {o.id: (None, o.score) for o in scorecard.objectives}
    return values


def test_benchmark_given_changes_incremental_scorecard_equals_a_fresh_full_pass(
    bench: Bench,
) -> None:
    assert bench.full_fresh is not None
    incremental = _scores(bench.passes["changed"].result.scorecard)
    assert len(incremental) == SHAPE.key_results + math.ceil(SHAPE.key_results / 4)
    assert incremental == _scores(bench.full_fresh)


def test_pass_given_a_run_reports_its_measure_cpu_in_result_and_log(bench: Bench) -> None:
    results = [m.result for m in bench.passes.values()]
    assert all(r.measure_cpu_seconds > 0 for r in results)
    logged = [getattr(r, "measure_cpu_s", None) for r in bench.pass_logs[:len(results)]]
    assert logged == [round(r.measure_cpu_seconds, 4) for r in results]


def test_workload_given_the_same_seed_builds_the_same_dataset_and_plan() -> None:
    first, second = make_dataset(3, 300), make_dataset(3, 300)
    assert [(i.key, i.status, i.story_points) for i in first] == [
        (i.key, i.status, i.story_points) for i in second]
    assert make_plan(3, first, SHAPE) == make_plan(3, second, SHAPE)
    assert make_plan(3, first, SHAPE) != make_plan(4, first, SHAPE)


def test_workload_given_the_full_shape_plans_issue_10s_mix(tmp_path: Path) -> None:
    dataset = make_dataset(1, 1000)
    plan_doc = make_plan(1, dataset)
    plan = load_plan(write_plan(plan_doc, tmp_path / "plan.yaml"))
    kinds = Counter(
        "count" if m.kind == "count" else ("select" if m.select is not None else "jql")
        for _, m in plan.jira_measures())
    assert kinds == {"select": 300, "jql": 80, "count": 20}
    assert len(plan.routes) == FULL_SHAPE.routes == 30
    assert {i.project for i in dataset} == set(plan.jira["main"].projects)
    assert len(plan.jira["main"].projects) == 20


def test_slope_given_linear_and_flat_growth_fits_one_and_zero() -> None:
    assert slope([(5000, 2.0), (20000, 8.0), (50000, 20.0)]) == pytest.approx(1.0)
    assert slope([(5000, 3.0), (50000, 3.0)]) == pytest.approx(0.0)
    assert slope([(5000, 3.0)]) is None


def test_endpoint_of_given_jira_paths_names_the_endpoint() -> None:
    assert endpoint_of("/rest/api/3/search/jql") == "search/jql"
    assert endpoint_of("/rest/api/3/issue/ENT-12") == "issue"
    assert endpoint_of("/rest/api/2/serverInfo") == "serverInfo"
