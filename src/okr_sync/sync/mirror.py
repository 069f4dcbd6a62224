"""One source's issue mirror as a pass sees it, without a copy of it in memory.

:class:`MirrorView` is a mutable mapping of issue id -> :class:`JiraIssue`: the
stored rows, read on demand by id and streamed when iterated, overlaid by what
this pass pulled (and less what it found deleted). Memory holds the stored ids
and this pass's changes, never the whole mirror. Whether an id is mirrored is asked of the
store for the ids the pass looks at (remembered for the pass), so a one-issue pass
reads a few ids rather than every mirrored one; only iterating lists them all.

:class:`KnownMirrored` keeps those answers across a process's passes (a serve pass
checks the same ~10k stored raw-JQL members each time), patched each pass with the
rows written since (found by the mirror's newest write times, as the measure marks
are), and asked again in full on the daily reconcile and on ``--full``.
"""

from __future__ import annotations

from collections.abc import Collection, ItemsView, Iterator, MutableMapping, ValuesView
from datetime import datetime

from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.sync.pull import issue_from_record
from okr_sync.sync.store.reader import StoreReader

#: Reads of a few ids (each a transaction) after which the view reads every id instead.
_ASKS_BEFORE_ALL = 50
#: Rows written since the last pass beyond which the kept answers are dropped (a full
#: pass rewrote the mirror: asking the ids again costs less than patching).
_PATCH_LIMIT = 2000

Marks = tuple[datetime | None, datetime | None]


class KnownMirrored:
    """Per source, whether the store mirrors each id looked up, kept across passes.

    What a pass's own commit may change (the ids its view sets or deletes) is dropped as
    the view changes them; rows another process wrote since are read again (by the
    mirror's newest write times, which only grow while one pass at a time writes, under
    the run lock, as the measure marks assume).
    """

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Marks, dict[str, bool]]] = {}

    def view(self, store: StoreReader, source: str) -> MirrorView:
        """A pass's view of ``source``, starting from earlier passes' answers."""
        marks_then, known = self._kept.get(source, ((None, None), {}))
        marks, written = store.mirror_written_since(source, marks_then, _PATCH_LIMIT)
        if written is None:
            # The mirror was empty (every answer "no" until the pass filled it), or
            # rewritten since: asking again costs less than patching.
            known = {}
        else:
            known.update(written)
        self._kept[source] = (marks, known)
        return MirrorView(store, source, known)


