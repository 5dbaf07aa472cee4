"""A load killed between its SQL commit and its lake publish: the lake is behind the warehouse until the next load
of the table or the next run of the dataset publishes what the load recorded in kho.lake_pending, moving its
staged files into place, or writing them again from the table when they are gone."""

from __future__ import annotations

import json
import multiprocessing as mp
import signal
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from assets import lake
from assets.load import recover
from tests.load_support import OCT, OCT_V2, contract, dataset_name, load, open_warehouse, rows, run_load

NOV = [("CS04", "Trung tâm y tế Thủ Đức", 80, date(2026, 11, 2))]
COLUMNS = ["ma_co_so", "so_giuong", "_kho_load_id"]


@pytest.fixture(params=["sqlite", "generic", "duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wh(request, tmp_path):
    wh = open_warehouse(request, tmp_path, request.param)
    yield wh
    wh.engine.dispose()


def _crash_curated_publish(monkeypatch, zone: str = "curated") -> None:
    """The state a kill -9 right after the zone's SQL commit leaves: committed rows, files not published."""
    publish = lake.PendingWrite.commit

    def crash(self):
        if any(f"/{zone}/" in str(dst) for _, dst in self.moves):
            raise RuntimeError("simulated kill -9 between the SQL commit and the lake publish")
        publish(self)

    monkeypatch.setattr(lake.PendingWrite, "commit", crash)


def _lake(root: str, dataset: str, columns: list[str] = COLUMNS) -> list[tuple]:
    frame = pd.read_parquet(f"{root}/curated/{dataset}")
    return sorted(tuple(r) for r in frame[columns].itertuples(index=False))


def _pending(wh) -> int:
    with wh.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(wh.lake_pending)).scalar()


def _staged(wh) -> list[str]:
    with wh.engine.connect() as conn:
        files = conn.execute(sa.select(wh.lake_pending.c.files)).scalars().all()
    return [tmp for f in files for tmp, _ in json.loads(f)["moves"]]


@pytest.mark.parametrize("mode", ["replace_partition", "append", "scd2"])
@pytest.mark.parametrize("staged", ["kept", "gone"])
def test_the_next_run_publishes_what_a_crashed_load_committed(wh, tmp_path, monkeypatch, mode, staged):
    root = str(tmp_path / "lake")
    c = contract(dataset_name(), mode, partitioned=mode != "scd2")
    load(wh, root, c, "oct.csv", OCT, "L1")
    before = _lake(root, c.dataset)
    with monkeypatch.context() as m:
        _crash_curated_publish(m)
        with pytest.raises(RuntimeError, match="simulated kill"):
            load(wh, root, c, "oct_v2.csv", OCT_V2, "L2")
    assert _lake(root, c.dataset) == before != rows(wh, c, COLUMNS)  # the lake is behind the warehouse
    assert _pending(wh) == 1
    if staged == "gone":  # another machine, a cleaned temporary folder: written again from the table
        for tmp in _staged(wh):
            Path(tmp).unlink()
    assert recover(wh, root, c) == 1
    assert _lake(root, c.dataset) == rows(wh, c, COLUMNS)
    assert _pending(wh) == 0 and not [p for p in Path(root).rglob(".*") if p.is_file()]
    assert recover(wh, root, c) == 0  # nothing left to do


def test_the_next_load_of_the_table_publishes_first(wh, tmp_path, monkeypatch):
    root = str(tmp_path / "lake")
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, root, c, "oct.csv", OCT, "L1")
    with monkeypatch.context() as m:
        _crash_curated_publish(m)
        with pytest.raises(RuntimeError):
            load(wh, root, c, "oct_v2.csv", OCT_V2, "L2")
    load(wh, root, c, "nov.csv", NOV, "L3")  # another period: its own files, and the crashed load's first
    assert _lake(root, c.dataset) == rows(wh, c, COLUMNS) == [
        ("CS01", 150, "L2"), ("CS03", 5, "L2"), ("CS04", 80, "L3")]
    assert _pending(wh) == 0


def test_quarantine_files_too(tmp_path, request, monkeypatch):
    wh = open_warehouse(request, tmp_path, "sqlite")
    root = str(tmp_path / "lake")
    c = contract(dataset_name(), "append", partitioned=True)
    with monkeypatch.context() as m:
        _crash_curated_publish(m, "quarantine")
        with pytest.raises(RuntimeError):
            load(wh, root, c, "oct.csv", OCT, "L1", rejected=[("CS09", "x", None, date(2026, 10, 1))])
    assert not list((tmp_path / "lake" / "quarantine" / c.dataset).glob("*.parquet"))
    assert recover(wh, root, c) == 1
    frame = pd.read_parquet(f"{root}/quarantine/{c.dataset}")
    assert frame["ma_co_so"].tolist() == ["CS09"] == [r[0] for r in rows(wh, c, ["ma_co_so"], zone="quarantine")]
    assert _pending(wh) == 0
    wh.engine.dispose()


def test_a_kill_9_after_the_commit_on_an_s3_lake(tmp_path, request, s3):
    """A real SIGKILL between the commit and the upload; the next run writes the files again from the table
    (the staged files were local temporary files of the process that died)."""
    wh = open_warehouse(request, tmp_path, "sqlite")
    root = "s3://kho-lake/city"
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, root, c, "oct.csv", OCT, "L1")
    marker = tmp_path / "committed"
    proc = mp.get_context("fork").Process(target=run_load, args=(
        wh.url, root, c.dataset, "replace_partition", "oct_v2", "L2", f"committed-curated:{marker}:60"))
    proc.start()
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.is_alive() and time.monotonic() < deadline, proc.exitcode
        time.sleep(0.02)
    proc.kill()
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    assert _lake(root, c.dataset) == [("CS01", 120, "L1"), ("CS02", 10, "L1")]
    assert rows(wh, c, COLUMNS) == [("CS01", 150, "L2"), ("CS03", 5, "L2")]
    for tmp in _staged(wh):
        Path(tmp).unlink()
    assert recover(wh, root, c) == 1
    assert _lake(root, c.dataset) == rows(wh, c, COLUMNS)
    s3.invalidate_cache()
    assert sorted(s3.find(f"kho-lake/city/curated/{c.dataset}")) == [
        f"kho-lake/city/curated/{c.dataset}/ky=2026-10/data.parquet"]
    wh.engine.dispose()
