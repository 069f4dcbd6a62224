

def test_item_changes_given_two_passes_names_added_done_reopened_and_left() -> None:
    from okr_sync.scoring.explain import ItemState, item_changes

    before = {"1": ItemState("A-1", "A", False, 1), "2": ItemState("A-2", "A", True, 2),
              "3": ItemState("A-3", "A", False, 3), "4": ItemState("A-4", "A", False, None)}
    after = {"1": ItemState("A-1", "A", True, 1), "2": ItemState("A-2", "A", False, 2),
             "5": ItemState("A-5", "A", False, None), "4": ItemState("A-4", "A", False, 5)}
    changes = item_changes(before, after, {"3": "B"})
    assert (changes.added, changes.done, changes.reopened, changes.left,
            changes.points_changed) == (("5",), ("1",), ("2",), ("3",), ("4",))
    assert changes.moved == ("3",) and not item_changes(after, after)
