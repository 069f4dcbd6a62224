"""A stored snapshot's explanations, read from the store only as far as a pass needs."""

from __future__ import annotations

from collections.abc import Callable, Collection, ItemsView, Iterator, Mapping, ValuesView
from typing import TYPE_CHECKING, Any

from okr_sync.sync.store.snapshot_items import KEPT

if TYPE_CHECKING:
    from okr_sync.scoring.explain import ItemState
    from okr_sync.sync.state import Explanation


#: Owners whose stored items are decoded at once when they are read to be used once
#: (change reasons, comparing snapshots) and dropped: not one read per owner, and not
#: every touched KR's previous items held at once beside this pass's.
READ_BATCH = 25


def _batches(owners: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(owners), READ_BATCH):
        yield owners[start:start + READ_BATCH]


class LazyExplanations(Mapping[str, "Explanation"]):
    """A stored snapshot's explanations, read from the store the first time they are
    needed: most of a large snapshot is its items, and a quiet pass needs none of them.

    Given ``owners`` (which owners it holds) and ``load_some`` (read only some owners'),
    looking up one owner reads only that owner's items: a pass that touched one KR
    decodes one KR's items.
    """

    def __init__(self, load: Callable[[], Mapping[str, Explanation]], *,
                 owners: Callable[[], Collection[str]] | None = None,
                 load_some: Callable[[Collection[str]], Mapping[str, Explanation]] | None = None,
                 stored: Callable[[], Mapping[str, tuple[str, tuple[str, ...]]]] | None = None,
                 holders: Callable[[Collection[str], Collection[str] | None],
                                   set[str] | None] | None = None
                 ) -> None:
        self._load = load
        self._stored = stored
        self._holders = holders
        self._refs: Mapping[str, tuple[str, tuple[str, ...]]] | None = None
        self._owners = owners
        self._load_some = load_some
        self._known: list[str] | None = None
        self._some: dict[str, Explanation] = {}
        self._loaded: dict[str, Explanation] | None = None

    def _all(self) -> dict[str, Explanation]:
        if self._loaded is None:
            self._loaded = dict(self._load())
        return self._loaded

    def _keys(self) -> list[str]:
        if self._loaded is not None or self._owners is None:
            return list(self._all())
        if self._known is None:
            self._known = list(self._owners())
        return self._known

    def __getitem__(self, owner: str) -> Explanation:
        if self._loaded is not None or self._load_some is None:
            return self._all()[owner]
        if owner not in self._some:
            self._some.update(self._load_some((owner,)))
        return self._some[owner]

    def refs(self) -> Mapping[str, tuple[str, tuple[str, ...]]]:
        """Per owner stored apart, its row's content hash and its reasons (read once)."""
        if self._stored is None:
            return {}
        if self._refs is None:
            self._refs = self._stored()
        return self._refs

    def kept_ref(self, owner: str, reasons: tuple[str, ...]
                 ) -> tuple[str, tuple[str, ...]] | None:
        """The content hash of ``owner``'s stored row when that row is exactly what it
        would be with ``reasons`` (None when not stored apart, or other reasons)."""
        found = self.refs().get(owner)
        return found if found is not None and found[1] == reasons else None

    def owners_holding(self, issue_ids: Collection[str],
                       owners: Collection[str] | None = None) -> set[str] | None:
        """The owners (all, or those of ``owners``) whose stored items include one of
        ``issue_ids``, told by the store's ids index without decoding items (None when
        the store cannot tell, or every owner is decoded already: the caller looks at
        the items)."""
        if self._holders is None or self._loaded is not None:
            return None
        return self._holders(issue_ids, owners) if issue_ids else set()

    def preload(self, owners: Collection[str]) -> None:
        """Read ``owners``' explanations in one go (not one read per owner)."""
        if self._loaded is not None or self._load_some is None:
            return
        missing = [owner for owner in owners if owner not in self._some]
        if missing:
            self._some.update(self._load_some(missing))

    def read_some(self, owners: Collection[str]) -> dict[str, Explanation]:
        """``owners``' explanations (those it holds) in one read, not kept: for a caller
        that uses each once. Owners read and kept already are not read again."""
        if self._loaded is not None or self._load_some is None:
            every = self._all()
            return {owner: every[owner] for owner in owners if owner in every}
        found = {owner: self._some[owner] for owner in owners if owner in self._some}
        missing = [owner for owner in owners if owner not in found]
        if missing:
            found.update(self._load_some(missing))
        return found

    def __contains__(self, owner: object) -> bool:
        return owner in self._keys()

    def items(self) -> ItemsView[str, Explanation]:
        # Every owner is about to be read: in one go, not one read per owner.
        self.preload(self._keys())
        return super().items()

    def values(self) -> ValuesView[Explanation]:
        self.preload(self._keys())
        return super().values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and self._all() == dict(other)

    __hash__ = None  # type: ignore[assignment]


