"""The Bot Framework side of the Teams sandbox: its own signing keys, and invokes sent as Teams.

:class:`BotFrameworkIssuer` plays ``login.botframework.com`` and the Bot
Connector's outgoing side: it generates an RSA key at start, publishes an OpenID
metadata document and a JWKS (served by the sandbox at
``/botframework/v1/.well-known/openidconfiguration`` and ``…/keys``), signs
tokens as Bot Framework does (issuer ``https://api.botframework.com``, audience
the bot's app id, ``serviceurl`` claim), and sends ``invoke`` activities to a
bot's messaging endpoint with such a token. For tests it also makes the tokens
a forger would: wrong issuer or audience, expired, signed by a key that is not
published, naming an unknown ``kid``; and it rotates its key.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from okr_sync.sandbox.teams.adaptive_cards import ADAPTIVE_CARD, card_errors

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
INVOKE_NAME = "adaptiveCard/action"
OPENID_PATH = "/botframework/v1/.well-known/openidconfiguration"
KEYS_PATH = "/botframework/v1/.well-known/keys"
TOKEN_LIFETIME = 3600


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class InvokeReply:
    """What the bot answered: the HTTP status and its JSON body (None when empty)."""

    status: int
    body: Any

    @property
    def card(self) -> dict[str, Any] | None:
        """The Adaptive Card of an invoke response (``statusCode`` 200), else None."""
        body = self.body
        if isinstance(body, dict) and body.get("type") == ADAPTIVE_CARD:
            value = body.get("value")
            return value if isinstance(value, dict) else None
        return None

    @property
    def card_problems(self) -> list[str]:
        """Why Teams would not show the answering card (the 1.5 schema, as for posts)."""
        if not isinstance(self.body, dict) or self.body.get("statusCode") != 200:
            return ["not an invoke response with statusCode 200"]
        return card_errors(self.card) if self.card is not None else ["no Adaptive Card"]


class BotFrameworkIssuer:
    """Signing keys, OpenID metadata and signed invokes (see the module docstring)."""

    def __init__(self, app_id: str, tenant_id: str, *, clock: Callable[[], float] = time.time,
                 channel_id: str = "msteams") -> None:
        self.app_id, self.tenant_id, self.channel_id = app_id, tenant_id, channel_id
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._current = ""

    # -- keys -------------------------------------------------------------------

    def _ensure_key(self) -> None:
        # Made on first use: RSA generation takes a moment, and most sandboxes never sign.
        if not self._current:
            self.rotate()

    @property
    def current_kid(self) -> str:
        self._ensure_key()
        return self._current

    def rotate(self, *, keep_old: bool = False) -> str:
        """A new signing key becomes current; the old ones stay published only with
        ``keep_old``. Returns the new ``kid``."""
        kid = "sandbox-" + secrets.token_hex(6)
        key = _new_key()
        with self._lock:
            if not keep_old:
                self._keys.clear()
            self._keys[kid] = key
            self._current = kid
        return kid

    def openid_document(self, base_url: str) -> dict[str, Any]:
        return {
            "issuer": BOT_FRAMEWORK_ISSUER,
            "authorization_endpoint": f"{base_url}/botframework/v1/authorize",
            "jwks_uri": f"{base_url}{KEYS_PATH}",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        self._ensure_key()
        with self._lock:
            keys = list(self._keys.items())
        published = []
        for kid, key in keys:
            entry: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            entry.update(kid=kid, use="sig", endorsements=[self.channel_id])
            published.append(entry)
        return {"keys": published}

    # -- tokens -----------------------------------------------------------------

    def token(
        self,
        *,
        audience: str | None = None,
        issuer: str = BOT_FRAMEWORK_ISSUER,
        issued_at: float | None = None,
        lifetime: float = TOKEN_LIFETIME,
        service_url: str | None = None,
        kid: str | None = None,
        forged: bool = False,
    ) -> str:
        """A Bot Framework token for the bot (``audience``: its app id by default).

        ``kid`` names another key id (an unknown one, for tests); ``forged`` signs
        with a fresh key that is not published, under the current ``kid``.
        """
        self._ensure_key()
        now = self._clock() if issued_at is None else issued_at
        claims: dict[str, Any] = {
            "iss": issuer, "aud": audience or self.app_id,
            "nbf": int(now) - 5, "iat": int(now), "exp": int(now + lifetime),
        }
        if service_url is not None:
            claims["serviceurl"] = service_url
        with self._lock:
            signer = _new_key() if forged else self._keys[self._current]
            header_kid = kid or self._current
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": header_kid})

    # -- invokes ----------------------------------------------------------------

    def invoke_activity(
        self, data: Mapping[str, Any], *, aad_object_id: str, service_url: str,
        conversation_id: str, verb: str = "okr.checkin", name: str = "Sandbox User",
    ) -> dict[str, Any]:
        """An ``adaptiveCard/action`` invoke as Teams sends it when a card's
        ``Action.Execute`` is pressed (``data``: the action's data with the inputs)."""
        return {
            "type": "invoke", "name": INVOKE_NAME, "id": "f:" + secrets.token_hex(8),
            "timestamp": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
            "channelId": self.channel_id, "serviceUrl": service_url,
            "from": {"id": "29:" + secrets.token_hex(12), "name": name,
                     "aadObjectId": aad_object_id},
            "conversation": {"id": conversation_id, "conversationType": "channel",
                             "tenantId": self.tenant_id},
            "recipient": {"id": f"28:{self.app_id}", "name": "okr-sync"},
            "channelData": {"tenant": {"id": self.tenant_id}},
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": dict(data)},
                      "trigger": "manual"},
        }

    def send(self, url: str, activity: Mapping[str, Any], *, token: str | None,
             timeout: float = 10.0) -> InvokeReply:
        """POST ``activity`` to a messaging endpoint with ``token`` (None: no header)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = requests.post(url, json=dict(activity), headers=headers, timeout=timeout)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        return InvokeReply(response.status_code, body)


def action_data(card: Mapping[str, Any], kr_id: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The ``data`` Teams sends for the card's ``Action.Execute`` whose data names ``kr_id``:
    its own data plus every input of the card holding it, filled from ``values`` (keyed
    by input id, or by the id's first dotted part) or else the input's preset value."""
    holder, action = _find_action(card, kr_id)
    data = dict(action.get("data") or {})
    for node in _walk(holder.get("body", [])):
        if str(node.get("type", "")).startswith("Input."):
            input_id = str(node["id"])
            field = input_id.split(".", 1)[0]
            data[input_id] = values.get(input_id, values.get(field, str(node.get("value", ""))))
    return data


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def _find_action(card: Mapping[str, Any], kr_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for node in _walk(dict(card)):
        if node.get("type") == "AdaptiveCard":
            for action in node.get("actions", []):
                data = action.get("data")
                if action.get("type") == "Action.Execute" and isinstance(data, dict) \
                        and data.get("kr") == kr_id:
                    return node, action
    raise KeyError(f"no Action.Execute for {kr_id} in the card")
