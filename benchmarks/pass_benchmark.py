"""Benchmark a sync pass against the sandboxes: time, CPU, memory and Jira requests per pass.

    python benchmarks/pass_benchmark.py --issues 20000 --krs 400

Prints one JSON document: for a first (full) pass, a pass with no change, and a
pass after a burst of Jira updates, the wall time, the CPU of the pass's own thread
(``thread_time``: okr-sync's work, not the in-process sandbox servers'), the CPU of
mapping and scoring alone (``measure`` and ``build_scorecard``), the requests each made and the
process's peak RSS after it. ``--krs N`` replaces the demo plan by a generated one
with N structured and raw-JQL KRs over the sandbox's projects. Timings are for
comparison on one machine, not assertions.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.sandbox.jira.data import JiraDataset
from okr_sync.sync import pipeline
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world

_PROJECTS = ("ENT", "SUP", "OPS")


def generated_plan(dataset: JiraDataset, krs: int, workdir: Path, seed: int = 3) -> Plan:
    """A plan of ``krs`` KRs (10 per objective): mostly structured selectors of every
    kind, one in five a raw-JQL measure."""
    rng = random.Random(seed)
    issues = list(dataset.issues.values())
    epics = [i.key for i in issues if i.issuetype == "Epic"]
    labels = sorted({label for i in issues for label in i.labels})
    components = sorted({c for i in issues for c in i.components})
    kinds = ("done_ratio", "done_ratio_points", "sum", "milestone", "count")
    objectives: list[dict[str, Any]] = []
    for n in range(krs):
        project = _PROJECTS[n % len(_PROJECTS)]
        shape = n % 5
        select: dict[str, Any] = {"project": project}
        if shape == 0:
            select = {"epic": rng.choice(epics)}
        elif shape == 1:
            select["labels"] = rng.sample(labels, 2)
        elif shape == 2:
            select["components"] = [rng.choice(components)]
            select["issuetype"] = "Story"
        elif shape == 3:
            select["priority"] = ["High", "Highest"]
        kind = kinds[(n // 5) % len(kinds)]
        measure: dict[str, Any]
        if n % 5 == 4:
            label = rng.choice(labels)
            measure = {"kind": "done_ratio" if kind != "count" else "count",
                       "jql": f"project = {project} AND labels = {label}"}
        elif kind == "done_ratio_points":
            measure = {"kind": "done_ratio", "unit": "story_points", "select": select}
        elif kind == "sum":
            measure = {"kind": "sum", "field": "story_points", "select": select}
        else:
            measure = {"kind": kind, "select": select}
        kr: dict[str, Any] = {"id": f"O{n // 10}.KR{n % 10}", "title": f"KR {n}",
                              "measure": measure}
        if kind in ("sum", "count"):
            kr["target"] = 100
        if n % 10 == 0:
            objectives.append({"id": f"O{n // 10}", "title": f"Objective {n // 10}",
                               "notify": ["leadership"], "key_results": []})
        objectives[-1]["key_results"].append(kr)
    doc = {
        "version": 1,
        "cycle": {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31",
                  "timezone": "UTC"},
        "jira": {"main": {"projects": list(_PROJECTS), "story_points_field": "auto"}},
        "objectives": objectives,
        "routes": {"leadership": [{"slack": {"channel": "C0DEMO0001"}}]},
    }
    path = workdir / "bench-plan.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return load_plan(path)


@contextmanager
def _timed_evaluation() -> Iterator[list[float]]:
    """CPU seconds spent measuring (``sync.measuring.measure``: measure states, mapping,
    evaluation) and scoring (``build_scorecard``) while active."""
    spent: list[float] = []
    # ``evaluate_measures``: the pass of earlier versions, for before/after comparisons.
    originals: dict[str, Callable[..., Any]] = {
        name: getattr(pipeline, name)
        for name in ("measure", "evaluate_measures", "build_scorecard")
        if hasattr(pipeline, name)}

    def timed(original: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent.append(time.thread_time() - started)
        return run

    for name, original in originals.items():
        setattr(pipeline, name, timed(original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(pipeline, name, original)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--krs", type=int, default=0,
                        help="generate a plan with this many KRs (default: the demo plan)")
    parser.add_argument("--quiet-passes", type=int, default=1,
                        help="no-change passes to run (peak RSS should stay flat)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as workdir,
        sandbox_world(Path(workdir), issues=args.issues) as world,
        _timed_evaluation() as evaluation,
    ):
        if args.krs:
            plan = generated_plan(world.dataset, args.krs, Path(workdir))
        else:
            source = resources.files("okr_sync.config").joinpath("examples", "demo.yaml")
            with resources.as_file(source) as path:
                plan = load_plan(path)
        runtime = world.runtime(plan)

        def timed(name: str) -> None:
            world.jira.log.clear()
            evaluation.clear()
            started, cpu = time.perf_counter(), time.thread_time()
            result = runtime.run_locked(PassOptions())
            results[name] = {
                "seconds": round(time.perf_counter() - started, 3),
                "cpu_seconds": round(time.thread_time() - cpu, 3),
                "mapping_scoring_cpu_seconds": round(sum(evaluation), 3),
                "jira_requests": len(world.jira.log),
                "issues_fetched": result.issues_fetched,
                "changes": len(result.scorecard.changes),
                "deliveries": len(result.scorecard.deliveries),
                "peak_rss_mb": _peak_rss_mb(),
            }

        timed("first_pass")
        for n in range(args.quiet_passes):
            timed("no_change" if n == 0 else f"no_change_{n + 1}")
        world.dataset.advance(timedelta(minutes=10))
        rng = random.Random(1)
        open_ids = [i.id for i in world.dataset.issues.values() if i.status_category != "done"]
        for issue_id in rng.sample(open_ids, min(args.updates, len(open_ids))):
            world.dataset.transition(issue_id, "done")
        timed("after_updates")
        runtime.close()
    print(json.dumps({"issues": args.issues, "krs": args.krs or "demo plan",
                      "passes": results}, indent=2))


if __name__ == "__main__":
    main()
