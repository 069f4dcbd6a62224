"""The cyclic garbage collector paused while a pass builds or reads its bulk data.

Measuring decodes and builds hundreds of thousands of small tuples, lists and dicts
(every item of every touched measure), none of which form reference cycles. With the
collector running, each few hundred allocations trigger a collection, and the older
generations are walked again and again as the pass's data grows: most of the CPU of
decoding went there (4x the decoding itself at 20k issues, by ``process_time``). Paused,
the data is walked once by the next collection after the pass resumes it. Memory is
unaffected but for cyclic garbage made meanwhile, which that collection frees.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector for the block (also as a decorator); a block inside
    another, or with the collector already off, leaves it as it found it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
