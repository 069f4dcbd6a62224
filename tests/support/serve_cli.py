"""``okr-sync serve`` as the real console command in a subprocess, for end-to-end tests.

Its stderr (JSON log lines, as it is not a terminal) goes to a file the test reads to
learn the port and follow the passes. Every wait is bounded and polled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

WAIT_S = 60.0
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:  # an empty list is still waiting
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def records(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue  # a line being written
        return found

    def messages(self) -> list[str]:
        return [str(r.get("msg")) for r in self.records()]

    def finished_passes(self) -> list[dict[str, Any]]:
        return [r for r in self.records()
                if r.get("msg") == "pass finished" and r.get("logger") == "okr_sync.service"]

    @property
    def url(self) -> str:
        def port() -> int | None:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            for record in self.records():
                if record.get("msg") == "listening":
                    return int(record["port"])
            return None

        return f"http://127.0.0.1:{wait_for('serve to listen', port)}"

    def stop(self) -> int:
        """SIGTERM, then the exit code (a graceful stop is 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT_S)


def okr_sync_command() -> list[str]:
    script = shutil.which("okr-sync", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "okr_sync.cli.main"]


@contextmanager
def serve_cli(env: Mapping[str, str], workdir: Path, *args: str,
              name: str = "serve") -> Iterator[ServeProcess]:
    """``okr-sync serve --host 127.0.0.1 --port 0 ARGS`` with ``env`` over this process's."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [*okr_sync_command(), "serve", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=workdir, env={**os.environ, **env}, stdout=log_file, stderr=log_file,
        )
    service = ServeProcess(proc, log_path)
    try:
        yield service
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT_S)
