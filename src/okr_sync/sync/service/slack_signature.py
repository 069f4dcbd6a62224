"""Verifying that a request comes from Slack: its signing secret (Slack's "Verifying
requests from Slack").

Slack sends ``X-Slack-Request-Timestamp`` (Unix seconds) and ``X-Slack-Signature:
v0=<hex HMAC-SHA256(signing secret, "v0:{timestamp}:{raw body}")>``. A request is
accepted when the signature matches over the raw bytes (constant-time compare), the
timestamp is within five minutes of our clock, and the same signature was not
accepted before within that window (a captured request replayed within five minutes
would otherwise pass both other checks). Nothing of the body is read before this.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import SecretStr

from okr_sync.sync.service.webhooks import DeliveryCache

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
VERSION = "v0"
#: Slack's own SDKs refuse requests whose timestamp is further off than this.
MAX_AGE = timedelta(minutes=5)
#: Signatures remembered (a flood of valid requests beyond this evicts the oldest).
REPLAY_MAX_ENTRIES = 50_000


class SlackRefusal(StrEnum):
    """Why a request was refused (logged and counted; the answer is 401 either way)."""

    MISSING = "missing_headers"
    MALFORMED = "malformed_timestamp"
    EXPIRED = "expired"
    FORGED = "bad_signature"
    REPLAYED = "replayed"


def slack_signature(secret: SecretStr | str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack sends for ``body`` at ``timestamp``."""
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(raw.encode(), base, hashlib.sha256).hexdigest()


class SlackVerifier:
    """Checks signature, age and replay of Slack's requests (safe across threads)."""

    def __init__(self, secret: SecretStr, *, clock: Callable[[], datetime],
                 max_age: timedelta = MAX_AGE,
                 first_sighting: Callable[[str, timedelta, datetime], bool] | None = None
                 ) -> None:
        self._secret = secret
        self.clock = clock
        self.max_age = max_age
        #: ``serve --plans``: the replicas' shared memory of accepted signatures
        #: (``Store.first_sighting``), so a replay to another replica is refused too.
        self._first_sighting = first_sighting
        # A signature older than max_age is refused as expired anyway: remembering it
        # for twice the window covers clock skew both ways.
        self._seen = DeliveryCache(ttl=max_age * 2, max_entries=REPLAY_MAX_ENTRIES)

    def refusal(self, body: bytes, timestamp: str | None, signature: str | None
                ) -> SlackRefusal | None:
        """None when the request is Slack's and new, else why it is refused."""
        if not timestamp or not signature:
            return SlackRefusal.MISSING
        stamp = timestamp.strip()
        # Header values are latin-1: "²" is a digit to str.isdigit() but not to int().
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
            return SlackRefusal.MALFORMED
        now = self.clock()
        if abs(now.timestamp() - int(stamp)) > self.max_age.total_seconds():
            return SlackRefusal.EXPIRED
        expected = slack_signature(self._secret, stamp, body).encode("ascii")
        given = signature.strip().encode("utf-8", "replace")
        if not hmac.compare_digest(expected, given):
            return SlackRefusal.FORGED
        # Only a valid signature is remembered, so forged ones cannot fill the cache.
        key = f"{stamp}:{signature.strip()}"
        if self._first_sighting is not None:
            if not self._first_sighting(f"slack:{key}", self._seen.ttl, now):
                return SlackRefusal.REPLAYED
        elif self._seen.seen_before(key, now):
            return SlackRefusal.REPLAYED
        return None
