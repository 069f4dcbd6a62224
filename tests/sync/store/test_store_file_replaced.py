"""A SQLite store whose file is deleted or replaced while kept connections are open."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from okr_sync.sync.store.database import create_store_engine


def _count(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar() or 0)


def _engine_with_rows(path: Path, rows: int) -> sa.Engine:
    engine = create_store_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
        for _ in range(rows):
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    return engine


def test_create_store_engine_given_file_replaced_between_transactions_reads_the_new_file(
    tmp_path: Path,
) -> None:
    # A restore from backup replaces the file; a kept connection would go on with the old.
    path = tmp_path / "store.db"
    engine = _engine_with_rows(path, 1)
    try:
        assert _count(engine) == 1
        backup = tmp_path / "backup.db"
        made = sqlite3.connect(backup)
        made.execute("CREATE TABLE t (x)")
        made.executemany("INSERT INTO t VALUES (?)", [(2,), (2,), (2,)])
        made.commit()
        made.close()
        # Restored as SQLite asks: the old file's WAL and shared memory go with it.
        os.replace(backup, path)
        for name in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            name.unlink(missing_ok=True)

        assert _count(engine) == 3
    finally:
        engine.dispose()


def test_create_store_engine_given_file_deleted_between_transactions_fails_clearly(
    tmp_path: Path,
) -> None:
    # Writing on into the unlinked file would look like success and be lost.
    path = tmp_path / "store.db"
    engine = _engine_with_rows(path, 1)
    try:
        assert _count(engine) == 1
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            name.unlink(missing_ok=True)

        with pytest.raises(sa.exc.OperationalError, match="no such table"), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        engine.dispose()
