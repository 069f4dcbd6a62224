"""Reading an HTTP/1.1 request without blocking: where its head and its body end.

Used by :mod:`okr_sync.sync.service.server`, whose accepting thread reads each whole
request before a worker sees it (see there), and which hands the worker a
:class:`PrereadConnection` to read it from memory.
"""

from __future__ import annotations

import io
import re
import socket
from dataclasses import dataclass
from typing import Any, cast

#: A request head longer than this goes to a worker, which refuses it (431/414).
MAX_HEAD_BYTES = 64 * 1024
#: Bytes read from a connection per wake-up.
RECV_BYTES = 64 * 1024
#: A chunk-size or trailer line longer than this is malformed (Werkzeug reads 100).
MAX_CHUNK_LINE = 1024
HEAD_END = re.compile(rb"\n\r?\n")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ChunkScan:
    """Where a chunked body ends, found incrementally (each chunk header looked at once)."""

    def __init__(self, start: int) -> None:
        self.position = start  # the next chunk-size line, or the next trailer line
        self.decoded = 0  # bytes of the chunks wholly arrived
        self.partial = 0  # bytes arrived of the chunk still arriving
        self.last_chunk_seen = False

    @property
    def body_bytes(self) -> int:
        return self.decoded + self.partial

    def advance(self, data: bytearray) -> int | None:
        """The offset just past the body once it is all in ``data``, else None.

        A malformed body "ends" where it turns malformed: the worker's decoder refuses it.
        """
        while True:
            newline = data.find(b"\n", self.position, self.position + MAX_CHUNK_LINE)
            if newline < 0:
                too_long = len(data) - self.position >= MAX_CHUNK_LINE
                return len(data) if too_long else None
            line = bytes(data[self.position:newline]).strip(b" \t\r")
            if self.last_chunk_seen:  # a trailer line, or the empty line ending the body
                self.position = newline + 1
                if not line:
                    return self.position
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(b" \t"), 16)
            except ValueError:
                return len(data)
            if size < 0:
                return len(data)
            if size == 0:
                self.last_chunk_seen = True
                self.position = newline + 1
                continue
            end = newline + 1 + size
            if len(data) < end + 2:
                # Counted as it arrives, so a body over the limit is noticed early.
                self.partial = min(size, len(data) - newline - 1)
                if len(data) == end + 1 and data[end:end + 1] == b"\n":
                    pass  # a bare LF terminator: complete, handled below
                else:
                    return None
            self.partial = 0
            self.decoded += size
            if data[end:end + 1] == b"\n":
                self.position = end + 1
            elif data[end:end + 2] == b"\r\n":
                self.position = end + 2
            else:
                return len(data)


def head_complete(data: bytes | bytearray) -> bool:
    """Whether ``data`` (the start of a request) holds its whole head, or enough to refuse it."""
    return head_end(data) is not None


def head_end(data: bytes | bytearray, start: int = 0) -> int | None:
    """Where the head ends (just past its empty line); ``start``: where to look from (a
    head dripped byte by byte is searched once, not once per byte from its beginning)."""
    found = HEAD_END.search(data, max(0, start - 2), MAX_HEAD_BYTES)
    if found is not None:
        return found.end()
    return MAX_HEAD_BYTES if len(data) >= MAX_HEAD_BYTES else None


def header_fields(head: bytes) -> dict[str, list[str]]:
    """The head's header fields by lower-case name (the request line skipped)."""
    fields: dict[str, list[str]] = {}
    for raw in head.split(b"\n")[1:]:
        name, colon, value = raw.decode("latin-1").partition(":")
        if colon:
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields


class PrereadConnection:
    """The socket as a worker's handler sees it: the request is read from memory,
    the answer written to the socket (without repeating a ``100 Continue`` already sent)."""

    def __init__(self, conn: socket.socket, request: bytes, continue_sent: bool) -> None:
        self._conn = conn
        self._request = request
        self._skip_continue = continue_sent

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode:
            return io.BytesIO(self._request)
        return cast(Any, self._conn).makefile(mode, *args, **kwargs)

    def sendall(self, data: bytes, *args: Any) -> None:
        # Both http.server and Werkzeug write one before the answer: the client has it.
        if self._skip_continue and bytes(data) == CONTINUE:
            return
        self._skip_continue = False
        self._conn.sendall(data, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


#: The probes' paths: ``/healthz``, ``/readyz`` and ``/readyz/<plan>`` (--plans).
_PROBE_PATH = re.compile(rb"^/(healthz|readyz(/[^/?#\s]+)?)/?(\?[^\s]*)?$")


def is_probe(request: bytes) -> bool:
    """Whether a request is a liveness or readiness probe (from its request line)."""
    parts = request.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split(b" ")
    return (len(parts) == 3 and parts[0] in (b"GET", b"HEAD")
            and _PROBE_PATH.match(parts[1]) is not None)


@dataclass(frozen=True)
class WholeRequest:
    """A request wholly read by the accepting thread, waiting for a worker."""

    conn: socket.socket
    address: Any
    request: bytes
    continue_sent: bool
