from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr_sync.scoring.rollup import CheckIn, MeasuredValue, ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import ItemCounts
from support.plan_builders import PlanBuilder, manual_kr, objective

AS_OF = datetime(2026, 11, 16, tzinfo=UTC)  # exactly half of 2026-Q4


def test_build_scorecard_given_checkin_value_and_confidence_they_win() -> None:
    plan = PlanBuilder().with_objective(
        objective("O", manual_kr("O.1", target=10, current=2))).build()
    card = build_scorecard(ScoringInput(plan, AS_OF, checkins={
        "O.1": CheckIn(value=8, confidence="blocked")}))
    kr = card.key_result("O.1")
    assert (kr.value, kr.score, kr.confidence) == (8, 0.8, "blocked")
    assert card.objective("O").confidence == "blocked"


def test_build_scorecard_given_manual_kr_without_value_warns_and_uses_baseline() -> None:
    plan = PlanBuilder().with_objective(objective("O", manual_kr("O.1", target=10))).build()
    card = build_scorecard(ScoringInput(plan, AS_OF))
    assert card.key_result("O.1").score == 0
    assert [w.kr for w in card.warnings] == ["O.1"]


def test_build_scorecard_given_measured_value_uses_it_with_items() -> None:
    plan = PlanBuilder().with_objective(objective("O", {
        "id": "O.1", "title": "t", "measure": {"kind": "done_ratio", "jql": "project = ENT"}})
    ).build()
    card = build_scorecard(ScoringInput(plan, AS_OF, measured={
        "O.1": MeasuredValue(0.25, ItemCounts(8, 2), warnings=("2 items unestimated",))}))
    kr = card.key_result("O.1")
    assert (kr.value, kr.score, kr.baseline, kr.target) == (0.25, 0.25, 0, 1)
    assert kr.items == ItemCounts(8, 2)
    assert card.to_json()["warnings"] == [{"kr": "O.1", "message": "2 items unestimated"}]


def test_build_scorecard_given_past_perfect_cycles_flags_too_easy() -> None:
    plan = PlanBuilder().with_objective(
        objective("O", manual_kr("O.1", target=10, current=10))).build()
    card = build_scorecard(ScoringInput(plan, AS_OF, past_cycle_scores={"O.1": [1.0, 1.0]}))
    assert card.key_result("O.1").too_easy
    assert card.to_json()["objectives"][0]["key_results"][0]["too_easy"] is True


@given(
    value=st.floats(min_value=0, max_value=20),
    kr_weight=st.floats(min_value=0.1, max_value=10),
    obj_weight=st.floats(min_value=0.1, max_value=10),
)
def test_build_scorecard_given_single_contributor_rolls_up_to_it(value, kr_weight, obj_weight):
    plan = (
        PlanBuilder()
        .with_objective(objective("TOP", manual_kr("TOP.1", target=10, current=3)))
        .with_objective(objective("ONLY", manual_kr("ONLY.1", target=10, current=value,
                                                    weight=kr_weight), parent="TOP",
                                  weight=obj_weight))
        .with_objective(objective("CHAIN", parent="ONLY", weight=0))
        .with_objective(objective("LEAF", manual_kr("LEAF.1", target=1, current=0), parent="CHAIN"))
        .build()
    )
    card = build_scorecard(ScoringInput(plan, AS_OF))
    only = card.objective("ONLY")
    assert only.score == pytest.approx(card.key_result("ONLY.1").score)
    assert card.objective("CHAIN").score == card.key_result("LEAF.1").score


@given(scores=st.lists(st.floats(min_value=0, max_value=10), min_size=2, max_size=6),
       weight=st.floats(min_value=0.1, max_value=50))
def test_build_scorecard_given_equal_weights_scale_free(scores, weight) -> None:
    krs = [manual_kr(f"O.{i}", target=10, current=s, weight=weight) for i, s in enumerate(scores)]
    plan = PlanBuilder().with_objective(objective("O", *krs)).build()
    card = build_scorecard(ScoringInput(plan, AS_OF))
    assert card.objective("O").score == pytest.approx(sum(scores) / 10 / len(scores))


