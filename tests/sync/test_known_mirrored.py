"""What a running process keeps of which ids the mirror holds: patched with the rows
written since its last pass, its own pass's changes dropped, asked again on recheck."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okr_sync.sync.mirror import KnownMirrored
from okr_sync.sync.store.store import Store
from support.issue_builders import issue

SEEN = datetime(2026, 11, 1, tzinfo=UTC)
IDS = [str(n) for n in range(1, 41)]


def _mirrored(store: Store) -> None:
    store.upsert_issues("main", [issue(f"ENT-{i}", id=i) for i in IDS], seen_at=SEEN)


def _rows_read(store: Store, ask: object) -> int:
    before = store.mirrored_id_rows_read
    assert callable(ask)
    ask()
    return store.mirrored_id_rows_read - before


def test_known_mirrored_given_nothing_written_since_asks_the_store_nothing(store: Store) -> None:
    _mirrored(store)
    known = KnownMirrored()
    assert known.view(store, "main").present(IDS) == set(IDS)

    view = known.view(store, "main")
    assert _rows_read(store, lambda: view.present(IDS)) == 0
    assert view.present(IDS) == set(IDS)


def test_known_mirrored_given_another_process_deleted_and_added_rows_reads_only_those(
        store: Store) -> None:
    _mirrored(store)
    known = KnownMirrored()
    assert known.view(store, "main").present([*IDS, "99"]) == set(IDS)
    # Another replica's pass: one member deleted, one issue mirrored, one refreshed.
    later = SEEN + timedelta(minutes=5)
    store.mark_deleted("main", ["7"], at=later)
    store.upsert_issues("main", [issue("ENT-99", id="99"),
                                 issue("ENT-3", id="3", summary="again")], seen_at=later)

    view = known.view(store, "main")
    answer: list[set[str]] = []

    assert _rows_read(store, lambda: answer.append(view.present([*IDS, "99"]))) == 0
    assert answer == [(set(IDS) - {"7"}) | {"99"}]
    assert store.mirrored_id_rows_read == len(IDS) + 3


def test_known_mirrored_given_its_own_pass_deleted_a_member_asks_again_without_a_new_mark(
        store: Store) -> None:
    _mirrored(store)
    store.mark_deleted("main", ["40"], at=SEEN)
    known = KnownMirrored()
    view = known.view(store, "main")
    assert view.present(IDS) == set(IDS) - {"40"}
    del view["5"]
    view["41"] = issue("ENT-41", id="41")
    # Its commit, with a clock that has not moved: the marks stay as they were.
    store.mark_deleted("main", ["5"], at=SEEN)
    store.upsert_issues("main", [issue("ENT-41", id="41")], seen_at=SEEN)

    again = known.view(store, "main")
    assert again.present([*IDS, "41"]) == (set(IDS) - {"5", "40"}) | {"41"}


def test_known_mirrored_given_recheck_asks_the_store_about_every_id_again(store: Store) -> None:
    _mirrored(store)
    known = KnownMirrored()
    assert known.view(store, "main").present(IDS) == set(IDS)
    view = known.view(store, "main")
    view.recheck()

    assert _rows_read(store, lambda: view.present(IDS)) == len(IDS)
