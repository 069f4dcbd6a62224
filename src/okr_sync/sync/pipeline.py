"""One sync pass (DESIGN.md B): pull, measure, score, diff, commit, deliver.

The pass commits the new snapshot, its score history, the outbox rows, the
mirror updates and the advanced cursors **in one transaction**, and only then
delivers. A failing KR (bad JQL) or source keeps its last published value,
is named in the result, and does not stop the rest. ``dry_run`` runs every
step but writes and posts nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from okr_sync.config.plan import Plan, selector_projects
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.jql import projects_jql
from okr_sync.exit_codes import ExitCode
from okr_sync.scoring.diff import diff_scorecard, published_krs
from okr_sync.scoring.evaluate import Evaluation, SourceData, evaluate_measures
from okr_sync.scoring.rollup import CheckIn, MeasuredValue, ScoringInput, build_scorecard
from okr_sync.scoring.rules import cycle_bounds
from okr_sync.scoring.scorecard import Delivery, Scorecard, ScoringWarning
from okr_sync.sync.delivery.messages import delivery_action
from okr_sync.sync.fetch_plan import build_fetch_plan, jira_filter_url, measure_jqls
from okr_sync.sync.pull import (
    PulledSource,
    PullOptions,
    SourcePuller,
)
from okr_sync.sync.state import (
    explain_document,
    load_state,
    previous_states,
    previous_values,
    same_scores,
    write_source,
)
from okr_sync.sync.store.store import (
    HistoryEntry,
    OutboxItem,
    Outcome,
    RunCounts,
    RunKind,
    Snapshot,
    Store,
)

# Aliases of ExitCode, kept for code that imports them from here.
EXIT_OK = ExitCode.OK
EXIT_PARTIAL = ExitCode.FAILURES

log = logging.getLogger(__name__)

JiraFactory = Callable[[str], JiraClient]


class Deliverer(Protocol):
    """Plans messages for a new scorecard and delivers the outbox."""

    def plan_messages(
        self, plan: Plan, scorecard: Scorecard, store: Store | None
    ) -> list[OutboxItem]: ...

    def deliver(self, store: Store) -> list[Delivery]: ...


@dataclass(frozen=True)
class PassOptions:
    kind: RunKind = "run"
    dry_run: bool = False
    full: bool = False
    as_of: datetime | None = None
    #: KR/KPI ids whose Jira queries are re-run ignoring cursors (``resync --kr``).
    refetch: frozenset[str] = frozenset()
    holder: str | None = None
    #: Called with (source, issues fetched so far) during long fetches.
    progress: Callable[[str, int], None] | None = None


@dataclass
class PassResult:
    scorecard: Scorecard
    failures: list[str] = field(default_factory=list)
    run_id: int | None = None
    jira_requests: int = 0
    issues_fetched: int = 0

    @property
    def exit_code(self) -> int:
        failed = [d for d in self.scorecard.deliveries if d.status == "failed"]
        return EXIT_PARTIAL if self.failures or failed else EXIT_OK


class SyncPass:
    def __init__(
        self,
        plan: Plan,
        store: Store | None,
        jira: JiraFactory,
        deliverer: Deliverer | None,
        options: PassOptions,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.plan = plan
        self.store = store
        self.jira = jira
        self.deliverer = deliverer
        self.options = options
        self.clock = clock
        self.fetch_plan = build_fetch_plan(plan)

    # -- steps -------------------------------------------------------------------------
    def run(self) -> PassResult:
        writing = self.store is not None and not self.options.dry_run
        run_id = None
        if writing:
            assert self.store is not None
            run_id = self.store.start_run(self.options.kind, holder=self.options.holder)
        started = time.monotonic()
        log.info("pass started", extra={"run_id": run_id, "kind": self.options.kind,
                                        "dry_run": self.options.dry_run, "full": self.options.full})
        try:
            result = self._run(run_id)
        except BaseException as error:
            log.error("pass failed", extra={"run_id": run_id, "error": type(error).__name__})
            if writing and run_id is not None:
                assert self.store is not None
                self.store.finish_run(run_id, "failed", error_summary=type(error).__name__)
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
                "changes": len(result.scorecard.changes),
                "deliveries": len(result.scorecard.deliveries),
                "exit_code": result.exit_code,
            },
        )
        return result

    def _run(self, run_id: int | None) -> PassResult:
        now = self.clock()
        as_of = self.options.as_of or now
        # Changes are told against the last *published* scorecard (the one people saw), so
        # moves below notify.min_delta add up until they are news; counts and kept values
        # come from the latest scorecard.
        published_doc, latest_doc = self._previous_documents()
        pulled, requests = self._pull(now, latest_doc)
        evaluations = evaluate_measures(
            self.plan,
            {name: self._source_data(p) for name, p in pulled.items()},
            cycle_start=self._cycle_start(),
            previous=previous_states(published_doc),
        )
        failures = [f"source {p.name}: {p.source_error}" for p in pulled.values() if p.source_error]
        measured, warnings = self._measured(evaluations, pulled, latest_doc, failures)
        scorecard = build_scorecard(
            ScoringInput(
                plan=self.plan,
                as_of=as_of,
                measured=measured,
                checkins=self._checkins(),
                past_cycle_scores=self._past_scores(),
            )
        )
        reasons = {owner: e.reasons for owner, e in evaluations.items()}
        previous = published_krs(published_doc) if published_doc is not None else None
        changes = diff_scorecard(previous, scorecard, self.plan.notify.min_delta, reasons)
        scorecard = replace(
            scorecard, changes=changes, warnings=(*scorecard.warnings, *warnings)
        )
        explain = explain_document(evaluations)
        result = PassResult(scorecard, failures, run_id, requests,
                            sum(p.fetched for p in pulled.values()))
        messages = []
        if self.deliverer is not None:
            messages = self.deliverer.plan_messages(self.plan, scorecard, self.store)
        if self.options.dry_run or self.store is None:
            result.scorecard = replace(
                scorecard,
                deliveries=tuple(
                    Delivery(m.route, m.target, self._planned_action(m), "dry_run")
                    for m in messages
                ),
            )
            return result
        publish = published_doc is None or bool(messages) or bool(scorecard.changes)
        self._commit(run_id, now, scorecard, explain, pulled, messages, publish, latest_doc)
        deliveries: list[Delivery] = []
        if self.deliverer is not None:
            deliveries = self.deliverer.deliver(self.store)
        result.scorecard = replace(scorecard, deliveries=tuple(deliveries))
        self._finish(result)
        return result

    def _planned_action(self, message: OutboxItem) -> str:
        standing = (
            self.store is not None
            and self.store.get_message_ref(message.target, "scorecard") is not None
        )
        return delivery_action(message.kind, message.target, standing)

    def _cycle_start(self) -> datetime:
        cycle = self.plan.cycle
        return cycle_bounds(cycle.start, cycle.end, cycle.zone)[0]

    def _pull(
        self, now: datetime, previous_doc: Mapping[str, Any] | None
    ) -> tuple[dict[str, PulledSource], int]:
        pulled: dict[str, PulledSource] = {}
        requests = 0
        for name, source_plan in self.fetch_plan.items():
            queries = {q.owner: q.jql for q in source_plan.memberships}
            state = load_state(self.store, name, queries, previous_doc)
            client = self.jira(name)
            # A plan that now needs other projects or fields than the mirror was built
            # for gets a full pull, or old issues would lack what the new measures read.
            fetched_for = ((previous_doc or {}).get("fetch") or {}).get(name)
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

    def _fingerprint(self, source_name: str) -> str:
        source_plan = self.fetch_plan[source_name]
        config = self.plan.jira[source_name]
        return json.dumps([source_plan.projects, source_plan.extra_fields,
                           config.story_points_field])

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
        resolve = None
        if self.store is not None:
            store, source = self.store, pulled.name

            def resolve(key: str) -> str | None:
                return store.resolve_key(source, key)
        else:
            by_key = {issue.key.upper(): issue.id for issue in pulled.issues.values()}

            def resolve(key: str) -> str | None:
                return by_key.get(key.upper())
        base_url = getattr(self.jira, "base_url", None)
        site = base_url(pulled.name) if callable(base_url) else None
        return SourceData(
            issues=pulled.issues,
            memberships=pulled.memberships,
            failures=pulled.failures,
            resolve_key=resolve,
            jql=measure_jqls(self.plan, pulled.name),
            link=(lambda jql: jira_filter_url(site, jql)) if site else None,
        )

    def _previous_documents(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The last published and the latest scorecard documents (None when none)."""
        if self.store is None:
            return None, None
        # A new cycle starts from scratch: last cycle's scores are no baseline for news.
        cycle = self.plan.cycle.name

        def this_cycle(snapshot: Snapshot | None) -> dict[str, Any] | None:
            return snapshot.document if snapshot is not None and snapshot.cycle == cycle else None

        return (
            this_cycle(self.store.last_published_snapshot()),
            this_cycle(self.store.latest_snapshot()),
        )

    def _measured(
        self,
        evaluations: Mapping[str, Evaluation],
        pulled: Mapping[str, PulledSource],
        previous_doc: Mapping[str, Any] | None,
        failures: list[str],
    ) -> tuple[dict[str, MeasuredValue], list[ScoringWarning]]:
        kept_values = previous_values(previous_doc)
        measured: dict[str, MeasuredValue] = {}
        warnings: list[ScoringWarning] = []
        failed_sources = {name for name, p in pulled.items() if p.source_error}
        sources_of = {owner: measure.source for owner, measure in self.plan.jira_measures()}
        for owner, evaluation in evaluations.items():
            source = sources_of[owner]
            error = evaluation.error
            if source in failed_sources:
                error = pulled[source].source_error
            if error is None and evaluation.measured is not None:
                measured[owner] = evaluation.measured
                continue
            if evaluation.error is not None:
                failures.append(f"{owner}: {evaluation.error}")
            kept = kept_values.get(owner)
            if kept is not None:
                measured[owner] = MeasuredValue(kept[0], kept[1], (),
                                                (f"not refreshed, kept last value: {error}",))
            else:
                warnings.append(ScoringWarning(f"could not be measured: {error}", kr=owner))
        return measured, warnings

    def _checkins(self) -> dict[str, CheckIn]:
        if self.store is None:
            return {}
        return {
            kr_id: CheckIn(value=c.value, confidence=c.confidence, note=c.note)
            for kr_id, c in self.store.latest_checkins(since=self._cycle_start()).items()
        }

    def _past_scores(self) -> dict[str, list[float]]:
        if self.store is None:
            return {}
        current = self.plan.cycle.name
        past: dict[str, list[float]] = {}
        for kr_id, by_cycle in self.store.final_scores_by_cycle().items():
            # In the order the cycles were scored, so names need not sort ("FY26-H2").
            past[kr_id] = [score for cycle, score in by_cycle.items() if cycle != current]
        return past

    def _commit(
        self,
        run_id: int | None,
        now: datetime,
        scorecard: Scorecard,
        explain: dict[str, Any],
        pulled: Mapping[str, PulledSource],
        messages: list[OutboxItem],
        publish: bool,
        latest_doc: Mapping[str, Any] | None,
    ) -> None:
        assert self.store is not None
        document = scorecard.to_json()
        document["explain"] = explain
        document["fetch"] = {name: self._fingerprint(name) for name in self.fetch_plan}
        with self.store.transaction() as tx:
            for source in pulled.values():
                write_source(tx, source, now)
            if not publish and same_scores(document, latest_doc):
                # Nothing to remember: a quiet pass every few minutes must not grow
                # the store. Runs and cursors still say when we last looked.
                return
            snapshot_id = tx.save_snapshot(
                cycle=scorecard.cycle.name, as_of=scorecard.cycle.as_of, document=document,
                run_id=run_id, published=publish,
            )
            tx.add_history(
                snapshot_id,
                cycle=scorecard.cycle.name,
                as_of=scorecard.cycle.as_of,
                entries=[
                    HistoryEntry(kr.id, kr.value, kr.score, kr.band, kr.confidence)
                    for kr in scorecard.key_results()
                ],
            )
            for message in messages:
                outbox_id = tx.enqueue(replace(message, snapshot_id=snapshot_id))
                if outbox_id is not None and message.kind == "scorecard":
                    tx.supersede_pending(message.target, "scorecard", older_than=outbox_id)

    def _finish(self, result: PassResult) -> None:
        if self.store is None or result.run_id is None:
            return
        sent = sum(1 for d in result.scorecard.deliveries if d.status == "sent")
        failed = [d for d in result.scorecard.deliveries if d.status == "failed"]
        outcome: Outcome = "partial" if result.failures or failed else "ok"
        problems = result.failures + [f"{d.target}: {d.reason}" for d in failed]
        summary = "; ".join(problems) or None
        self.store.finish_run(
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


