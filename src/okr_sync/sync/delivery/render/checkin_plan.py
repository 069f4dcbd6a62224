"""Which plan a check-in button or form is for, in ``serve --plans`` (several plans,
one Slack app and one Teams bot).

A message's "Check in" surfaces name only the KR; with many plans the service must
also learn the plan. :func:`tag_checkin_plan` writes it into a rendered payload:
a Slack button's ``value`` becomes ``<plan>:<KR>`` and a Teams ``Action.Execute``
form's ``data`` gains ``plan``. A single-plan serve leaves payloads as they were,
and the plans service still reads an untagged value (the KR alone) by looking the KR
up in every plan (:func:`split_plan_ref`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from okr_sync.sync.delivery.render.slack_checkin import CHECKIN_ACTION
from okr_sync.sync.delivery.render.teams_checkin import CHECKIN_VERB

#: Between the plan id and the KR id in a button value or ``/okr checkin plan:KR``.
PLAN_SEPARATOR = ":"


def tag_checkin_plan(payload: Mapping[str, Any], plan_id: str) -> dict[str, Any]:
    """A copy of ``payload`` whose check-in buttons and forms name ``plan_id``."""
    tagged = _tag(payload, plan_id)
    assert isinstance(tagged, dict)
    return tagged


def _tag(node: Any, plan_id: str) -> Any:
    if isinstance(node, list):
        return [_tag(item, plan_id) for item in node]
    if not isinstance(node, Mapping):
        return node
    copy = {key: _tag(value, plan_id) for key, value in node.items()}
    action_id = copy.get("action_id")
    if copy.get("type") == "button" and isinstance(action_id, str) \
            and action_id.startswith(CHECKIN_ACTION) and isinstance(copy.get("value"), str):
        copy["value"] = f"{plan_id}{PLAN_SEPARATOR}{copy['value']}"[:2000]
    data = copy.get("data")
    if copy.get("type") == "Action.Execute" and copy.get("verb") == CHECKIN_VERB \
            and isinstance(data, dict):
        copy["data"] = data | {"plan": plan_id}
    return copy


def split_plan_ref(ref: str, plans: Collection[str]) -> tuple[str | None, str]:
    """``plan:KR`` -> (plan, KR) when ``plan`` is one of ``plans``; else (None, ref)."""
    plan, separator, kr_id = ref.partition(PLAN_SEPARATOR)
    if separator and plan in plans and kr_id:
        return plan, kr_id
    return None, ref
