"""``okr-sync backfill``: each Jira KR's value and score for every past day of the cycle,
rebuilt from the mirror and Jira's changelog, stored as backfilled score history.

Per source: the mirrored records (deleted ones too, with when a pass saw them gone),
their changelogs for only the fields the plan reads (:mod:`okr_sync.connectors.jira.
changelog`), and the site's status categories. For each day, every issue is rewound
to the end of that day (:mod:`.rewind`) and the plan is measured and scored by the very
functions a live pass uses (``evaluate_measures``, ``build_scorecard``). Nothing is
posted: rows go to the score history marked ``backfilled`` (:mod:`okr_sync.sync.store.
history`: re-running replaces them; a day with a live row keeps the live one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from okr_sync.config.plan import Plan
from okr_sync.connectors.jira.changelog import (
    project_keys,
    read_changelogs,
    status_categories,
)
from okr_sync.connectors.jira.client import UNKNOWN_TIMEZONE_FALLBACK, JiraClient
from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.scoring.evaluate import SourceData, evaluate_measures
from okr_sync.scoring.rollup import CheckIn, MeasuredValue, ScoringInput, build_scorecard
from okr_sync.scoring.rules import cycle_bounds
from okr_sync.sync.backfill.days import BackfillInputError, Day, backfill_days, chosen_krs
from okr_sync.sync.backfill.rewind import FieldRoles, IssueTimeline, states_before
from okr_sync.sync.fetch_plan import (
    SourceFetchPlan,
    build_fetch_plan,
    fetch_fingerprint,
    measure_jqls,
)
from okr_sync.sync.jql_local import Matcher, NotLocal, compile_matcher
from okr_sync.sync.pass_history import kr_history_entries
from okr_sync.sync.pull import issue_from_record
from okr_sync.sync.store.records import HistoryEntry
from okr_sync.sync.store.store import Store

log = logging.getLogger(__name__)

#: Called with (what is being done, done so far, total).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BackfillOptions:
    since: date | None = None
    kr_ids: tuple[str, ...] = ()
    progress: Progress | None = None


@dataclass(frozen=True)
class DayValue:
    day: date
    as_of: datetime
    value: float | None
    score: float
    band: str
    confidence: str


@dataclass
class BackfillResult:
    cycle: str
    days: list[date] = field(default_factory=list)
    #: KR id -> its reconstructed days (only KRs that could be rebuilt).
    values: dict[str, list[DayValue]] = field(default_factory=dict)
    #: KR id -> why it was not rebuilt.
    skipped: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    issues: int = 0
    histories: int = 0
    #: Issues gone from Jira: their last mirrored state stands until the pass saw them gone.
    deleted: int = 0
    methods: set[str] = field(default_factory=set)


def _field_ids(plan: Plan, name: str, source_plan: SourceFetchPlan, roles: FieldRoles,
               cloud: bool) -> list[str] | None:
    """The changelog fields the plan's measures read on this source (None: all of them)."""
    if any(q.local is not None for q in source_plan.memberships):
        return None  # raw JQL answered locally may read any field
    config = plan.jira[name]
    wanted = ["issuekey", "project", "status"]
    if config.done == "resolution":
        wanted.append("resolution")
    names = {"labels": "labels", "components": "components", "fix_version": "fixVersions",
             "priority": "priority", "issuetype": "issuetype"}
    epic = False
    for _, spec in plan.jira_measures():
        if spec.source != name or spec.select is None:
            continue
        for key, fid in names.items():
            if spec.select.values(key) is not None:
                wanted.append(fid)
        epic = epic or spec.select.values("epic") is not None
    if epic:
        wanted.append("parent" if cloud else roles.epic_link or "parent")
    wanted += sorted(roles.story_points) + sorted(roles.extra)
    return list(dict.fromkeys(wanted))


