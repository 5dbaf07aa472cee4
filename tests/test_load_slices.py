"""A batch handed over as a Staged file, a few rows a slice, loads exactly as the same rows as one DataFrame: the
same SQL tables (curated, quarantine, load log) and the same lake files, in every load mode, on SQLite and
PostgreSQL; and a failure or a kill -9 between two slices leaves the previous table and lake as they were.

Each side loads into a warehouse of its own (PostgreSQL: a second database next to the session's), with the
clock fixed, so every column, provenance and SCD2 validity included, must be equal.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from assets import batches, lake as lake_module, load as loader
from assets.batches import Staged
from assets.warehouse import LoadError, Warehouse
from tests.conftest import PG_ADMIN_URL
from tests.load_support import (FIRST, SECOND, batch, contract, dataset_name, load, log_rows, open_warehouse, rows,
                                run_load, sha, stamp, staged)

# FIRST and SECOND (tests.load_support): two periods, a row without a date (no period: replaced by source file);
# the rejected rows are placed so that some 3-row slices hold no accepted row at all and some no rejected row.
REJECTED = [("CS90", "Cơ sở lỗi", None, date(2026, 10, 1)), ("CS91", "Cơ sở lỗi", None, date(2026, 11, 1)),
            ("CS92", "Cơ sở lỗi", None, date(2026, 10, 2))]

MODES = [("append", {}), ("replace", {}), ("replace_partition", {}), ("merge", {"on_missing": "keep"}),
         ("merge", {"on_missing": "delete"}), ("merge", {"on_missing": "close"}),
         ("scd2", {"tracked": ["so_giuong"], "on_missing": "close"})]
CLOCK = [datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)]


@pytest.fixture(scope="module")
def second_postgres(request):
    """A second fresh PostgreSQL database, so each side has a warehouse of its own."""
    request.getfixturevalue("postgres_url")  # the server is there (under CI=true: or the test fails)
    name = f"kho_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def pair(request, tmp_path):
    """(warehouse for the DataFrame side, warehouse for the Staged side)."""
    if request.param == "postgresql":
        whs = (Warehouse(request.getfixturevalue("postgres_url")),
               Warehouse(request.getfixturevalue("second_postgres")))
    else:
        whs = (Warehouse(f"sqlite:///{tmp_path / 'frame.sqlite'}"),
               Warehouse(f"sqlite:///{tmp_path / 'slices.sqlite'}"))
    yield whs
    for wh in whs:
        wh.engine.dispose()


@pytest.fixture
def wh(request, tmp_path):
    wh = open_warehouse(request, tmp_path, request.param)
    yield wh
    wh.engine.dispose()


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """Loads at the time the test sets (CLOCK[0]), the same on both sides."""
    CLOCK[0] = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(loader, "now", lambda: CLOCK[0])


def _frame(c, file, accepted):
    """Three accepted rows, the three rejected ones, the other accepted rows: 3-row slices then hold only
    accepted rows, only rejected rows, and a last slice shorter than the others."""
    frame = batch(c, file, accepted, REJECTED)
    n = len(accepted)
    return frame.iloc[[0, 1, 2, n, n + 1, n + 2, *range(3, n)]].reset_index(drop=True)


def _load(wh, lake, c, file, accepted, load_id, slices: Path | None):
    frame = _frame(c, file, accepted)
    given = staged(frame, slices) if slices else frame
    if slices:
        assert isinstance(given, Staged) and pq.ParquetFile(given.path).metadata.num_row_groups == 4
    loader.write_quarantine(wh, lake, c, given, load_id, [sha(file)])
    return loader.load_curated(wh, lake, c, given, load_id, [{"sha256": sha(file), "file_name": file}],
                               log_rows(c, load_id, file, frame))


def _tables(wh, c) -> dict:
    curated = [col.name for col in wh.curated_table(c).columns]
    quarantine = [col.name for col in wh.quarantine_table(c).columns]
    log = wh.name_of(wh.load_log).replace('"', "")
    with wh.engine.connect() as conn:
        logged = conn.exec_driver_sql(f"SELECT load_id, file_sha256, rows_read, rows_loaded, rows_quarantined, status, "
                                      f"message FROM {log} WHERE dataset = '{c.dataset}' ORDER BY load_id").all()
        pending = conn.execute(sa.select(sa.func.count()).select_from(wh.lake_pending)).scalar()
    return {"curated": rows(wh, c, curated), "quarantine": rows(wh, c, quarantine, zone="quarantine"),
            "log": [tuple(r) for r in logged], "lake_pending": pending}


def _lake(root: Path) -> dict[str, tuple]:
    """Each lake file: its rows, schema with descriptions, row groups, and its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            f = pq.ParquetFile(p)
            schema = f.schema_arrow
            out[str(p.relative_to(root))] = (f.read().to_pylist(), schema, schema.metadata,
                                             [field.metadata for field in schema], f.metadata.num_row_groups,
                                             p.read_bytes())
    return out


