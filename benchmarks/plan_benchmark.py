"""Time ``okr-sync validate`` on the largest plans it accepts: the answer must come in < 2 s.

    python benchmarks/plan_benchmark.py --runs 5

A plan is refused before it is parsed past :data:`~okr_sync.config.plan_yaml.MAX_PLAN_BYTES`
bytes, and while it is read past :data:`~okr_sync.config.plan_yaml.MAX_NODES` values; what
costs time up to those limits is the number of values (parsing, validating, listing
problems), then the bytes. So the plans timed here sit just under both: the widest valid
plan (objectives and key results repeated up to the value limit), the same padded with long
titles up to the byte limit, a plan of the same size whose every value is an unknown key
(the most problems to list), and a file of one flow list of small numbers (the densest
YAML). Each run is a fresh ``okr-sync validate`` process, so the times include Python's
start and the imports. Prints one line per plan and one JSON document; the times are for
one machine, not assertions (``tests/security/test_bad_input_plans.py`` checks the answers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from okr_sync.config.plan_yaml import MAX_NODES, MAX_PLAN_BYTES

_EXAMPLE = "okr.yaml"
#: Values of one objective with one key result, as :func:`widest_plan` writes them.
_VALUES_PER_OBJECTIVE = 40


def _example() -> dict[str, Any]:
    text = resources.files("okr_sync.config.examples").joinpath(_EXAMPLE).read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def widest_plan(objectives: int, title_chars: int = 0) -> bytes:
    """A valid plan of ``objectives`` objectives with one key result each (no aliases)."""
    doc = _example()
    template = doc["objectives"][0]
    kr = template["key_results"][0]
    doc["objectives"] = [
        {**{k: v for k, v in template.items() if k != "parent"}, "id": f"O-{n}",
         "title": f"Objective {n} " + "x" * title_chars,
         "key_results": [{**kr, "id": f"O-{n}.KR"}]}
        for n in range(objectives)
    ]
    return yaml.safe_dump(doc, width=10_000).encode()


def near_node_limit_plan() -> bytes:
    """The widest plan the value limit lets through (as many objectives as fit)."""
    return widest_plan(int(MAX_NODES * 0.95) // _VALUES_PER_OBJECTIVE)


def near_byte_limit_plan() -> bytes:
    """A valid plan just under the byte limit: fewer objectives, long titles."""
    objectives = MAX_NODES // (4 * _VALUES_PER_OBJECTIVE)
    base = len(widest_plan(objectives))
    pad = (MAX_PLAN_BYTES - 16 * 1024 - base) // objectives
    return widest_plan(objectives, title_chars=pad)


def unknown_keys_plan() -> bytes:
    """Just under the value limit, every value an unknown top-level key: a problem each."""
    return "".join(f"k{n}: v\n" for n in range(int(MAX_NODES * 0.95) // 2)).encode()


def dense_flow_plan() -> bytes:
    """One flow list of single digits just under the value limit (2 bytes a value)."""
    return b"version: [" + b",".join([b"1"] * int(MAX_NODES * 0.95)) + b"]\n"


PLANS: dict[str, Callable[[], bytes]] = {
    "valid, near the value limit": near_node_limit_plan,
    "valid, near the byte limit": near_byte_limit_plan,
    "unknown keys, near the value limit": unknown_keys_plan,
    "dense flow list, near the value limit": dense_flow_plan,
    "10 MB (over the byte limit)": lambda: b"version: 1\n" + b"# padding\n" * (1024 * 1024),
}


def time_validate(plan: Path, runs: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds (the child's user + system) and the exit code."""
    walls: list[float] = []
    cpus: list[float] = []
    code = 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "okr_sync.cli.main", "validate", "--plan", str(plan)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
            env={**os.environ, "OKR_SYNC_PLAN": ""},
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        code = done.returncode
    return statistics.median(walls), statistics.median(cpus), code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, build in PLANS.items():
            plan = Path(folder) / "plan.yaml"
            plan.write_bytes(build())
            wall, cpu, code = time_validate(plan, args.runs)
            results[name] = {"bytes": plan.stat().st_size, "exit": code,
                             "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
            print(f"{name}: {plan.stat().st_size:,} bytes, exit {code}, "
                  f"{wall:.2f} s wall, {cpu:.2f} s CPU")
    print(json.dumps({"runs": args.runs, "load": os.getloadavg(), "plans": results}))


if __name__ == "__main__":
    main()
