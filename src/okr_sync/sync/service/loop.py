"""The service loop: leadership, scheduled and webhook-triggered passes, scheduled messages.

One thread runs :meth:`Scheduler.run`; every pass and every scheduled message runs
on it, so two passes never overlap in one process (and the run lock keeps them
apart across processes). Each tick the replica polls its leadership: only the
leader runs anything; followers just keep polling, so when the leader dies the
next poll (at most ``poll`` later, never more than half an interval) takes over.

A pass that fails is logged and counted; the loop goes on. Webhook events are
coalesced by a :class:`~okr_sync.sync.service.webhooks.Debouncer` (``debounce``: the
setting ``OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS``, 5 s by default). A follower that
receives a webhook forwards it to the leader through a store lease row, since a
load balancer may send Jira's request to any replica.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.digests import ScheduledMessages
from okr_sync.sync.service.memory import release_memory
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.prune import DailyPrune
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import Debouncer, Trigger, WebhookEvent
from okr_sync.sync.store.fencing import fenced_run_lock
from okr_sync.sync.store.locks import Leadership, LockBusyError, LockLostError
from okr_sync.sync.store.store import Store

log = logging.getLogger("okr_sync.service")

Role = Literal["starting", "leader", "follower", "stopped"]

DEFAULT_DEBOUNCE = timedelta(seconds=5)
MAX_POLL = timedelta(seconds=5)
MIN_POLL = timedelta(milliseconds=200)
#: The lease row through which followers hand webhook triggers to the leader.
WEBHOOK_LEASE = "webhook-pass"
WEBHOOK_LEASE_TTL = timedelta(minutes=30)
#: Shortest pause between ticks, so that a clock that stands still cannot spin the loop.
MIN_SLEEP_S = 0.01


class PassAbandoned(BaseException):
    """Raised into a running pass on a second SIGTERM/SIGINT: stop now, release the lock."""


@dataclass(frozen=True)
class StatusView:
    """What the HTTP endpoints report, read consistently from another thread."""

    started_at: datetime
    role: Role
    leader_since: datetime | None = None
    last_success_at: datetime | None = None
    last_outcome: str | None = None
    passes: int = 0
    pass_running: bool = False
    #: Why the last pass measured nothing (its Jira sources failed); None once one did.
    source_problem: str | None = None
    #: The Jira sources the last pass could not read (the others' KRs were measured).
    failing_sources: tuple[str, ...] = ()
    #: Their failure lines, one per source.
    source_failures: tuple[str, ...] = ()


class ServiceState:
    """The scheduler's status, written by its thread and read by the HTTP threads."""

    def __init__(self, started_at: datetime) -> None:
        self._lock = threading.Lock()
        self._view = StatusView(started_at=started_at, role="starting")

    def view(self) -> StatusView:
        with self._lock:
            return self._view

    def update(self, **changes: object) -> None:
        with self._lock:
            self._view = replace(self._view, **changes)  # type: ignore[arg-type]


def default_poll(schedule: Schedule, at: datetime) -> timedelta:
    return max(MIN_POLL, min(MAX_POLL, schedule.period(at) / 2))


