"""``POST /slack/commands`` and ``POST /slack/interactions``: check-ins from Slack.

Every request is verified first (:mod:`.slack_signature`: signing secret, timestamp
within five minutes, no replay); a refused one gets 401 and nothing is read or
stored. Slack wants an answer within three seconds, so each request is answered at
once with what is cheap (the plan is in memory: parsing, the check-in rules, who may
check in) and the rest (writing the store, ``views.open``, answers through the
``response_url``) is handed to one background thread.

- ``/okr checkin KR [VALUE] [CONFIDENCE] ["note"]``: checked like ``okr-sync
  checkin`` (:mod:`okr_sync.sync.checkins`), stored with its author (the ``people``
  key of the Slack user), and a pass is asked for so the change note follows.
- ``/okr status``, ``/okr explain KR``, ``/okr help``: answered to the asker only.
- A "Check in" button (``block_actions``) opens the check-in modal (``views.open``);
  its ``view_submission`` is validated at once (``response_action: errors``), then
  stored.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Request, Response

from okr_sync.config.plan import Plan
from okr_sync.config.settings import Settings, is_loopback_host
from okr_sync.connectors.slack.client import SlackClient, SlackError
from okr_sync.connectors.slack.respond import SlackResponseError, post_response
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.checkins import (
    CHAT_FIELDS,
    CheckinError,
    ValidCheckin,
    kr_owner,
    may_check_in,
    person_of_slack_user,
    validate_checkin,
)
from okr_sync.sync.delivery.render.common import kr_value_text
from okr_sync.sync.delivery.render.slack import render_slack_scorecard
from okr_sync.sync.delivery.render.slack_checkin import (
    CHECKIN_ACTION,
    CHECKIN_VIEW,
    HELP_TEXT,
    NOTE_INPUT,
    VALUE_INPUT,
    checkin_modal,
    explain_blocks,
)
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.scheduled import stored_scorecard
from okr_sync.sync.service.request_io import BodyIncompleteError, BodyTooLargeError, read_body
from okr_sync.sync.service.slack_requests import (
    SlackRequestError,
    interaction_payload,
    modal_values,
    parse_checkin_words,
    parse_modal_value,
    parse_slash_command,
    unknown_kr_message,
    user_id,
)
from okr_sync.sync.service.slack_signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SlackVerifier,
)
from okr_sync.sync.state import SnapshotError
from okr_sync.sync.store.store import Store

log = logging.getLogger("okr_sync.service.slack")

#: A button's request carries the whole message it sits in (a change note's blocks, URL
#: encoded: tens of KB); a body past this is not Slack's.
MAX_BODY_BYTES = 1024 * 1024
#: Work waiting for the background thread; past this, people are asked to try again.
MAX_PENDING_WORK = 200
NO_SCORECARD = "No scorecard yet: the first pass has not completed."
STORE_NOT_READY = "Not checked in: the plan's store is not ready; try again shortly."


def _json(status: int, body: Mapping[str, Any]) -> Response:
    import json

    return Response(json.dumps(dict(body)), status=status, mimetype="application/json")


def _ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        message["blocks"] = blocks
    return message


def _ack() -> Response:
    # An empty 200 acknowledges without showing anything (the answer follows).
    return Response(b"", status=200)


class BackgroundWork:
    """One thread running what a request handed over, in order; bounded queue."""

    def __init__(self, max_pending: int = MAX_PENDING_WORK) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; False when the queue is full (nothing was queued)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="okr-sync-slack",
                                                daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # one failed job must not end the thread
                log.exception("slack background work failed")
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until everything queued so far has run (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)


def verified_form(request: Request, verifier: SlackVerifier, max_body: int
                  ) -> dict[str, str] | Response:
    """The form of a request verified as Slack's, or the refusal to answer with."""
    try:
        body = read_body(request, max_body, keep=True)  # request.form parses it next
    except BodyTooLargeError:
        return _json(413, {"error": f"body over {max_body} bytes"})
    except BodyIncompleteError:
        return _json(400, {"error": "incomplete body"})
    refusal = verifier.refusal(body, request.headers.get(TIMESTAMP_HEADER),
                               request.headers.get(SIGNATURE_HEADER))
    if refusal is not None:
        log.warning("slack request refused", extra={"reason": str(refusal),
                                                    "remote": request.remote_addr})
        return _json(401, {"error": f"request not verified as Slack's ({refusal})"})
    return {key: value for key, value in request.form.items()}


