"""A Jira on loopback: Cloud (default) or Data Center, from a sandbox dataset.

``JiraSandbox`` is a WSGI app (Werkzeug) that speaks the wire protocol the ``jira`` client
and okr-sync's connector use: ``serverInfo``, ``myself``, ``field``, ``project``,
``project/{key}``, ``issue/{idOrKey}``, ``status``, Cloud ``jql/parse``, Cloud
``changelog/bulkfetch`` and ``issue/{idOrKey}/changelog`` (:mod:`.changelog`;
``expand=changelog`` on both searches and on ``issue/{idOrKey}``), ``search/jql`` +
``search/approximate-count`` (the legacy ``search`` answers 410), Data Center
``/rest/api/2/search`` with offset paging. Faults are injected through
:attr:`JiraSandbox.faults`; every request lands in :attr:`JiraSandbox.log`.

    with JiraSandbox(generate_dataset(seed=1, issues=1000)) as jira:
        requests.get(f"{jira.url}/rest/api/3/myself", auth=jira.basic_auth, timeout=5)
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from okr_sync.sandbox.jira.changelog import (
    CLOUD_SEARCH_CAP,
    bulk_changelogs,
    embed_changelogs,
    issue_changelog,
)
from okr_sync.sandbox.jira.data import STATUSES, JiraDataset, generate_dataset
from okr_sync.sandbox.jira.faults import (
    FaultDecision,
    FaultInjector,
    RequestLog,
    RequestRecord,
)
from okr_sync.sandbox.jira.jql import JqlError
from okr_sync.sandbox.jira.jql_eval import JqlContext
from okr_sync.sandbox.jira.render import (
    FieldSelection,
    FieldSetup,
    IssueRenderer,
    format_jira_datetime,
)
from okr_sync.sandbox.jira.search import (
    ApiError,
    SearchRequest,
    SearchService,
    dc_body,
    error_body,
    param_int,
    parse_queries,
    search_jql_body,
)
from okr_sync.sandbox.server import LoopbackServer

__all__ = ["LEGACY_SEARCH_GONE", "JiraSandbox"]

Deployment = Literal["cloud", "dc"]
LEGACY_SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NOT_AUTHENTICATED = (
    "You are not authenticated. Authentication required to perform this operation."
)
_JSON = "application/json;charset=UTF-8"
_URLS = Map([
    Rule("/rest/api/<ver>/serverInfo", endpoint="server_info", methods=["GET"]),
    Rule("/rest/api/<ver>/myself", endpoint="myself", methods=["GET"]),
    Rule("/rest/api/<ver>/field", endpoint="field", methods=["GET"]),
    Rule("/rest/api/<ver>/project", endpoint="projects", methods=["GET"]),
    Rule("/rest/api/<ver>/project/<ref>", endpoint="project", methods=["GET"]),
    Rule("/rest/api/<ver>/jql/parse", endpoint="jql_parse", methods=["POST"]),
    Rule("/rest/api/<ver>/issue/<ref>", endpoint="issue", methods=["GET"]),
    Rule("/rest/api/<ver>/issue/<ref>/changelog", endpoint="changelog", methods=["GET"]),
    Rule("/rest/api/<ver>/changelog/bulkfetch", endpoint="bulkfetch", methods=["POST"]),
    Rule("/rest/api/<ver>/status", endpoint="statuses", methods=["GET"]),
    Rule("/rest/api/<ver>/search/jql", endpoint="search_jql", methods=["GET", "POST"]),
    Rule("/rest/api/<ver>/search/approximate-count", endpoint="count", methods=["POST"]),
    Rule("/rest/api/<ver>/search", endpoint="search", methods=["GET", "POST"]),
], strict_slashes=False)
_Result = tuple[int, Any]


class JiraSandbox:
    """A Jira Cloud (or Data Center, ``deployment="dc"``) over a :class:`JiraDataset`.

    Cloud accepts ``Authorization: Basic base64(email:api_token)``; Data Center accepts
    ``Authorization: Bearer <pat>``. Everything else gets 401.
    """

    def __init__(
        self,
        dataset: JiraDataset | None = None,
        *,
        deployment: Deployment = "cloud",
        email: str = "okr-bot@example.com",
        api_token: str = "sandbox-api-token",  # noqa: S107 - fixed loopback test credential
        pat: str = "sandbox-pat",
        user_timezone: str = "America/New_York",
        fields: FieldSetup | None = None,
        dc_max_results: int = 1000,
        status_category_names: Mapping[str, str] | None = None,
        page_token_ttl: timedelta = timedelta(days=7),
    ) -> None:
        if deployment not in ("cloud", "dc"):
            raise ValueError("deployment is 'cloud' or 'dc'")
        self.dataset = dataset if dataset is not None else generate_dataset(seed=1, issues=500)
        self.deployment: Deployment = deployment
        self.email = email
        self._api_token = api_token
        self._pat = pat
        self.user_timezone = user_timezone
        self.date_skew = timedelta(0)  #: a reverse proxy's Date, off Jira's (dataset) clock
        self.fields = fields or (FieldSetup() if deployment == "cloud"
                                 else FieldSetup.data_center())
        self.dc_max_results = dc_max_results
        self.status_category_names = dict(status_category_names or {})
        #: Set to 404 or 403 to answer ``changelog/bulkfetch`` so (a site without it, or
        #: an app not allowed it): the connector then reads each issue's changelog.
        self.bulk_changelog_status: int | None = None
        self.faults = FaultInjector()
        self.log = RequestLog()
        self._searches = SearchService(page_token_ttl)
        self._server: LoopbackServer | None = None
        self._request_ids = iter(range(1, 1 << 62))
        self._ids_lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    @property
    def cloud(self) -> bool:
        return self.deployment == "cloud"

    @property
    def basic_auth(self) -> tuple[str, str]:
        """Credentials for ``requests``' ``auth=`` / the jira client's ``basic_auth=``."""
        return (self.email, self._api_token)

    @property
    def pat(self) -> str:
        return self._pat

    def auth_headers(self) -> dict[str, str]:
        if self.cloud:
            raw = f"{self.email}:{self._api_token}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {"Authorization": f"Bearer {self._pat}"}

    def expire_page_tokens(self) -> None:
        """Make every nextPageToken handed out so far invalid (as after 7 days)."""
        self._searches.expire_tokens()

    def __repr__(self) -> str:
        return f"JiraSandbox(deployment={self.deployment!r}, issues={len(self.dataset)})"

    # ------------------------------------------------------------------ serving
    def start(self) -> JiraSandbox:
        if self._server is None:
            self._server = LoopbackServer(self).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.url

    def __enter__(self) -> JiraSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    # ---------------------------------------------------------------- dispatch
    def _respond(self, request: Request) -> Response:
        body = _parse_body(request)
        auth_kind, authenticated = self._authenticate(request)
        decision = self.faults.decide(request.path)
        if decision.latency:
            time.sleep(decision.latency)
        if decision.reset:
            _drop_connection(request)
            self.log.append(RequestRecord(
                method=request.method, path=request.path,
                params=request.args.to_dict(flat=False), body=body, status=0, fault="reset",
                auth=auth_kind))
            return Response(b"", status=200)
        status: int
        payload: Any
        headers: dict[str, str] = {}
        if decision.status is not None:
            status, headers = decision.status, dict(decision.headers)
            payload = error_body("Rate limit exceeded.") if status == 429 else None
            if decision.kind == "revoked":
                payload = error_body(NOT_AUTHENTICATED)
        elif not authenticated and not (auth_kind is None and _anonymous(request.path)):
            status, payload = 401, error_body(NOT_AUTHENTICATED)
            headers["WWW-Authenticate"] = (
                'Basic realm="protected-area"' if self.cloud else 'Bearer realm="jira"')
        else:
            status, payload = self._dispatch(request, body)
            if decision.rewrites:
                # Whatever the dataset would answer (even a refusal of a made-up page
                # token), the rewritten answer is what this Jira says.
                for transform in decision.rewrites:
                    payload = transform(payload)
                status = 200
        response = self._build(status, payload, headers, malformed=decision.malformed,
                               drip=decision.drip, garbage=decision.garbage)
        with self._ids_lock:
            response.headers["X-AREQUESTID"] = str(next(self._request_ids))
        response.date = self.dataset.now() + self.date_skew  # the dataset's clock, not the host's
        self.log.append(RequestRecord(
            method=request.method, path=request.path, params=request.args.to_dict(flat=False),
            body=body, status=status, fault=decision.kind or _fault_name(decision),
            auth=auth_kind, retry_after=decision.retry_after))
        return response

    def _build(
        self, status: int, payload: Any, headers: dict[str, str], *, malformed: bool,
        drip: float = 0.0, garbage: bool = False,
    ) -> Response:
        if payload is None and status >= 500:
            html = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
            return Response(html, status=status, headers=headers, content_type="text/html")
        if payload is None:
            return Response(b"", status=status, headers=headers)
        data = json.dumps(payload, separators=(",", ":")).encode()
        if malformed:
            data = data[: max(1, len(data) // 2)]
        if garbage:
            data = b"<html><body>upstream connect error</body></html>"
        if drip:
            headers = {**headers, "Content-Length": str(len(data))}
            return Response(_dripping(data, drip), status=status, headers=headers,
                            content_type=_JSON, direct_passthrough=True)
        return Response(data, status=status, headers=headers, content_type=_JSON)

    def _authenticate(self, request: Request) -> tuple[str | None, bool]:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                email, _, token = base64.b64decode(credential).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "basic", False
            ok = self.cloud and email.lower() == self.email.lower() and token == self._api_token
            return "basic", ok
        if scheme.lower() == "bearer":
            return "bearer", (not self.cloud) and credential == self._pat
        return None, False

    def _dispatch(self, request: Request, body: Any) -> _Result:
        adapter = _URLS.bind_to_environ(request.environ)
        try:
            endpoint, matched = adapter.match()
        except MethodNotAllowed:
            return 405, None
        except HTTPException:
            return self._not_found(request)
        args = dict(matched)
        version = args.pop("ver")
        if version not in ("2", "3", "latest") or (not self.cloud and version == "3"):
            return self._not_found(request)
        if not self.cloud and endpoint in ("search_jql", "count", "jql_parse", "bulkfetch",
                                           "changelog"):
            return self._not_found(request)
        handler: Callable[..., _Result] = getattr(self, f"_{endpoint}")
        try:
            return handler(request, body, version, **args)
        except JqlError as exc:
            return 400, error_body(*exc.messages)
        except ApiError as exc:
            return exc.status, exc.body

    def _not_found(self, request: Request) -> _Result:
        return 404, {"message": f"null for uri: {request.base_url}", "status-code": 404}

    def _ctx(self) -> JqlContext:
        return JqlContext(self.dataset, ZoneInfo(self.user_timezone), self.dataset.now(),
                          self.fields.custom_clauses(), parent_includes_epics=self.cloud,
                          refuse_unknown_ids=True)

    def _renderer(self, request: Request, version: str) -> IssueRenderer:
        return IssueRenderer(self.dataset, request.host_url.rstrip("/"),
                             "2" if version == "latest" else version,
                             ZoneInfo(self.user_timezone), self.fields, self.cloud,
                             self.status_category_names)

    # ---------------------------------------------------------------- endpoints
    def _server_info(self, request: Request, body: Any, version: str) -> _Result:
        base = request.host_url.rstrip("/")
        now = format_jira_datetime(datetime.now(UTC), ZoneInfo("UTC"))
        if self.cloud:
            info: dict[str, Any] = {
                "baseUrl": base, "displayUrl": base, "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud",
                "buildNumber": 100290, "buildDate": "2025-12-01T00:00:00.000+0000",
                "serverTime": now, "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
                "serverTitle": "Jira", "serverTimeZone": "Etc/UTC"}
        else:
            info = {
                "baseUrl": base, "version": "9.12.15", "versionNumbers": [9, 12, 15],
                "deploymentType": "Server", "buildNumber": 9120015,
                "buildDate": "2024-10-01T00:00:00.000+0000", "serverTime": now,
                "scmInfo": "d2b8ed6b1e8f2b0e1c3f0a9c2b7e4d5f6a7b8c9d",
                "serverTitle": "Jira Data Center Sandbox"}
        return 200, info

    def _myself(self, request: Request, body: Any, version: str) -> _Result:
        base = request.host_url.rstrip("/")
        if self.cloud:
            account = "5b10ac8d82e05b22cc7d4ef5"
            return 200, {
                "self": f"{base}/rest/api/{version}/user?accountId={account}",
                "accountId": account, "accountType": "atlassian", "emailAddress": self.email,
                "displayName": "OKR Sync Bot", "active": True, "timeZone": self.user_timezone,
                "locale": "en_US"}
        return 200, {
            "self": f"{base}/rest/api/2/user?username=okr-bot", "key": "JIRAUSER10000",
            "name": "okr-bot", "emailAddress": self.email, "displayName": "OKR Sync Bot",
            "active": True, "deleted": False, "timeZone": self.user_timezone,
            "locale": "en_US"}

    def _field(self, request: Request, body: Any, version: str) -> _Result:
        return 200, self.fields.catalog()

    def _projects(self, request: Request, body: Any, version: str) -> _Result:
        base = request.host_url.rstrip("/")
        return 200, [
            {"self": f"{base}/rest/api/{version}/project/{p.id}", "id": str(p.id),
             "key": p.key, "name": p.name, "projectTypeKey": "software", "simplified": False}
            for p in self.dataset.projects.values()]

    def _project(self, request: Request, body: Any, version: str, ref: str) -> _Result:
        status, listed = self._projects(request, body, version)
        found = next((p for p in listed if ref in (p["id"], p["key"])), None)
        if found is None:
            # Jira says the same for a project that exists but this user may not browse.
            return 404, error_body(f"No project could be found with key '{ref}'.")
        return status, found

    def _jql_parse(self, request: Request, body: Any, version: str) -> _Result:
        return 200, parse_queries(body, request.args.get("validation"), self._ctx())

    def _issue(self, request: Request, body: Any, version: str, ref: str) -> _Result:
        with self.dataset.lock:
            issue_id = int(ref) if ref.isdigit() else self.dataset.resolve_key(ref)
            record = self.dataset.issues.get(issue_id) if issue_id is not None else None
            if record is None:
                return 404, error_body(
                    "Issue does not exist or you do not have permission to see it.")
            selection = FieldSelection.parse(request.args.getlist("fields"), default="*all")
            renderer = self._renderer(request, version)
            doc = renderer.issue(record, selection)
        if "changelog" in request.args.get("expand", "").split(","):
            embed_changelogs({"issues": [doc]}, self.dataset, renderer, cap=None)
        return 200, doc

    def _changelog(self, request: Request, body: Any, version: str, ref: str) -> _Result:
        return issue_changelog(self.dataset, self._renderer(request, version), ref,
                               request.args.get("startAt"), request.args.get("maxResults"),
                               request.base_url)

    def _bulkfetch(self, request: Request, body: Any, version: str) -> _Result:
        if self.bulk_changelog_status is not None:
            return self.bulk_changelog_status, error_body(
                "You do not have permission to perform this operation."
                if self.bulk_changelog_status == 403 else "Not found.")
        return 200, bulk_changelogs(self.dataset, self._renderer(request, version), body)

    def _statuses(self, request: Request, body: Any, version: str) -> _Result:
        renderer = self._renderer(request, version)
        return 200, [renderer.status(s.name) for s in STATUSES]

    def _search_jql(self, request: Request, body: Any, version: str) -> _Result:
        if request.method == "POST":
            payload = search_jql_body(body)
            req = SearchRequest(
                jql=payload.get("jql") or "", fields=payload.get("fields") or [],
                max_results=payload.get("maxResults"),
                next_page_token=payload.get("nextPageToken"),
                expand=payload.get("expand") or "",
                reconcile=len(payload.get("reconcileIssues") or []),
                properties=len(payload.get("properties") or []))
        else:
            args = request.args
            req = SearchRequest(
                jql=args.get("jql", ""), fields=args.getlist("fields"),
                max_results=param_int(args.get("maxResults"), "maxResults", 50),
                next_page_token=args.get("nextPageToken"), expand=args.get("expand", ""),
                reconcile=len(_split_params(args.getlist("reconcileIssues"))),
                properties=len(_split_params(args.getlist("properties"))))
        renderer = self._renderer(request, version)
        out = self._searches.search_jql(req, self._ctx(), renderer)
        if "changelog" in req.expand.split(","):
            embed_changelogs(out, self.dataset, renderer, cap=CLOUD_SEARCH_CAP)
        return 200, out

    def _count(self, request: Request, body: Any, version: str) -> _Result:
        return 200, self._searches.approximate_count(body, self._ctx())

    def _search(self, request: Request, body: Any, version: str) -> _Result:
        if self.cloud:
            return 410, error_body(LEGACY_SEARCH_GONE)
        if request.method == "POST":
            payload = dc_body(body)
            expand = payload.get("expand") or ""
            req = SearchRequest(
                jql=payload.get("jql") or "", fields=payload.get("fields") or [],
                max_results=payload.get("maxResults"), start_at=payload.get("startAt") or 0,
                expand=",".join(expand) if isinstance(expand, list) else expand)
        else:
            args = request.args
            req = SearchRequest(
                jql=args.get("jql", ""), fields=args.getlist("fields"),
                max_results=param_int(args.get("maxResults"), "maxResults", 50),
                start_at=param_int(args.get("startAt"), "startAt", 0),
                expand=args.get("expand", ""))
        renderer = self._renderer(request, version)
        out = self._searches.search_offset(req, self._ctx(), renderer, self.dc_max_results)
        if "changelog" in req.expand.split(","):
            embed_changelogs(out, self.dataset, renderer, cap=None)
        return 200, out


def _drop_connection(request: Request) -> None:
    """Close the client's connection with a reset (linger 0), before any answer; the
    server's later write to it fails as a dropped connection, which it ignores."""
    connection = request.environ.get("werkzeug.socket")
    if not isinstance(connection, socket.socket):
        raise RuntimeError("a connection reset needs the werkzeug development server")
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.shutdown(socket.SHUT_RDWR)


def _fault_name(decision: FaultDecision) -> str | None:
    if decision.malformed:
        return "malformed"
    if decision.garbage:
        return "garbage"
    if decision.drip:
        return "drip"
    return "rewrite" if decision.rewrites else None


def _dripping(data: bytes, seconds_per_byte: float) -> Iterator[bytes]:
    for index in range(len(data)):
        time.sleep(seconds_per_byte)
        yield data[index : index + 1]


def _split_params(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def _anonymous(path: str) -> bool:
    # serverInfo "can be accessed anonymously"; wrong credentials still get 401 there.
    return path.rstrip("/").endswith("/serverInfo")


def _parse_body(request: Request) -> Any:
    if request.method not in ("POST", "PUT"):
        return None
    raw = request.get_data(as_text=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
