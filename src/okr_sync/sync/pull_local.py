"""Raw-JQL memberships answered on the issue mirror, and the check that keeps them honest.

A raw JQL the fetch plan marked local (:mod:`okr_sync.sync.jql_local`) costs no
request: its members are the mirrored issues its predicate accepts, patched on a
pass with changes (only updated, added and deleted issues are looked at) once Jira
has confirmed the query. Jira is asked once for its answer (one id-only search)
when the query is new to the store, on ``--full``, on the daily reconcile and on
``resync --kr`` (which also reads its members again). If the answers differ, the
issues they differ on are read again (a change may have landed between the two
reads) and compared again; a difference
that stays is a *mismatch*: the pass uses Jira's answer, the verdict is stored (so
later passes ask Jira for as long as the JQL is unchanged), logged once, and shown
by ``okr-sync status``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, cast

from okr_sync.connectors.errors import PermanentError
from okr_sync.connectors.jira.client import UNKNOWN_TIMEZONE_FALLBACK, JiraClient
from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.sync.fetch_plan import MembershipQuery, SourceFetchPlan
from okr_sync.sync.jql_local import LocalJql, Matcher, NotLocal, compile_matcher

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from okr_sync.sync.pull import PulledSource, PullOptions, SourceState

log = logging.getLogger(__name__)

Verdict = Literal["match", "mismatch"]
#: A comparison with Jira: (jql, verdict, what differed).
JqlCheckResult = tuple[str, Verdict, str]

#: Issue keys named in a mismatch's description, at most.
_SHOWN = 5

#: Predicates compiled in this process, by query, the Jira user's zone and deployment
#: (``None``: the query cannot be answered there). A running ``serve`` compiles each
#: raw JQL once rather than on every pass; a predicate is a pure function of its key.
#: (Screens resolve parent keys against this pass's mirror, so they are compiled per pass.)
_COMPILED: dict[tuple[LocalJql, ZoneInfo | None, bool], Matcher | None] = {}
_MISS: Matcher | None = cast("Matcher", object())
#: Entries kept at most (plans reloaded many times would otherwise add up).
_COMPILED_MAX = 4096


def compiled_matcher(local: LocalJql, *, tz: ZoneInfo | None, cloud: bool) -> Matcher | None:
    """:func:`compile_matcher`, remembered; ``None`` where it raises :class:`NotLocal`."""
    key = (local, tz, cloud)
    # One lookup: a check then a read races with another plan thread's clear().
    found = _COMPILED.get(key, _MISS)
    if found is not _MISS:
        return found
    try:
        matcher: Matcher | None = compile_matcher(local, tz=tz, cloud=cloud)
    except NotLocal:
        matcher = None
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[key] = matcher
    return matcher


class _Puller(Protocol):
    name: str
    client: JiraClient

    def _merge(self, result: PulledSource, issues: Iterable[JiraIssue], *,
               just_read: bool = True) -> int: ...

    def _fetch_ids(self, result: PulledSource, ids: list[str], context: str
                   ) -> FetchedIds: ...


class FetchedIds(NamedTuple):
    """What a read by id found: the ids Jira sent, and those it answered 404 for."""

    found: set[str]
    gone: set[str]


def local_matchers(
    client: JiraClient, plan: SourceFetchPlan, state: SourceState
) -> dict[str, Matcher]:
    """Owner -> predicate, for the raw JQL this pass answers on the mirror."""
    queries = [
        q for q in plan.memberships
        if q.local is not None and state.jql_checks.get(q.owner) != "mismatch"
    ]
    if not queries:
        return {}
    zone = client.user_timezone()
    tz = None if zone.key == UNKNOWN_TIMEZONE_FALLBACK.key else zone
    cloud = client.is_cloud
    matchers = {}
    for query in queries:
        assert query.local is not None
        matcher = compiled_matcher(query.local, tz=tz, cloud=cloud)
        if matcher is not None:
            matchers[query.owner] = matcher
    return matchers


#: Issue keys -> the ids they name now or named before a move (None: unknown), at once.
KeysResolver = Callable[[Collection[str]], Mapping[str, str | None]]


class PassKeys:
    """The issue keys the screened queries name, resolved once per pass on first use.

    Jira reads ``parent = OPS-1`` as the issue OPS-1 names, or named before it moved:
    after the move its children carry the new key, so a screen compares parent ids,
    resolved through the store's key history. Without a resolver (a plain mirror),
    every key is unknown.
    """

    def __init__(self, named: Collection[str], resolve: KeysResolver | None) -> None:
        self._named = frozenset(named)
        self._resolve = resolve
        self._found: Mapping[str, str | None] | None = None

    def __call__(self, key: str) -> str | None:
        if self._found is None:
            self._found = (self._resolve(sorted(self._named))
                           if self._resolve is not None and self._named else {})
        return self._found.get(key)


def screen_matchers(
    client: JiraClient, queries: Iterable[MembershipQuery],
    resolve: KeysResolver | None = None,
) -> dict[str, Matcher]:
    """Owner -> predicate on one issue, for the given queries Jira answers that have one."""
    screened = [q for q in queries if q.screen is not None]
    if not screened:
        return {}
    zone = client.user_timezone()
    tz = None if zone.key == UNKNOWN_TIMEZONE_FALLBACK.key else zone
    keys = PassKeys({k for q in screened if q.screen is not None for k in q.screen.issue_keys},
                    resolve)
    matchers = {}
    for query in screened:
        assert query.screen is not None
        try:
            matchers[query.owner] = compile_matcher(query.screen, tz=tz, cloud=client.is_cloud,
                                                    keys=keys)
        except NotLocal:
            continue
    return matchers


def mirrored_of(issues: Mapping[str, JiraIssue], ids: list[str]) -> set[str]:
    """Those of ``ids`` in the mirror, asked at once when the mirror is a store view."""
    present = getattr(issues, "present", None)
    if callable(present):
        found: set[str] = present(ids)
        return found
    return {i for i in ids if i in issues}


def mirrored_records(issues: Mapping[str, JiraIssue], ids: list[str]) -> dict[str, JiraIssue]:
    """The mirrored records of ``ids``, read at once when the mirror is a store view."""
    read = getattr(issues, "read", None)
    if callable(read):
        found: dict[str, JiraIssue] = read(ids)
        return found
    return {i: issues[i] for i in ids if i in issues}


def recheck_mirrored(issues: Mapping[str, JiraIssue]) -> None:
    """Drop what a store view was told of which ids are mirrored by earlier passes."""
    recheck = getattr(issues, "recheck", None)
    if callable(recheck):
        recheck()


def look_up_stored_members(issues: Mapping[str, JiraIssue], state: SourceState,
                           queries: Iterable[MembershipQuery]) -> None:
    """Ask at once whether the stored members of ``queries`` are mirrored: each
    membership then checks its own from what the view remembers, not one read each."""
    mirrored_of(issues, [i for q in queries for i in state.memberships.get(q.owner, ("", ()))[1]])


def touched_issues(result: PulledSource) -> tuple[dict[str, JiraIssue], set[str]]:
    """The issues this pass's searches found new or changed (newest record each), and the
    ids it found deleted."""
    touched = dict(result.aside)
    touched.update((issue.id, issue) for issue in result.upserts)
    return touched, set(result.deleted)


def unaffected(stored: Iterable[str], matcher: Matcher, touched: Mapping[str, JiraIssue],
               deleted: set[str], mirror: Mapping[str, JiraIssue]) -> bool:
    """Whether Jira's stored answer still holds: no issue this pass saw change (or go) is
    one of its members, and none matches it now.

    Only for a pass whose search read every issue of the site updated since the answer
    was taken (any other issue is as it was then). An issue the predicate cannot decide
    counts as affected.
    """
    if not touched and not deleted:
        return True
    members = set(stored)
    if not members.isdisjoint(deleted) or not members.isdisjoint(touched):
        return False
    try:
        return not any(matcher(issue, mirror) for issue in touched.values())
    except NotLocal:
        return False


def patchable(query: MembershipQuery, state: SourceState, options: PullOptions, *,
              reread: bool) -> bool:
    """Whether this pass patches the stored answer rather than evaluating in full."""
    owner = query.owner
    stored = state.memberships.get(owner)
    # Patching the stored answer is exact once Jira confirmed it (the daily comparison
    # then checks the patched answer); a query that reads other issues (an epic's
    # type) is evaluated in full.
    return (
        stored is not None and stored[0] == query.jql
        and state.jql_checks.get(owner) == "match"
        and not reread and not options.full and owner not in options.refetch
        and query.local is not None and "Epic Link" not in query.local.fields
    )


class MirrorAnswers:
    """Every local query's answer on the whole mirror, from one read of it.

    Evaluating each query on its own streamed (and decoded) every mirrored row once
    per query: 80 queries x 50k issues on a cold pass or ``--full``. Here the first
    query that needs a full evaluation evaluates all of them in one stream; the
    answers stay valid until the pass changes the mirror (a merge or a deletion),
    after which the next one streams again.
    """

    def __init__(self, matchers: Mapping[str, Matcher]) -> None:
        self._matchers = matchers
        self._answers: dict[str, list[str] | None] | None = None
        self._stamp: tuple[int, frozenset[str]] | None = None
        #: How many times the mirror was streamed (tests count it).
        self.streams = 0

    def has(self, owner: str) -> bool:
        return owner in self._matchers

    def members(self, owner: str, result: PulledSource) -> list[str]:
        """``owner``'s members on the mirror as it is now; raises :class:`NotLocal`."""
        stamp = (len(result.upserts), frozenset(result.deleted))
        if self._answers is None or stamp != self._stamp or owner not in self._answers:
            if owner not in self._matchers:
                raise KeyError(owner)
            self._answers = self._evaluate_all(result.issues)
            self._stamp = stamp
        answer = self._answers[owner]
        if answer is None:
            raise NotLocal(f"{owner}: not answerable on the mirror")
        return list(answer)

    def _evaluate_all(self, issues: Mapping[str, JiraIssue]) -> dict[str, list[str] | None]:
        self.streams += 1
        found: dict[str, list[str]] = {owner: [] for owner in self._matchers}
        refused: set[str] = set()
        live = dict(self._matchers)
        for issue_id, issue in issues.items():
            for owner, matcher in list(live.items()):
                try:
                    if matcher(issue, issues):
                        found[owner].append(issue_id)
                except NotLocal:
                    refused.add(owner)
                    del live[owner]
        return {owner: None if owner in refused else sorted(ids, key=_id_order)
                for owner, ids in found.items()}


