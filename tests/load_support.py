"""Helpers for the tests/test_load_*.py tests: a small contract per load mode, batches as the validated step hands
them over (a DataFrame, or a Staged file of small slices), and `run_load`, one load as a separate process runs
it (to kill it or race it); also a command line:

    python -m tests.load_support <warehouse url> <lake root> <dataset> <mode> <batch name> <load id>
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from assets import batches
from assets.batches import Staged
from assets.contract import Contract
from assets.extract.base import ROW_COLUMN
from assets.extract.csv import ORIGINAL, REASONS
from assets.flow import FILE_COLUMN
from assets.load import load_curated, write_quarantine
from assets.warehouse import Warehouse

COLUMNS = {
    "ma_co_so": {"description": "Mã cơ sở", "required": True},
    "ten_co_so": {"description": "Tên cơ sở"},
    "so_giuong": {"type": "integer", "description": "Số giường bệnh"},
    "ngay_cap_nhat": {"type": "date", "description": "Ngày cập nhật"},
}


def contract(dataset: str, mode: str, partitioned: bool = False, columns: dict | None = None, **load) -> Contract:
    return Contract.model_validate({
        "dataset": dataset, "title": "Cơ sở y tế (kiểm thử)", "description": "test",
        "department": {"code": "so_y_te", "name": "Sở Y tế"}, "landing": "so_y_te/x/*.csv",
        "columns": columns or COLUMNS, "primary_key": ["ma_co_so"],
        "partitioning": {"column": "ngay_cap_nhat", "grain": "month"} if partitioned else None,
        "load": {"mode": mode, **load},
    })


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def batch(c: Contract, file: str, rows: list[tuple], rejected: list[tuple] = ()) -> pd.DataFrame:
    """A validated frame: `rows` accepted, `rejected` quarantined; tuples follow the contract's columns."""
    names = list(c.columns)
    frame = pd.DataFrame([dict(zip(names, r)) for r in [*rows, *rejected]], columns=names)
    for n in names:  # the original text beside the typed value, as clean() leaves it
        frame["_src_" + n] = frame[n].map(lambda v: None if v is None or v != v else str(v))
    if c.partitioning:
        frame[c.partitioning.key] = [r[3].strftime("%Y-%m") if r[3] else None for r in [*rows, *rejected]]
    for n, col in c.columns.items():  # clean() hands integers over as Int64; other values stay as given
        if col.type == "integer" and all(isinstance(v, int) for v in frame[n].dropna()):
            frame[n] = frame[n].astype("Int64")
    frame[REASONS] = [None] * len(rows) + ["invalid_number:so_giuong"] * len(rejected)
    frame[ORIGINAL] = None
    frame[ROW_COLUMN] = range(2, len(frame) + 2)
    frame[FILE_COLUMN] = sha(file)
    return frame


def staged(frame: pd.DataFrame, path: Path, rows: int = 3) -> Staged:
    """The frame as the steps hand a large batch over: a Parquet file of `rows`-row slices."""
    with batches.Writer(path) as w:
        for start in range(0, len(frame), rows):
            w.write(frame.iloc[start:start + rows].reset_index(drop=True))
        return w.close(empty=frame)


def log_rows(c: Contract, load_id: str, file: str, frame: pd.DataFrame) -> list[dict]:
    bad = int(frame[REASONS].notna().sum())
    return [{"load_id": load_id, "dataset": c.dataset, "department": "so_y_te", "partition_key": None,
             "file_name": file, "file_sha256": sha(file), "rows_read": len(frame), "rows_loaded": len(frame) - bad,
             "rows_quarantined": bad, "check_outcome": "passed", "status": "loaded", "message": None,
             "started_at": None, "finished_at": None}]


def load(wh: Warehouse, lake: str, c: Contract, file: str, rows: list[tuple], load_id: str,
         rejected: list[tuple] = (), slices: Path | None = None):
    """One load of a batch; `slices`: handed over as a Staged file there, 3 rows a slice."""
    frame = batch(c, file, rows, rejected)
    given = staged(frame, slices) if slices is not None else frame
    write_quarantine(wh, lake, c, given, load_id, [sha(file)])
    return load_curated(wh, lake, c, given, load_id, [{"sha256": sha(file), "file_name": file}],
                        log_rows(c, load_id, file, frame))


