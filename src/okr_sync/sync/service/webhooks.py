"""``POST /webhooks/jira[/<source>]``: verify, deduplicate and coalesce Jira webhook
deliveries. Each Jira source posts to its own path (``/webhooks/jira`` is ``main``) and
may sign with its own secret (``OKR_SYNC_JIRA__<NAME>__WEBHOOK_SECRET``, else the
service-wide ``OKR_SYNC_WEBHOOK_SECRET``).

Jira signs a webhook registered with a secret as ``X-Hub-Signature:
sha256=<hex HMAC-SHA256(raw body, secret)>`` (api-facts A10); the signature is
checked over the raw bytes in constant time before anything else is looked at.
Jira retries deliveries (408/409/425/429/5xx, timeouts) and may deliver twice,
so deliveries are remembered by ``X-Atlassian-Webhook-Identifier`` (or a hash of
the body) for a while. A webhook only *triggers* an incremental pass: the pass
re-reads Jira, so the payload is never trusted as data. Bursts (a bulk edit
fires one webhook per issue) are coalesced by :class:`Debouncer`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from werkzeug.wrappers import Request, Response

from okr_sync.sync.service.request_io import BodyIncompleteError, BodyTooLargeError, read_body

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
RETRY_HEADER = "X-Atlassian-Webhook-Retry"
MAX_BODY_BYTES = 1024 * 1024
#: Jira may deliver up to about 30 minutes late; remember deliveries a while longer.
DEDUP_TTL = timedelta(hours=1)
DEDUP_MAX_ENTRIES = 10_000
#: The source a delivery's path names (``/webhooks/jira/<source>``), set by the router.
SOURCE_ENVIRON_KEY = "okr_sync.jira_source"
MAIN_SOURCE = "main"


def source_of(request: Request) -> str:
    """The Jira source a delivery was posted for (``main`` on ``/webhooks/jira``), lower-cased:
    settings name sources in lower case (``OKR_SYNC_JIRA__LEGACY__...``) and a plan may
    write ``Legacy``; both modes key their sources that way, so either path works."""
    source = request.environ.get(SOURCE_ENVIRON_KEY)
    return source.lower() if isinstance(source, str) and source else MAIN_SOURCE


class WebhookPayloadError(ValueError):
    """The body is not a JSON object."""


def sign(secret: str | SecretStr, body: bytes) -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body``."""
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return "sha256=" + hmac.new(raw.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: SecretStr, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the HMAC-SHA256 of the raw ``body`` (constant-time compare)."""
    if not header:
        return False
    scheme, _, digest = header.strip().partition("=")
    if scheme.strip().lower() != "sha256" or not digest:
        return False
    expected = sign(secret, body).encode("ascii")
    given = ("sha256=" + digest.strip().lower()).encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True)
class WebhookEvent:
    """What a delivery tells the service (for logs): the event and the affected project."""

    delivery_id: str
    event: str | None = None
    issue_key: str | None = None
    project: str | None = None
    retry: int | None = None
    source: str = MAIN_SOURCE


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_event(body: bytes, *, delivery_id: str, retry: str | None = None,
                source: str = MAIN_SOURCE) -> WebhookEvent:
    """Read the event name and project (``issue.fields.project.key``, else the key prefix)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise WebhookPayloadError(f"body is not JSON: {type(error).__name__}") from None
    if not isinstance(doc, dict):
        raise WebhookPayloadError("body is not a JSON object")
    issue = _object(doc.get("issue"))
    project = _object(_object(issue.get("fields")).get("project"))
    key = _text(issue.get("key"))
    project_key = _text(project.get("key"))
    if project_key is None and key is not None and "-" in key:
        project_key = key.rsplit("-", 1)[0]
    retries = int(retry) if retry is not None and retry.strip().isdigit() else None
    return WebhookEvent(
        delivery_id=delivery_id,
        event=_text(doc.get("webhookEvent")),
        issue_key=key,
        project=project_key,
        retry=retries,
        source=source,
    )


def delivery_id(identifier: str | None, body: bytes) -> str:
    """Jira's delivery identifier, or a hash of the body when it sends none."""
    if identifier and identifier.strip():
        return "id:" + identifier.strip()[:200]
    return "sha256:" + hashlib.sha256(body).hexdigest()


class DeliveryCache:
    """Delivery ids seen recently: bounded in size and age, safe across threads."""

    def __init__(self, *, ttl: timedelta = DEDUP_TTL, max_entries: int = DEDUP_MAX_ENTRIES) -> None:
        if max_entries <= 0 or ttl <= timedelta(0):
            raise ValueError("the delivery cache needs a positive size and ttl")
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: str, now: datetime) -> bool:
        """Record ``key``; True when it was already recorded within the ttl."""
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at < self.ttl and len(self._seen) < self.max_entries:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return True
            self._seen[key] = now
            return False

    def forget(self, key: str) -> None:
        """Drop ``key`` (its delivery was not acted on after all: a repeat may be)."""
        with self._lock:
            self._seen.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


@dataclass(frozen=True)
class Trigger:
    """Coalesced events that are due for one pass."""

    events: int
    projects: frozenset[str]
    first_at: datetime
    last_at: datetime


