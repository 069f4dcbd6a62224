"""A stored snapshot's explanations, read from the store only as far as a pass needs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING

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
                 load_some: Callable[[Collection[str]], Mapping[str, Explanation]] | None = None
                 ) -> None:
        self._load = load
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
