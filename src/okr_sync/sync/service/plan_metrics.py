"""``/metrics`` of ``serve --plans``: every plan's metrics with a ``plan`` label.

Each plan running on this replica keeps its own :class:`ServiceMetrics` (the same
series as a single-plan service); the collector here reads them all at scrape time
and adds ``plan="<id>"`` to every sample, next to the replica's own series (live
replicas, plans run here, plan files skipped). A plan that moves to another replica
is exported there from then on: scrape every replica and aggregate by ``plan``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics import Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from okr_sync.sync.service.metrics import WEBHOOK_RESULTS, ServiceMetrics

#: Series of the replica, not of any plan (a delivery concerns every plan): the plans'
#: own copies, never incremented in this mode, are left out.
REPLICA_SERIES = frozenset({"okr_sync_webhooks"})


class PlanMetrics(Collector):
    """The registry behind ``/metrics`` on a multi-plan replica."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._plans: dict[str, ServiceMetrics] = {}
        self.live_replicas = Gauge(
            "okr_sync_live_replicas", "serve --plans replicas with an unexpired heartbeat",
            registry=self.registry,
        )
        self.plans_here = Gauge(
            "okr_sync_plans_leased", "Plans whose lease this replica holds",
            registry=self.registry,
        )
        self.plans_total = Gauge(
            "okr_sync_plans", "Plans in the folder that loaded", registry=self.registry,
        )
        self.plan_problems = Gauge(
            "okr_sync_plan_files_skipped", "Plan files in the folder that did not load",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "okr_sync_webhooks", "Jira webhook requests by result", ["result"],
            registry=self.registry,
        )
        for result in WEBHOOK_RESULTS:
            self.webhooks.labels(result)
        self.registry.register(self)

    def for_plan(self, plan: str) -> ServiceMetrics:
        """A fresh set of series for a plan starting here (replacing any earlier one)."""
        metrics = ServiceMetrics()
        with self._lock:
            self._plans[plan] = metrics
        return metrics

    def drop(self, plan: str) -> None:
        with self._lock:
            self._plans.pop(plan, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            plans = sorted(self._plans.items())
        families: dict[str, Metric] = {}
        for plan, metrics in plans:
            for family in metrics.registry.collect():
                if family.name in REPLICA_SERIES:
                    continue
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type, family.unit)
                    families[family.name] = merged
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "plan": plan}, sample.value,
                                      sample.timestamp, sample.exemplar)
        yield from families.values()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
