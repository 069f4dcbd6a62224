"""The cyclic garbage collector in a process that runs one command and ends.

Such a process (``okr-sync run`` from cron, as the console script starts it) keeps what
its start-up made until it ends: the imported modules' classes and functions, the
settings, the plan, the store's engine, ~85k tracked objects on the 400-KR plan, and
next to no garbage (~500 objects in cycles). Yet the collector runs ~200 times while
start-up imports and builds all that (~50 ms of CPU), its full collections walk it all
again during the pass, and the interpreter's last collection walks it once more at exit,
after everything has been printed and committed (~80 ms). So a pass command pauses the
collector until its pass starts (:func:`started`), then freezes what exists
(:func:`gc.freeze` moves it to a generation no collection walks) and resumes it; any
command freezes what is alive when it ends (:func:`ending`).

Nothing else changes: an object freed by reference counting still is at once (files
closed, connections returned) and ``atexit`` handlers run as before; only the cycles
that were already garbage when frozen stay until the process ends. A command invoked
inside a longer-lived process (tests, a program embedding ``main(argv)``) leaves the
collector alone; ``serve`` freezes its own after its first pass
(:mod:`okr_sync.sync.service.memory`).
"""

from __future__ import annotations

import gc

#: The commands whose ``_pass`` (:mod:`okr_sync.cli.run`) calls :func:`started` once
#: connected: their start-up runs with the collector paused.
PASS_COMMANDS = frozenset({"run", "resync"})

#: Whether this process runs one command and then ends (see :func:`one_command_process`).
_one_command = False
#: Whether start-up paused the collector (and :func:`started` is to resume it).
_paused = False


def one_command_process(command: str | None) -> None:
    """This process runs ``command`` (the first word of its command line) and then ends."""
    global _one_command, _paused
    _one_command = True
    if command in PASS_COMMANDS and gc.isenabled():
        gc.disable()
        _paused = True


def started() -> None:
    """The pass command is connected (settings, plan, store and clients made): what exists
    now lives as long as the process, so no collection walks it again; the collector
    runs again for what the pass makes."""
    global _paused
    if _one_command:
        gc.freeze()
    if _paused:
        _paused = False
        gc.enable()


def ending() -> None:
    """The command is over and the process exits next: spare the interpreter's last
    collection the walk over everything still alive."""
    if _one_command:
        gc.freeze()
