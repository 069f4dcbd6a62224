"""How range, phased and over-achieving KRs read in Slack, Teams, the HTML report and
its spreadsheet export."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from okr_sync.scoring.scorecard import KeyResultScore, Scorecard, TargetRange
from okr_sync.sync.delivery.render.common import kr_pace_text, kr_value_text
from okr_sync.sync.delivery.render.report.html import render_html_report
from okr_sync.sync.delivery.render.report.tabular import report_rows
from okr_sync.sync.delivery.render.slack import render_slack_scorecard
from okr_sync.sync.delivery.render.teams import render_teams_scorecard_card
from support.reports import report_data
from support.scorecards import key_result, realistic_scorecard

RANGE = key_result(value=23, baseline=None, target=TargetRange(10, 20), score=0.4,
                   direction="range", tolerance=5, measure_kind="count", items=None)
PHASED = key_result(value=36, target=100, score=0.36, measure_kind="count", items=None,
                    expected=55)


def _with_first_kr(kr: KeyResultScore) -> Scorecard:
    """The realistic scorecard with its first KR replaced by ``kr`` (same id)."""
    card = realistic_scorecard()
    index, holder = next((i, o) for i, o in enumerate(card.objectives) if o.key_results)
    kr = replace(kr, id=holder.key_results[0].id)
    objectives = list(card.objectives)
    objectives[index] = replace(holder, key_results=(kr, *holder.key_results[1:]))
    return replace(card, objectives=tuple(objectives))


def test_kr_value_text_given_range_kr_shows_the_range() -> None:
    assert kr_value_text(RANGE) == "23 (stay within 10 to 20)"


def test_kr_pace_text_given_phased_kr_follows_its_milestones_not_the_even_pace() -> None:
    # 55 of 100 expected by the milestone path while the even pace says 49 %.
    assert kr_pace_text(PHASED, 0.4891) == "expected 55% by now"
    assert kr_pace_text(replace(PHASED, expected=None), 0.4891) == "expected 49% by now"
    decreasing = replace(PHASED, baseline=40, target=0, value=37, expected=30)
    assert kr_pace_text(decreasing, 0.4891) == "expected 25% by now"
    assert kr_pace_text(RANGE, 0.4891) is None  # stay-between: no pace


def test_kr_value_text_given_over_achievement_shows_the_value() -> None:
    kr = key_result(value=125, target=100, score=1.25, score_cap=1.25, measure_kind="count",
                    items=None)
    assert kr_value_text(kr) == "125 / 100"


def test_render_slack_and_teams_given_range_kr_show_the_range_not_a_number() -> None:
    card = _with_first_kr(RANGE)
    slack = json.dumps(render_slack_scorecard(card).to_json()["blocks"], ensure_ascii=False)
    teams = json.dumps(render_teams_scorecard_card(card), ensure_ascii=False)
    assert "stay within 10 to 20" in slack
    assert "stay within 10 to 20" in teams


def test_render_html_report_given_range_and_phased_krs_show_targets() -> None:
    card = _with_first_kr(RANGE)
    html = render_html_report(report_data(scorecard=card))
    assert "stay within 10 to 20" in html
    phased = _with_first_kr(replace(PHASED, measure_kind="sum"))
    assert "55 expected by now" in render_html_report(report_data(scorecard=phased))


def test_report_rows_given_range_kr_writes_min_max_in_one_cell() -> None:
    card = _with_first_kr(RANGE)
    rows = report_rows(report_data(scorecard=card))
    kr_id = next(o for o in card.objectives if o.key_results).key_results[0].id
    first = next(r for r in rows if r["id"] == kr_id)
    assert (first["target"], first["baseline"]) == ("10..20", None)


def test_kr_value_text_given_range_on_a_ratio_shows_percentages() -> None:
    kr = replace(RANGE, value=0.93, target=TargetRange(0.9, 0.95), measure_kind="done_ratio")
    assert kr_value_text(kr) == "93% (stay within 90% to 95%)"


def test_render_html_report_given_phased_kr_bends_the_burnup_pace_at_milestones() -> None:
    phased = replace(PHASED, measure_kind="sum", baseline=0,
                     milestones=((date(2026, 10, 30), 40), (date(2026, 11, 30), 70)))
    html = render_html_report(report_data(scorecard=_with_first_kr(phased)))
    # 272 x 72 plot from (24, 24): due 2026-10-31 00:00 is day 30 of 92, score 0.4;
    # due 2026-12-01 00:00 day 61, score 0.7.
    assert ('<polyline class="pace" points="24.0,96.0 112.7,67.2 204.3,45.6 296.0,24.0"'
            in html)
    assert html.count('<line class="pace"') == len(realistic_scorecard().key_results()) - 1
