"""A load killed with SIGKILL in the middle of its transaction leaves the previous state; loads of one table
never interleave. Loads run in child processes (`tests.load_support.run_load`); KHO_TEST_HOLD pauses a load
inside its transaction, after its SQL has run, so the test knows exactly where it kills or races it."""

from __future__ import annotations

import os
import signal
import multiprocessing as mp
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from assets.warehouse import Warehouse
from tests.load_support import OCT, OCT_V2, contract, dataset_name, load, open_warehouse, rows, run_load, sha


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wh(request, tmp_path):
    wh = open_warehouse(request, tmp_path, request.param)
    yield wh
    wh.engine.dispose()


def _start(wh, lake, dataset, mode, batch, load_id, hold=None, start_after=None) -> mp.Process:
    # Forked, not spawned: the child has every module imported already and starts at once.
    proc = mp.get_context("fork").Process(target=run_load, args=(wh.url, lake, dataset, mode, batch, load_id,
                                                                   hold, start_after))
    proc.start()
    return proc


def _wait_for(path: Path, proc: mp.Process, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.is_alive(), f"the load ended (exit code {proc.exitcode}) before its hold point"
        assert time.monotonic() < deadline, "the load never reached its hold point"
        time.sleep(0.02)


def _lake_files(lake: Path) -> dict[str, bytes]:
    return {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["curated", "quarantine"])
def test_a_killed_load_leaves_the_previous_state_and_a_rerun_is_exact(wh, tmp_path, where):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, str(lake), c, "oct.csv", OCT, "L1", rejected=[("CS09", "x", None, date(2026, 10, 1))])
    before, lake_before = rows(wh, c, ["*"]), _lake_files(lake)
    quarantine_before = rows(wh, c, ["*"], zone="quarantine")

    marker = tmp_path / "in_transaction"
    proc = _start(wh, str(lake), c.dataset, "replace_partition", "oct_v2", "L2", f"{where}:{marker}:60")
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)  # inside the transaction: rows deleted and inserted, nothing committed
    proc.join()

    assert rows(wh, c, ["*"]) == before
    assert rows(wh, c, ["*"], zone="quarantine") == quarantine_before
    visible = {k: v for k, v in _lake_files(lake).items() if not Path(k).name.startswith(".")}
    assert visible == lake_before  # at most hidden temporary files, which readers skip

    load(wh, str(lake), c, "oct_v2.csv", OCT_V2, "L3")  # the re-run
    assert rows(wh, c, ["ma_co_so", "so_giuong", "ky", "_kho_load_id"]) == [
        ("CS01", 150, "2026-10", "L3"), ("CS03", 5, "2026-10", "L3")]
    assert sorted(_lake_files(lake)) == ["curated/" + c.dataset + "/ky=2026-10/data.parquet",
                                         "quarantine/" + c.dataset + "/part-" + _sha16("oct.csv") + ".parquet"]


def _sha16(name: str) -> str:
    return sha(name)[:16]


def test_two_loads_of_one_table_run_one_after_the_other(wh, tmp_path):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), "scd2", partitioned=True)
    marker = tmp_path / "first_holds_the_lock"
    first = _start(wh, str(lake), c.dataset, "scd2", "oct", "A", hold=f"curated:{marker}:1")
    # The second starts its load while the first holds the table, and must wait for the first to commit.
    second = _start(wh, str(lake), c.dataset, "scd2", "oct_v2", "B", start_after=str(marker))
    first.join(60)
    second.join(60)
    assert (first.exitcode, second.exitcode) == (0, 0)
    # Interleaved, both would have seen no current version and opened one each: CS01 twice current.
    assert rows(wh, c, ["ma_co_so", "so_giuong", "is_current", "_kho_load_id"]) == [
        ("CS01", 120, False, "A"), ("CS01", 150, True, "B"), ("CS02", 10, True, "A"), ("CS03", 5, True, "B")]


def test_a_sqlite_load_waits_for_sqlalchemy_connections_open_in_its_process(tmp_path):
    """Two copies of SQLite in one process must not have the file open at once (warehouse._Gate)."""
    wh = Warehouse(f"sqlite:///{tmp_path / 'kho.sqlite'}")
    c = contract(dataset_name(), "append")
    reader = wh.engine.connect()
    reader.exec_driver_sql("SELECT 1")
    loading = threading.Thread(target=load, args=(wh, str(tmp_path / "lake"), c, "oct.csv", OCT, "L1"))
    loading.start()
    time.sleep(0.5)
    assert loading.is_alive()  # at the gate
    reader.close()
    loading.join(30)
    assert not loading.is_alive()
    assert rows(wh, c, ["ma_co_so", "_kho_load_id"]) == [("CS01", "L1"), ("CS02", "L1")]
