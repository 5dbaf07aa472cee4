"""The last steps of a dataset's flow: quarantined rows and curated rows into the warehouse and the lake.

Each call is one load: the table is brought to the contract's shape (`Warehouse.prepare`, schema evolve or
freeze), then, holding the table's lock, one transaction stages the rows, applies the contract's load mode
(`assets.modes`) and writes the load-log rows; the lake files are written before the commit and published
after it (`assets.lake`). A failure or a kill at any point before the commit leaves the previous state visible
and intact; running the same files again gives the same table.

The rows come as one DataFrame or as a `batches.Staged` file read a slice at a time: each slice is made into
quarantine or curated rows, typed, added to the SQL table (or to the one staging table merge and scd2 merge
from) and streamed into the lake's Parquet writers, all inside the one transaction; checks over the whole batch
(repeated keys, the periods replace_partition replaces) read only the columns they need. Memory follows the
slice size, not the export's.

The files to publish are recorded in `kho.lake_pending` in the load's transaction and the row is deleted once
they are in place. A kill -9 between the commit and the publish leaves the row: the next load of the table, and
every run of the dataset (`recover`, new files or not), publishes them first, under the table's lock, or writes
them again from the table when a temporary file is gone (another machine, a cleaned /tmp).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from assets import batches, children, lake, modes, privacy
from assets.batches import Staged
from assets.clean import ORIGINAL_PREFIX
from assets.contract import Contract
from assets.extract.csv import ORIGINAL, REASONS
from assets.flow import FILE_COLUMN, curated_rows, quarantine_rows, trusted_columns
from assets.session import Session, hold_for_test, session
from assets.warehouse import LoadError, SchemaChange, Warehouse, arrow_type, now

SNAPSHOT_MODES = ("merge", "scd2")  # the lake copy is the whole table after the load
PIECE_ROWS = 100_000  # the load's pieces: SQL starts sooner than with whole slices; 50,000 cost ~10% more CPU per row
FIRST_PIECE_ROWS = 10_000  # SQL waits for the first piece's pseudonyms with one core idle: keep that short
log = logging.getLogger(__name__)
_ARROW_DATES = {pa.date32(): pd.ArrowDtype(pa.date32())}


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


def write_quarantine(wh: Warehouse, lake_root: str | Path, contract: Contract, frame: pd.DataFrame | Staged,
                     load_id: str, hashes: list[str]) -> int:
    """Replace this batch's quarantined rows (by source file) in the warehouse and the lake; returns how many.
    `frame`: the validated rows with their reasons, a DataFrame or a Staged file (read a slice at a time)."""
    loaded_at = now()
    table = wh.quarantine_table(contract)
    wh.create(wh.lake_pending)
    change = wh.prepare(table, "evolve", index=(FILE_COLUMN,))  # all text, pipeline-owned: follows the contract
    count = 0
    with session(wh, table) as s:
        _publish_pending(s, lake_root, contract, "quarantine", table)  # a crashed load's files first
        modes.delete_files(s, table, hashes)
        stager = lake.Stager(lake_root, "quarantine", contract, "by_file", hashes, _descriptions(table),
                             background=True)
        try:
            typed = set(contract.columns)  # the quarantine keeps the text as sent, never the typed values
            for piece in batches.present(frame, REASONS, _columns(frame, lambda c: c not in typed)):
                data = wh.arrow(table, with_provenance(quarantine_rows(contract, piece), load_id, loaded_at))
                s.append(table, data, change.exact)
                stager.write(data)
                count += data.num_rows
            hold_for_test("quarantine")
            pending = stager.close()
        except BaseException:
            stager.abort()
            raise
        _commit(s, pending, _remember(s, lake_root, table, contract, "quarantine", load_id, "by_file", pending,
                                      hashes, []), "quarantine")
    return count


def load_curated(wh: Warehouse, lake_root: str | Path, contract: Contract, frame: pd.DataFrame | Staged,
                 load_id: str, files: list[dict], log_rows: list[dict]) -> LoadResult:
    """One transaction: the contract's load mode on the accepted rows, and the load-log rows. `frame`: the
    validated rows with their reasons, a DataFrame or a Staged file (read a slice at a time)."""
    loaded_at = now()
    mode = contract.load.mode
    table = wh.curated_table(contract)
    wh.create(wh.load_log, wh.lake_pending)
    change = wh.prepare(table, contract.load.schema_change, **_indexes(contract))
    _unique_keys(contract, frame)
    periods = _periods(contract, frame) if mode == "replace_partition" else None
    hashes = [f["sha256"] for f in files]
    if change.added or change.missing:  # the log says what the load did to the table
        note = f"schema evolved ({change.describe()})"
        log_rows = [{**r, "message": "; ".join(filter(None, [r.get("message"), note]))} for r in log_rows]
    layout = {"append": "by_file", "replace": "snapshot", "replace_partition": "by_partition"}.get(mode, "snapshot")
    with session(wh, table) as s:
        _publish_pending(s, lake_root, contract, "curated", table)  # a crashed load's files first
        # the lake's files are written by a thread of their own while the slices go into SQL
        stager = lake.Stager(lake_root, "curated", contract, layout, hashes, _descriptions(table), background=True)
        try:
            # merge and scd2 publish the whole table after the load: their slices go to SQL only
            slices = _held(batches.ahead(_curated(wh, contract, table, frame, load_id, loaded_at,
                                                  None if mode in SNAPSHOT_MODES else stager)))
            loaded = modes.apply(s, contract, table, slices, hashes, loaded_at, change.exact, periods)
            if hashes:
                s.execute(f"DELETE FROM {wh.name_of(wh.load_log)} WHERE load_id = ? AND dataset = ? "
                          f"AND file_sha256 IN ({', '.join('?' * len(hashes))})", [load_id, contract.dataset, *hashes])
            s.insert_rows(wh.load_log, log_rows)
            hold_for_test("curated")
            if mode in SNAPSHOT_MODES:
                for part in _scan(s, table):
                    stager.write(part)
            pending = stager.close()
        except BaseException:
            stager.abort()
            raise
        _commit(s, pending, _remember(s, lake_root, table, contract, "curated", load_id, layout, pending, hashes,
                                      sorted(stager.periods)), "curated")
    return LoadResult(loaded, wh.name_of(table).replace('"', ""),
                      lake.dataset_url(lake_root, "curated", contract.dataset), loaded_at, change)


def _curated(wh: Warehouse, contract: Contract, table: sa.Table, frame: pd.DataFrame | Staged, load_id: str,
             loaded_at: datetime, stager: lake.Stager | None) -> Iterator[pa.Table]:
    """The batch's accepted rows a slice at a time, typed as the table; each also into the lake's files."""
    trusted = trusted_columns(contract, frame)
    for piece in _accepted_pieces(frame):
        rows = with_provenance(curated_rows(contract, piece, trusted), load_id, loaded_at)
        if contract.load.mode == "scd2":
            rows["valid_from"] = loaded_at
        data = wh.arrow(table, rows)
        if stager is not None:
            stager.write(data)
        yield data


def _accepted_pieces(frame: pd.DataFrame | Staged) -> Iterator[pd.DataFrame]:
    """A Staged file's accepted rows in pieces of PIECE_ROWS, the rejected ones cut out in Arrow, before pandas;
    a frame whole (curated_rows drops its rejected rows)."""
    if isinstance(frame, pd.DataFrame):
        yield frame
        return
    original = lambda c: not (c.startswith(ORIGINAL_PREFIX) or c == ORIGINAL)  # noqa: E731  (quarantine only)
    size = FIRST_PIECE_ROWS
    for table in frame.tables(_columns(frame, original)):
        table = batches.drop_rows(table, table[REASONS].is_valid())
        at = 0
        while at < max(table.num_rows, 1):
            # dates stay Arrow dates: as Python date objects they cost ~0.2 s per 1M rows, there and back
            yield table.slice(at, size).to_pandas(types_mapper=_ARROW_DATES.get)
            at, size = at + size, PIECE_ROWS


def _held(slices: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The slices, as SQL takes them (the next one is made meanwhile: `batches.ahead`)."""
    for data in slices:
        yield data
        hold_for_test("curated-slice")  # tests: the slice is in SQL, the transaction open, more slices to come