def local_membership(
    puller: _Puller,
    query: MembershipQuery,
    matcher: Matcher,
    state: SourceState,
    options: PullOptions,
    result: PulledSource,
    *,
    reread: bool,
    verify: bool,
    answers: MirrorAnswers | None = None,
) -> bool:
    """Answer ``query`` on the mirror; False when the mirror cannot (ask Jira instead)."""
    owner = query.owner
    confirmed = state.jql_checks.get(owner) == "match"
    verify = verify or not confirmed or owner in options.refetch
    stored = state.memberships.get(owner)
    incremental = patchable(query, state, options, reread=reread)
    try:
        if owner in options.refetch:
            # `resync --kr`: its members' details are read again, as for a Jira answer.
            unread = [i for i in _evaluate(result.issues, matcher) if i not in result.read]
            _reread(puller, result, unread, owner)
        if incremental:
            assert stored is not None
            ids = _patched(stored[1], result, matcher)
        elif answers is not None and answers.has(owner):
            ids = answers.members(owner, result)
        else:
            ids = _evaluate(result.issues, matcher)
        if verify:
            checked = _verify(puller, query, matcher, result, ids)
            if checked is None:
                return True
            ids = checked
    except NotLocal:
        # Jira answers this pass. The stored answer is now older than the one used: a
        # later pass must not patch it (with nothing new, it would be taken as it is).
        if stored is not None:
            result.forgotten_memberships.add(owner)
        return False
    if stored is None or stored[0] != query.jql or set(stored[1]) != set(ids):
        result.refreshed_memberships[owner] = (query.jql, ids)
    else:
        result.kept_memberships.add(owner)
    result.memberships[owner] = len(ids) if query.mode == "count" else ids
    return True


