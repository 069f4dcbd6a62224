"""Checking the JWT that Bot Framework sends with every request to a bot's messaging endpoint.

The rules are Bot Framework's ("Authentication with the Bot Connector API",
``MicrosoftDocs/bot-docs``): the ``Authorization: Bearer`` token is an RS256 JWT
signed with a key listed in the JWKS that the OpenID metadata document
(``https://login.botframework.com/v1/.well-known/openidconfiguration``) names as
``jwks_uri``; its issuer is ``https://api.botframework.com``; its audience is the
bot's app id; it is inside its ``nbf``..``exp`` window (five minutes of clock
skew); a key that lists ``endorsements`` must endorse the activity's channel;
and its ``serviceurl`` claim, when present, is the activity's ``serviceUrl``.

Keys are cached (:data:`KEYS_TTL`) and fetched again early when a token names a
``kid`` the cache does not hold (Microsoft rotates keys), but at most once per
:data:`MIN_REFRESH_INTERVAL`: a stream of forged tokens with made-up ``kid`` s
cannot turn the service into a flood of requests to Microsoft. The bound counts every
*attempt*: while Microsoft is unreachable, requests are refused (keys unavailable) without
each one waiting on a fetch, and keys already cached keep being used past their TTL until
a refresh succeeds (a warning says so). Signatures and
claims are checked by PyJWT's public API (``jwt.PyJWK``, ``jwt.decode``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from okr_sync.connectors.teams.errors import TeamsError
from okr_sync.connectors.teams.transport import (
    TEAMS_WORKFLOW_ERROR_TABLE,
    exception_error,
    status_error,
)

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
BOT_FRAMEWORK_OPENID_METADATA = (
    "https://login.botframework.com/v1/.well-known/openidconfiguration"
)
#: Bot Framework allows five minutes of clock skew between its clock and ours.
CLOCK_SKEW_SECONDS = 300
#: Keys are fetched again after this long even when every ``kid`` is known.
KEYS_TTL_SECONDS = 24 * 3600.0
#: An unknown ``kid`` triggers a fetch at most this often.
MIN_REFRESH_INTERVAL_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 10.0
#: Signatures Bot Framework uses; anything else (``none``, HMAC) is refused.
ALGORITHMS = ("RS256",)
_MAX_TOKEN_CHARS = 16_384

log = logging.getLogger(__name__)


class BotAuthError(Exception):
    """A request whose token does not prove it comes from Bot Framework for this bot.

    ``reason`` is a short code (``missing_token``, ``expired``, ``bad_audience``...)
    for logs and metrics; the message never quotes the token.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BotKeysUnavailableError(BotAuthError):
    """The signing keys could not be fetched: nothing can be checked just now."""


@dataclass(frozen=True)
class SigningKey:
    key: jwt.PyJWK
    #: The channels this key may sign for (empty: any).
    endorsements: frozenset[str]


