"""Benchmark a sync pass against the sandboxes: time and Jira requests per pass.

    python benchmarks/pass_benchmark.py --issues 5000

Prints one JSON document: for a first (full) pass, a pass with no change, and a
pass after a burst of Jira updates, the wall time and the requests each made.
Timings are for comparison on one machine, not assertions.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import timedelta
from importlib import resources
from pathlib import Path

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=50)
    args = parser.parse_args()
    source = resources.files("okr_sync.config").joinpath("examples", "demo.yaml")
    with resources.as_file(source) as path:
        plan = load_plan(path)
    results = {}
    with (
        tempfile.TemporaryDirectory() as workdir,
        sandbox_world(Path(workdir), issues=args.issues) as world,
    ):
        runtime = world.runtime(plan)

        def timed(name: str) -> None:
            world.jira.log.clear()
            started = time.perf_counter()
            result = runtime.run_locked(PassOptions())
            results[name] = {
                "seconds": round(time.perf_counter() - started, 3),
                "jira_requests": len(world.jira.log),
                "issues_fetched": result.issues_fetched,
                "changes": len(result.scorecard.changes),
                "deliveries": len(result.scorecard.deliveries),
            }

        timed("first_pass")
        timed("no_change")
        world.dataset.advance(timedelta(minutes=10))
        rng = random.Random(1)
        open_ids = [i.id for i in world.dataset.issues.values() if i.status_category != "done"]
        for issue_id in rng.sample(open_ids, min(args.updates, len(open_ids))):
            world.dataset.transition(issue_id, "done")
        timed("after_updates")
        runtime.close()
    print(json.dumps({"issues": args.issues, "passes": results}, indent=2))


if __name__ == "__main__":
    main()