@dataclass(frozen=True)
class SlackPorts:
    """What the endpoint talks to besides the store: Slack itself, and the scheduler."""

    #: ``views.open(trigger_id, view)``; None when serve has no bot token.
    open_view: Callable[[str, dict[str, Any]], None] | None
    #: Post a message to a ``response_url``.
    respond: Callable[[str, dict[str, Any]], None]
    #: A check-in was stored for this KR (serve asks for a pass).
    on_checkin: Callable[[str], None]


class SlackInteractions:
    """The handler of ``/slack/commands`` and ``/slack/interactions``."""

    def __init__(self, plan: Plan, store: Store, verifier: SlackVerifier, ports: SlackPorts,
                 *, clock: Callable[[], datetime], work: BackgroundWork | None = None,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.plan = plan
        self.store = store
        self.verifier = verifier
        self.ports = ports
        self.clock = clock
        self.work = work or BackgroundWork()
        self.max_body = max_body

    def close(self) -> None:
        self.work.close()

    # -- HTTP ---------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        form = verified_form(request, self.verifier, self.max_body)
        if isinstance(form, Response):
            return form
        try:
            if request.path.endswith("/commands"):
                return self.command(form)
            return self.interaction(interaction_payload(form))
        except SlackRequestError as error:
            return _json(200, _ephemeral(f"Sorry: {error}"))

    # -- slash commands -------------------------------------------------------------------

    def command(self, form: Mapping[str, str]) -> Response:
        command = parse_slash_command(form)
        name = command.subcommand
        if name == "checkin":
            return self.checkin_command(command.args, command.user_id, command.response_url)
        if name in ("status", "explain"):
            kr_id = command.args[0] if command.args else None
            if name == "explain":
                problem = "give the key result: /okr explain KR" if kr_id is None \
                    else unknown_kr_message(self.plan, kr_id)
                if problem is not None:
                    return _json(200, _ephemeral(f"Sorry: {problem}"))
            url = command.response_url
            if url is None:
                return _json(200, _ephemeral("Sorry: Slack sent no response_url"))
            job = (lambda: self.respond_status(url)) if name == "status" \
                else (lambda: self.respond_explain(url, str(kr_id)))
            return _ack() if self.work.submit(job) else self._busy()
        if name == "help":
            return _json(200, _ephemeral(HELP_TEXT))
        return _json(200, _ephemeral(f"Unknown command {name!r}.\n{HELP_TEXT}"))

    def checkin_command(self, args: tuple[str, ...], slack_user: str,
                        response_url: str | None) -> Response:
        words = parse_checkin_words(args)
        problem = unknown_kr_message(self.plan, words.kr_id)
        if problem is not None:
            return _json(200, _ephemeral(f"Not checked in: {problem}"))
        refusal = self.refusal(words.kr_id, slack_user)
        if refusal is not None:
            return _json(200, _ephemeral(refusal))
        try:
            valid = validate_checkin(self.plan.key_result(words.kr_id), value=words.value,
                                     confidence=words.confidence, note=words.note,
                                     names=CHAT_FIELDS)
        except CheckinError as error:
            return _json(200, _ephemeral(f"Not checked in: {error}"))
        author = self.author(slack_user)
        if not self.work.submit(lambda: self.store_checkin(valid, author, response_url)):
            return self._busy()
        return _json(200, _ephemeral(f"Checking in {words.kr_id}…"))

    # -- interactions ---------------------------------------------------------------------

    def interaction(self, payload: Mapping[str, Any]) -> Response:
        kind = payload.get("type")
        if kind == "block_actions":
            return self.button(payload)
        if kind == "view_submission":
            return self.submission(payload)
        return _ack()

    def button(self, payload: Mapping[str, Any]) -> Response:
        actions = payload.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else {}
        action_id = str(action.get("action_id") or "") if isinstance(action, dict) else ""
        if not action_id.startswith(CHECKIN_ACTION):
            return _ack()
        kr_id = str(action.get("value") or "")
        trigger = str(payload.get("trigger_id") or "")
        url = payload.get("response_url")
        url = url if isinstance(url, str) and url else None
        problem = unknown_kr_message(self.plan, kr_id)
        refusal = f"Not checked in: {problem}" if problem else self.refusal(
            kr_id, user_id(payload))
        open_view = self.ports.open_view
        if refusal is None and open_view is None:
            refusal = ("Sorry: serve has no Slack bot token (OKR_SYNC_SLACK_BOT_TOKEN) to open "
                       "the check-in form; use /okr checkin instead.")
        if refusal is not None:
            if url is not None:
                message = _ephemeral(refusal) | {"replace_original": False}
                self.work.submit(lambda: self.ports.respond(url, message))
            return _ack()
        assert open_view is not None
        # Queued behind earlier work only (one thread, in order): the trigger expires three
        # seconds after the click, and views.open is tried once (SlackClient.open_view).
        try:
            view = self.modal(kr_id)
        except SQLAlchemyError as error:
            # E.g. a plan just added to the folder: its store's tables may not exist yet.
            log.warning("slack check-in form not opened: the plan's store is not ready",
                        extra={"error": type(error).__name__})
            if url is not None:
                message = _ephemeral(STORE_NOT_READY) | {"replace_original": False}
                self.work.submit(lambda: self.ports.respond(url, message))
            return _ack()
        return _ack() if self.work.submit(lambda: open_view(trigger, view)) else self._busy()

    def modal(self, kr_id: str) -> dict[str, Any]:
        kr = self.plan.key_result(kr_id)
        now = "not measured yet"
        try:
            snapshot = self.store.latest_snapshot()
            if snapshot is not None:
                card = stored_scorecard(snapshot.document, self.plan)
                scored = next((k for k in card.key_results() if k.id == kr_id), None)
                now = kr_value_text(scored) if scored is not None else now
        except SnapshotError:
            now = "the stored scorecard cannot be read"
        return checkin_modal(kr_id, kr.title, manual=kr.measure.kind == "manual", now_text=now)

    def submission(self, payload: Mapping[str, Any]) -> Response:
        view = payload.get("view")
        view = view if isinstance(view, dict) else {}
        if view.get("callback_id") != CHECKIN_VIEW:
            return _ack()
        kr_id = str(view.get("private_metadata") or "")
        problem = unknown_kr_message(self.plan, kr_id)
        slack_user = user_id(payload)
        refusal = problem or self.refusal(kr_id, slack_user)
        if refusal is not None:
            return self._errors({NOTE_INPUT[0]: refusal})
        typed = modal_values(view)
        try:
            value = parse_modal_value(typed.value_text)
        except SlackRequestError as error:
            return self._errors({VALUE_INPUT[0]: str(error)})
        try:
            valid = validate_checkin(self.plan.key_result(kr_id), value=value,
                                     confidence=typed.confidence, note=typed.note,
                                     names=CHAT_FIELDS)
        except CheckinError as error:
            return self._errors({error.field or NOTE_INPUT[0]: str(error)})
        author = self.author(slack_user)
        if not self.work.submit(lambda: self.store_checkin(valid, author, None)):
            return self._errors({NOTE_INPUT[0]: "okr-sync is busy: try again in a moment"})
        return _ack()  # an empty 200 closes the modal

    # -- rules ----------------------------------------------------------------------------

    def author(self, slack_user: str) -> str:
        """The ``people`` key of the Slack user, else ``slack:<id>`` (``anyone`` plans)."""
        return person_of_slack_user(self.plan, slack_user) or f"slack:{slack_user}"

    def refusal(self, kr_id: str, slack_user: str) -> str | None:
        """None when the Slack user may check in ``kr_id``, else why not (for them)."""
        person = person_of_slack_user(self.plan, slack_user) if slack_user else None
        if may_check_in(self.plan, kr_id, person):
            return None
        owner = self.plan.owner_name(kr_owner(self.plan, kr_id)) or "no owner"
        who = (f"your Slack account ({slack_user}) is not in the plan's `people`"
               if person is None else f"you ({self.plan.owner_name(person)}) are not")
        return (f"Not checked in: only {kr_id}'s owner ({owner}) or the people in the plan's "
                f"`checkins.allowed` may check it in, and {who}.")

    def _errors(self, errors: dict[str, str]) -> Response:
        return _json(200, {"response_action": "errors",
                           "errors": errors})

    def _busy(self) -> Response:
        return _json(200, _ephemeral("okr-sync is busy: try again in a moment."))

    # -- background work ------------------------------------------------------------------

    def store_checkin(self, valid: ValidCheckin, author: str, response_url: str | None) -> None:
        kr_id = valid.kr.id
        try:
            record = self.store.add_checkin(kr_id, value=valid.value,
                                            confidence=valid.confidence, note=valid.note,
                                            author=author)
        except Exception as error:
            log.error("slack check-in not stored", extra={"kr": kr_id,
                                                          "error": type(error).__name__})
            if response_url is not None:
                self.ports.respond(response_url, _ephemeral(
                    f"Not checked in: the state store could not be written "
                    f"({type(error).__name__}); try again."))
            return
        log.info("check-in stored from slack", extra={"kr": kr_id, "author": author})
        self.ports.on_checkin(kr_id)
        if response_url is not None:
            parts = [f"value {valid.value:g}" if valid.value is not None else None,
                     valid.confidence.replace("_", " ") if valid.confidence else None,
                     "a note for the next change note" if valid.note else None]
            said = ", ".join(p for p in parts if p)
            warn = "".join(f"\nwarning: {w}" for w in valid.warnings)
            self.ports.respond(response_url, _ephemeral(
                f"Checked in {kr_id} at {record.at.isoformat(timespec='seconds')}: {said}.{warn}"))

    def latest_scorecard(self, response_url: str) -> Scorecard | None:
        """The last stored scorecard, or None after telling the asker why there is none."""
        snapshot = self.store.latest_snapshot()
        if snapshot is None:
            self.ports.respond(response_url, _ephemeral(NO_SCORECARD))
            return None
        try:
            return stored_scorecard(snapshot.document, self.plan)
        except SnapshotError:
            self.ports.respond(response_url, _ephemeral(
                "The stored scorecard cannot be read by this version of okr-sync."))
            return None

    def respond_status(self, response_url: str) -> None:
        card = self.latest_scorecard(response_url)
        if card is None:
            return
        payload = render_slack_scorecard(card)
        self.ports.respond(response_url, _ephemeral(payload.text, list(payload.blocks)))

    def respond_explain(self, response_url: str, kr_id: str) -> None:
        card = self.latest_scorecard(response_url)
        if card is None:
            return
        kr = next((k for k in card.key_results() if k.id == kr_id), None)
        if kr is None:
            self.ports.respond(response_url, _ephemeral(
                f"{kr_id} is not in the latest scorecard yet: the next pass scores it."))
            return
        reasons = next((c.reasons for c in card.changes if c.kr == kr_id), ())
        authors = {key: person.name or key for key, person in self.plan.people.items()}
        blocks = explain_blocks(kr, card, self.store.checkins(kr_id, limit=5), reasons,
                                self.clock(), authors)
        self.ports.respond(response_url, _ephemeral(f"{kr_id} {kr.title}", blocks))


def slack_ports(settings: Settings, on_checkin: Callable[[str], None]) -> SlackPorts:
    """``views.open`` (with a bot token) and ``response_url`` posts for serve's endpoint."""
    token = settings.slack_bot_token
    open_view: Callable[[str, dict[str, Any]], None] | None = None
    if token is not None:
        client = SlackClient(settings.slack_api_url, token)

        def open_view(trigger_id: str, view: dict[str, Any]) -> None:
            try:
                client.open_view(trigger_id, view)
            except SlackError as error:
                # The person sees no form; the log says why (an expired trigger: the
                # click waited more than three seconds).
                log.warning("slack views.open failed", extra={"error": error.code})

    # The sandbox answers on loopback; a real Slack's response_url is hooks.slack.com.
    loopback = is_loopback_host(urlsplit(settings.slack_api_url).hostname)

    def respond(url: str, message: dict[str, Any]) -> None:
        try:
            post_response(url, message, allow_loopback=loopback)
        except SlackResponseError as error:
            log.warning("slack response_url post failed", extra={"error": str(error)})

    return SlackPorts(open_view=open_view, respond=respond, on_checkin=on_checkin)


def build_slack_endpoint(runtime: Runtime, on_checkin: Callable[[str], None], *,
                         clock: Callable[[], datetime]) -> SlackInteractions | None:
    """serve's Slack endpoint, or None when no signing secret is set (then
    ``/slack/*`` are not found and messages keep the CLI instruction)."""
    settings = runtime.settings
    secret = settings.slack_signing_secret
    if secret is None or not isinstance(runtime.store, Store):
        return None
    ports = slack_ports(settings, on_checkin)
    log.info("slack check-ins: POST /slack/commands and /slack/interactions answer",
             extra={"modal": ports.open_view is not None})
    store = runtime.store
    # Accepted signatures go to the store, so a replay to another replica is refused too.
    verifier = SlackVerifier(
        secret, clock=clock,
        first_sighting=lambda key, ttl, now: store.first_sighting(key, ttl, now=now))
    return SlackInteractions(runtime.plan, store, verifier, ports, clock=clock)