def rows(wh: Warehouse, c: Contract, columns: list[str], zone: str = "curated") -> list[tuple]:
    """The table's rows as plain tuples, sorted: what the tests compare exactly."""
    schema, name = wh.locate(zone, c.table)
    table = f'"{schema}"."{name}"' if schema else f'"{name}"'
    with wh.engine.connect() as conn:
        got = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")).all()
    flags = [c in ("is_current",) for c in columns]
    out = [tuple(bool(v) if flag else _plain(v) for v, flag in zip(r, flags)) for r in got]
    return sorted(out, key=lambda r: tuple((v is None, str(v)) for v in r))


def stamp(value: datetime) -> str:
    """A UTC timestamp as SQLite stores it, so SQLite and PostgreSQL rows compare equal."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _plain(value):
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return date.fromisoformat(value)  # SQLAlchemy text() gives SQLite dates back as text
    return value


def open_warehouse(request, tmp_path, backend: str) -> Warehouse:
    """sqlite / postgresql (the session's fresh database from conftest) / duckdb / generic (SQLAlchemy path)."""
    if backend == "postgresql":
        return Warehouse(request.getfixturevalue("postgres_url"))
    if backend == "duckdb":
        import pytest

        pytest.importorskip("duckdb_engine")
        return Warehouse(f"duckdb:///{tmp_path / 'kho.duckdb'}")
    return Warehouse(f"sqlite:///{tmp_path / 'kho.sqlite'}", fast=backend != "generic")


def dataset_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


# Batches the subprocess tests load by name: (rows, file name).
OCT = [("CS01", "Bệnh viện Quận 1", 120, date(2026, 10, 3)), ("CS02", "Trạm y tế Bến Thành", 10, date(2026, 10, 9))]
OCT_V2 = [("CS01", "Bệnh viện Quận 1", 150, date(2026, 10, 3)), ("CS03", "Phòng khám Sài Gòn", 5, date(2026, 10, 20))]
# Larger batches for the slice tests (tests/test_load_slices.py): two periods, a row without a date.
FIRST = [("CS01", "Bệnh viện Quận 1", 120, date(2026, 10, 3)), ("CS02", "Trạm y tế Bến Thành", 10, date(2026, 10, 9)),
         ("CS03", "Phòng khám Sài Gòn", 5, date(2026, 10, 20)),
         ("CS04", "Trung tâm y tế Thủ Đức", 80, date(2026, 11, 2)),
         ("CS05", "Trạm y tế Linh Trung", 12, date(2026, 11, 5)), ("CS06", "Phòng khám Đa Kao", 7, None),
         ("CS07", "Bệnh viện Gò Vấp", 300, date(2026, 11, 30))]
SECOND = [("CS01", "Bệnh viện Quận 1", 150, date(2026, 10, 3)),  # changed
          ("CS02", "Trạm y tế phường Bến Thành", 10, date(2026, 10, 9)),  # renamed (untracked in scd2)
          ("CS04", "Trung tâm y tế Thủ Đức", 80, date(2026, 11, 2)),  # unchanged; CS03, CS05, CS07 gone
          ("CS06", "Phòng khám Đa Kao", 9, None),
          ("CS08", "Trạm y tế Tân Định", 15, date(2026, 10, 12)), ("CS09", "Phòng khám Quận 3", 4, date(2026, 11, 8)),
          ("CS10", "Trạm y tế An Khánh", 6, date(2026, 11, 9)), ("CS11", "Bệnh viện Quận 7", 210, date(2026, 10, 1))]
BATCHES = {"oct": (OCT, "oct.csv"), "oct_v2": (OCT_V2, "oct_v2.csv"), "big": (None, "big.csv"),
           "second": (SECOND, "second.csv")}


def big(n: int) -> list[tuple]:
    return [(f"CS{i:07d}", f"Cơ sở {i}", i % 500, date(2026, 10, 1 + i % 28)) for i in range(n)]


def run_load(url: str, lake: str, dataset: str, mode: str, name: str, load_id: str,
             hold: str | None = None, start_after: str | None = None, slices: str | None = None) -> None:
    """One load of a named batch, as a separate process runs it; `hold` sets KHO_TEST_HOLD, `start_after` waits
    for that file first (so two processes can be started together and still race at a known point); `slices`:
    the batch handed over as a Staged file there."""
    import os
    import time
    from pathlib import Path

    if hold:
        os.environ["KHO_TEST_HOLD"] = hold
    while start_after and not Path(start_after).exists():
        time.sleep(0.02)
    c = contract(dataset, mode, partitioned=True)
    batch_rows, file = BATCHES[name]
    wh = Warehouse(url)
    load(wh, lake, c, file, batch_rows if batch_rows is not None else big(200_000), load_id,
         slices=Path(slices) if slices else None)
    wh.engine.dispose()


if __name__ == "__main__":
    run_load(*sys.argv[1:])
