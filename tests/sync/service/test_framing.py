"""Where a request's head and chunked body end, found as bytes arrive in any pieces."""

from __future__ import annotations

import pytest

from okr_sync.sync.service.framing import MAX_CHUNK_LINE, ChunkScan, head_end, header_fields

HEAD = b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
BODY = b"5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"


def _end_when_arriving(data: bytes, piece: int) -> tuple[int | None, int]:
    """Feed ``data`` ``piece`` bytes at a time: (where the body ended, bytes fed then)."""
    buffer = bytearray(HEAD)
    scan = ChunkScan(len(HEAD))
    for at in range(0, len(data), piece):
        buffer += data[at:at + piece]
        end = scan.advance(buffer)
        if end is not None:
            return end, len(buffer)
    return None, len(buffer)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_chunk_scan_given_body_in_any_pieces_ends_exactly_after_its_last_chunk(
    piece: int,
) -> None:
    end, fed = _end_when_arriving(BODY + b"NEXT", piece)
    assert end == len(HEAD) + len(BODY)
    assert fed >= end  # found as soon as the final empty line arrived


def test_chunk_scan_given_incomplete_body_waits_and_counts_what_arrived() -> None:
    buffer = bytearray(HEAD + b"a\r\n12345")
    scan = ChunkScan(len(HEAD))
    assert scan.advance(buffer) is None
    assert scan.body_bytes == 5  # a body over the limit is noticed before it all arrives


@pytest.mark.parametrize("body", [b"zz\r\n", b"5\r\nhelloXX", b"1" * (MAX_CHUNK_LINE + 1)])
def test_chunk_scan_given_malformed_body_ends_it_there_for_the_worker_to_refuse(
    body: bytes,
) -> None:
    buffer = bytearray(HEAD + body)
    assert ChunkScan(len(HEAD)).advance(buffer) == len(buffer)


def test_head_end_given_head_arriving_byte_by_byte_finds_its_empty_line_once() -> None:
    request = b"GET /healthz HTTP/1.1\nHost: x\n\r\nbody"
    buffer, scanned, found = bytearray(), 0, None
    for byte in request:
        buffer.append(byte)
        found = head_end(buffer, scanned)
        if found is not None:
            break
        scanned = len(buffer)
    assert found == request.index(b"body")
    assert header_fields(bytes(buffer[:found])) == {"host": ["x"]}
