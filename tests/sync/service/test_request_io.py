"""The shared request rules of `serve`'s endpoints (sync/service/request_io.py)."""

from __future__ import annotations

import io

import pytest
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from okr_sync.sync.service.request_io import (
    BodyIncompleteError,
    BodyTooLargeError,
    match_route,
    read_body,
)


def _request(body: bytes, *, declared_length: bool = True) -> Request:
    environ = EnvironBuilder(method="POST", data=body).get_environ()
    if not declared_length:
        # A chunked body: no length up front, the limit is found by reading.
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
    return Request(environ)


class _Dropped(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        raise ConnectionResetError("client left")


def test_read_body_given_exactly_the_limit_returns_it() -> None:
    assert read_body(_request(b"x" * 10), 10) == b"x" * 10


@pytest.mark.parametrize("declared_length", [True, False])
def test_read_body_given_one_byte_over_the_limit_refuses_it(declared_length: bool) -> None:
    with pytest.raises(BodyTooLargeError):
        read_body(_request(b"x" * 11, declared_length=declared_length), 10)


def test_read_body_given_keep_lets_a_handler_read_it_again() -> None:
    request = _request(b'{"a": 1}')
    assert read_body(request, 100, keep=True) == b'{"a": 1}'
    assert request.get_data() == b'{"a": 1}'


def test_read_body_given_client_leaving_mid_body_says_incomplete() -> None:
    environ = EnvironBuilder(method="POST", data=b"x" * 5).get_environ()
    environ["wsgi.input"] = _Dropped()
    with pytest.raises(BodyIncompleteError):
        read_body(Request(environ), 100)


def test_match_route_given_unknown_path_or_wrong_method_answers_404_or_405() -> None:
    routes = Map([Rule("/hook/<name>", endpoint="hook", methods=["POST"])])
    assert match_route(routes, _post("/hook/a")) == ("hook", {"name": "a"})
    missing = match_route(routes, _post("/nowhere"))
    assert isinstance(missing, Response) and missing.status_code == 404
    wrong = match_route(routes, Request(EnvironBuilder("/hook/a", method="GET").get_environ()))
    assert isinstance(wrong, Response) and wrong.status_code == 405
    assert "POST" in wrong.headers["Allow"]


def _post(path: str) -> Request:
    return Request(EnvironBuilder(path, method="POST").get_environ())