@pytest.mark.parametrize("mode, options", MODES, ids=[f"{m}-{o.get('on_missing', '')}" for m, o in MODES])
def test_slices_load_exactly_as_one_frame(pair, tmp_path, monkeypatch, mode, options):
    monkeypatch.setattr(lake_module, "ROW_GROUP_ROWS", 2)  # files of several row groups, whatever the slicing
    c = contract(dataset_name(), mode, partitioned=mode not in ("merge", "scd2"), **options)
    results = []
    for side, (wh, slices) in enumerate(zip(pair, (None, tmp_path / "batch"))):
        lake = tmp_path / f"lake{side}"
        CLOCK[0] = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
        first = _load(wh, str(lake), c, "first.csv", FIRST, "L1", slices and slices / "1.parquet")
        CLOCK[0] = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
        second = _load(wh, str(lake), c, "second.csv", SECOND, "L2", slices and slices / "2.parquet")
        results.append(((first.rows, second.rows), _tables(wh, c), _lake(lake)))
    assert results[0] == results[1]
    (counts, tables, files) = results[0]
    assert counts == (len(FIRST), len(SECOND))
    assert len(tables["quarantine"]) == 2 * len(REJECTED) and tables["lake_pending"] == 0
    assert files and not [f for f in files if Path(f).name.startswith(".")]
    curated = [r for f, (got, *_) in files.items() if f.startswith("curated/") for r in got]
    assert len(curated) == len(tables["curated"])  # the lake is the table
    assert max(groups for *_, groups, _ in files.values()) > 1


@pytest.mark.parametrize("wh", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "generic",
                                "duckdb"], indirect=True)
@pytest.mark.parametrize("mode", ["replace_partition", "scd2"])
def test_slices_on_every_warehouse_path(wh, tmp_path, mode):
    c = contract(dataset_name(), mode, partitioned=mode != "scd2")
    CLOCK[0] = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    load(wh, str(tmp_path / "lake"), c, "first.csv", FIRST, "L1", rejected=REJECTED, slices=tmp_path / "1.parquet")
    CLOCK[0] = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    load(wh, str(tmp_path / "lake"), c, "second.csv", SECOND, "L2", slices=tmp_path / "2.parquet")
    got = rows(wh, c, ["ma_co_so", "so_giuong", "_kho_load_id"] + (["is_current"] if mode == "scd2" else []))
    lake = pq.read_table(tmp_path / "lake" / "curated" / c.dataset).to_pylist()
    assert len(lake) == len(got)
    if mode == "replace_partition":  # SECOND holds both periods: all of FIRST goes but its CS06 (no period)
        assert sorted(got, key=str) == sorted([(r[0], r[2], "L2") for r in SECOND] + [("CS06", 7, "L1")], key=str)
    else:  # 11 keys current; CS01, CS02 and CS06 changed: 3 closed versions
        assert (len(got), sum(1 for r in got if r[3])) == (14, 11)


class Broken(Staged):
    """A Staged file whose third slice cannot be read."""

    def _group(self, files, names, i, **kw):  # every read of a row group goes through here
        if i == 2:
            raise OSError("simulated read error in the third slice")
        return super()._group(files, names, i, **kw)


def _state(wh, c, lake: Path) -> tuple:
    files = {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}
    return _tables(wh, c), files


@pytest.mark.parametrize("wh", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("mode", ["append", "replace", "replace_partition", "merge", "scd2"])
@pytest.mark.parametrize("fault", ["generator", "violates_table"])
def test_a_failure_between_slices_leaves_the_previous_table_and_lake(wh, tmp_path, mode, fault):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), mode, partitioned=mode not in ("merge", "scd2"))
    _load(wh, str(lake), c, "first.csv", FIRST, "L1", tmp_path / "1.parquet")
    before = _state(wh, c, lake)
    frame = _frame(c, "second.csv", SECOND)
    if fault == "violates_table":  # a row of the fourth slice without its source file: NOT NULL in SQL
        frame.loc[10, "_kho_file_sha256"] = None
        given = staged(frame, tmp_path / "2.parquet")
        failure = Exception
    else:
        given = Broken(staged(frame, tmp_path / "2.parquet").path)
        failure = OSError
    CLOCK[0] = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    files = [{"sha256": sha("second.csv"), "file_name": "second.csv"}]
    with pytest.raises(failure):
        loader.load_curated(wh, str(lake), c, given, "L2", files, log_rows(c, "L2", "second.csv", frame))
    assert _state(wh, c, lake) == before  # nothing written, nothing left behind (temporary files included)
    if fault == "generator":
        with pytest.raises(OSError):
            loader.write_quarantine(wh, str(lake), c, given, "L2", [sha("second.csv")])
        assert _state(wh, c, lake) == before


