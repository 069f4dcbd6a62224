"""One plan of ``serve --plans`` running on this replica: its own thread and scheduler.

A worker is started when this replica takes the plan's lease and stopped when it gives
the lease back or loses it. It runs the very :class:`Scheduler` of a single-plan
``serve`` on the plan's own store (schema or file), with the plan's own leadership
lock, run lock and fencing epochs: the lease decides where a plan *should* run, the
locks that only one writer runs it, even if two replicas briefly believe they hold
the same lease. :meth:`PlanWorker.stop` lets the current step finish (a pass is never
cut short), so a lease is handed back only between passes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.loop import PassAbandoned, Scheduler, StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.plans import FolderPlan
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import WebhookEvent
from okr_sync.sync.store.locks import Leadership

log = logging.getLogger("okr_sync.service")

#: After a plan's store or clients could not be set up, try again this much later.
SETUP_RETRY = timedelta(seconds=30)

_context = threading.local()


def current_plan() -> str | None:
    """The plan whose worker thread is logging (None elsewhere)."""
    return getattr(_context, "plan", None)


_factory_installed = False
_factory_guard = threading.Lock()


def install_plan_log_field() -> None:
    """Every log record made on a worker's thread carries ``plan`` (its id), so the
    scheduler's own lines ("pass finished", ...) say which plan they are about."""
    global _factory_installed
    with _factory_guard:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            plan = current_plan()
            if plan is not None and not hasattr(record, "plan"):
                record.plan = plan
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


class PlanWorker:
    """A leased plan's scheduler on a thread of its own."""

    def __init__(
        self,
        plan: FolderPlan,
        epoch: int,
        *,
        runtime_factory: Callable[[FolderPlan], Runtime],
        database_url: str,
        schedule: Schedule,
        metrics: ServiceMetrics,
        replica: str,
        clock: Callable[[], datetime],
        debounce: timedelta,
        poll: timedelta | None,
    ) -> None:
        self.plan = plan
        self.epoch = epoch
        self.metrics = metrics
        self.schedule = schedule
        self._runtime_factory = runtime_factory
        self._database_url = database_url
        self._replica = replica
        self._clock = clock
        self._debounce = debounce
        self._poll = poll
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._scheduler: Scheduler | None = None
        self._started_at = clock()
        #: Why the plan's store or clients could not be set up (cleared once they are).
        self.setup_problem: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"okr-sync-plan-{plan.id}",
                                        daemon=True)

    @property
    def id(self) -> str:
        return self.plan.id

    def start(self) -> PlanWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current step (a running pass finishes first)."""
        self._stop.set()
        with self._guard:
            scheduler = self._scheduler
        if scheduler is not None:
            scheduler.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def view(self) -> StatusView:
        with self._guard:
            scheduler = self._scheduler
        if scheduler is None:
            return StatusView(started_at=self._started_at, role="starting")
        return scheduler.state.view()

    def period(self, at: datetime) -> timedelta:
        return self.schedule.period(at.astimezone(self.plan.plan.cycle.zone))

    def on_webhook(self, event: WebhookEvent) -> None:
        with self._guard:
            scheduler = self._scheduler
        if scheduler is not None:
            scheduler.on_webhook(event)

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        _context.plan = self.plan.id
        runtime = self._setup()
        if runtime is None:
            return
        try:
            scheduler = Scheduler(
                runtime, self.schedule,
                leadership=Leadership(self._database_url, "leader", holder=self._replica),
                metrics=self.metrics, clock=self._clock, debounce=self._debounce,
                poll=self._poll,
            )
            with self._guard:
                self._scheduler = scheduler
            if self._stop.is_set():
                scheduler.stop()
            log.info("plan started here", extra={"file": str(self.plan.path),
                                                 "epoch": self.epoch})
            try:
                scheduler.run()
            except PassAbandoned:
                log.warning("pass abandoned")
            finally:
                scheduler.close()
        except Exception:
            log.exception("the plan's scheduler stopped on an error")
        finally:
            runtime.close()
            log.info("plan stopped here")

    def _setup(self) -> Runtime | None:
        """Connect the plan's store (creating or checking its schema) and clients;
        retried while the database is unreachable, until stopped."""
        while not self._stop.is_set():
            try:
                runtime = self._runtime_factory(self.plan)
            except Exception as error:
                self.setup_problem = f"{type(error).__name__}: {error}"[:500]
                log.error("cannot set up the plan; will retry",
                          extra={"error": type(error).__name__, "detail": str(error)[:500],
                                 "retry_s": SETUP_RETRY.total_seconds()})
                self._stop.wait(SETUP_RETRY.total_seconds())
                continue
            self.setup_problem = None
            return runtime
        return None
