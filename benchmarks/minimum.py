"""Issue 10's minimum of Jira requests for a cold pass, counted from the plan itself.

"Every in-scope issue read once at the page cap plus one id-only page per raw-JQL measure
that cannot be evaluated locally": the in-scope issues are the dataset's issues in the
fetch plan's projects (what okr-sync mirrors), read at the search page cap for issues with
fields (100); the raw-JQL measures Jira must answer are the fetch plan's memberships that
:mod:`okr_sync.sync.jql_local` does not answer locally (a relative date, a clause it does
not read, no top-level project restriction), one request per distinct query (an id-only
page holds up to 5,000 ids, a count is one request). The requests every new process makes
once (serverInfo, myself, field) are not in the issue's minimum; they are counted in the
measured figure and named beside it.
"""

from __future__ import annotations

import math
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from benchmarks.workload import FULL_SHAPE, PlanShape, make_dataset, make_plan, write_plan

FIELDS_PAGE_CAP = 100
ID_PAGE_CAP = 5000


def plan_minimum(plan: Any, dataset: Any) -> dict[str, Any]:
    """The cold-pass minimum for ``plan`` (a loaded Plan) over ``dataset``."""
    from okr_sync.sync.fetch_plan import build_fetch_plan

    projects: set[str] = set()
    remote: dict[str, bool] = {}
    for source in build_fetch_plan(plan).values():
        projects.update(source.projects)
        for query in source.memberships:
            if query.local is None:
                remote[query.jql] = remote.get(query.jql, False) or query.volatile
    in_scope = sum(1 for issue in dataset if issue.project in projects)
    pages = math.ceil(in_scope / FIELDS_PAGE_CAP)
    return {"in_scope_issues": in_scope, "issue_pages": pages,
            "remote_queries": len(remote), "volatile_queries": sum(remote.values()),
            "requests": pages + len(remote)}


@cache
def workload_minimum(seed: int, issues: int, shape: PlanShape = FULL_SHAPE) -> dict[str, Any]:
    """:func:`plan_minimum` of the benchmark's seeded workload (generated again: seconds)."""
    from okr_sync.config.plan_loader import load_plan

    dataset = make_dataset(seed, issues)
    with tempfile.TemporaryDirectory(prefix="okr-bench-minimum-") as tmp:
        path = write_plan(make_plan(seed, dataset, shape), Path(tmp) / "plan.yaml")
        return plan_minimum(load_plan(path), dataset)