def test_scorecard_json_given_round_trip_keeps_everything_renderers_use() -> None:
    from okr_sync.scoring.scorecard import Change, scorecard_from_json

    plan = PlanBuilder().with_objective(objective("O", manual_kr("O.1", target=10, current=4), {
        "id": "O.2", "title": "jira", "measure": {"kind": "count", "jql": "project = ENT"},
        "baseline": 10, "target": 0})).with_kpi({"id": "K", "title": "k", "value": 3,
                                                 "thresholds": {"green": 5, "yellow": 2}}).build()
    card = build_scorecard(ScoringInput(plan, AS_OF, measured={
        "O.2": MeasuredValue(4, ItemCounts(4, 0), links=("https://jira.test/issues/?jql=x",))}))
    card = replace(card, changes=(Change("O.2", 0.5, 0.6, ("+1 done",), "progress", "progress",
                                         "at_risk", "on_track"),))
    again = scorecard_from_json(card.to_json())
    assert again.to_json() == card.to_json()
    assert again.key_result("O.2").links == ("https://jira.test/issues/?jql=x",)
    assert again.key_result("O.2").measure_kind == "count"
    assert again.changes[0].to_confidence == "on_track"


def _jira_kr(kr_id: str, **extra: object) -> dict[str, object]:
    return {"id": kr_id, "title": "t", "measure": {"kind": "done_ratio", "jql": "project = ENT"},
            **extra}


def test_build_scorecard_given_stale_after_flags_a_measurement_older_than_it() -> None:
    plan = (PlanBuilder().with_objective(objective("O", _jira_kr("O.1"), _jira_kr("O.2")))
            .set("notify", {"stale_after": "2d"}).build())
    measured = {
        "O.1": MeasuredValue(0.5, measured_at=AS_OF - timedelta(days=3)),
        "O.2": MeasuredValue(0.5, measured_at=AS_OF - timedelta(days=1)),
    }
    card = build_scorecard(ScoringInput(plan, AS_OF, measured=measured))
    assert card.key_result("O.1").stale and not card.key_result("O.2").stale
    assert card.key_result("O.1").to_json()["measured_at"] == "2026-11-13T00:00:00+00:00"
    assert [(w.kr, w.message) for w in card.warnings] == [
        ("O.1", "measured 3d ago, older than notify.stale_after")]
    # A stale KR still counts with its last value: it is known, only old.
    assert card.objective("O").score == 0.5


def test_build_scorecard_given_jira_kr_never_measured_is_null_and_left_out_of_the_mean() -> None:
    plan = PlanBuilder().with_objective(
        objective("O", _jira_kr("O.1"), _jira_kr("O.2", weight=3))).build()
    card = build_scorecard(ScoringInput(plan, AS_OF, measured={"O.1": MeasuredValue(0.8)}))
    doc = card.to_json()["objectives"][0]
    missing = doc["key_results"][1]
    assert (missing["value"], missing["score"], missing["band"], missing["confidence"],
            missing["measured_at"], missing["stale"]) == (None, None, None, None, None, False)
    assert doc["score"] == 0.8 and doc["band"] == "strong"
    assert ("O", "mean leaves out, not measured: O.2") in [
        (w.kr, w.message) for w in card.warnings]


def test_build_scorecard_given_no_contributor_measured_objective_and_perspective_are_null() -> None:
    plan = PlanBuilder().with_objective(
        objective("O", _jira_kr("O.1"), perspective="customer")).build()
    card = build_scorecard(ScoringInput(plan, AS_OF))
    assert (card.objective("O").score, card.objective("O").band) == (None, None)
    customer = next(p for p in card.perspectives if p.id == "customer")
    assert (customer.score, customer.band) == (None, None)


def test_build_scorecard_given_manual_kr_is_measured_at_its_checkin_and_stale_after_it() -> None:
    plan = (PlanBuilder().with_objective(objective("O", manual_kr("O.1", target=10, current=1)))
            .set("notify", {"stale_after": "2d"}).build())
    old = AS_OF - timedelta(days=5)
    card = build_scorecard(ScoringInput(plan, AS_OF, checkins={"O.1": CheckIn(value=4, at=old)}))
    kr = card.key_result("O.1")
    assert (kr.value, kr.measured_at, kr.stale) == (4, old, True)
    from_plan = build_scorecard(ScoringInput(plan, AS_OF)).key_result("O.1")
    assert (from_plan.measured_at, from_plan.stale) == (AS_OF, False)


