"""The Teams sandbox as Bot Framework: its OpenID metadata, keys, tokens and card actions."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
import requests

from okr_sync.sandbox.teams.bot_framework import BOT_FRAMEWORK_ISSUER, action_data
from okr_sync.sandbox.teams.server import TeamsSandbox

TIMEOUT = 5.0


@pytest.fixture
def sandbox() -> Iterator[TeamsSandbox]:
    with TeamsSandbox() as running:
        yield running


def _jwks(sandbox: TeamsSandbox) -> dict[str, dict[str, object]]:
    metadata = requests.get(sandbox.openid_metadata_url, timeout=TIMEOUT).json()
    assert metadata["issuer"] == BOT_FRAMEWORK_ISSUER
    keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    return {key["kid"]: key for key in keys}


def test_sandbox_openid_given_start_publishes_the_current_key_endorsed_for_teams(
    sandbox: TeamsSandbox,
) -> None:
    keys = _jwks(sandbox)
    current = keys[sandbox.bot_framework.current_kid]
    assert current["kty"] == "RSA" and current["endorsements"] == ["msteams"]
    assert "d" not in current  # the public half only


def test_sandbox_token_given_published_key_verifies_with_bot_framework_claims(
    sandbox: TeamsSandbox,
) -> None:
    token = sandbox.bot_framework.token(service_url=sandbox.service_url)
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(_jwks(sandbox)[kid]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=sandbox.app_id,
                        issuer=BOT_FRAMEWORK_ISSUER)
    assert claims["serviceurl"] == sandbox.service_url
    assert claims["exp"] - claims["iat"] == 3600


def test_sandbox_rotate_given_keep_old_publishes_both_else_only_the_new(
    sandbox: TeamsSandbox,
) -> None:
    first = sandbox.bot_framework.current_kid
    second = sandbox.bot_framework.rotate(keep_old=True)
    assert set(_jwks(sandbox)) == {first, second}
    third = sandbox.bot_framework.rotate()
    assert set(_jwks(sandbox)) == {third}


def test_sandbox_forged_token_given_current_kid_does_not_verify(sandbox: TeamsSandbox) -> None:
    forged = sandbox.bot_framework.token(forged=True)
    key = jwt.PyJWK(_jwks(sandbox)[sandbox.bot_framework.current_kid]).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key, algorithms=["RS256"], audience=sandbox.app_id)


def test_action_data_given_card_with_form_merges_inputs_into_the_actions_data() -> None:
    form = {"type": "AdaptiveCard", "body": [
        {"type": "Input.Number", "id": "value.K1", "value": 3},
        {"type": "Input.Text", "id": "note.K1"},
    ], "actions": [{"type": "Action.Execute", "verb": "okr.checkin", "data": {"kr": "K1"}}]}
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [
        {"type": "ActionSet", "actions": [{"type": "Action.ShowCard", "card": form}]}]}

    assert action_data(card, "K1", {"note": "hello"}) == {
        "kr": "K1", "value.K1": "3", "note.K1": "hello"}
    with pytest.raises(KeyError):
        action_data(card, "K2", {})
