"""The HTML scorecard: a pure function of ReportData (and its JSON/CSV twins)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest

from okr_sync.sync.delivery.render.report import render_html_report, report_csv, report_json
from okr_sync.sync.delivery.render.report.html import band_colours, safe_link
from okr_sync.sync.delivery.render.report.style import BAND_COLOURS
from support.html import local
from support.html import parse_strict as parse
from support.reports import report_data
from support.scorecards import JIRA, hostile_scorecard, key_result, objective

HOSTILE = '<script>alert(1)</script>" onload="alert(2)'


def test_render_html_report_given_realistic_data_parses_without_html5_errors() -> None:
    html = render_html_report(report_data())
    root = parse(html)
    assert html.startswith("<!doctype html>")
    assert root.find("head/meta[@name='viewport']") is not None
    # Self-contained: no script, no external stylesheet, font or image.
    assert not [e for e in root.iter() if local(e) in ("script", "link", "img", "iframe")]
    assert "http://" not in html.replace("http://www.w3.org", "")


def test_render_html_report_given_plan_shows_every_objective_kr_perspective_and_kpi() -> None:
    data = report_data()
    root = parse(render_html_report(data))
    card = data.scorecard

    def marked(attribute: str) -> set[str]:
        return {e.get(attribute) for e in root.iter() if e.get(attribute)}

    assert {o.id for o in card.objectives} <= marked("data-objective")
    assert {k.id for k in card.key_results()} == marked("data-kr")
    assert {p.id for p in card.perspectives} == marked("data-perspective")
    assert {k.id for k in card.kpis} == marked("data-kpi")


def test_render_html_report_given_history_draws_one_point_per_history_row() -> None:
    data = report_data()
    root = parse(render_html_report(data))
    charts = {}
    for section in root.iter("section"):
        kr = section.get("data-kr")
        if kr is None:
            continue
        svg = next(e for e in section.iter() if local(e) == "svg")
        line = next(e for e in svg.iter() if local(e) == "polyline")
        circles = [e for e in svg.iter() if local(e) == "circle"]
        charts[kr] = (len(line.get("points", "").split()), len(circles))
        assert svg.get("role") == "img" and svg.get("aria-labelledby")
        assert any(local(e) == "line" and e.get("class") == "pace" for e in svg.iter())
    assert charts == {kr: (len(rows), len(rows)) for kr, rows in data.history.items()}


def test_render_html_report_given_kr_without_history_draws_an_empty_chart() -> None:
    html = render_html_report(report_data(history={}))
    root = parse(html)
    lines = [e for e in root.iter() if local(e) == "polyline"]
    assert lines and all(e.get("points") == "" for e in lines)


def test_render_html_report_given_hostile_titles_keeps_them_inert_text() -> None:
    card = hostile_scorecard(HOSTILE)
    data = report_data(scorecard=card, objective_owners={"CO-1": HOSTILE},
                       checkins={"CO-1.KR1": ()})
    html = render_html_report(data)
    root = parse(html)
    assert not [e for e in root.iter() if local(e) == "script"]
    assert not [e for e in root.iter() if any(a.startswith("on") for a in e.attrib)]
    text = "".join(root.itertext())
    assert HOSTILE in text  # shown as text, not swallowed


def test_render_html_report_given_hostile_ids_keeps_attributes_closed() -> None:
    kr = key_result(id='K"1 onclick="x', links=())
    card = replace(report_data().scorecard,
                   objectives=(objective(id='O"1><b>', key_results=(kr,)),))
    root = parse(render_html_report(report_data(scorecard=card, history={})))
    assert {e.get("data-kr") for e in root.iter() if e.get("data-kr")} == {'K"1 onclick="x'}
    assert not [e for e in root.iter() if "onclick" in e.attrib]


def test_render_html_report_given_links_links_only_to_the_jira_site() -> None:
    kr = key_result(links=(f"{JIRA}/browse/ENT-1", "javascript:alert(1)",
                           "https://evil.example/browse/ENT-2", f"{JIRA}.evil.example/x"))
    card = replace(report_data().scorecard, objectives=(objective(key_results=(kr,)),))
    root = parse(render_html_report(report_data(scorecard=card)))
    hrefs = {e.get("href") for e in root.iter("a")}
    external = {h for h in hrefs if h and not h.startswith("#")}
    assert f"{JIRA}/browse/ENT-1" in external
    assert f"{JIRA}/browse/ENT-101" in external  # an item behind the KR
    assert all(h.startswith(JIRA + "/") for h in external)


def test_render_html_report_given_no_jira_site_renders_keys_without_links() -> None:
    root = parse(render_html_report(report_data(jira_sites=())))
    assert {e.get("href", "")[:1] for e in root.iter("a")} <= {"#"}


def test_render_html_report_given_items_collapses_them_with_table_headers() -> None:
    root = parse(render_html_report(report_data()))
    kr1 = next(s for s in root.iter("section") if s.get("data-kr") == "CO-1.KR1")
    details = kr1.find(".//details")
    assert details is not None and "Items behind CO-1.KR1 (3)" in "".join(
        details.find("summary").itertext())
    assert [th.text for th in details.iter("th")] == ["Issue", "Summary", "Status", "Points",
                                                      "Counted"]
    assert all(th.get("scope") == "col" for th in details.iter("th"))
    text = "".join(kr1.itertext())
    assert "5 of 13 pts done" in text  # done points of the counted items, in the KR's unit
    assert "+2 done" in text and "owner" in text


def test_render_html_report_given_checkins_shows_their_notes() -> None:
    root = parse(render_html_report(report_data()))
    kr3 = next(s for s in root.iter("section") if s.get("data-kr") == "CO-1.KR3")
    assert "by ana: value 4" in "".join(kr3.itertext())
    assert "two signed" in "".join(kr3.itertext())


def test_render_html_report_given_warnings_groups_them_collapsed_per_kr() -> None:
    from okr_sync.scoring.scorecard import ScoringWarning

    warnings = (ScoringWarning("a", kr="CO-1.KR1"), ScoringWarning("b", kr="CO-1.KR1"),
                ScoringWarning("c"))
    card = replace(report_data().scorecard, warnings=warnings)
    root = parse(render_html_report(report_data(scorecard=card)))
    section = next(s for s in root.iter("section") if s.get("aria-labelledby") == "warn-h")
    summaries = ["".join(d.find("summary").itertext()) for d in section.iter("details")]
    assert summaries == ["CO-1.KR1 (2)", "general (1)"]


def test_render_html_report_given_perspectives_lists_them_in_plan_order() -> None:
    root = parse(render_html_report(report_data()))
    order = [e.get("data-perspective") for e in root.iter("li") if e.get("data-perspective")]
    assert order == ["financial", "customer", "internal", "learning"]


def test_render_html_report_given_parent_links_draws_a_cascade_arrow_each() -> None:
    data = report_data()
    root = parse(render_html_report(data))
    arrows = {(e.get("data-from"), e.get("data-to")) for e in root.iter()
              if local(e) == "path" and e.get("class") == "cascade"}
    assert arrows == {(o.id, o.parent) for o in data.scorecard.objectives if o.parent}


def test_render_html_report_given_same_data_is_deterministic() -> None:
    assert render_html_report(report_data()) == render_html_report(report_data())


@pytest.mark.parametrize(("bands", "expected"), [
    (("missed", "progress", "strong"), BAND_COLOURS),
    (("low", "high"), (BAND_COLOURS[0], BAND_COLOURS[2])),
    (("only",), (BAND_COLOURS[2],)),
])
def test_band_colours_given_bands_runs_from_red_to_green(bands, expected) -> None:
    assert tuple(band_colours(bands).values()) == expected


@pytest.mark.parametrize(("url", "linked"), [
    (f"{JIRA}/browse/A-1", True), ("javascript:alert(1)", False),
    ("https://evil.example/browse/A-1", False), (f"{JIRA}.evil.example/browse/A-1", False),
    ("http://acme.atlassian.net/browse/A-1", False),
])
def test_safe_link_given_url_allows_only_the_jira_site(url: str, linked: bool) -> None:
    assert (safe_link(url, [JIRA]) is not None) is linked


def test_report_json_and_csv_given_same_data_carry_the_same_krs_and_values() -> None:
    data = report_data()
    doc = json.loads(report_json(data))
    rows = list(csv.DictReader(io.StringIO(report_csv(data))))
    json_krs = {r["id"]: r for r in doc["rows"] if r["kind"] == "key_result"}
    csv_krs = {r["id"]: r for r in rows if r["kind"] == "key_result"}
    assert set(json_krs) == set(csv_krs) == {k.id for k in data.scorecard.key_results()}
    for kr_id, row in json_krs.items():
        assert str(row["value"]) == csv_krs[kr_id]["value"]
        assert str(row["score"]) == csv_krs[kr_id]["score"]
        assert row["history_points"] == len(data.history[kr_id])
    assert {r["id"] for r in rows if r["kind"] == "kpi"} == {k.id for k in data.scorecard.kpis}
    assert len(doc["history"]["CO-1.KR1"]) == len(data.history["CO-1.KR1"])


def test_report_csv_given_formula_like_title_makes_it_inert() -> None:
    card = replace(report_data().scorecard,
                   objectives=(objective(title="=HYPERLINK(\"x\")", key_results=()),))
    rows = list(csv.DictReader(io.StringIO(report_csv(report_data(scorecard=card)))))
    assert next(r for r in rows if r["kind"] == "objective")["title"].startswith("'=")


def test_render_html_report_given_never_measured_kr_shows_dashes_not_zero() -> None:
    kr = replace(key_result(), value=None, score=None, band=None)
    card = replace(report_data().scorecard, objectives=(objective(key_results=(kr,)),))
    root = parse(render_html_report(report_data(scorecard=card, explanations={})))
    section = next(s for s in root.iter("section") if s.get("data-kr") == kr.id)
    text = "".join(section.itertext())
    assert "score\u2013" in text and "not measured yet" in text
    rows = list(csv.DictReader(io.StringIO(report_csv(report_data(scorecard=card)))))
    assert next(r for r in rows if r["id"] == kr.id)["score"] == ""


def test_render_html_report_given_stale_kr_shows_when_it_was_measured() -> None:
    from dataclasses import dataclass
    from datetime import datetime

    from okr_sync.scoring.scorecard import KeyResultScore

    @dataclass(frozen=True)
    class MeasuredKr(KeyResultScore):  # the fields scoring is adding to KR scores
        measured_at: datetime | None = None
        stale: bool = False

    kr = MeasuredKr(**{**key_result().__dict__, "measured_at": datetime(2026, 11, 2, 9, 30),
                       "stale": True})
    card = replace(report_data().scorecard, objectives=(objective(key_results=(kr,)),))
    root = parse(render_html_report(report_data(scorecard=card)))
    section = next(s for s in root.iter("section") if s.get("data-kr") == kr.id)
    assert "2026-11-02T09:30 stale" in "".join(section.itertext())
