"""Parsing of Jira search pages and of the field catalog (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from okr_sync.connectors.errors import MalformedResponseError

T = TypeVar("T")

STORY_POINTS_SCHEMA = "com.pyxis.greenhopper.jira:jsw-story-points"
EPIC_LINK_SCHEMA = "com.pyxis.greenhopper.jira:gh-epic-link"
STORY_POINTS_NAMES = ("story point estimate", "story points")


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _schema_custom(field: Any) -> str | None:
    schema = field.get("schema") if isinstance(field, Mapping) else None
    custom = schema.get("custom") if isinstance(schema, Mapping) else None
    return custom if isinstance(custom, str) else None


def story_points_candidates(catalog: list[Mapping[str, Any]]) -> tuple[str, ...]:
    by_schema = [str(f["id"]) for f in catalog if _schema_custom(f) == STORY_POINTS_SCHEMA]
    by_name = [
        str(f["id"])
        for wanted in STORY_POINTS_NAMES
        for f in catalog
        if isinstance(f, Mapping) and str(f.get("name", "")).casefold() == wanted
    ]
    return tuple(unique([*by_schema, *by_name]))


def issues_of(data: Any, site: str) -> list[Mapping[str, Any]]:
    issues = data.get("issues") if isinstance(data, Mapping) else None
    if not isinstance(issues, list) or not all(isinstance(i, Mapping) for i in issues):
        raise MalformedResponseError(f"Jira at {site} sent a search page without an issue list")
    return issues


def int_field(data: Any, name: str, site: str) -> int:
    value = data.get(name) if isinstance(data, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedResponseError(f"Jira at {site} sent no integer {name!r}")
    return value


@dataclass(frozen=True)
class TokenPage(Generic[T]):
    items: list[T]
    next_token: str | None
    is_last: bool

    @staticmethod
    def parse(data: Any, item: Callable[[Mapping[str, Any]], T], site: str) -> TokenPage[T]:
        items = [item(raw) for raw in issues_of(data, site)]
        token = data.get("nextPageToken")
        if token is not None and not isinstance(token, str):
            raise MalformedResponseError(f"Jira at {site} sent a non-string nextPageToken")
        return TokenPage(items, token or None, data.get("isLast") is True)


@dataclass(frozen=True)
class OffsetPage(Generic[T]):
    items: list[T]
    total: int
    max_results: int | None

    @staticmethod
    def parse(data: Any, item: Callable[[Mapping[str, Any]], T], site: str) -> OffsetPage[T]:
        items = [item(raw) for raw in issues_of(data, site)]
        max_results = data.get("maxResults")
        return OffsetPage(
            items,
            int_field(data, "total", site),
            max_results if isinstance(max_results, int) else None,
        )


def epic_link_field_id(catalog: list[Mapping[str, Any]]) -> str | None:
    return next((str(f["id"]) for f in catalog if _schema_custom(f) == EPIC_LINK_SCHEMA), None)


def field_catalog(data: Any, site: str) -> list[Mapping[str, Any]]:
    """The usable entries of ``GET field``: objects with a string ``id`` and ``name``.

    An entry without them cannot name a field we could request, so it is
    skipped rather than failing the discovery of every other field.
    """
    if not isinstance(data, list):
        raise MalformedResponseError(f"Jira at {site} sent a malformed field list")
    return [
        entry for entry in data
        if isinstance(entry, Mapping)
        and isinstance(entry.get("id"), str) and entry["id"]
        and isinstance(entry.get("name"), str)
    ]
