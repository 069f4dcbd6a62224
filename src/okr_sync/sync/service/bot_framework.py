"""``POST /api/messages``: the Teams bot's messaging endpoint, answering check-in forms.

Bot Framework posts an activity with a signed JWT; nothing in the body is looked at
before :class:`~okr_sync.connectors.teams.bot_auth.BotTokenValidator` accepts the
token (401 otherwise, 503 while the signing keys cannot be fetched). An ``invoke``
named ``adaptiveCard/action`` with the verb ``okr.checkin`` (the form that
:mod:`okr_sync.sync.delivery.render.teams_checkin` puts on the bot's cards) is a
check-in: the person pressing it (``from.aadObjectId``) must be in the plan's
``people`` (their ``teams`` id) and be the KR's owner (its own, else its
objective's) or listed in ``checkins.allowed`` (or that lists ``anyone``); the
values are checked as the ``checkin`` command checks them
(:mod:`okr_sync.sync.checkins`). The stored check-in's author is the person's
``people`` key (``teams:<object id>`` for someone ``anyone`` lets in). The answer
is an Adaptive Card invoke response: the refreshed card saying what was stored,
or why nothing was. Other activities (messages, installs) get 200 and no action.
An activity id already answered (a resent request within its token's life) is
not stored twice, by any replica: answered ids are recorded in the configured database
(``Store.first_sighting``, key ``bot:<activity id>``), and forgotten again when the
check-in could not be stored, so Teams' retry is taken.

The token does not cover the body, and channels other than Teams (Direct Line, Web
Chat) let their client set ``from``: an activity whose ``channelId`` is not
``msteams`` is refused with 403, as is one from a tenant not listed in
``OKR_SYNC_TEAMS_TENANT_IDS`` when that is set (``channelData.tenant.id``).
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Request, Response

from okr_sync.config.plan import KeyResult, Plan
from okr_sync.connectors.teams.bot_auth import (
    BotAuthError,
    BotKeysUnavailableError,
    BotTokenValidator,
)
from okr_sync.sync.checkins import CHAT_FIELDS, CheckinError, may_check_in, validate_checkin
from okr_sync.sync.delivery.render.teams_checkin import (
    CHECKIN_VERB,
    checkin_refused_card,
    checkin_repeated_card,
    checkin_saved_card,
    form_field,
)
from okr_sync.sync.delivery.render.teams_elements import CARD_CONTENT_TYPE
from okr_sync.sync.service.request_io import BodyIncompleteError, BodyTooLargeError, read_body
from okr_sync.sync.store.store import Store

log = logging.getLogger("okr_sync.service")

INVOKE_ACTION = "adaptiveCard/action"
MAX_ACTIVITY_BYTES = 256 * 1024
#: The only channel whose ``from`` Microsoft vouches for (Teams' own sign-in).
TEAMS_CHANNEL = "msteams"
#: How long an answered activity id is remembered: a token's hour, plus skew both ways.
ACTIVITY_DEDUP_TTL = timedelta(hours=1, minutes=10)
STORE_NOT_READY = "The plan's store is not ready; try again shortly."


class Sightings(Protocol):
    """The replicas' shared memory of answered requests (:class:`Store` has it)."""

    def first_sighting(self, key: str, ttl: timedelta, *, now: datetime | None = None
                       ) -> bool: ...

    def forget_sighting(self, key: str) -> None: ...


def channel_refusal(activity: Mapping[str, Any], tenant_ids: frozenset[str] | None
                    ) -> str | None:
    """Why an activity (token already checked) is not Teams' own for an allowed tenant."""
    if activity.get("channelId") != TEAMS_CHANNEL:
        return "not_msteams_channel"
    if tenant_ids is not None:
        data = activity.get("channelData")
        tenant = data.get("tenant") if isinstance(data, dict) else None
        tenant_id = tenant.get("id") if isinstance(tenant, dict) else None
        if not isinstance(tenant_id, str) or tenant_id not in tenant_ids:
            return "tenant_not_allowed"
    return None


class CheckinRefused(Exception):
    """A check-in that is not stored; the message is shown on the answering card."""

    def __init__(self, message: str, kr: KeyResult | None = None) -> None:
        super().__init__(message)
        self.kr = kr


@dataclass(frozen=True)
class Author:
    #: The ``people`` key (None: someone the plan does not know).
    key: str | None
    #: What the check-in records as its author.
    stored: str
    #: What the answering card shows.
    name: str


