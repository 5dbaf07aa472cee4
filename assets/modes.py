"""Load modes: the SQL that moves a staged batch into its table, inside the load's one transaction.

- append: events. Idempotent by source file: the batch's files' earlier rows go, then the batch goes in.
- replace: the table becomes the batch.
- replace_partition: a period's export replaces exactly the periods it holds (rows without a period are
  replaced by source file, as in append).
- merge: upsert on the primary key. Rows that did not change are left alone (their provenance stays that of the
  load that last changed them); with a full snapshot, `on_missing` deletes or marks (_kho_deleted_at) the rest.
- scd2: registries. A key's tracked columns changing closes its current version (valid_to, is_current) and opens
  a new one; other columns are corrected in place; `on_missing: close` ends keys absent from the snapshot.
  Re-loading the same snapshot changes nothing.

A batch comes as one Arrow table or as its slices, in phases (`Apply`): the deletes first, once for the whole
batch (append: the batch's files; replace: everything; replace_partition: the periods of the whole batch, which
the caller names up front), then each slice goes in; merge and scd2 stage every slice into one staging table
and merge once at the end. Whatever the slicing, the table ends the same.

Portable SQL only (EXISTS, correlated subqueries, `?` parameters), so SQLite, PostgreSQL, DuckDB and other
SQLAlchemy databases run the same statements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from assets.contract import Contract
from assets.lake import FILE_COLUMN
from assets.session import Session
from assets.warehouse import DELETED_AT, SCD2, LoadError, arrow_type


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def periods_of(data: pa.Table, key: str) -> list[str]:
    """The periods (partition key values) a table's rows hold."""
    return sorted(pc.unique(data[key]).drop_null().to_pylist()) if data.num_rows and key in data.column_names \
        else []


def apply(s: Session, contract: Contract, table: sa.Table, data: pa.Table | Iterable[pa.Table], hashes: list[str],
          loaded_at: datetime, exact: bool = False, periods: Iterable[str] | None = None) -> int:
    """The contract's load mode on `data`: one table, or the slices of one batch. `exact`: the table is declared
    as kho declares it (Warehouse.prepare), so rows may go straight in. replace_partition needs the `periods` of
    the whole batch before its first slice (given one table, they are read from it). Returns the rows loaded."""
    if isinstance(data, pa.Table):
        if periods is None and contract.load.mode == "replace_partition":
            periods = periods_of(data, contract.partitioning.key)
        data = [data]
    phases = Apply(s, contract, table, hashes, loaded_at, exact, periods)
    phases.begin()
    for part in data:
        phases.add(part)
    phases.finish()
    return phases.rows


class Apply:
    """A load mode in phases: `begin` (the deletes), `add` per slice, `finish` (merge and scd2)."""

    def __init__(self, s: Session, contract: Contract, table: sa.Table, hashes: list[str], loaded_at: datetime,
                 exact: bool = False, periods: Iterable[str] | None = None):
        self.s, self.contract, self.table, self.hashes = s, contract, table, list(hashes)
        self.loaded_at, self.exact, self.mode = loaded_at, exact, contract.load.mode
        if self.mode not in ("append", "replace", "replace_partition", "merge", "scd2"):
            raise ValueError(f"unknown load mode {self.mode!r}")  # a new mode must be written here first
        if self.mode == "replace_partition" and periods is None:
            raise ValueError("replace_partition: the periods of the whole batch are needed before its slices")
        self.periods = set(periods or ())
        self.rows = 0
        self.cols: list[str] | None = None
        self.stg: str | None = None

    def begin(self) -> None:
        s, q, target = self.s, self.s.wh.quote, self.s.wh.name_of(self.table)
        if self.mode == "append":
            delete_files(s, self.table, self.hashes)
        elif self.mode == "replace":
            s.execute(f"DELETE FROM {target}")
        elif self.mode == "replace_partition":
            key, periods = self.contract.partitioning.key, sorted(self.periods)
            where, params = [], []
            if periods:
                where.append(f"{q(key)} IN ({_marks(periods)})")
                params += periods
            if self.hashes:
                where.append(f"({q(key)} IS NULL AND {q(FILE_COLUMN)} IN ({_marks(self.hashes)}))")
                params += self.hashes
            if where:
                s.execute(f"DELETE FROM {target} WHERE {' OR '.join(where)}", params)
        if self.mode in ("append", "replace", "replace_partition"):  # rows go straight in: after the deletes,
            s.defer_indexes(self.table)  # an empty table may get its indexes built after them

    def add(self, data: pa.Table) -> None:
        if self.cols is None:
            self.cols = data.column_names
        elif data.column_names != self.cols:
            raise ValueError(f"a slice's columns {data.column_names} differ from the first slice's {self.cols}")
        if self.mode == "replace_partition":  # its periods were deleted up front: a period not named would add
            extra = set(periods_of(data, self.contract.partitioning.key)) - self.periods  # to rows kept
            if extra:
                raise LoadError(f"{self.s.wh.name_of(self.table)}: a slice holds periods {sorted(extra)} that the "
                                f"batch's periods {sorted(self.periods)} did not name")
        self.rows += data.num_rows
        if self.mode in ("merge", "scd2"):
            self.stg = self.s.stage(data, into=self.stg)
        else:
            self.s.append(self.table, data, self.exact)

    def finish(self) -> None:
        if self.mode not in ("merge", "scd2"):
            self.s.build_deferred()
            return
        if self.stg is None:  # no slice at all: an empty snapshot, staged with the table's columns
            self.add(_empty(self.table, self.mode))
        target = self.s.wh.name_of(self.table)
        (_merge if self.mode == "merge" else _scd2)(self.s, self.contract, target, self.stg, self.cols,
                                                    self.loaded_at)


