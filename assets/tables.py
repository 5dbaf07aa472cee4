"""Tables kho derives itself (marts, the data dictionary): declared once, replaced whole, documented everywhere.

A `TableSpec` names the table, its Vietnamese title and each column's type and Vietnamese description. `replace`
writes a frame as that table in one transaction (the table is recreated when its columns changed, so a derived
table never needs a migration) with the descriptions as SQL table/column comments, and its Parquet copy
`<lake>/<zone>/<table>/data.parquet` with the descriptions in the schema metadata, published only after the
commit (renamed in on disk, uploaded to an object store: `assets.lake.PendingWrite`), so the lake is never ahead
of the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from dagster import TableColumn, TableSchema

from assets import lake
from assets.warehouse import Warehouse

SQL = {"text": sa.Text, "integer": sa.BigInteger, "decimal": sa.Float, "date": sa.Date, "boolean": sa.Boolean}
ARROW = {"text": pa.string(), "integer": pa.int64(), "decimal": pa.float64(), "date": pa.date32(),
         "boolean": pa.bool_()}


@dataclass(frozen=True)
class TableSpec:
    zone: str  # warehouse zone: a PostgreSQL schema, a SQLite name prefix (Warehouse.locate)
    table: str
    title: str  # Vietnamese: the SQL table comment and the Parquet metadata
    columns: tuple[tuple[str, str, str], ...]  # (name, text|integer|decimal|date|boolean, Vietnamese description)

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.columns]

    def dagster_schema(self) -> TableSchema:
        return TableSchema(columns=[TableColumn(n, t, description=d) for n, t, d in self.columns])

    def sql_table(self, wh: Warehouse) -> sa.Table:
        schema, name = wh.locate(self.zone, self.table)
        key = f"{schema}.{name}" if schema else name
        if key in wh.metadata.tables:
            return wh.metadata.tables[key]
        cols = [sa.Column(n, SQL[t](), comment=d) for n, t, d in self.columns]
        return sa.Table(name, wh.metadata, *cols, schema=schema, comment=self.title)

    def arrow(self, frame: pd.DataFrame) -> pa.Table:
        fields = [pa.field(n, ARROW[t], metadata={"description": d.encode()}) for n, t, d in self.columns]
        meta = {"kho.dataset": self.table, "kho.title": self.title, "kho.zone": self.zone}
        schema = pa.schema(fields, metadata={k: v.encode() for k, v in meta.items()})
        return pa.Table.from_pandas(frame[self.names], schema=schema, preserve_index=False)

    def location(self, wh: Warehouse) -> str:
        schema, name = wh.locate(self.zone, self.table)
        return f"{schema}.{name}" if schema else name


def replace(wh: Warehouse, lake_root: str | Path, spec: TableSpec, frame: pd.DataFrame) -> int:
    """The table becomes exactly `frame` (one transaction); returns the rows written."""
    frame = frame[spec.names]
    table = spec.sql_table(wh)
    pending = lake.stage_file(lake_root, f"{spec.zone}/{spec.table}/data.parquet")  # published after commit
    with pending.publishing():
        pq.write_table(spec.arrow(frame), pending.moves[0][0], compression="zstd")
        with wh.transaction() as conn:
            if table.schema:
                conn.execute(sa.schema.CreateSchema(table.schema, if_not_exists=True))
            existing = sa.inspect(conn)
            if existing.has_table(table.name, schema=table.schema):
                have = [c["name"] for c in existing.get_columns(table.name, schema=table.schema)]
                if have != spec.names:  # derived: rebuilt, never migrated
                    table.drop(conn)
                    table.create(conn)
                else:
                    conn.execute(table.delete())
                    _refresh_comments(conn, table)
            else:
                table.create(conn)
            rows = wh.insert(conn, table, frame)
    return rows


def _refresh_comments(conn: sa.Connection, table: sa.Table) -> None:
    """A reworded description reaches an existing table too (PostgreSQL keeps comments; SQLite has none)."""
    if not conn.dialect.supports_comments:
        return
    conn.execute(sa.schema.SetTableComment(table))
    for column in table.columns:
        conn.execute(sa.schema.SetColumnComment(column))


def read(wh: Warehouse, table: sa.Table, columns: list[str]) -> pd.DataFrame:
    """The named columns of a warehouse table that exist (a column added to a contract later is all missing);
    an absent table reads as no rows."""
    with wh.engine.connect() as conn:
        inspector = sa.inspect(conn)
        present = ({c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
                   if inspector.has_table(table.name, schema=table.schema) else None)
        if present is None:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        wanted = [table.c[c] for c in columns if c in present]
        frame = pd.DataFrame(conn.execute(sa.select(*wanted)).all(), columns=[c.name for c in wanted])
    for c in columns:
        if c not in frame:
            frame[c] = None
    return frame[columns]
