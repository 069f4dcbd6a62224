"""Double counting within an objective: the same warnings as counting item by item."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from okr_sync.scoring.explain import double_counting


def _item_by_item(objective_krs: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """The counting as it was first written: each item's KRs, pair by pair."""
    owners: dict[str, list[str]] = {}
    for kr_id, item_ids in objective_krs:
        for item_id in set(item_ids):
            owners.setdefault(item_id, []).append(kr_id)
    shared: dict[tuple[str, str], int] = {}
    for krs in owners.values():
        for first in krs:
            for second in krs:
                if first != second:
                    shared[(first, second)] = shared.get((first, second), 0) + 1
    warnings: dict[str, list[str]] = {}
    for (first, second), count in sorted(shared.items()):
        noun = "item is" if count == 1 else "items are"
        warnings.setdefault(first, []).append(
            f"{count} {noun} also counted by {second} of the same objective (double counting)"
        )
    return warnings


_KRS = st.lists(st.tuples(st.sampled_from(["KR1", "KR2", "KR3", "KR4"]),
                          st.lists(st.sampled_from([str(i) for i in range(12)]))),
                max_size=5)


@given(_KRS)
def test_double_counting_given_any_krs_warns_as_counting_item_by_item(
    objective_krs: list[tuple[str, list[str]]],
) -> None:
    assert double_counting(objective_krs) == _item_by_item(objective_krs)


def test_double_counting_given_two_krs_sharing_items_warns_both_with_the_count() -> None:
    warnings = double_counting([("KR1", ["1", "2", "3"]), ("KR2", ["2", "3"]), ("KR3", ["9"])])

    assert warnings == {
        "KR1": ["2 items are also counted by KR2 of the same objective (double counting)"],
        "KR2": ["2 items are also counted by KR1 of the same objective (double counting)"],
    }