def author_of(plan: Plan, aad_object_id: str | None) -> Author:
    """Who pressed the button: the ``people`` entry whose ``teams`` id is
    ``aad_object_id`` (GUIDs compare in any case), else an unknown person."""
    wanted = (aad_object_id or "").casefold()
    for key, person in plan.people.items():
        if wanted and person.teams is not None and person.teams.casefold() == wanted:
            return Author(key, key, person.name or key)
    unknown = f"teams:{(aad_object_id or 'unknown')[:128]}"  # the author column holds 255
    return Author(None, unknown, unknown)


def find_key_result(plan: Plan, kr_id: str) -> KeyResult:
    """The plan's KR ``kr_id``, or CheckinRefused with a "did you mean"."""
    ids = [kr.id for _, kr in plan.key_results()]
    if kr_id not in ids:
        close = difflib.get_close_matches(kr_id, ids, n=1, cutoff=0.6)
        hint = f": did you mean {close[0]}?" if close else ""
        raise CheckinRefused(f"unknown key result {kr_id[:128]!r}{hint}")
    return plan.key_result(kr_id)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise CheckinError(f"value must be a number, not {text[:40]!r}",
                           field="value") from None


def _invoke_card(card: dict[str, Any]) -> Response:
    body = {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}
    return Response(json.dumps(body), status=200, mimetype="application/json")


class BotMessagingEndpoint:
    """The handler of ``POST /api/messages`` (see the module docstring)."""

    def __init__(
        self,
        validator: BotTokenValidator,
        *,
        plan: Plan,
        store: Store,
        clock: Callable[[], datetime],
        sightings: Sightings | None = None,
        tenant_ids: frozenset[str] | None = None,
        max_body: int = MAX_ACTIVITY_BYTES,
        on_checkin: Callable[[str], None] | None = None,
    ) -> None:
        self.validator = validator
        self.plan = plan
        self.store = store
        self.clock = clock
        #: Where answered activity ids are kept (the plan's store unless shared elsewhere).
        self.sightings: Sightings = sightings if sightings is not None else store
        #: Tenants whose activities are taken (None: any, OKR_SYNC_TEAMS_TENANT_IDS unset).
        self.tenant_ids = tenant_ids
        self.max_body = max_body
        #: Called with the KR id after a check-in is stored (serve: ask for a pass soon).
        self.on_checkin = on_checkin

    def close(self) -> None:
        self.validator.keys.close()

    def __call__(self, request: Request) -> Response:
        activity = read_activity(request, self.max_body)
        if isinstance(activity, Response):
            return activity
        refusal = admission_refusal(self.validator, self.tenant_ids, request, activity)
        if refusal is not None:
            return refusal
        if activity.get("type") != "invoke":
            return Response(status=200)  # messages, installs: nothing to do
        if activity.get("name") != INVOKE_ACTION:
            return Response(status=501)
        activity_id = activity.get("id")
        key = f"bot:{activity_id}" if isinstance(activity_id, str) and activity_id else None
        try:
            if key is not None and not self.sightings.first_sighting(
                    key, ACTIVITY_DEDUP_TTL, now=self.clock()):
                log.info("bot invoke already answered", extra={"activity": key[4:132]})
                return _invoke_card(checkin_repeated_card())
        except SQLAlchemyError as error:
            log.warning("bot invoke not answered: the store cannot be reached",
                        extra={"error": type(error).__name__})
            return _invoke_card(checkin_refused_card(STORE_NOT_READY))
        try:
            return _invoke_card(self._checkin(activity))
        except SQLAlchemyError as error:
            # E.g. a plan just added to the folder: its store's tables may not exist yet.
            log.warning("check-in not stored: the plan's store is not ready",
                        extra={"error": type(error).__name__})
            self._forget(key)
            return _invoke_card(checkin_refused_card(STORE_NOT_READY))
        except Exception:
            self._forget(key)
            raise

    def _forget(self, key: str | None) -> None:
        """Not stored: a repeat of this request may be stored, so it is no replay."""
        if key is None:
            return
        try:
            self.sightings.forget_sighting(key)
        except SQLAlchemyError as error:
            log.warning("bot invoke: could not forget its activity id; a retry within the "
                        "hour is answered as already done", extra={"error": type(error).__name__})

    def _checkin(self, activity: Mapping[str, Any]) -> dict[str, Any]:
        value = activity.get("value")
        action = value.get("action") if isinstance(value, dict) else None
        action = action if isinstance(action, dict) else {}
        raw_data = action.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        kr_id = data.get("kr")
        if action.get("verb") != CHECKIN_VERB or not isinstance(kr_id, str):
            return checkin_refused_card("okr-sync does not know this action.")
        sender = activity.get("from")
        aad = sender.get("aadObjectId") if isinstance(sender, dict) else None
        try:
            return self._store_checkin(kr_id, data, aad if isinstance(aad, str) else None)
        except CheckinRefused as refused:
            kr = refused.kr
            log.info("check-in refused", extra={"kr": kr_id[:128], "reason": str(refused)[:300]})
            return checkin_refused_card(
                str(refused), kr_id=None if kr is None else kr.id,
                title=None if kr is None else kr.title,
                manual=kr is not None and kr.measure.kind == "manual")

    def _store_checkin(self, kr_id: str, data: Mapping[str, Any],
                       aad_object_id: str | None) -> dict[str, Any]:
        kr = find_key_result(self.plan, kr_id)
        author = author_of(self.plan, aad_object_id)
        if not may_check_in(self.plan, kr.id, author.key):
            if author.key is None:
                raise CheckinRefused("You are not in the plan's people (no `teams` id matches "
                                     "yours), so okr-sync cannot tell who is checking in.", kr)
            raise CheckinRefused(f"Only the owner of {kr.id} (or someone the plan's "
                                 "checkins.allowed names) may check it in.", kr)
        try:
            valid = validate_checkin(
                kr, value=_number(form_field(data, "value", kr.id)), names=CHAT_FIELDS,
                confidence=form_field(data, "confidence", kr.id),
                note=form_field(data, "note", kr.id),
            )
        except CheckinError as error:
            raise CheckinRefused(str(error), kr) from None
        record = self.store.add_checkin(kr.id, value=valid.value, confidence=valid.confidence,
                                        note=valid.note, author=author.stored)
        log.info("check-in stored from teams", extra={"kr": kr.id, "author": author.stored,
                                                      "checkin": record.id})
        if self.on_checkin is not None:
            self.on_checkin(kr.id)
        return checkin_saved_card(
            kr.id, kr.title, author=author.name, value=valid.value,
            confidence=valid.confidence, note=valid.note,
            manual=kr.measure.kind == "manual", warnings=list(valid.warnings))


