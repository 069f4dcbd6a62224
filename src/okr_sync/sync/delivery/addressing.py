"""Who and where a message points at: owners' contacts and each KR's Jira site.

Kept apart from the renderers (:mod:`okr_sync.sync.delivery.render`) because every
pass needs these, when it connects and when it plans its messages, while the
renderers are needed only for a message to send: a pass with no news imports none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Contact:
    """Who a change note or reminder may mention about a KR: their name and chat ids."""

    name: str
    slack: str | None = None
    teams: str | None = None


#: KR (or objective) id -> the contact of its owner; only owners found in ``people``.
Contacts = Mapping[str, Contact]


@dataclass(frozen=True)
class JiraSites:
    """Where a KR's issue keys link: the site of the Jira source its measure reads
    (``by_kr``, KR id -> site), else ``main``'s."""

    main: str | None
    by_kr: Mapping[str, str | None]

    def for_kr(self, kr_id: str) -> str | None:
        return self.by_kr.get(kr_id) or self.main


#: One site for every KR's issue keys, each KR's own, or none (keys are not linked).
JiraBase = str | JiraSites | None


def site_for(jira_base_url: JiraBase, kr_id: str) -> str | None:
    if isinstance(jira_base_url, JiraSites):
        return jira_base_url.for_kr(kr_id)
    return jira_base_url
