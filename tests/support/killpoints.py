"""Run the ``okr-sync`` CLI and SIGKILL it at a named point of a pass (crash tests).

    python tests/support/killpoints.py POINT N MODE run --output json

with ``MODE`` ``kill`` kills the process (``SIGKILL``, from inside: no handler, no
``finally``, no flush) the ``N``-th time it reaches ``POINT``; with ``MODE`` a directory it
pauses there instead: it creates ``MODE/reached`` and waits (bounded) until
``MODE/release`` exists, so a test can kill it from outside or let it go on. A process
that never reaches the point exits as the CLI would.

The points wrap real functions of the pass at the seams where a crash leaves something
half-done, so the tests can aim at each seam by name and seed, instead of hoping that a
timer lands there:

- ``jira.page``: a Jira search page was read (nothing of the pass committed yet);
- ``store.before_commit`` / ``store.after_commit``: any store transaction's body ran and
  its commit is next / has happened (the pass's commit, a delivery's settlement);
- ``outbox.claimed``: delivery claimed rows as ``sending`` (committed), nothing sent;
- ``slack.before_post`` / ``slack.after_post``: a ``chat.postMessage`` is about to go out /
  went out and Slack answered, but its message ref is not committed yet;
- ``slack.after_update``: the standing message was edited, the outbox row not settled.

Only the test suite uses this file; it imports okr_sync and nothing of the tests.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The longest a paused process waits for its release before it goes on anyway.
PAUSE_LIMIT_S = 300.0

POINTS = (
    "jira.page",
    "store.before_commit",
    "store.after_commit",
    "outbox.claimed",
    "slack.before_post",
    "slack.after_post",
    "slack.after_update",
)


class KillSwitch:
    """Counts the hits of one point and kills (or pauses) this process on the ``n``-th."""

    def __init__(self, point: str, n: int, pause_dir: Path | None = None) -> None:
        if point not in POINTS:
            raise SystemExit(f"unknown kill point {point!r}; known: {', '.join(POINTS)}")
        self.point, self.n, self.pause_dir = point, n, pause_dir
        self._hits = 0
        self._lock = threading.Lock()

    def hit(self, point: str) -> None:
        if point != self.point:
            return
        with self._lock:
            self._hits += 1
            due = self._hits == self.n
        if not due:
            return
        if self.pause_dir is None:
            os.kill(os.getpid(), signal.SIGKILL)
            return
        (self.pause_dir / "reached").write_text(str(os.getpid()))
        deadline = time.monotonic() + PAUSE_LIMIT_S
        while not (self.pause_dir / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _after(owner: type, name: str, point: str, switch: KillSwitch) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        switch.hit(point)
        return result

    setattr(owner, name, wrapped)


def _before(owner: type, name: str, point: str, switch: KillSwitch) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        switch.hit(point)
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


def install(switch: KillSwitch) -> None:
    from okr_sync.connectors.jira.client import JiraClient
    from okr_sync.connectors.slack.client import SlackClient
    from okr_sync.sync.store.store import Store

    pages = JiraClient._pages

    def paged(self: JiraClient, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for page in pages(self, *args, **kwargs):
            switch.hit("jira.page")
            yield page

    JiraClient._pages = paged  # type: ignore[method-assign]

    transaction = Store.transaction

    @contextmanager
    def committed(self: Store, **kwargs: Any) -> Iterator[Any]:
        with transaction(self, **kwargs) as tx:
            yield tx
            switch.hit("store.before_commit")
        switch.hit("store.after_commit")

    Store.transaction = committed  # type: ignore[method-assign]

    claim = Store.claim_deliverable

    def claimed(self: Store, *args: Any, **kwargs: Any) -> Any:
        rows = claim(self, *args, **kwargs)
        if rows:
            switch.hit("outbox.claimed")
        return rows

    Store.claim_deliverable = claimed  # type: ignore[method-assign]
    # Slack's one-message-a-second pacing is tested on its own; here it would only make
    # each of the many killed passes a second or two longer.
    slack_init = SlackClient.__init__

    def unpaced(self: SlackClient, *args: Any, **kwargs: Any) -> None:
        slack_init(self, *args, **kwargs)
        self.pacer.interval = 0.0

    SlackClient.__init__ = unpaced  # type: ignore[method-assign]
    _before(SlackClient, "post_message", "slack.before_post", switch)
    _after(SlackClient, "post_message", "slack.after_post", switch)
    _after(SlackClient, "update_message", "slack.after_update", switch)


def command(point: str, n: int, *cli_args: str, pause_dir: Path | None = None) -> list[str]:
    """The argv of a CLI process killed (or paused in ``pause_dir``) at the ``n``-th ``point``.

    The file is run by path rather than as a script, so that ``tests/support`` (whose
    ``html.py`` would shadow the standard library's) does not land on ``sys.path``.
    """
    runner = f"import runpy; runpy.run_path({str(__file__)!r}, run_name='__main__')"
    mode = "kill" if pause_dir is None else str(pause_dir)
    return [sys.executable, "-c", runner, point, str(n), mode, *cli_args]


def main(argv: list[str]) -> None:
    point, n, mode, *cli_args = argv
    install(KillSwitch(point, int(n), None if mode == "kill" else Path(mode)))
    from okr_sync.cli.main import main as cli_main

    cli_main(cli_args)


if __name__ == "__main__":
    main(sys.argv[1:])
