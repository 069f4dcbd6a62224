"""The previous snapshots a pass diffs against, decoded once per running process.

Every pass starts from the last published snapshot and the latest one (published or
not). Reading and decoding their scorecards (400 KRs) took 17 ms of a 200 ms one-issue
pass of ``serve`` at 20k issues, and the next pass mostly finds the same snapshots again.
:class:`SnapshotHeads` keeps what it decoded, keyed by the stored snapshot's identity
(:class:`~okr_sync.sync.store.records.SnapshotMark`), and asks the store every pass
which snapshots are the newest, in one read: a snapshot another replica (sharing the
database) or a ``resync`` wrote is seen at once, and stored documents are never
rewritten, so a kept decoding is always the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from okr_sync.sync.measuring import previous_snapshots, stored_explanations
from okr_sync.sync.state import PassSnapshot
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.records import Snapshot, SnapshotMark
from okr_sync.sync.store.store import Store

_Key = tuple[int, int | None, datetime, str]


@dataclass
class _Head:
    """A decoded snapshot without its explanations, and what a pass read of its stored
    items' index (which owners, their rows' hashes): all of it as immutable as the
    document."""

    snapshot: PassSnapshot
    #: Whether the document held its explanations inline (an older layout).
    inline: bool
    owners: list[str] | None = None
    refs: dict[str, tuple[str, tuple[str, ...]]] | None = None


class _Moved(Exception):
    """The newest snapshot is not the one the marks named a moment before."""


def _key(mark: SnapshotMark) -> _Key:
    # Not ``published``: a snapshot may be marked published later, its document stays.
    return (mark.id, mark.run_id, mark.created_at, mark.cycle)


class SnapshotHeads:
    """Decoded snapshot heads of one store, for the passes of one process."""

    def __init__(self) -> None:
        self._heads: dict[_Key, _Head] = {}
        #: Snapshot documents decoded so far (what tests count).
        self.decoded = 0

    def previous(
        self, store: Store, cycle: str
    ) -> tuple[int | None, PassSnapshot | None, PassSnapshot | None]:
        """As :func:`okr_sync.sync.measuring.previous_snapshots`: the published
        snapshot's id, and the last published and latest snapshots of ``cycle``."""
        latest_mark, published_mark = store.snapshot_marks()
        wanted = {_key(m) for m in (latest_mark, published_mark) if m is not None}
        # Only what the store names now stays: a process keeps at most these two.
        self._heads = {k: h for k, h in self._heads.items() if k in wanted}
        try:
            published = self._this_cycle(store, published_mark, cycle, published_only=True)
            if published_mark is not None and latest_mark is not None \
                    and published_mark.id == latest_mark.id:
                latest = published
            else:
                latest = self._this_cycle(store, latest_mark, cycle, published_only=False)
        except _Moved:
            # Another writer came between the marks and the read: read as a process
            # without kept snapshots does (the next pass's marks name the newer one).
            return previous_snapshots(store, cycle)
        published_id = published_mark.id if published is not None and published_mark else None
        return published_id, published, latest

    def _this_cycle(self, store: Store, mark: SnapshotMark | None, cycle: str, *,
                    published_only: bool) -> PassSnapshot | None:
        # A new cycle starts from scratch: last cycle's scores are no baseline for news.
        if mark is None or mark.cycle != cycle:
            return None
        head = self._heads.get(_key(mark))
        if head is None:
            record = store.snapshot_head(published_only=published_only)
            if record is None or record.id != mark.id:
                raise _Moved
            head = self._decode(record)
            self._heads[_key(mark)] = head
        return _with_explanations(store, mark.id, head)

    def _decode(self, record: Snapshot) -> _Head:
        self.decoded += 1
        return _Head(PassSnapshot.from_json(record.document), "explain" in record.document)


def previous_of(
    store: Store | StoreReader, cycle: str, heads: SnapshotHeads | None
) -> tuple[int | None, PassSnapshot | None, PassSnapshot | None]:
    """The previous snapshots of a pass: from ``heads`` when a writable store has them
    (a running process decoded them before, unless another writer came since)."""
    if heads is not None and isinstance(store, Store):
        return heads.previous(store, cycle)
    return previous_snapshots(store, cycle)


def _with_explanations(store: Store, snapshot_id: int, head: _Head) -> PassSnapshot:
    """The head with a fresh lazy view of its stored explanations: each pass reads (and
    holds) only the items it asks for, never more than a process without the cache."""
    if head.inline:
        return head.snapshot

    def owners() -> list[str]:
        if head.owners is None:
            head.owners = store.snapshot_explained_owners(snapshot_id)
        return list(head.owners)

    def stored() -> dict[str, tuple[str, tuple[str, ...]]]:
        if head.refs is None:
            head.refs = store.snapshot_item_refs(snapshot_id)
        return dict(head.refs)

    return replace(head.snapshot, explanations=stored_explanations(
        store, snapshot_id, owners=owners, stored=stored))