class MirrorView(MutableMapping[str, JiraIssue]):
    def __init__(self, store: StoreReader, source: str,
                 known: dict[str, bool] | None = None) -> None:
        self._store = store
        self._source = source
        self._ids: set[str] | None = None
        #: Whether the store holds an id, for the ids looked up so far (the store's rows
        #: do not change before the pass commits, when this view is done with); ``known``
        #: starts it with earlier passes' answers (:class:`KnownMirrored`).
        self._known: dict[str, bool] = {} if known is None else known
        self._over: dict[str, JiraIssue] = {}
        self._gone: set[str] = set()
        self._single_asks = 0

    def _stored(self) -> set[str]:
        if self._ids is None:
            self._know_all(self._store.mirrored_ids(self._source))
        assert self._ids is not None
        return self._ids

    def _know_all(self, ids: set[str]) -> None:
        self._ids = ids
        # Answered by the ids from now on: the answers kept id by id (every mirrored id
        # after a full pull looked each one up) would be a second index of the mirror.
        self._known = {}

    def _stored_among(self, ids: Collection[str]) -> set[str]:
        """Those of ``ids`` the store holds (one read for the ids not looked up yet)."""
        if self._ids is not None:
            return {i for i in ids if i in self._ids}
        ask = {i for i in ids if i not in self._known}
        if ask and len(ask) < _ASKS_BEFORE_ALL:
            self._single_asks += 1
            if self._single_asks > _ASKS_BEFORE_ALL:
                # Asked id by id many times over (a caller checking members one at a
                # time): one read of every id costs less than a transaction per id.
                stored = self._stored()
                return {i for i in ids if i in stored}
        if ask:
            found = self._store.mirrored_among(self._source, ask)
            self._known.update((i, i in found) for i in ask)
        return {i for i in ids if self._known[i]}

    def _stored_here(self, issue_id: str) -> bool:
        return (issue_id not in self._over and issue_id not in self._gone
                and bool(self._stored_among((issue_id,))))

    def recheck(self) -> None:
        """Ask the store again about every id (earlier passes' answers are dropped)."""
        self._known.clear()

    def present(self, ids: Collection[str]) -> set[str]:
        """Those of ``ids`` that are in the mirror, asking the store at most once."""
        stored = self._stored_among(
            [i for i in ids if i not in self._over and i not in self._gone])
        return stored | {i for i in ids if i in self._over}

    def __getitem__(self, issue_id: str) -> JiraIssue:
        if issue_id in self._over:
            return self._over[issue_id]
        found = self.read([issue_id])
        if issue_id not in found:
            raise KeyError(issue_id)
        return found[issue_id]

    def __setitem__(self, issue_id: str, issue: JiraIssue) -> None:
        self._over[issue_id] = issue
        self._gone.discard(issue_id)
        # The commit writes it: what the store said of it no longer holds (kept answers).
        self._known.pop(issue_id, None)

    def __delitem__(self, issue_id: str) -> None:
        if issue_id not in self:
            raise KeyError(issue_id)
        self._over.pop(issue_id, None)
        self._gone.add(issue_id)
        self._known.pop(issue_id, None)

    def __contains__(self, issue_id: object) -> bool:
        if not isinstance(issue_id, str):
            return False
        return issue_id in self._over or self._stored_here(issue_id)

    def __iter__(self) -> Iterator[str]:
        yield from self._over
        yield from (i for i in self._stored() if i not in self._over and i not in self._gone)

    def __len__(self) -> int:
        stored = sum(1 for i in self._stored() if i not in self._over and i not in self._gone)
        return len(self._over) + stored

    def read(self, ids: Collection[str]) -> dict[str, JiraIssue]:
        """The issues of ``ids`` that are in the mirror, in one store read."""
        found = {i: self._over[i] for i in ids if i in self._over}
        wanted = [i for i in ids if i not in self._over and i not in self._gone]
        if self._ids is not None:
            wanted = [i for i in wanted if i in self._ids]
        if wanted:
            # The records read answer whether each id is mirrored, too.
            records = self._store.issue_records(self._source, wanted)
            if self._ids is None:
                self._known.update((i, i in records) for i in wanted)
            found.update({i: issue_from_record(doc) for i, doc in records.items()})
        return found

    def stream(self) -> Iterator[JiraIssue]:
        """Every issue, the stored ones streamed from the store."""
        seen: set[str] = set()
        for doc in self._store.iter_issues(self._source):
            issue_id = str(doc["id"])
            seen.add(issue_id)
            if issue_id not in self._over and issue_id not in self._gone:
                yield issue_from_record(doc)
        # A whole stream lists every stored id: later membership checks need no read.
        if self._ids is None:
            self._know_all(seen)
        yield from self._over.values()

    def values(self) -> ValuesView[JiraIssue]:
        return _StreamedValues(self)

    def items(self) -> ItemsView[str, JiraIssue]:
        return _StreamedItems(self)


class _StreamedValues(ValuesView[JiraIssue]):
    def __init__(self, mirror: MirrorView) -> None:
        super().__init__(mirror)
        self._mirror = mirror

    def __iter__(self) -> Iterator[JiraIssue]:
        return self._mirror.stream()


class _StreamedItems(ItemsView[str, JiraIssue]):
    def __init__(self, mirror: MirrorView) -> None:
        super().__init__(mirror)
        self._mirror = mirror

    def __iter__(self) -> Iterator[tuple[str, JiraIssue]]:
        return ((issue.id, issue) for issue in self._mirror.stream())
