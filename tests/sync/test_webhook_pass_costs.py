"""What a one-issue pass of a running process (``serve`` after a webhook) costs besides
its requests: store connections opened, mirrored ids read, raw JQL compiled. Counts,
never times, on the benchmark's workload scaled down.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.workload import (
    PlanShape,
    edit_issue,
    make_dataset,
    make_plan,
    slack_channels,
    write_plan,
)
from okr_sync.config.plan_loader import load_plan
from okr_sync.sync import pull_local
from okr_sync.sync.fetch_plan import build_fetch_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world
from okr_sync.sync.store.store import Store

ISSUES = 800
SHAPE = PlanShape.scaled(40, 4)


@dataclass
class PassCosts:
    connections: int = 0
    mirrored_ids: int = 0
    compiled: int = 0
    issues_fetched: int = 0


@dataclass
class Passes:
    costs: dict[str, PassCosts] = field(default_factory=dict)
    local_raw_jql: int = 0
    mirrored: int = 0


def _forget_compiled() -> None:
    """Empty the process's cache of compiled raw JQL (other tests filled it)."""
    cache: dict[object, object] = getattr(pull_local, "_COMPILED", {})
    cache.clear()


@pytest.fixture(scope="module")
def passes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Passes]:
    workdir = tmp_path_factory.mktemp("webhook")
    dataset = make_dataset(seed=2, issues=ISSUES)
    plan_doc = make_plan(2, dataset, SHAPE)
    plan = load_plan(write_plan(plan_doc, workdir / "okr-plan.yaml"))
    compiled: Counter[str] = Counter()
    original = pull_local.compile_matcher

    def counting(query: Any, **kwargs: Any) -> Any:
        compiled[query.jql] += 1
        return original(query, **kwargs)

    _forget_compiled()
    patch = pytest.MonkeyPatch()
    patch.setattr(pull_local, "compile_matcher", counting)
    with sandbox_world(workdir, dataset=dataset, channels=tuple(slack_channels(plan_doc))) as w:
        runtime = w.runtime(plan)
        store = runtime.store
        assert isinstance(store, Store)
        opened = [0]

        def on_connect(*_: object) -> None:
            opened[0] += 1

        sa.event.listen(store.engine, "connect", on_connect)
        memberships = build_fetch_plan(plan)["main"].memberships
        local = {q.local.jql for q in memberships if q.local is not None}
        result = Passes(local_raw_jql=len(local))

        def local_compiled() -> int:
            """Compilations of the raw JQL answered on the mirror (screens of Jira's
            answers resolve parent keys against each pass's mirror: compiled per pass)."""
            return sum(n for jql, n in compiled.items() if jql in local)

        def measured(name: str, run: Callable[[], Any]) -> None:
            before = PassCosts(opened[0], store.mirrored_id_rows_read, local_compiled())
            fetched = run().issues_fetched
            result.costs[name] = PassCosts(
                opened[0] - before.connections,
                store.mirrored_id_rows_read - before.mirrored_ids,
                local_compiled() - before.compiled, fetched)

        try:
            def one() -> Any:
                return runtime.run_locked(PassOptions(kind="serve"))

            measured("cold", one)
            rng = random.Random(4)
            for n in range(2):
                dataset.advance(timedelta(minutes=1))
                edit_issue(dataset, rng.choice(sorted(i.id for i in dataset)), rng)
                measured(f"webhook{n}", one)
            result.mirrored = len(store.mirrored_ids("main"))
        finally:
            runtime.close()
            patch.undo()
            _forget_compiled()
        yield result


def test_pass_given_one_changed_issue_reads_only_the_mirrored_ids_it_looks_up(
    passes: Passes,
) -> None:
    # Before: every mirrored id, once per pass. Now: the ids the pass asks about (the
    # members of raw JQL Jira answers, the issues it pulled), never the whole mirror.
    assert passes.mirrored >= ISSUES // 2
    for name in ("webhook0", "webhook1"):
        assert passes.costs[name].issues_fetched >= 1
        assert passes.costs[name].mirrored_ids < passes.mirrored // 4


def test_pull_given_a_running_process_compiles_each_local_raw_jql_once(passes: Passes) -> None:
    assert passes.local_raw_jql > 0
    # The cold pass compiles the raw JQL answered on the mirror; later passes reuse it.
    assert passes.costs["cold"].compiled == passes.local_raw_jql
    assert passes.costs["webhook0"].compiled == 0
    assert passes.costs["webhook1"].compiled == 0


def test_compiled_matcher_given_another_zone_or_deployment_compiles_again() -> None:
    from zoneinfo import ZoneInfo

    from okr_sync.sync.jql_local import analyse

    local = analyse('project = ENT AND status = "Done"')
    _forget_compiled()
    try:
        first = pull_local.compiled_matcher(local, tz=None, cloud=True)
        assert pull_local.compiled_matcher(local, tz=None, cloud=True) is first
        assert pull_local.compiled_matcher(local, tz=ZoneInfo("Europe/Berlin"),
                                           cloud=True) is not first
        assert pull_local.compiled_matcher(local, tz=None, cloud=False) is not first
    finally:
        _forget_compiled()


def test_compiled_matcher_given_another_plan_clears_the_cache_meanwhile_still_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from okr_sync.sync.jql_local import analyse

    class ClearedAfterTheCheck(dict):  # type: ignore[type-arg]
        # Another plan's thread empties the cache between a check and a read.
        def __contains__(self, key: object) -> bool:
            found = super().__contains__(key)
            self.clear()
            return found

    local = analyse('project = ENT AND status = "Done"')
    cache = ClearedAfterTheCheck()
    monkeypatch.setattr(pull_local, "_COMPILED", cache)
    first = pull_local.compiled_matcher(local, tz=None, cloud=True)
    cache[(local, None, True)] = first

    assert pull_local.compiled_matcher(local, tz=None, cloud=True) is first


def test_pass_given_a_running_process_asks_the_store_only_about_ids_written_since(
    passes: Passes,
) -> None:
    # The stored raw-JQL members were asked about by the first webhook pass; the second
    # reads only the rows the first one wrote and the ids of what it pulled itself
    # (before: every member again, each pass).
    first, second = passes.costs["webhook0"], passes.costs["webhook1"]
    assert first.mirrored_ids > first.issues_fetched + second.issues_fetched
    assert second.mirrored_ids <= first.issues_fetched + second.issues_fetched
