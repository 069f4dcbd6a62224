"""Wiring: from settings and a plan to connected clients, a store and a locked pass.

Everything that reads credentials lives here, so the pass itself only sees
ready clients. Missing settings are reported before anything is fetched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from okr_sync.config.plan import Plan
from okr_sync.config.settings import MAIN_SOURCE, Settings, check_url
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.source import JiraSource
from okr_sync.sync.delivery.addressing import JiraSites
from okr_sync.sync.delivery.outbox import Notifier, Senders, workflow_from_env
from okr_sync.sync.fetch_plan import SourceFetchPlan, build_fetch_plan
from okr_sync.sync.mirror import KnownMirrored
from okr_sync.sync.pipeline import PassOptions, PassResult, SyncPass
from okr_sync.sync.scheduled import send_due
from okr_sync.sync.snapshot_heads import SnapshotHeads
from okr_sync.sync.store.fencing import fenced_run_lock
from okr_sync.sync.store.reader import ReadOnlyStore, StoreReader, open_reader
from okr_sync.sync.store.store import Store

if TYPE_CHECKING:
    from okr_sync.connectors.slack.client import SlackClient
    from okr_sync.connectors.teams.client import TeamsBotClient


class ConfigurationError(Exception):
    """Settings do not allow what the plan asks (exit 2, nothing fetched or posted)."""


#: How long a running process reuses a Jira site's facts (deployment, the user's time
#: zone, the field catalog) before reading them again: a changed zone or a new story
#: points field is seen within this.
SITE_FACTS_MAX_AGE = timedelta(hours=1)


@dataclass
class JiraConnections:
    """Jira clients by source name, created on first use and reused within a process."""

    sources: dict[str, JiraSource]
    make: Callable[[JiraSource], JiraClient] = JiraClient
    _clients: dict[str, JiraClient] = field(default_factory=dict)

    def __call__(self, name: str) -> JiraClient:
        client = self._clients.get(name)
        if client is None:
            client = self.make(self.sources[name])
            self._clients[name] = client
        return client

    def base_url(self, name: str) -> str | None:
        source = self.sources.get(name)
        return source.base_url if source else None

    def reset_counts(self) -> None:
        """Start a new pass: request counts are per pass. The clients stay open, so a
        running ``serve`` keeps its connections and the site's facts between passes
        (re-read every :data:`SITE_FACTS_MAX_AGE`)."""
        for client in self._clients.values():
            client.begin_pass(facts_max_age=SITE_FACTS_MAX_AGE)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _variables(name: str) -> tuple[str, str, str, str]:
    """The setting names of a source's URL, email, API token and PAT (for messages)."""
    prefix = "OKR_SYNC_JIRA_" if name == MAIN_SOURCE else f"OKR_SYNC_JIRA__{name.upper()}__"
    return prefix + "URL", prefix + "EMAIL", prefix + "API_TOKEN", prefix + "PAT"


def jira_sources(
    settings: Settings, plan: Plan, needed: Mapping[str, SourceFetchPlan]
) -> dict[str, JiraSource]:
    """The Jira sources the plan measures from (``needed``: its fetch plan), with
    credentials from settings: the flat ``OKR_SYNC_JIRA_*`` for ``main``,
    ``OKR_SYNC_JIRA__<NAME>__*`` for the others. Every problem of every source is told
    at once, before anything is fetched; Cloud or Data Center is the connector's to
    find out (its ``serverInfo``), so one plan may mix them.
    """
    sources: dict[str, JiraSource] = {}
    problems: list[str] = []
    for name in sorted(needed):
        url_var, email_var, token_var, pat_var = _variables(name)
        connection = settings.jira_source(name)
        if connection is None or not connection.url:
            what = "Jira" if name == MAIN_SOURCE else f"Jira source {name!r}"
            problems.append(f"the plan measures from {what}: set {url_var}")
            continue
        if connection.pat is None and connection.api_token is None:
            problems.append(f"no credentials for Jira source {name!r}: set {email_var} + "
                            f"{token_var} (Cloud) or {pat_var} (Data Center)")
            continue
        try:
            sources[name] = JiraSource(
                base_url=connection.url,
                email=connection.email if connection.pat is None else None,
                api_token=connection.api_token if connection.pat is None else None,
                pat=connection.pat,
                story_points_field=plan.jira[name].story_points_field,
            )
        except ValueError as error:
            problems.append(f"Jira source {name!r} settings: {error}")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return sources


def senders_from_settings(settings: Settings) -> Senders:
    """The chat clients, each made (and its connector imported) when first used: a pass
    that sends nothing imports neither Slack's nor Teams' connector."""
    senders = Senders(teams_workflow=workflow_from_env)
    token = settings.slack_bot_token
    if token is not None:
        def slack() -> SlackClient:
            from okr_sync.connectors.slack.client import SlackClient

            return SlackClient(settings.slack_api_url, token)

        senders.slack = slack
    app_id, secret, tenant = (
        settings.teams_app_id,
        settings.teams_app_secret,
        settings.teams_tenant_id,
    )
    if app_id and secret is not None and tenant:
        def teams_bot() -> TeamsBotClient:
            from okr_sync.connectors.teams.client import TeamsBotClient

            return TeamsBotClient(app_id, secret, tenant, settings.teams_service_url,
                                  authority_host=settings.teams_authority_host)

        senders.teams_bot = teams_bot
    return senders


