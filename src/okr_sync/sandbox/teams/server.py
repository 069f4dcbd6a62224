"""A Microsoft Teams sandbox on loopback: Workflows webhooks, Entra token, Bot Connector.

* ``POST /workflows/<id>[/triggers/manual/paths/invoke]?sig=…``: validates the
  envelope and every Adaptive Card against the 1.5 schema, refuses bodies
  over 28 KB (413 "Request Entity too large"), answers 202 with no body. The
  real flow accepts first and fails later in the run; the sandbox is stricter
  on purpose so that bad cards surface in tests.
* ``GET /<tenant>/v2.0/.well-known/openid-configuration`` and
  ``POST /<tenant>/oauth2/v2.0/token``: just enough Entra for MSAL's
  client-credentials flow. MSAL insists on an https authority, so clients
  reach these through :class:`SandboxLoginHttpClient`.
* ``POST|PUT {service_url}v3/conversations/<id>/activities[/<activityId>]``:
  Bot Connector with bearer-token checks and ``ErrorResponse`` errors.
* ``GET /botframework/v1/.well-known/openidconfiguration`` and ``…/keys``: the
  sandbox's own Bot Framework signing keys (:attr:`TeamsSandbox.bot_framework`
  signs tokens and sends ``invoke`` activities to a bot, as Teams does).

Everything accepted is recorded per workflow and per conversation.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from okr_sync.sandbox.server import LoopbackServer
from okr_sync.sandbox.teams.adaptive_cards import (
    ADAPTIVE_CARD,
    attachment_errors,
)
from okr_sync.sandbox.teams.bot_framework import KEYS_PATH, OPENID_PATH, BotFrameworkIssuer
from okr_sync.sandbox.teams.login import AUTHORITY_HOST, SandboxLoginHttpClient

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
MAX_MESSAGE_BYTES = 28 * 1024
DEFAULT_APP_ID = "00000000-0000-4000-8000-0000000000b0"
DEFAULT_APP_SECRET = "sandbox-app-secret"  # noqa: S105 - a fixed credential of a local fake
DEFAULT_TENANT_ID = "11111111-1111-4111-8111-111111111111"
STATUS_CODES = {
    400: "BadArgument", 401: "Unauthorized", 404: "NotFound", 412: "PreconditionFailed",
    413: "MessageSizeTooBig", 429: "TooManyRequests", 500: "InternalServerError",
    502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
}  # fmt: skip


@dataclass(frozen=True)
class WorkflowPost:
    """One accepted webhook call; the flow posts each card as its own message."""

    workflow_id: str
    envelope: dict[str, Any]

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [a["content"] for a in self.envelope["attachments"]]


@dataclass
class SandboxActivity:
    """A bot activity as the sandbox holds it; ``history`` has earlier versions, oldest first."""

    conversation_id: str
    id: str
    activity: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def updated(self) -> bool:
        return bool(self.history)

    @property
    def cards(self) -> list[dict[str, Any]]:
        attachments = self.activity.get("attachments") or []
        return [a["content"] for a in attachments if a.get("contentType") == ADAPTIVE_CARD]


@dataclass(frozen=True)
class TeamsRequestRecord:
    kind: str
    path: str
    status: int
    code: str | None


@dataclass
class _Fault:
    kind: str
    status: int
    #: A number, or any text: a server may send a Retry-After no client can read.
    retry_after: float | str | None
    code: str | None


class _Reply(Exception):
    """Internal: ends a handler with a given response."""

    def __init__(self, status: int, body: Any = None, *, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(status)
        self.status, self.body, self.code, self.headers = status, body, code, headers or {}


def _service_error(status: int, code: str | None = None, message: str = "") -> _Reply:
    code = code or STATUS_CODES.get(status, f"Http{status}")
    return _Reply(status, {"error": {"code": code, "message": message or code}}, code=code)


def _oauth_error(status: int, error: str, aadsts: int, description: str) -> _Reply:
    body = {
        "error": error, "error_description": f"AADSTS{aadsts}: {description}",
        "error_codes": [aadsts], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": secrets.token_hex(8), "correlation_id": secrets.token_hex(8),
        "error_uri": f"{AUTHORITY_HOST}/error?code={aadsts}",
    }  # fmt: skip
    return _Reply(status, body, code=error)


class TeamsSandbox:
    """Loopback Teams: Workflows webhooks, an Entra token endpoint and the Bot Connector."""

    def __init__(
        self,
        *,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str = DEFAULT_APP_SECRET,
        tenant_id: str = DEFAULT_TENANT_ID,
        authority_host: str = AUTHORITY_HOST,
        conversations: Iterable[str] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        token_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id, self.app_secret, self.tenant_id = app_id, app_secret, tenant_id
        self.authority_host = authority_host.rstrip("/")
        self.max_message_bytes = max_message_bytes
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._lock = threading.RLock()
        self._known_conversations = set(conversations) if conversations is not None else None
        self._workflows: dict[str, str] = {}
        self._workflow_posts: dict[str, list[WorkflowPost]] = {}
        self._activities: dict[str, list[SandboxActivity]] = {}
        self._tokens: dict[str, float] = {}
        self._faults: deque[_Fault] = deque()
        self._delays: deque[tuple[str, float]] = deque()
        self._stopping = threading.Event()
        self._last_activity_id = 0
        self.requests: list[TeamsRequestRecord] = []
        self.counters: Counter[str] = Counter()
        self._server: LoopbackServer | None = None
        #: Signs Bot Framework tokens and sends invokes; its keys are served below.
        self.bot_framework = BotFrameworkIssuer(app_id, tenant_id, clock=clock)
        self._routes = Map([
            Rule(OPENID_PATH, endpoint="botframework.openid", methods=["GET"]),
            Rule(KEYS_PATH, endpoint="botframework.keys", methods=["GET"]),
            Rule("/workflows/<workflow_id>", endpoint="workflow", methods=["POST"]),
            Rule("/workflows/<workflow_id>/triggers/manual/paths/invoke", endpoint="workflow",
                 methods=["POST"]),
            Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="openid",
                 methods=["GET"]),
            Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
            Rule("/teams/v3/conversations/<path:conversation_id>/activities",
                 endpoint="activity.post", methods=["POST"]),
            Rule("/teams/v3/conversations/<path:conversation_id>/activities/<activity_id>",
                 endpoint="activity.update", methods=["PUT"]),
        ])  # fmt: skip

    # -- setup ------------------------------------------------------------------

    def add_workflow(self, workflow_id: str | None = None, *, sig: str | None = None) -> str:
        """Register a workflow and return its full webhook URL (a secret, as in Teams)."""
        workflow_id = workflow_id or secrets.token_hex(16)
        with self._lock:
            self._workflows[workflow_id] = sig or secrets.token_urlsafe(32)
        return self.workflow_url(workflow_id)

    def workflow_url(self, workflow_id: str) -> str:
        sig = self._workflows[workflow_id]
        return (
            f"{self.url}/workflows/{workflow_id}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        )

    def add_conversation(self, conversation_id: str) -> None:
        with self._lock:
            if self._known_conversations is not None:
                self._known_conversations.add(conversation_id)

    def inject_status(self, kind: str, status: int, *, count: int = 1,
                      retry_after: float | str | None = None, code: str | None = None,
                      ) -> None:  # fmt: skip
        """The next ``count`` requests of ``kind`` fail with ``status``.

        ``kind`` is ``workflow``, ``openid``, ``token`` or ``activity`` (posts and updates).
        """
        if kind not in {"workflow", "openid", "token", "activity"}:
            raise ValueError(f"unknown request kind {kind!r}")
        with self._lock:
            self._faults.extend(_Fault(kind, status, retry_after, code) for _ in range(count))

    def delay_replies(self, kind: str, seconds: float, *, count: int = 1) -> None:
        """The next ``count`` requests of ``kind`` wait ``seconds`` before anything happens.

        A client whose read timeout is shorter sees a timeout, and nothing was posted.
        A delay ends early when the sandbox stops, so a hang never outlives it.
        """
        if kind not in {"workflow", "openid", "token", "activity"}:
            raise ValueError(f"unknown request kind {kind!r}")
        if not 0 <= seconds < math.inf:
            raise ValueError(f"a reply delay must be a finite number of seconds, not {seconds}")
        with self._lock:
            self._delays.extend((kind, seconds) for _ in range(count))

    def revoke_tokens(self) -> None:
        """Forget every issued access token (the next bot call gets 401)."""
        with self._lock:
            self._tokens.clear()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> TeamsSandbox:
        self._stopping.clear()
        self._server = LoopbackServer(self.wsgi_app).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> TeamsSandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Teams sandbox is not running")
        return self._server.url

    @property
    def service_url(self) -> str:
        """The Bot Connector ``serviceUrl`` (like ``https://smba.trafficmanager.net/teams/``)."""
        return f"{self.url}/teams/"

    @property
    def openid_metadata_url(self) -> str:
        """The Bot Framework OpenID metadata (OKR_SYNC_TEAMS_OPENID_METADATA_URL)."""
        return self.url + OPENID_PATH

    def msal_http_client(self, *, timeout: float = 10.0) -> SandboxLoginHttpClient:
        return SandboxLoginHttpClient(self.url, authority_host=self.authority_host, timeout=timeout)

    # -- inspection -------------------------------------------------------------

    def workflow_posts(self, workflow_id: str) -> list[WorkflowPost]:
        with self._lock:
            return list(self._workflow_posts.get(workflow_id, []))

    def workflow_cards(self, workflow_id: str) -> list[dict[str, Any]]:
        return [card for post in self.workflow_posts(workflow_id) for card in post.cards]

    def activities(self, conversation_id: str) -> list[SandboxActivity]:
        with self._lock:
            return list(self._activities.get(conversation_id, []))

    def delete_activity(self, conversation_id: str, activity_id: str) -> None:
        """Remove a posted activity, as a user deleting the message in Teams would."""
        with self._lock:
            kept = [a for a in self._activities.get(conversation_id, []) if a.id != activity_id]
            self._activities[conversation_id] = kept

    def activity(self, conversation_id: str, activity_id: str) -> SandboxActivity:
        for candidate in self.activities(conversation_id):
            if candidate.id == activity_id:
                return candidate
        raise KeyError(f"no activity {activity_id} in {conversation_id}")

    @property
    def token_requests(self) -> int:
        return self.counters["token"]

    # -- WSGI -------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        kind = "unknown"
        try:
            endpoint, values = self._routes.bind_to_environ(environ).match()
            kind = str(endpoint)
            self._maybe_delay(kind)
            with self._lock:
                self._maybe_fault(kind)
                handler = getattr(self, "_" + kind.replace(".", "_"))
                reply: _Reply = handler(request, **values)
        except HTTPException as error:
            reply = _service_error(error.code or 404, message=error.description or "")
        except _Reply as raised:
            reply = raised
        with self._lock:
            self.requests.append(TeamsRequestRecord(kind, request.path, reply.status, reply.code))
            self.counters[kind] += 1
            self.counters[f"status:{reply.status}"] += 1
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        response = Response(body, status=reply.status, headers=reply.headers)
        if body:
            response.content_type = "application/json; charset=utf-8"
        return response(environ, start_response)

    def _maybe_delay(self, kind: str) -> None:
        family = "activity" if kind.startswith("activity") else kind
        with self._lock:
            due = next((d for d in self._delays if d[0] == family), None)
            if due is not None:
                self._delays.remove(due)
                self.counters["delayed"] += 1
        if due is not None:  # slept without the lock: other calls go on meanwhile
            self._stopping.wait(due[1])

    def _maybe_fault(self, kind: str) -> None:
        family = "activity" if kind.startswith("activity") else kind
        for fault in list(self._faults):
            if fault.kind == family:
                self._faults.remove(fault)
                headers = ({"Retry-After": str(fault.retry_after)}
                           if fault.retry_after is not None else {})
                if family in {"token", "openid"}:
                    error = fault.code or "temporarily_unavailable"
                    reply = _oauth_error(fault.status, error, 50196, "injected failure")
                else:
                    reply = _service_error(fault.status, fault.code)
                reply.headers.update(headers)
                raise reply

    def _json_body(self, request: Request, *, too_large: _Reply) -> Any:
        raw = request.get_data(cache=True)
        if len(raw) > self.max_message_bytes:
            raise too_large
        try:
            return json.loads(raw)
        except ValueError:
            raise _service_error(400, "BadSyntax", "the body is not JSON") from None

    def _workflow(self, request: Request, workflow_id: str) -> _Reply:
        expected = self._workflows.get(workflow_id)
        if expected is None:
            raise _service_error(404, "WorkflowNotFound", f"workflow {workflow_id} not found")
        sig = request.args.get("sig")
        if not sig:
            raise _service_error(401, "DirectApiAuthorizationRequired", "a sig is required")
        if not secrets.compare_digest(sig, expected):
            raise _service_error(401, "DirectApiInvalidAuthorizationSignature", "bad signature")
        too_large = _service_error(413, "RequestEntityTooLarge", "Request Entity too large")
        envelope = self._json_body(request, too_large=too_large)
        problems = ["type must be 'message'"]
        if isinstance(envelope, dict):
            problems = [] if envelope.get("type") == "message" else problems
            problems += attachment_errors(envelope.get("attachments"), require_cards=True)
        if problems:
            raise _service_error(400, "InvalidRequestContent", "; ".join(problems[:5]))
        self._workflow_posts.setdefault(workflow_id, []).append(WorkflowPost(workflow_id, envelope))
        return _Reply(202)

    def _botframework_openid(self, request: Request) -> _Reply:
        return _Reply(200, self.bot_framework.openid_document(self.url))

    def _botframework_keys(self, request: Request) -> _Reply:
        return _Reply(200, self.bot_framework.jwks())

    def _openid(self, request: Request, tenant: str) -> _Reply:
        if tenant != self.tenant_id:
            raise _oauth_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.authority_host}/{tenant}"
        return _Reply(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
        })  # fmt: skip

    def _credentials(self, request: Request, form: MultiDict[str, str]) -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            return user, password
        return form.get("client_id", ""), form.get("client_secret", "")

    def _token(self, request: Request, tenant: str) -> _Reply:
        if tenant != self.tenant_id:
            raise _oauth_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        form = request.form
        if form.get("grant_type") != "client_credentials":
            raise _oauth_error(400, "unsupported_grant_type", 70003, "unsupported grant type")
        client_id, client_secret = self._credentials(request, form)
        if client_id != self.app_id:
            raise _oauth_error(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found "
                               f"in the directory '{tenant}'.")  # fmt: skip
        if not secrets.compare_digest(client_secret, self.app_secret):
            raise _oauth_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if form.get("scope", "").split() != [BOT_FRAMEWORK_SCOPE]:
            raise _oauth_error(400, "invalid_scope", 1002012, "The provided scope is invalid.")
        token = "sandbox-at-" + secrets.token_urlsafe(24)
        self._tokens[token] = self._clock() + self.token_lifetime
        return _Reply(200, {
            "token_type": "Bearer", "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime, "access_token": token,
        })  # fmt: skip

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        expires = self._tokens.get(token)
        if expires is None or expires <= self._clock():
            raise _service_error(401, "Unauthorized",
                                 "Authorization has been denied for this request.")  # fmt: skip

    def _activity_body(self, request: Request, conversation_id: str) -> dict[str, Any]:
        self._authorize(request)
        known = self._known_conversations
        if known is not None and conversation_id not in known:
            raise _service_error(404, "ConversationNotFound", "Conversation not found.")
        too_large = _service_error(413, "MessageSizeTooBig", "Message size too big.")
        activity = self._json_body(request, too_large=too_large)
        if not isinstance(activity, dict) or activity.get("type") != "message":
            raise _service_error(400, "BadArgument", "activity type must be 'message'")
        attachments = activity.get("attachments")
        if not activity.get("text") and not attachments:
            raise _service_error(400, "BadArgument", "an activity needs text or attachments")
        problems = attachment_errors(attachments or [], require_cards=False)
        if problems:
            raise _service_error(400, "BadArgument", "; ".join(problems[:5]))
        return activity

    def _activity_post(self, request: Request, conversation_id: str) -> _Reply:
        activity = self._activity_body(request, conversation_id)
        self._last_activity_id = max(self._last_activity_id + 1, int(self._clock() * 1000))
        record = SandboxActivity(conversation_id, str(self._last_activity_id), activity)
        self._activities.setdefault(conversation_id, []).append(record)
        return _Reply(201, {"id": record.id})

    def _activity_update(self, request: Request, conversation_id: str, activity_id: str) -> _Reply:
        activity = self._activity_body(request, conversation_id)
        existing = self._activities.get(conversation_id, [])
        record = next((item for item in existing if item.id == activity_id), None)
        if record is None:
            raise _service_error(404, "ActivityNotFound", "Activity not found.")
        record.history.append(record.activity)
        record.activity = activity
        return _Reply(200, {"id": activity_id})
