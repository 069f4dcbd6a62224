"""Plain typed records for Jira issues, built from Jira's issue JSON.

Nothing here knows about OKRs: the record is what Jira says about an issue,
normalised (names instead of nested objects, aware datetimes, tuples).

An issue whose JSON cannot be read is a :class:`JiraIssueShapeError`, a
*permanent* error: Jira serves the same issue the same way on every retry
(a custom field of an unexpected type, a broken timestamp), so retrying the
page only delays the failure. A body that is not JSON at all is a transport
problem and stays transient (see ``transport``).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Self

from okr_sync.connectors.errors import MalformedResponseError, PermanentError

# Jira's timestamps carry an offset without a colon ("-0500"); some servers
# omit the fraction. Both shapes are tried before ISO parsing.
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")

#: The fields :meth:`JiraIssue.from_json` reads; every search requests them.
STANDARD_FIELDS: tuple[str, ...] = (
    "summary",
    "issuetype",
    "project",
    "parent",
    "status",
    "resolution",
    "resolutiondate",
    "priority",
    "labels",
    "components",
    "fixVersions",
    "created",
    "updated",
)

STATUS_CATEGORY_UNDEFINED = "undefined"

#: What Jira promises of an issue's identity, in ASCII: ``str.isdigit`` would
#: take "²" or "٣", and an id goes unquoted into ``id in (...)`` JQL.
ISSUE_ID_PATTERN = re.compile(r"[0-9]+")
ISSUE_KEY_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*-[0-9]+")

#: No estimate is larger; a bigger value (1e308...) is a data error, not work.
MAX_STORY_POINTS = 1_000_000.0


class JiraIssueShapeError(PermanentError):
    """One issue in Jira's answer does not have the shape its API promises.

    ``issue_key`` / ``issue_id`` name it when the JSON holds them.
    """

    def __init__(self, message: str, *, issue_key: str | None, issue_id: str | None) -> None:
        super().__init__(message)
        self.issue_key = issue_key
        self.issue_id = issue_id

    @classmethod
    def of(cls, raw: Any, problem: str) -> Self:
        key = raw.get("key") if isinstance(raw, Mapping) else None
        ident = raw.get("id") if isinstance(raw, Mapping) else None
        key_text = str(key)[:100] if isinstance(key, str | int) else None
        id_text = str(ident)[:100] if isinstance(ident, str | int) else None
        named = " ".join(
            part for part in (key_text, f"(id {id_text})" if id_text else None) if part
        )
        return cls(
            f"Jira sent issue {named or '(no key or id)'} in a shape that cannot be read: "
            f"{problem[:300]}",
            issue_key=key_text,
            issue_id=id_text,
        )


class JiraIssueIdentityError(JiraIssueShapeError):
    """An issue whose id or key is not what Jira promises: it is skipped, never queried."""


def issue_id_text(value: Any) -> str | None:
    """An issue id as Jira promises it (ASCII digits, or a JSON integer), else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value >= 0 else None
    if isinstance(value, str) and ISSUE_ID_PATTERN.fullmatch(value):
        return value
    return None


def is_issue_key(value: Any) -> bool:
    return isinstance(value, str) and ISSUE_KEY_PATTERN.fullmatch(value) is not None


#: One zone object per offset Jira's timestamps carry (see :func:`_shared_zone`).
_ZONES: dict[tuple[timezone, str | None], timezone] = {}


def _shared_zone(parsed: datetime) -> datetime:
    """``parsed`` with the zone object every timestamp of its offset shares: ``strptime``
    gives each its own, and a pull holds three timestamps of every issue it read."""
    zone = parsed.tzinfo
    if type(zone) is not timezone:
        return parsed
    shared = _ZONES.setdefault((zone, zone.tzname(None)), zone)
    return parsed if shared is zone else parsed.replace(tzinfo=shared)


def parse_jira_datetime(value: str) -> datetime:
    """Parse a Jira timestamp such as ``2019-09-25T08:37:05.392-0500`` (aware)."""
    for fmt in _TIMESTAMP_FORMATS:
        try:
            return _shared_zone(datetime.strptime(value, fmt))
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedResponseError(f"Jira sent an unreadable timestamp {value!r}") from None
    if parsed.tzinfo is None:
        raise MalformedResponseError(f"Jira sent a timestamp without an offset {value!r}")
    return parsed


