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

from benchmarks.results import commits, provenance, runs, scenario
from benchmarks.workload import FULL_SHAPE

SCENARIOS = (("cold", "cold pass"), ("no_change", "no-change pass"),
             ("changed_1pct", "1 %-changed pass"), ("resync_full", "`resync --full`"))
TITLES = {**dict(SCENARIOS), "naive": "naive script", "webhooks": "webhook passes in `serve`"}
METRICS = ("jira_total", "slack", "teams", "wall_s", "cpu_s", "measure_cpu_s", "peak_rss_mb")
#: Requests every okr-sync process makes once before it searches: serverInfo, myself, field.
SESSION_REQUESTS = 3
FIELDS_PAGE_CAP = 100
_ANALYSIS = re.compile(r"<!-- analysis -->.*?<!-- /analysis -->", re.DOTALL)


def median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def scenario_medians(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Medians over a scenario's runs (``n``: how many; 0 when it was never measured)."""
    found = runs(data, name)
    out: dict[str, Any] = {"n": len(found)}
    for metric in METRICS:
        out[metric] = median([r.get(metric) for r in found])
    endpoints = sorted({e for r in found for e in r.get("jira", {})})
    out["jira"] = {e: median([r.get("jira", {}).get(e, 0) for r in found]) for e in endpoints}
    # Runs recorded before the harness read VmHWM have no source: theirs is ru_maxrss.
    out["rss_from"] = sorted({r.get("peak_rss_from", "ru_maxrss") for r in found})
    return out


def peak_text(m: dict[str, Any]) -> str:
    """A scenario's median peak RSS, marked when any run of it was read from ``wait4``'s
    ru_maxrss (which carries the harness's RSS at fork: not the process's own)."""
    text = _fmt(m["peak_rss_mb"], 0)
    return text if m.get("rss_from", ["VmHWM"]) == ["VmHWM"] else f"{text} (ru_maxrss)"


def naive_medians(data: dict[str, Any]) -> dict[str, Any] | None:
    out = scenario_medians(data, "naive")
    return out if out["n"] else None


def webhooks_of(data: dict[str, Any]) -> dict[str, Any]:
    """The webhook passes' summary of a size (empty when not measured)."""
    summary: dict[str, Any] = scenario(data, "webhooks").get("summary") or {}
    return summary if summary.get("passes") else {}


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
    """An upper bound of issue 10's cold-pass minimum when no raw JQL is answered locally:
    every issue (the full plan's selectors name all 20 projects) at the fields page cap,
    one request per raw-JQL measure and count, and the session's requests. The minimum
    itself is counted from the plan by :mod:`benchmarks.minimum`."""
    pages = math.ceil(issues / FIELDS_PAGE_CAP)
    return {"all_remote": pages + shape.raw + shape.counts + SESSION_REQUESTS}


def slope(points: list[tuple[float, float | None]]) -> float | None:
    """Least-squares slope of log(y) over log(x): 1 is linear growth, 0 flat."""
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y and y > 0]
    if len(usable) < 2:
        return None
    mx = sum(x for x, _ in usable) / len(usable)
    my = sum(y for _, y in usable) / len(usable)
    den = sum((x - mx) ** 2 for x, _ in usable)
    return sum((x - mx) * (y - my) for x, y in usable) / den if den else None


def _provenance_lines(data: dict[str, Any]) -> list[str]:
    """Which commit measured each scenario, and when: scenarios measured together share a line."""
    groups: dict[str, list[str]] = {}
    for name, entry in (data.get("scenarios") or {}).items():
        if entry:
            key = (f"{provenance(entry)}; load average before {entry.get('load_before')}, "
                   f"after {entry.get('load_after', 'not measured')}")
            groups.setdefault(key, []).append(TITLES.get(name, name))
    lines = [f"- {', '.join(names)}: {key}" for key, names in groups.items()]
    if len(commits(data)) > 1:
        lines.insert(0, "**This size's scenarios come from different commits** "
                        f"({', '.join(sorted(commits(data)))}): compare them with care.")
    return ["Measured (scenario: commit, start to end, load):", "", *lines, ""]


