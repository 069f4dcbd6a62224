"""One rounding rule everywhere: the same scorecard reads the same on every surface.

Slack, Teams, the HTML report and the console (`run`/`status` text) all show a score
through :func:`okr_sync.scoring.display.percent`, half up: 32.5 % is "33%" on each,
never "32%" on one of them (Python's ``round`` and ``:.0%`` round half to even).
"""

from __future__ import annotations

import io
import json

from rich.console import Console

from okr_sync.cli.console import print_scorecard
from okr_sync.scoring.scorecard import ItemCounts, Scorecard
from okr_sync.sync.delivery.render import render_slack_scorecard, render_teams_scorecard_card
from okr_sync.sync.delivery.render.report import render_html_report
from support.reports import report_data
from support.scorecards import cycle, key_result, objective


def _scorecard() -> Scorecard:
    kr = key_result(id="K-1", title="Halfway KR", value=0.325, score=0.325,
                    items=ItemCounts(40, 13), confidence="on_track")
    other = key_result(id="K-2", title="Other KR", value=0.285, score=0.285,
                       items=ItemCounts(200, 57), confidence="at_risk")
    return Scorecard(
        cycle=cycle(elapsed=0.125),
        objectives=(objective(id="O-1", score=0.285, key_results=(kr, other)),),
    )


def _surfaces(card: Scorecard) -> dict[str, str]:
    console = io.StringIO()
    print_scorecard(card, Console(file=console, width=200, color_system=None))
    slack = render_slack_scorecard(card).to_json()
    teams = render_teams_scorecard_card(card)
    html = render_html_report(report_data(scorecard=card, explanations={}, history={},
                                          checkins={}))
    return {
        "slack": json.dumps(slack, ensure_ascii=False),
        "teams": json.dumps(teams, ensure_ascii=False),
        "report": html,
        "console": console.getvalue(),
    }


def test_surfaces_given_half_percent_scores_show_the_same_rounded_text() -> None:
    for surface, text in _surfaces(_scorecard()).items():
        assert "33%" in text, surface  # K-1 at 32.5 %
        assert "29%" in text, surface  # K-2 and O-1 at 28.5 %
        assert "13%" in text, surface  # 12.5 % of the cycle elapsed
        assert "32%" not in text and "28%" not in text and "12%" not in text, surface
