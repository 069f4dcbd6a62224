"""The benchmark of issue 10: okr-sync against a naive per-KR script, at several sizes.

    python -m benchmarks                       # 5k, 20k, 50k; medians of 3; 100 webhooks
    python -m benchmarks --sizes 5000 --repeats 1 --webhooks 20

Per size: a seeded dataset in 20 projects behind the sandbox Jira (20 ms added to every
request), a plan of 400 KRs and 30 routes; then, ``--repeats`` times on a new store, a cold
pass, a no-change pass, a 1 %-changed pass and ``resync --full``; the naive script once per
``--naive-repeats``; and ``--webhooks`` webhook passes in a running ``serve``. Each size's
results go to ``benchmarks/results/size-N.json`` as soon as a phase ends, so an interrupted
run keeps what it measured; a size whose file is complete is skipped unless ``--force``.
``benchmarks/RESULTS.md`` is rewritten from every results file at the end (``--report-only``
rewrites it without measuring); an earlier measurement moved to ``results/<name>/`` is
shown as a baseline to compare against.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import clean, pass_scenarios, run_naive, webhook_passes, world
from benchmarks.report import write_report
from benchmarks.workload import FULL_SHAPE

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_results(directory: Path = RESULTS_DIR) -> dict[int, dict[str, Any]]:
    found = {}
    for path in sorted(directory.glob("size-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[int(data["issues"])] = data
    return found


def measure_size(issues: int, args: argparse.Namespace) -> dict[str, Any]:
    path = RESULTS_DIR / f"size-{issues}.json"
    data: dict[str, Any] = {
        "issues": issues, "seed": args.seed, "latency_s": args.latency,
        "key_results": FULL_SHAPE.key_results, "routes": FULL_SHAPE.routes,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": machine()["commit"],
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "repeats": [], "naive": [], "webhooks": None, "complete": False,
    }
    _save(path, data)
    with tempfile.TemporaryDirectory(prefix=f"okr-bench-{issues}-") as tmp:
        workdir = Path(tmp)
        with world(workdir, seed=args.seed, issues=issues, shape=FULL_SHAPE,
                   latency=args.latency) as w:
            for repeat in range(args.repeats):
                database = workdir / f"r{repeat}" / "okr-sync.db"
                clean(database.parent)
                print(f"[{issues}] repeat {repeat + 1}/{args.repeats}", flush=True)
                data["repeats"].append(pass_scenarios(w, database, args.seed, repeat))
                if repeat < args.naive_repeats:
                    print(f"[{issues}] naive pass {repeat + 1}", flush=True)
                    data["naive"].append(run_naive(w, f"naive-{repeat}"))
                _save(path, data)
            if args.webhooks:
                print(f"[{issues}] {args.webhooks} webhook passes", flush=True)
                database = workdir / f"r{args.repeats - 1}" / "okr-sync.db"
                data["webhooks"] = webhook_passes(w, database, args.webhooks, args.seed)
    data["load_after"] = [round(x, 2) for x in os.getloadavg()]
    data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    data["complete"] = True
    _save(path, data)
    return data


def _median_of(runs: list[float]) -> float:
    return round(statistics.median(runs), 3)


def startup(runs: int) -> dict[str, Any]:
    """Median wall time of fresh interpreters importing what ``okr-sync run`` imports."""
    code = "import okr_sync.cli.main, okr_sync.cli.run, okr_sync.sync.runtime"
    seconds, cpu = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", code])  # noqa: S603
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds.append(time.perf_counter() - started)
        cpu.append(usage.ru_utime + usage.ru_stime)
    from benchmarks.startup_benchmark import COMMANDS, time_command

    commands = {name: round(time_command(argv, runs), 3) for name, argv in COMMANDS.items()}
    return {"runs": runs, "run_imports_s": _median_of(seconds),
            "run_imports_cpu_s": _median_of(cpu), "commands_s": commands,
            "load": [round(x, 2) for x in os.getloadavg()]}


def machine() -> dict[str, Any]:
    def text(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False,  # noqa: S603
                                  timeout=30).stdout
        except OSError:
            return ""
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
        "commit": text(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"]).strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,20000,50000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-repeats", type=int, default=1)
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--force", action="store_true", help="measure complete sizes again")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(exist_ok=True)
    meta_path = RESULTS_DIR / "machine.json"
    if not args.report_only:
        # The machine first, so a run cut short still says where it was measured.
        old_meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        _save(meta_path, old_meta | {"machine": machine()})
        done = load_results()
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            if done.get(size, {}).get("complete") and not args.force:
                print(f"[{size}] already measured (--force to measure again)")
                continue
            measure_size(size, args)
        meta = {"machine": machine(), "startup": startup(args.startup_runs),
                "measured": datetime.now(UTC).isoformat(timespec="seconds")}
        _save(meta_path, meta)
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    baselines = {d.name: load_results(d) for d in sorted(RESULTS_DIR.iterdir()) if d.is_dir()}
    report = write_report(load_results(), meta, HERE / "RESULTS.md", baselines)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