class KeptExplanations(Mapping[str, "Explanation"]):
    """A new snapshot's explanations where owners no change touched keep the stored row
    of the snapshot they came from (``kept``: owner -> content hash), undecoded: saving
    names that row again, and only a reader that asks for such an owner decodes it."""

    def __init__(self, order: list[str], fresh: Mapping[str, Explanation],
                 kept: Mapping[str, tuple[str, tuple[str, ...]]], source: LazyExplanations) -> None:
        self._order = order
        self._fresh = dict(fresh)
        self._kept = dict(kept)
        self._source = source

    def json_entries(self) -> dict[str, Any]:
        """Per owner, its JSON, or ``{"$kept": hash}`` naming the stored row it equals."""
        return {owner: self.json_entry(owner) for owner in self._order}

    def json_entry(self, owner: str) -> dict[str, Any]:
        if owner in self._kept:
            return {KEPT: self._kept[owner][0], "reasons": list(self._kept[owner][1])}
        return self._fresh[owner].to_json()

    def __getitem__(self, owner: str) -> Explanation:
        if owner in self._fresh:
            return self._fresh[owner]
        if owner in self._kept:
            return self._source[owner]
        raise KeyError(owner)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def items(self) -> ItemsView[str, Explanation]:
        # The kept owners' rows in one read, not one read per owner.
        self._source.preload(list(self._kept))
        return super().items()

    def same_as(self, other: Mapping[str, Explanation]) -> bool:
        """Whether these explanations equal ``other``. When ``other`` is the stored
        snapshot the kept owners were taken from, a kept owner names ``other``'s own
        row for it and is equal unread: only the fresh owners are read and compared."""
        if other is not self._source:
            return dict(self.items()) == dict(other.items())
        if set(self._order) != set(other):
            return False
        fresh = [owner for owner in self._order if owner not in self._kept]
        return _same_stored(self._fresh, fresh, self._source)


def explanations_equal(mine: Mapping[str, Explanation], theirs: Mapping[str, Explanation]
                      ) -> bool:
    """Whether two snapshots' explanations are equal, reading as few stored rows as
    the two sides let tell it."""
    if isinstance(mine, KeptExplanations):
        return mine.same_as(theirs)
    if isinstance(mine, dict) and isinstance(theirs, LazyExplanations):
        return set(mine) == set(theirs) and _same_stored(mine, list(mine), theirs)
    return dict(mine.items()) == dict(theirs.items())


def _same_stored(mine: Mapping[str, Explanation], owners: list[str],
                 stored: LazyExplanations) -> bool:
    """Whether ``owners``' explanations in ``mine`` equal the stored ones, read
    :data:`READ_BATCH` owners at a time and dropped: after a pass measured every KR,
    all their stored items beside this pass's were the peak of its memory."""
    for batch in _batches(owners):
        theirs = stored.read_some(batch)
        if any(owner not in theirs or mine[owner] != theirs[owner] for owner in batch):
            return False
    return True


