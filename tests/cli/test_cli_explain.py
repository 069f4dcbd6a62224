"""`okr-sync explain` against the sandboxes: the arithmetic of KRs, objectives,
perspectives and KPIs (the same numbers as `status`), the items that changed since the
last pass, and one JSON document."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.arithmetic import num

runner = CliRunner()


def _invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def _explain_json(env: dict[str, str], item_id: str) -> dict:
    result = _invoke(env, "explain", item_id, "--output", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # exactly one document: loads refuses anything after it


def test_explain_given_every_plan_id_shows_the_numbers_status_shows(env) -> None:
    assert _invoke(env, "run").exit_code == 0
    status = json.loads(_invoke(env, "status", "--output", "json").stdout)["scorecard"]
    plan = load_plan(env["OKR_SYNC_PLAN"])
    for objective in status["objectives"]:
        doc = _explain_json(env, objective["id"])
        assert (doc["kind"], doc["score"]["value"], doc["band"], doc["confidence"]["value"]) \
            == ("objective", objective["score"], objective["band"], objective["confidence"])
        for kr in objective["key_results"]:
            mine = _explain_json(env, kr["id"])
            assert (mine["value"]["value"], mine["score"]["value"], mine["band"],
                    mine["confidence"]["value"]) == (
                kr["value"], kr["score"], kr["band"], kr["confidence"]), kr["id"]
            assert mine["notes"] == []
    for perspective in status["perspectives"]:
        doc = _explain_json(env, perspective["id"])
        assert (doc["score"]["value"], doc["band"]) == (perspective["score"],
                                                        perspective["band"])
    for kpi in status["kpis"]:
        doc = _explain_json(env, kpi["id"])
        assert (doc["value"], doc["status"]) == (kpi["value"], kpi["status"])
    assert {o["id"] for o in status["objectives"]} == {o.id for o in plan.objectives}


def test_explain_given_story_point_kr_writes_its_value_formula_from_its_items(env) -> None:
    assert _invoke(env, "run").exit_code == 0
    doc = _explain_json(env, "CO-1.KR1")  # done_ratio by story points
    counted = [i for i in doc["items"] if i["counted"] != "excluded_frozen"]
    done = sum(i["points"] or 0 for i in counted if i["done"])
    total = sum(i["points"] or 0 for i in counted)
    assert doc["value"]["formula"].startswith(
        f"{num(done)} done pts / {num(total)} pts = {num(done / total)}")
    assert doc["score"]["formula"] == (
        f"(v - b)/(t - b) = ({num(done / total)} - 0)/(1 - 0) = {num(done / total)}")
    assert doc["confidence"]["formula"].startswith(f"elapsed f = {num(doc['elapsed'])}")
    text = _invoke(env, "explain", "CO-1.KR1")
    assert f"{num(done)} done pts / {num(total)} pts" in text.stdout
    assert "projected = min(1, " in text.stdout or "too early" in text.stdout


def test_explain_given_items_changed_lists_added_done_reopened_and_left(env, world) -> None:
    assert _invoke(env, "run").exit_code == 0
    before = {i["key"]: i for i in _explain_json(env, "CO-1.KR1")["items"]}
    dataset = world.dataset
    open_keys = sorted((k for k, i in before.items() if not i["done"]),
                       key=lambda k: int(k.split("-")[1]))
    done_keys = sorted((k for k, i in before.items() if i["done"]),
                       key=lambda k: int(k.split("-")[1]))
    dataset.advance(timedelta(minutes=20))
    finished, reopened, dropped = open_keys[0], done_keys[0], open_keys[1]
    dataset.transition(dataset.resolve_key(finished), "done")
    dataset.reopen(dataset.resolve_key(reopened))
    dataset.update(dataset.resolve_key(dropped), labels=[])
    added = dataset.add_issue("ENT", labels=["sso"], story_points=3).key
    assert _invoke(env, "run").exit_code == 0

    changed = _explain_json(env, "CO-1.KR1")["changed_since_last_pass"]
    assert (changed["added"], changed["done"], changed["reopened"], changed["left"]) == (
        [added], [finished], [reopened], [dropped])
    assert changed["reasons"] == ["+1 done", "-1 reopened", "+1 added to scope",
                                  "-1 removed from scope"]
    text = _invoke(env, "explain", "CO-1.KR1").stdout
    assert f"  added: {added}" in text and f"  left: {dropped}" in text


def test_explain_given_no_pass_yet_says_so_in_text_and_json(env) -> None:
    assert _invoke(env, "db", "upgrade").exit_code == 0
    assert _explain_json(env, "CO-1") == {
        "kind": "objective", "id": "CO-1", "title": "Win the enterprise segment", "scored": False,
        "message": "not scored yet: run `okr-sync run` first"}
    text = _invoke(env, "explain", "NRR").stdout
    assert "NRR Net revenue retention" in text and "not scored yet" in text


def test_explain_given_unknown_objective_like_id_suggests_it(env) -> None:
    result = _invoke(env, "explain", "co-1")
    assert result.exit_code == 2
    assert "did you mean CO-1" in result.stderr
