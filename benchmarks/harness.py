"""Run okr-sync and the naive comparator against the sandboxes and measure each pass.

okr-sync runs as a subprocess (``okr-sync run``, ``resync --full``, ``serve``), exactly as a
user runs it, so its CPU and peak RSS are the whole process's (``wait4`` rusage of that
child). The sandboxes live in this process, so their own work never counts against it;
they count every request they answer. Mapping + scoring CPU is what the pass itself reports
(``measure_cpu_s`` on its ``pass finished`` log line).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from benchmarks.results import PASS_SCENARIOS
from benchmarks.workload import (
    PlanShape,
    change_issues,
    edit_issue,
    make_dataset,
    make_plan,
    slack_channels,
    workflow_envs,
    write_plan,
)
from okr_sync.config.plan_loader import load_plan
from okr_sync.sandbox.jira.data import JiraDataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.sandbox.teams.server import TeamsSandbox
from okr_sync.sync.fetch_plan import measure_jqls
from okr_sync.sync.service.webhooks import IDENTIFIER_HEADER, SIGNATURE_HEADER, sign

WEBHOOK_SECRET = "bench-webhook-secret"  # noqa: S105 - a loopback-only benchmark secret
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def endpoint_of(path: str) -> str:
    """``/rest/api/3/search/jql`` -> ``search/jql``; ``/rest/api/3/issue/ENT-1`` -> ``issue``."""
    parts = path.split("/rest/api/", 1)[-1].split("/")[1:]
    if parts and parts[0] in ("issue", "project") and len(parts) > 1:
        return parts[0]
    return "/".join(parts)


@dataclass
class World:
    """The three sandboxes, the plan and what a subprocess needs to reach them."""

    jira: JiraSandbox
    slack: SlackSandbox
    teams: TeamsSandbox
    plan_doc: dict[str, Any]
    plan_path: Path
    workdir: Path
    workflow_urls: dict[str, str] = field(default_factory=dict)
    #: The seeded dataset again, as the world started (None: it cannot be restored),
    #: and the instant its clock then showed.
    initial_dataset: Callable[[], JiraDataset] | None = None
    initial_now: datetime | None = None

    @property
    def dataset(self) -> JiraDataset:
        return self.jira.dataset

    def restore_dataset(self) -> None:
        """Put the world's initial dataset back if a scenario changed or aged it: a
        repeat must measure the same scenario (a no-change pass right after an earlier
        repeat's 1 % edits would re-read them). Regenerated from the seed: generating
        is cheaper than a deep copy kept for every size, and exactly the same."""
        if self.initial_dataset is None:
            raise RuntimeError("this world cannot restore its initial dataset")
        if self.dataset.mutations or self.dataset.now() != self.initial_now:
            # The sandbox reads its dataset per request: the swap is seen at once.
            self.jira.dataset = self.initial_dataset()

    def environment(self, database: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OKR_SYNC_")}
        email, token = self.jira.basic_auth
        env.update({
            "OKR_SYNC_DATABASE_URL": f"sqlite:///{database}",
            "OKR_SYNC_JIRA_URL": self.jira.url,
            "OKR_SYNC_JIRA_EMAIL": email,
            "OKR_SYNC_JIRA_API_TOKEN": token,
            "OKR_SYNC_SLACK_BOT_TOKEN": self.slack.token,
            "OKR_SYNC_SLACK_API_URL": self.slack.api_url,
            "OKR_SYNC_LOG_LEVEL": "INFO",
            **self.workflow_urls,
            **extra,
        })
        return env

    def counters(self) -> tuple[int, int, int]:
        return len(self.jira.log), len(self.slack.requests), len(self.teams.requests)

    def requests_since(self, marks: tuple[int, int, int]) -> dict[str, Any]:
        jira = Counter(endpoint_of(r.path) for r in self.jira.log.records[marks[0]:])
        return {
            "jira": dict(sorted(jira.items())),
            "jira_total": sum(jira.values()),
            "slack": len(self.slack.requests) - marks[1],
            "teams": len(self.teams.requests) - marks[2],
        }


@contextmanager
def world(workdir: Path, *, seed: int, issues: int, shape: PlanShape,
          latency: float) -> Iterator[World]:
    """Sandboxes over a seeded dataset, ``latency`` seconds added to every Jira request."""
    dataset = make_dataset(seed, issues)
    plan_doc = make_plan(seed, dataset, shape)
    plan_path = write_plan(plan_doc, workdir / "okr-plan.yaml")
    with ExitStack() as stack:
        jira = stack.enter_context(JiraSandbox(dataset))
        if latency > 0:
            jira.faults.latency(latency)
        slack = stack.enter_context(SlackSandbox(channels=slack_channels(plan_doc)))
        teams = stack.enter_context(TeamsSandbox())
        urls = {}
        for n, env in enumerate(workflow_envs(plan_doc)):
            teams.add_workflow(f"bench{n}")
            urls[env] = teams.workflow_url(f"bench{n}")
        yield World(jira, slack, teams, plan_doc, plan_path, workdir, urls,
                    initial_dataset=lambda: make_dataset(seed, issues),
                    initial_now=dataset.now())


def okr_sync_command() -> list[str]:
    script = Path(sys.executable).with_name("okr-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "okr_sync.cli.main"]


def _log_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def measure_process(argv: list[str], env: dict[str, str], logdir: Path, name: str,
                    *, timeout: float = 3600.0) -> dict[str, Any]:
    """Run ``argv`` to its end; wall time and CPU of that process (``wait4``) and its own
    peak RSS (VmHWM, read every 20 ms: growth in its last 20 ms can be missed)."""
    out_path, err_path = logdir / f"{name}.out", logdir / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)  # noqa: S603
        deadline = started + timeout
        own_peak: float | None = None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            own_peak = _own_peak_mb(process.pid, own_peak)
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    finished = [r for r in _log_records(err_path) if r.get("msg") == "pass finished"]
    return {
        "exit_code": process.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        # The process's own high-water mark (VmHWM, polled while it runs).
        # ``wait4``'s ru_maxrss is not: Linux carries the parent's RSS at fork into the
        # child, so it reported this harness's own size (the sandboxes' dataset) for
        # any smaller pass. Kept beside it, as measured before, for comparison.
        "peak_rss_mb": own_peak if own_peak is not None else round(usage.ru_maxrss / 1024, 1),
        "peak_rss_from": "VmHWM" if own_peak is not None else "ru_maxrss",
        "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
        "measure_cpu_s": finished[-1].get("measure_cpu_s") if finished else None,
        "issues_fetched": finished[-1].get("issues_fetched") if finished else None,
    }


def run_okr_sync(w: World, database: Path, args: list[str], name: str) -> dict[str, Any]:
    marks = w.counters()
    result = measure_process([*okr_sync_command(), *args, "--plan", str(w.plan_path),
                              "--output", "json"],
                             w.environment(database), w.workdir, name)
    result |= w.requests_since(marks)
    if result["exit_code"] not in (0, 1):
        tail = (w.workdir / f"{name}.err").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"okr-sync {' '.join(args)} exited {result['exit_code']}: {tail}")
    return result


def naive_tasks(plan_doc: dict[str, Any], plan_path: Path, jira: JiraSandbox,
                slack: SlackSandbox) -> dict[str, Any]:
    """The naive script's input: one task per KR with the JQL that selects its items."""
    plan = load_plan(plan_path)
    jqls = measure_jqls(plan, "main")
    channel_of = {}
    first_channel = slack_channels(plan_doc)[0]
    for objective in plan_doc["objectives"]:
        targets = plan_doc["routes"][objective["notify"][0]]
        channel = targets[0]["slack"]["channel"] if "slack" in targets[0] else first_channel
        for kr in objective["key_results"]:
            channel_of[kr["id"]] = channel
    tasks = []
    for owner, measure in plan.jira_measures():
        tasks.append({
            "kr": owner, "jql": jqls[owner], "kind": measure.kind,
            "unit": getattr(measure, "unit", None),
            "done_only": getattr(measure, "done_only", False),
            "channel": channel_of[owner],
        })
    email, token = jira.basic_auth
    return {"jira_url": jira.url, "email": email, "token": token,
            "slack_api_url": slack.api_url, "slack_token": slack.token, "tasks": tasks}


def run_naive(w: World, name: str) -> dict[str, Any]:
    config = w.workdir / "naive-tasks.json"
    tasks = naive_tasks(w.plan_doc, w.plan_path, w.jira, w.slack)
    config.write_text(json.dumps(tasks), encoding="utf-8")
    marks = w.counters()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKR_SYNC_")}
    result = measure_process([sys.executable, "-m", "benchmarks.naive", str(config)], env,
                             w.workdir, name)
    if result["exit_code"] != 0:
        tail = (w.workdir / f"{name}.err").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the naive script exited {result['exit_code']}: {tail}")
    return result | w.requests_since(marks)


def pass_scenarios(w: World, database: Path, seed: int, repeat: int,
                   wanted: tuple[str, ...] = PASS_SCENARIOS) -> dict[str, Any]:
    """The ``wanted`` of: cold pass, no-change pass, 1 %-changed pass and ``resync --full``,
    in that order on a new store. The cold pass always runs (the others need a synced
    store); it is returned only when wanted. Every repeat starts from the world's
    initial dataset (as seeded), whatever an earlier repeat changed."""
    w.restore_dataset()
    results = {"cold": run_okr_sync(w, database, ["run"], f"r{repeat}-cold")}
    if "no_change" in wanted:
        w.dataset.advance(timedelta(minutes=5))
        results["no_change"] = run_okr_sync(w, database, ["run"], f"r{repeat}-no-change")
    if "changed_1pct" in wanted:
        changed = change_issues(w.dataset, seed * 1000 + repeat, 0.01)
        results["changed_1pct"] = run_okr_sync(w, database, ["run"], f"r{repeat}-changed")
        results["changed_1pct"]["issues_changed"] = len(changed)
    if "resync_full" in wanted:
        w.dataset.advance(timedelta(minutes=5))
        results["resync_full"] = run_okr_sync(w, database, ["resync", "--full"],
                                              f"r{repeat}-full")
    return {name: result for name, result in results.items() if name in wanted}


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (``/proc``, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _own_peak_mb(pid: int, so_far: float | None) -> float | None:
    """A running child's peak RSS so far (its VmHWM, which only grows), or ``so_far``
    when it cannot be read (the process just ended)."""
    try:
        return _proc_rss_mb(pid)[1]
    except (OSError, KeyError, ValueError):
        return so_far


def _proc_rss_mb(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return round(values["VmRSS"], 1), round(values["VmHWM"], 1)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _LogFollower:
    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
            end = chunk.rfind(b"\n")
            if end >= 0:
                self.offset += end + 1
                for line in chunk[:end].decode("utf-8", "replace").splitlines():
                    if line.startswith("{"):
                        record = json.loads(line)
                        if predicate(record):
                            return dict(record)
            time.sleep(0.05)
        raise TimeoutError(f"no matching log line in {self.path} within {timeout} s")


#: The webhook debounce of ``serve`` in the benchmark (``OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS``;
#: 5 s by default): each pass is one webhook, and 100 passes must not wait 100 x 5 s.
BENCH_DEBOUNCE_S = "0"


def webhook_passes(w: World, database: Path, count: int, seed: int,
                   *, debounce: str = BENCH_DEBOUNCE_S) -> dict[str, Any]:
    """``serve`` already running; ``count`` webhooks, one edited issue each, one pass each.

    Per pass: the serve process's CPU from just before the webhook to its ``pass finished``
    line (``/proc``), its RSS after the pass, and the requests the pass made.
    """
    port = _free_port()
    env = w.environment(database, OKR_SYNC_WEBHOOK_SECRET=WEBHOOK_SECRET,
                        OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS=debounce)
    err_path = w.workdir / "serve.err"
    argv = [*okr_sync_command(), "serve", "--plan", str(w.plan_path), "--interval", "7d",
            "--port", str(port), "--host", "127.0.0.1"]
    rng = random.Random(seed)
    ids = sorted(issue.id for issue in w.dataset)
    passes: list[dict[str, Any]] = []
    with err_path.open("wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)  # noqa: S603
        try:
            follower = _LogFollower(err_path)
            # serve's first pass: a cold pass when the store is new (at 50k, minutes).
            follower.wait_for(lambda r: r.get("msg") == "pass finished", 3600)
            rss_start = _proc_rss_mb(process.pid)[0]
            for _ in range(count):
                passes.append(_one_webhook(w, process.pid, port, follower, rng, ids))
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
    return summarize_webhooks(passes, rss_start) | {"debounce_s": float(debounce)}


def _one_webhook(w: World, pid: int, port: int, follower: _LogFollower, rng: random.Random,
                 ids: list[int]) -> dict[str, Any]:
    issue_id = rng.choice(ids)
    w.dataset.advance(timedelta(minutes=1))
    edit_issue(w.dataset, issue_id, rng)
    issue = w.dataset.get(issue_id)
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {
        "id": str(issue.id), "key": issue.key,
        "fields": {"project": {"key": issue.project}}}}).encode()
    marks, cpu_before = w.counters(), proc_cpu(pid)
    response = requests.post(
        f"http://127.0.0.1:{port}/webhooks/jira", data=body, timeout=30,
        headers={"Content-Type": "application/json",
                 SIGNATURE_HEADER: sign(WEBHOOK_SECRET, body),
                 IDENTIFIER_HEADER: str(uuid.uuid4())})
    if response.status_code != 202:
        raise RuntimeError(f"webhook answered {response.status_code}")
    record = follower.wait_for(lambda r: r.get("msg") == "pass finished"
                               and r.get("reason") == "webhook", 600)
    rss = _proc_rss_mb(pid)
    return {"cpu_s": round(proc_cpu(pid) - cpu_before, 3),
            "measure_cpu_s": record.get("measure_cpu_s"),
            "duration_s": record.get("duration_s"),
            "rss_mb": rss[0], "hwm_mb": rss[1], **w.requests_since(marks)}


def summarize_webhooks(passes: list[dict[str, Any]], rss_start: float) -> dict[str, Any]:
    """Medians, means and maxima of the passes, and the RSS after every pass (in order)."""
    if not passes:
        return {"passes": 0}
    jira: Counter[str] = Counter()
    for p in passes:
        jira.update(p["jira"])
    cpu = [p["cpu_s"] for p in passes]
    measure = [p["measure_cpu_s"] or 0.0 for p in passes]
    n = len(passes)
    rss = [p["rss_mb"] for p in passes]
    return {
        "passes": n,
        "cpu_s_median": round(statistics.median(cpu), 4),
        "cpu_s_mean": round(sum(cpu) / n, 4),
        "cpu_s_max": max(cpu),
        "measure_cpu_s_median": round(statistics.median(measure), 4),
        "measure_cpu_s_max": max(measure),
        "duration_s_median": round(statistics.median(p["duration_s"] or 0.0 for p in passes), 3),
        "jira_mean": round(sum(p["jira_total"] for p in passes) / n, 2),
        "jira": {k: round(v / n, 2) for k, v in sorted(jira.items())},
        "slack_total": sum(p["slack"] for p in passes),
        "teams_total": sum(p["teams"] for p in passes),
        "rss_mb_before": rss_start,
        "rss_mb_first_pass": rss[0],
        "rss_mb_middle": rss[n // 2],
        "rss_mb_last": rss[-1],
        "rss_mb_max": max(rss),
        "rss_mb_after_each": rss,
        "cpu_s_each": cpu,
        "peak_rss_mb": passes[-1]["hwm_mb"],
    }


def clean(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