def _evaluate(issues: Mapping[str, JiraIssue], matcher: Matcher) -> list[str]:
    return sorted((i for i, issue in issues.items() if matcher(issue, issues)), key=_id_order)


def _patched(stored: Iterable[str], result: PulledSource, matcher: Matcher) -> list[str]:
    """The stored members, redone for the issues this pass added, updated or deleted."""
    touched = {issue.id for issue in result.upserts} | result.deleted
    if not touched:
        return list(stored)
    joined = set()
    for issue_id in touched:
        issue = result.issues.get(issue_id)
        if issue is not None and matcher(issue, result.issues):
            joined.add(issue_id)
    # Run on every local query each pass: the stored members are copied, not walked in
    # Python, when no issue this pass touched is or becomes one (the usual case).
    members = set(stored)
    if not joined and members.isdisjoint(touched):
        return list(stored)
    return sorted((members - touched) | joined, key=_id_order)


def _id_order(issue_id: str) -> tuple[int, str]:
    return (len(issue_id), issue_id)


def _verify(
    puller: _Puller, query: MembershipQuery, matcher: Matcher, result: PulledSource,
    ids: list[str],
) -> list[str] | None:
    """Compare with Jira's answer; returns the members to use (None: Jira refused)."""
    owner = query.owner
    try:
        jira_ids = puller.client.search_ids(query.jql, context=owner)
        if set(jira_ids) == set(ids):
            result.jql_checks[owner] = (query.jql, "match", "")
            return ids
        # The two reads were not at the same instant: read the issues they differ
        # on again, and compare once more before calling it a disagreement.
        differ = sorted(set(jira_ids) ^ set(ids), key=_id_order)
        _reread(puller, result, differ, owner)
        ids = _evaluate(result.issues, matcher)
        if set(jira_ids) == set(ids):
            result.jql_checks[owner] = (query.jql, "match", "")
            return ids
    except PermanentError as error:
        result.failures[owner] = str(error)
        _mismatch(puller, result, query, f"Jira refused the query: {error}")
        return None
    _mismatch(puller, result, query, _describe(ids, jira_ids, result.issues))
    # One read for all of Jira's members: asked one at a time, each is a transaction.
    mirrored = mirrored_of(result.issues, jira_ids)
    missing = [i for i in jira_ids if i not in mirrored]
    if missing:
        puller._fetch_ids(result, missing, owner)
    result.refreshed_memberships[owner] = (query.jql, jira_ids)
    return jira_ids


