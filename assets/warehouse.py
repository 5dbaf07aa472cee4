"""The warehouse: SQL tables through SQLAlchemy, each load one transaction.

Zones: `curated` (what analysts query), `quarantine` (rejected rows with reasons and original values) and
`kho` (the pipeline's own tables: load log, raw manifest, check results). On PostgreSQL a zone is a schema;
SQLite has none, so there the zone is a table-name prefix (curated tables keep their plain name).

Bulk rows go in by the fastest correct path the dialect offers inside the same transaction as the delete and
the load-log row: PostgreSQL COPY through psycopg, SQLite executemany on the driver cursor, and plain
SQLAlchemy executemany for any other database.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from assets.contract import Contract

SQL_TYPES = {
    "text": sa.Text, "tax_code": sa.Text, "citizen_id": sa.Text, "phone": sa.Text, "ward_code": sa.Text,
    "integer": sa.BigInteger, "decimal": sa.Float, "date": sa.Date, "boolean": sa.Boolean,
    "datetime": lambda: sa.DateTime(timezone=True),
}

PROVENANCE = [
    sa.Column("_kho_load_id", sa.Text, nullable=False, comment="Mã lần nạp"),
    sa.Column("_kho_file_sha256", sa.Text, nullable=False, comment="Mã băm SHA-256 của tệp nguồn"),
    sa.Column("_kho_row", sa.Integer, comment="Dòng trong tệp nguồn"),
    sa.Column("_kho_loaded_at", sa.DateTime(timezone=True), nullable=False, comment="Thời điểm nạp (UTC)"),
]


def _copy(columns: list[sa.Column]) -> list[sa.Column]:
    return [c._copy() for c in columns]


class Warehouse:
    def __init__(self, url: str):
        self.url = url
        self.engine = sa.create_engine(url)
        self.dialect = self.engine.dialect.name
        self.metadata = sa.MetaData()
        self._meta_tables()

    # ---- names -------------------------------------------------------------------------------------
    def locate(self, zone: str, table: str) -> tuple[str | None, str]:
        if self.dialect == "postgresql":
            return zone, table
        return None, table if zone == "curated" else f"{zone}_{table}"

    def _table(self, zone: str, name: str, *columns: sa.Column, comment: str | None = None) -> sa.Table:
        schema, table = self.locate(zone, name)
        key = f"{schema}.{table}" if schema else table
        if key in self.metadata.tables:
            return self.metadata.tables[key]
        return sa.Table(table, self.metadata, *columns, schema=schema, comment=comment)

    def _meta_tables(self) -> None:
        self.load_log = self._table(
            "kho", "load_log",
            sa.Column("load_id", sa.Text, nullable=False), sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("department", sa.Text), sa.Column("partition_key", sa.Text),
            sa.Column("file_name", sa.Text), sa.Column("file_sha256", sa.Text),
            sa.Column("rows_read", sa.BigInteger), sa.Column("rows_loaded", sa.BigInteger),
            sa.Column("rows_quarantined", sa.BigInteger), sa.Column("check_outcome", sa.Text),
            sa.Column("status", sa.Text, nullable=False), sa.Column("message", sa.Text),
            sa.Column("started_at", sa.DateTime(timezone=True)), sa.Column("finished_at", sa.DateTime(timezone=True)),
            comment="Nhật ký nạp: một dòng cho mỗi tệp của mỗi lần nạp",
        )
        self.manifest = self._table(
            "kho", "raw_manifest",
            sa.Column("sha256", sa.Text, nullable=False), sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("department", sa.Text), sa.Column("file_name", sa.Text, nullable=False),
            sa.Column("size", sa.BigInteger), sa.Column("received_at", sa.DateTime(timezone=True)),
            sa.Column("archive_path", sa.Text),
            sa.UniqueConstraint("dataset", "sha256", "file_name"),
            comment="Danh mục tệp gốc đã lưu trữ (nguyên vẹn, định danh bằng SHA-256)",
        )
        self.check_results = self._table(
            "kho", "check_results",
            sa.Column("load_id", sa.Text, nullable=False), sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("expectation", sa.Text), sa.Column("column_name", sa.Text), sa.Column("severity", sa.Text),
            sa.Column("success", sa.Boolean), sa.Column("unexpected_count", sa.BigInteger),
            sa.Column("observed_value", sa.Text), sa.Column("checked_at", sa.DateTime(timezone=True)),
            comment="Kết quả kiểm tra chất lượng dữ liệu theo từng lần nạp",
        )

    def curated_table(self, contract: Contract) -> sa.Table:
        cols = [sa.Column(n, SQL_TYPES[c.type](), comment=c.description) for n, c in contract.columns.items()]
        if contract.partitioning:
            cols.append(sa.Column(contract.partitioning.key, sa.Text, comment="Kỳ báo cáo"))
        return self._table("curated", contract.table, *cols, *_copy(PROVENANCE), comment=contract.title)

    def quarantine_table(self, contract: Contract) -> sa.Table:
        # Original values as the department wrote them: always text, whatever the column's type.
        cols = [sa.Column(n, sa.Text, comment=c.description) for n, c in contract.columns.items()]
        return self._table(
            "quarantine", contract.table, *cols,
            sa.Column("_kho_reasons", sa.Text, nullable=False, comment="Lý do loại (mã lỗi:cột)"),
            sa.Column("_kho_original", sa.Text, comment="Dòng gốc không tách được thành cột"),
            *_copy(PROVENANCE), comment=f"Dòng bị loại: {contract.title}",
        )

    # ---- schema ------------------------------------------------------------------------------------
    def create(self, *tables: sa.Table) -> None:
        with self.engine.begin() as conn:
            for schema in {t.schema for t in tables} - {None}:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            for table in tables:
                table.create(conn, checkfirst=True)

    # ---- loading -----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE") if not conn.in_transaction() else None
            yield conn

    def insert(self, conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        names = [c.name for c in table.columns if c.name in frame.columns]
        data = pa.Table.from_pandas(frame[names], preserve_index=False)
        if self.dialect == "postgresql":
            return _copy_postgres(conn, table, data)
        rows = _python_rows(data, sqlite=self.dialect == "sqlite")
        if self.dialect == "sqlite":
            cols = ", ".join(f'"{n}"' for n in names)
            sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({", ".join("?" * len(names))})'
            conn.connection.driver_connection.cursor().executemany(sql, rows)
        else:
            conn.execute(table.insert(), [dict(zip(names, r)) for r in rows])
        return len(frame)


def _python_rows(data: pa.Table, sqlite: bool) -> list[tuple]:
    columns = []
    for col in data.columns:
        if sqlite and pa.types.is_timestamp(col.type):
            col = pc.strftime(col, "%Y-%m-%d %H:%M:%S.000000")  # SQLAlchemy's SQLite DateTime text form
        elif sqlite and pa.types.is_date(col.type):
            col = pc.cast(col, pa.string())
        columns.append(col.to_pylist())
    return list(zip(*columns))


def _copy_postgres(conn: sa.Connection, table: sa.Table, data: pa.Table) -> int:
    cursor = conn.connection.driver_connection.cursor()
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    cols = ", ".join(f'"{n}"' for n in data.column_names)
    with cursor.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
        for batch in data.to_batches(max_chunksize=50_000):
            for row in zip(*(c.to_pylist() for c in batch.columns)):
                copy.write_row(row)
    return data.num_rows


def now() -> datetime:
    return datetime.now(timezone.utc)
