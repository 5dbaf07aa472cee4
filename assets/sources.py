"""Sources that are not files: before archiving, pull what changed into the landing folder as an export file.

A database source becomes an ordinary export this way (a snapshot file, archived by hash like any other), so
everything downstream stays one flow. Contracts whose format is a file type have nothing to pull.

A SQL source is read incrementally: rows whose watermark column is above the last watermark pulled, which is
kept in the warehouse (`kho` zone, table `source_watermarks`, one row per pull). The snapshot is a UTF-8 CSV
under the contract's canonical column names, named by the watermark range it covers. The source URL comes
from the environment variable the contract names; it never reaches a message, a file name or the UI.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path, PurePosixPath

import sqlalchemy as sa

from assets.contract import Contract
from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN
from assets.warehouse import Warehouse, now


def watermarks(wh: Warehouse) -> sa.Table:
    return wh._table(
        "kho", "source_watermarks",
        sa.Column("dataset", sa.Text, nullable=False), sa.Column("watermark", sa.Text),
        sa.Column("file_name", sa.Text), sa.Column("rows", sa.BigInteger),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        comment="Mốc đọc tăng dần của các nguồn cơ sở dữ liệu: một dòng cho mỗi lần đọc",
    )


def last_watermark(wh: Warehouse, dataset: str) -> str | None:
    table = watermarks(wh)
    wh.create(table)
    with wh.engine.connect() as conn:
        return conn.execute(sa.select(table.c.watermark).where(table.c.dataset == dataset)
                            .order_by(table.c.pulled_at.desc()).limit(1)).scalar()


def source_name(contract: Contract) -> str:
    """How messages and the load log name a SQL source: the variable, never the URL (it may hold a password)."""
    fmt = contract.format
    return f"sql source ${fmt.url_env} ({'table ' + fmt.table if fmt.table else 'query'})"


def _stamp(value: object) -> str:
    """A watermark as part of a file name: 2026-03-01 08:00:00 -> 20260301T080000."""
    return re.sub(r"[^0-9A-Za-z]+", "", str(value).replace(" ", "T"))[:40]


def _text(value: object) -> str:
    # Space-separated ISO: read back by fromisoformat, and compares correctly as text where a source stores it so.
    return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else (
        value.isoformat() if isinstance(value, dt.date) else str(value))


def pull(contract: Contract, landing: Path, warehouse: Warehouse, full: bool = False) -> list[Path]:
    """Write a new snapshot file for `contract` into `landing`; returns it (none for file formats, or when
    nothing changed). `full` re-reads the whole source, ignoring the stored watermark.

    Raises ExportError (naming the source, never its URL) when the source cannot be read as the contract says;
    an unreachable server raises SQLAlchemy's OperationalError unchanged, for the orchestrator to retry."""
    fmt = contract.format
    if fmt.type != "sql":
        return []
    from assets.extract.sql import read_sql_source

    source = source_name(contract)
    url = os.environ.get(fmt.url_env or "")
    if not url:
        raise ExportError(source, f"environment variable {fmt.url_env} is not set (it holds the source URL)", "url")
    since = None if full or fmt.watermark is None else last_watermark(warehouse, contract.dataset)
    got, top = read_sql_source(
        url, source, {name: col.headers for name, col in contract.columns.items()},
        {name for name, col in contract.columns.items() if col.required},
        table=fmt.table, query=fmt.query, watermark=fmt.watermark, since=since)
    if got.frame.empty:
        return []

    pattern = PurePosixPath(contract.landing)
    folder = landing / pattern.parent
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    span = f"{_stamp(since) if since is not None else 'full'}_{_stamp(top) if top is not None else stamp}"
    path = folder / f"{contract.dataset}_{span}.csv"
    if not path.match(pattern.name):
        raise ExportError(source, f"snapshot name '{path.name}' does not match the contract's landing pattern "
                          f"'{contract.landing}'; use a pattern like '<folder>/*.csv'", "landing")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"  # hidden: the archive skips it until renamed
    got.frame.drop(columns=[ROW_COLUMN]).to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    os.replace(tmp, path)
    # Recorded only once the file is in place: a crash in between re-reads the same rows, never loses them.
    table = watermarks(warehouse)
    with warehouse.transaction() as conn:
        conn.execute(table.insert(), [{"dataset": contract.dataset, "watermark": None if top is None else _text(top),
                                       "file_name": str(path.relative_to(landing)), "rows": len(got.frame),
                                       "pulled_at": now()}])
    return [path]
