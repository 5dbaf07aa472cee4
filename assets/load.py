"""The last steps of a dataset's flow: quarantined rows and curated rows into the warehouse and the lake.

Each call is one load: the table is brought to the contract's shape (`Warehouse.prepare`, schema evolve or
freeze), then, holding the table's lock, one transaction stages the rows, applies the contract's load mode
(`assets.modes`) and writes the load-log rows; the lake files are written before the commit and published
after it (`assets.lake`). A failure or a kill at any point before the commit leaves the previous state visible
and intact; running the same files again gives the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets import lake, modes
from assets.contract import Contract
from assets.flow import FILE_COLUMN, curated_rows, quarantine_rows
from assets.session import hold_for_test, session
from assets.warehouse import LoadError, SchemaChange, Warehouse, arrow_type, now

SNAPSHOT_MODES = ("merge", "scd2")  # the lake copy is the whole table after the load


@dataclass
class LoadResult:
    rows: int  # rows of the batch loaded
    table: str  # where, in SQL
    lake: str  # where, in the lake
    loaded_at: datetime  # the load's timestamp: _kho_loaded_at, and valid_from / valid_to in scd2
    schema: SchemaChange = field(default_factory=lambda: SchemaChange(""))

    def metadata(self) -> dict:
        out = {"table": self.table, "lake": self.lake}
        if self.schema.added:
            out["schema_added_columns"] = ", ".join(self.schema.added)
        if self.schema.missing:
            out["schema_missing_columns"] = ", ".join(self.schema.missing)
        return out


def with_provenance(frame: pd.DataFrame, load_id: str, loaded_at: datetime) -> pd.DataFrame:
    frame = frame.copy(deep=False)  # two new columns only: copy-on-write keeps the caller's frame intact
    frame["_kho_load_id"] = load_id
    frame["_kho_loaded_at"] = loaded_at
    return frame


def write_quarantine(wh: Warehouse, lake_root: str | Path, contract: Contract, frame: pd.DataFrame,
                     load_id: str, hashes: list[str]) -> int:
    """Replace this batch's quarantined rows (by source file) in the warehouse and the lake."""
    rows = with_provenance(quarantine_rows(contract, frame), load_id, now())
    table = wh.quarantine_table(contract)
    change = wh.prepare(table, "evolve", index=(FILE_COLUMN,))  # all text, pipeline-owned: follows the contract
    data = wh.arrow(table, rows)
    with session(wh, table) as s:
        modes.delete_files(s, table, hashes)
        s.append(table, data, change.exact)
        hold_for_test("quarantine")
        pending = lake.stage(lake_root, "quarantine", contract, data, "by_file", hashes, _descriptions(table))
        _commit(s, pending)
    return len(rows)


def load_curated(wh: Warehouse, lake_root: str | Path, contract: Contract, frame: pd.DataFrame, load_id: str,
                 files: list[dict], log_rows: list[dict]) -> LoadResult:
    """One transaction: the contract's load mode on the accepted rows, and the load-log rows."""
    loaded_at = now()
    rows = with_provenance(curated_rows(contract, frame), load_id, loaded_at)
    mode = contract.load.mode
    if mode == "scd2":
        rows["valid_from"] = loaded_at
    table = wh.curated_table(contract)
    wh.create(wh.load_log)
    change = wh.prepare(table, contract.load.schema_change, index=_indexes(contract))
    data = wh.arrow(table, rows)
    _unique_keys(contract, rows)
    hashes = [f["sha256"] for f in files]
    if change.added or change.missing:  # the log says what the load did to the table
        note = f"schema evolved ({change.describe()})"
        log_rows = [{**r, "message": "; ".join(filter(None, [r.get("message"), note]))} for r in log_rows]
    with session(wh, table) as s:
        modes.apply(s, contract, table, data, hashes, loaded_at, change.exact)
        if hashes:
            s.execute(f"DELETE FROM {wh.name_of(wh.load_log)} WHERE load_id = ? AND dataset = ? "
                      f"AND file_sha256 IN ({', '.join('?' * len(hashes))})", [load_id, contract.dataset, *hashes])
        s.insert_rows(wh.load_log, log_rows)
        hold_for_test("curated")
        if mode in SNAPSHOT_MODES:
            published, layout = _typed(table, s.fetch(f"SELECT * FROM {wh.name_of(table)}")), "snapshot"
        else:
            published = data
            layout = {"append": "by_file", "replace": "snapshot", "replace_partition": "by_partition"}[mode]
        pending = lake.stage(lake_root, "curated", contract, published, layout, hashes, _descriptions(table))
        _commit(s, pending)
    return LoadResult(data.num_rows, wh.name_of(table).replace('"', ""),
                      lake.dataset_url(lake_root, "curated", contract.dataset), loaded_at, change)


def _commit(s, pending: lake.PendingWrite) -> None:
    """SQL first, then the lake (still under the table's lock): the lake is never ahead of the warehouse."""
    try:
        s.commit()
    except BaseException:
        pending.abort()
        raise
    pending.commit()


def _indexes(contract: Contract) -> tuple[str, ...]:
    """What the mode's DELETEs look up (merge and scd2 have their primary key)."""
    if contract.load.mode == "append":
        return (FILE_COLUMN,)
    if contract.load.mode == "replace_partition":
        return (contract.partitioning.key, FILE_COLUMN)
    return ()


def _unique_keys(contract: Contract, rows: pd.DataFrame) -> None:
    if contract.load.mode in SNAPSHOT_MODES and len(rows):
        dup = rows.duplicated(contract.primary_key, keep=False)
        if dup.any():
            keys = rows.loc[dup, contract.primary_key].drop_duplicates().head(5).to_dict("records")
            raise LoadError(f"{contract.dataset}: the batch holds one primary key more than once, e.g. {keys}")


def _descriptions(table) -> dict[str, str]:
    return {c.name: c.comment for c in table.columns if c.comment}


def _typed(table, fetched: pa.Table) -> pa.Table:
    """Rows read back from the database, typed as the table's columns (SQLite hands back text and 0/1)."""
    arrays, names = [], []
    for column in table.columns:
        if column.name not in fetched.column_names:
            continue
        values, want = fetched[column.name], arrow_type(column)
        if pa.types.is_timestamp(want) and pa.types.is_string(values.type):
            values = pc.cast(values, pa.timestamp("us"))
        arrays.append(pc.cast(values, want))
        names.append(column.name)
    return pa.Table.from_arrays(arrays, names=names)
