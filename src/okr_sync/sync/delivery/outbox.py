"""Deliver the outbox: exactly once, in order per target, editing standing messages in place.

Rows are claimed (``sending``) and committed before anything is sent, then
settled: sent (with the message reference, in the same transaction), retried
later with backoff (transient errors), or failed with the reason (permanent
errors). A row found ``sending`` by a later pass is *uncertain*: on Slack the
channel's history is searched for the row's idempotency key before posting
again. Teams offers no such lookup; an uncertain Teams post is sent again
(a known, documented limit). A row whose sender may still be posting (its process
lives: it lost the run lock; or it ran on another host) is not claimed at all until
:data:`IN_FLIGHT_GRACE` has passed, and a pass holding a fence (the run lock's epoch,
:mod:`okr_sync.sync.store.fencing`) checks it before every claim and every send.

Different targets are delivered in parallel by a small pool of workers: the
store's claim hands out only the head row of a target that has none in flight,
so each target's rows still go one after another, in order. Slack's pacing is
per channel (one target) and locked, so it holds across workers.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from okr_sync.config.plan import Plan
from okr_sync.connectors.errors import PermanentError, TransientError
from okr_sync.connectors.http import DELIVERY_POLICY
from okr_sync.scoring.scorecard import Delivery, Scorecard
from okr_sync.sync.delivery.addressing import JiraBase
from okr_sync.sync.delivery.messages import delivery_action, plan_messages
from okr_sync.sync.delivery.targets import TargetKind, TargetRef, UnknownTargetError
from okr_sync.sync.store.fencing import active_claimer
from okr_sync.sync.store.locks import LockLostError
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.store import (
    ClaimedDelivery,
    Fence,
    MessageRef,
    OutboxItem,
    OutboxRow,
    Store,
    StoreTransaction,
)

if TYPE_CHECKING:
    # The Slack and Teams connectors are imported when a message is sent (see _send):
    # a pass that sends nothing, the usual one, never needs them.
    from okr_sync.connectors.slack.client import SlackClient
    from okr_sync.connectors.teams.client import TeamsBotClient, TeamsWorkflowClient

log = logging.getLogger(__name__)

#: A pass delivers at most this many rows (bounded loop); the rest wait for the next.
MAX_ROWS_PER_PASS = 500
#: Targets delivered at once: a few overlap the network waits without a burst.
DELIVERY_WORKERS = 4
#: How long a row left ``sending`` by a live (or unverifiable) sender is left alone: longer
#: than one send can take under REQUEST_POLICY (6 tries of at most a 60 s deadline, 90 s
#: of waits, the history lookups around them). After it, the post has landed or died.
IN_FLIGHT_GRACE = timedelta(minutes=15)


class DeliveryConfigError(PermanentError):
    """A target cannot be reached with the settings given (e.g. no token, no URL)."""


@dataclass
class Senders:
    """The clients delivery uses, created on first need from factories."""

    slack: Callable[[], SlackClient] | None = None
    teams_bot: Callable[[], TeamsBotClient] | None = None
    teams_workflow: Callable[[str], TeamsWorkflowClient] | None = None
    _cache: dict[str, Any] = field(default_factory=dict)
    # Delivery workers share the clients: one Slack client means one pacer per channel.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def slack_client(self) -> SlackClient:
        factory = self.slack
        if factory is None:
            raise DeliveryConfigError("Slack is not configured: set OKR_SYNC_SLACK_BOT_TOKEN")
        client: SlackClient = self._cached("slack", factory)
        return client

    def bot_client(self) -> TeamsBotClient:
        factory = self.teams_bot
        if factory is None:
            raise DeliveryConfigError(
                "the Teams bot is not configured: set OKR_SYNC_TEAMS_APP_ID, "
                "OKR_SYNC_TEAMS_APP_SECRET and OKR_SYNC_TEAMS_TENANT_ID"
            )
        client: TeamsBotClient = self._cached("teams_bot", factory)
        return client

    def workflow_client(self, env_name: str) -> TeamsWorkflowClient:
        factory = self.teams_workflow
        if factory is None:
            raise DeliveryConfigError("Teams Workflows delivery is not configured")
        client: TeamsWorkflowClient = self._cached(
            f"workflow:{env_name}", lambda: factory(env_name)
        )
        return client


def workflow_from_env(env_name: str) -> TeamsWorkflowClient:
    """A Workflows client for the secret URL held in the environment variable ``env_name``."""
    from okr_sync.config.settings import check_url
    from okr_sync.connectors.teams.client import TeamsWorkflowClient

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


class SerialStore:
    """The store operations delivery workers use, one at a time.

    Sending overlaps; store calls do not: an in-memory SQLite store has a single
    connection, and serial writes keep SQLite clear of lock contention.
    """

    def __init__(self, store: Store, claimer: str, fence: Fence | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.claimer = claimer
        self.fence = fence

    def claim_deliverable(self, *, now: datetime, limit: int) -> list[ClaimedDelivery]:
        with self._lock:
            return self._store.claim_deliverable(
                claimer=self.claimer, now=now, limit=limit, fence=self.fence,
                in_flight_grace=IN_FLIGHT_GRACE,
            )

    def check_fence(self) -> None:
        """Raise LockLostError when another holder has taken the run lock since."""
        if self.fence is not None:
            with self._lock:
                self._store.check_fence(self.fence)

    def get_message_ref(self, target: str, kind: str) -> MessageRef | None:
        with self._lock:
            return self._store.get_message_ref(target, kind)

    def delete_message_ref(self, target: str, kind: str) -> None:
        with self._lock:
            self._store.delete_message_ref(target, kind)

    def mark_failed(self, outbox_id: int, *, error: str) -> None:
        with self._lock:
            self._store.mark_failed(outbox_id, error=error, claimer=self.claimer)

    def mark_retry(self, outbox_id: int, *, next_attempt_at: datetime, error: str) -> None:
        with self._lock:
            self._store.mark_retry(outbox_id, next_attempt_at=next_attempt_at, error=error,
                                   claimer=self.claimer)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        with self._lock, self._store.transaction() as tx:
            yield tx


def _action(row: OutboxRow, target: TargetRef, store: SerialStore) -> str:
    standing = store.get_message_ref(row.target, "scorecard") is not None
    return delivery_action(row.kind, target, standing)


def _logged(delivery: Delivery) -> Delivery:
    fields = {"route": delivery.route, "target": delivery.target,
              "action": delivery.action, "status": delivery.status}
    if delivery.status == "sent":
        log.info("delivered", extra=fields)
    else:
        log.warning("delivery not sent", extra={**fields, "reason": delivery.reason})
    return delivery


def retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    """How long a row waits after its ``attempts``-th failed try (:data:`DELIVERY_POLICY`)."""
    return timedelta(seconds=DELIVERY_POLICY.backoff(attempts, retry_after))


class OutboxDeliverer:
    """Sends claimed outbox rows through :class:`Senders` and settles them in the store."""

    def __init__(self, senders: Senders, clock: Callable[[], datetime] | None = None,
                 *, workers: int = DELIVERY_WORKERS) -> None:
        if workers < 1:
            raise ValueError("delivery needs at least one worker")
        self.senders = senders
        self.clock = clock or (lambda: datetime.now(UTC))
        self.workers = workers
        # One pool for the deliverer's life, not one per pass: in a long-running serve,
        # new threads every pass took malloc arenas and left memory pinned in them (5,000
        # issues, 40 webhook passes: glibc's thread arenas grew from 0.1 to 5.4 MB, the
        # rest stayed level). The same few threads now deliver every pass; close() ends them.
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def deliver(self, store: Store, fence: Fence | None = None) -> list[Delivery]:
        """Deliver what is due, targets in parallel; the outcomes in outbox order.

        With a ``fence`` (the run lock's epoch), every claim and every send first checks
        that no other holder took the lock: a pass that lost it raises LockLostError
        once the sends already on the wire are settled, and posts nothing more.
        """
        with active_claimer() as claimer:
            return self._deliver(SerialStore(store, claimer, fence))

    def close(self) -> None:
        """Stop the worker threads (after the sends they run); a later deliver starts anew."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _workers(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers,
                                                thread_name_prefix="okr-sync-deliver")
            return self._pool

    def _deliver(self, serial: SerialStore) -> list[Delivery]:
        settled: list[tuple[int, Delivery]] = []
        claimed = 0
        pool = self._workers()
        running: dict[Future[Delivery], int] = {}
        try:
            while True:
                room = min(self.workers - len(running), MAX_ROWS_PER_PASS - claimed)
                if room > 0:
                    # A target with a row in flight under this claimer offers none.
                    for claim in serial.claim_deliverable(now=self.clock(), limit=room):
                        running[pool.submit(self._settle, serial, claim)] = claim.row.id
                        claimed += 1
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    settled.append((running.pop(future), _logged(future.result())))
        finally:
            # On an error (a lost lock), the sends already on the wire still settle first.
            wait(running)
        return [delivery for _, delivery in sorted(settled, key=lambda item: item[0])]

    def _settle(self, store: SerialStore, claim: ClaimedDelivery) -> Delivery:
        row = claim.row
        try:
            target = TargetRef.parse(row.target)
        except UnknownTargetError as error:  # a row written by a newer version
            store.mark_failed(row.id, error=str(error))
            return Delivery(row.route, row.target, "post", "failed", str(error))
        action = _action(row, target, store)
        try:
            store.check_fence()
            ref = self._send(store, claim, target)
        except LockLostError:
            if not claim.uncertain:
                # Not sent by us, and no one else tried: the next holder may send it at once.
                # An uncertain row stays ``sending``, so that it is looked up before any post.
                store.mark_retry(row.id, next_attempt_at=self.clock(),
                                 error="not sent: this pass lost the run lock")
            raise
        except PermanentError as error:
            store.mark_failed(row.id, error=str(error))
            return Delivery(row.route, row.target, action, "failed", str(error))
        except TransientError as error:
            # The claim has counted this try already: attempts is 1 after the first.
            when = self.clock() + retry_delay(row.attempts, error.retry_after)
            store.mark_retry(row.id, next_attempt_at=when, error=str(error))
            return Delivery(row.route, row.target, action, "retrying", str(error))
        except SQLAlchemyError:
            # The state store failing (gone, read-only) is the pass's failure, reported
            # once by the caller, not a crash of this row: nothing more can be recorded.
            raise
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
            tx.mark_sent(row.id, result_ref=":".join(ref) if ref else None,
                         claimer=store.claimer)
        return Delivery(row.route, row.target, action, "sent")

    def _send(
        self, store: SerialStore, claim: ClaimedDelivery, target: TargetRef
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

    def _send_slack(
        self, store: SerialStore, claim: ClaimedDelivery, channel: str
    ) -> tuple[str, str]:
        from okr_sync.connectors.slack.client import SlackMessageGoneError

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
            store.check_fence()  # the lookup took a while: still ours to post?
        ref = client.post_message(channel, text=text, blocks=blocks, thread_ts=thread_ts,
                                  idempotency_key=row.idempotency_key)
        return ref.channel, ref.ts

    def _send_bot(self, store: SerialStore, row: OutboxRow, conversation: str) -> tuple[str, str]:
        from okr_sync.connectors.teams.client import TeamsNotFoundError
        from okr_sync.sync.delivery.render import teams_bot_activity

        client = self.senders.bot_client()
        activity = teams_bot_activity(row.payload["card"], row.payload.get("summary"))
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

    def __init__(self, senders: Senders, *, jira_base_url: JiraBase = None,
                 clock: Callable[[], datetime] | None = None,
                 slack_buttons: bool = False, teams_checkin_form: bool = False,
                 checkin_plan: str | None = None) -> None:
        self.jira_base_url = jira_base_url
        #: ``serve --plans``: the plan id its check-in buttons and forms carry.
        self.checkin_plan = checkin_plan
        #: Slack change notes and reminders carry "Check in" buttons (the Slack app's
        #: interactivity is answered by serve: a signing secret is set).
        self.slack_buttons = slack_buttons
        #: Bot cards carry check-in forms (serve answers them at /api/messages).
        self.teams_checkin_form = teams_checkin_form
        self.deliverer = OutboxDeliverer(senders, clock)

    def plan_messages(
        self, plan: Plan, scorecard: Scorecard, store: StoreReader
    ) -> list[OutboxItem]:
        # Message refs and queued rows in the store tell which targets have a standing message.
        items = plan_messages(plan, scorecard, store, jira_base_url=self.jira_base_url,
                              slack_buttons=self.slack_buttons,
                              checkin_form=self.teams_checkin_form)
        return self.tag(items)

    def tag(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """The items with their check-in surfaces naming the plan (``serve --plans``)."""
        plan_id = self.checkin_plan
        if plan_id is None:
            return items
        from okr_sync.sync.delivery.render.checkin_plan import tag_checkin_plan

        return [replace(item, payload=tag_checkin_plan(item.payload, plan_id))
                for item in items]

    def deliver(self, store: Store, *, fence: Fence | None = None) -> list[Delivery]:
        return self.deliverer.deliver(store, fence)

    def close(self) -> None:
        self.deliverer.close()
