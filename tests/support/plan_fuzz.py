"""Byte-level mutations of the example plans, shared by the loader's and the CLI's fuzz tests."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from support.paths import EXAMPLES

ISSUE_LINE = re.compile(r"^[^:\n]+:\d+:\d+: \S+: [^\n]+$")
SEEDS = [path.read_bytes() for path in sorted(EXAMPLES.glob("*.yaml"))]
FRAGMENTS = [
    b"&a [*a]", b"!!python/object:os.system", b"!!python/object/apply:os.system ['id']",
    b"!custom x", b"9" * 5000, b"1e308", b"-1e999", b".nan", b".inf", b"[" * 200, b"{" * 200,
    b"*nope", b"&x", b"<<: *x", b"\nversion: 1\nversion: 2\n", b"\n---\n", b"\xe9\xff",
    b"\x00", b"\xfe\xff", b"2026-10-32", b"2026-02-30T25:61:00", b"9999-12-31", b"0_", b"._",
    b"0x_", b"!!int abc", b"!!float 0x1f", b"!!timestamp x", b"? [a]\n: b", b"'", b'"\\',
    b"\t", b": :", b"- - -", b"%YAML 1.1\n", b"|", b">-\n", b"0 0 30 2 *",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(FRAGMENTS))
        else:
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)