def check_routes(settings: Settings, plan: Plan) -> None:
    """Refuse a plan whose routes need credentials that settings do not hold."""
    problems = []
    for route, targets in plan.routes.items():
        for target in targets:
            if target.slack is not None and settings.slack_bot_token is None:
                problems.append(f"route {route}: Slack needs OKR_SYNC_SLACK_BOT_TOKEN")
            if target.teams_workflow is not None:
                name = target.teams_workflow.url_env
                url = os.environ.get(name)
                if not url:
                    problems.append(f"route {route}: Teams Workflows URL variable {name} is unset")
                else:
                    try:
                        check_url(url, what=name)
                    except ValueError as error:
                        problems.append(f"route {route}: {error}")
            if target.teams_bot is not None and not (
                settings.teams_app_id and settings.teams_app_secret and settings.teams_tenant_id
            ):
                problems.append(
                    f"route {route}: the Teams bot needs OKR_SYNC_TEAMS_APP_ID, "
                    "OKR_SYNC_TEAMS_APP_SECRET and OKR_SYNC_TEAMS_TENANT_ID"
                )
    if problems:
        raise ConfigurationError("; ".join(sorted(set(problems))))


@dataclass
class Runtime:
    """A connected okr-sync: settings, plan, store and clients, for one or many passes.

    ``store`` is a writable :class:`Store`, or for dry runs a read-only reader of the
    existing store (:func:`open_reader`).
    """

    settings: Settings
    plan: Plan
    store: Store | StoreReader
    jira: JiraConnections
    notifier: Notifier | None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: The plan's Jira queries, computed once for every pass of this runtime.
    fetch_plan: Mapping[str, SourceFetchPlan] | None = None
    #: The previous snapshots as decoded by this runtime's earlier passes (validated
    #: against the store every pass).
    snapshot_heads: SnapshotHeads = field(default_factory=SnapshotHeads)
    #: Each source's measure JQL, built by the first pass (the plan never changes here).
    jql_memo: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Which ids each source's mirror holds, as this runtime's passes asked the store.
    known_mirrored: KnownMirrored = field(default_factory=KnownMirrored)

    def __post_init__(self) -> None:
        if self.fetch_plan is None:
            self.fetch_plan = build_fetch_plan(self.plan)

    def run_pass(self, options: PassOptions) -> PassResult:
        self.jira.reset_counts()
        assert self.fetch_plan is not None
        sync = SyncPass(self.plan, self.store, self.jira, self.notifier, options, self.clock,
                        fetch_plan=self.fetch_plan, snapshot_heads=self.snapshot_heads,
                        jql_memo=self.jql_memo, known_mirrored=self.known_mirrored)
        return sync.run()

    def run_locked(self, options: PassOptions, *, wait: float = 0.0,
                   scheduled: bool = False) -> PassResult:
        """One pass under the run lock; raises LockBusyError when another holds it.

        ``scheduled``: then, still under the lock, send the digest and reminder slots that
        are due (:mod:`okr_sync.sync.scheduled`); their deliveries join the scorecard's.
        """
        if options.dry_run or not isinstance(self.store, Store):
            # Nothing is written, so nothing to serialise with other passes; a pass
            # that should write fails on the read-only store without the lock.
            return self.run_pass(options)
        with fenced_run_lock(self.store, self.settings.database_url, wait=wait) as fence:
            # Holding the lock (and its new epoch) fences every earlier holder: runs still
            # marked as running were killed or lost the lock, and are closed as abandoned.
            self.store.abandon_unfinished_runs()
            result = self.run_pass(replace(options, holder=fence.holder, fence=fence))
            if not scheduled or self.notifier is None:
                return result
            sent = send_due(self.plan, self.store, self.notifier, self.clock(), fence=fence)
        deliveries = tuple(d for r in sent for d in r.deliveries)
        if not deliveries:
            return result
        card = result.scorecard
        return replace(result, scorecard=replace(card, deliveries=card.deliveries + deliveries))

    def close(self) -> None:
        try:
            if self.notifier is not None:
                self.notifier.close()
        finally:
            self.jira.close()
            self.store.close()


def jira_sites(plan: Plan, jira: JiraConnections) -> JiraSites:
    """Each measured KR's issue links go to the site of the source it reads (a KR of a
    second source linked to main's site before), the others to ``main``'s."""
    return JiraSites(jira.base_url(MAIN_SOURCE), {
        owner: jira.base_url(measure.source) for owner, measure in plan.jira_measures()})


def build_runtime(
    settings: Settings,
    plan: Plan,
    *,
    dry_run: bool = False,
    senders: Senders | None = None,
    jira_make: Callable[[JiraSource], JiraClient] | None = None,
    checkin_plan: str | None = None,
    **extra: Any,
) -> Runtime:
    """Check settings against the plan, then connect (nothing is fetched yet).

    A dry run reads the existing store, if any, and never creates or writes one.
    ``checkin_plan`` (``serve --plans``): the plan id its messages' check-in buttons carry.
    """
    fetch_plan = build_fetch_plan(plan)
    sources = jira_sources(settings, plan, fetch_plan)
    if not dry_run and senders is None:
        check_routes(settings, plan)
    jira = JiraConnections(sources, jira_make or JiraClient)
    store: Store | ReadOnlyStore = (
        open_reader(settings.database_url) if dry_run else Store(settings.database_url)
    )
    notifier = Notifier(senders or senders_from_settings(settings),
                        jira_base_url=jira_sites(plan, jira),
                        slack_buttons=settings.slack_signing_secret is not None,
                        teams_checkin_form=settings.teams_bot_checkins,
                        checkin_plan=checkin_plan)
    return Runtime(settings, plan, store, jira, notifier, fetch_plan=fetch_plan, **extra)