class BotFrameworkKeys:
    """The signing keys named by an OpenID metadata document, cached (see module docstring).

    ``clock`` is a monotonic clock (injectable so tests can step past the refresh bound).
    """

    def __init__(
        self,
        metadata_url: str = BOT_FRAMEWORK_OPENID_METADATA,
        *,
        session: requests.Session | None = None,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = KEYS_TTL_SECONDS,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS,
    ) -> None:
        self.metadata_url = metadata_url
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        #: When a fetch was last tried, succeeding or not: the refresh bound counts from it.
        self._attempted_at: float | None = None
        #: Why the last attempt failed, while no later one succeeded.
        self._failure: BotKeysUnavailableError | None = None
        #: How many times the keys were fetched or tried (metadata and JWKS), for tests.
        self.fetches = 0

    def close(self) -> None:
        self._session.close()

    def refresh(self) -> int:
        """Fetch the keys now (``okr-sync doctor``); how many are listed."""
        with self._lock:
            self._attempted_at = self._clock()
            self.fetches += 1
            self._keys = self._fetch()
            self._fetched_at = self._attempted_at
            self._failure = None
            return len(self._keys)

    def key(self, kid: str) -> SigningKey | None:
        """The key ``kid``, fetching the keys when stale, or when ``kid`` is unknown and
        the last attempt is at least the refresh interval old; None when not listed.

        Raises :class:`BotKeysUnavailableError` only while no keys were ever fetched.
        """
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            may_try = self._attempted_at is None or now - self._attempted_at >= self._min_refresh
            if may_try and (stale or kid not in self._keys):
                self._try_fetch(now)
            if self._fetched_at is None:
                assert self._failure is not None
                # No keys at all: refused until a retry, at most once per interval.
                raise BotKeysUnavailableError(self._failure.reason, str(self._failure))
            return self._keys.get(kid)

    def _try_fetch(self, now: float) -> None:
        """Fetch the keys; on failure keep what is cached (an outage of Microsoft's
        key endpoint must not refuse tokens signed with keys we already hold)."""
        self._attempted_at = now
        self.fetches += 1
        try:
            self._keys = self._fetch()
        except BotKeysUnavailableError as error:
            self._failure = error
            if self._keys:
                log.warning("bot framework signing keys could not be refreshed; using the "
                            "cached ones", extra={"reason": error.reason,
                                                   "retry_after_s": self._min_refresh})
            return
        self._fetched_at = now
        self._failure = None

    def _get_json(self, url: str, what: str) -> Mapping[str, Any]:
        try:
            response = self._session.get(url, timeout=self._timeout)
        except requests.RequestException as error:
            failure: TeamsError = exception_error(
                error, operation=f"fetch {what}", target=url, table=TEAMS_WORKFLOW_ERROR_TABLE)
            raise BotKeysUnavailableError("keys_unavailable", str(failure)) from None
        if not 200 <= response.status_code < 300:
            failure = status_error(response, operation=f"fetch {what}", target=url,
                                   table=TEAMS_WORKFLOW_ERROR_TABLE, secrets=[])
            raise BotKeysUnavailableError("keys_unavailable", str(failure))
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise BotKeysUnavailableError("keys_unavailable", f"{what} at {url} is not JSON")
        return data

    def _fetch(self) -> dict[str, SigningKey]:
        metadata = self._get_json(self.metadata_url, "OpenID metadata")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise BotKeysUnavailableError(
                "keys_unavailable", f"OpenID metadata at {self.metadata_url} has no jwks_uri")
        if jwks_uri.startswith("http://") and not self.metadata_url.startswith("http://"):
            # Keys from https metadata are never taken over plain http.
            raise BotKeysUnavailableError("keys_unavailable", "jwks_uri is not https")
        document = self._get_json(jwks_uri, "signing keys")
        listed = document.get("keys")
        keys: dict[str, SigningKey] = {}
        for entry in listed if isinstance(listed, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                parsed = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue  # a key type we do not use (one bad entry must not hide the rest)
            endorsements = entry.get("endorsements")
            keys[entry["kid"]] = SigningKey(
                parsed,
                frozenset(e for e in endorsements if isinstance(e, str))
                if isinstance(endorsements, list) else frozenset(),
            )
        return keys


class BotTokenValidator:
    """Checks a request's ``Authorization`` header for one bot (its app id)."""

    def __init__(
        self,
        app_id: str,
        keys: BotFrameworkKeys,
        *,
        issuer: str = BOT_FRAMEWORK_ISSUER,
        leeway: float = CLOCK_SKEW_SECONDS,
    ) -> None:
        self.app_id = app_id
        self.keys = keys
        self.issuer = issuer
        self.leeway = leeway

    def validate(
        self, authorization: str | None, *, service_url: str | None = None,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        """The token's claims, or :class:`BotAuthError` saying what is wrong."""
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise BotAuthError("malformed_token", "the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise BotAuthError("bad_algorithm", "the token is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise BotAuthError("unknown_key", "the token names no signing key")
        signing = self.keys.key(kid)
        if signing is None:
            raise BotAuthError("unknown_key", "the token's signing key is not a Bot Framework key")
        if channel_id is not None and signing.endorsements and \
                channel_id not in signing.endorsements:
            raise BotAuthError("not_endorsed",
                               f"the signing key is not endorsed for channel {channel_id!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, signing.key.key, algorithms=list(ALGORITHMS), audience=self.app_id,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise BotAuthError("expired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise BotAuthError("not_yet_valid", "the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise BotAuthError("bad_audience", "the token is for another app") from None
        except jwt.InvalidIssuerError:
            raise BotAuthError("bad_issuer", "the token was not issued by Bot Framework") from None
        except jwt.InvalidSignatureError:
            raise BotAuthError("bad_signature", "the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise BotAuthError("missing_claim", f"the token has no {error.claim} claim") from None
        except jwt.InvalidTokenError:
            raise BotAuthError("invalid_token", "the token is not valid") from None
        claimed = claims.get("serviceurl")
        if isinstance(claimed, str) and service_url is not None and \
                claimed.rstrip("/") != service_url.rstrip("/"):
            raise BotAuthError("bad_service_url",
                               "the activity's serviceUrl is not the token's serviceurl")
        return claims


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise BotAuthError("missing_token", "no Authorization header")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise BotAuthError("missing_token", "the Authorization header is not a Bearer token")
    if len(token) > _MAX_TOKEN_CHARS:
        raise BotAuthError("malformed_token", "the token is too long")
    return token
