"""The run lock and leadership: exclusion, waiting, and release when a holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from okr_sync.exit_codes import ExitCode
from okr_sync.sync.store.locks import (
    Leadership,
    LockBusyError,
    LockError,
    RunLock,
    UnsupportedDatabaseError,
    lock_file_path,
)
from support.clocks import FakeMonotonic as FakeTime

#: Bound on how long a test waits for the server/kernel to notice a dead holder.
DEAD_HOLDER_WAIT_S = 30.0

_HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from okr_sync.sync.store.locks import Leadership, RunLock

    url, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "lead":
        holder = Leadership(url, name, holder="child")
        assert holder.poll()
    else:
        lock = RunLock(url, name, holder="child")
        assert lock.try_acquire()
    print("held", flush=True)
    time.sleep(120)  # killed long before this ends
    """
)


@contextmanager
def holder_process(url: str, name: str, mode: str = "lock") -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER_SCRIPT, url, name, mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_run_lock_given_two_holders_in_one_process_admits_one(database_url: str) -> None:
    first = RunLock(database_url, holder="first")
    second = RunLock(database_url, holder="second")

    assert first.try_acquire() is True
    assert second.try_acquire() is False
    assert first.verify() is True

    first.release()

    assert second.try_acquire() is True
    assert first.try_acquire() is False
    second.release()


def test_run_lock_given_different_names_does_not_conflict(database_url: str) -> None:
    with RunLock(database_url, "run"), RunLock(database_url, "migrate") as other:
        assert other.held


def test_run_lock_context_given_busy_lock_raises_busy_error_naming_holder(
    database_url: str,
) -> None:
    with (
        RunLock(database_url, holder="host-a:111"),
        pytest.raises(LockBusyError) as caught,
        RunLock(database_url, holder="host-b:222"),
    ):
        pass

    assert caught.value.exit_code == ExitCode.LOCKED == 75
    assert caught.value.holder is not None and "host-a:111" in caught.value.holder
    assert "host-a:111" in str(caught.value)


def test_run_lock_acquire_given_wait_polls_until_timeout_without_real_sleep(
    database_url: str,
) -> None:
    fake = FakeTime(0.0)
    waiter = RunLock(database_url, wait=2.0, poll_interval=0.5, sleep=fake.sleep, clock=fake.clock)

    with RunLock(database_url), pytest.raises(LockBusyError):
        waiter.acquire()

    assert fake.sleeps == [0.5, 0.5, 0.5, 0.5]
    assert waiter.held is False


def test_run_lock_acquire_given_holder_releases_while_waiting_gets_it(database_url: str) -> None:
    first = RunLock(database_url)
    assert first.try_acquire()

    def sleep(_: float) -> None:
        first.release()  # the other pass finishes while we wait

    waiter = RunLock(database_url, sleep=sleep)
    waiter.acquire(timeout=10)

    assert waiter.held and waiter.verify()
    waiter.release()


@pytest.mark.slow
def test_run_lock_given_holder_killed_with_sigkill_is_taken_over(database_url: str) -> None:
    with holder_process(database_url, "run") as child:
        assert RunLock(database_url).try_acquire() is False

        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

        survivor = RunLock(database_url, poll_interval=0.05)
        survivor.acquire(timeout=DEAD_HOLDER_WAIT_S)
    assert survivor.verify()
    survivor.release()


def test_leadership_given_two_replicas_one_leads_and_the_other_takes_over_on_resign(
    database_url: str,
) -> None:
    with (
        Leadership(database_url, holder="replica-1") as one,
        Leadership(database_url, holder="replica-2") as two,
    ):
        assert (one.poll(), two.poll()) == (True, False)
        assert (one.poll(), two.poll()) == (True, False)
        assert (one.is_leader, two.is_leader) == (True, False)

        one.resign()

        assert (two.poll(), one.poll()) == (True, False)


@pytest.mark.slow
def test_leadership_given_leader_process_killed_follower_takes_over(database_url: str) -> None:
    follower = Leadership(database_url, "leader", holder="replica-2")
    with holder_process(database_url, "leader", mode="lead") as child:
        assert follower.poll() is False
        assert "child" in (follower.current_leader() or "")

        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

        ticks = 0
        while not follower.poll():  # the serve loop: poll once per tick
            ticks += 1
            assert ticks < DEAD_HOLDER_WAIT_S / 0.05, "leadership never moved"
            time.sleep(0.05)
    assert follower.is_leader
    follower.resign()


@pytest.mark.postgres
def test_leadership_given_leader_session_terminated_steps_down(postgres_url: str) -> None:
    with (
        Leadership(postgres_url, holder="replica-1") as one,
        Leadership(postgres_url, holder="replica-2") as two,
    ):
        assert one.poll() is True
        admin = sa.create_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'okr-sync replica-1'"
                    )
                )
        finally:
            admin.dispose()

        assert two.poll() is True
        assert one.poll() is False
        assert one.is_leader is False


def test_lock_file_path_given_sqlite_database_sits_next_to_it(tmp_path: Path) -> None:
    db = tmp_path / "state" / "okr-sync.db"

    assert lock_file_path(str(db), "run") == db.with_name("okr-sync.db.run.lock")


def test_run_lock_given_sqlite_file_creates_lock_file_with_holder(sqlite_url: str) -> None:
    lock = RunLock(sqlite_url, holder="host:42")
    path = lock_file_path(sqlite_url.removeprefix("sqlite:///"), "run")

    with lock:
        assert path.read_text().startswith("host:42 since ")
    assert path.read_text() == ""


def test_run_lock_given_in_memory_sqlite_excludes_within_the_process() -> None:
    first, second = RunLock("sqlite://"), RunLock("sqlite://")

    assert first.try_acquire() is True
    assert second.try_acquire() is False
    first.release()
    assert second.try_acquire() is True
    second.release()


def test_run_lock_given_bad_arguments_refuses(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(LockError):
        RunLock(sqlite_url, "no spaces allowed")
    with pytest.raises(UnsupportedDatabaseError):
        RunLock("mysql://u@127.0.0.1/x")
    with pytest.raises(LockError, match="cannot open lock file"):
        RunLock(f"sqlite:///{tmp_path}/missing-dir/x.db").try_acquire()
    lock = RunLock(sqlite_url)
    assert lock.try_acquire()
    with pytest.raises(LockError):
        lock.try_acquire()
    lock.release()
    lock.release()  # releasing twice is harmless