def _columns(frame: pd.DataFrame | Staged, keep) -> list[str] | None:
    """The columns of a Staged file a pass reads (`keep(name)`): a narrower read. A DataFrame is passed whole."""
    return [c for c in frame.columns if keep(c)] if isinstance(frame, Staged) else None


def _scan(s: Session, table: sa.Table, where: str = "") -> Iterator[pa.Table]:
    """The table's rows (`WHERE where`) a slice at a time, typed as its columns."""
    for fetched in s.scan(table, where):
        if not fetched.num_columns:  # no rows through SQLAlchemy: no columns either
            fetched = pa.table({c.name: pa.array([], arrow_type(c)) for c in table.columns})
        yield _typed(table, fetched)


def _commit(s: Session, pending: lake.PendingWrite, record: str | None, zone: str) -> None:
    """SQL first, then the lake (still under the table's lock): the lake is never ahead of the warehouse. Then
    the load's kho.lake_pending row goes; until then a crash leaves it for `recover`."""
    try:
        s.commit()
    except BaseException:
        pending.abort()
        raise
    hold_for_test(f"committed-{zone}")
    pending.commit()
    if record:
        try:
            s.execute_committed(f"DELETE FROM {s.wh.name_of(s.wh.lake_pending)} WHERE id = ?", [record])
        except Exception as e:  # loaded and published: the row left only makes a later run write the files again
            log.warning("%s: published, but its kho.lake_pending row %s stays: %s", s.wh.name_of(s.table), record, e)


