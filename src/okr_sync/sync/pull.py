"""Step 2 of a pass: pull what changed in Jira into the issue mirror (in memory).

Per source: one incremental search from the stored cursor minus an overlap, over
the structured selectors' scope, or over the whole site when raw-JQL members need
details (it then keeps mirrored members outside the scope fresh and doubles as
the change probe); raw-JQL memberships re-run only when the source changed or the
JQL is volatile (one that an issue's own fields decide, only when a changed issue is
or becomes a member, and on the daily reconcile); a pass without a cursor (``--full``)
re-reads every member outside the scope; a reconcile (``--full`` and once a day) finds
deleted and moved-out issues (without a listing of its own after a read of the whole
scope, on Cloud's token pages, that sent every mirrored issue). Nothing is written here:
the pass commits the result together with the scorecard, then advances the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from okr_sync.connectors.errors import ConnectorError, PermanentError
from okr_sync.connectors.jira.by_id import read_issues_by_id
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.jql import (
    DEFAULT_ORDER_BY,
    incremental_jql,
    jql_datetime_literal,
)
from okr_sync.connectors.jira.records import JiraIssue, parse_jira_datetime
from okr_sync.scoring.scorecard import ScoringWarning
from okr_sync.sync.fetch_plan import MembershipQuery, SourceFetchPlan
from okr_sync.sync.pull_local import (
    FetchedIds,
    JqlCheckResult,
    MirrorAnswers,
    local_matchers,
    local_membership,
    look_up_stored_members,
    mirrored_of,
    mirrored_records,
    patchable,
    recheck_mirrored,
    screen_matchers,
    touched_issues,
    unaffected,
)

#: Searches re-read this much before the cursor: JQL dates have minute precision,
#: and an update may become searchable a little after its timestamp.
DEFAULT_OVERLAP = timedelta(minutes=5)
#: A full reconcile runs at least this often, even without ``--full``.
RECONCILE_EVERY = timedelta(hours=24)
#: Progress is reported every this many issues.
PROGRESS_EVERY = 500
#: Issues fetched by id at once for raw-JQL members outside the mirror's scope.
DETAIL_BATCH = 100


def issue_from_record(doc: Mapping[str, Any]) -> JiraIssue:
    """A :class:`JiraIssue` back from the JSON the store keeps."""

    def when(value: Any) -> datetime | None:
        if value is None:
            return None
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    created = when(doc["created"])
    updated = when(doc["updated"])
    assert created is not None and updated is not None
    points = doc.get("story_points")
    return JiraIssue(
        id=str(doc["id"]),
        key=str(doc["key"]),
        project=str(doc["project"]),
        issuetype=str(doc.get("issuetype", "")),
        is_subtask=bool(doc.get("is_subtask", False)),
        parent_id=doc.get("parent_id"),
        parent_key=doc.get("parent_key"),
        summary=str(doc.get("summary", "")),
        status=str(doc.get("status", "")),
        status_category=str(doc.get("status_category", "undefined")),
        resolution=doc.get("resolution"),
        resolution_date=when(doc.get("resolution_date")),
        priority=doc.get("priority"),
        labels=tuple(doc.get("labels") or ()),
        components=tuple(doc.get("components") or ()),
        fix_versions=tuple(doc.get("fix_versions") or ()),
        story_points=float(points) if points is not None else None,
        created=created,
        updated=updated,
        fields=dict(doc.get("fields") or {}),
    )


@dataclass(frozen=True)
class SourceState:
    """What the store remembers of a source before this pass."""

    issues: Mapping[str, JiraIssue]
    cursor: datetime | None = None
    last_full_reconcile: datetime | None = None
    #: Stored raw-JQL memberships: owner -> (jql, member ids).
    memberships: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    #: When the source was last looked at (our clock), for the outside-scope probe.
    probed_at: datetime | None = None
    #: Counts of raw-JQL ``count`` measures at the last published pass: owner -> (jql, count).
    counts: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    #: Jira's verdict on raw JQL answered on the mirror, for its current JQL: owner -> verdict.
    jql_checks: Mapping[str, str] = field(default_factory=dict)
    #: Issue keys -> the ids they name now or named before a move (the store's key
    #: history), None when unknown; None without a store.
    resolve_keys: Callable[[Collection[str]], Mapping[str, str | None]] | None = None
    #: Owners no longer in the plan whose memberships the store still holds (dropped).
    unplanned_memberships: frozenset[str] = frozenset()


@dataclass
class PulledSource:
    """The mirror of one source after this pass's pull, and what to write back."""

    name: str
    #: The mirror as this pass leaves it (the store's view, or a plain dict in tests).
    issues: MutableMapping[str, JiraIssue]
    upserts: list[JiraIssue] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    memberships: dict[str, list[str] | int] = field(default_factory=dict)
    refreshed_memberships: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: Stored memberships no longer the latest answer (the mirror could not answer and
    #: Jira did, without its ids): dropped, so no later pass patches them.
    forgotten_memberships: set[str] = field(default_factory=set)
    #: Stored memberships this pass kept as they are, to be marked as holding through the
    #: new cursor (empty when the cursor did not move).
    kept_memberships: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)
    cursor: datetime | None = None
    reconciled_at: datetime | None = None
    source_error: str | None = None
    fetched: int = 0
    #: Ids whose details were read from Jira this pass (these need no re-read).
    read: set[str] = field(default_factory=set)
    #: Issues outside the scope and the mirror that a search read, until a membership takes them.
    aside: dict[str, JiraIssue] = field(default_factory=dict)
    #: Issues this pass skipped, their id or key not what Jira promises (as shown).
    skipped: list[str] = field(default_factory=list)
    #: Comparisons with Jira made this pass: owner -> (jql, verdict, detail).
    jql_checks: dict[str, JqlCheckResult] = field(default_factory=dict)