class PreviousStates(Mapping[str, Mapping[str, "ItemState"]]):
    """Per owner measured without error in a stored snapshot, its items' states (what
    change reasons are told against), decoded per owner when asked for: a pass that
    measures a few owners decodes those few. The states are not kept: a pass reads each
    owner's once (to tell its reasons), so holding them held every touched KR's previous
    items at once, beside this pass's."""

    def __init__(self, explanations: Mapping[str, Explanation]) -> None:
        self._explanations = explanations
        #: Owners announced by :meth:`preload` and not read yet -> their place in line.
        self._ahead: dict[str, int] = {}
        self._line: list[str] = []
        #: The batch read last, each owner dropped as it is asked for.
        self._batch: dict[str, Explanation] = {}

    def preload(self, owners: Collection[str]) -> None:
        """Announce the owners about to be asked for, in that order: they are read
        :data:`READ_BATCH` at a time as asked for (not one read per owner), and each is
        dropped once asked for, so no more than a batch of them is held at once."""
        if isinstance(self._explanations, LazyExplanations):
            self._line = [o for o in owners if o in self._explanations]
            self._ahead = {owner: place for place, owner in enumerate(self._line)}
            self._batch = {}

    def _preloaded(self) -> None:
        """Every owner's stored items, read in one go and kept (iterating needs each
        owner's error)."""
        if isinstance(self._explanations, LazyExplanations):
            self._explanations.preload([o for o in self._explanations])

    def _entry(self, owner: str) -> Explanation:
        if owner in self._batch:
            return self._batch.pop(owner)
        place = self._ahead.get(owner)
        if place is None or not isinstance(self._explanations, LazyExplanations):
            return self._explanations[owner]
        batch = [o for o in self._line[place:place + READ_BATCH] if o in self._ahead]
        for read in batch:
            del self._ahead[read]
        # Added to what is held, not in its place: owners asked out of the announced
        # order (a plan interleaving sources) keep their read instead of each being read
        # again alone.
        self._batch.update(self._explanations.read_some(batch))
        return self._batch.pop(owner)

    def __getitem__(self, owner: str) -> Mapping[str, ItemState]:
        # Asked first: looking up an owner the snapshot does not hold would read the store.
        if owner not in self._explanations:
            raise KeyError(owner)
        entry = self._entry(owner)
        if entry.error:
            raise KeyError(owner)
        from okr_sync.scoring.explain import item_states

        return item_states(entry.items)

    def _owners(self) -> list[str]:
        # Which owners hold states is told by their errors, without decoding items.
        self._preloaded()
        return [owner for owner in self._explanations
                if not self._explanations[owner].error]

    def __iter__(self) -> Iterator[str]:
        return iter(self._owners())

    def __len__(self) -> int:
        return len(self._owners())

    def holding(self, issue_ids: Collection[str],
                owners: Collection[str] | None = None) -> set[str]:
        """The owners (all, or those of ``owners``) whose items include one of
        ``issue_ids``: from the store's ids index when it can tell (a superset: owners
        whose items are an error's too), else from their decoded items."""
        if isinstance(self._explanations, LazyExplanations):
            found = self._explanations.owners_holding(issue_ids, owners)
            if found is not None:
                return found
        wanted = set(issue_ids)
        if owners is None:
            return {owner for owner in self if wanted.intersection(self[owner])}
        asked = [owner for owner in owners if owner in self._explanations]
        self.preload(asked)
        # ``get``: an owner measured with an error holds no states (None), told from the
        # batch read, not by reading the owner again alone.
        return {owner for owner in asked
                if (states := self.get(owner)) is not None and wanted.intersection(states)}


class ExplanationsJson(Mapping[str, Any]):
    """Each owner's explanation as JSON, built only when it is read.

    A snapshot's explanations hold every KR's items: most of its document. Saving it
    reads them one owner at a time (and writes them in batches), so the whole JSON of
    every KR's items never sits in memory at once beside the explanations themselves.
    """

    def __init__(self, explanations: Mapping[str, Explanation]) -> None:
        self._explanations = explanations

    def __getitem__(self, owner: str) -> Any:
        if isinstance(self._explanations, KeptExplanations):
            return self._explanations.json_entry(owner)
        return self._explanations[owner].to_json()

    def __iter__(self) -> Iterator[str]:
        return iter(self._explanations)

    def __len__(self) -> int:
        return len(self._explanations)