class Scheduler:
    """Runs passes on ``schedule`` and after webhooks, while this replica leads."""

    def __init__(
        self,
        runtime: Runtime,
        schedule: Schedule,
        *,
        leadership: Leadership,
        metrics: ServiceMetrics,
        clock: Callable[[], datetime],
        debounce: timedelta = DEFAULT_DEBOUNCE,
        poll: timedelta | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.runtime = runtime
        self.schedule = schedule
        self.leadership = leadership
        self.metrics = metrics
        self.clock = clock
        self.timer = timer
        self.holder = leadership.holder
        self.debouncer = Debouncer(debounce)
        self.messages = ScheduledMessages(runtime, metrics=metrics, holder=self.holder)
        self.prune = DailyPrune(runtime, holder=self.holder)
        self.state = ServiceState(clock())
        self.poll = poll if poll is not None else default_poll(schedule, self._local(clock()))
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._next_pass: datetime | None = None
        self._busy = threading.Event()
        metrics.set_leader(False)

    # -- called from other threads -------------------------------------------------------

    @property
    def pass_running(self) -> bool:
        return self._busy.is_set()

    def stop(self) -> None:
        """Ask the loop to end after the current step (signal handlers call this)."""
        self.stop_event.set()
        self._wake.set()

    def on_webhook(self, event: WebhookEvent) -> None:
        """A new Jira delivery: debounce it here when leading, else hand it to the leader."""
        if self.state.view().role == "leader":
            self.debouncer.add(self.clock(), event.project)
            self._wake.set()
            return
        store = self.runtime.store
        if not isinstance(store, Store):
            return
        try:
            store.acquire_lease(WEBHOOK_LEASE, f"{self.holder} {event.project or '-'}",
                                WEBHOOK_LEASE_TTL)
        except Exception as error:
            # The leader's next scheduled pass reads the same changes; nothing is lost.
            log.warning("could not forward the webhook to the leader",
                        extra={"error": type(error).__name__})

    # -- the loop ----------------------------------------------------------------------

    def run(
        self,
        sleep: Callable[[float], None] | None = None,
        *,
        max_ticks: int | None = None,
    ) -> None:
        """Tick until :meth:`stop` (or ``max_ticks``); ``sleep`` defaults to an
        interruptible wait that webhooks and :meth:`stop` cut short."""
        pause = sleep or self._interruptible_sleep
        ticks = 0
        while not self.stop_event.is_set():
            wake_at = self.tick()
            ticks += 1
            if self.stop_event.is_set() or (max_ticks is not None and ticks >= max_ticks):
                break
            pause(max(MIN_SLEEP_S, (wake_at - self.clock()).total_seconds()))

    def _interruptible_sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def tick(self) -> datetime:
        """One step: poll leadership, run what is due; returns when to tick next."""
        now = self.clock()
        if not self._poll_leadership(now):
            return now + self.poll
        self._collect_forwarded(now)
        trigger = self.debouncer.take(now)
        due = self._next_pass is not None and now >= self._next_pass
        if (due or trigger is not None) and not self.stop_event.is_set():
            finished = self._run_pass("schedule" if due else "webhook", trigger)
            # The pass's objects are all dropped by now: collect its cycles and give free
            # heap pages back, so the next pass does not start on top of this one's garbage.
            # "pass finished" follows, so whoever reads the process after that line (the
            # benchmark's RSS sample) sees it as the next pass will find it.
            # After the first pass that finished, what outlives it is frozen (once per
            # process, see sync.service.memory).
            release_memory(freeze=finished is not None)
            if finished is not None:
                log.info("pass finished", extra=finished)
            if due:
                self._next_pass = self._following(now, self.clock())
        if not self.stop_event.is_set():
            self.messages.run_due(self.clock())
        if not self.stop_event.is_set():
            self.prune.run_due(self.clock())
        now = self.clock()
        wakes = [now + self.poll, self._next_pass, self.debouncer.due_at()]
        return min(w for w in wakes if w is not None)

    def close(self) -> None:
        """Give up leadership (the loop has ended)."""
        try:
            self.leadership.resign()
        finally:
            self.metrics.set_leader(False)
            self.state.update(role="stopped", leader_since=None)

    # -- steps -------------------------------------------------------------------------

    def _local(self, at: datetime) -> datetime:
        return at.astimezone(self.runtime.plan.cycle.zone)

    def _following(self, started: datetime, ended: datetime) -> datetime:
        upcoming = self.schedule.next_run(self._local(started))
        if upcoming <= ended:
            log.warning("the pass took longer than the schedule's interval",
                        extra={"duration_s": (ended - started).total_seconds()})
            upcoming = self.schedule.next_run(self._local(ended))
        return upcoming

    def _poll_leadership(self, now: datetime) -> bool:
        try:
            leading = self.leadership.poll()
        except Exception as error:
            log.warning("leadership check failed (database unreachable?)",
                        extra={"error": type(error).__name__})
            leading = False
        view = self.state.view()
        if leading and view.role != "leader":
            self._became_leader(now)
        elif not leading and view.role != "follower":
            if view.role == "leader":
                log.warning("lost leadership", extra={"holder": self.holder})
            else:
                log.info("following", extra={"holder": self.holder})
            self._next_pass = None
            self.state.update(role="follower", leader_since=None)
            self.metrics.set_leader(False)
        return leading

    def _became_leader(self, now: datetime) -> None:
        log.info("leading: this replica runs passes now",
                 extra={"holder": self.holder, "schedule": self.schedule.describe()})
        self.state.update(role="leader", leader_since=now)
        self.metrics.set_leader(True)
        self._next_pass = now if self.schedule.runs_at_start else self.schedule.next_run(
            self._local(now))
        self._close_abandoned_runs()

    def _close_abandoned_runs(self) -> None:
        """Runs left open by a leader that died are closed (only safe under the run lock)."""
        store = self.runtime.store
        if not isinstance(store, Store):
            return
        try:
            with fenced_run_lock(store, self.runtime.settings.database_url, holder=self.holder):
                closed = store.abandon_unfinished_runs()
        except LockBusyError:
            return
        except Exception as error:
            log.warning("could not close abandoned runs", extra={"error": type(error).__name__})
            return
        if closed:
            log.info("closed runs left open by a stopped process", extra={"runs": closed})

    def _collect_forwarded(self, now: datetime) -> None:
        store = self.runtime.store
        if not isinstance(store, Store):
            return
        try:
            lease = store.get_lease(WEBHOOK_LEASE)
            if lease is None:
                return
            store.release_lease(WEBHOOK_LEASE, lease.holder)
        except Exception as error:
            log.warning("could not read forwarded webhooks", extra={"error": type(error).__name__})
            return
        project = lease.holder.rsplit(" ", 1)[-1]
        self.debouncer.add(now, None if project == "-" else project)

    def _run_pass(self, reason: str, trigger: Trigger | None) -> dict[str, object] | None:
        """Run one pass; the fields of its ``pass finished`` line (None if it did not run
        to the end: skipped, stopped or failed, each logged here)."""
        context: dict[str, object] = {"reason": reason}
        if trigger is not None:
            context |= {"events": trigger.events, "projects": sorted(trigger.projects)}
        log.info("pass starting", extra=context)
        started = self.timer()
        self._busy.set()
        try:
            result = self.runtime.run_locked(PassOptions(kind="serve"))
        except LockBusyError as error:
            self.metrics.record_pass("skipped", None)
            log.info("pass skipped: another run holds the lock",
                     extra=context | {"holder": error.holder})
            return None
        except LockLostError as error:
            # Not a crash: the lock's session ended and another holder took over; this
            # pass stopped before writing or posting more.
            self.metrics.record_pass("skipped", None)
            log.warning("pass stopped: another run took over the lock",
                        extra=context | {"error": str(error), "holder": error.holder})
            return None
        except Exception as error:
            duration = self.timer() - started
            self.metrics.record_pass("failed", duration)
            self.state.update(last_outcome="failed", passes=self.state.view().passes + 1)
            log.error("pass failed", exc_info=True,
                      extra=context | {"error": type(error).__name__, "duration_s": duration})
            return None
        finally:
            self._busy.clear()
        duration = self.timer() - started
        outcome = "ok" if result.exit_code == 0 else "partial"
        completed = self.clock()
        # last_success means a pass that measured: one whose Jira sources all failed
        # scored nothing new, however cleanly it finished.
        self.metrics.record_pass(outcome, duration, jira_requests=result.jira_requests,
                                 completed_at=completed if result.measured else None,
                                 measure_cpu=result.measure_cpu_seconds)
        self.metrics.record_scores(result.scorecard)
        self.metrics.record_deliveries(result.scorecard.deliveries)
        self.metrics.record_sources(getattr(self.runtime, "fetch_plan", None) or (),
                                    result.failed_sources)
        failing = {"failing_sources": result.failed_sources,
                   "source_failures": tuple(result.source_failures)}
        if result.measured:
            self.state.update(last_success_at=completed, last_outcome=outcome,
                              source_problem=None, passes=self.state.view().passes + 1,
                              **failing)
        else:
            problem = "; ".join(result.source_failures) or "no Jira measure could be evaluated"
            self.state.update(last_outcome=outcome, source_problem=problem,
                              passes=self.state.view().passes + 1, **failing)
        return context | {
            "outcome": outcome, "duration_s": round(duration, 3),
            "jira_requests": result.jira_requests, "issues_fetched": result.issues_fetched,
            "measure_cpu_s": round(result.measure_cpu_seconds, 4),
            "changes": [c.kr for c in result.scorecard.changes],
            "deliveries": [f"{d.target}:{d.status}" for d in result.scorecard.deliveries],
            "failures": result.failures,
        }
