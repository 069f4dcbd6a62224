"""The signed-in :class:`requests.Session` a Jira client sends through."""

from __future__ import annotations

import requests
from pydantic import SecretStr

from okr_sync.connectors.jira.source import JiraSource


class _BearerAuth(requests.auth.AuthBase):
    """Data Center's personal access token as ``Authorization: Bearer``."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return request


class _BasicAuth(requests.auth.AuthBase):
    """Cloud's email + API token as HTTP basic auth; the token stays a SecretStr at rest.

    ``session.auth = (email, token)`` would work too, but a tuple shows the
    token in any ``repr`` of the session's auth.
    """

    def __init__(self, email: str, token: SecretStr) -> None:
        self._email = email
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        signed: requests.PreparedRequest = requests.auth.HTTPBasicAuth(
            self._email, self._token.get_secret_value()
        )(request)
        return signed


#: What Jira's REST API expects of a client (the headers the `jira` package sends).
_HEADERS = {
    "Accept": "application/json,*/*;q=0.9",
    "Content-Type": "application/json",
    "Cache-Control": "no-cache",
    "X-Atlassian-Token": "no-check",
}


def jira_session(source: JiraSource) -> requests.Session:
    """A session signed in to ``source``: basic auth (Cloud) or a bearer PAT (Data Center)."""
    session = requests.Session()
    session.headers.update(_HEADERS)
    if source.pat is not None:
        session.auth = _BearerAuth(source.pat)
    else:
        assert source.email is not None and source.api_token is not None
        session.auth = _BasicAuth(source.email, source.api_token)
    return session