def _empty(table: sa.Table, mode: str) -> pa.Table:
    """No rows, with the columns a load stages (not the ones the mode itself fills)."""
    own = {c.name for c in SCD2 if c.name != "valid_from"} | {DELETED_AT.name} | (
        set() if mode == "scd2" else {"valid_from"})
    return pa.table({c.name: pa.array([], arrow_type(c)) for c in table.columns if c.name not in own})


def delete_files(s: Session, table: sa.Table, hashes: list[str]) -> None:
    if hashes:
        s.execute(f"DELETE FROM {s.wh.name_of(table)} WHERE {s.wh.quote(FILE_COLUMN)} IN ({_marks(hashes)})",
                  hashes)


def _sql_parts(s: Session, contract: Contract, cols: list[str]):
    q = s.wh.quote
    key = contract.primary_key
    match = " AND ".join(f"s.{q(k)} = t.{q(k)}" for k in key)

    def differ(columns: list[str]) -> str:  # NULL-safe "any of these differs", portable
        return " OR ".join(f"(s.{q(c)} <> t.{q(c)} OR (s.{q(c)} IS NULL) <> (t.{q(c)} IS NULL))"
                           for c in columns) or "FALSE"

    data = [c for c in cols if not c.startswith("_kho_") and c not in key and c != "valid_from"]
    return q, match, differ, data


def _merge(s: Session, contract: Contract, target: str, stg: str, cols: list[str], loaded_at: datetime) -> None:
    q, match, differ, data = _sql_parts(s, contract, cols)
    on_missing = contract.load.on_missing
    revived = " OR t._kho_deleted_at IS NOT NULL" if on_missing == "close" else ""
    s.execute(f"DELETE FROM {target} AS t WHERE EXISTS "
              f"(SELECT 1 FROM {stg} s WHERE {match} AND ({differ(data)}{revived}))")
    absent = f"NOT EXISTS (SELECT 1 FROM {stg} s WHERE {match})"
    if on_missing == "delete":
        s.execute(f"DELETE FROM {target} AS t WHERE {absent}")
    elif on_missing == "close":
        s.execute(f"UPDATE {target} AS t SET _kho_deleted_at = ? WHERE t._kho_deleted_at IS NULL AND {absent}",
                  [loaded_at])
    names = ", ".join(q(c) for c in cols)
    picked = ", ".join(f"s.{q(c)}" for c in cols)
    s.execute(f"INSERT INTO {target} ({names}) SELECT {picked} FROM {stg} s "
              f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {match})")


def _scd2(s: Session, contract: Contract, target: str, stg: str, cols: list[str], loaded_at: datetime) -> None:
    q, match, differ, data = _sql_parts(s, contract, cols)
    tracked = [c for c in (contract.load.tracked or data) if c in cols]
    untracked = [c for c in data if c not in tracked]
    current = "t.is_current = TRUE"
    close = f"UPDATE {target} AS t SET valid_to = ?, is_current = FALSE WHERE {current} AND "
    s.execute(close + f"EXISTS (SELECT 1 FROM {stg} s WHERE {match} AND ({differ(tracked)}))", [loaded_at])
    if contract.load.on_missing == "close":
        s.execute(close + f"NOT EXISTS (SELECT 1 FROM {stg} s WHERE {match})", [loaded_at])
    if untracked:  # corrections that are not a new version: in place, on the current version
        refreshed = untracked + [c for c in cols if c.startswith("_kho_")]
        sets = ", ".join(f"{q(c)} = (SELECT s.{q(c)} FROM {stg} s WHERE {match})" for c in refreshed)
        s.execute(f"UPDATE {target} AS t SET {sets} WHERE {current} AND "
                  f"EXISTS (SELECT 1 FROM {stg} s WHERE {match} AND ({differ(untracked)}))")
    names = ", ".join(q(c) for c in cols)
    picked = ", ".join(f"s.{q(c)}" for c in cols)
    s.execute(f"INSERT INTO {target} ({names}, is_current) SELECT {picked}, TRUE FROM {stg} s "
              f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {match} AND {current})")
