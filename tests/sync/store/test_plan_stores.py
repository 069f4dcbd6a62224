"""One store per plan for ``serve --plans``: a PostgreSQL schema, or a SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from okr_sync.sync.store.database import create_plan_schema, plan_store_url
from okr_sync.sync.store.locks import RunLock
from okr_sync.sync.store.store import Store


def test_plan_store_url_given_sqlite_names_a_file_next_to_the_configured_one(
    tmp_path: Path,
) -> None:
    url = plan_store_url(f"sqlite:///{tmp_path / 'okr-sync.db'}", "sales")
    assert make_url(url).database == str(tmp_path / "okr-sync.sales.db")


def test_plan_store_url_given_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        plan_store_url("sqlite://", "sales")


@pytest.mark.postgres
def test_plan_stores_given_postgresql_keep_each_plan_in_its_schema_with_its_own_locks(
    postgres_url: str,
) -> None:
    sales, ops = plan_store_url(postgres_url, "sales"), plan_store_url(postgres_url, "ops")
    for url in (sales, ops):
        create_plan_schema(postgres_url, url)
        create_plan_schema(postgres_url, url)  # again: already there is fine
    with Store(sales) as sales_store, Store(ops) as ops_store:
        sales_store.heartbeat_replica("only-in-sales", timedelta(days=1))
        assert ops_store.live_replicas() == set()
        assert sales_store.live_replicas() == {"only-in-sales"}
    engine = sa.create_engine(postgres_url, poolclass=NullPool)
    try:
        tables = sa.inspect(engine)
        for schema in ("okr_sync_plan_sales", "okr_sync_plan_ops"):
            assert "runs" in tables.get_table_names(schema=schema)
            assert "okr_sync_alembic_version" in tables.get_table_names(schema=schema)
        assert "runs" not in tables.get_table_names(schema="public")
    finally:
        engine.dispose()
    # The run lock is per plan: sales and ops run at once, two sales runs do not.
    with RunLock(sales, "run", holder="one"):
        with RunLock(ops, "run", holder="two"):
            assert not RunLock(sales, "run", holder="three").try_acquire()
        assert RunLock(postgres_url, "run", holder="four").try_acquire()