def _matchers(client: JiraClient, source_plan: SourceFetchPlan) -> dict[str, Matcher]:
    zone = client.user_timezone()
    tz = None if zone.key == UNKNOWN_TIMEZONE_FALLBACK.key else zone
    matchers = {}
    for query in source_plan.memberships:
        if query.local is None:
            continue
        try:
            matchers[query.owner] = compile_matcher(query.local, tz=tz, cloud=client.is_cloud)
        except NotLocal:
            continue
    return matchers


@dataclass
class _Source:
    name: str
    plan: SourceFetchPlan
    timelines: list[IssueTimeline]
    categories: dict[str, str]
    roles: FieldRoles
    matchers: dict[str, Matcher]
    resolve_key: Callable[[str], str | None]

    def data(self, plan: Plan, day: Day) -> SourceData:
        issues: dict[str, JiraIssue] = {}
        for timeline in self.timelines:
            state = states_before(timeline, [day.cutoff], self.categories, self.roles)[day.cutoff]
            if state is not None:
                issues[state.id] = state
        memberships: dict[str, list[str] | int] = {}
        failures: dict[str, str] = {}
        for query in self.plan.memberships:
            matcher = self.matchers.get(query.owner)
            if matcher is None:
                failures[query.owner] = "its raw JQL is answered by Jira only: no past answer"
                continue
            ids = sorted((i for i, issue in issues.items() if matcher(issue, issues)),
                         key=lambda i: (len(i), i))
            memberships[query.owner] = len(ids) if query.mode == "count" else ids
        return SourceData(issues=issues, memberships=memberships, failures=failures,
                          resolve_key=self.resolve_key, jql=measure_jqls(plan, self.name))


def _load_source(store: Store, client: JiraClient, plan: Plan, name: str,
                 source_plan: SourceFetchPlan, result: BackfillResult,
                 progress: Progress | None) -> _Source:
    rows = store.mirror_with_deletions(name)
    records = [(issue_from_record(doc), deleted_at) for doc, deleted_at in rows]
    roles = FieldRoles(frozenset(client.story_points_fields()), client.epic_link_field(),
                       frozenset(source_plan.extra_fields), project_keys(client))
    fields = _field_ids(plan, name, source_plan, roles, client.is_cloud)
    total = len(records)

    def tick(done: int) -> None:
        if progress is not None:
            progress(f"changelogs of {name}", done, total)

    logs = read_changelogs(client, [r.id for r, _ in records], fields, progress=tick)
    categories = {f"name:{r.status.casefold()}": r.status_category for r, _ in records
                  if r.status}
    categories.update(status_categories(client))
    result.methods |= logs.methods
    result.issues += total
    result.histories += sum(len(h) for h in logs.histories.values())
    result.deleted += sum(1 for r, gone in records if gone is not None
                          and not logs.histories.get(r.id))
    timelines = [IssueTimeline(record, logs.histories.get(record.id, ()), deleted_at)
                 for record, deleted_at in records]
    return _Source(name, source_plan, timelines, categories, roles,
                   _matchers(client, source_plan),
                   lambda key: store.resolve_key(name, key))


def check_mirror(plan: Plan, store: Store, fetch_plan: Mapping[str, SourceFetchPlan]) -> None:
    """Refuse to rewind a mirror that is not there, or was fetched for another scope:
    every day would be measured on missing issues (a false number, not a history)."""
    latest = store.snapshot_head(published_only=False)
    fetched = latest.document.get("fetch") if latest is not None else None
    for name, source_plan in fetch_plan.items():
        if store.get_cursor(name) is None or not isinstance(fetched, Mapping):
            raise BackfillInputError(
                f"no pass has mirrored Jira source {name!r} yet: run `okr-sync run` first "
                "(backfill rewinds the issues a pass mirrored)")
        if fetched.get(name) != fetch_fingerprint(plan, source_plan):
            raise BackfillInputError(
                f"the mirror of Jira source {name!r} was fetched for other projects or "
                "fields than this plan needs: run `okr-sync run` with this plan first")


