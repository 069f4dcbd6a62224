"""Report data builders: a realistic scorecard with history, items and check-ins."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from okr_sync.scoring.measures import Contribution
from okr_sync.sync.delivery.render.report.data import (
    CheckinNote,
    HistoryPoint,
    KpiInfo,
    KrInfo,
    ReportData,
)
from okr_sync.sync.state import Explanation
from support.scorecards import AS_OF, JIRA, realistic_scorecard


def history(rows: int, *, step: float = 0.05) -> tuple[HistoryPoint, ...]:
    """``rows`` daily points ending at the scorecard's ``as_of``."""
    return tuple(HistoryPoint(AS_OF - timedelta(days=rows - 1 - n), n * step, min(1.0, n * step))
                 for n in range(rows))


def item(key: str, *, done: bool, points: float | None = 3, summary: str = "SSO for plan"
         ) -> Contribution:
    return Contribution(id=key.split("-")[1], key=key, summary=summary,
                        status="Done" if done else "In Progress", project=key.split("-")[0],
                        done=done, points=points, amount=None, counted="done" if done else "open")


def report_data(**overrides: Any) -> ReportData:
    """The realistic scorecard, each KR with a different number of history rows (the
    first the most)."""
    card = realistic_scorecard()
    krs = card.key_results()
    base = ReportData(
        scorecard=card,
        scored_at=AS_OF,
        explanations={
            "CO-1.KR1": Explanation(
                jql="parent = ENT-100", reasons=("+2 done",),
                items=(item("ENT-101", done=True, points=5), item("ENT-102", done=False, points=8),
                       item("ENT-103", done=True, points=None))),
            "CO-1.KR2": Explanation(jql="project = SUP AND priority = Highest", count=12),
        },
        history={kr.id: history(len(krs) - n, step=0.06) for n, kr in enumerate(krs)},
        checkins={"CO-1.KR3": (CheckinNote(AS_OF, value=4, note="two signed", author="ana"),)},
        krs={kr.id: KrInfo(owner="ana", unit="points" if kr.id == "CO-1.KR1" else None)
             for kr in krs},
        kpis={"NRR": KpiInfo(unit="%", green=110, yellow=100)},
        objective_owners={"CO-1": "bo"},
        jira_sites=(JIRA,),
    )
    return replace(base, **overrides)