def _remember(s: Session, lake_root: str | Path, table: sa.Table, contract: Contract, zone: str, load_id: str,
              layout: str, pending: lake.PendingWrite, hashes: list[str], periods: list[str]) -> str | None:
    """Record in the load's transaction what it publishes after the commit: the staged files, and what `recover`
    needs to write them again from the table (layout, source files, the periods the files hold). Returns the
    row's id."""
    if not (pending.moves or pending.deletes):
        return None
    record = uuid.uuid4().hex
    try:
        periods = periods if layout == "by_partition" else []
        files = {"root": str(lake_root), "moves": [[str(tmp), str(dst)] for tmp, dst in pending.moves],
                 "deletes": list(pending.deletes), "hashes": list(hashes), "periods": periods}
        s.insert_rows(s.wh.lake_pending, [{
            "id": record, "table_name": s.wh.name_of(table), "dataset": contract.dataset, "zone": zone,
            "load_id": load_id, "layout": layout, "files": json.dumps(files, ensure_ascii=False),
            "created_at": now()}])
    except BaseException:
        pending.abort()
        raise
    return record


def recover(wh: Warehouse, lake_root: str | Path, contract: Contract) -> int:
    """Publish the lake files that committed loads of this dataset (its curated and quarantine tables, and its
    child tables') left unpublished: a crash between a load's SQL commit and its lake publish. Runs at the start
    of every run of the dataset, new files or not; returns how many loads' files it published."""
    family = [contract, *(children.child_contract(contract, name) for name in (contract.format.children or {}))]
    return _recover(wh, lake_root, [(c, zone) for c in family for zone in ("curated", "quarantine")])


def _recover(wh: Warehouse, lake_root: str | Path, targets: list[tuple[Contract, str]]) -> int:
    pending = wh.lake_pending
    wh.create(pending)
    wanted = {(c.dataset, zone): c for c, zone in targets}
    with wh.engine.connect() as conn:  # a glance without the lock first: nearly every run finds nothing
        found = {tuple(r) for r in conn.execute(sa.select(pending.c.dataset, pending.c.zone).distinct().where(
            pending.c.dataset.in_(sorted({d for d, _ in wanted}))))}
    done = 0
    for dataset, zone in sorted(found & wanted.keys()):
        contract = wanted[dataset, zone]
        table = wh.curated_table(contract) if zone == "curated" else wh.quarantine_table(contract)
        with session(wh, table) as s:
            done += _publish_pending(s, lake_root, contract, zone, table)
            s.commit()
    return done


