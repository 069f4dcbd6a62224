"""The Bot Framework token check, against the Teams sandbox's own OpenID keys on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest

from okr_sync.connectors.teams.bot_auth import (
    CLOCK_SKEW_SECONDS,
    KEYS_TTL_SECONDS,
    MIN_REFRESH_INTERVAL_SECONDS,
    BotAuthError,
    BotFrameworkKeys,
    BotKeysUnavailableError,
    BotTokenValidator,
)
from okr_sync.sandbox.teams.server import TeamsSandbox
from support.clocks import FakeMonotonic

#: Older than an hour's token plus the allowed clock skew: a token captured earlier.
LONG_AGO = 3600 + CLOCK_SKEW_SECONDS + 60


@pytest.fixture
def sandbox() -> Iterator[TeamsSandbox]:
    with TeamsSandbox() as running:
        yield running


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def validator(sandbox: TeamsSandbox, clock: FakeMonotonic) -> Iterator[BotTokenValidator]:
    keys = BotFrameworkKeys(sandbox.openid_metadata_url, clock=clock, timeout=5.0)
    yield BotTokenValidator(sandbox.app_id, keys)
    keys.close()


def _reason(validator: BotTokenValidator, header: str | None, **kwargs: str) -> str:
    with pytest.raises(BotAuthError) as raised:
        validator.validate(header, **kwargs)
    return raised.value.reason


def test_validate_given_sandbox_signed_token_returns_its_claims(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    token = sandbox.bot_framework.token(service_url=sandbox.service_url)
    claims = validator.validate(f"Bearer {token}", service_url=sandbox.service_url,
                                channel_id="msteams")
    assert claims["aud"] == sandbox.app_id
    assert claims["iss"] == "https://api.botframework.com"


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Basic dXNlcjpwYXNz", "token-only"])
def test_validate_given_no_bearer_token_refuses_missing_token(
    validator: BotTokenValidator, header: str | None
) -> None:
    assert _reason(validator, header) == "missing_token"


def test_validate_given_garbage_token_refuses_malformed(validator: BotTokenValidator) -> None:
    assert _reason(validator, "Bearer not.a.jwt") == "malformed_token"


def test_validate_given_expired_token_refuses_expired(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    old = sandbox.bot_framework.token(issued_at=time.time() - LONG_AGO)
    assert _reason(validator, f"Bearer {old}") == "expired"


def test_validate_given_token_expired_within_clock_skew_accepts_it(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    # Expired a minute ago by our clock: within Bot Framework's five minutes of skew.
    token = sandbox.bot_framework.token(issued_at=time.time() - 3660)
    assert validator.validate(f"Bearer {token}")["aud"] == sandbox.app_id


def test_validate_given_token_from_the_future_refuses_not_yet_valid(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    early = sandbox.bot_framework.token(issued_at=time.time() + 3 * CLOCK_SKEW_SECONDS)
    assert _reason(validator, f"Bearer {early}") == "not_yet_valid"


def test_validate_given_other_apps_audience_refuses_bad_audience(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    token = sandbox.bot_framework.token(audience="99999999-0000-4000-8000-000000000000")
    assert _reason(validator, f"Bearer {token}") == "bad_audience"


def test_validate_given_other_issuer_refuses_bad_issuer(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    token = sandbox.bot_framework.token(issuer="https://sts.windows.net/evil/")
    assert _reason(validator, f"Bearer {token}") == "bad_issuer"


def test_validate_given_signature_by_unpublished_key_refuses_bad_signature(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    forged = sandbox.bot_framework.token(forged=True)
    assert _reason(validator, f"Bearer {forged}") == "bad_signature"


def test_validate_given_unknown_kid_refuses_unknown_key(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    token = sandbox.bot_framework.token(kid="made-up-kid")
    assert _reason(validator, f"Bearer {token}") == "unknown_key"


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_validate_given_non_rsa_algorithm_refuses_bad_algorithm(
    sandbox: TeamsSandbox, validator: BotTokenValidator, algorithm: str
) -> None:
    claims = {"iss": "https://api.botframework.com", "aud": sandbox.app_id,
              "exp": int(time.time()) + 600}
    key = "a-shared-secret-anyone-could-guess-0123456789" if algorithm == "HS256" else None
    token = jwt.encode(claims, key, algorithm=algorithm,
                       headers={"kid": sandbox.bot_framework.current_kid})
    assert _reason(validator, f"Bearer {token}") == "bad_algorithm"


def test_validate_given_service_url_other_than_the_tokens_refuses(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    token = sandbox.bot_framework.token(service_url=sandbox.service_url)
    reason = _reason(validator, f"Bearer {token}", service_url="https://evil.example/teams/")
    assert reason == "bad_service_url"


def test_validate_given_channel_the_key_does_not_endorse_refuses(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    token = sandbox.bot_framework.token()
    assert _reason(validator, f"Bearer {token}", channel_id="slack") == "not_endorsed"


def test_keys_given_many_tokens_fetch_the_keys_once(
    sandbox: TeamsSandbox, validator: BotTokenValidator
) -> None:
    for _ in range(3):
        validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    assert validator.keys.fetches == 1
    assert sandbox.counters["botframework.openid"] == 1
    assert sandbox.counters["botframework.keys"] == 1


def test_keys_given_rotation_fetch_the_new_kid_once_then_cache_it(
    sandbox: TeamsSandbox, validator: BotTokenValidator, clock: FakeMonotonic
) -> None:
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    sandbox.bot_framework.rotate()
    clock.now += MIN_REFRESH_INTERVAL_SECONDS
    for _ in range(3):
        validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    assert validator.keys.fetches == 2
    assert sandbox.counters["botframework.keys"] == 2


def test_keys_given_unknown_kids_in_a_burst_refresh_at_most_once_per_interval(
    sandbox: TeamsSandbox, validator: BotTokenValidator, clock: FakeMonotonic
) -> None:
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    for n in range(5):
        assert _reason(validator, f"Bearer {sandbox.bot_framework.token(kid=f'x{n}')}") \
            == "unknown_key"
    assert validator.keys.fetches == 1
    clock.now += MIN_REFRESH_INTERVAL_SECONDS
    assert _reason(validator, f"Bearer {sandbox.bot_framework.token(kid='y')}") == "unknown_key"
    assert validator.keys.fetches == 2


def test_keys_given_rotation_inside_the_refresh_bound_accept_the_new_key_after_it(
    sandbox: TeamsSandbox, validator: BotTokenValidator, clock: FakeMonotonic
) -> None:
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    sandbox.bot_framework.rotate()
    fresh = sandbox.bot_framework.token()
    assert _reason(validator, f"Bearer {fresh}") == "unknown_key"  # bounded: not refetched yet
    clock.now += MIN_REFRESH_INTERVAL_SECONDS
    assert validator.validate(f"Bearer {fresh}")["aud"] == sandbox.app_id


def test_keys_given_a_day_old_cache_fetch_again(
    sandbox: TeamsSandbox, validator: BotTokenValidator, clock: FakeMonotonic
) -> None:
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    clock.now += KEYS_TTL_SECONDS
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    assert validator.keys.fetches == 2


def test_keys_given_retired_key_refuse_its_tokens_after_refresh(
    sandbox: TeamsSandbox, validator: BotTokenValidator, clock: FakeMonotonic
) -> None:
    old = sandbox.bot_framework.token()
    validator.validate(f"Bearer {old}")
    sandbox.bot_framework.rotate(keep_old=False)
    clock.now += KEYS_TTL_SECONDS
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    assert _reason(validator, f"Bearer {old}") == "unknown_key"


def test_keys_given_metadata_unreachable_raise_keys_unavailable(sandbox: TeamsSandbox) -> None:
    keys = BotFrameworkKeys(sandbox.url + "/no/such/metadata", timeout=5.0)
    validator = BotTokenValidator(sandbox.app_id, keys)
    with pytest.raises(BotKeysUnavailableError):
        validator.validate(f"Bearer {sandbox.bot_framework.token()}")


def test_keys_given_keys_unreachable_try_at_most_once_per_interval(
    sandbox: TeamsSandbox, clock: FakeMonotonic
) -> None:
    keys = BotFrameworkKeys(sandbox.url + "/no/such/metadata", clock=clock, timeout=5.0)
    validator = BotTokenValidator(sandbox.app_id, keys)
    for _ in range(5):
        with pytest.raises(BotKeysUnavailableError):
            validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    assert keys.fetches == 1
    keys.metadata_url = sandbox.openid_metadata_url  # Microsoft answers again
    with pytest.raises(BotKeysUnavailableError):  # but not retried inside the interval
        validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    clock.now += MIN_REFRESH_INTERVAL_SECONDS
    assert validator.validate(f"Bearer {sandbox.bot_framework.token()}")["aud"] == sandbox.app_id
    assert keys.fetches == 2


def test_keys_given_ttl_expired_and_refresh_failing_still_accept_a_cached_kid(
    sandbox: TeamsSandbox, validator: BotTokenValidator, clock: FakeMonotonic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    validator.validate(f"Bearer {sandbox.bot_framework.token()}")
    validator.keys.metadata_url = sandbox.url + "/no/such/metadata"
    clock.now += KEYS_TTL_SECONDS
    for _ in range(3):
        claims = validator.validate(f"Bearer {sandbox.bot_framework.token()}")
        assert claims["aud"] == sandbox.app_id
    assert validator.keys.fetches == 2  # one failed refresh, not one per request
    assert "could not be refreshed" in caplog.text
