"""Owners, mentions, Teams summaries and warnings routing in the messages a pass plans."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from okr_sync.config.plan import Plan
from okr_sync.scoring.rollup import ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import Change, Scorecard, ScoringWarning
from okr_sync.sync.delivery.messages import plan_contacts, plan_messages, plan_scheduled
from okr_sync.sync.store.store import Store
from support.plan_builders import PlanBuilder, manual_kr, objective

_NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
ALICE_SLACK = "U0ALICE01"
ALICE_TEAMS = "8f0c2a4e-5b1d-4c7a-9e3f-1a2b3c4d5e6f"
SLACK = "C0000000001"
BOT = "19:team@thread.tacv2"


def _plan(**notify: Any) -> Plan:
    builder = (
        PlanBuilder()
        .with_objective(objective(
            "O-1",
            manual_kr("O-1.KR1", target=10, current=4),
            manual_kr("O-1.KR2", target=10, current=6, owner="Ops guild"),
            owner="alice", notify=["team"]))
        .set("people", {"alice": {"name": "Alice Ng", "slack": ALICE_SLACK,
                                  "teams": ALICE_TEAMS}})
        .set("routes", {"team": [{"slack": {"channel": SLACK}},
                                 {"teams_bot": {"conversation_id": BOT}}]})
    )
    if notify:
        builder.set("notify", notify)
    return builder.build()


def _news(plan: Plan) -> Scorecard:
    card = build_scorecard(ScoringInput(plan=plan, as_of=_NOW))
    return replace(
        card,
        changes=(Change("O-1.KR1", 0.2, 0.4, ("check-in",)),
                 Change("O-1.KR2", 0.5, 0.6, ("check-in",))),
        warnings=(ScoringWarning("3 selected items have no story points", kr="O-1.KR1"),),
    )


def _planned(store: Store, plan: Plan) -> dict[tuple[str, str], dict[str, Any]]:
    store.set_message_ref(f"slack:{SLACK}", channel=SLACK, message_id="1.0")
    store.set_message_ref(f"teams_bot:{BOT}", channel=BOT, message_id="a1")
    return {(m.target.split(":")[0], m.kind): m.payload
            for m in plan_messages(plan, _news(plan), store)}


def _entities(card: dict[str, Any]) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = card.get("msteams", {}).get("entities", [])
    return entities


def test_plan_messages_given_people_mentions_owners_in_change_notes_only(store: Store) -> None:
    planned = _planned(store, _plan())

    standing_slack = json.dumps(planned[("slack", "scorecard")])
    note_slack = json.dumps(planned[("slack", "change_note")])
    assert "owner Alice Ng" in standing_slack  # the standing message names the owner...
    assert "<@" not in standing_slack  # ...but never pings: it is edited on every sync
    assert f"owner <@{ALICE_SLACK}>" in note_slack
    assert "owner Ops guild" in note_slack  # free text: named, not mentioned

    standing_card = planned[("teams_bot", "scorecard")]["card"]
    note_card = planned[("teams_bot", "change_note")]["card"]
    assert _entities(standing_card) == [] and "<at>" not in json.dumps(standing_card)
    assert _entities(note_card) == [{
        "type": "mention", "text": "<at>Alice Ng</at>",
        "mentioned": {"id": ALICE_TEAMS, "name": "Alice Ng"},
    }]
    # The mention text sits in a TextBlock (Teams resolves <at> there), once per entity.
    blocks = [b["text"] for c in note_card["body"] if c["type"] == "Container"
              for b in c["items"] if b["type"] == "TextBlock"]
    assert "owner <at>Alice Ng</at>" in blocks


def test_plan_scheduled_given_people_mentions_owners_in_reminders() -> None:
    plan = _plan()
    card = build_scorecard(ScoringInput(plan=plan, as_of=_NOW))

    reminders = {m.target.split(":")[0]: m.payload
                 for m in plan_scheduled(plan, card, "reminder")}

    assert f"<@{ALICE_SLACK}>" in json.dumps(reminders["slack"])
    assert [e["mentioned"]["id"] for e in _entities(reminders["teams_bot"]["card"])] == [
        ALICE_TEAMS]
    digest = [m.payload for m in plan_scheduled(plan, card, "digest")]
    assert "<@" not in json.dumps(digest) and "msteams" not in json.dumps(digest)


def test_plan_contacts_given_owner_without_chat_ids_has_no_contact() -> None:
    plan = (
        PlanBuilder()
        .with_objective(objective("O-1", manual_kr("O-1.KR1", target=1, owner="bob"),
                                  manual_kr("O-1.KR2", target=1)))
        .set("people", {"bob": {"name": "Bob Ray"}})
        .build()
    )
    assert plan_contacts(plan) == {}


def test_plan_messages_given_teams_target_carries_a_notification_summary(store: Store) -> None:
    planned = _planned(store, _plan())

    assert planned[("teams_bot", "scorecard")]["summary"] == (
        "OKR scorecard · 2026-Q4: 2 on track")
    summary = planned[("teams_bot", "change_note")]["summary"]
    assert summary.startswith("2 key results changed: O-1.KR1 KR O-1.KR1: 20% → 40% (+20 pp)")


def test_plan_messages_given_default_keeps_warnings_out_of_channels(store: Store) -> None:
    planned = _planned(store, _plan())

    for payload in planned.values():
        assert "no story points" not in json.dumps(payload)


def test_plan_messages_given_warnings_channel_opt_in_shows_them(store: Store) -> None:
    planned = _planned(store, _plan(warnings="channel"))

    assert "no story points" in json.dumps(planned[("slack", "scorecard")])
    assert "no story points" in json.dumps(planned[("teams_bot", "scorecard")])


def _with_workflow(plan: Plan) -> Plan:
    targets = [*plan.routes["team"], {"teams_workflow": {"url_env": "OKR_SYNC_TEST_FLOW"}}]
    return Plan.model_validate({**plan.model_dump(mode="python"),
                                "routes": {"team": [
                                    t if isinstance(t, dict) else t.model_dump(exclude_none=True)
                                    for t in targets]}})


def test_plan_scheduled_given_checkin_form_puts_it_on_bot_reminders_only() -> None:
    plan = _with_workflow(_plan())
    card = build_scorecard(ScoringInput(plan=plan, as_of=_NOW))

    with_form = {m.target.split(":")[0]: json.dumps(m.payload)
                 for m in plan_scheduled(plan, card, "reminder", checkin_form=True)}
    without = {m.target.split(":")[0]: json.dumps(m.payload)
               for m in plan_scheduled(plan, card, "reminder")}

    assert '"Action.Execute"' in with_form["teams_bot"]
    assert '"Action.Execute"' not in with_form["teams_workflow"]  # no endpoint to answer it
    assert all('"Action.Execute"' not in payload for payload in without.values())


def test_plan_messages_given_checkin_form_puts_it_on_bot_change_notes(store: Store) -> None:
    plan = _plan()
    store.set_message_ref(f"teams_bot:{BOT}", channel=BOT, message_id="a1")
    notes = [m.payload for m in plan_messages(plan, _news(plan), store, checkin_form=True)
             if m.kind == "change_note" and m.target.startswith("teams_bot")]
    assert len(notes) == 1
    assert json.dumps(notes[0]).count('"Action.Execute"') == 2  # one form per changed KR
