"""One sync pass (DESIGN.md B): pull, measure, score, diff, commit, deliver.

The pass commits the new snapshot, its score history, the outbox rows, the
mirror updates and the advanced cursors **in one transaction**, and only then
delivers. Unmeasured is not zero: a failing KR (bad JQL) or source keeps its
last measured value marked stale (never news), one never measured is null, a
failed source is named once in the result, and none of it stops the rest. ``dry_run`` runs every
step but writes and posts nothing: it is handed a read-only store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from okr_sync.config.plan import Plan, selector_projects
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.jql import projects_jql
from okr_sync.scoring.diff import diff_scorecard
from okr_sync.scoring.evaluate import Evaluation, SourceData
from okr_sync.scoring.rollup import (
    CheckIn,
    MeasuredValue,
    ScoringInput,
    build_scorecard,
    unique_warnings,
)
from okr_sync.scoring.rules import cycle_bounds
from okr_sync.scoring.scorecard import Delivery, Scorecard, ScoringWarning
from okr_sync.sync.delivery.messages import delivery_action
from okr_sync.sync.delivery.targets import TargetRef
from okr_sync.sync.fetch_plan import (
    SourceFetchPlan,
    fetch_fingerprint,
    jira_filter_url,
    measure_jqls,
)
from okr_sync.sync.measuring import (
    Measurements,
    measure,
    save_measurements,
)
from okr_sync.sync.mirror import KnownMirrored
from okr_sync.sync.pass_history import kpi_history_entries, kr_history_entries, stored_measurements
from okr_sync.sync.pass_types import (
    Deliverer,
    PassOptions,
    PassResult,
    ReadOnlyStoreError,
)
from okr_sync.sync.pull import PulledSource, PullOptions, SourcePuller, skipped_warnings
from okr_sync.sync.snapshot_heads import SnapshotHeads, previous_of
from okr_sync.sync.state import (
    Explanation,
    PassSnapshot,
    explanations_of,
    load_state,
    materialised,
    previous_values,
    published_scores,
    same_scores,
    save_snapshot,
    unchanged_explanations,
    write_source,
)
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.store import OutboxItem, Outcome, RunCounts, Store, StoreError

__all__ = ["Deliverer", "JiraFactory", "PassOptions", "PassResult", "ReadOnlyStoreError",
           "SyncPass"]

log = logging.getLogger(__name__)

JiraFactory = Callable[[str], JiraClient]


class SyncPass:
    """One pass. ``store`` is only read when ``options.dry_run``; otherwise it must be a
    writable :class:`Store`. ``fetch_plan`` is the plan's :func:`build_fetch_plan`; it,
    ``jql_memo``, ``snapshot_heads`` and ``known_mirrored`` are kept by the caller across
    passes (runtime)."""

    def __init__(
        self,
        plan: Plan,
        store: Store | StoreReader,
        jira: JiraFactory,
        deliverer: Deliverer | None,
        options: PassOptions,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        fetch_plan: Mapping[str, SourceFetchPlan],
        snapshot_heads: SnapshotHeads | None = None,
        jql_memo: dict[str, dict[str, str]] | None = None,
        known_mirrored: KnownMirrored | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.jira = jira
        self.deliverer = deliverer
        self.options = options
        self.clock = clock
        self.fetch_plan = fetch_plan
        self.snapshot_heads = snapshot_heads
        self.jql_memo = jql_memo if jql_memo is not None else {}
        self.known_mirrored = known_mirrored

    def _writable(self) -> Store:
        if not isinstance(self.store, Store):
            raise ReadOnlyStoreError("a pass that is not a dry run needs a writable store")
        return self.store

    # -- steps -------------------------------------------------------------------------
    def run(self) -> PassResult:
        run_id = None
        if not self.options.dry_run:
            run_id = self._writable().start_run(self.options.kind, holder=self.options.holder)
        started = time.monotonic()
        log.info("pass started", extra={"run_id": run_id, "kind": self.options.kind,
                                        "dry_run": self.options.dry_run, "full": self.options.full})
        try:
            result = self._run(run_id)
        except BaseException as error:
            log.error("pass failed", extra={"run_id": run_id, "error": type(error).__name__})
            if run_id is not None:
                try:
                    self._writable().finish_run(run_id, "failed",
                                                error_summary=type(error).__name__)
                except StoreError:
                    # The next holder closed it already (this pass lost its lock), or the
                    # store is gone: the original error is the one to report.
                    log.warning("could not record the failed pass", extra={"run_id": run_id})
            raise
        for failure in result.failures:
            log.warning("not measured", extra={"run_id": run_id, "problem": failure})
        log.info(
            "pass finished",
            extra={
                "run_id": run_id,
                "seconds": round(time.monotonic() - started, 3),
                "jira_requests": result.jira_requests,
                "issues_fetched": result.issues_fetched,
                "measure_cpu_s": round(result.measure_cpu_seconds, 4),
                "changes": len(result.scorecard.changes),
                "deliveries": len(result.scorecard.deliveries),
                "exit_code": result.exit_code,
            },
        )
        return result

    def _run(self, run_id: int | None) -> PassResult:
        now = self.clock()
        as_of = self.options.as_of or now
        # Step 1 (settings, plan, lock) is the runtime's. What the store remembers: changes
        # are told against the last *published* snapshot (the one people saw), so moves
        # below notify.min_delta add up until they are news; counts, kept values and
        # fetch fingerprints come from the latest one.
        published_id, published, latest = self._previous_snapshots()
        summaries = {name: self.store.get_measure_summary(name) for name in self.fetch_plan}

        # 2. Pull from Jira.
        pulled, requests = self._pull(now, latest, summaries)

        # 3. Measure and score: incrementally, from the stored measure states and what
        # this pull changed (scoring.incremental), exactly what a full measurement gives;
        # a pass that found nothing new reuses the last evaluations (sync.measuring).
        # Its CPU (this thread's, so serve's other threads do not count) is reported
        # apart from the pull: it is what grows with the mirror.
        measure_started = time.thread_time()
        sources = {name: self._source_data(p) for name, p in pulled.items()}
        sites = {name: self._site(name) for name in pulled}
        measurements = measure(
            self.plan, self.store, pulled, sources,
            cycle_start=self._cycle_start(),
            published_id=published_id,
            published=published, latest=latest,
            sites=sites,
            summaries=summaries,
            may_reuse=latest is not None and not self.options.full and not self.options.refetch,
        )
        evaluations = measurements.evaluations
        # One line per failed source, never one per KR and KPI of it.
        source_failures = [
            f"source {p.name}: {p.source_error}" for p in pulled.values() if p.source_error
        ]
        failures = list(source_failures)
        measured, warnings = self._measured(evaluations, pulled, latest, failures)
        warnings += skipped_warnings(pulled.values())
        scorecard = build_scorecard(
            ScoringInput(
                plan=self.plan,
                as_of=as_of,
                measured=measured,
                checkins=self._checkins(),
                measured_at=now,
                past_cycle_scores=self._past_scores(),
                history=stored_measurements(self.store, self.plan),
            )
        )

        # 4. Diff against the last published scorecard, plan messages, commit.
        reasons = {owner: e.reasons for owner, e in evaluations.items()}
        previous = published_scores(published) if published is not None else None
        changes = diff_scorecard(previous, scorecard, self.plan.notify.min_delta, reasons)
        measure_cpu = time.thread_time() - measure_started
        scorecard = replace(
            scorecard, changes=changes,
            warnings=unique_warnings((*scorecard.warnings, *warnings)),
        )
        result = PassResult(
            scorecard, failures, run_id, requests, sum(p.fetched for p in pulled.values()),
            source_failures=source_failures,
            failed_sources=tuple(sorted(n for n, p in pulled.items() if p.source_error)),
            measured=self._measured_any(evaluations, pulled),
            measure_cpu_seconds=measure_cpu,
        )
        # A first scorecard in which no Jira KR could be measured would tell people
        # nothing true: post nothing and publish nothing, so the first pass that
        # measures is the one people see first.
        nothing_measured = published is None and self._nothing_measured(scorecard)
        messages = []
        if self.deliverer is not None and not nothing_measured:
            messages = self.deliverer.plan_messages(self.plan, scorecard, self.store)
        if nothing_measured and not failures:
            failures.append("no Jira key result could be measured")
        if self.options.dry_run:
            result.scorecard = replace(scorecard, deliveries=self._planned(messages))
            return result
        store = self._writable()
        publish = not nothing_measured and (
            published is None or bool(messages) or bool(scorecard.changes))
        if measurements.unchanged and latest is not None:
            # Nothing new: the items behind these evaluations are the latest snapshot's,
            # their reasons this pass's (told against the published snapshot).
            explanations: Mapping[str, Explanation] = unchanged_explanations(
                latest.explanations, evaluations)
        elif measurements.reused and latest is not None:
            # Owners no change touched keep the latest snapshot's items (their reasons
            # are this pass's); the others are explained by what was measured.
            explanations = explanations_of(evaluations, latest.explanations,
                                           measurements.reused)
        else:
            explanations = explanations_of(evaluations)
        snapshot = PassSnapshot(scorecard, explanations, self._fingerprints())
        self._commit(store, run_id, now, snapshot, pulled, messages, publish, latest,
                     (measurements, published_id, sites, summaries))

        # 5. Deliver the outbox.
        deliveries: list[Delivery] = []
        if self.deliverer is not None:
            deliveries = self.deliverer.deliver(store, fence=self.options.fence)
        result.scorecard = replace(scorecard, deliveries=tuple(deliveries))
        self._finish(store, result)
        return result

    def _measured_any(
        self, evaluations: Mapping[str, Evaluation], pulled: Mapping[str, PulledSource]
    ) -> bool:
        """Whether some Jira measure was evaluated this pass (true for a plan with none)."""
        sources_of = self.plan.measure_sources()
        return not evaluations or any(
            e.ok and e.measured is not None and not pulled[sources_of[owner]].source_error
            for owner, e in evaluations.items()
        )

    def _nothing_measured(self, scorecard: Scorecard) -> bool:
        """Whether the plan has Jira-measured KRs and none of them holds a measured value."""
        jira_krs = {owner for owner, _ in self.plan.jira_measures()}
        krs = [kr for kr in scorecard.key_results() if kr.id in jira_krs]
        return bool(krs) and all(kr.score is None for kr in krs)

    def _planned(self, messages: list[OutboxItem]) -> tuple[Delivery, ...]:
        """What a dry run would send, and how."""
        known = self.store.target_messages({m.target for m in messages})
        return tuple(
            Delivery(m.route, m.target,
                     delivery_action(m.kind, TargetRef.parse(m.target),
                                     known[m.target].scorecard_ref is not None),
                     "dry_run")
            for m in messages
        )

    def _cycle_start(self) -> datetime:
        cycle = self.plan.cycle
        return cycle_bounds(cycle.start, cycle.end, cycle.zone)[0]

    def _pull(
        self, now: datetime, previous: PassSnapshot | None,
        summaries: Mapping[str, Mapping[str, Any] | None],
    ) -> tuple[dict[str, PulledSource], int]:
        pulled: dict[str, PulledSource] = {}
        requests = 0
        for name, source_plan in self.fetch_plan.items():
            queries = {q.owner: q.jql for q in source_plan.memberships}
            state = load_state(self.store, name, queries, previous, summaries.get(name),
                               self.known_mirrored)
            client = self.jira(name)
            # A plan that now needs other projects or fields than the mirror was built
            # for gets a full pull, or old issues would lack what the new measures read.
            fetched_for = previous.fetch.get(name) if previous is not None else None
            try:
                options = PullOptions(
                    now=now,
                    full=self.options.full or fetched_for != self._fingerprint(name),
                    refetch=self.options.refetch,
                    refetch_jql=self._refetch_scopes(name),
                    progress=self.options.progress,
                )
                pulled[name] = SourcePuller(name, client, source_plan).pull(state, options)
            finally:
                requests += client.request_count
        return pulled, requests

    def _fingerprints(self) -> dict[str, str]:
        return {name: self._fingerprint(name) for name in self.fetch_plan}

    def _fingerprint(self, source_name: str) -> str:
        return fetch_fingerprint(self.plan, self.fetch_plan[source_name])

    def _refetch_scopes(self, source_name: str) -> dict[str, str]:
        """For ``resync --kr`` of structured KRs: their projects, refetched ignoring cursors."""
        scopes = {}
        source = self.plan.jira.get(source_name)
        for _, kr in self.plan.key_results():
            measure = kr.measure
            if (
                kr.id in self.options.refetch
                and source is not None
                and measure.kind != "manual"
                and measure.source == source_name
                and measure.select is not None
            ):
                scopes[kr.id] = projects_jql(selector_projects(measure.select, source))
        return scopes

    def _source_data(self, pulled: PulledSource) -> SourceData:
        store, source = self.store, pulled.name
        # Only what this pass pulled: the store resolves everything it already holds.
        by_key = {issue.key.upper(): issue.id for issue in pulled.upserts}
        # The epics the plan names (listed once by the fetch plan), resolved in one read.
        named = set(self.fetch_plan[source].epics)
        resolved = store.resolve_keys(source, named) if named else {}

        def resolve(key: str) -> str | None:
            # The store also knows keys issues had before they moved; what this pass
            # pulled covers a store that does not exist yet (a first dry run).
            found = resolved[key] if key in resolved else store.resolve_key(source, key)
            return found or by_key.get(key.upper())
        site = self._site(pulled.name)
        if source not in self.jql_memo:
            self.jql_memo[source] = measure_jqls(self.plan, source)
        return SourceData(
            issues=pulled.issues,
            memberships=pulled.memberships,
            failures=pulled.failures,
            resolve_key=resolve,
            jql=self.jql_memo[source],
            link=(lambda jql: jira_filter_url(site, jql)) if site else None,
            read=getattr(pulled.issues, "read", None),
        )

    def _site(self, source: str) -> str | None:
        """The Jira site's address (for links), when the client factory knows it."""
        base_url = getattr(self.jira, "base_url", None)
        site = base_url(source) if callable(base_url) else None
        return site if isinstance(site, str) else None

    def _previous_snapshots(
        self,
    ) -> tuple[int | None, PassSnapshot | None, PassSnapshot | None]:
        return previous_of(self.store, self.plan.cycle.name, self.snapshot_heads)

    def _measured(
        self,
        evaluations: Mapping[str, Evaluation],
        pulled: Mapping[str, PulledSource],
        previous: PassSnapshot | None,
        failures: list[str],
    ) -> tuple[dict[str, MeasuredValue], list[ScoringWarning]]:
        kept_values = previous_values(previous)
        measured: dict[str, MeasuredValue] = {}
        warnings: list[ScoringWarning] = []
        failed_sources = {name for name, p in pulled.items() if p.source_error}
        sources_of = self.plan.measure_sources()
        for owner, evaluation in evaluations.items():
            source = sources_of[owner]
            error = evaluation.error
            if source in failed_sources:
                # The source's one failure line says it all: not once per KR and KPI.
                error = "source unavailable"
            elif evaluation.error is not None:
                failures.append(f"{owner}: {evaluation.error}")
            if error is None and evaluation.measured is not None:
                measured[owner] = evaluation.measured
                continue
            kept = kept_values.get(owner)
            if kept is not None:
                measured[owner] = MeasuredValue(
                    kept.value, kept.items, (), (f"not refreshed, kept last value: {error}",),
                    measured_at=kept.measured_at, stale=True,
                )
            elif source not in failed_sources:
                # A failed source is named once by its failure line; scoring itself
                # says "not measured" of each KR it leaves without a value.
                warnings.append(ScoringWarning(f"could not be measured: {error}", kr=owner))
        return measured, warnings

    def _checkins(self) -> dict[str, CheckIn]:
        return {
            kr_id: CheckIn(value=c.value, confidence=c.confidence, note=c.note, at=c.value_at,
                           note_at=c.note_at, note_by=c.note_by)
            for kr_id, c in self.store.latest_checkins(since=self._cycle_start()).items()
        }

    def _past_scores(self) -> dict[str, list[float]]:
        current = self.plan.cycle.name
        past: dict[str, list[float]] = {}
        for kr_id, by_cycle in self.store.final_scores_by_cycle(except_cycle=current).items():
            # In the order the cycles were scored, so names need not sort ("FY26-H2").
            past[kr_id] = list(by_cycle.values())
        return past

    def _commit(
        self,
        store: Store,
        run_id: int | None,
        now: datetime,
        snapshot: PassSnapshot,
        pulled: Mapping[str, PulledSource],
        messages: list[OutboxItem],
        publish: bool,
        latest: PassSnapshot | None,
        measured: tuple[Measurements, int | None, Mapping[str, str | None],
                        Mapping[str, Mapping[str, Any] | None]],
    ) -> None:
        scorecard = snapshot.scorecard
        measurements, published_id, sites, summaries = measured
        # Decided before the transaction: it may read stored explanations.
        quiet = not publish and same_scores(snapshot, latest,
                                            same_explanations=measurements.unchanged)
        if not quiet:
            snapshot = replace(snapshot, explanations=materialised(snapshot.explanations))
        # Fenced: a pass that lost its run lock writes nothing (LockLostError).
        with store.transaction(fence=self.options.fence) as tx:
            for source in pulled.values():
                write_source(tx, source, now)
            if not publish:
                save_measurements(tx, self.plan, pulled, measurements,
                                  published_id=published_id, sites=sites, now=now)
            if quiet:
                # Nothing to remember: a quiet pass every few minutes must not grow
                # the store. Runs and cursors still say when we last looked.
                return
            snapshot_id = save_snapshot(tx, snapshot, run_id=run_id, published=publish,
                                        measured_at=now)
            if publish:
                # Told against the snapshot just published, so that the next quiet pass
                # reuses these evaluations rather than measuring again.
                save_measurements(tx, self.plan, pulled, measurements,
                                  published_id=published_id, sites=sites, now=now,
                                  published_now=snapshot_id, summaries=summaries)
            # The real measurement time, whatever --as-of said (A5).
            tx.add_history(snapshot_id, cycle=scorecard.cycle.name, as_of=now,
                           entries=kr_history_entries(self.plan, scorecard))
            tx.add_kpi_history(snapshot_id, cycle=scorecard.cycle.name, as_of=now,
                               entries=kpi_history_entries(scorecard))
            for message in messages:
                outbox_id = tx.enqueue(replace(message, snapshot_id=snapshot_id))
                if outbox_id is not None and message.kind == "scorecard":
                    tx.supersede_pending(message.target, "scorecard", older_than=outbox_id)

    def _finish(self, store: Store, result: PassResult) -> None:
        if result.run_id is None:
            return
        sent = sum(1 for d in result.scorecard.deliveries if d.status == "sent")
        failed = [d for d in result.scorecard.deliveries if d.status == "failed"]
        outcome: Outcome = "partial" if result.failures or failed else "ok"
        problems = result.failures + [f"{d.target}: {d.reason}" for d in failed]
        summary = "; ".join(problems) or None
        store.finish_run(
            result.run_id,
            outcome,
            RunCounts(
                jira_requests=result.jira_requests,
                issues_fetched=result.issues_fetched,
                changes=len(result.scorecard.changes),
                deliveries_sent=sent,
                deliveries_failed=len(failed),
            ),
            error_summary=summary[:2000] if summary else None,
        )


