"""The benchmark of issue 10: okr-sync against a naive per-KR script, at several sizes.

    python -m benchmarks                       # 5k, 20k, 50k; every scenario; medians of 3
    python -m benchmarks --sizes 5000 --scenarios no_change,webhooks --webhooks 20
    python -m benchmarks --sizes 2000 --repeats 1 --webhooks 5 --results-dir /tmp/smoke

Per size: a seeded dataset in 20 projects behind the sandbox Jira (20 ms added to every
request), a plan of 400 KRs and 30 routes. Scenarios (``--scenarios``, a comma list;
default all): ``cold``, ``no_change``, ``changed_1pct`` and ``resync_full`` run
``--repeats`` times, in that order, each time on a new store (a cold pass runs first
whenever one of them is asked, as their setup); ``naive``, the naive script,
``--naive-repeats`` times (default: ``--repeats``); ``webhooks``, ``--webhooks`` webhook
passes of one issue each in a running ``serve`` (debounce set to 0 s); ``startup``, the
start of ``okr-sync run`` (imports, and CPU up to its first Jira request).

Results go to ``--results-dir`` (default ``benchmarks/results``): ``size-N.json`` per size,
written as each repeat ends, so an interrupted run keeps what it measured; ``machine.json``
for the machine and the start-up. A scenario asked for replaces that scenario's results;
the others stay as they were, with the commit and time they were measured. A scenario
measured in full at the current commit is skipped unless ``--force``. The report
(``benchmarks/RESULTS.md`` for the default results folder, else ``RESULTS.md`` in
``--results-dir``; ``--report`` names another file) is rewritten from every results file
at the end (``--report-only``: without measuring); its block between ``<!-- analysis -->``
and ``<!-- /analysis -->`` is kept. An earlier measurement moved to a subfolder of the
results folder is shown as a baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.results import (
    PASS_SCENARIOS,
    SIZE_SCENARIOS,
    is_done,
    load_results,
    parse_scenarios,
    save,
)

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _new_entry(commit: str) -> dict[str, Any]:
    return {"commit": commit, "started": _now(), "load_before": _load(), "complete": False}


def _finish(entry: dict[str, Any]) -> None:
    entry.update(finished=_now(), load_after=_load(), complete=True)


def size_header(issues: int, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.results import FORMAT
    from benchmarks.workload import FULL_SHAPE

    return {"format": FORMAT, "issues": issues, "seed": args.seed, "latency_s": args.latency,
            "key_results": FULL_SHAPE.key_results, "routes": FULL_SHAPE.routes,
            "scenarios": {}}


def to_measure(data: dict[str, Any], wanted: tuple[str, ...], commit: str,
               args: argparse.Namespace) -> tuple[str, ...]:
    """The ``wanted`` scenarios of a size not yet measured in full at ``commit``."""
    def count(name: str) -> int:
        wanted_runs = {"naive": args.naive_repeats, "webhooks": args.webhooks}
        return int(wanted_runs.get(name, args.repeats))
    return tuple(s for s in wanted if args.force or not is_done(data, s, commit, count(s)))


def measure_size(issues: int, args: argparse.Namespace, wanted: tuple[str, ...],
                 results_dir: Path) -> dict[str, Any]:
    """Measure the ``wanted`` scenarios at ``issues``; the file keeps every other one."""
    from benchmarks.harness import clean, pass_scenarios, run_naive, webhook_passes, world
    from benchmarks.minimum import plan_minimum
    from benchmarks.workload import FULL_SHAPE
    from okr_sync.config.plan_loader import load_plan

    path = results_dir / f"size-{issues}.json"
    data = load_results(results_dir).get(issues) or size_header(issues, args)
    commit = current_commit()
    todo = to_measure(data, wanted, commit, args)
    if args.webhooks <= 0:
        todo = tuple(s for s in todo if s != "webhooks")
    if not todo:
        print(f"[{issues}] {', '.join(wanted)}: already measured at {commit} (--force)")
        return data
    entries = {name: _new_entry(commit) for name in todo}
    for name, entry in entries.items():
        if name != "webhooks":
            entry["runs"] = []
        data["scenarios"][name] = entry
    save(path, data)
    passes = tuple(s for s in PASS_SCENARIOS if s in todo)
    with tempfile.TemporaryDirectory(prefix=f"okr-bench-{issues}-") as tmp:
        workdir = Path(tmp)
        with world(workdir, seed=args.seed, issues=issues, shape=FULL_SHAPE,
                   latency=args.latency) as w:
            data["minimum"] = plan_minimum(load_plan(w.plan_path), w.dataset)
            database = workdir / "serve" / "okr-sync.db"
            for repeat in range(args.repeats if passes else 0):
                database = workdir / f"r{repeat}" / "okr-sync.db"
                clean(database.parent)
                print(f"[{issues}] repeat {repeat + 1}/{args.repeats}: {', '.join(passes)}",
                      flush=True)
                for name, result in pass_scenarios(w, database, args.seed, repeat,
                                                   passes).items():
                    entries[name]["runs"].append(result)
                save(path, data)
            for name in passes:
                _finish(entries[name])
            if "naive" in todo:
                entries["naive"] |= _new_entry(commit)  # starts now, after the passes
                for repeat in range(args.naive_repeats):
                    print(f"[{issues}] naive pass {repeat + 1}/{args.naive_repeats}", flush=True)
                    entries["naive"]["runs"].append(run_naive(w, f"naive-{repeat}"))
                    save(path, data)
                _finish(entries["naive"])
            if "webhooks" in todo:
                print(f"[{issues}] {args.webhooks} webhook passes", flush=True)
                entries["webhooks"] |= _new_entry(commit)
                if not passes:
                    clean(database.parent)  # serve's own first pass is then a cold pass
                entries["webhooks"]["summary"] = webhook_passes(w, database, args.webhooks,
                                                                args.seed)
                _finish(entries["webhooks"])
    save(path, data)
    return data


def _text(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False,  # noqa: S603
                              timeout=30).stdout
    except OSError:
        return ""


def current_commit() -> str:
    """The short commit of this checkout, ``+dirty`` when ``src/`` has uncommitted changes
    (the numbers are then of code no commit holds)."""
    commit = _text(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"]).strip()
    dirty = _text(["git", "-C", str(HERE), "status", "--porcelain", "--", str(HERE.parent / "src")])
    return commit + ("+dirty" if dirty.strip() else "")


def machine() -> dict[str, Any]:
    text = _text
    lscpu = {k.strip(): v.strip() for k, _, v in
             (line.partition(":") for line in text(["lscpu"]).splitlines())}
    mem = text(["free", "-m"]).splitlines()
    return {
        "cpu": lscpu.get("Model name", platform.processor()),
        "nproc": text(["nproc"]).strip(),
        "lscpu_cpus": lscpu.get("CPU(s)"),
        "memory_mb": mem[1].split()[1] if len(mem) > 1 else "?",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": current_commit(),
    }


def _shown(results_dir: Path) -> str:
    """The results folder as the report names it (relative to the checkout when inside)."""
    try:
        return f"{results_dir.relative_to(HERE.parent)}/"
    except ValueError:
        return f"{results_dir}/"


def compile_okr_sync() -> str:
    """Compile okr-sync's modules to bytecode before measuring, as ``pip install`` of
    the package (or the Docker image) does. An editable install under
    ``PYTHONDONTWRITEBYTECODE`` (set on this machine) never writes any, so every measured
    process would compile ~95 modules from source first (~0.1 s of each start-up), which
    no installed okr-sync does. Returns what the report says about it."""
    import compileall

    import okr_sync

    package = Path(okr_sync.__file__).parent
    ok = compileall.compile_dir(package, quiet=1)
    return f"okr_sync compiled before measuring ({'ok' if ok else 'with errors'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,20000,50000")
    parser.add_argument("--scenarios", default="all",
                        help="comma list of cold, no_change, changed_1pct, resync_full, "
                             "naive, webhooks, startup (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-repeats", type=int, default=None,
                        help="runs of the naive script (default: --repeats)")
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--startup-runs", type=int, default=None,
                        help="fresh processes per start-up figure (default: --repeats)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--report", type=Path, default=None,
                        help="the report to write (default: benchmarks/RESULTS.md for the "
                             "default results folder, else RESULTS.md in --results-dir)")
    parser.add_argument("--force", action="store_true",
                        help="measure again what was measured in full at this commit")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    try:
        wanted = parse_scenarios(args.scenarios)
    except ValueError as error:
        parser.error(str(error))
    if args.naive_repeats is None:
        args.naive_repeats = args.repeats
    if args.startup_runs is None:
        args.startup_runs = max(args.repeats, 1)
    results_dir: Path = args.results_dir.resolve()
    report_path = args.report or (HERE / "RESULTS.md" if results_dir == RESULTS_DIR
                                  else results_dir / "RESULTS.md")
    results_dir.mkdir(parents=True, exist_ok=True)
    meta_path = results_dir / "machine.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if not args.report_only:
        # The machine first, so a run cut short still says where it was measured.
        meta["machine"] = machine()
        meta["machine"]["bytecode"] = compile_okr_sync()
        save(meta_path, meta)
        per_size = tuple(s for s in wanted if s in SIZE_SCENARIOS)
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            if per_size:
                measure_size(size, args, per_size, results_dir)
        if "startup" in wanted:
            from benchmarks.startup import startup

            print(f"start-up: {args.startup_runs} runs", flush=True)
            entry = _new_entry(meta["machine"]["commit"])
            entry |= startup(args.startup_runs, seed=args.seed, latency=args.latency)
            _finish(entry)
            meta["startup"] = entry
        meta["measured"] = _now()
        save(meta_path, meta)
    from benchmarks.report import write_report

    baselines = {d.name: load_results(d) for d in sorted(results_dir.iterdir()) if d.is_dir()}
    report = write_report(load_results(results_dir), meta, report_path, baselines,
                          source=_shown(results_dir))
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
