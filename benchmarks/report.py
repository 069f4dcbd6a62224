"""Write ``benchmarks/RESULTS.md`` from the results files of :mod:`benchmarks.run`.

Only numbers found in the results files are shown; a missing one says "not measured".
The hand-written analysis between ``<!-- analysis -->`` and ``<!-- /analysis -->`` in the
existing file is kept as it is.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from benchmarks.workload import FULL_SHAPE

SCENARIOS = (("cold", "cold pass"), ("no_change", "no-change pass"),
             ("changed_1pct", "1 %-changed pass"), ("resync_full", "`resync --full`"))
METRICS = ("jira_total", "slack", "teams", "wall_s", "cpu_s", "measure_cpu_s", "peak_rss_mb")
#: Requests every okr-sync process makes once before it searches: serverInfo, myself, field.
SESSION_REQUESTS = 3
FIELDS_PAGE_CAP = 100
_ANALYSIS = re.compile(r"<!-- analysis -->.*?<!-- /analysis -->", re.DOTALL)


def median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def scenario_medians(data: dict[str, Any], scenario: str) -> dict[str, Any]:
    runs = [r[scenario] for r in data.get("repeats", []) if scenario in r]
    out: dict[str, Any] = {"n": len(runs)}
    for metric in METRICS:
        out[metric] = median([r.get(metric) for r in runs])
    endpoints = sorted({e for r in runs for e in r.get("jira", {})})
    out["jira"] = {e: median([r.get("jira", {}).get(e, 0) for r in runs]) for e in endpoints}
    return out


def naive_medians(data: dict[str, Any]) -> dict[str, Any] | None:
    runs = data.get("naive") or []
    if not runs:
        return None
    out: dict[str, Any] = {"n": len(runs)}
    for metric in METRICS:
        out[metric] = median([r.get(metric) for r in runs])
    out["jira"] = runs[0].get("jira", {})
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def _unit(value: Any, unit: str, digits: int = 2) -> str:
    return "not measured" if value is None else f"{_fmt(value, digits)} {unit}"


def _endpoints(jira: dict[str, Any]) -> str:
    return ", ".join(f"{name} {_fmt(count)}" for name, count in jira.items()) or "-"


def cold_minimum(issues: int, shape: Any = FULL_SHAPE) -> dict[str, int]:
    """Issue 10's minimum for a cold pass, with and without local raw-JQL evaluation.

    Every in-scope issue (the selectors' projects: all 20 in the full plan, so every
    issue) read once at the fields page cap, one
    id-only page or count per raw-JQL measure Jira must answer, and the session's requests.
    The plan's raw JQL uses only clauses a local evaluator can answer exactly, except the
    volatile (relative-date) ones.
    """
    pages = math.ceil(issues / FIELDS_PAGE_CAP)
    return {"all_remote": pages + shape.raw + shape.counts + SESSION_REQUESTS,
            "local": pages + shape.volatile + SESSION_REQUESTS}


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) over log(x): 1 is linear growth, 0 flat."""
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y and y > 0]
    if len(usable) < 2:
        return None
    mx = sum(x for x, _ in usable) / len(usable)
    my = sum(y for _, y in usable) / len(usable)
    den = sum((x - mx) ** 2 for x, _ in usable)
    return sum((x - mx) * (y - my) for x, y in usable) / den if den else None


