"""``okr-sync serve --plans DIR``: every plan of a folder, shared out among replicas.

The coordinator (this module, on the calling thread) does one *round* per heartbeat
(half the schedule's period, 0.2 to 5 s):

1. read the folder again (:mod:`.plans`; a file that does not load is reported once
   per version of it and skipped);
2. renew this replica's heartbeat and the leases of the plans it runs (a lease found
   taken by another replica stops that plan's worker);
3. decide with :func:`.shares.plan_moves` what to take (up to the fair share
   ``ceil(plans / live replicas)``) and what to give back (the excess after a replica
   joined, plans removed from the folder), take free leases, start a
   :class:`.plan_worker.PlanWorker` for each, and ask the excess workers to stop;
4. hand back the lease of every worker that has stopped (after its pass, never in
   the middle of one).

Leases live in two tables of the configured database (:mod:`okr_sync.sync.store.plan_leases`);
each plan's state lives in a store of its own (:func:`okr_sync.sync.store.database.plan_store_url`).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from okr_sync.config.settings import Settings
from okr_sync.sync.logs import register_secret
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.loop import DEFAULT_DEBOUNCE
from okr_sync.sync.service.plan_metrics import PlanMetrics
from okr_sync.sync.service.plan_worker import PlanWorker, install_plan_log_field
from okr_sync.sync.service.plans import FolderPlan, PlanFolder, plan_schedule, scan_plans
from okr_sync.sync.service.schedule import Schedule, ScheduleError
from okr_sync.sync.service.shares import heartbeat_period, lease_ttl, plan_moves
from okr_sync.sync.service.webhooks import WebhookEvent
from okr_sync.sync.store.database import create_plan_schema, plan_store_url
from okr_sync.sync.store.locks import default_holder
from okr_sync.sync.store.plan_leases import PlanLease
from okr_sync.sync.store.store import Store

log = logging.getLogger("okr_sync.service")

#: How long a graceful stop waits for the plans' current passes to finish.
STOP_WAIT_S = 600.0


def replica_id() -> str:
    """``host:pid:random``: unique even when a restarted container reuses host and pid."""
    return f"{default_holder()}:{uuid.uuid4().hex[:6]}"


@dataclass
class CoordinatorView:
    """What ``/readyz`` says about the replica itself."""

    replica: str
    live_replicas: int = 0
    last_round_ok_at: datetime | None = None
    last_round_problem: str | None = None
    leases: dict[str, PlanLease] = field(default_factory=dict)


class PlanCoordinator:
    """Takes, runs and hands back plans (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        settings: Settings,
        schedule: Schedule,
        *,
        runtime_factory: Callable[[Settings, FolderPlan], Runtime],
        check: Callable[..., None] | None = None,
        clock: Callable[[], datetime],
        replica: str | None = None,
        debounce: timedelta = DEFAULT_DEBOUNCE,
        poll: timedelta | None = None,
        metrics: PlanMetrics | None = None,
    ) -> None:
        self.folder_path = folder
        self.settings = settings
        self.schedule = schedule
        self.clock = clock
        self.replica = replica or replica_id()
        self.debounce = debounce
        now = clock()
        self.heartbeat = poll if poll is not None else heartbeat_period(schedule.period(now))
        self.ttl = lease_ttl(schedule.period(now), self.heartbeat)
        #: The plans' schedulers poll their leadership as in a single-plan serve.
        self._worker_poll = poll
        self.metrics = metrics if metrics is not None else PlanMetrics()
        self._runtime_factory = runtime_factory
        self._check = check
        self.store = Store(settings.database_url)
        self.folder = PlanFolder()
        self.workers: dict[str, PlanWorker] = {}
        #: Plans whose workers were asked to stop because this replica gives them back.
        self.releasing: set[str] = set()
        #: Plans whose workers stop because their lease went to another replica.
        self.lost: set[str] = set()
        self._reported: dict[Path, str] = {}
        self._guard = threading.Lock()
        self.view = CoordinatorView(self.replica)
        self._forward_stores: dict[str, Store] = {}
        self._announced = False
        install_plan_log_field()

    # -- a round ---------------------------------------------------------------------------

    def round(self) -> None:
        """One round (see the module docstring); database errors are logged, not raised."""
        now = self.clock()
        self._scan()
        try:
            self._leases(now)
        except Exception as error:
            problem = f"lease round failed ({type(error).__name__})"
            self.view.last_round_problem = problem
            log.warning(problem, extra={"replica": self.replica, "detail": str(error)[:300]})
            self._stop_when_leases_lapsed(now)
        self._collect_stopped()
        with self._guard:
            self.metrics.plans_here.set(len(self.workers) - len(self.lost))

    def _scan(self) -> None:
        try:
            folder = scan_plans(self.folder_path, check=self._check, previous=self.folder,
                                connectable_sources=self.settings.connected_sources())
        except Exception as error:
            log.error("cannot read the plans folder", extra={"detail": str(error)[:300]})
            return
        for path, problem in folder.problems.items():
            if self._reported.get(path) != problem.text:
                log.error("plan file skipped", extra={"file": str(path),
                                                      "problem": problem.text[:2000]})
        for path in set(self._reported) - set(folder.problems):
            log.info("plan file loads again", extra={"file": str(path)})
        self._reported = {path: problem.text for path, problem in folder.problems.items()}
        new = sorted(set(folder.plans) - set(self.folder.plans))
        gone = sorted(set(self.folder.plans) - set(folder.plans))
        if new or gone:
            log.info("plans folder read", extra={"plans": len(folder.plans), "added": new,
                                                 "removed": gone})
        self.folder = folder
        self.metrics.plans_total.set(len(folder.plans))
        self.metrics.plan_problems.set(len(folder.problems))

    def _leases(self, now: datetime) -> None:
        store = self.store
        store.heartbeat_replica(self.replica, self.ttl, now=now)
        running = {plan: w.epoch for plan, w in self.workers.items() if plan not in self.lost}
        kept = store.renew_plan_leases(self.replica, running, self.ttl, now=now)
        for plan in sorted(set(running) - kept):
            log.warning("plan lease taken by another replica: stopping it here after "
                        "the current step", extra={"plan": plan, "replica": self.replica})
            self.lost.add(plan)
            self.releasing.discard(plan)
            self.workers[plan].stop()
        live = store.live_replicas(now=now)
        leases = store.plan_leases()
        if not self._announced:
            # The very first round only announces this replica: replicas started together
            # then see each other before taking plans, instead of one taking them all.
            self._announced = True
            self._finish_round(now, live, leases)
            return
        moves = plan_moves(self.replica, self.folder.plans, leases, live, now,
                           releasing=self.releasing | self.lost)
        for plan in moves.release:
            worker = self.workers.get(plan)
            if worker is None:  # a lease of ours with nothing running here: at once
                self._release(plan, leases[plan].epoch)
                continue
            log.info("giving the plan back after its current step",
                     extra={"plan": plan, "replica": self.replica,
                            "reason": "removed" if plan not in self.folder.plans
                            else "over the fair share"})
            self.releasing.add(plan)
            worker.stop()
        for plan in moves.take:
            if plan in self.workers:
                continue  # its previous worker is still finishing
            lease = store.take_plan_lease(plan, self.replica, self.ttl, now=now)
            if lease is not None:
                leases[plan] = lease
                self._start(self.folder.plans[plan], lease.epoch)
        self._restart_changed()
        self._finish_round(now, live, leases)

    def _finish_round(self, now: datetime, live: set[str], leases: dict[str, PlanLease]
                      ) -> None:
        with self._guard:
            self.view.live_replicas = len(live | {self.replica})
            self.view.leases = leases
            self.view.last_round_ok_at = now
            self.view.last_round_problem = None
        self.metrics.live_replicas.set(len(live | {self.replica}))

    def _start(self, plan: FolderPlan, epoch: int, *, restart: bool = False) -> None:
        log.info("starting the plan again" if restart else "took the plan's lease",
                 extra={"plan": plan.id, "epoch": epoch, "replica": self.replica})
        # A Teams Workflows URL is a secret the plan names: mask it in every log line.
        for targets in plan.plan.routes.values():
            for target in targets:
                if target.teams_workflow is not None:
                    register_secret(os.environ.get(target.teams_workflow.url_env))
        plan_url = plan_store_url(self.settings.database_url, plan.id)
        worker = PlanWorker(
            plan, epoch,
            runtime_factory=lambda p: self._runtime_factory(self._plan_settings(p), p),
            database_url=plan_url, schedule=self._schedule_of(plan),
            metrics=self.metrics.for_plan(plan.id), replica=self.replica, clock=self.clock,
            debounce=self.debounce, poll=self._worker_poll,
        )
        with self._guard:
            self.workers[plan.id] = worker
        worker.start()

    def _schedule_of(self, plan: FolderPlan) -> Schedule:
        try:
            return plan_schedule(plan.plan, self.schedule)
        except ScheduleError as error:  # the folder's check reports it; never reached
            log.error("the plan's schedule is invalid; using the command line's",
                      extra={"plan": plan.id, "detail": str(error)})
            return self.schedule

    def _plan_settings(self, plan: FolderPlan) -> Settings:
        plan_url = plan_store_url(self.settings.database_url, plan.id)
        create_plan_schema(self.settings.database_url, plan_url)
        return self.settings.model_copy(update={"database_url": plan_url, "plan": plan.path})

    def _restart_changed(self) -> None:
        """A plan file edited while its plan runs here: its worker stops after the current
        step and the next round starts it again with the new plan (the lease is kept)."""
        for plan, worker in list(self.workers.items()):
            current = self.folder.plans.get(plan)
            if current is not None and current.stamp != worker.plan.stamp \
                    and not worker.stopping:
                log.info("plan file changed: reloading it after the current step",
                         extra={"plan": plan, "file": str(current.path)})
                worker.stop()

    def _collect_stopped(self) -> None:
        for plan, worker in list(self.workers.items()):
            if not worker.done:
                continue
            with self._guard:
                del self.workers[plan]
            self.metrics.drop(plan)
            if plan in self.lost:
                self.lost.discard(plan)
                continue
            if plan in self.releasing or plan not in self.folder.plans:
                self.releasing.discard(plan)
                self._release(plan, worker.epoch)
                continue
            current = self.folder.plans[plan]
            if not worker.stopping:
                log.error("the plan's worker ended unexpectedly; starting it again",
                          extra={"plan": plan})
            self._start(current, worker.epoch, restart=True)

    def _release(self, plan: str, epoch: int) -> None:
        try:
            self.store.release_plan_lease(plan, self.replica, epoch, now=self.clock())
        except Exception as error:
            # It expires on its own within the lease time.
            log.warning("could not hand the plan's lease back",
                        extra={"plan": plan, "error": type(error).__name__})
            return
        log.info("handed the plan's lease back", extra={"plan": plan, "replica": self.replica})

    def _stop_when_leases_lapsed(self, now: datetime) -> None:
        """Unable to renew for a whole lease time, our leases may be others' by now."""
        last = self.view.last_round_ok_at
        if last is not None and now - last <= self.ttl:
            return
        for plan, worker in self.workers.items():
            if not worker.stopping:
                log.warning("leases not renewed for a lease time: stopping the plan here",
                            extra={"plan": plan})
                self.lost.add(plan)
                worker.stop()

    # -- stop ------------------------------------------------------------------------------

    def stop_all(self, *, wait: bool = True) -> None:
        """Stop every worker (each after its current step), hand the leases back, leave."""
        for worker in self.workers.values():
            worker.stop()
        if wait:
            for worker in list(self.workers.values()):
                worker.join(STOP_WAIT_S)
        for plan, worker in list(self.workers.items()):
            if worker.done and plan not in self.lost:
                self._release(plan, worker.epoch)
        try:
            self.store.retire_replica(self.replica)
        except Exception as error:
            log.warning("could not retire the replica", extra={"error": type(error).__name__})

    def close(self) -> None:
        for store in self._forward_stores.values():
            store.close()
        self.store.close()

    # -- webhooks --------------------------------------------------------------------------

    def on_webhook(self, event: WebhookEvent) -> None:
        """A Jira delivery concerns every plan: local ones debounce it, the others get
        it through their store (their replica's next tick collects it)."""
        with self._guard:
            workers = dict(self.workers)
        for plan_id in sorted(self.folder.plans):
            self.request_pass(plan_id, event, workers.get(plan_id))

    def request_pass(self, plan_id: str, event: WebhookEvent,
                     worker: PlanWorker | None = None) -> None:
        """Ask ``plan_id`` for a pass soon: its worker here debounces the event; elsewhere
        its store carries the request to the replica holding its lease (whose next tick
        collects it, as for a webhook in a single-plan serve with several replicas)."""
        worker = worker or self.worker(plan_id)
        if worker is not None and not worker.stopping:
            worker.on_webhook(event)
            return
        try:
            self._forward(plan_id, event)
        except Exception as error:
            # That plan's next scheduled pass reads the same changes; nothing is lost.
            log.warning("could not forward the pass request to the plan's replica",
                        extra={"plan": plan_id, "error": type(error).__name__})

    def plan_store(self, plan_id: str) -> Store:
        """A handle on ``plan_id``'s own store, whichever replica runs the plan (chat
        check-ins are written there; the plan's schema is made by its first worker)."""
        with self._guard:
            store = self._forward_stores.get(plan_id)
            if store is None:
                store = Store(plan_store_url(self.settings.database_url, plan_id),
                              ensure=False)
                self._forward_stores[plan_id] = store
            return store

    def _forward(self, plan_id: str, event: WebhookEvent) -> None:
        from okr_sync.sync.service.loop import WEBHOOK_LEASE, WEBHOOK_LEASE_TTL

        self.plan_store(plan_id).acquire_lease(
            WEBHOOK_LEASE, f"{self.replica} {event.project or '-'}", WEBHOOK_LEASE_TTL)

    def worker(self, plan: str) -> PlanWorker | None:
        with self._guard:
            return self.workers.get(plan)

    def local_plans(self) -> dict[str, PlanWorker]:
        with self._guard:
            return {p: w for p, w in self.workers.items() if p not in self.lost}
