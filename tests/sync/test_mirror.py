"""The pass's view of the mirror: stored rows read on demand, this pass's changes over them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from okr_sync.sync.mirror import MirrorView
from okr_sync.sync.store.store import Store
from support.issue_builders import issue

SEEN = datetime(2026, 11, 1, tzinfo=UTC)


def test_mirror_view_given_changes_overlays_them_on_the_stored_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = issue("ENT-1", id="1"), issue("ENT-2", id="2"), issue("ENT-3", id="3")
    store.upsert_issues("main", [a, b, c], seen_at=SEEN)
    view = MirrorView(store, "main")
    moved = replace(b, key="SUP-2", project="SUP")
    new = issue("ENT-4", id="4")

    view[moved.id] = moved
    view[new.id] = new
    del view["3"]

    assert view["1"] == a and view["2"] == moved and "3" not in view and "4" in view
    assert sorted(view) == ["1", "2", "4"] and len(view) == 3
    assert view.read(["1", "2", "3", "9"]) == {"1": a, "2": moved}
    assert sorted(i.key for i in view.values()) == ["ENT-1", "ENT-4", "SUP-2"]
    assert dict(view.items()) == {"1": a, "2": moved, "4": new}
    with pytest.raises(KeyError):
        view["3"]
    # The store is untouched until the pass commits.
    assert sorted(r["key"] for r in store.get_issues("main")) == ["ENT-1", "ENT-2", "ENT-3"]


def test_mirror_view_given_scan_streams_rows_and_never_reads_them_one_by_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert_issues("main", [issue(f"ENT-{n}", id=str(n)) for n in range(1, 2001)],
                        seen_at=SEEN)
    view = MirrorView(store, "main")
    by_id: list[int] = []
    original = Store.issue_records

    def spy(self: Store, source: str, ids: object) -> object:
        by_id.append(1)
        return original(self, source, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "issue_records", spy)

    assert sum(1 for _ in view.values()) == 2000
    assert by_id == []


def _counting_mirrored_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    among, every = Store.mirrored_among, Store.mirrored_ids

    def counted_among(self: Store, source: str, ids: object) -> set[str]:
        reads.append("among")
        return among(self, source, ids)  # type: ignore[arg-type]

    def counted_every(self: Store, source: str) -> set[str]:
        reads.append("all")
        return every(self, source)

    monkeypatch.setattr(Store, "mirrored_among", counted_among)
    monkeypatch.setattr(Store, "mirrored_ids", counted_every)
    return reads


def test_mirror_view_given_ids_asked_one_by_one_reads_every_id_once_instead(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each single "is it mirrored?" is a transaction: a caller asking thousands of ids
    # one at a time costs one read of all ids after a few dozen.
    store.upsert_issues("main", [issue(f"ENT-{n}", id=str(n)) for n in range(1, 301)],
                        seen_at=SEEN)
    view = MirrorView(store, "main")
    reads = _counting_mirrored_reads(monkeypatch)

    assert sum(1 for n in range(1, 601) if str(n) in view) == 300
    assert len(reads) <= 60 and reads[-1] == "all"


def test_mirror_view_given_a_whole_stream_answers_membership_without_a_read(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert_issues("main", [issue(f"ENT-{n}", id=str(n)) for n in range(1, 51)],
                        seen_at=SEEN)
    view = MirrorView(store, "main")
    reads = _counting_mirrored_reads(monkeypatch)
    assert sum(1 for _ in view.values()) == 50

    assert [n for n in range(1, 101) if str(n) in view] == list(range(1, 51))
    assert reads == []


def test_mirror_view_given_every_id_known_keeps_no_answers_id_by_id(store: Store) -> None:
    # A full pull looks up every issue it reads (its answers then name every mirrored
    # id) and later streams the mirror (which lists every id): one index is kept, not two.
    store.upsert_issues("main", [issue(f"ENT-{n}", id=str(n)) for n in range(1, 51)],
                        seen_at=SEEN)
    view = MirrorView(store, "main")
    assert len(view.read([str(n) for n in range(1, 31)])) == 30
    assert "40" in view and "99" not in view

    assert sum(1 for _ in view.values()) == 50
    assert len(view.read([str(n) for n in range(20, 61)])) == 31
    assert "45" in view and "77" not in view

    assert view._known == {}
