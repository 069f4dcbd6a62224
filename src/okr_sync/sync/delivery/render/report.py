"""A self-contained HTML scorecard (``okr-sync report``): no scripts, no external assets.

Every text from the plan or Jira is HTML-escaped.
"""

from __future__ import annotations

from html import escape

from okr_sync.scoring.scorecard import KeyResultScore, ObjectiveScore, Scorecard

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2430}
h1{font-size:1.4rem} table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e7ee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.objective td{font-weight:600;background:#f5f7fa}
.bar{display:inline-block;height:.6rem;width:6rem;background:#e3e7ee;border-radius:.3rem}
.bar>span{display:block;height:100%;border-radius:.3rem;background:#3b82f6}
.on_track{color:#15803d}.at_risk{color:#b45309}.off_track{color:#b91c1c}.blocked{color:#7f1d1d}
.green{color:#15803d}.yellow{color:#b45309}.red{color:#b91c1c}
""".strip()


def _pct(score: float | None) -> str:
    return "&ndash;" if score is None else f"{score * 100:.0f}%"


def _num(value: float | None) -> str:
    if value is None:
        return "&ndash;"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _bar(score: float | None) -> str:
    if score is None:  # not measured: no bar at all, an empty one would read as 0
        return ""
    width = max(0.0, min(1.0, score)) * 100
    return f'<span class="bar"><span style="width:{width:.0f}%"></span></span>'


def _objective_row(objective: ObjectiveScore, depth: int) -> str:
    pad = depth * 1.2
    return (
        f'<tr class="objective"><td style="padding-left:{pad + 0.5}rem">{escape(objective.id)}'
        f" {escape(objective.title)}</td><td></td><td></td>"
        f'<td class="num">{_pct(objective.score)} {_bar(objective.score)}</td>'
        f"<td>{escape(objective.band or 'not measured')}</td>"
        f'<td class="{objective.confidence}">{escape(objective.confidence or "")}</td></tr>'
    )


def _kr_row(kr: KeyResultScore, depth: int) -> str:
    pad = depth * 1.2 + 1.2
    return (
        f'<tr><td style="padding-left:{pad + 0.5}rem">{escape(kr.id)} {escape(kr.title)}</td>'
        f'<td class="num">{_num(kr.value)}</td><td class="num">{_num(kr.target)}</td>'
        f'<td class="num">{_pct(kr.score)} {_bar(kr.score)}</td>'
        f'<td>{escape(kr.band or "not measured")}</td>'
        f'<td class="{kr.confidence}">{escape(kr.confidence or "")}</td></tr>'
    )


def render_html_report(scorecard: Scorecard) -> str:
    cycle = scorecard.cycle
    parents = {o.id: o.parent for o in scorecard.objectives}
    rows = []
    for objective in scorecard.objectives:
        depth, current = 0, objective.parent
        while current is not None and depth < len(parents):
            depth, current = depth + 1, parents.get(current)
        rows.append(_objective_row(objective, depth))
        rows.extend(_kr_row(kr, depth) for kr in objective.key_results)
    perspectives = "".join(
        f"<tr><td>{escape(p.title)}</td><td class='num'>{_pct(p.score)}</td>"
        f"<td>{escape(p.band) if p.band else '&ndash;'}</td></tr>"
        for p in scorecard.perspectives
    )
    kpis = "".join(
        f"<tr><td>{escape(k.id)} {escape(k.title)}</td><td class='num'>{_num(k.value)}</td>"
        f"<td class='{k.status or ''}'>{k.status or '&ndash;'}</td></tr>"
        for k in scorecard.kpis
    )
    warnings = "".join(
        f"<li>{escape(w.kr + ': ' if w.kr else '')}{escape(w.message)}</li>"
        for w in scorecard.warnings
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(cycle.name)} scorecard</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(cycle.name)} scorecard</h1>
<p>{cycle.start} &ndash; {cycle.end} · as of {escape(cycle.as_of.isoformat())} ·
{cycle.elapsed * 100:.0f}% of the cycle elapsed</p>
<table><thead><tr><th>Objective / key result</th><th>Value</th><th>Target</th><th>Score</th>
<th>Band</th><th>Confidence</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Perspectives</h2><table><tbody>{perspectives}</tbody></table>
{"<h2>KPIs</h2><table><tbody>" + kpis + "</tbody></table>" if kpis else ""}
{"<h2>Warnings</h2><ul>" + warnings + "</ul>" if warnings else ""}
</body></html>
"""
