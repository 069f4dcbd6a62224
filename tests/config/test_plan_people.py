"""``people:``, ``owner:`` and ``notify.warnings`` in the plan file."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan_text, plan_json_schema
from support.plan_builders import PlanBuilder, manual_kr, objective

_HEAD = """version: 1
cycle: {name: "2026-Q4", start: 2026-10-01, end: 2026-12-31, timezone: UTC}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, name="plan.yaml")
    return [str(issue) for issue in caught.value.issues]


def _plan_with(people: str, owner: str = "alice") -> str:
    return _HEAD + people + f"""objectives:
  - id: O1
    title: t
    owner: {owner}
    key_results:
      - {{id: K1, title: k, measure: {{kind: manual}}, target: 3}}
"""


def test_load_plan_given_people_resolves_owner_names_and_ids() -> None:
    plan = load_plan_text(_plan_with(
        "people:\n  alice: {name: Alice Ng, slack: U012AB3CD,"
        " teams: 8f0c2a4e-5b1d-4c7a-9e3f-1a2b3c4d5e6f}\n"))

    person = plan.person("alice")
    assert person is not None and person.slack == "U012AB3CD"
    assert person.teams == "8f0c2a4e-5b1d-4c7a-9e3f-1a2b3c4d5e6f"
    assert plan.owner_name("alice") == "Alice Ng"
    assert plan.owner_name("Platform team") == "Platform team"  # free text as written


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        ("{slack: '@alice'}", "people.alice.slack: '@alice' is not a Slack member id"),
        ("{slack: C0123456789}", "people.alice.slack: 'C0123456789' is not a Slack member"),
        ("{teams: alice@example.com}",
         "people.alice.teams: 'alice@example.com' is not a Microsoft Entra object id"),
        ("{slak: U012AB3CD}", "people.alice.slak: unknown key"),
        ("{name: ''}", "people.alice.name: String should have at least 1 character"),
    ],
)
def test_load_plan_given_ill_formed_person_names_it_at_its_position(
    person: str, expected: str
) -> None:
    errors = _errors(_plan_with(f"people:\n  alice: {person}\n"))
    assert len(errors) == 1 and errors[0].startswith(f"plan.yaml:4:11: {expected}"), errors


def test_load_plan_given_owner_close_to_a_person_key_says_did_you_mean() -> None:
    errors = _errors(_plan_with("people:\n  alice: {name: Alice Ng}\n", owner="alcie"))
    assert errors == [
        "plan.yaml:8:5: objectives[0].owner: unknown person 'alcie': did you mean 'alice'? "
        "(an owner is a key of `people`, or free text shown as written)"
    ]


def test_load_plan_given_free_text_owner_far_from_any_key_accepts_it() -> None:
    plan = load_plan_text(_plan_with("people:\n  alice: {name: Alice Ng}\n",
                                     owner="Platform team"))
    assert plan.person("Platform team") is None


def test_load_plan_given_notify_warnings_defaults_to_status_and_refuses_others() -> None:
    builder = PlanBuilder().with_objective(objective("O1", manual_kr("K1", target=1)))
    assert builder.build().notify.warnings == "status"
    assert builder.set("notify", {"warnings": "channel"}).build().notify.warnings == "channel"
    errors = _errors(builder.set("notify", {"warnings": "slack"}).yaml())
    assert len(errors) == 1 and "notify.warnings: Input should be 'status' or 'channel'" in (
        errors[0])


def test_plan_json_schema_given_people_describes_id_patterns() -> None:
    schema = plan_json_schema()
    person = schema["$defs"]["Person"]["properties"]
    assert person["slack"]["pattern"].startswith("^[UW]")
    assert "people" in schema["properties"]
    assert schema["$defs"]["Notify"]["properties"]["warnings"]["enum"] == ["status", "channel"]