class Debouncer:
    """Fires once ``delay`` after the last event, or ``max_wait`` after the first.

    ``max_wait`` keeps a steady stream of events from postponing the pass forever.
    """

    def __init__(self, delay: timedelta, *, max_wait: timedelta | None = None) -> None:
        if delay < timedelta(0):
            raise ValueError("the debounce delay cannot be negative")
        self.delay = delay
        self.max_wait = max_wait if max_wait is not None else max(delay * 12, delay)
        self._lock = threading.Lock()
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._events = 0
        self._projects: set[str] = set()

    def add(self, now: datetime, project: str | None = None) -> None:
        with self._lock:
            if self._first is None:
                self._first = now
            self._last = now
            self._events += 1
            if project:
                self._projects.add(project)

    def due_at(self) -> datetime | None:
        """When the pending events fire (None: nothing pending)."""
        with self._lock:
            if self._first is None or self._last is None:
                return None
            return min(self._last + self.delay, self._first + self.max_wait)

    def take(self, now: datetime) -> Trigger | None:
        """The pending events if they are due (and forget them), else None."""
        due = self.due_at()
        if due is None or now < due:
            return None
        with self._lock:
            if self._first is None or self._last is None:
                return None
            trigger = Trigger(self._events, frozenset(self._projects), self._first, self._last)
            self._first = self._last = None
            self._events = 0
            self._projects = set()
            return trigger


def _json(code: int, **body: Any) -> Response:
    return Response(json.dumps(body), status=code, mimetype="application/json")


class JiraWebhookEndpoint:
    """The handler of ``POST /webhooks/jira``; ``on_event`` is called for each new delivery.

    Without a secret this endpoint accepts deliveries unsigned; `serve` mounts it so only
    when the operator opted in (``OKR_SYNC_WEBHOOK_ALLOW_UNSIGNED=true``) and answers 403
    otherwise (see :mod:`okr_sync.sync.service.app`).
    Responses: 202 accepted, 200 duplicate, 400 not a JSON object or a body cut short (the
    client disconnected or stalled), 401 bad or missing
    signature (when a secret is set), 403 a source without a secret when unsigned
    deliveries are not allowed, 404 a source the plan does not name, 413 body over
    ``max_body`` bytes.

    ``source_secrets``: the secret of each source that signs with its own (the others use
    ``secret``); ``sources``: the plan's Jira sources (None: any path is accepted).
    """

    def __init__(
        self,
        secret: SecretStr | None,
        on_event: Callable[[WebhookEvent], None],
        *,
        clock: Callable[[], datetime],
        cache: DeliveryCache | None = None,
        max_body: int = MAX_BODY_BYTES,
        on_result: Callable[[str], None] | None = None,
        source_secrets: Mapping[str, SecretStr] | None = None,
        sources: Collection[str] | None = None,
        allow_unsigned: bool = True,
    ) -> None:
        self.secret = secret
        self.source_secrets = dict(source_secrets or {})
        self.sources = frozenset(sources) if sources is not None else None
        self.allow_unsigned = allow_unsigned
        self.on_event = on_event
        self.clock = clock
        self.cache = cache if cache is not None else DeliveryCache()
        self.max_body = max_body
        self.on_result = on_result or (lambda result: None)

    def __call__(self, request: Request) -> Response:
        response, result = self._handle(request)
        self.on_result(result)
        return response

    def _handle(self, request: Request) -> tuple[Response, str]:
        source = source_of(request)
        if self.sources is not None and source not in self.sources:
            return _json(404, error="no such Jira source in the plan"), "unknown_source"
        secret = self.source_secrets.get(source, self.secret)
        if secret is None and not self.allow_unsigned:
            log.warning("webhook refused: the source has no webhook secret",
                        extra={"source": source, "remote": request.remote_addr})
            return (_json(403, error="webhooks of this source are refused: it has no webhook "
                                     "secret"), "unsigned_refused")
        too_large = _json(413, error=f"body over {self.max_body} bytes"), "too_large"
        try:
            body = read_body(request, self.max_body)
        except BodyTooLargeError:
            return too_large
        except BodyIncompleteError as error:
            # The client left (or stalled past the read timeout) mid-body: routine on a
            # public port, so one line and no traceback; nothing was received to act on.
            log.info("webhook client disconnected before sending its whole body",
                     extra={"remote": request.remote_addr,
                           "error": type(error.__cause__).__name__})
            return _json(400, error="incomplete body"), "disconnected"
        if secret is not None and not verify_signature(
            secret, body, request.headers.get(SIGNATURE_HEADER)
        ):
            log.warning("webhook refused: missing or invalid signature",
                        extra={"source": source, "remote": request.remote_addr})
            return _json(401, error="missing or invalid X-Hub-Signature"), "unauthorized"
        key = delivery_id(request.headers.get(IDENTIFIER_HEADER), body)
        try:
            event = parse_event(body, delivery_id=key, retry=request.headers.get(RETRY_HEADER),
                                source=source)
        except WebhookPayloadError as error:
            return _json(400, error=str(error)), "invalid"
        # Two sites may send the same identifier (or body): one is no duplicate of the other.
        if self.cache.seen_before(f"{source}/{key}", self.clock()):
            log.info("webhook duplicate ignored", extra={"delivery": key, "retry": event.retry})
            return _json(200, status="duplicate"), "duplicate"
        log.info(
            "webhook accepted",
            extra={"delivery": key, "event": event.event, "issue": event.issue_key,
                   "project": event.project, "retry": event.retry, "source": source},
        )
        self.on_event(event)
        return _json(202, status="accepted"), "accepted"