@dataclass(frozen=True)
class JiraIssue:
    """One Jira issue as plain data. ``id`` is immutable; ``key`` changes on moves."""

    id: str
    key: str
    project: str
    issuetype: str
    is_subtask: bool
    parent_id: str | None
    parent_key: str | None
    summary: str
    status: str
    status_category: str
    resolution: str | None
    resolution_date: datetime | None
    priority: str | None
    labels: tuple[str, ...]
    components: tuple[str, ...]
    fix_versions: tuple[str, ...]
    story_points: float | None
    created: datetime
    updated: datetime
    fields: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=True
    )

    @classmethod
    def from_json(
        cls,
        raw: Mapping[str, Any],
        *,
        story_points_fields: Sequence[str] = (),
        epic_link_field: str | None = None,
        extra_fields: Sequence[str] = (),
    ) -> JiraIssue:
        """Build a record from one element of a search response's ``issues``.

        ``story_points_fields`` are candidate field ids in order of preference;
        the first non-empty one gives the points (instances often have both
        "Story point estimate" and "Story Points"). ``epic_link_field`` (Data
        Center "Epic Link", a key only) fills ``parent_key`` when there is no
        ``parent``. ``extra_fields`` are copied raw into :attr:`fields`.
        """
        ident = raw.get("id") if isinstance(raw, Mapping) else None
        if issue_id_text(ident) is None:
            raise JiraIssueIdentityError.of(raw, "its id is not a number (ASCII digits)")
        if not is_issue_key(raw.get("key")):
            raise JiraIssueIdentityError.of(raw, "its key is not PROJECT-NUMBER (ASCII)")
        try:
            return _build(raw, story_points_fields, epic_link_field, extra_fields)
        except MalformedResponseError as error:
            raise JiraIssueShapeError.of(raw, str(error)) from None
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise JiraIssueShapeError.of(raw, f"{type(error).__name__}: {error}") from None


def _build(
    raw: Mapping[str, Any],
    story_points_fields: Sequence[str],
    epic_link_field: str | None,
    extra_fields: Sequence[str],
) -> JiraIssue:
    fields: Mapping[str, Any] = raw["fields"]
    issuetype = fields.get("issuetype") or {}
    status = fields.get("status") or {}
    category = status.get("statusCategory") or {}
    parent = fields.get("parent") or {}
    parent_key = parent.get("key")
    if parent_key is None and epic_link_field is not None:
        epic = fields.get(epic_link_field)
        parent_key = str(epic) if epic else None
    resolution_date = fields.get("resolutiondate")
    # Names many issues share (project, type, status...) are interned: decoded JSON
    # gives every issue its own copies, and a full pull holds every issue it read.
    return JiraIssue(
        id=str(issue_id_text(raw["id"])),
        key=str(raw["key"]),
        project=sys.intern(str(fields["project"]["key"])),
        issuetype=sys.intern(str(issuetype.get("name", ""))),
        is_subtask=bool(issuetype.get("subtask", False)),
        parent_id=_opt_str(parent.get("id")),
        parent_key=_opt_str(parent_key),
        summary=str(fields.get("summary") or ""),
        status=sys.intern(str(status.get("name", ""))),
        status_category=sys.intern(str(category.get("key") or STATUS_CATEGORY_UNDEFINED)),
        resolution=_name(fields.get("resolution")),
        resolution_date=parse_jira_datetime(resolution_date) if resolution_date else None,
        priority=_name(fields.get("priority")),
        labels=_labels(fields.get("labels")),
        components=_names(fields.get("components")),
        fix_versions=_names(fields.get("fixVersions")),
        story_points=_first_number(fields, story_points_fields),
        created=parse_jira_datetime(fields["created"]),
        updated=parse_jira_datetime(fields["updated"]),
        fields=MappingProxyType({name: _finite(fields.get(name)) for name in extra_fields}),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _name(value: Any) -> str | None:
    if not value:
        return None
    return sys.intern(str(value["name"]))


def _labels(value: Any) -> tuple[str, ...]:
    # A string is iterable too: "okr" would become the labels o, k and r.
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TypeError(f"labels is {type(value).__name__}, not a list")
    return tuple(sys.intern(str(label)) for label in value)


def _names(values: Any) -> tuple[str, ...]:
    return tuple(sys.intern(str(item["name"])) for item in values or ())


def _first_number(fields: Mapping[str, Any], candidates: Sequence[str]) -> float | None:
    for field_id in candidates:
        number = _as_number(fields.get(field_id))
        if number is not None:
            return number
    return None


def _as_number(value: Any) -> float | None:
    # A "Story Points" field found by name may be a text field on odd
    # instances; numeric text is honoured, anything else counts as unset.
    # So does a number no estimate can be (NaN, infinite, negative, 1e308):
    # summed, it would crash every pass or turn the KR into nonsense.
    number: float | None = None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value) if abs(value) <= MAX_STORY_POINTS else None
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    if number is None or not math.isfinite(number) or not 0 <= number <= MAX_STORY_POINTS:
        return None
    return number


def _finite(value: Any) -> Any:
    # NaN and Infinity are not JSON, but Python's parser takes them: a raw
    # field keeps them out, as if the field were empty.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
