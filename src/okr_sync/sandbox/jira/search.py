"""Search endpoints of the Jira sandbox: Cloud ``search/jql`` (token paging over a snapshot),
``search/approximate-count``, and Data Center ``search`` (offset paging, server cap)."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from okr_sync.sandbox.jira.jql import JqlError, parse_jql
from okr_sync.sandbox.jira.jql_eval import JqlContext, compile_query, search
from okr_sync.sandbox.jira.render import FieldSelection, IssueRenderer

__all__ = ["ApiError", "SearchService", "error_body"]

CLOUD_ID_ONLY_CAP = 5000
CLOUD_FIELDS_CAP = 100
MAX_ORDER_FIELDS = 7
_SNAPSHOT_LIMIT = 256
# Properties of SearchAndReconcileRequestBean / JQLCountRequestBean (additionalProperties false).
_SEARCH_JQL_BODY = {
    "jql": str, "nextPageToken": str, "maxResults": int, "fields": list, "expand": str,
    "properties": list, "fieldsByKeys": bool, "reconcileIssues": list,
}
_COUNT_BODY = {"jql": str}
_PARSE_VALIDATION = ("strict", "warn", "none")
_DC_SEARCH_BODY = {
    "jql": str, "startAt": int, "maxResults": int, "fields": list, "expand": (list, str),
    "validateQuery": (str, bool), "fieldsByKeys": bool, "properties": list,
}


def error_body(*messages: str) -> dict[str, Any]:
    return {"errorMessages": list(messages), "errors": {}}


class ApiError(Exception):
    """An HTTP error answer with Jira's ErrorCollection body."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__(status, messages)
        self.status = status
        self.body = error_body(*messages)


