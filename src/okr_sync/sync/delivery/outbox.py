"""Deliver the outbox: exactly once, in order per target, editing standing messages in place.

Rows are claimed (``sending``) and committed before anything is sent, then
settled: sent (with the message reference, in the same transaction), retried
later with backoff (transient errors), or failed with the reason (permanent
errors). A row found ``sending`` by a later pass is *uncertain*: on Slack the
channel's history is searched for the row's idempotency key before posting
again. Teams offers no such lookup; an uncertain Teams post is sent again
(a known, documented limit).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from okr_sync.config.plan import Plan
from okr_sync.connectors.errors import PermanentError, TransientError
from okr_sync.connectors.http import DELIVERY_POLICY
from okr_sync.connectors.slack.client import SlackClient, SlackMessageGoneError
from okr_sync.connectors.teams.client import TeamsBotClient, TeamsNotFoundError, TeamsWorkflowClient
from okr_sync.scoring.scorecard import Delivery, Scorecard
from okr_sync.sync.delivery.messages import delivery_action, plan_messages
from okr_sync.sync.delivery.render import teams_bot_activity
from okr_sync.sync.delivery.targets import TargetKind, TargetRef, UnknownTargetError
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.store import ClaimedDelivery, OutboxItem, OutboxRow, Store

log = logging.getLogger(__name__)

#: A pass delivers at most this many rows (bounded loop); the rest wait for the next.
MAX_ROWS_PER_PASS = 500


class DeliveryConfigError(PermanentError):
    """A target cannot be reached with the settings given (e.g. no token, no URL)."""


@dataclass
class Senders:
    """The clients delivery uses, created on first need from factories."""

    slack: Callable[[], SlackClient] | None = None
    teams_bot: Callable[[], TeamsBotClient] | None = None
    teams_workflow: Callable[[str], TeamsWorkflowClient] | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def slack_client(self) -> SlackClient:
        if self.slack is None:
            raise DeliveryConfigError("Slack is not configured: set OKR_SYNC_SLACK_BOT_TOKEN")
        if "slack" not in self._cache:
            self._cache["slack"] = self.slack()
        client: SlackClient = self._cache["slack"]
        return client

    def bot_client(self) -> TeamsBotClient:
        if self.teams_bot is None:
            raise DeliveryConfigError(
                "the Teams bot is not configured: set OKR_SYNC_TEAMS_APP_ID, "
                "OKR_SYNC_TEAMS_APP_SECRET and OKR_SYNC_TEAMS_TENANT_ID"
            )
        if "teams_bot" not in self._cache:
            self._cache["teams_bot"] = self.teams_bot()
        client: TeamsBotClient = self._cache["teams_bot"]
        return client

    def workflow_client(self, env_name: str) -> TeamsWorkflowClient:
        key = f"workflow:{env_name}"
        if key not in self._cache:
            if self.teams_workflow is None:
                raise DeliveryConfigError("Teams Workflows delivery is not configured")
            self._cache[key] = self.teams_workflow(env_name)
        client: TeamsWorkflowClient = self._cache[key]
        return client


def workflow_from_env(env_name: str) -> TeamsWorkflowClient:
    """A Workflows client for the secret URL held in the environment variable ``env_name``."""
    from okr_sync.config.settings import check_url

    url = os.environ.get(env_name)
    if not url:
        raise DeliveryConfigError(
            f"environment variable {env_name} (Teams Workflows URL) is not set"
        )
    try:
        check_url(url, what=env_name)
        return TeamsWorkflowClient(SecretStr(url))
    except ValueError as error:
        raise DeliveryConfigError(str(error)) from None


def _action(row: OutboxRow, target: TargetRef, store: Store) -> str:
    standing = store.get_message_ref(row.target, "scorecard") is not None
    return delivery_action(row.kind, target, standing)


def retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    """How long a row waits after its ``attempts``-th failed try (:data:`DELIVERY_POLICY`)."""
    return timedelta(seconds=DELIVERY_POLICY.backoff(attempts, retry_after))


class OutboxDeliverer:
    """Sends claimed outbox rows through :class:`Senders` and settles them in the store."""

    def __init__(self, senders: Senders, clock: Callable[[], datetime] | None = None) -> None:
        self.senders = senders
        self.clock = clock or (lambda: datetime.now(UTC))

    def deliver(self, store: Store) -> list[Delivery]:
        claimer = f"deliver:{uuid.uuid4().hex}"
        results: list[Delivery] = []
        for _ in range(MAX_ROWS_PER_PASS):
            claimed = store.claim_deliverable(claimer=claimer, now=self.clock(), limit=1)
            if not claimed:
                break
            delivery = self._settle(store, claimed[0])
            fields = {"route": delivery.route, "target": delivery.target,
                      "action": delivery.action, "status": delivery.status}
            if delivery.status == "sent":
                log.info("delivered", extra=fields)
            else:
                log.warning("delivery not sent", extra={**fields, "reason": delivery.reason})
            results.append(delivery)
        return results

    def _settle(self, store: Store, claim: ClaimedDelivery) -> Delivery:
        row = claim.row
        try:
            target = TargetRef.parse(row.target)
        except UnknownTargetError as error:  # a row written by a newer version
            store.mark_failed(row.id, error=str(error))
            return Delivery(row.route, row.target, "post", "failed", str(error))
        action = _action(row, target, store)
        try:
            ref = self._send(store, claim, target)
        except PermanentError as error:
            store.mark_failed(row.id, error=str(error))
            return Delivery(row.route, row.target, action, "failed", str(error))
        except TransientError as error:
            # The claim has counted this try already: attempts is 1 after the first.
            when = self.clock() + retry_delay(row.attempts, error.retry_after)
            store.mark_retry(row.id, next_attempt_at=when, error=str(error))
            return Delivery(row.route, row.target, action, "retrying", str(error))
        except Exception as error:  # one broken row must not block the rows behind it
            # Only the type: an unexpected error's text may quote a payload or a URL.
            reason = f"unexpected {type(error).__name__} while sending"
            log.exception("delivery crashed", extra={"target": row.target})
            store.mark_failed(row.id, error=reason)
            return Delivery(row.route, row.target, action, "failed", reason)
        with store.transaction() as tx:
            if ref is not None and row.kind == "scorecard":
                channel, message_id = ref
                tx.set_message_ref(row.target, "scorecard", channel=channel, message_id=message_id)
            tx.mark_sent(row.id, result_ref=":".join(ref) if ref else None)
        return Delivery(row.route, row.target, action, "sent")

    def _send(
        self, store: Store, claim: ClaimedDelivery, target: TargetRef
    ) -> tuple[str, str] | None:
        row = claim.row
        match target.kind:
            case TargetKind.SLACK:
                return self._send_slack(store, claim, target.name)
            case TargetKind.TEAMS_BOT:
                return self._send_bot(store, row, target.name)
            case TargetKind.TEAMS_WORKFLOW:
                self.senders.workflow_client(target.name).post_card(row.payload["card"])
                # Workflows cannot edit; remember that the standing card went out once.
                return ("workflow", row.idempotency_key) if row.kind == "scorecard" else None

    def _send_slack(self, store: Store, claim: ClaimedDelivery, channel: str) -> tuple[str, str]:
        row = claim.row
        client = self.senders.slack_client()
        text, blocks = row.payload["text"], row.payload.get("blocks")
        standing = store.get_message_ref(row.target, "scorecard")
        if row.kind == "scorecard" and standing is not None:
            try:
                ref = client.update_message(standing.channel, standing.message_id,
                                            text=text, blocks=blocks)
                return ref.channel, ref.ts
            except SlackMessageGoneError:
                pass  # deleted or too old to edit: post a new standing message below
        # Change notes thread under the standing message; a digest or reminder is
        # meant to be seen, so it goes to the channel itself.
        thread_ts = None
        if row.kind == "change_note" and standing is not None:
            thread_ts = standing.message_id
        if claim.uncertain:
            # Anything sent for this row was sent after it was queued.
            since = row.created_at.timestamp() - 60
            found = client.find_message(
                channel, row.idempotency_key, thread_ts=thread_ts, oldest=since
            )
            if found is not None:
                return found.channel, found.ts
        ref = client.post_message(channel, text=text, blocks=blocks, thread_ts=thread_ts,
                                  idempotency_key=row.idempotency_key)
        return ref.channel, ref.ts

    def _send_bot(self, store: Store, row: OutboxRow, conversation: str) -> tuple[str, str]:
        client = self.senders.bot_client()
        activity = teams_bot_activity(row.payload["card"])
        standing = store.get_message_ref(row.target, "scorecard")
        if row.kind == "scorecard" and standing is not None:
            try:
                activity_id = client.update_activity(conversation, standing.message_id, activity)
                return conversation, activity_id or standing.message_id
            except TeamsNotFoundError:
                # The standing card was deleted: forget it and post a new one.
                store.delete_message_ref(row.target, "scorecard")
        return conversation, client.post_activity(conversation, activity)


class Notifier:
    """Plans the messages of a pass and delivers the outbox (the pipeline's Deliverer)."""

    def __init__(self, senders: Senders, *, jira_base_url: str | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.jira_base_url = jira_base_url
        self.deliverer = OutboxDeliverer(senders, clock)

    def plan_messages(
        self, plan: Plan, scorecard: Scorecard, store: StoreReader
    ) -> list[OutboxItem]:
        # Message refs and queued rows in the store tell which targets have a standing message.
        return plan_messages(plan, scorecard, store, jira_base_url=self.jira_base_url)

    def deliver(self, store: Store) -> list[Delivery]:
        return self.deliverer.deliver(store)