def test_build_scorecard_given_deep_cascade_finds_children_without_scanning_per_objective(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from okr_sync.config.plan import Plan

    root = objective("O0", manual_kr("O0.KR1", target=10, current=5))
    builder = PlanBuilder().with_objective(root)
    for n in range(1, 30):
        kr = manual_kr(f"O{n}.KR1", target=10, current=n % 10)
        builder = builder.with_objective(objective(f"O{n}", kr, parent=f"O{n - 1}"))
    plan = builder.build()
    expected = build_scorecard(ScoringInput(plan=plan, as_of=AS_OF))

    def scan(self: Plan, objective_id: str) -> list[object]:
        raise AssertionError("Plan.children scans every objective: quadratic in a roll-up")

    monkeypatch.setattr(Plan, "children", scan)
    scorecard = build_scorecard(ScoringInput(plan=plan, as_of=AS_OF))

    assert scorecard == expected
    assert scorecard.objectives[0].score is not None


def test_build_scorecard_given_owners_people_points_and_note_carries_them_round_trip() -> None:
    from okr_sync.scoring.scorecard import scorecard_from_json

    noted = datetime(2026, 11, 14, 16, 0, tzinfo=UTC)
    plan = (
        PlanBuilder()
        .set("people", {"alice": {"name": "Alice Ng", "slack": "U0ALICE01"}})
        .with_objective(objective(
            "O",
            manual_kr("O.1", target=10, current=4),
            _jira_kr("O.2", owner="Ops guild"),
            {"id": "O.3", "title": "pts", "target": 1,
             "measure": {"kind": "done_ratio", "unit": "story_points", "jql": "project = ENT"}},
            owner="alice"))
        .build()
    )
    card = build_scorecard(ScoringInput(plan, AS_OF, measured={
        "O.2": MeasuredValue(0.5, ItemCounts(4, 2)),
        "O.3": MeasuredValue(65 / 144, ItemCounts(20, 9, 65, 144)),
    }, checkins={"O.1": CheckIn(note="vendor signed", note_at=noted)}))

    assert card.objective("O").owner == "Alice Ng"  # the people name, not the key
    assert [kr.owner for kr in card.key_results()] == ["Alice Ng", "Ops guild", "Alice Ng"]
    assert card.key_result("O.3").unit == "story_points"
    assert card.key_result("O.2").unit is None
    assert card.key_result("O.1").checkin_note == "vendor signed"
    doc = card.to_json()
    assert doc["objectives"][0]["owner"] == "Alice Ng"
    assert doc["objectives"][0]["key_results"][2]["items"]["points"] == {"done": 65,
                                                                        "total": 144}
    again = scorecard_from_json(doc)
    assert again.to_json() == doc
    assert again.key_result("O.1").checkin_note_at == noted
    assert again.key_result("O.3").items == ItemCounts(20, 9, 65, 144)


def test_unique_warnings_given_repeats_and_explained_unmeasured_keeps_each_once() -> None:
    from okr_sync.scoring.rollup import NOT_MEASURED_YET, unique_warnings
    from okr_sync.scoring.scorecard import ScoringWarning

    warnings = [
        ScoringWarning("3 selected items have no story points", kr="A"),
        ScoringWarning(NOT_MEASURED_YET, kr="B"),
        ScoringWarning("3 selected items have no story points", kr="A"),
        ScoringWarning("could not be measured: JQL refused", kr="B"),
        ScoringWarning(NOT_MEASURED_YET, kr="C"),
        ScoringWarning("3 selected items have no story points", kr="D"),
    ]
    assert unique_warnings(warnings) == (
        ScoringWarning("3 selected items have no story points", kr="A"),
        ScoringWarning("could not be measured: JQL refused", kr="B"),
        ScoringWarning(NOT_MEASURED_YET, kr="C"),
        ScoringWarning("3 selected items have no story points", kr="D"),
    )
