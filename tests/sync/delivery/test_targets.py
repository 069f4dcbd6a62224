"""Typed delivery targets: built from the plan, stored as ``kind:name``, read back."""

from __future__ import annotations

import pytest

from okr_sync.config.plan import RouteTarget
from okr_sync.sync.delivery.messages import delivery_action
from okr_sync.sync.delivery.outbox import OutboxDeliverer, Senders
from okr_sync.sync.delivery.targets import TargetKind, TargetRef, UnknownTargetError
from okr_sync.sync.store.store import OutboxItem, Store


@pytest.mark.parametrize(("route", "kind", "name"), [
    ({"slack": {"channel": "C0123456789"}}, TargetKind.SLACK, "C0123456789"),
    ({"teams_workflow": {"url_env": "OKR_TEAMS_URL"}}, TargetKind.TEAMS_WORKFLOW, "OKR_TEAMS_URL"),
    ({"teams_bot": {"conversation_id": "19:abc@thread.v2"}}, TargetKind.TEAMS_BOT,
     "19:abc@thread.v2"),
])
def test_target_ref_given_route_target_round_trips_through_its_key(route, kind, name) -> None:
    ref = TargetRef.for_route(RouteTarget.model_validate(route))
    assert (ref.kind, ref.name) == (kind, name)
    assert ref.key == f"{kind.value}:{name}"
    assert TargetRef.parse(ref.key) == ref  # a bot conversation id may hold ':' itself


@pytest.mark.parametrize("key", ["email:someone", "slack", "slack:", ":C1", ""])
def test_target_ref_parse_given_unknown_or_broken_key_raises_typed_error(key: str) -> None:
    with pytest.raises(UnknownTargetError):
        TargetRef.parse(key)


@pytest.mark.parametrize(("kind", "standing", "action"), [
    ("scorecard", False, {"slack": "post", "teams_bot": "post", "teams_workflow": "post"}),
    ("scorecard", True, {"slack": "update", "teams_bot": "update", "teams_workflow": "post"}),
    ("change_note", True, {"slack": "reply", "teams_bot": "post", "teams_workflow": "post"}),
    ("digest", True, {"slack": "post", "teams_bot": "post", "teams_workflow": "post"}),
])
def test_delivery_action_given_target_kind_follows_what_it_can_do(kind, standing, action) -> None:
    got = {k.value: delivery_action(kind, TargetRef(k, "x"), standing) for k in TargetKind}
    assert got == action


def test_deliver_given_row_with_unknown_target_fails_only_that_row(store: Store) -> None:
    def no_client(*_: object) -> None:
        raise AssertionError("no client may be asked for")

    for key, target in (("a", "email:ops"), ("b", "teams_workflow:UNSET_WORKFLOW_URL_ENV")):
        store.enqueue(OutboxItem(idempotency_key=key, route="r", target=target, kind="digest",
                                 payload={"card": {"type": "AdaptiveCard"}}))
    deliveries = OutboxDeliverer(Senders(slack=no_client, teams_bot=no_client)).deliver(store)

    by_target = {d.target: d for d in deliveries}
    assert by_target["email:ops"].status == "failed"
    assert by_target["email:ops"].reason == "unknown delivery target 'email:ops'"
    # The next row is still tried (and fails for its own reason: Workflows unconfigured).
    assert by_target["teams_workflow:UNSET_WORKFLOW_URL_ENV"].status == "failed"
    assert "Workflows" in (by_target["teams_workflow:UNSET_WORKFLOW_URL_ENV"].reason or "")
