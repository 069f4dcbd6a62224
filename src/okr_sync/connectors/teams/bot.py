"""The Teams bot: Bot Framework activities (proactive messages), posted and updated.

Activities go through the Bot Connector with a token from one MSAL
``ConfidentialClientApplication`` per client (single-tenant authority, so its
token cache is reused). Statuses are resolved by
:data:`~okr_sync.connectors.teams.transport.TEAMS_BOT_ERROR_TABLE`.

Exceptions from ``requests`` and MSAL are never chained or quoted: their text
can hold a request's headers or the app secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from pydantic import SecretStr

from okr_sync.connectors.http import REQUEST_POLICY, Retrier, RetryPolicy, parse_retry_after, redact
from okr_sync.connectors.teams.errors import (
    TeamsAuthError,
    TeamsMalformedResponseError,
    TeamsPermanentError,
    TeamsTransientError,
)
from okr_sync.connectors.teams.transport import (
    TEAMS_BOT_ERROR_TABLE,
    request_failed,
    send,
    status_error,
)

if TYPE_CHECKING:
    import msal

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
#: MSAL replays a failed token request from its HTTP cache (an HTTP 400 for 60 s,
#: a 5xx for its Retry-After): asking again sooner only gets the same failure.
TOKEN_RETRY_AFTER = 60.0


class _RecordingHttpClient:
    """The ``http_client`` MSAL uses, remembering the last response it got.

    MSAL reports a refused tenant discovery (any 4xx, 429 included) as a bare
    ``ValueError`` and a token-endpoint 5xx without the response; the recorded
    status and headers tell a throttled or failing login host from a wrong
    tenant without reading MSAL's text.
    """

    def __init__(self, inner: Any, timeout: float | None) -> None:
        self._inner = inner
        self._timeout = timeout
        self.last: Any = None

    def _call(self, verb: str, url: str, **kwargs: Any) -> Any:
        self.last = None
        if self._timeout is not None:
            kwargs.setdefault("timeout", self._timeout)
        response = getattr(self._inner, verb)(url, **kwargs)
        self.last = response
        return response

    def get(self, url: str, **kwargs: Any) -> Any:
        return self._call("get", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self._call("post", url, **kwargs)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    def last_status(self) -> int | None:
        status = getattr(self.last, "status_code", None)
        return status if isinstance(status, int) else None

    def last_retry_after(self) -> float | None:
        headers = getattr(self.last, "headers", None)
        if not isinstance(headers, Mapping):
            return None
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get("retry-after")
        return parse_retry_after(value) if isinstance(value, str) else None


class TeamsBotClient:
    """Posts and updates Bot Framework activities (proactive messages) in Teams."""

    def __init__(
        self,
        app_id: str,
        app_secret: SecretStr,
        tenant_id: str,
        service_url: str,
        *,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        http_client: Any = None,
        retrier: Retrier | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.service_url = service_url.rstrip("/")
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        # A secret read from an env var or a file often ends in a newline.
        self._secret = SecretStr(app_secret.get_secret_value().strip())
        self.retrier = retrier or Retrier(policy=policy or REQUEST_POLICY, sleep=sleep)
        self.timeout = timeout if timeout is not None else self.retrier.policy.timeout
        self._session = session or requests.Session()
        self._login_session: requests.Session | None = None
        if http_client is None:
            self._login_session = requests.Session()
        self._login = _RecordingHttpClient(
            http_client if http_client is not None else self._login_session,
            None if http_client is not None else self.timeout,
        )
        self._app: msal.ConfidentialClientApplication | None = None

    def __repr__(self) -> str:
        return (
            f"TeamsBotClient(app_id={self.app_id!r}, tenant_id={self.tenant_id!r}, "
            f"service_url={self.service_url!r})"
        )

    def close(self) -> None:
        self._session.close()
        if self._login_session is not None:
            self._login_session.close()

    def acquire_token(self) -> None:
        """Get a Bot Framework token from the login host, posting nothing (``okr-sync
        doctor``); a TeamsError says why not. The token stays in MSAL's cache."""
        self._token("token check", "login")

    def post_activity(self, conversation_id: str, activity: Mapping[str, Any]) -> str:
        """Send an activity to a conversation; returns the new activity id (keep it to edit)."""
        url = f"{self._conversation_url(conversation_id)}/activities"
        target = f"conversation {conversation_id}"
        data = self.retrier.call(lambda: self._request("POST", url, activity, "post", target))
        activity_id = data.get("id")
        if not isinstance(activity_id, str) or not activity_id:
            # Posted, but without an id we cannot edit it; retrying would post it twice.
            raise TeamsPermanentError(
                f"Teams post to {target} returned no activity id",
                code="missing_activity_id", operation="post", target=target,
            )  # fmt: skip
        return activity_id

    def update_activity(
        self, conversation_id: str, activity_id: str, activity: Mapping[str, Any]
    ) -> str:
        """Replace an activity in place; returns its id.

        An activity that is gone (deleted in Teams) raises
        :class:`TeamsNotFoundError`: the caller posts a new one instead.
        """
        url = f"{self._conversation_url(conversation_id)}/activities/{quote(activity_id, safe='')}"
        target = f"conversation {conversation_id} activity {activity_id}"
        body = {**activity, "id": activity_id}
        data = self.retrier.call(lambda: self._request("PUT", url, body, "update", target))
        returned = data.get("id")
        return returned if isinstance(returned, str) and returned else activity_id

    # -- internals --------------------------------------------------------------

    def _conversation_url(self, conversation_id: str) -> str:
        return f"{self.service_url}/v3/conversations/{quote(conversation_id, safe='')}"

    def _request(
        self, method: str, url: str, body: Mapping[str, Any], operation: str, target: str
    ) -> dict[str, Any]:
        # One fresh token on a 401: the cached one may have been revoked early.
        for refresh in (False, True):
            headers = {"Authorization": f"Bearer {self._token(operation, target)}"}
            response = send(
                self._session, method, url, body=body, headers=headers, timeout=self.timeout,
                operation=operation, target=target, table=TEAMS_BOT_ERROR_TABLE,
            )  # fmt: skip
            if response.status_code == 401 and not refresh and self._app is not None:
                self._app.remove_tokens_for_client()
                continue
            break
        if not 200 <= response.status_code < 300:
            raise status_error(
                response, operation=operation, target=target, table=TEAMS_BOT_ERROR_TABLE,
                secrets=[self._secret.get_secret_value()],
            ) from None  # fmt: skip
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TeamsMalformedResponseError(
                f"Teams {operation} to {target} answered with a non-JSON body",
                code="malformed_response", operation=operation, target=target,
                status=response.status_code,
            )  # fmt: skip
        return data

    def _msal_app(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            # Imported on the first token, not at start: msal costs ~0.1 s of CPU to
            # import, and most passes send nothing to Teams.
            import msal

            # The constructor fetches the tenant's OpenID configuration. Instance
            # discovery is skipped: the authority is single-tenant and fixed.
            self._login.last = None
            self._app = msal.ConfidentialClientApplication(
                self.app_id,
                client_credential=self._secret.get_secret_value(),
                authority=self.authority,
                http_client=self._login,
                instance_discovery=False,
            )
        return self._app

    def _token(self, operation: str, target: str) -> str:
        from msal.exceptions import MsalServiceError

        where = f"Teams {operation} to {target}: token for app {self.app_id} in tenant"
        where += f" {self.tenant_id}"
        secrets = [self._secret.get_secret_value()]
        try:
            app = self._msal_app()
        except requests.exceptions.SSLError:
            raise request_failed("tls_error", "SSLError", operation, target) from None
        except ValueError:
            # MSAL raises ValueError when the authority is not https or tenant
            # discovery is refused (any 4xx); its text quotes the response. A
            # throttled or failing login host is weather, not a wrong tenant.
            status = self._login.last_status()
            if status is not None and (status == 429 or status >= 500):
                raise TeamsTransientError(
                    f"{where} failed: tenant discovery unavailable (HTTP {status})",
                    code="tenant_discovery_unavailable", operation=operation, target=target,
                    status=status, retry_after=self._login.last_retry_after(),
                ) from None  # fmt: skip
            raise TeamsAuthError(
                f"{where} failed: authority or tenant rejected",
                code="tenant_discovery_failed", operation=operation, target=target,
            ) from None  # fmt: skip
        except (requests.RequestException, MsalServiceError):
            raise TeamsTransientError(
                f"{where} failed: tenant discovery unavailable",
                code="tenant_discovery_unavailable", operation=operation, target=target,
                status=self._login.last_status(), retry_after=self._login.last_retry_after(),
            ) from None  # fmt: skip
        try:
            result = app.acquire_token_for_client(scopes=[BOT_FRAMEWORK_SCOPE])
        except requests.exceptions.SSLError:
            raise request_failed("tls_error", "SSLError", operation, target) from None
        except (requests.RequestException, MsalServiceError, ValueError):
            # 5xx, network failures and non-JSON answers from the token endpoint.
            raise TeamsTransientError(
                f"{where} failed: token endpoint unavailable",
                code="token_endpoint_unavailable", operation=operation, target=target,
                retry_after=TOKEN_RETRY_AFTER,
            ) from None  # fmt: skip
        if not isinstance(result, dict):
            raise TeamsMalformedResponseError(
                f"{where} failed: no result", code="malformed_token_response",
                operation=operation, target=target,
            )  # fmt: skip
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        error = str(result.get("error") or "unknown_error")
        description = redact(str(result.get("error_description") or ""), secrets)
        message = f"{where} failed: {error}"
        message += f" ({description.splitlines()[0][:300]})" if description else ""
        if error in TRANSIENT_OAUTH_ERRORS:
            raise TeamsTransientError(
                message, code=error, operation=operation, target=target,
                retry_after=TOKEN_RETRY_AFTER,
            )  # fmt: skip
        raise TeamsAuthError(message, code=error, operation=operation, target=target)
