"""The Slack sandbox's side of an app's slash command and interactivity.

Like Slack, it sends signed requests to the app's URLs: a slash command
(``application/x-www-form-urlencoded`` fields), a button click (``block_actions``,
with a ``trigger_id`` valid for three seconds) and a modal submission
(``view_submission``), each signed with ``X-Slack-Signature: v0=HMAC-SHA256(signing
secret, "v0:{timestamp}:{body}")`` and ``X-Slack-Request-Timestamp``. It answers
``views.open`` (the trigger must be fresh and unused) and records every post the app
makes to the ``response_url`` it handed out. Tests may sign with another secret or
timestamp, or send the same bytes twice, to play a forger or a replayer.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from okr_sync.sandbox.slack.faults import SlackApiError

DEFAULT_SIGNING_SECRET = "sandbox-signing-secret"  # noqa: S105 - a local fake's fixed secret
#: Slack: "trigger_id ... expires in 3 seconds".
TRIGGER_TTL_S = 3.0
RESPONSE_PATH = "/response/"
TEAM = {"id": "T0SANDBOX", "domain": "okr-sync-sandbox"}


@dataclass(frozen=True)
class HttpReply:
    """What the app answered."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class OpenedView:
    """A modal the app opened with ``views.open``."""

    id: str
    view: dict[str, Any]
    user_id: str


@dataclass
class SignedRequest:
    """A request as sent (kept so a test can replay its exact bytes)."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def send(request: SignedRequest, timeout: float = 10.0) -> HttpReply:
    """POST the request's bytes and headers as they are (a replay sends them again)."""
    http = urllib.request.Request(request.url, data=request.body, method="POST",  # noqa: S310
                                  headers=request.headers)
    try:
        with urllib.request.urlopen(http, timeout=timeout) as reply:  # noqa: S310
            return HttpReply(reply.status, reply.read())
    except urllib.error.HTTPError as error:
        return HttpReply(error.code, error.read())


