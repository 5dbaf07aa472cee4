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

Portable SQL only (EXISTS, correlated subqueries, `?` parameters), so SQLite, PostgreSQL, DuckDB and other
SQLAlchemy databases run the same statements.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from assets.contract import Contract
from assets.lake import FILE_COLUMN
from assets.session import Session


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def apply(s: Session, contract: Contract, table: sa.Table, data: pa.Table, hashes: list[str],
          loaded_at: datetime, exact: bool = False) -> None:
    """`exact`: the table is declared as kho declares it (Warehouse.prepare), so rows may go straight in."""
    q, target = s.wh.quote, s.wh.name_of(table)
    cols = data.column_names
    mode = contract.load.mode
    if mode == "append":
        delete_files(s, table, hashes)
        s.append(table, data, exact)
    elif mode == "replace":
        s.execute(f"DELETE FROM {target}")
        s.append(table, data, exact)
    elif mode == "replace_partition":
        key = contract.partitioning.key
        periods = sorted(pc.unique(data[key]).drop_null().to_pylist()) if data.num_rows else []
        where, params = [], []
        if periods:
            where.append(f"{q(key)} IN ({_marks(periods)})")
            params += periods
        if hashes:
            where.append(f"({q(key)} IS NULL AND {q(FILE_COLUMN)} IN ({_marks(hashes)}))")
            params += hashes
        if where:
            s.execute(f"DELETE FROM {target} WHERE {' OR '.join(where)}", params)
        s.append(table, data, exact)
    elif mode == "merge":
        _merge(s, contract, target, s.stage(data), cols, loaded_at)
    elif mode == "scd2":
        _scd2(s, contract, target, s.stage(data), cols, loaded_at)
    else:  # the contract's Literal makes this unreachable; a new mode must be written here first
        raise ValueError(f"unknown load mode {mode!r}")


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