def test_a_slice_with_a_period_the_batch_did_not_name_is_refused(tmp_path):
    """replace_partition deletes the batch's periods before its first slice: a slice may not bring another."""
    wh = Warehouse(f"sqlite:///{tmp_path / 'kho.sqlite'}")
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, str(tmp_path / "lake"), c, "first.csv", FIRST, "L1")
    before = _state(wh, c, tmp_path / "lake")

    class Moving(Staged):  # the read of the periods (ky and the reasons) sees October and November; the
        def tables(self, columns=None):  # load's wider slices bring December too
            for piece in super().tables(columns):
                if "ky" in piece.column_names and len(piece.column_names) > 2:
                    moved = pc.if_else(pc.equal(piece["ky"], "2026-11"), "2026-12", piece["ky"])
                    piece = piece.set_column(piece.column_names.index("ky"), "ky", moved)
                yield piece

    frame = _frame(c, "second.csv", SECOND)
    with pytest.raises(LoadError, match="did not name"):
        loader.load_curated(wh, str(tmp_path / "lake"), c, Moving(staged(frame, tmp_path / "2.parquet").path), "L2",
                            [{"sha256": sha("second.csv"), "file_name": "second.csv"}],
                            log_rows(c, "L2", "second.csv", frame))
    assert _state(wh, c, tmp_path / "lake") == before
    wh.engine.dispose()


def test_a_batch_with_a_key_twice_across_slices_is_refused(tmp_path):
    wh = Warehouse(f"sqlite:///{tmp_path / 'kho.sqlite'}")
    c = contract(dataset_name(), "merge")
    twice = SECOND + [("CS01", "Bệnh viện Quận 1", 151, date(2026, 10, 3))]  # CS01 in the first and last slice
    with pytest.raises(LoadError, match="primary key more than once"):
        load(wh, str(tmp_path / "lake"), c, "second.csv", twice, "L2", slices=tmp_path / "2.parquet")
    wh.engine.dispose()


@pytest.mark.parametrize("wh", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_kill_9_between_two_slices_leaves_the_previous_state(wh, tmp_path):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, str(lake), c, "first.csv", FIRST, "L1", rejected=REJECTED[:1])
    before = _state(wh, c, lake)

    marker = tmp_path / "after_the_first_slice"
    proc = mp.get_context("fork").Process(target=run_load, args=(
        wh.url, str(lake), c.dataset, "replace_partition", "second", "L2", f"curated-slice:{marker}:60", None,
        str(tmp_path / "batch.parquet")))
    proc.start()
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.is_alive(), f"the load ended (exit code {proc.exitcode}) before its first slice was in"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # one slice deleted-and-inserted in SQL, in the lake's writers; no commit
    proc.join()

    tables, files = _state(wh, c, lake)
    assert tables == before[0]
    assert {k: v for k, v in files.items() if not Path(k).name.startswith(".")} == before[1]
    load(wh, str(lake), c, "second.csv", SECOND, "L3", slices=tmp_path / "again.parquet")  # the re-run cleans up
    assert not [p for p in lake.rglob(".*") if p.is_file()]
    assert rows(wh, c, ["ma_co_so", "_kho_load_id"]) == sorted(
        [(r[0], "L3") for r in SECOND] + [("CS06", "L1")], key=lambda r: tuple((v is None, str(v)) for v in r))


def test_batches_slices_of_a_frame_is_the_frame():
    frame = batch(contract("t", "append"), "x.csv", FIRST)
    assert [len(p) for p in batches.slices(frame)] == [len(frame)]


@pytest.mark.parametrize("wh", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "generic",
                                "duckdb"], indirect=True)
@pytest.mark.parametrize("mode, options", [("scd2", {"on_missing": "close"}), ("merge", {"on_missing": "close"})])
def test_a_snapshot_is_read_back_in_small_batches_with_its_types(wh, tmp_path, monkeypatch, mode, options):
    """merge and scd2 publish the whole table, read back a batch at a time. valid_to and _kho_deleted_at are
    NULL in the first rows and set in later ones: SQLite's driver types a column by its first batch, so the read
    must not take NULL for the column's type."""
    from assets import session

    monkeypatch.setattr(session, "SCAN_ROWS", 2)
    c = contract(dataset_name(), mode, **options)
    root = tmp_path / "lake"
    load(wh, str(root), c, "first.csv", FIRST, "L1", slices=tmp_path / "1.parquet")
    CLOCK[0] = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    # CS01 and CS02 (the table's first rows) stay as they were; the later rows are closed
    second = FIRST[:2] + [("CS03", "Phòng khám Sài Gòn", 6, date(2026, 10, 20))] + SECOND[4:]
    load(wh, str(root), c, "second.csv", second, "L2", slices=tmp_path / "2.parquet")
    closed = "valid_to" if mode == "scd2" else "_kho_deleted_at"
    got = rows(wh, c, ["ma_co_so", "so_giuong", closed])
    assert any(r[2] is None for r in got) and any(r[2] is not None for r in got)
    lake = pq.read_table(root / "curated" / c.dataset).to_pylist()
    key = lambda r: tuple(str(v) for v in r)  # noqa: E731
    assert sorted(((r["ma_co_so"], r["so_giuong"], r[closed] and stamp(r[closed])) for r in lake), key=key) == \
        sorted(got, key=key)
