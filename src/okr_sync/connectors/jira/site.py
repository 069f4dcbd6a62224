"""What a Jira site is: Cloud or Data Center, and the user's time zone (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Hosts Atlassian serves Cloud sites on (production, legacy, development).
CLOUD_HOST_SUFFIXES = (".atlassian.net", ".jira.com", ".jira-dev.com")
#: serverInfo fields only Cloud returns (the v3 spec; Data Center has none of them).
_CLOUD_ONLY_INFO = ("displayUrl", "displayUrlConfluence", "displayUrlServicedeskHelpCenter")
# Cloud's version line is 1001.x; Data Center's majors are single or double digits.
_CLOUD_MIN_MAJOR = 1000


def load_timezone(name: Any) -> ZoneInfo | None:
    """The zone ``name`` names, ``None`` for anything :class:`ZoneInfo` cannot load.

    Not only unknown names: a tzdata folder (``"America"``) raises
    ``IsADirectoryError``, a 300-byte name ``OSError`` (name too long), a NUL
    ``ValueError``.
    """
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, OSError, ValueError):
        return None


def describe_zone(name: Any) -> str:
    if not isinstance(name, str):
        return "missing" if name is None else f"of type {type(name).__name__}"
    return repr(name[:60] + ("..." if len(name) > 60 else ""))


def is_cloud_site(base_url: str, info: Mapping[str, Any]) -> bool:
    """Whether a site is Jira Cloud, from its URL and ``serverInfo`` answer."""
    deployment = info.get("deploymentType")
    if isinstance(deployment, str) and deployment:
        return deployment.casefold() == "cloud"
    host = (urlsplit(base_url).hostname or "").casefold()
    if host.endswith(CLOUD_HOST_SUFFIXES):
        return True
    if any(name in info for name in _CLOUD_ONLY_INFO):
        return True
    numbers = info.get("versionNumbers")
    if isinstance(numbers, list) and numbers and isinstance(numbers[0], int):
        return numbers[0] >= _CLOUD_MIN_MAJOR
    return False


def clamp_to_server_time(updated: datetime, server_now: datetime, skew: timedelta) -> datetime:
    """``updated``, or the server's now plus ``skew`` when it claims to be later."""
    return min(updated, server_now + skew)