@dataclass(frozen=True)
class PullOptions:
    now: datetime
    full: bool = False
    overlap: timedelta = DEFAULT_OVERLAP
    #: Owners (KR or KPI ids) whose queries must be re-run regardless of cursors.
    refetch: frozenset[str] = frozenset()
    #: Structured owners' JQL to refetch in full (``resync --kr``).
    refetch_jql: Mapping[str, str] = field(default_factory=dict)
    #: Called with (source, issues fetched so far) while long searches stream in.
    progress: Callable[[str, int], None] | None = None

    def __post_init__(self) -> None:
        if self.overlap < timedelta(0):
            raise ValueError("the overlap must not be negative")


class SourcePuller:
    """Pulls one source through a :class:`JiraClient`."""

    def __init__(self, name: str, client: JiraClient, plan: SourceFetchPlan) -> None:
        self.name = name
        self.client = client
        self.plan = plan

    def pull(self, state: SourceState, options: PullOptions) -> PulledSource:
        # A mutable view of the store (sync.mirror) is the pass's own: it is changed in
        # place, never copied, so the mirror is never held in memory whole.
        issues = (state.issues
                  if isinstance(state.issues, MutableMapping) and not isinstance(state.issues, dict)
                  else dict(state.issues))
        result = PulledSource(self.name, issues, cursor=state.cursor)
        # Counted per pass (a client may serve many): what this pass skipped is reported.
        self.client.skipped_issues.clear()
        try:
            self._pull(state, options, result)
        except PermanentError as error:
            result.source_error = str(error)
        except ConnectorError as error:
            result.source_error = f"Jira stayed unavailable: {error}"
        result.forgotten_memberships |= state.unplanned_memberships
        if result.cursor == state.cursor:
            # Nothing to record: the stored answers already hold through this cursor.
            result.kept_memberships.clear()
        result.kept_memberships -= {*result.refreshed_memberships, *result.forgotten_memberships}
        result.skipped = sorted(
            f"{key!r} (id {ident})" if key and ident else repr(key) if key else f"id {ident!r}"
            for ident, key in self.client.skipped_issues)
        return result

    def _pull(self, state: SourceState, options: PullOptions, result: PulledSource) -> None:
        cursor = None if options.full else state.cursor
        due = state.last_full_reconcile is None or (
            options.now - state.last_full_reconcile >= RECONCILE_EVERY
        )
        if cursor is None or due:
            # What earlier passes learnt of which ids are mirrored is asked again.
            recheck_mirrored(result.issues)
        matchers = local_matchers(self.client, self.plan, state)
        remote = tuple(q for q in self.plan.memberships if q.owner not in matchers)
        #: The scope's ids as a read of the whole scope just listed them (None: no such read).
        listed: set[str] | None = None
        if cursor is None:
            changed = True
            if self.plan.scope_jql is not None:
                jql = incremental_jql(list(self.plan.projects), None, self.client.user_timezone())
                listed = set()
                newest = self._search_into(result, jql, options, listed=listed)
                result.cursor = newest.astimezone(UTC) if newest else None
        else:
            changed = self._incremental(cursor, options, result, state.probed_at, remote)
        if result.cursor is None:
            # Nothing in scope yet: the next pull's overlap covers clock skew.
            result.cursor = options.now
        for owner, jql in options.refetch_jql.items():
            self._search_into(result, jql, options, context=owner)
        if self.plan.scope_jql is not None and (options.full or due):
            self._reconcile(result, options.now, listed)
        elif options.full or due:
            # No scope to list: this pass's re-run of every raw JQL Jira answers is the
            # daily one (without the time, every later pass would count as due).
            result.reconciled_at = options.now
        # Jira's answers that no change of this pass can have moved are kept (the search
        # read every issue of the site updated since they were taken); the daily
        # reconcile asks Jira again, which also sees members deleted outside the scope.
        screens = ({} if cursor is None or due
                   else screen_matchers(self.client, remote, state.resolve_keys))
        look_up_stored_members(result.issues, state, remote)
        answers = MirrorAnswers({
            q.owner: matchers[q.owner] for q in self.plan.memberships
            if q.owner in matchers
            and not patchable(q, state, options, reread=cursor is None)
        })
        for query in self.plan.memberships:
            matcher = matchers.get(query.owner)
            if matcher is not None and local_membership(
                self, query, matcher, state, options, result,
                reread=cursor is None, verify=options.full or due, answers=answers,
            ):
                continue
            stored = state.memberships.get(query.owner)
            # What the pass changed so far (earlier memberships may have read issues again).
            kept = (changed and query.owner in screens and stored is not None
                    and stored[0] == query.jql
                    and unaffected(stored[1], screens[query.owner], *touched_issues(result),
                                   result.issues))
            self._membership(query, state, options, result,
                             changed=(changed and not kept) or (due and query.screen is not None),
                             reread=cursor is None)

    def _search_into(self, result: PulledSource, jql: str, options: PullOptions,
                     context: str | None = None, *,
                     listed: set[str] | None = None) -> datetime | None:
        """Stream a search into the mirror (ticking progress); returns the newest update.

        ``listed`` collects the ids the search returned.
        """
        newest: datetime | None = None
        batch: list[JiraIssue] = []
        for issue in self.client.search(jql, self.plan.extra_fields,
                                        context=context or f"source {self.name}"):
            newest = self.client.high_water_mark(
                [issue.updated] if newest is None else [newest, issue.updated])
            if listed is not None:
                listed.add(issue.id)
            batch.append(issue)
            if len(batch) >= PROGRESS_EVERY:
                self._merge(result, batch)
                batch = []
                if options.progress is not None:
                    options.progress(self.name, result.fetched)
        self._merge(result, batch)
        if options.progress is not None:
            options.progress(self.name, result.fetched)
        return newest

    def _incremental(self, cursor: datetime, options: PullOptions, result: PulledSource,
                     probed_at: datetime | None, remote: tuple[MembershipQuery, ...]) -> bool:
        """What changed since the last pass; returns whether anything did.

        One search since ``cursor`` (minus the overlap) feeds the mirror. Raw-JQL
        members may lie outside the structured scope, and their details must be as
        fresh as the scope's: with id memberships that search covers the whole site
        and doubles as their change probe. Memberships that only count need no
        details, so one approximate count over the rest of the site probes for them.
        Either way a pass with nothing new makes one search. ``remote`` are the
        memberships asked from Jira (those answered on the mirror need no probe).
        """
        tz = self.client.user_timezone()
        since = cursor.astimezone(UTC) - options.overlap
        # Issues outside the scope are not mirrored unless a membership takes them:
        # one updated before the last look (minus the overlap) was already probed.
        last_look = max(cursor, probed_at) if probed_at is not None else cursor
        probed_since = last_look.astimezone(UTC) - options.overlap
        needs_details = any(q.mode == "ids" for q in remote)
        if needs_details:
            jql = f"updated >= {jql_datetime_literal(since, tz)} {DEFAULT_ORDER_BY}"
        elif self.plan.scope_jql is not None:
            jql = incremental_jql(list(self.plan.projects), since, tz)
        else:
            jql = None
        changed = False
        if jql is not None:
            # search() yields each id once; an issue updated again while the pages
            # were read is newer than the cursor, so the next pull picks it up.
            pulled = list(
                self.client.search(jql, self.plan.extra_fields, context=f"source {self.name}")
            )
            changed = self._merge_pulled(result, pulled, probed_since) > 0
            # A future `updated` (a bad clock, a bad import) never moves the cursor
            # past the server's present: later changes would be missed for good.
            newest = self.client.high_water_mark(i.updated for i in pulled) or cursor
            result.cursor = max(cursor, newest).astimezone(UTC)
        else:
            result.cursor = options.now
        if remote and not needs_details:
            outside = f"updated >= {jql_datetime_literal(probed_since, tz)}"
            if self.plan.scope_jql is not None:
                outside = f"{outside} AND NOT ({self.plan.scope_jql})"
            changed = changed or self.client.approximate_count(outside, context="change probe") > 0
        return changed

    def _merge_pulled(self, result: PulledSource, pulled: list[JiraIssue],
                      probed_since: datetime) -> int:
        """Merge a site-wide search: the scope and mirrored issues now, the rest on demand.

        An unknown issue outside the scope is set aside rather than mirrored: it
        matters only if a membership takes it in. Updated since the last probe, it
        may have just joined one, so it counts as a change (as the count probe did).
        """
        merged: list[JiraIssue] = []
        unknown = 0
        mirrored = mirrored_of(result.issues, [issue.id for issue in pulled])
        for issue in pulled:
            if issue.id in mirrored or issue.project.upper() in self.plan.projects:
                merged.append(issue)
            else:
                result.aside[issue.id] = issue
                result.read.add(issue.id)
                result.fetched += 1
                unknown += issue.updated >= probed_since
        return self._merge(result, merged) + unknown

    def _merge(self, result: PulledSource, issues: Iterable[JiraIssue], *,
               just_read: bool = True) -> int:
        """Take newer records into the mirror; returns how many were new or changed.

        ``just_read`` is False for records read earlier in the pass (set aside),
        which are counted once, when they were read.
        """
        changed = 0
        batch = list(issues)
        known_of = mirrored_records(result.issues, [issue.id for issue in batch])
        for issue in batch:
            known = known_of.get(issue.id)
            if just_read:
                result.fetched += 1
                result.read.add(issue.id)
            if known is not None and known == issue:
                continue
            if known is None or issue.updated >= known.updated:
                result.issues[issue.id] = issue
                known_of[issue.id] = issue
                result.upserts.append(issue)
                result.deleted.discard(issue.id)
                changed += 1
        return changed

    def _reconcile(self, result: PulledSource, now: datetime,
                   listed: set[str] | None = None) -> None:
        in_scope = {
            i for i, issue in result.issues.items() if issue.project.upper() in self.plan.projects
        }
        if listed is not None and in_scope <= listed and self.client.is_cloud:
            # This pass just read the whole scope: every mirrored issue of the scope was
            # in it (nothing deleted or moved out) and each one it sent is mirrored now,
            # so an id-only listing of the scope would tell nothing more. One missing
            # from the read is confirmed by the listing, as on any reconcile. Only on
            # Cloud, whose page tokens page one result: Data Center pages by offset, and
            # an issue deleted or moved out behind the offset while the pages are read
            # shifts one the read never sees past it (the read's count then still equals
            # the last page's total), so there the listing finds it.
            result.reconciled_at = now
            return
        outcome = self.client.reconcile(
            list(self.plan.projects), in_scope, context=f"reconcile {self.name}"
        )
        for issue_id in outcome.missing_ids:
            result.issues.pop(issue_id, None)
            result.deleted.add(issue_id)
        if outcome.new_ids:
            # Issues the incremental pull missed (e.g. eventual consistency): fetch them.
            self._fetch_ids(result, sorted(outcome.new_ids), "reconcile")
        result.reconciled_at = now

    def _membership(
        self,
        query: MembershipQuery,
        state: SourceState,
        options: PullOptions,
        result: PulledSource,
        *,
        changed: bool,
        reread: bool,
    ) -> None:
        fresh_enough = (
            not changed
            and not query.volatile
            and not options.full
            and query.owner not in options.refetch
        )
        stored = state.memberships.get(query.owner)
        counted = state.counts.get(query.owner)
        try:
            if query.mode == "count":
                if fresh_enough and counted is not None and counted[0] == query.jql:
                    result.memberships[query.owner] = counted[1]
                else:
                    result.memberships[query.owner] = self.client.approximate_count(
                        query.jql, context=query.owner
                    )
                return
            if fresh_enough and stored is not None and stored[0] == query.jql:
                ids = list(stored[1])
                result.kept_memberships.add(query.owner)
            else:
                ids = self.client.search_ids(query.jql, context=query.owner)
                result.refreshed_memberships[query.owner] = (query.jql, ids)
            self._merge(result, [result.aside.pop(i) for i in ids if i in result.aside],
                        just_read=False)
            # A pass without a cursor read only the scope: mirrored members outside
            # it may be as old as the mirror, so it re-reads them (what --full repairs).
            reread = reread or query.owner in options.refetch
            mirrored = mirrored_of(result.issues, ids)
            missing = [i for i in ids if i not in mirrored or (reread and i not in result.read)]
            if missing:
                gone = self._fetch_ids(result, missing, query.owner).gone
                # Deleted between the membership search and the read (a race): not counted.
                ids = [i for i in ids if i not in gone]
            result.memberships[query.owner] = ids
        except PermanentError as error:
            result.failures[query.owner] = str(error)
            if query.screen is not None and stored is not None:
                # Kept answers are checked against the changes of one pass only: one
                # this pass could not renew is dropped, so the next pass asks Jira.
                result.forgotten_memberships.add(query.owner)

    def _fetch_ids(self, result: PulledSource, ids: list[str], context: str) -> FetchedIds:
        """Read ``ids`` from Jira into the mirror; an id Jira answers 404 for is deleted.

        Jira refuses a whole ``id in (...)`` naming a deleted issue, so the
        connector reads such a batch issue by issue (:mod:`..connectors.jira.by_id`).
        """
        read = read_issues_by_id(self.client, ids, self.plan.extra_fields, context=context,
                                 batch=DETAIL_BATCH)
        self._merge(result, read.issues)
        for issue_id in read.missing:
            result.issues.pop(issue_id, None)
            result.deleted.add(issue_id)
        return FetchedIds({issue.id for issue in read.issues}, read.missing)


def skipped_warnings(pulled: Iterable[PulledSource]) -> list[ScoringWarning]:
    """One warning per source whose search skipped issues Jira sent with an id or key it
    never promises (never queried, so not counted in any KR): counted and named."""
    warnings = []
    for source in pulled:
        if source.skipped:
            shown = ", ".join(source.skipped[:5])
            more = f" and {len(source.skipped) - 5} more" if len(source.skipped) > 5 else ""
            count = len(source.skipped)
            warnings.append(ScoringWarning(
                f"source {source.name}: {count} issue{'s' if count != 1 else ''} skipped, "
                f"id or key not what Jira promises: {shown}{more}"))
    return warnings


__all__ = [
    "DEFAULT_OVERLAP",
    "PullOptions",
    "PulledSource",
    "SourcePuller",
    "SourceState",
    "issue_from_record",
    "parse_jira_datetime",
    "skipped_warnings",
]
