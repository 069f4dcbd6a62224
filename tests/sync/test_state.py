"""The pass snapshot: one typed, versioned codec, and documents of version 1 still read.

``fixtures/snapshot_v1.json`` is a document stored by okr-sync before the snapshot was
typed (a demo-plan pass on the sandbox after some issues were done);
``fixtures/snapshot_v1_shown.json`` is what that code derived from it: the scorecard
``status`` printed, the values kept for failing measures, the item states change
reasons start from, and the published KR states news is diffed against.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from okr_sync.scoring.measures import Contribution
from okr_sync.scoring.scorecard import UnknownScorecardVersionError, scorecard_from_json
from okr_sync.sync.state import (
    SNAPSHOT_VERSION,
    Explanation,
    PassSnapshot,
    SnapshotFormatError,
    UnknownSnapshotVersionError,
    load_state,
    previous_states,
    previous_values,
    published_scores,
    same_scores,
    save_snapshot,
    upgrade_snapshot_v1,
)
from okr_sync.sync.store.reader import ReadOnlyStore
from okr_sync.sync.store.store import Store
from support.scorecards import realistic_scorecard

FIXTURES = Path(__file__).parent / "fixtures"


def _v1() -> dict[str, Any]:
    return json.loads((FIXTURES / "snapshot_v1.json").read_text("utf-8"))


def _shown() -> dict[str, Any]:
    return json.loads((FIXTURES / "snapshot_v1_shown.json").read_text("utf-8"))


def _snapshot() -> PassSnapshot:
    item = Contribution("10001", "ENT-7", "SSO login", "Done", "ENT", True, 3.0, None, "done")
    return PassSnapshot(
        realistic_scorecard(),
        {"CO-1.KR1": Explanation("project = ENT", reasons=("+1 done",), items=(item,)),
         "CO-1.KR2": Explanation("project = SUP AND priority = Highest", count=12),
         "OPS-1.KR1": Explanation("project = OPS", error="JQL error")},
        {"main": '[["ENT"], [], "auto"]'},
    )


def _without_freshness(doc: dict[str, Any]) -> dict[str, Any]:
    """The scorecard as the old code showed it: KRs did not carry their freshness yet."""
    for objective in doc["objectives"]:
        for kr in objective["key_results"]:
            kr.pop("measured_at")
            kr.pop("stale")
    return doc


def test_pass_snapshot_given_v1_fixture_reads_what_the_old_code_showed() -> None:
    snapshot = PassSnapshot.from_json(_v1())
    shown = _shown()

    assert snapshot.to_json()["version"] == SNAPSHOT_VERSION == 3
    assert _without_freshness(snapshot.scorecard.to_json()) == shown["status_scorecard"]
    assert {
        k: [kept.value, None if kept.items is None else [kept.items.selected, kept.items.done]]
        for k, kept in previous_values(snapshot).items()
    } == shown["previous_values"]
    assert {
        owner: {item_id: state._asdict() for item_id, state in states.items()}
        for owner, states in previous_states(snapshot).items()
    } == shown["previous_states"]
    assert {k: asdict(v) for k, v in published_scores(snapshot).items()} == shown["published_krs"]
    assert snapshot.fetch == _v1()["fetch"]
    assert snapshot.explanations["OPS-1.KR1"].reasons == ("+2 done",)
    assert snapshot.explanations["ESC"].count == 3


def test_upgrade_snapshot_v1_given_flat_document_nests_the_scorecard_and_keeps_the_rest() -> None:
    v1 = _v1()
    upgraded = upgrade_snapshot_v1(v1)

    assert upgraded["version"] == 2
    assert upgraded["explain"] == v1["explain"] and upgraded["fetch"] == v1["fetch"]
    assert upgraded["scorecard"] == {k: v for k, v in v1.items() if k not in ("explain", "fetch")}
    # The same document with an explicit version 1 reads the same.
    assert PassSnapshot.from_json(v1 | {"version": 1}) == PassSnapshot.from_json(v1)


def test_upgrade_snapshot_v1_given_document_without_explain_or_fetch_reads_empty_ones() -> None:
    bare = realistic_scorecard().to_json()

    snapshot = PassSnapshot.from_json(bare)

    assert snapshot.explanations == {} and snapshot.fetch == {}
    assert snapshot.scorecard == scorecard_from_json(bare)


def test_pass_snapshot_given_its_own_json_reads_back_equal() -> None:
    snapshot = _snapshot()
    stored = json.loads(json.dumps(snapshot.to_json()))

    again = PassSnapshot.from_json(stored)

    assert stored["version"] == SNAPSHOT_VERSION and stored["scorecard"]["version"] == 1
    assert again.explanations == snapshot.explanations and again.fetch == snapshot.fetch
    assert again.scorecard.to_json() == snapshot.scorecard.to_json()
    assert same_scores(again, snapshot)


def test_pass_snapshot_given_future_version_raises_a_typed_error_naming_it() -> None:
    with pytest.raises(UnknownSnapshotVersionError) as raised:
        PassSnapshot.from_json(_snapshot().to_json() | {"version": SNAPSHOT_VERSION + 1})

    assert raised.value.version == SNAPSHOT_VERSION + 1
    assert f"snapshot version {SNAPSHOT_VERSION + 1}" in str(raised.value)


def test_scorecard_from_json_given_future_codec_version_raises_a_typed_error_naming_it() -> None:
    with pytest.raises(UnknownScorecardVersionError) as raised:
        scorecard_from_json(realistic_scorecard().to_json() | {"version": 7})

    assert raised.value.version == 7


@pytest.mark.parametrize("document", [
    {"version": "2"},
    {"version": 2, "scorecard": {"cycle": {"name": "x"}}},
    {"version": 2, "scorecard": realistic_scorecard().to_json(), "explain": {"K": {"count": 1}}},
])
def test_pass_snapshot_given_malformed_document_raises_format_error(
    document: dict[str, Any],
) -> None:
    with pytest.raises(SnapshotFormatError):
        PassSnapshot.from_json(document)


def test_same_scores_given_only_the_moment_differs_is_true_else_false() -> None:
    snapshot = _snapshot()
    cycle = snapshot.scorecard.cycle
    an_hour_later = replace(cycle, as_of=cycle.as_of + timedelta(hours=1))
    later_card = replace(snapshot.scorecard, cycle=an_hour_later)
    later = PassSnapshot(later_card, snapshot.explanations, snapshot.fetch)
    refetched = PassSnapshot(snapshot.scorecard, snapshot.explanations, {"main": "other"})

    assert same_scores(later, snapshot)
    assert not same_scores(refetched, snapshot)
    assert not same_scores(snapshot, None)


def test_load_state_given_previous_snapshot_reuses_its_error_free_counts() -> None:
    queries = {"CO-1.KR2": "project = SUP AND priority = Highest", "OPS-1.KR1": "project = OPS"}

    state = load_state(ReadOnlyStore(), "main", queries, _snapshot())

    assert state.counts == {"CO-1.KR2": ("project = SUP AND priority = Highest", 12)}
    assert state.issues == {} and state.cursor is None


def test_save_snapshot_given_store_reads_back_the_same_snapshot(store: Store) -> None:
    snapshot = _snapshot()

    draft = save_snapshot(store, snapshot, published=False)
    with store.transaction() as tx:
        published = save_snapshot(tx, snapshot, published=True)

    latest, last_published = store.latest_snapshot(), store.last_published_snapshot()
    assert latest is not None and last_published is not None
    assert (latest.id, last_published.id) == (published, published) and draft < published
    read = PassSnapshot.from_json(latest.document)
    assert read == PassSnapshot.from_json(snapshot.to_json())
    assert read.scorecard.cycle.name == latest.cycle == snapshot.scorecard.cycle.name