def _reread(puller: _Puller, result: PulledSource, ids: list[str], owner: str) -> None:
    # A deleted id is answered 404 and marked deleted by the read itself (Jira refuses
    # a whole `id in (...)` naming it); one the search merely left out is handled here.
    found = puller._fetch_ids(result, ids, owner).found
    mirrored = mirrored_of(result.issues, [i for i in ids if i not in found])
    for issue_id in ids:
        if issue_id in mirrored:
            # Jira no longer shows it (deleted, or out of the user's sight).
            del result.issues[issue_id]
            result.deleted.add(issue_id)


def _mismatch(puller: _Puller, result: PulledSource, query: MembershipQuery,
              detail: str) -> None:
    result.jql_checks[query.owner] = (query.jql, "mismatch", detail)
    log.warning(
        "source %s: the raw JQL of %s gave another answer on the mirror than on Jira (%s); "
        "it is asked from Jira from now on: %s",
        puller.name, query.owner, detail, query.jql,
    )


def _describe(local: list[str], jira: list[str], issues: Mapping[str, JiraIssue]) -> str:
    def named(ids: set[str]) -> str:
        read = getattr(issues, "read", None)
        # A store view reads all the issues named at once, not one transaction each.
        known = read(ids) if callable(read) else {i: issues[i] for i in ids if i in issues}
        shown = sorted((known[i].key if i in known else f"id {i}") for i in ids)
        more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
        return ", ".join(shown[:_SHOWN]) + more

    only_local, only_jira = set(local) - set(jira), set(jira) - set(local)
    parts = [f"mirror {len(set(local))} issues, Jira {len(set(jira))}"]
    if only_jira:
        parts.append(f"only Jira: {named(only_jira)}")
    if only_local:
        parts.append(f"only the mirror: {named(only_local)}")
    return "; ".join(parts)
