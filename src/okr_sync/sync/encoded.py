"""A mapping whose values are encoded (to JSON) only as they are read."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")
E = TypeVar("E")


class EncodedOnRead(Mapping[str, E], Generic[V, E]):
    """``source`` with ``encode`` applied to each value when it is read, never kept.

    The store writes large sets of documents (every measure's state after a full pass)
    a batch at a time; handed this, it holds one batch's JSON rather than all of it.
    """

    def __init__(self, source: Mapping[str, V], encode: Callable[[V], E]) -> None:
        self._source = source
        self._encode = encode

    def __getitem__(self, key: str) -> E:
        return self._encode(self._source[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)