def backfill(
    plan: Plan,
    store: Store,
    jira: Callable[[str], JiraClient],
    options: BackfillOptions,
    now: datetime,
) -> BackfillResult:
    """Rebuild and store the daily history; raises ``BackfillInputError`` on bad input
    before anything is fetched or stored."""
    krs = chosen_krs(plan, options.kr_ids)
    days = backfill_days(plan, options.since, now)
    cycle = plan.cycle
    result = BackfillResult(cycle.name, [d.day for d in days])
    if not days or not krs:
        return result
    fetch_plan = build_fetch_plan(plan)
    check_mirror(plan, store, fetch_plan)
    sources = [
        _load_source(store, jira(name), plan, name, source_plan, result, options.progress)
        for name, source_plan in fetch_plan.items()
    ]
    cycle_start = cycle_bounds(cycle.start, cycle.end, cycle.zone)[0]
    past = {kr_id: [s for c, s in by_cycle.items() if c != cycle.name]
            for kr_id, by_cycle in store.final_scores_by_cycle().items()}
    wanted = set(krs)
    rows: list[tuple[datetime, list[HistoryEntry]]] = []
    for index, day in enumerate(days, start=1):
        data = {s.name: s.data(plan, day) for s in sources}
        evaluations = evaluate_measures(plan, data, cycle_start=cycle_start)
        measured: dict[str, MeasuredValue] = {}
        for owner, evaluation in evaluations.items():
            if evaluation.error is None and evaluation.measured is not None:
                measured[owner] = evaluation.measured
            elif owner in wanted:
                result.skipped[owner] = evaluation.error or "could not be measured"
        card = build_scorecard(ScoringInput(
            plan=plan, as_of=day.as_of, measured=measured,
            checkins=_checkins(store, cycle_start, day.as_of),
            past_cycle_scores=past, measured_at=day.as_of))
        # The very entries a live pass stores (done and total included, so forecasts
        # from backfilled days use the done-and-scope model as live ones do).
        entries = [e for e in kr_history_entries(plan, card)
                   if e.kr_id in wanted and e.kr_id not in result.skipped]
        for e in entries:
            result.values.setdefault(e.kr_id, []).append(
                DayValue(day.day, day.as_of, e.value, e.score, e.band, e.confidence))
        rows.append((day.as_of, entries))
        if options.progress is not None:
            options.progress("days scored", index, len(days))
    rebuilt = sorted(wanted - set(result.skipped))
    first_start = datetime.combine(days[0].day, time.min, tzinfo=cycle.zone)
    result.rows = store.replace_backfilled(
        cycle=cycle.name, kr_ids=rebuilt, since=first_start,
        days=[(at, [e for e in entries if e.kr_id in rebuilt]) for at, entries in rows])
    log.info("backfill finished", extra={"cycle": cycle.name, "days": len(days),
                                         "rows": result.rows, "skipped": len(result.skipped)})
    return result


def _checkins(store: Store, since: datetime, until: datetime) -> Mapping[str, CheckIn]:
    return {
        kr_id: CheckIn(value=c.value, confidence=c.confidence, note=c.note, at=c.value_at,
                       note_at=c.note_at)
        for kr_id, c in store.latest_checkins(since=since, until=until).items()
    }


def describe(result: BackfillResult) -> Sequence[str]:
    """Plain lines for the text output."""
    lines = [f"cycle {result.cycle}: {len(result.days)} days, {result.rows} history rows "
             f"for {len(result.values)} key results (marked backfilled, nothing posted)"]
    if result.days:
        lines.append(f"days {result.days[0].isoformat()} to {result.days[-1].isoformat()}; "
                     f"{result.issues} mirrored issues, {result.histories} changelog entries "
                     f"({', '.join(sorted(result.methods)) or 'none read'})")
    if result.deleted:
        lines.append(f"{result.deleted} issues are gone from Jira: their last mirrored state "
                     "counts until the pass that saw them gone")
    lines += [f"{kr_id}: not rebuilt: {why}" for kr_id, why in sorted(result.skipped.items())]
    return lines
