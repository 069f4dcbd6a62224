"""The cyclic garbage collector in a process that runs one command and ends.

Such a process (``okr-sync run`` from cron, as the console script starts it) keeps what
its start-up made until it ends: the imported modules' classes and functions, the
settings, the plan, the store's engine, ~85k tracked objects on the 400-KR plan. The
collector's full collections walk all of it again, once or twice during a pass, and the
interpreter's last collection walks it once more at exit, after everything has been
printed and committed: ~0.15 s of CPU of a no-change pass of ~0.9 s (50k issues).
Frozen (:func:`gc.freeze`, which only moves them to a generation no collection walks),
they are left out of those walks.

Nothing else changes: an object freed by reference counting still is at once (files
closed, connections returned) and ``atexit`` handlers run as before; only reference
cycles that were already garbage when frozen stay until the process ends. A command
invoked inside a longer-lived process (tests, a program embedding ``main(argv)``) leaves
the collector alone; ``serve`` freezes its own after its first pass
(:mod:`okr_sync.sync.service.memory`).
"""

from __future__ import annotations

import gc

#: Whether this process runs one command and then ends (see :func:`one_command_process`).
_one_command = False


def one_command_process() -> None:
    """This process runs the command on its command line and then ends."""
    global _one_command
    _one_command = True


def started() -> None:
    """The command is connected (settings, plan, store and clients made): what exists
    now lives as long as the process, so no collection walks it again."""
    if _one_command:
        gc.freeze()


def ending() -> None:
    """The command is over and the process exits next: spare the interpreter's last
    collection the walk over everything still alive."""
    if _one_command:
        gc.freeze()