def _size_section(data: dict[str, Any]) -> list[str]:
    issues = data["issues"]
    lines = [f"## {issues:,} issues", ""]
    state = "complete" if data.get("complete") else "PARTIAL (interrupted; what finished)"
    lines.append(f"okr-sync at {data.get('commit', 'an unrecorded commit')}; measured "
                 f"{data.get('started', '?')} to {data.get('finished', '?')}, {state}; "
                 f"load average before {data.get('load_before')}, after "
                 f"{data.get('load_after', 'not measured')}. okr-sync passes: medians of "
                 f"{len(data.get('repeats', []))} repeat(s); naive: {len(data.get('naive', []))} "
                 "run(s).")
    lines += ["", "| scenario | Jira requests | by endpoint | Slack | Teams | wall s | "
              "CPU s (process) | map+score CPU s | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|"]
    for key, title in SCENARIOS:
        m = scenario_medians(data, key)
        if not m["n"]:
            lines.append(f"| {title} | not measured | | | | | | | |")
            continue
        lines.append(
            f"| {title} | {_fmt(m['jira_total'])} | {_endpoints(m['jira'])} | "
            f"{_fmt(m['slack'])} | {_fmt(m['teams'])} | {_fmt(m['wall_s'])} | "
            f"{_fmt(m['cpu_s'])} | {_fmt(m['measure_cpu_s'], 3)} | {_fmt(m['peak_rss_mb'], 0)} |")
    naive = naive_medians(data)
    if naive:
        lines.append(
            f"| naive script, any pass | {_fmt(naive['jira_total'])} | "
            f"{_endpoints(naive['jira'])} | {_fmt(naive['slack'])} | {_fmt(naive['teams'])} | "
            f"{_fmt(naive['wall_s'])} | {_fmt(naive['cpu_s'])} | - | "
            f"{_fmt(naive['peak_rss_mb'], 0)} |")
    hooks = data.get("webhooks")
    if hooks and hooks.get("passes"):
        lines.append(
            f"| webhook pass in `serve` (mean of {hooks['passes']}) | {_fmt(hooks['jira_mean'])} "
            f"| {_endpoints(hooks['jira'])} | {hooks['slack_total']} in all | "
            f"{hooks['teams_total']} in all | {_fmt(hooks['duration_s_median'])} (median) | "
            f"{_fmt(hooks['cpu_s_mean'], 3)} (max {_fmt(hooks['cpu_s_max'], 2)}) | "
            f"{_fmt(hooks['measure_cpu_s_median'], 4)} (median) | "
            f"{_fmt(hooks['peak_rss_mb'], 0)} |")
        lines += ["", f"`serve` RSS: {hooks['rss_mb_before']} MB before the first webhook, "
                  f"{hooks['rss_mb_first_pass']} after the first, {hooks['rss_mb_middle']} "
                  f"after pass {hooks['passes'] // 2 + 1}, {hooks['rss_mb_last']} after the last."]
    if naive:
        lines += ["", "Naive script ÷ okr-sync (higher is better for okr-sync):", ""]
        for key, title in SCENARIOS[1:3]:
            m = scenario_medians(data, key)
            if not m["n"]:
                continue
            parts = [f"{label} {_ratio(naive[metric], m[metric])}"
                     for metric, label in (("jira_total", "Jira requests"), ("wall_s", "wall"),
                                           ("cpu_s", "CPU"))]
            lines.append(f"- {title}: " + ", ".join(parts))
    return [*lines, ""]


def _ratio(numerator: Any, denominator: Any) -> str:
    if numerator is None or denominator is None:
        return "not measured"
    if denominator == 0:
        return "∞ (okr-sync made none)"
    return f"{numerator / denominator:,.1f}x"


def measured_sizes(results: dict[int, dict[str, Any]]) -> list[int]:
    """The sizes with at least one finished repeat of the passes."""
    return sorted(size for size, data in results.items() if data.get("repeats"))


