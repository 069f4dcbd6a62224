"""Handing a finished pass's memory back before the next pass of a long-running ``serve``.

A pass builds and drops many short-lived objects (pulled issues, measure states,
explanations), some of them in reference cycles that otherwise wait for a later
collection and add to the next pass's peak. Measured in-process at 5,000 issues, nothing
of a pass outlives it (traced memory and pymalloc arenas stay level from pass to pass),
so after each pass the scheduler collects those cycles at once and asks glibc to return
its free heap pages (``malloc_trim``), before it logs "pass finished". C libraries
without ``malloc_trim`` (musl), and Windows, get only the collection.

The rest of ``serve``'s growth came from threads, not from the pass's objects: delivery
started new worker threads every pass, each taking a glibc malloc arena and leaving
memory pinned in it (5,000 issues: the arena heaps grew from 0.1 to 5.4 MB over 40
webhook passes, RSS from 118 to 123 MB over 100). The deliverer now keeps one pool of
workers for its life (:class:`~okr_sync.sync.delivery.outbox.OutboxDeliverer`): the
arena heaps stay at 2.2-2.4 MB and RSS at 113 MB over 100 passes. Passes themselves
all run on the scheduler's one thread (one per plan with ``--plans``) and the HTTP
server's workers are a fixed set, so the number of arenas stays bounded without
capping it (``M_ARENA_MAX``).

With ``--plans`` the collection is skipped while another plan's pass has the collector
paused: it would walk all that pass's data, which the pause is there to spare; those
cycles are freed by the next collection instead.

What start-up and the first pass leave alive (modules, the plan, clients, the store's
engine and caches) stays for the process's life and is frozen once, out of the
collector's reach (walking it again was a large part of a one-issue pass's CPU). Once per
process, not per scheduler: ``--plans`` starts and restarts a scheduler per plan, and a
stopped one's runtime, engine and clients would be frozen, and kept, on each reload. And
only right after a collection that ran: a skipped one leaves cycles a freeze would keep.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable

from okr_sync.sync.paused_gc import collector_paused

_trim: Callable[[int], int] | None = None
_looked_up = False
_freeze_lock = threading.Lock()
#: Whether this process has frozen its long-lived objects (see the module's doc).
_frozen = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform == "win32":
            return None  # ctypes.CDLL(None) raises there: no process-wide symbol table
        try:
            import ctypes

            # The process's own symbols include the C library's.
            function = getattr(ctypes.CDLL(None), "malloc_trim", None)
        except (OSError, AttributeError):
            function = None
        if function is not None:
            function.argtypes = [ctypes.c_size_t]
            function.restype = ctypes.c_int
            _trim = function
    return _trim


def release_memory(*, freeze: bool = False) -> int:
    """Collect unreachable cycles (unless a pass has the collector paused) and give free
    heap pages back; the objects collected. With ``freeze``, what survives the collection
    is frozen, the first time one runs in this process."""
    global _frozen
    collected = 0
    if not collector_paused():
        collected = gc.collect()
        if freeze and not _frozen:
            with _freeze_lock:
                # Checked again: another plan may have paused the collector meanwhile and
                # be making garbage that the collection above did not see.
                if not _frozen and not collector_paused():
                    gc.freeze()
                    _frozen = True
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    return collected
