"""A stored snapshot's explanations, read from the store only as far as a pass needs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from okr_sync.sync.store.snapshot_items import KEPT

if TYPE_CHECKING:
    from okr_sync.sync.state import Explanation


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
                 stored: Callable[[], Mapping[str, tuple[str, tuple[str, ...]]]] | None = None
                 ) -> None:
        self._load = load
        self._stored = stored
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

    def kept_ref(self, owner: str, reasons: tuple[str, ...]
                 ) -> tuple[str, tuple[str, ...]] | None:
        """The content hash of ``owner``'s stored row when that row is exactly what it
        would be with ``reasons`` (None when not stored apart, or other reasons)."""
        if self._stored is None:
            return None
        if self._refs is None:
            self._refs = self._stored()
        found = self._refs.get(owner)
        return found if found is not None and found[1] == reasons else None

    def preload(self, owners: Collection[str]) -> None:
        """Read ``owners``' explanations in one go (not one read per owner)."""
        if self._loaded is not None or self._load_some is None:
            return
        missing = [owner for owner in owners if owner not in self._some]
        if missing:
            self._some.update(self._load_some(missing))

    def __contains__(self, owner: object) -> bool:
        return owner in self._keys()

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
