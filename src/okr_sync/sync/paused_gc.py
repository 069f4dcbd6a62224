"""The cyclic garbage collector paused while a pass builds or reads its bulk data.

Measuring decodes and builds hundreds of thousands of small tuples, lists and dicts
(every item of every touched measure), none of which form reference cycles. With the
collector running, each few hundred allocations trigger a collection, and the older
generations are walked again and again as the pass's data grows: most of the CPU of
decoding went there (4x the decoding itself at 20k issues, by ``process_time``). Paused,
the data is walked once by the next collection after the pass resumes it. Memory is
unaffected but for cyclic garbage made meanwhile, which that collection frees.

The collector is one per process and ``serve --plans`` runs each plan's passes on its
own thread: the blocks of all threads are counted, so the collector is off from the
first block entered until the last one left, and back on only if it was on before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
#: Blocks inside :func:`paused_gc` now, over every thread.
_inside = 0
#: Whether the collector was on when the first of them entered.
_resume = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector for the block (also as a decorator); a block inside
    another, on this thread or another, or with the collector already off, leaves it
    as the first block found it."""
    global _inside, _resume
    with _lock:
        if _inside == 0:
            _resume = gc.isenabled()
            gc.disable()
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _resume:
                gc.enable()


def collector_paused() -> bool:
    """Whether a block of some thread is inside :func:`paused_gc` now."""
    return _inside > 0
