"""The targets table of ``RESULTS.md``: each target of issue 10, its limit, the measured
figure and "met" or "gap" (or "not measured"), at the largest size measured.

What each verdict is checked on:

* cold pass: every Jira request of the process (its 3 session requests included) against
  1.2 x the issue's minimum (:mod:`benchmarks.minimum`, counted from the plan);
* no-change pass: its searches against 1 per source + 1 per volatile raw-JQL query (plus
  the 3 session requests every new process makes), Slack + Teams against 0, the whole
  process's CPU (median) against 1.5 s;
* 1 %-changed pass against the naive script: medians of both (requests, wall time);
* one-issue webhook pass: the ``serve`` process's CPU per pass, median of the passes;
* mapping + scoring after a 1 % change: ``measure_cpu_s`` of the 1 %-changed pass, median;
* peak RSS: the largest of the four passes' medians and ``serve``'s peak over its passes;
* RSS flat: ``serve``'s RSS after the last pass against that after the first + 10 %;
* start-up: the CPU of the imports (the issue's "(imports)"), median; the CPU up to the
  first Jira request is shown beside it.
"""

from __future__ import annotations

from typing import Any

from benchmarks.minimum import FIELDS_PAGE_CAP, workload_minimum
from benchmarks.report import (
    SCENARIOS,
    SESSION_REQUESTS,
    _endpoints,
    _fmt,
    _unit,
    measured_sizes,
    naive_medians,
    scenario_medians,
    webhooks_of,
)

#: The issue asks for 100 webhook passes: fewer is said beside the verdict.
WEBHOOK_PASSES = 100


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _row(name: str, ok: bool | None, measured: str, limit: str) -> str:
    verdict = "not measured" if ok is None else ("met" if ok else "**gap**")
    return f"| {name} | {limit} | {measured} | {verdict} |"


def rss_flat(hooks: dict[str, Any]) -> bool:
    """Issue 10's "flat": RSS after the last pass ≤ RSS after the first pass + 10 %."""
    return float(hooks["rss_mb_last"]) <= 1.1 * float(hooks["rss_mb_first_pass"])


def targets_section(results: dict[int, dict[str, Any]], meta: dict[str, Any],
                    minimum: dict[str, Any] | None = None) -> list[str]:
    size = max(measured_sizes(results))
    data = results[size]
    if minimum is None:
        minimum = data.get("minimum") or workload_minimum(int(data.get("seed", 1)), size)
    cold, quiet = scenario_medians(data, "cold"), scenario_medians(data, "no_change")
    changed, naive = scenario_medians(data, "changed_1pct"), naive_medians(data)
    hooked = [n for n in measured_sizes(results) if webhooks_of(results[n])]
    hooks = webhooks_of(results[max(hooked)]) if hooked else {}
    hook_size = f" at {max(hooked):,} issues" if hooked and max(hooked) != size else ""
    lines = [f"## Targets (issue 10), at {size:,} issues", ""]
    if size != 50_000:
        lines += [f"The targets are stated for 50,000 issues; 50,000 was not measured, so "
                  f"they are checked at {size:,}.", ""]
    lines += ["Each verdict is checked on the median of the runs shown in the size's table "
              "(what each one uses: `benchmarks/targets.py`).", "",
              "| target | limit | measured | verdict |", "|---|---|---|---|"]
    lines += _pass_rows(cold, quiet, changed, naive, minimum)
    lines += _serve_rows(data, hooks, hook_size)
    lines.append(_startup_row(meta.get("startup") or {}))
    return [*lines, ""]