def _publish_pending(s: Session, lake_root: str | Path, contract: Contract, zone: str, table: sa.Table) -> int:
    """Under the table's lock: each recorded load's staged files moved into place, or written again from the
    table when one is gone or incomplete; its kho.lake_pending row deleted in the session's transaction. A load
    does this first in its own session, so no load ever publishes over files a crashed one left for later."""
    name, records = s.wh.name_of(table), s.wh.name_of(s.wh.lake_pending)
    rows = [r for r in s.fetch(f"SELECT * FROM {records}").to_pylist() if r["table_name"] == name]
    fs, _ = lake.filesystem(lake_root)
    for row in sorted(rows, key=lambda r: (str(r["created_at"]), r["id"])):
        files = json.loads(row["files"])
        moves = [(tmp, dst) for tmp, dst in files["moves"]]
        if files.get("root") == str(lake_root) and all(lake.whole(tmp) for tmp, _ in moves):
            lake.PendingWrite(moves=moves, deletes=files["deletes"], fs=fs).commit()
        else:
            lake.PendingWrite(moves=moves).abort()  # whatever is left of them
            data = _rows(s, table, contract, row["layout"], files["hashes"], files["periods"])
            lake.stage(lake_root, zone, contract, data, row["layout"], files["hashes"], _descriptions(table)).commit()
        log.warning("%s: published the lake files of load %s that a crash had left unpublished", name,
                    row["load_id"])
        s.execute(f"DELETE FROM {records} WHERE id = ?", [row["id"]])
    return len(rows)


def _rows(s: Session, table: sa.Table, contract: Contract, layout: str, hashes: list[str],
          periods: list[str]) -> Iterator[pa.Table]:
    """What a load published, read back from the table a slice at a time: all of it (snapshot), its periods and
    its files' rows without a period (by_partition), or its files' rows (by_file)."""
    q = s.wh.quote
    text = lambda values: ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)  # noqa: E731
    where = []
    if layout == "by_partition" and periods:
        where.append(f"{q(contract.partitioning.key)} IN ({text(periods)})")
    if layout in ("by_partition", "by_file") and hashes:
        period = f"{q(contract.partitioning.key)} IS NULL AND " if layout == "by_partition" else ""
        where.append(f"({period}{q(FILE_COLUMN)} IN ({text(hashes)}))")
    if layout != "snapshot" and not where:
        where.append("1 = 0")
    return _scan(s, table, " OR ".join(where))


def _indexes(contract: Contract) -> dict:
    """What the mode's DELETEs look up (merge and scd2 have their primary key). replace_partition looks rows up
    by period, whose rows arrive together (a block-range index), and by source file only when they have no
    period: the file index holds those rows only (Warehouse.prepare)."""
    if contract.load.mode == "append":
        return {"index": (FILE_COLUMN,)}
    if contract.load.mode == "replace_partition":
        key = contract.partitioning.key
        return {"index": ((FILE_COLUMN, key),), "by_range": (key,)}
    return {}


def _accepted(frame: pd.DataFrame | Staged, columns: list[str]) -> pd.DataFrame:
    """The accepted rows of the whole batch, only `columns`: a narrow read."""
    got = batches.read(frame, [*columns, REASONS])
    return got.loc[got[REASONS].isna().to_numpy(), columns].reset_index(drop=True)


def _unique_keys(contract: Contract, frame: pd.DataFrame | Staged) -> None:
    """merge and scd2: one row per primary key in the whole batch (keys as the table holds them: pseudonyms)."""
    if contract.load.mode not in SNAPSHOT_MODES:
        return
    keys = _accepted(frame, list(contract.primary_key))
    if len(keys):
        keys = privacy.protect(contract, keys)
        dup = keys.duplicated(contract.primary_key, keep=False)
        if dup.any():
            shown = keys.loc[dup, contract.primary_key].drop_duplicates().head(5).to_dict("records")
            raise LoadError(f"{contract.dataset}: the batch holds one primary key more than once, e.g. {shown}")


def _periods(contract: Contract, frame: pd.DataFrame | Staged) -> list[str]:
    """replace_partition: the periods the accepted rows of the whole batch hold, before its first slice."""
    key, found = contract.partitioning.key, set()
    for piece in batches.slices(frame, [key, REASONS]):  # a slice at a time: the column of 10M rows is ~0.3 GB
        values = piece.loc[piece[REASONS].isna().to_numpy(), key]
        found.update(modes.periods_of(pa.table({key: pa.array(values, type=pa.string(), from_pandas=True)}), key))
    return sorted(found)


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
