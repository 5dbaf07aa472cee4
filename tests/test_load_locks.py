"""PostgreSQL: a load whose connection is lost while it holds its table's lock does not block the table forever.

A half-open connection looks to the server like a session idle in its transaction: it keeps its locks until TCP
gives up, hours later. Loading sessions therefore run with `lock_timeout` (a wait fails, as a transient fault the
run retries) and `idle_in_transaction_session_timeout` (the server ends the silent session, freeing the lock).
Pooled connections are pinged before use, so a load never gets one the server has dropped."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from assets.session import session
from assets.warehouse import Warehouse
from pipelines.policy import TRANSIENT


def test_server_databases_ping_pooled_connections():
    assert Warehouse("postgresql+psycopg://kho@db-host/kho").engine.pool._pre_ping
    assert Warehouse("mysql+pymysql://kho@db-host/kho").engine.pool._pre_ping


def test_bad_timeout_settings_are_refused(monkeypatch):
    from assets.warehouse import pg_settings

    monkeypatch.setenv("KHO_PG_LOCK_TIMEOUT_S", "2.5")
    monkeypatch.setenv("KHO_PG_IDLE_IN_TRANSACTION_TIMEOUT_S", "0")
    assert pg_settings() == ["SET lock_timeout = 2500", "SET idle_in_transaction_session_timeout = 0"]
    monkeypatch.setenv("KHO_PG_LOCK_TIMEOUT_S", "five minutes")
    with pytest.raises(ValueError, match="KHO_PG_LOCK_TIMEOUT_S"):
        pg_settings()


def _table(name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), sa.Column("x", sa.Integer), schema="curated")


def _lost(wh: Warehouse, table: sa.Table):
    """A load session that took the table's lock, began writing and then went silent."""
    ctx = session(wh, table)
    s = ctx.__enter__()
    s.execute("SELECT 1")  # inside the transaction now
    return ctx


def _close(ctx) -> None:
    try:
        ctx.__exit__(None, None, None)
    except Exception:  # noqa: BLE001 - the server has ended it: nothing left to release
        pass


@pytest.mark.postgres
@pytest.mark.parametrize("fast", [True, False], ids=["adbc", "sqlalchemy"])
def test_a_lost_load_does_not_block_its_table(postgres_url, monkeypatch, fast):
    monkeypatch.setenv("KHO_PG_LOCK_TIMEOUT_S", "1")
    monkeypatch.setenv("KHO_PG_IDLE_IN_TRANSACTION_TIMEOUT_S", "3")
    wh = Warehouse(postgres_url, fast=fast)
    table = _table(f"t_lock_{int(time.time() * 1000)}_{int(fast)}")
    lost = _lost(wh, table)
    try:
        # Meanwhile a later load waits a second, not forever, and fails as a fault the run retries.
        started = time.monotonic()
        with pytest.raises(Exception) as info:
            with session(wh, table):
                pass
        assert time.monotonic() - started < 10
        assert isinstance(info.value, TRANSIENT), repr(info.value)
        assert "lock timeout" in str(info.value)
        # So does the schema step of a load, on SQLAlchemy's connections.
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            wh.prepare(table)

        # The server ends the silent session: its lock is free and the next load goes through.
        deadline = time.monotonic() + 30
        while True:
            try:
                with session(wh, table) as s:
                    s.execute("SELECT 1")
                    s.commit()
                break
            except TRANSIENT:
                assert time.monotonic() < deadline, "the lost session's lock was never released"
                time.sleep(0.5)
    finally:
        _close(lost)
        wh.engine.dispose()


@pytest.mark.postgres
def test_loading_sessions_carry_the_timeouts(postgres_url, monkeypatch):
    monkeypatch.setenv("KHO_PG_LOCK_TIMEOUT_S", "7")
    for fast in (True, False):
        wh = Warehouse(postgres_url, fast=fast)
        try:
            with session(wh, _table("t_settings")) as s:
                got = s.fetch("SELECT current_setting('lock_timeout') AS l, "
                              "current_setting('idle_in_transaction_session_timeout') AS i").to_pylist()
            assert got == [{"l": "7s", "i": "30min"}], fast
            with wh.engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar() == "7s"
        finally:
            wh.engine.dispose()