def _size_section(data: dict[str, Any]) -> list[str]:
    issues = data["issues"]
    lines = [f"## {issues:,} issues", "", *_provenance_lines(data),
             "| scenario | Jira requests | by endpoint | Slack | Teams | wall s | "
             "CPU s (process) | map+score CPU s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, title in SCENARIOS:
        m = scenario_medians(data, key)
        if not m["n"]:
            lines.append(f"| {title} | not measured | | | | | | | |")
            continue
        lines.append(
            f"| {title} (median of {m['n']}) | {_fmt(m['jira_total'])} | "
            f"{_endpoints(m['jira'])} | {_fmt(m['slack'])} | {_fmt(m['teams'])} | "
            f"{_fmt(m['wall_s'])} | {_fmt(m['cpu_s'])} | {_fmt(m['measure_cpu_s'], 3)} | "
            f"{peak_text(m)} |")
    naive = naive_medians(data)
    if naive:
        lines.append(
            f"| naive script, any pass (median of {naive['n']}) | {_fmt(naive['jira_total'])} | "
            f"{_endpoints(naive['jira'])} | {_fmt(naive['slack'])} | {_fmt(naive['teams'])} | "
            f"{_fmt(naive['wall_s'])} | {_fmt(naive['cpu_s'])} | - | "
            f"{peak_text(naive)} |")
    hooks = webhooks_of(data)
    if hooks:
        cpu = hooks.get("cpu_s_median")
        cpu_text = (f"{_fmt(cpu, 3)} median (mean {_fmt(hooks['cpu_s_mean'], 3)}, max "
                    f"{_fmt(hooks['cpu_s_max'], 2)})" if cpu is not None else
                    f"{_fmt(hooks['cpu_s_mean'], 3)} mean (max {_fmt(hooks['cpu_s_max'], 2)})")
        lines.append(
            f"| webhook pass in `serve` ({hooks['passes']} passes) | "
            f"{_fmt(hooks['jira_mean'])} (mean) | {_endpoints(hooks['jira'])} | "
            f"{hooks['slack_total']} in all | {hooks['teams_total']} in all | "
            f"{_fmt(hooks['duration_s_median'])} (median) | {cpu_text} | "
            f"{_fmt(hooks['measure_cpu_s_median'], 4)} (median) | "
            f"{_fmt(hooks['peak_rss_mb'], 0)} |")
        most = hooks.get("rss_mb_max")
        lines += ["", f"`serve` RSS: {hooks['rss_mb_before']} MB before the first webhook, "
                  f"{hooks['rss_mb_first_pass']} after the first pass, {hooks['rss_mb_middle']} "
                  f"after pass {hooks['passes'] // 2 + 1}, {hooks['rss_mb_last']} after the last"
                  + (f" (largest after a pass: {most})" if most is not None else "")
                  + (f"; webhook debounce {hooks['debounce_s']} s" if "debounce_s" in hooks
                     else "") + "."]
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
    """The sizes with at least one finished run of a pass scenario."""
    return sorted(size for size, data in results.items()
                  if any(runs(data, key) for key, _ in SCENARIOS))


def _growth(results: dict[int, dict[str, Any]]) -> list[str]:
    sizes = measured_sizes(results)
    lines = ["## Growth with the dataset", "",
             "Log-log slope of each median over the sizes measured "
             f"({', '.join(f'{s:,}' for s in sizes)} issues): 1 grows linearly with the "
             "issues, 0 stays flat (webhook passes: their medians).", "",
             "| scenario | wall | CPU | map+score CPU | peak RSS | Jira requests |",
             "|---|---|---|---|---|---|"]
    for key, title in SCENARIOS:
        row = [title]
        for metric in ("wall_s", "cpu_s", "measure_cpu_s", "peak_rss_mb", "jira_total"):
            points = [(float(s), scenario_medians(results[s], key)[metric]) for s in sizes]
            value = slope(points)
            row.append("not measured" if value is None else f"{value:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    row = ["webhook pass in `serve`"]
    for metric in ("duration_s_median", "cpu_s_median", "measure_cpu_s_median", "peak_rss_mb",
                   "jira_mean"):
        value, note = slope([(float(s), webhooks_of(results[s]).get(metric)) for s in sizes]), ""
        if value is None and metric == "cpu_s_median":
            # Files written before the per-pass figures were kept give only the mean.
            value = slope([(float(s), webhooks_of(results[s]).get("cpu_s_mean")) for s in sizes])
            note = " (of the means)"
        row.append("not measured" if value is None else f"{value:.2f}{note}")
    lines.append("| " + " | ".join(row) + " |")
    if len(set().union(*(commits(results[s]) for s in sizes))) > 1:
        lines += ["", "The sizes (or their scenarios) were measured at different commits "
                  "(each size's section lists them): a slope then mixes two versions."]
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
                             f"{peak_text(m)} | {_fmt(m['wall_s'])} |")
        hooks = webhooks_of(data)
        if hooks:
            lines.append(f"| {size:,} | webhook pass (mean of {hooks['passes']}) | "
                         f"{_fmt(hooks['jira_mean'])} | {_fmt(hooks['cpu_s_mean'], 3)} | "
                         f"{_fmt(hooks['measure_cpu_s_median'], 4)} | "
                         f"{_fmt(hooks['peak_rss_mb'], 0)} | "
                         f"{_fmt(hooks['duration_s_median'])} |")
        naive = naive_medians(data)
        if naive:
            lines.append(f"| {size:,} | naive script | {_fmt(naive['jira_total'])} | "
                         f"{_fmt(naive['cpu_s'])} | - | {peak_text(naive)} | "
                         f"{_fmt(naive['wall_s'])} |")
    return [*lines, ""]


def render(results: dict[int, dict[str, Any]], meta: dict[str, Any], analysis: str,
           baselines: dict[str, dict[int, dict[str, Any]]] | None = None,
           *, source: str = "benchmarks/results/") -> str:
    m = meta.get("machine", {})
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks` (see README, \"Benchmark\"); raw numbers in "
        f"`{source}`. One machine's numbers, for comparison between versions, "
        "never assertions in tests. Request counts are exact and repeatable (seeded data); "
        "times depend on the machine and its load.",
        "",
        f"Machine: {m.get('cpu', '?')}, `nproc` {m.get('nproc', '?')} (`lscpu` CPU(s) "
        f"{m.get('lscpu_cpus', '?')}), {m.get('memory_mb', '?')} MB memory (`free -m`), "
        f"Python {m.get('python', '?')}, Linux {m.get('kernel', '?')}, okr-sync at "
        f"{m.get('commit', '?')}. The machine is shared with other work: each size gives its "
        "load average (1, 5, 15 min). SQLite state store; the sandboxes on loopback in the "
        "harness process, 20 ms added to every Jira request. "
        f"{m.get('bytecode', 'Bytecode: not recorded')}, as an installed okr-sync has it. "
        "Peak RSS is each process's own (`VmHWM`), not `wait4`'s `ru_maxrss`, which "
        "carries the harness's RSS at fork into the child.",
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
        from benchmarks.targets import targets_section

        lines += targets_section(results, meta)
    for name, baseline in sorted((baselines or {}).items()):
        lines += _baseline(baseline, name)
    lines += [analysis, ""]
    lines += startup_section(meta.get("startup"))
    return "\n".join(lines)


def _process_cpu(start: dict[str, Any]) -> str:
    whole = start.get("run_imports_process_cpu_s")
    if whole is None:
        return ""
    return f" ({_unit(whole, 's', 3)} for the whole process, its exit included)"


def startup_section(start: dict[str, Any] | None) -> list[str]:
    if not start:
        return []
    lines = ["## Start-up", ""]
    if start.get("commit"):
        lines += [f"Measured at {provenance(start)}.", ""]
    lines += [f"- imports: a fresh interpreter importing what `okr-sync run` imports "
              f"(`okr_sync.cli.main`, `okr_sync.cli.run`, `okr_sync.sync.runtime`): "
              f"{_unit(start.get('run_imports_cpu_s'), 's', 3)} CPU when the imports are done"
              f"{_process_cpu(start)}, {_unit(start.get('run_imports_s'), 's', 3)} wall, "
              f"medians of {start['runs']} (load average {start.get('load')}); the target's "
              f"verdict uses the first CPU figure."]
    if start.get("first_request_cpu_s") is not None:
        lines.append(
            f"- first request: `okr-sync run` (400-KR plan, migrated store, "
            f"{start.get('first_request_issues', '?'):,} issues) from process start to its "
            f"first Jira request: {_unit(start['first_request_cpu_s'], 's', 2)} CPU "
            f"(`/proc/<pid>/stat` when the sandbox receives it, 10 ms ticks), "
            f"{_unit(start.get('first_request_wall_s'), 's', 2)} wall, medians of "
            f"{start.get('first_request_runs')}.")
    if start.get("commands_s"):
        lines += ["", "`python benchmarks/startup_benchmark.py` times the light commands; "
                  "here, median wall time of the same number of runs:", ""]
        for name, seconds in start["commands_s"].items():
            lines.append(f"- `okr-sync {name}`: {seconds} s")
    return [*lines, ""]


def write_report(results: dict[int, dict[str, Any]], meta: dict[str, Any], path: Path,
                 baselines: dict[str, dict[int, dict[str, Any]]] | None = None,
                 *, source: str = "benchmarks/results/") -> Path:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    found = _ANALYSIS.search(old)
    analysis = found.group(0) if found else "<!-- analysis -->\n<!-- /analysis -->"
    path.write_text(render(results, meta, analysis, baselines, source=source), encoding="utf-8")
    return path