def _growth(results: dict[int, dict[str, Any]]) -> list[str]:
    sizes = measured_sizes(results)
    lines = ["## Growth with the dataset", "",
             "Log-log slope of each median over the sizes measured "
             f"({', '.join(f'{s:,}' for s in sizes)} issues): 1 grows linearly with the "
             "issues, 0 stays flat.", "",
             "| scenario | wall | CPU | map+score CPU | peak RSS | Jira requests |",
             "|---|---|---|---|---|---|"]
    for key, title in SCENARIOS:
        row = [title]
        for metric in ("wall_s", "cpu_s", "measure_cpu_s", "peak_rss_mb", "jira_total"):
            points = [(float(s), scenario_medians(results[s], key)[metric]) for s in sizes]
            value = slope(points)
            row.append("not measured" if value is None else f"{value:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _target(name: str, ok: bool | None, measured: str, limit: str) -> str:
    verdict = "not measured" if ok is None else ("met" if ok else "**gap**")
    return f"| {name} | {limit} | {measured} | {verdict} |"


def _targets(results: dict[int, dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    size = max(measured_sizes(results))
    data = results[size]
    cold, quiet = scenario_medians(data, "cold"), scenario_medians(data, "no_change")
    changed, naive = scenario_medians(data, "changed_1pct"), naive_medians(data)
    hooked = [n for n in measured_sizes(results)
              if (results[n].get("webhooks") or {}).get("passes")]
    hooks = results[max(hooked)]["webhooks"] if hooked else {}
    hook_size = f" at {max(hooked):,} issues" if hooked and max(hooked) != size else ""
    minimum = cold_minimum(size)
    lines = [f"## Targets (issue 10), at {size:,} issues", ""]
    if size != 50_000:
        lines += [f"The targets are stated for 50,000 issues; 50,000 was not measured, so "
                  f"they are checked at {size:,}.", ""]
    lines += ["| target | limit | measured | verdict |", "|---|---|---|---|"]

    def num(value: Any) -> float | None:
        return None if value is None else float(value)

    c = num(cold["jira_total"])
    lines.append(_target(
        "cold pass Jira requests", None if c is None else c <= 1.2 * minimum["local"],
        f"{_fmt(c)} ({_unit(c / minimum['local'] if c else None, 'x')} the minimum)",
        f"≤ 1.2 x {minimum['local']:,} (all issues at {FIELDS_PAGE_CAP} a page + "
        f"{FULL_SHAPE.volatile} volatile raw-JQL pages + {SESSION_REQUESTS} session requests;"
        f" {minimum['all_remote']:,} if no raw JQL were evaluated locally)"))
    q = num(quiet["jira_total"])
    limit = 1 + FULL_SHAPE.volatile
    lines.append(_target(
        "no-change pass Jira requests", None if q is None else q <= limit + SESSION_REQUESTS,
        f"{_fmt(q)} ({_endpoints(quiet['jira'])})",
        f"≤ {limit} (1 per source + {FULL_SHAPE.volatile} volatile), plus the "
        f"{SESSION_REQUESTS} session requests of a new process"))
    s = num(quiet["slack"]) if quiet["n"] else None
    t = num(quiet["teams"]) if quiet["n"] else None
    lines.append(_target("no-change pass Slack/Teams requests",
                         None if s is None or t is None else s + t == 0,
                         f"{_fmt(s)} / {_fmt(t)}", "0"))
    qc = num(quiet["cpu_s"])
    lines.append(_target("no-change pass CPU, whole process", None if qc is None else qc < 1.5,
                         _unit(qc, "s"), "< 1.5 s"))
    n_req, n_wall = (num(naive["jira_total"]), num(naive["wall_s"])) if naive else (None, None)
    cr, cw = num(changed["jira_total"]), num(changed["wall_s"])
    ratio_req = n_req / cr if n_req and cr else None
    ratio_wall = n_wall / cw if n_wall and cw else None
    lines.append(_target("1 %-changed pass: fewer Jira requests than naive",
                         None if ratio_req is None else ratio_req >= 20,
                         f"{_unit(ratio_req, 'x', 1)} ({_fmt(cr)} vs {_fmt(n_req)})", "≥ 20 x"))
    lines.append(_target("1 %-changed pass: less wall time than naive",
                         None if ratio_wall is None else ratio_wall >= 5,
                         f"{_unit(ratio_wall, 'x', 1)} ({_unit(cw, 's')} vs {_unit(n_wall, 's')})",
                         "≥ 5 x"))
    hc = num(hooks.get("cpu_s_mean"))
    lines.append(_target("one-issue webhook pass in `serve`: CPU",
                         None if hc is None else hc < 0.1,
                         f"{_unit(hc, 's', 3)}, mean of {hooks.get('passes', 0)} "
                         f"(whole process){hook_size}",
                         "< 0.1 s"))
    mc = num(changed["measure_cpu_s"])
    lines.append(_target("mapping + scoring after a 1 % change", None if mc is None else mc < 0.5,
                         _unit(mc, "s", 3), "< 0.5 s CPU"))
    peaks = [num(scenario_medians(data, k)["peak_rss_mb"]) for k, _ in SCENARIOS]
    peak = max((p for p in peaks if p is not None), default=None)
    lines.append(_target("peak RSS", None if peak is None else peak < 250,
                         f"{_unit(peak, 'MB', 0)} (largest of the four scenarios)", "< 250 MB"))
    if hooks.get("passes"):
        first, last = hooks["rss_mb_first_pass"], hooks["rss_mb_last"]
        lines.append(_target(f"RSS flat over {hooks['passes']} passes (`serve`){hook_size}",
                             last <= first * 1.1 + 5, f"{first} → {last} MB",
                             "last ≤ first + 10 %"))
    startup = meta.get("startup") or {}
    start, start_cpu = startup.get("run_imports_s"), startup.get("run_imports_cpu_s")
    lines.append(_target("process start for `run` (imports)",
                         None if start_cpu is None else start_cpu < 0.4,
                         f"{_unit(start_cpu, 's')} CPU, {_unit(start, 's')} wall under load "
                         f"{startup.get('load')} (medians of {startup.get('runs', 0)})",
                         "< 0.4 s (checked on CPU: the wall time here is mostly the load)"))
    return [*lines, ""]


def _baseline(baseline: dict[int, dict[str, Any]], name: str) -> list[str]:
    """The medians of an earlier measurement kept in ``results/<name>/``, for comparison."""
    lines = [f"## Baseline: `results/{name}/`", "",
             "An earlier measurement of the same workload, kept to compare against "
             "(its files give the commit and the load).", "",
             "| issues | scenario | Jira requests | CPU s (process) | map+score CPU s | "
             "peak RSS MB | wall s |", "|---|---|---|---|---|---|---|"]
    for size in measured_sizes(baseline):
        data = baseline[size]
        for key, title in SCENARIOS:
            m = scenario_medians(data, key)
            if m["n"]:
                lines.append(f"| {size:,} | {title} | {_fmt(m['jira_total'])} | "
                             f"{_fmt(m['cpu_s'])} | {_fmt(m['measure_cpu_s'], 3)} | "
                             f"{_fmt(m['peak_rss_mb'], 0)} | {_fmt(m['wall_s'])} |")
        hooks = data.get("webhooks") or {}
        if hooks.get("passes"):
            lines.append(f"| {size:,} | webhook pass (mean of {hooks['passes']}) | "
                         f"{_fmt(hooks['jira_mean'])} | {_fmt(hooks['cpu_s_mean'], 3)} | "
                         f"{_fmt(hooks['measure_cpu_s_median'], 4)} | "
                         f"{_fmt(hooks['peak_rss_mb'], 0)} | "
                         f"{_fmt(hooks['duration_s_median'])} |")
        naive = naive_medians(data)
        if naive:
            lines.append(f"| {size:,} | naive script | {_fmt(naive['jira_total'])} | "
                         f"{_fmt(naive['cpu_s'])} | - | {_fmt(naive['peak_rss_mb'], 0)} | "
                         f"{_fmt(naive['wall_s'])} |")
    return [*lines, ""]


def render(results: dict[int, dict[str, Any]], meta: dict[str, Any], analysis: str,
           baselines: dict[str, dict[int, dict[str, Any]]] | None = None) -> str:
    m = meta.get("machine", {})
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks` (see README, \"Benchmark\"); raw numbers in "
        "`benchmarks/results/`. One machine's numbers, for comparison between versions, "
        "never assertions in tests. Request counts are exact and repeatable (seeded data); "
        "times depend on the machine and its load.",
        "",
        f"Machine: {m.get('cpu', '?')}, `nproc` {m.get('nproc', '?')} (`lscpu` CPU(s) "
        f"{m.get('lscpu_cpus', '?')}), {m.get('memory_mb', '?')} MB memory (`free -m`), "
        f"Python {m.get('python', '?')}, Linux {m.get('kernel', '?')}, okr-sync at "
        f"{m.get('commit', '?')}. The machine is shared with other work: each size gives its "
        "load average (1, 5, 15 min). SQLite state store; the sandboxes on loopback in the "
        "harness process, 20 ms added to every Jira request.",
        "",
        f"Workload (seed 1): the issues in 20 projects; a plan of {FULL_SHAPE.key_results} KRs "
        f"({FULL_SHAPE.structured} structured selectors, {FULL_SHAPE.raw} raw-JQL measures of "
        f"which {FULL_SHAPE.volatile} use a relative date, {FULL_SHAPE.counts} raw-JQL counts) "
        f"in 100 objectives and {FULL_SHAPE.routes} routes (26 Slack channels, 4 Teams "
        "Workflows). The naive script runs every KR's JQL with `fields=*all` through the "
        "`jira` client and posts every KR to Slack, every pass (`benchmarks/naive.py`).",
        "",
    ]
    for size in sorted(results):
        lines += _size_section(results[size])
    if len(measured_sizes(results)) > 1:
        lines += _growth(results)
    if measured_sizes(results):
        lines += _targets(results, meta)
    for name, baseline in sorted((baselines or {}).items()):
        lines += _baseline(baseline, name)
    lines += [analysis, ""]
    start = meta.get("startup")
    if start:
        lines += ["## Start-up", "",
                  f"A fresh interpreter importing what `okr-sync run` imports "
                  f"(`okr_sync.cli.main`, `okr_sync.cli.run`, `okr_sync.sync.runtime`): "
                  f"{start['run_imports_s']} s wall, "
                  f"{start.get('run_imports_cpu_s', 'not measured')} s CPU, medians of "
                  f"{start['runs']} (load average "
                  f"{start.get('load')}). `python benchmarks/startup_benchmark.py` times the "
                  "light commands; here, medians of the same number of runs:", ""]
        for name, seconds in (start.get("commands_s") or {}).items():
            lines.append(f"- `okr-sync {name}`: {seconds} s")
        lines.append("")
    return "\n".join(lines)


def write_report(results: dict[int, dict[str, Any]], meta: dict[str, Any], path: Path,
                 baselines: dict[str, dict[int, dict[str, Any]]] | None = None) -> Path:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    found = _ANALYSIS.search(old)
    analysis = found.group(0) if found else "<!-- analysis -->\n<!-- /analysis -->"
    path.write_text(render(results, meta, analysis, baselines), encoding="utf-8")
    return path