def read_activity(request: Request, max_bytes: int, *,
                  keep: bool = False) -> dict[str, Any] | Response:
    """The activity a request carries (``{}`` when its body is no JSON object, which the
    admission checks then refuse), or the answer to a body too large (413) or cut (400).
    ``keep``: the body stays readable for an endpoint the request is passed on to."""
    try:
        raw = read_body(request, max_bytes, keep=keep)
    except BodyTooLargeError:
        return Response(status=413)
    except BodyIncompleteError:
        return Response(status=400)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {}


def admission_refusal(validator: BotTokenValidator, tenant_ids: frozenset[str] | None,
                      request: Request, activity: Mapping[str, Any]) -> Response | None:
    """The answer refusing an activity before it is looked at, or None to go on: the
    token checked first, then the body's shape, then the channel and tenant."""
    service_url = activity.get("serviceUrl")
    channel = activity.get("channelId")
    try:
        validator.validate(
            request.headers.get("Authorization"),
            service_url=service_url if isinstance(service_url, str) else None,
            channel_id=channel if isinstance(channel, str) else None,
        )
    except BotKeysUnavailableError as error:
        log.warning("bot request not checked: signing keys unavailable",
                    extra={"reason": str(error)[:300]})
        return Response(status=503)
    except BotAuthError as error:
        log.warning("bot request refused", extra={"reason": error.reason,
                                                  "remote": request.remote_addr})
        return Response(status=401)
    if not activity:
        return Response(status=400)
    refused = channel_refusal(activity, tenant_ids)
    if refused is not None:
        # 403, not a card: outside Teams (or another tenant) nobody is owed an answer,
        # and ``from`` there is whatever the client wrote.
        log.warning("bot request refused", extra={"reason": refused,
                                                  "remote": request.remote_addr})
        return Response(status=403)
    return None
