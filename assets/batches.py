"""Rows between steps, a slice at a time: exports larger than memory go through in bounded pieces.

A step writes its rows to one Parquet file on disk, a row group per slice (`Writer`); the next step reads them
back a slice at a time (`Staged.slices`) or, for checks that need the whole file (uniqueness of a key, row
counts), only the columns they need (`Staged.read(columns)`). Peak memory then grows with the slice size and
the width of those columns, not with the size of the export. A small export is one slice.

KHO_SLICE_ROWS sets the slice size (default 200,000 rows: ~0.3-0.5 GB for an 18-column export with its
original text beside the typed values).
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DEFAULT_SLICE_ROWS = 200_000
FEW_ROWS = 50_000  # rows `take` and `Staged.present` fetch alone, at once (a quarantine is usually a few hundred)
T = TypeVar("T")


def slice_rows() -> int:
    return max(1, int(os.environ.get("KHO_SLICE_ROWS", "") or DEFAULT_SLICE_ROWS))


class Staged:
    """A step's rows in a Parquet file, read back in slices or by column.

    `overlay`: a second file with the same row groups whose columns replace the first's: validation writes only
    the reasons it changed, not every column again."""

    def __init__(self, path: str | Path, overlay: str | Path | None = None):
        self.path = Path(path)
        self.overlay = Path(overlay) if overlay else None
        self._meta = pq.ParquetFile(self.path).metadata
        self._top = pq.ParquetFile(self.overlay).schema_arrow.names if self.overlay else []

    @property
    def num_rows(self) -> int:
        return self._meta.num_rows

    def note(self, name: str) -> str | None:
        """What the step that wrote the file noted about its rows (Writer's `notes`)."""
        value = (self._meta.metadata or {}).get(name.encode())
        return value.decode() if value is not None else None

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self._meta.schema.names, *self._top]))

    def __len__(self) -> int:
        return self.num_rows

    def slices(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """Each row group as a frame indexed 0..k-1; a file without rows gives one empty frame (its columns)."""
        for table in self.tables(columns):
            yield table.to_pandas()

    def tables(self, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Each row group as an Arrow table (cheaper than a frame where pandas is not needed); the next one is
        read (outside the GIL) while the caller works on this one."""
        return ahead(self._tables(columns))

    def _tables(self, columns: list[str] | None) -> Iterator[pa.Table]:
        names = columns or self.columns
        files = self._files(names)
        for i in range(max(self._meta.num_row_groups, 1)):
            yield self._group(files, names, i)

    def present(self, column: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """Each row group's rows whose `column` is present, as a frame; the other columns are read only for those
        rows (the quarantine of a clean export reads its reasons and nothing else). No such row at all gives one
        empty frame (its columns)."""
        names = columns or self.columns
        files, marks = self._files(names), self._files([column])
        at = [np.flatnonzero(self._group(marks, [column], i)[column].is_valid().to_numpy(zero_copy_only=False))
              for i in range(self._meta.num_row_groups)]
        total = sum(len(rows) for rows in at)
        if not total:
            yield self._group(files, names, 0).slice(0, 0).to_pandas()
        elif total <= FEW_ROWS:
            starts = np.cumsum([0] + [self._meta.row_group(i).num_rows for i in range(len(at))])
            fetched = self.fetch(names, np.concatenate([rows + start for rows, start in zip(at, starts)]))
            done = 0
            for rows in filter(len, at):
                yield fetched.slice(done, len(rows)).to_pandas()
                done += len(rows)
        else:
            for i, rows in enumerate(at):
                if len(rows):
                    table = self._group(files, names, i, threads=True)
                    yield table.filter(table[column].is_valid()).to_pandas()

    def fetch(self, names: list[str], positions: np.ndarray) -> pa.Table:
        """The rows at `positions` (ascending) of the columns `names`, fetched by DuckDB in one query per file: it
        decodes no other row (the quarantine's 18 rows of a 1M-row export in ~0.1 s, against ~0.5 s to read
        every row of their 45 columns; 8 repeated keys' rows in 0.07 s against 0.3 s)."""
        import duckdb

        got: dict[str, pa.ChunkedArray] = {}
        with duckdb.connect() as db:
            db.execute("CREATE TEMP TABLE wanted AS SELECT unnest(?::BIGINT[]) AS pos", [positions.tolist()])
            for path, cols in self._parts(names):
                if not cols:
                    continue
                quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
                table = db.sql(f"SELECT {quoted} FROM read_parquet(?, file_row_number = true) WHERE file_row_number "
                               f"IN (SELECT pos FROM wanted) ORDER BY file_row_number",
                               params=[str(path)]).to_arrow_table()
                schema = pq.read_schema(path)  # as pyarrow reads the file
                got.update((c, table[c].cast(schema.field(c).type)) for c in cols)
        return pa.table({c: got[c] for c in names})

    def _parts(self, names: list[str]) -> list[tuple[Path, list[str]]]:
        """The files (the main one, the overlay) holding these columns, and which of them each holds."""
        top = [c for c in names if c in self._top]
        main = (self.path, [c for c in names if c not in top])
        return [main, (self.overlay, top)] if top else [main]

    def _files(self, names: list[str]) -> list[tuple[pq.ParquetFile, list[str]]]:
        return [(pq.ParquetFile(path), cols) for path, cols in self._parts(names)]

    def _group(self, files: list[tuple[pq.ParquetFile, list[str]]], names: list[str], i: int,
               threads: bool = False) -> pa.Table:
        """Row group i of the columns `names` (no columns' rows when the file has no row group). In one thread
        unless told: a reader ahead of its caller has a thread of its own, and Arrow's pool only adds overhead."""
        empty = not self._meta.num_row_groups
        parts = [f.schema_arrow.empty_table().select(cols) if empty
                 else f.read_row_group(i, columns=cols, use_threads=threads) for f, cols in files]
        got = {c: part[c] for part in parts for c in part.column_names}
        return pa.table({c: got[c] for c in names})

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole file (or the named columns of it) as one frame."""
        if not self.overlay:
            return pq.read_table(self.path, columns=columns).to_pandas()
        return pa.concat_tables(self.tables(columns)).to_pandas()

    def without(self, row_groups: set[int]) -> "Staged":
        """The same file without these row groups (the slices of an export that failed part-way)."""
        if not row_groups:
            return self
        f = pq.ParquetFile(self.path)
        with Writer(self.path) as w:
            for i in range(f.metadata.num_row_groups):
                if i not in row_groups:
                    w.write_arrow(f.read_row_group(i))
            if not w.row_groups:  # every slice dropped: the file keeps its columns and their types
                w.write_arrow(f.schema_arrow.empty_table())
            return w.close()


class Selection:
    """Some rows of a frame or a Staged file (positions, in order), read by column: what validation needs of
    the rows that survived cleaning."""

    def __init__(self, rows: "pd.DataFrame | Staged", positions, columns: list[str]):
        self.rows, self.positions, self.columns = rows, positions, columns

    @property
    def num_rows(self) -> int:
        return len(self.positions)

    def __len__(self) -> int:
        return self.num_rows

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        return take(self.rows, self.positions, self.columns if columns is None else columns)


class Writer:
    """Appends frames as row groups of one Parquet file; `close()` returns the Staged file.

    The first frame fixes the schema; later frames are cast to it (a slice whose column is all missing
    comes out of pandas as another type)."""

    def __init__(self, path: str | Path, types: dict[str, pa.DataType] | None = None, repeated: Iterable[str] = (),
                 notes: dict[str, str] | None = None):
        """`repeated`: columns holding one value for many rows (the source file's hash, the period), stored
        with a dictionary: reading the file's hash back then costs half as much. `notes`: what the writer
        vouches for about the rows, kept in the file (`Staged.note`)."""
        self.path = Path(path)
        self._repeated = list(repeated)
        self._notes = {k.encode(): v.encode() for k, v in (notes or {}).items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._types = types or {}
        self.row_groups = 0  # written so far

    def write(self, frame: pd.DataFrame) -> None:
        self.write_arrow(pa.Table.from_pandas(frame, preserve_index=False))

    def write_arrow(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = _nullable(table.schema, self._types)
            self._schema = self._schema.with_metadata({**(self._schema.metadata or {}), **self._notes})
            # A staging file is read back once, then dropped: speed over size (lz4, dictionaries for `repeated`
            # columns only, no statistics: ~30% faster to write than the defaults on 1M dossier rows)
            self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="lz4", write_statistics=False,
                                            use_dictionary=[c for c in self._repeated if c in self._schema.names])
        elif table.schema != self._schema:
            table = _conform(table, self._schema)
        self._writer.write_table(table.cast(self._schema), row_group_size=max(1, table.num_rows))
        self.row_groups += 1

    def close(self, empty: pd.DataFrame | None = None) -> Staged:
        """Publish the file; with no slice written, `empty` (a frame, possibly without rows) gives its columns."""
        if self._writer is None:
            self.write(empty if empty is not None else pd.DataFrame())
        self._writer.close()
        os.replace(self._tmp, self.path)
        return Staged(self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is not None:
            self.abort()


def _nullable(schema: pa.Schema, types: dict[str, pa.DataType]) -> pa.Schema:
    """A column with every value missing in the first slice takes its declared type (text if none), so the
    slices after it fit."""
    return pa.schema([pa.field(f.name, types.get(f.name, pa.large_string())) if pa.types.is_null(f.type) else f
                      for f in schema], metadata=schema.metadata)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for field in schema:
        col = table[field.name] if field.name in table.column_names else pa.nulls(table.num_rows, field.type)
        if pa.types.is_null(col.type):
            col = pa.nulls(table.num_rows, field.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def write(path: str | Path, pieces: Iterable[pd.DataFrame | pa.Table]) -> Staged:
    with Writer(path) as w:
        for piece in pieces:
            w.write(piece) if isinstance(piece, pd.DataFrame) else w.write_arrow(piece)
        return w.close()


def take(rows: pd.DataFrame | Staged, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The rows at these positions (ascending), indexed 0..k-1; of a Staged file only they become pandas (a few
    are fetched alone, many read with their row groups)."""
    if isinstance(rows, pd.DataFrame):
        return rows[columns].take(positions).reset_index(drop=True)
    if len(positions) <= FEW_ROWS:
        return rows.fetch(columns, positions).to_pandas()
    parts, at = [], 0
    for table in rows.tables(columns):
        lo, hi = np.searchsorted(positions, [at, at + table.num_rows])
        if hi > lo:
            parts.append(table.take(pa.array(positions[lo:hi] - at)))
        at += table.num_rows
    return (pa.concat_tables(parts) if parts else next(rows.tables(columns)).slice(0, 0)).to_pandas()


def slices(rows: pd.DataFrame | Staged, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """A frame is one slice; a Staged file gives its row groups."""
    if isinstance(rows, pd.DataFrame):
        yield rows if columns is None else rows[columns]
    else:
        yield from rows.slices(columns)


def present(rows: pd.DataFrame | Staged, column: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The rows whose `column` is present: a frame's as one slice, a Staged file's as `Staged.present` reads them."""
    if isinstance(rows, pd.DataFrame):
        yield (rows if columns is None else rows[columns])[rows[column].notna().to_numpy()]
    else:
        yield from rows.present(column, columns)


def drop_rows(table: pa.Table, drop: pa.ChunkedArray | pa.Array) -> pa.Table:
    """The table without the rows marked True in `drop`. A few rows (rejected rows usually are) are cut out
    around as zero-copy slices; a filter would copy every column (~0.4 s per 1M dossier rows)."""
    at = np.flatnonzero(drop.to_numpy(zero_copy_only=False))
    if not len(at):
        return table
    if len(at) > 64:
        return table.filter(pc.invert(drop))
    starts, ends = np.r_[0, at + 1], np.r_[at, table.num_rows]
    return pa.concat_tables([table.slice(a, b - a) for a, b in zip(starts, ends)])


def read(rows: pd.DataFrame | Staged | Selection, columns: list[str] | None = None) -> pd.DataFrame:
    """The whole of a frame or a Staged file (or a Selection of one), or only the named columns."""
    if isinstance(rows, pd.DataFrame):
        return rows if columns is None else rows[columns]
    return rows.read(columns)


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of `items`, computed in a thread of their own up to `depth` items ahead of the caller.

    For two stages of one pass that each spend most of their time outside the GIL or in another process (Arrow,
    Parquet, an ADBC ingest, the database server): on two cores the next slice is made while this one is
    consumed. An error in `items` is raised here, at the item it stopped at; when the caller stops early (or
    fails), the thread stops after the item it is making.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as e:  # noqa: BLE001  (raised again in the caller's thread)
            put((_END, e))
        finally:  # a generator stopped early is closed here, in its own thread (its files, its inner threads)
            if hasattr(items, "close"):
                items.close()

    thread = threading.Thread(target=run, name="kho ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


_END = object()
