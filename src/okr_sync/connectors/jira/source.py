"""Where a Jira site is and how to sign in to it (plain data, secrets hidden)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import SecretStr

from okr_sync.connectors.http import REQUEST_POLICY, RetryPolicy

AUTO = "auto"
DEFAULT_MAX_PAGES = 10_000

_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def _plain(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class JiraSource:
    """A Jira site and its credentials.

    Cloud signs in with ``email`` + ``api_token`` (HTTP basic); Data Center
    with a personal access token ``pat`` (Bearer). The credentials are left
    out of ``repr``/``str`` and are never put into error messages.
    ``story_points_field`` and ``epic_link_field`` are ``"auto"`` (discover
    from ``/field``), an explicit field id, or (epic link only) ``None``.
    ``timeout`` (seconds) defaults to the retry policy's timeout.
    """

    base_url: str
    email: str | None = field(default=None, repr=False)
    api_token: SecretStr | None = field(default=None, repr=False)
    pat: SecretStr | None = field(default=None, repr=False)
    story_points_field: str = AUTO
    epic_link_field: str | None = AUTO
    timeout: float | None = None
    retry: RetryPolicy = REQUEST_POLICY
    max_pages: int = DEFAULT_MAX_PAGES

    def __post_init__(self) -> None:
        # Plain strings are accepted defensively and wrapped at once.
        object.__setattr__(self, "api_token", _secret(self.api_token))
        object.__setattr__(self, "pat", _secret(self.pat))
        object.__setattr__(self, "base_url", self.base_url.strip().rstrip("/"))
        parts = urlsplit(self.base_url)
        if parts.username is not None or parts.password is not None:
            raise ValueError("the Jira base URL must not contain credentials")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("the Jira base URL must be an absolute http(s) URL")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("plain http:// is accepted only for loopback hosts; use https://")
        basic = self.email is not None or self.api_token is not None
        if basic and (not self.email or self.api_token is None):
            raise ValueError("Jira Cloud auth needs both an email and an API token")
        if basic == (self.pat is not None):
            raise ValueError(
                "configure exactly one Jira auth: email + API token (Cloud) or a PAT (Data Center)"
            )
        for label, value in (
            ("email", self.email),
            ("API token", _plain(self.api_token)),
            ("personal access token", _plain(self.pat)),
        ):
            if value is not None and not _latin1(value):
                # Caught here, at start: requests would fail deep in http.client on
                # every call. The value itself is never quoted, not even in part.
                raise ValueError(
                    f"the Jira {label} contains a character an HTTP header cannot carry "
                    "(outside Latin-1, e.g. a typographic quote or dash pasted with it); "
                    f"set the {label} again as issued"
                )
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("the Jira timeout must be positive")
        if self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        if not self.story_points_field.strip():
            raise ValueError("story_points_field must be 'auto' or a field id")

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else self.retry.timeout

    @property
    def auth_kind(self) -> str:
        """``"basic"`` (Cloud email + API token) or ``"bearer"`` (Data Center PAT)."""
        return "bearer" if self.pat is not None else "basic"
