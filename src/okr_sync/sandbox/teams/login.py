"""Sign-in to the Teams sandbox: an MSAL ``http_client`` that reaches loopback."""

from __future__ import annotations

from typing import Any

import requests

AUTHORITY_HOST = "https://login.microsoftonline.com"


class SandboxLoginHttpClient:
    """An MSAL ``http_client`` that sends ``authority_host`` requests to the sandbox.

    MSAL accepts only https authorities, so the client keeps the real login
    host in its configuration and this object reroutes it to loopback. Any
    other host is refused loudly rather than contacted.
    """

    def __init__(
        self, sandbox_url: str, *, authority_host: str = AUTHORITY_HOST, timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:  # fmt: skip
        self._sandbox_url = sandbox_url.rstrip("/")
        self._authority_host = authority_host.rstrip("/")
        self._timeout = timeout
        self._session = session or requests.Session()
        self.calls: list[tuple[str, str]] = []

    def _rewrite(self, method: str, url: str) -> str:
        if not url.startswith(self._authority_host + "/"):
            raise RuntimeError(f"the sandbox login client only reaches {self._authority_host}")
        self.calls.append((method, url.split("?")[0]))
        return self._sandbox_url + url[len(self._authority_host) :]

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        target = self._rewrite("GET", url)
        return self._session.get(target, params=params, headers=headers, **kwargs)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None,
             **kwargs: Any) -> Any:  # fmt: skip
        kwargs.setdefault("timeout", self._timeout)
        target = self._rewrite("POST", url)
        return self._session.post(target, params=params, data=data, headers=headers, **kwargs)

    def close(self) -> None:
        self._session.close()
