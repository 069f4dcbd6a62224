"""Scorecard builders for tests and demos: realistic, large, and hostile-text scorecards.

Pure data, no I/O. Each builder takes keyword overrides so a test states only
what matters to it, e.g. ``key_result(title="<!channel>")``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from okr_sync.scoring.scorecard import (
    Change,
    CycleInfo,
    ItemCounts,
    KeyResultScore,
    KpiScore,
    ObjectiveScore,
    PerspectiveScore,
    Scorecard,
    ScoringWarning,
)

JIRA = "https://acme.atlassian.net"
AS_OF = datetime(2026, 11, 15, tzinfo=UTC)
HOSTILE_TITLE = "<!channel> & <b>"


def cycle(**overrides: Any) -> CycleInfo:
    base = CycleInfo(
        name="2026-Q4",
        start=date(2026, 10, 1),
        end=date(2026, 12, 31),
        as_of=AS_OF,
        elapsed=0.4891,
    )
    return replace(base, **overrides)


def key_result(**overrides: Any) -> KeyResultScore:
    base = KeyResultScore(
        id="CO-1.KR1",
        title="Ship SSO for all enterprise plans",
        value=0.42,
        baseline=0,
        target=1,
        score=0.42,
        band="progress",
        confidence="at_risk",
        items=ItemCounts(selected=12, done=5),
        links=(f"{JIRA}/issues/?jql=parent%20%3D%20ENT-100",),
        measure_kind="done_ratio",
    )
    return replace(base, **overrides)


def objective(**overrides: Any) -> ObjectiveScore:
    base = ObjectiveScore(
        id="CO-1",
        title="Win the enterprise segment",
        perspective="customer",
        parent=None,
        score=0.5333,
        band="progress",
        confidence="at_risk",
        key_results=(key_result(),),
    )
    return replace(base, **overrides)


def realistic_scorecard() -> Scorecard:
    """Several objectives with a cascading parent, every measure kind, BSC, KPIs, changes."""
    co1_krs = (
        key_result(owner="Alice Ng", checkin_note="SSO beta live with 3 customers",
                   checkin_note_at=datetime(2026, 11, 14, 16, 30, tzinfo=UTC)),
        key_result(
            id="CO-1.KR2",
            title="Cut open P1 bugs from 40 to 5",
            value=12,
            baseline=40,
            target=5,
            score=0.8,
            band="strong",
            confidence="on_track",
            owner="Alice Ng",
            items=ItemCounts(selected=12, done=0),
            links=(f"{JIRA}/browse/SUP-17", f"{JIRA}/browse/SUP-21", "SUP-30"),
            measure_kind="count",
        ),
        key_result(
            id="CO-1.KR3",
            title="Sign 10 lighthouse customers",
            value=4,
            baseline=0,
            target=10,
            score=0.4,
            band="progress",
            confidence="at_risk",
            owner="Bob Ray",
            items=None,
            links=(),
            measure_kind="manual",
        ),
        key_result(
            id="CO-1.KR4",
            title="Keep enterprise churn at or below 2 accounts",
            value=1,
            baseline=None,
            target=2,
            score=1.0,
            band="strong",
            confidence="on_track",
            direction="at_most",
            items=None,
            links=(),
            measure_kind="manual",
        ),
    )
    ip1_krs = (
        key_result(
            id="IP-1.KR1",
            title="Release train runs every two weeks",
            value=0,
            baseline=0,
            target=1,
            score=0.0,
            band="missed",
            confidence="off_track",
            items=ItemCounts(selected=5, done=3),
            links=(f"{JIRA}/issues/?filter=10042",),
            measure_kind="milestone",
        ),
        key_result(
            id="IP-1.KR2",
            title="Automate 120 story points of release checks",
            value=78.5,
            baseline=0,
            target=120,
            score=0.6542,
            band="progress",
            confidence="on_track",
            weight=2,
            items=ItemCounts(selected=30, done=19),
            links=(),
            measure_kind="sum",
            unit="story_points",
        ),
    )
    lg1_krs = (
        key_result(
            id="LG-1.KR1",
            title="Train 6 engineers for on-call",
            value=1,
            baseline=0,
            target=6,
            score=0.1667,
            band="missed",
            confidence="blocked",
            items=None,
            links=(),
            measure_kind="manual",
        ),
        key_result(
            id="LG-1.KR2",
            title="Publish the incident handbook",
            value=1,
            baseline=0,
            target=1,
            score=1.0,
            band="strong",
            confidence="on_track",
            too_easy=True,
            items=ItemCounts(selected=2, done=2),
            links=(f"{JIRA}/browse/OPS-4",),
            measure_kind="milestone",
        ),
    )
    objectives = (
        objective(
            id="CO-0",
            title="Become the default platform for mid-market & enterprise",
            perspective="financial",
            score=0.5164,
            band="progress",
            confidence="off_track",
            key_results=(),
        ),
        objective(parent="CO-0", key_results=co1_krs, score=0.5533, confidence="at_risk",
                  owner="Alice Ng"),
        objective(
            id="IP-1",
            title="Make releases boring",
            perspective="internal",
            parent="CO-0",
            score=0.4361,
            band="progress",
            confidence="off_track",
            key_results=ip1_krs,
        ),
        objective(
            id="LG-1",
            title="Grow the on-call bench",
            perspective="learning",
            score=0.5833,
            band="progress",
            confidence="blocked",
            weight=0.5,
            key_results=lg1_krs,
        ),
    )
    return Scorecard(
        cycle=cycle(),
        objectives=objectives,
        perspectives=(
            PerspectiveScore("financial", "Financial", 0.5164, "progress"),
            PerspectiveScore("customer", "Customer", 0.5533, "progress"),
            PerspectiveScore("internal", "Internal Processes", 0.4361, "progress"),
            PerspectiveScore("learning", "Learning & Growth", None, None),
        ),
        kpis=(
            KpiScore("NRR", "Net revenue retention", "financial", 104, "yellow"),
            KpiScore("CSAT", "Customer satisfaction", "customer", 4.6, "green"),
            KpiScore("MTTR", "Mean time to restore (hours)", "internal", 9.5, "red"),
            KpiScore("ENPS", "Employee NPS", "learning", None, None),
        ),
        changes=(
            Change(
                kr="CO-1.KR1",
                from_score=0.30,
                to_score=0.42,
                reasons=("+2 done", "+1 added to scope"),
                from_band="missed",
                to_band="progress",
                from_confidence="off_track",
                to_confidence="at_risk",
            ),
            Change(
                kr="IP-1.KR1",
                from_score=0.0,
                to_score=0.0,
                reasons=("ENT-310 reopened",),
                from_band="missed",
                to_band="missed",
                from_confidence="at_risk",
                to_confidence="off_track",
            ),
            Change(kr="LG-1.KR2", from_score=None, to_score=1.0, reasons=("new key result",)),
        ),
        warnings=(ScoringWarning("3 selected items have no story points", kr="CO-1.KR1"),),
    )


def previous_week(scorecard: Scorecard) -> Scorecard:
    """The same scorecard a week earlier: every score a little lower (for digests)."""

    def earlier(kr: KeyResultScore) -> KeyResultScore:
        return replace(kr, score=max(0.0, kr.score - (0.05 if kr.id.endswith("1") else 0.0)))

    objectives = tuple(
        replace(
            o,
            score=max(0.0, o.score - 0.04),
            key_results=tuple(earlier(kr) for kr in o.key_results),
        )
        for o in scorecard.objectives
    )
    return replace(scorecard, objectives=objectives, changes=())


def large_scorecard(
    *, key_results: int = 60, objectives: int = 12, title_length: int = 300
) -> Scorecard:
    """A plan with many KRs, long (hostile) titles and many links, spread over objectives."""
    filler = (HOSTILE_TITLE + " [x](https://evil.example) **bold** _it_ ") * (
        title_length // 20 + 1
    )
    title = filler[:title_length]
    krs_per_objective = [key_results // objectives] * objectives
    for index in range(key_results % objectives):
        krs_per_objective[index] += 1
    built: list[ObjectiveScore] = []
    kinds = ("done_ratio", "count", "manual", "milestone", "sum")
    confidences = ("on_track", "at_risk", "off_track", "blocked")
    for o_index, count in enumerate(krs_per_objective):
        krs = tuple(
            key_result(
                id=f"O{o_index}.KR{k}",
                title=f"{k} {title}",
                score=(k % 11) / 10,
                value=(k % 11) / 10,
                measure_kind=kinds[k % len(kinds)],
                confidence=confidences[k % len(confidences)],
                links=tuple(f"{JIRA}/browse/ENT-{100 * o_index + k * 7 + i}" for i in range(5)),
            )
            for k in range(count)
        )
        built.append(
            objective(
                id=f"O{o_index}",
                title=f"{o_index} {title}",
                parent="O0" if o_index else None,
                key_results=krs,
            )
        )
    base = realistic_scorecard()
    changes = tuple(
        Change(kr=kr.id, from_score=0.1, to_score=kr.score, reasons=(title, "+2 done"))
        for o in built
        for kr in o.key_results
    )
    perspectives = tuple(
        PerspectiveScore(f"p{i}", f"{i} {title}", 0.5, "progress") for i in range(14)
    )
    kpis = tuple(KpiScore(f"K{i}", f"{i} {title}", None, i * 1000.5, "red") for i in range(14))
    warnings = tuple(ScoringWarning(f"{i} {title}", kr=f"O0.KR{i}") for i in range(6))
    return replace(
        base,
        cycle=cycle(name=title),
        objectives=tuple(built),
        perspectives=perspectives,
        kpis=kpis,
        changes=changes,
        warnings=warnings,
    )


def hostile_scorecard(title: str = HOSTILE_TITLE) -> Scorecard:
    """The realistic scorecard with ``title`` in every plan- or Jira-supplied text."""
    base = realistic_scorecard()
    objectives = tuple(
        replace(
            o,
            title=f"{o.title} {title}",
            key_results=tuple(replace(kr, title=f"{kr.title} {title}") for kr in o.key_results),
        )
        for o in base.objectives
    )
    return replace(
        base,
        objectives=objectives,
        perspectives=tuple(replace(p, title=f"{p.title} {title}") for p in base.perspectives),
        kpis=tuple(replace(k, title=f"{k.title} {title}") for k in base.kpis),
        changes=tuple(replace(c, reasons=(*c.reasons, title)) for c in base.changes),
        warnings=tuple(replace(w, message=f"{w.message} {title}") for w in base.warnings),
    )
