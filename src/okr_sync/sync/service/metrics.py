"""Prometheus metrics of ``okr-sync serve``, on a registry of their own.

A dedicated :class:`CollectorRegistry` (not prometheus_client's global one) keeps
several services in one process (tests) apart and keeps library metrics out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics import Counter, Gauge, Histogram

from okr_sync.scoring.scorecard import Delivery, Scorecard

PASS_OUTCOMES = ("ok", "partial", "failed", "skipped")
DELIVERY_OUTCOMES = ("sent", "retrying", "failed")
WEBHOOK_RESULTS = (
    "accepted",
    "duplicate",
    "unauthorized",
    "invalid",
    "too_large",
    "disconnected",
    "unsigned_refused",
    "unknown_source",
)
SCHEDULED_KINDS = ("digest", "reminder")

#: Passes take from well under a second (nothing changed) to minutes (a full reconcile).
#: Measuring and scoring takes milliseconds for a webhook's pass, seconds on a large mirror.
MEASURE_CPU_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class ServiceMetrics:
    """Every metric the service exposes on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.pass_duration = Histogram(
            "okr_sync_pass_duration_seconds", "Duration of sync passes", buckets=PASS_BUCKETS,
            registry=r,
        )
        self.measure_cpu = Histogram(
            "okr_sync_pass_measure_cpu_seconds",
            "CPU seconds a pass spent measuring and scoring (mapping, scores, diff)",
            buckets=MEASURE_CPU_BUCKETS, registry=r,
        )
        self.passes = Counter(
            "okr_sync_passes", "Sync passes by outcome (skipped: another run held the lock)",
            ["outcome"], registry=r,
        )
        self.jira_requests = Counter(
            "okr_sync_jira_requests", "HTTP requests made to Jira by sync passes", registry=r
        )
        self.deliveries = Counter(
            "okr_sync_deliveries", "Outbox deliveries to Slack and Teams by outcome",
            ["outcome"], registry=r,
        )
        self.kr_score = Gauge(
            "okr_sync_kr_score", "Score of each key result in the last pass (0..1)", ["kr"],
            registry=r,
        )
        self.objective_score = Gauge(
            "okr_sync_objective_score", "Score of each objective in the last pass (0..1)",
            ["objective"], registry=r,
        )
        self.last_success = Gauge(
            "okr_sync_last_success_timestamp_seconds",
            "Unix time at which the last pass completed", registry=r,
        )
        self.leader = Gauge(
            "okr_sync_leader", "1 while this replica leads (runs passes and scheduled messages)",
            registry=r,
        )
        self.source_up = Gauge(
            "okr_sync_jira_source_up",
            "1 when the last pass read this Jira source, 0 when it failed", ["source"],
            registry=r,
        )
        self.webhooks = Counter(
            "okr_sync_webhooks", "Jira webhook requests by result", ["result"], registry=r
        )
        self.scheduled_messages = Counter(
            "okr_sync_scheduled_messages", "Digest and check-in reminder messages enqueued",
            ["kind"], registry=r,
        )
        #: The score series as last recorded, and how many times one was set (tests).
        self._scores: dict[tuple[Gauge, str], float] = {}
        self.score_series_set = 0
        # Known label values start at 0, so rates and alerts work before the first event.
        for outcome in PASS_OUTCOMES:
            self.passes.labels(outcome)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        for result in WEBHOOK_RESULTS:
            self.webhooks.labels(result)
        for kind in SCHEDULED_KINDS:
            self.scheduled_messages.labels(kind)

    def record_pass(
        self, outcome: str, duration: float | None, *, jira_requests: int = 0,
        completed_at: datetime | None = None, measure_cpu: float | None = None,
    ) -> None:
        """One pass; ``duration`` None for a pass that did not run (``skipped``)."""
        self.passes.labels(outcome).inc()
        if duration is not None:
            self.pass_duration.observe(max(0.0, duration))
        if measure_cpu is not None:
            self.measure_cpu.observe(max(0.0, measure_cpu))
        if jira_requests:
            self.jira_requests.inc(jira_requests)
        if completed_at is not None:
            self.last_success.set(completed_at.timestamp())

    def record_scores(self, scorecard: Scorecard) -> None:
        """The scores of the last pass; KRs and objectives no longer in the plan disappear.

        Only the series whose score moved are set again: a pass that moved one KR of 400
        touches a few series, not 500 (what a webhook's pass would otherwise spend here).
        """
        # An unmeasured KR or objective has no score series: a 0 would be a false one.
        scores: dict[tuple[Gauge, str], float] = {}
        for objective in scorecard.objectives:
            if objective.score is not None:
                scores[(self.objective_score, objective.id)] = objective.score
            for kr in objective.key_results:
                if kr.score is not None:
                    scores[(self.kr_score, kr.id)] = kr.score
        for (gauge, label), _ in self._scores.items() - scores.items():
            if (gauge, label) not in scores:
                gauge.remove(label)
        for (gauge, label), score in scores.items() - self._scores.items():
            gauge.labels(label).set(score)
            self.score_series_set += 1
        self._scores = scores

    def record_sources(self, sources: Iterable[str], failed: Iterable[str]) -> None:
        """Which of the plan's Jira sources the last pass read, and which failed."""
        down = set(failed)
        self.source_up.clear()
        for source in sources:
            self.source_up.labels(source).set(0 if source in down else 1)

    def record_deliveries(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            self.deliveries.labels(delivery.status).inc()

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