class SlackInteractionDriver:
    """Plays Slack toward an app: signed requests out, ``views.open`` and response URLs in."""

    def __init__(self, base_url: Callable[[], str], *,
                 signing_secret: str = DEFAULT_SIGNING_SECRET,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._base_url = base_url
        self.signing_secret = signing_secret
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._ids: Iterator[int] = itertools.count(1)
        self._triggers: dict[str, tuple[float, str]] = {}
        self.views: dict[str, OpenedView] = {}
        self.responses: dict[str, list[dict[str, Any]]] = {}

    # -- building and sending requests ----------------------------------------------------

    def signed(self, url: str, body: bytes, *, secret: str | None = None,
               timestamp: int | None = None) -> SignedRequest:
        stamp = str(int(self._wall_clock()) if timestamp is None else timestamp)
        return SignedRequest(url, body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(secret or self.signing_secret, stamp, body),
        })

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids):06d}"

    def new_response_url(self) -> str:
        token = self._new_id("R")
        with self._lock:
            self.responses[token] = []
        return f"{self._base_url()}{RESPONSE_PATH}{token}"

    def new_trigger(self, user_id: str) -> str:
        trigger = self._new_id("T") + ".sandbox"
        with self._lock:
            self._triggers[trigger] = (self._clock(), user_id)
        return trigger

    def slash_command(self, url: str, text: str, *, user_id: str, command: str = "/okr",
                      channel_id: str = "C0123456789", **signing: Any) -> SignedRequest:
        fields = {
            "team_id": TEAM["id"], "team_domain": TEAM["domain"], "channel_id": channel_id,
            "user_id": user_id, "user_name": user_id.lower(), "command": command, "text": text,
            "api_app_id": "A0SANDBOX", "response_url": self.new_response_url(),
            "trigger_id": self.new_trigger(user_id),
        }  # fmt: skip
        return self.signed(url, urlencode(fields).encode(), **signing)

    def _interaction(self, url: str, payload: Mapping[str, Any], **signing: Any
                     ) -> SignedRequest:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.signed(url, body, **signing)

    def button_click(self, url: str, message: Mapping[str, Any], action_id: str, *,
                     user_id: str, channel_id: str, **signing: Any) -> SignedRequest:
        """A click on the button ``action_id`` of ``message`` (its ``blocks``): refused
        (KeyError) when the message carries no such button, as Slack could not send it."""
        action = next((
            {"action_id": e["action_id"], "block_id": b.get("block_id", ""), "type": "button",
             "text": e.get("text"), "value": e.get("value"), "action_ts": str(self._wall_clock())}
            for b in message.get("blocks") or [] if b.get("type") == "actions"
            for e in b.get("elements", []) if e.get("action_id") == action_id
        ), None)  # fmt: skip
        if action is None:
            raise KeyError(f"the message has no button {action_id!r}")
        payload = {
            "type": "block_actions", "user": {"id": user_id, "team_id": TEAM["id"]},
            "api_app_id": "A0SANDBOX", "team": TEAM, "trigger_id": self.new_trigger(user_id),
            "container": {"type": "message", "message_ts": message.get("ts"),
                          "channel_id": channel_id},
            "channel": {"id": channel_id}, "message": dict(message),
            "response_url": self.new_response_url(), "actions": [action],
        }  # fmt: skip
        return self._interaction(url, payload, **signing)

    def view_submission(self, url: str, view_id: str, inputs: Mapping[str, str], *,
                        user_id: str, **signing: Any) -> SignedRequest:
        """Submit an opened modal with ``inputs`` (block_id -> typed text or chosen option
        value); refused (KeyError) for a block or option the modal does not have."""
        opened = self.views[view_id]
        blocks = {b.get("block_id"): b for b in opened.view.get("blocks", [])
                  if b.get("type") == "input"}
        values: dict[str, dict[str, Any]] = {}
        for block_id, block in blocks.items():
            element = block["element"]
            typed = inputs.get(str(block_id))
            state: dict[str, Any] = {"type": element["type"]}
            if element["type"] == "static_select":
                option = next((o for o in element.get("options", []) if o["value"] == typed),
                              None)
                if typed is not None and option is None:
                    raise KeyError(f"the select {block_id!r} has no option {typed!r}")
                state["selected_option"] = option
            else:
                state["value"] = typed
            values[str(block_id)] = {element["action_id"]: state}
        unknown = set(inputs) - {str(k) for k in blocks}
        if unknown:
            raise KeyError(f"the modal has no input {sorted(unknown)}")
        view = dict(opened.view) | {"id": view_id, "team_id": TEAM["id"],
                                    "state": {"values": values}}
        payload = {"type": "view_submission", "team": TEAM,
                   "user": {"id": user_id, "team_id": TEAM["id"]}, "api_app_id": "A0SANDBOX",
                   "trigger_id": self.new_trigger(user_id), "view": view, "response_urls": []}
        return self._interaction(url, payload, **signing)

    # -- what the app calls ---------------------------------------------------------------

    def views_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        trigger = args.get("trigger_id")
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackApiError("invalid_arguments")
        with self._lock:
            issued = self._triggers.pop(trigger, None) if isinstance(trigger, str) else None
        if issued is None:
            raise SlackApiError("invalid_trigger_id")
        if self._clock() - issued[0] > TRIGGER_TTL_S:
            raise SlackApiError("expired_trigger_id")
        view_id = self._new_id("V")
        with self._lock:
            self.views[view_id] = OpenedView(view_id, view, issued[1])
        return {"ok": True, "view": dict(view) | {"id": view_id, "team_id": TEAM["id"]}}

    def response_post(self, request: Request) -> Response:
        token = request.path.removeprefix(RESPONSE_PATH)
        with self._lock:
            posts = self.responses.get(token)
            if posts is None or request.method != "POST":
                return Response("no_response_url", status=404)
            if len(posts) >= 5:  # Slack: up to five responses within 30 minutes
                return Response("used_url", status=404)
            try:
                message = json.loads(request.get_data())
            except ValueError:
                return Response("invalid_payload", status=400)
            posts.append(message)
        return Response("ok", status=200)

    def responses_to(self, request: SignedRequest) -> list[dict[str, Any]]:
        """What the app posted to the ``response_url`` handed out with ``request``."""
        body = request.body.decode()
        for token in list(self.responses):
            if token in body:
                with self._lock:
                    return list(self.responses[token])
        return []
