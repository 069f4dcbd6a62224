"""What every endpoint of `serve` does the same way: match a route, read a bounded body,
answer JSON.

Kept in one place so the webhook, Slack, Teams and many-plans endpoints cannot drift
apart on the rules that protect the service (a body's size limit, a client that leaves
mid-body, the status of an unknown path).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import (
    ClientDisconnected,
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response


class BodyTooLargeError(Exception):
    """The request's body is longer than the endpoint accepts."""


class BodyIncompleteError(Exception):
    """The client left (or stalled past the read timeout) before sending its whole body."""


def json_response(status: int, body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def read_body(request: Request, max_bytes: int, *, keep: bool = False) -> bytes:
    """The request's whole body, at most ``max_bytes`` long.

    ``keep`` caches it on the request for a handler that reads it again (a router that
    peeks at the body before handing the request on).
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLargeError
    # A chunked body has no length up front: read one byte past the limit to tell
    # "exactly the limit" from "more" (Werkzeug's limit silently truncates).
    request.max_content_length = max_bytes + 1
    try:
        body = request.get_data(cache=keep)
    except RequestEntityTooLarge as error:
        raise BodyTooLargeError from error
    except (ClientDisconnected, OSError) as error:
        raise BodyIncompleteError from error
    if len(body) > max_bytes:
        raise BodyTooLargeError
    return body


def match_route(routes: Map, request: Request) -> tuple[str, dict[str, Any]] | Response:
    """The endpoint and arguments the request's path names, or the answer to give."""
    try:
        endpoint, arguments = routes.bind_to_environ(request.environ).match()
    except NotFound:
        return json_response(404, {"error": "not found"})
    except MethodNotAllowed as error:
        response = json_response(405, {"error": "method not allowed"})
        response.headers["Allow"] = ", ".join(error.valid_methods or [])
        return response
    except HTTPException as error:
        return json_response(error.code or 400, {"error": error.name})
    return str(endpoint), dict(arguments)