def validate_body(body: Any, schema: dict[str, Any], bean: str) -> dict[str, Any]:
    """Refuse what Jackson would: not an object, unknown properties, wrong types."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    for name, value in body.items():
        if name not in schema:
            raise ApiError(400, f'Unrecognized field "{name}" (class {bean}), '
                                "not marked as ignorable")
        wanted = schema[name]
        if value is None:
            continue
        bad_bool = isinstance(value, bool) and wanted is int
        if bad_bool or not isinstance(value, wanted):
            raise ApiError(400, f"Can not deserialize value of field \"{name}\" ({bean}).")
        if isinstance(value, list) and name != "reconcileIssues" and not all(
                isinstance(v, str) for v in value):
            raise ApiError(400, f"Can not deserialize value of field \"{name}\" ({bean}).")
    return body


def param_int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"The '{name}' parameter must be an integer.") from None


@dataclass(frozen=True)
class _Snapshot:
    jql: str
    ids: tuple[int, ...]
    created: datetime
    sid: str


@dataclass
class SearchRequest:
    jql: str
    fields: list[str]
    max_results: int | None = None
    next_page_token: str | None = None
    start_at: int = 0
    expand: str = ""
    reconcile: int = 0
    properties: int = 0


class SearchService:
    """Runs searches for one sandbox; keeps result snapshots behind opaque page tokens."""

    def __init__(self, token_ttl: timedelta = timedelta(days=7)) -> None:
        self.token_ttl = token_ttl
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()

    def expire_tokens(self) -> None:
        with self._lock:
            self._snapshots.clear()

    # ----------------------------------------------------------- Cloud /search/jql
    def search_jql(
        self, req: SearchRequest, ctx: JqlContext, renderer: IssueRenderer,
    ) -> dict[str, Any]:
        max_results = 50 if req.max_results is None else req.max_results
        if not 1 <= max_results <= CLOUD_ID_ONLY_CAP:
            raise ApiError(400, "The 'maxResults' parameter must be between 1 and 5000.")
        if req.reconcile > 50:
            raise ApiError(400, "The 'reconcileIssues' parameter accepts at most 50 issue IDs.")
        if req.properties > 5:
            raise ApiError(400, "The 'properties' parameter accepts at most 5 properties.")
        selection = FieldSelection.parse(req.fields, default="id")
        if req.next_page_token:
            snapshot, offset = self._resume(req.next_page_token, req.jql, ctx.now)
        else:
            found = search(req.jql, ctx, require_bounded=True, max_order_fields=MAX_ORDER_FIELDS)
            ids = tuple(i.id for i in found)
            snapshot, offset = _Snapshot(req.jql, ids, ctx.now, secrets.token_hex(8)), 0
        cap = CLOUD_ID_ONLY_CAP if selection.id_or_key_only else CLOUD_FIELDS_CAP
        end = offset + min(max_results, cap)
        with ctx.dataset.lock:
            issues = [renderer.issue(ctx.dataset.issues[i], selection)
                      for i in snapshot.ids[offset:end] if i in ctx.dataset.issues]
        out: dict[str, Any] = {"issues": issues}
        if end < len(snapshot.ids):
            out["nextPageToken"] = self._token(snapshot, end)
            out["isLast"] = False
        else:
            out["isLast"] = True
        self._expand(out, req.expand, selection, renderer)
        return out

    def _token(self, snapshot: _Snapshot, offset: int) -> str:
        with self._lock:
            self._snapshots[snapshot.sid] = snapshot
            self._snapshots.move_to_end(snapshot.sid)
            while len(self._snapshots) > _SNAPSHOT_LIMIT:
                self._snapshots.popitem(last=False)
        raw = json.dumps({"s": snapshot.sid, "o": offset}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _resume(self, token: str, jql: str, now: datetime) -> tuple[_Snapshot, int]:
        invalid = ApiError(400, "The provided next page token is invalid or expired.")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            decoded = json.loads(raw)
            sid, offset = str(decoded["s"]), int(decoded["o"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise invalid from None
        with self._lock:
            snapshot = self._snapshots.get(sid)
        if snapshot is None or now - snapshot.created > self.token_ttl or offset < 0:
            raise invalid
        if snapshot.jql != jql:
            raise ApiError(400, "The next page token does not belong to this query.")
        return snapshot, offset

    @staticmethod
    def _expand(
        out: dict[str, Any], expand: str, selection: FieldSelection, renderer: IssueRenderer,
    ) -> None:
        wanted = {e.strip() for e in expand.split(",") if e.strip()}
        ids = selection.field_ids(renderer.fields.renderable())
        if "names" in wanted:
            out["names"] = renderer.names(ids)
        if "schema" in wanted:
            catalog = {f["id"]: f.get("schema") for f in renderer.fields.catalog()}
            out["schema"] = {fid: catalog[fid] for fid in ids if catalog.get(fid)}

    # ------------------------------------------------------- approximate-count
    def approximate_count(self, body: Any, ctx: JqlContext) -> dict[str, Any]:
        payload = validate_body(body, _COUNT_BODY, "JQLCountRequestBean")
        found = search(payload.get("jql") or "", ctx, require_bounded=True)
        return {"count": len(found)}

    # ------------------------------------------------------ Data Center /search
    def search_offset(
        self, req: SearchRequest, ctx: JqlContext, renderer: IssueRenderer, server_cap: int,
    ) -> dict[str, Any]:
        requested = 50 if req.max_results is None or req.max_results < 0 else req.max_results
        page_size = min(requested, server_cap)
        if req.start_at < 0:
            raise ApiError(400, "The 'startAt' parameter must not be negative.")
        selection = FieldSelection.parse(req.fields, default="*navigable")
        # Data Center re-runs the query per page: offsets shift when data changes meanwhile.
        found = search(req.jql, ctx, require_bounded=False)
        page = found[req.start_at : req.start_at + page_size]
        with ctx.dataset.lock:
            issues = [renderer.issue(i, selection) for i in page]
        out: dict[str, Any] = {"expand": "schema,names", "startAt": req.start_at,
                               "maxResults": page_size, "total": len(found), "issues": issues}
        self._expand(out, req.expand, selection, renderer)
        return out


def dc_body(body: Any) -> dict[str, Any]:
    return validate_body(body, _DC_SEARCH_BODY, "SearchRequestBean")


def search_jql_body(body: Any) -> dict[str, Any]:
    return validate_body(body, _SEARCH_JQL_BODY, "SearchAndReconcileRequestBean")



def parse_queries(body: Any, validation: str | None, ctx: JqlContext) -> dict[str, Any]:
    """``POST jql/parse``: each query's syntax errors, and with ``strict`` or ``warn`` its
    validation errors too (unknown fields and values). The syntax tree Jira adds for a
    valid query (``structure``, optional in the schema) is left out."""
    if validation not in _PARSE_VALIDATION:
        raise ApiError(400, "The 'validation' parameter must be one of strict, warn, none.")
    if not isinstance(body, dict) or set(body) != {"queries"}:
        raise ApiError(400, "The request body must have exactly the property 'queries'.")
    queries = body["queries"]
    if not isinstance(queries, list) or not queries or not all(
            isinstance(q, str) and q for q in queries):
        raise ApiError(400, "'queries' must be a non-empty list of non-empty strings.")
    answers = []
    for text in queries:
        errors: list[str] = []
        try:
            query = parse_jql(text)
            if validation != "none":
                compile_query(query, ctx)
        except JqlError as error:
            errors = error.messages
        answers.append({"query": text, "errors": errors} if errors else {"query": text})
    return {"queries": answers}