def _pass_rows(cold: dict[str, Any], quiet: dict[str, Any], changed: dict[str, Any],
               naive: dict[str, Any] | None, minimum: dict[str, Any]) -> list[str]:
    rows = []
    least = int(minimum["requests"])
    c = _num(cold["jira_total"])
    rows.append(_row(
        "cold pass Jira requests", None if c is None else c <= 1.2 * least,
        f"{_fmt(c)}, of which {SESSION_REQUESTS} session requests "
        f"({_unit(c / least if c else None, 'x')} the minimum)",
        f"≤ 1.2 x {least:,} = {1.2 * least:,.1f} (minimum: {minimum['in_scope_issues']:,} "
        f"in-scope issues at {FIELDS_PAGE_CAP} a page = {minimum['issue_pages']:,}, + "
        f"{minimum['remote_queries']} raw-JQL queries not evaluated locally, of which "
        f"{minimum['volatile_queries']} volatile)"))
    volatile = int(minimum["volatile_queries"])
    q = _num(quiet["jira_total"])
    rows.append(_row(
        "no-change pass Jira requests",
        None if q is None else q <= 1 + volatile + SESSION_REQUESTS,
        f"{_fmt(q)} ({_endpoints(quiet['jira'])})",
        f"≤ {1 + volatile} (1 per source + {volatile} volatile), plus the "
        f"{SESSION_REQUESTS} session requests of a new process"))
    s = _num(quiet["slack"]) if quiet["n"] else None
    t = _num(quiet["teams"]) if quiet["n"] else None
    rows.append(_row("no-change pass Slack/Teams requests",
                     None if s is None or t is None else s + t == 0,
                     f"{_fmt(s)} / {_fmt(t)}", "0"))
    qc = _num(quiet["cpu_s"])
    rows.append(_row("no-change pass CPU, whole process", None if qc is None else qc < 1.5,
                     _unit(qc, "s"), "< 1.5 s"))
    n_req, n_wall = (_num(naive["jira_total"]), _num(naive["wall_s"])) if naive else (None, None)
    cr, cw = _num(changed["jira_total"]), _num(changed["wall_s"])
    ratio_req = n_req / cr if n_req and cr else None
    ratio_wall = n_wall / cw if n_wall and cw else None
    rows.append(_row("1 %-changed pass: fewer Jira requests than naive",
                     None if ratio_req is None else ratio_req >= 20,
                     f"{_unit(ratio_req, 'x', 1)} ({_fmt(cr)} vs {_fmt(n_req)})", "≥ 20 x"))
    rows.append(_row("1 %-changed pass: less wall time than naive",
                     None if ratio_wall is None else ratio_wall >= 5,
                     f"{_unit(ratio_wall, 'x', 1)} ({_unit(cw, 's')} vs {_unit(n_wall, 's')})",
                     "≥ 5 x"))
    mc = _num(changed["measure_cpu_s"])
    rows.append(_row("mapping + scoring after a 1 % change", None if mc is None else mc < 0.5,
                     _unit(mc, "s", 3), "< 0.5 s CPU"))
    return rows


def _serve_rows(data: dict[str, Any], hooks: dict[str, Any], hook_size: str) -> list[str]:
    rows = []
    passes = int(hooks.get("passes") or 0)
    fewer = f" ({WEBHOOK_PASSES} asked)" if passes and passes < WEBHOOK_PASSES else ""
    hc, statistic = _num(hooks.get("cpu_s_median")), "median"
    if hc is None and hooks.get("cpu_s_mean") is not None:
        # Files written before the per-pass figures were kept give only the mean.
        hc, statistic = _num(hooks["cpu_s_mean"]), "mean (no median recorded)"
    rows.append(_row("one-issue webhook pass in `serve`: CPU", None if hc is None else hc < 0.1,
                     f"{_unit(hc, 's', 3)}, {statistic} of {passes} passes{fewer} (whole "
                     f"process; mean {_unit(_num(hooks.get('cpu_s_mean')), 's', 3)}, max "
                     f"{_unit(_num(hooks.get('cpu_s_max')), 's', 3)}){hook_size}", "< 0.1 s"))
    medians = {title: scenario_medians(data, k) for k, title in SCENARIOS}
    peaks = {title: _num(m["peak_rss_mb"]) for title, m in medians.items()}
    if hooks and not hook_size:
        peaks["`serve` over its passes"] = _num(hooks.get("peak_rss_mb"))
    present = {k: v for k, v in peaks.items() if v is not None}
    worst = max(present, key=lambda k: present[k]) if present else None
    peak = present[worst] if worst else None
    own = worst not in medians or medians[worst]["rss_from"] == ["VmHWM"]
    rows.append(_row("peak RSS", None if peak is None else peak < 250,
                     f"{_unit(peak, 'MB', 0)}{'' if own else ' (ru_maxrss)'} "
                     f"({worst}; largest of the four passes"
                     f"{' and serve' if not hook_size and hooks else ''})", "< 250 MB"))
    if hooks:
        first, last = hooks["rss_mb_first_pass"], hooks["rss_mb_last"]
        rows.append(_row(f"RSS flat over {passes} passes{fewer} (`serve`){hook_size}",
                         rss_flat(hooks), f"{first} → {last} MB (after pass 1 → after the last)",
                         "last ≤ first + 10 %"))
    else:
        rows.append(_row("RSS flat over 100 passes (`serve`)", None, "not measured",
                         "last ≤ first + 10 %"))
    return rows


def _startup_row(startup: dict[str, Any]) -> str:
    limit = "< 0.4 s, checked on the imports' CPU (wall time here is mostly the load)"
    cpu = _num(startup.get("run_imports_cpu_s"))
    if cpu is None:
        return _row("process start for `run` (imports)", None, "not measured", limit)
    first = startup.get("first_request_cpu_s")
    beside = (f"; CPU to `run`'s first Jira request: {_unit(first, 's')}"
              if first is not None else "")
    return _row("process start for `run` (imports)", cpu < 0.4,
                f"{_unit(cpu, 's', 3)} CPU for the imports, wall "
                f"{_unit(_num(startup.get('run_imports_s')), 's', 3)} under load "
                f"{startup.get('load')} (medians of {startup.get('runs', 0)}){beside}", limit)
