"""The ``startup`` scenario: how long ``okr-sync run`` takes to start (issue 10: < 0.4 s).

Two figures, medians of ``runs`` fresh processes each:

* **imports**: a fresh interpreter importing what ``okr-sync run`` imports
  (``okr_sync.cli.main``, ``okr_sync.cli.run``, ``okr_sync.sync.runtime``): wall time, the
  CPU it has used when the imports are done (read by the child itself: the issue's
  target names the imports; its verdict uses this CPU), and the whole process's CPU
  with its exit (``wait4`` rusage).
* **first request**: ``okr-sync run`` on the 400-KR plan with a migrated store, from
  process start to its first request to the sandbox Jira: the process's CPU read from
  ``/proc/<pid>/stat`` the moment the sandbox receives that request (the process is then
  blocked on it), so it holds Python's start, the imports, settings, the plan and the
  store's opening. ``/proc`` counts CPU in clock ticks (10 ms).

The light commands (``--help``, ``--version``, ``validate``) are timed by
:mod:`benchmarks.startup_benchmark`, wall time only.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import okr_sync_command, proc_cpu, run_okr_sync, world
from benchmarks.workload import FULL_SHAPE

#: Issues behind the first-request measure: the plan is the full 400 KRs, the dataset
#: only has to give it its epics and labels (nothing is read before the first request).
FIRST_REQUEST_ISSUES = 2000


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


#: The child reads its own CPU once its imports are done: the process's start, up to the
#: point ``run`` begins its work (its exit, which a one-command ``run`` makes cheap by
#: freezing the collector, is not start-up; the whole process's CPU is shown beside it).
IMPORTS_CODE = (
    "import okr_sync.cli.main, okr_sync.cli.run, okr_sync.sync.runtime\n"
    "import resource\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print(usage.ru_utime + usage.ru_stime)\n"
)


def imports(runs: int) -> dict[str, Any]:
    seconds, cpu, whole = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", IMPORTS_CODE],  # noqa: S603
                                   stdout=subprocess.PIPE)
        assert process.stdout is not None
        printed = process.stdout.read()
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"importing okr-sync's run path exited {process.returncode}")
        seconds.append(time.perf_counter() - started)
        cpu.append(float(printed.decode().strip()))
        whole.append(usage.ru_utime + usage.ru_stime)
    return {"run_imports_s": _median(seconds), "run_imports_cpu_s": _median(cpu),
            "run_imports_process_cpu_s": _median(whole)}


class FirstRequestProbe:
    """Wraps the sandbox Jira's fault decision (called first for every request it gets)
    to read the armed process's CPU when its first request arrives."""

    def __init__(self, faults: Any) -> None:
        self.faults, self.original = faults, faults.decide
        self.pid: int | None = None
        self.cpu_s: float | None = None
        self.at: float | None = None

    def __enter__(self) -> FirstRequestProbe:
        setattr(self.faults, "decide", self)  # noqa: B010 - an instance attribute, on purpose
        return self

    def __exit__(self, *_exc: object) -> None:
        delattr(self.faults, "decide")

    def arm(self, pid: int) -> None:
        self.pid, self.cpu_s, self.at = pid, None, None

    def __call__(self, path: str) -> Any:
        if self.pid is not None and self.cpu_s is None:
            try:
                self.cpu_s, self.at = proc_cpu(self.pid), time.perf_counter()
            except OSError:
                self.cpu_s = None
        return self.original(path)


def first_request(runs: int, *, seed: int, latency: float) -> dict[str, Any]:
    cpu, walls = [], []
    with tempfile.TemporaryDirectory(prefix="okr-bench-start-") as tmp:
        workdir = Path(tmp)
        with world(workdir, seed=seed, issues=FIRST_REQUEST_ISSUES, shape=FULL_SHAPE,
                   latency=latency) as w:
            database = workdir / "okr-sync.db"
            run_okr_sync(w, database, ["run"], "start-setup")  # migrates; then a cold pass
            argv = [*okr_sync_command(), "run", "--plan", str(w.plan_path), "--output", "json"]
            with FirstRequestProbe(w.jira.faults) as probe:
                for n in range(runs):
                    with (workdir / f"start-{n}.err").open("wb") as err:
                        started = time.perf_counter()
                        process = subprocess.Popen(  # noqa: S603
                            argv, stdout=subprocess.DEVNULL, stderr=err,
                            env=w.environment(database))
                        probe.arm(process.pid)
                        process.wait(timeout=3600)
                    if probe.cpu_s is not None and probe.at is not None:
                        cpu.append(probe.cpu_s)
                        walls.append(probe.at - started)
    return {"first_request_cpu_s": _median(cpu), "first_request_wall_s": _median(walls),
            "first_request_runs": len(cpu), "first_request_issues": FIRST_REQUEST_ISSUES}


def startup(runs: int, *, seed: int, latency: float) -> dict[str, Any]:
    """The scenario: imports, first request, and the light commands' wall time."""
    from benchmarks.startup_benchmark import COMMANDS, time_command

    load_before = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {"runs": runs, "load_before": load_before, **imports(runs)}
    result |= first_request(runs, seed=seed, latency=latency)
    result["commands_s"] = {name: round(time_command(argv, runs), 3)
                            for name, argv in COMMANDS.items()}
    result["load"] = [round(x, 2) for x in os.getloadavg()]
    return result
