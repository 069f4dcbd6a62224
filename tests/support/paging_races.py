"""Jira changing while a client pages through a search (offset paging's hazard)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from okr_sync.connectors.jira.client import JiraClient


def after_first_page(client: JiraClient, change: Callable[[], object]) -> None:
    """Run ``change`` once, right after the first page of a full search (not an id-only
    listing, not an incremental ``updated >=`` search) came back to ``client``."""
    call = client._transport.call  # the one seam between pages
    done: list[bool] = []

    def hooked(method: str, path: str, **kw: Any) -> Any:
        out = call(method, path, **kw)
        params = kw.get("params") or {}
        body = kw.get("body") or {}
        fields = params.get("fields") or ",".join(body.get("fields") or ())
        jql = params.get("jql") or body.get("jql") or ""
        paged = params.get("maxResults", body.get("maxResults", 0))
        if (path.startswith("search") and fields != "id" and "updated" not in jql
                and paged and not done):
            done.append(True)
            change()
        return out

    client._transport.call = hooked  # type: ignore[method-assign]
