"""The Parquet lake: zstd files in Hive-style partitions (ky=2026-10/), one folder per dataset and zone.

The root is KHO_LAKE_URL: a local folder (default <data>/lake) or any fsspec URL, e.g. s3://bucket/prefix for an
S3-compatible store (credentials and endpoint from the standard AWS_* environment variables, never from code).

A reader never sees half a file, and the lake is never ahead of the warehouse:
- local disk: each file is written under a hidden temporary name in its final folder and renamed into place
  after the SQL commit (a rename within one filesystem is atomic);
- object stores have no rename: each file is written to a local temporary file before the commit and uploaded
  to its final key after it. A PUT (or a completed multipart upload) shows an object whole or not at all, so
  this is as atomic as a rename, without a temp-key copy + delete that doubles the traffic and leaves garbage
  behind a crash.
Files a load replaces are deleted after the new ones are in place. Names are stable (data.parquet per
partition, part-<source sha256[:16]>.parquet per source file), so a re-run overwrites instead of adding.
A load killed after its commit but before its publish is caught up by the next run (`assets.load.recover`).
Dimensions, marts and the catalogue write their single files through `stage_file`, on the same root.
"""

from __future__ import annotations

import json
import os
import posixpath
import queue
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from assets.contract import Contract

FILE_COLUMN = "_kho_file_sha256"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # Hive's folder for a NULL partition value; DuckDB reads it as NULL


def filesystem(root: str | Path) -> tuple[Any, str]:
    """(fsspec filesystem, path of the root on it)."""
    fs, path = fsspec.core.url_to_fs(str(root))
    return fs, path.rstrip("/")


def dataset_url(root: str | Path, zone: str, dataset: str) -> str:
    return f"{str(root).rstrip('/')}/{zone}/{dataset}"


def _local(fs) -> bool:
    return isinstance(fs, LocalFileSystem)


def schema_metadata(contract: Contract, table: pa.Table, descriptions: dict[str, str] | None = None) -> pa.Table:
    """Vietnamese descriptions on each field and the dataset's identity on the schema."""
    descriptions = descriptions or {}
    fields = []
    for f in table.schema:
        col = contract.columns.get(f.name)
        meta = {"description": col.description, "kho_type": col.type} if col else {}
        if f.name in descriptions and not col:
            meta = {"description": descriptions[f.name]}
        fields.append(f.with_metadata({k: str(v).encode() for k, v in meta.items()}) if meta else f)
    meta = {"kho.dataset": contract.dataset, "kho.title": contract.title, "kho.department": contract.department.name}
    return table.cast(pa.schema(fields, metadata={k: v.encode() for k, v in meta.items()}))


@dataclass
class PendingWrite:
    """Files written under temporary names; `commit` publishes them and removes the files they replace."""

    moves: list[tuple[Any, Any]] = field(default_factory=list)  # (temporary local file, final path on `fs`)
    deletes: list[str] = field(default_factory=list)
    fs: Any = None  # None: the local disk

    def commit(self) -> None:
        fs = self.fs or LocalFileSystem()
        for tmp, dst in self.moves:
            if _local(fs):
                os.replace(tmp, dst)
            else:
                fs.put_file(str(tmp), str(dst))
                Path(tmp).unlink(missing_ok=True)
        for path in self.deletes:
            try:
                fs.rm_file(path)
            except FileNotFoundError:
                pass

    def abort(self) -> None:
        for tmp, _ in self.moves:
            Path(tmp).unlink(missing_ok=True)

    def add(self, dst: str) -> str:
        """Where to write `dst` first: beside it on disk (the rename is atomic), a local temp file for object
        stores (uploaded whole on commit)."""
        if _local(self.fs or LocalFileSystem()):
            (self.fs or LocalFileSystem()).makedirs(posixpath.dirname(dst), exist_ok=True)
            tmp = f"{posixpath.dirname(dst)}/.{posixpath.basename(dst)}.{uuid.uuid4().hex}.tmp"
        else:
            handle, tmp = tempfile.mkstemp(suffix=".tmp")
            os.close(handle)
        self.moves.append((tmp, dst))
        return tmp

    @contextmanager
    def publishing(self) -> Iterator["PendingWrite"]:
        """Write the files (and commit SQL) inside the block; they are published when it ends, removed if it fails."""
        try:
            yield self
        except BaseException:
            self.abort()
            raise
        self.commit()


_DONE = object()  # ends a background writer's queue
ROW_GROUP_ROWS = 1 << 17  # rows per row group of a lake file (the last one of a file may be shorter)


def _groups(table: pa.Table, column: str | None) -> Iterable[tuple[Any, pa.Table]]:
    if column is None or table.num_rows == 0:
        return [(None, table)] if table.num_rows or column is None else []
    values = table[column]
    if values.null_count == 0:
        first = values[0]
        if pc.all(pc.equal(values, first)).as_py():  # one period, one file: most batches; no copy
            return [(first.as_py(), table)]
    out = [(v, table.filter(pc.equal(values, v))) for v in pc.unique(values).drop_null().to_pylist()]
    if values.null_count:
        out.append((None, table.filter(pc.is_null(values))))
    return out


def _find(fs, base: str) -> list[str]:
    fs.invalidate_cache(base)  # object-store listings are cached per process; another process may have written
    try:
        return [p.rstrip("/") for p in fs.find(base)]
    except FileNotFoundError:
        return []


class Stager:
    """The dataset's files for one load, written a slice at a time under temporary names (`write`); `close()`
    returns the PendingWrite that publishes them after the SQL commit.

    layout: "snapshot" (the rows are the whole table: every other file goes), "by_partition" (the rows replace
    their partitions), "by_file" (the rows replace what their source files gave before). One Parquet writer per
    output file stays open until `close`; each writes row groups of ROW_GROUP_ROWS rows, so memory grows with
    that, not with the batch, and the files do not depend on how the rows were sliced. Create it holding the
    table's load lock: leftover temporary files of a killed load are then safe to remove.

    `background`: the files are written by a thread of their own while the caller goes on (SQL ingests and
    Parquet encoding both run outside the GIL); at most two slices wait for it, and a failure there is raised
    by the next `write` or by `close`.
    """

    def __init__(self, root: str | Path, zone: str, contract: Contract, layout: str, hashes: Iterable[str] = (),
                 descriptions: dict[str, str] | None = None, background: bool = False):
        self.fs, base = filesystem(root)
        self.base = f"{base}/{zone}/{contract.dataset}"
        self.contract, self.layout, self.hashes = contract, layout, list(hashes)
        self.descriptions = descriptions
        self.partition = contract.partitioning.key if contract.partitioning else None
        # Pseudonyms are uniformly random: their min/max prune no row group, and computing them cost ~0.3 CPU-s
        # per 1M dossier rows (three such columns), a sixth of writing the file
        self._no_statistics = {n for n, c in contract.columns.items() if c.personal and c.protect == "pseudonymise"
                               } if zone == "curated" else set()
        self.key: str | None = None  # the partition column, once the first slice shows it is there
        self.schema: pa.Schema | None = None  # of the slices (the table's columns)
        self.periods: set[str] = set()  # partition values written
        self.pending = PendingWrite(fs=self.fs)
        self._writers: dict[str, tuple[pq.ParquetWriter, pa.Schema]] = {}
        self._buffers: dict[str, list[pa.Table]] = {}  # per output file: rows not written yet
        self._schemas: dict[str, pa.Schema] = {}
        self._buffered = 0
        existing = _find(self.fs, self.base)
        if _local(self.fs):  # a killed load's temporary files: ours to remove, we hold the lock
            for path in existing:
                if posixpath.basename(path).startswith(".") and path.endswith(".tmp"):
                    os.unlink(path)
        self._existing = [p for p in existing if p.endswith(".parquet")]
        self._queue: queue.Queue | None = None
        self._failed: BaseException | None = None
        self._cancelled = False
        if background:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._work, name=f"lake {zone}/{contract.dataset}", daemon=True)
            self._thread.start()

    def write(self, data: pa.Table) -> None:
        """One slice of the rows (every slice has the same columns)."""
        if self._queue is None:
            return self._write(data)
        if self._failed is not None:
            self.abort()
            raise self._failed
        self._queue.put(data)

    def _work(self) -> None:
        while (data := self._queue.get()) is not _DONE:
            if self._failed is None and not self._cancelled:
                try:
                    self._write(data, abort=False)
                except BaseException as e:  # raised in the caller's thread, by the next write or by close
                    self._failed = e

    def _join(self) -> None:
        if self._queue is not None and self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()

    def _write(self, data: pa.Table, abort: bool = True) -> None:
        try:
            if self.schema is None:
                self.schema = data.schema
                self.key = self.partition if self.partition in data.column_names else None
            for value, part in _groups(data, self.key):
                folder = self.base if self.key is None else \
                    f"{self.base}/{self.key}={HIVE_NULL if value is None else value}"
                if self.key:
                    part = part.drop_columns([self.key])
                    if value is not None:
                        self.periods.add(str(value))
                if self.layout == "by_file" or (self.layout == "by_partition" and value is None):
                    for sha, chunk in _groups(part, FILE_COLUMN):
                        self._add(f"{folder}/part-{sha[:16]}.parquet", chunk)
                else:
                    self._add(f"{folder}/data.parquet", part)
        except BaseException:
            if abort:
                self.abort()
            raise

    def _add(self, dst: str, part: pa.Table) -> None:
        parts = self._buffers.setdefault(dst, [])  # the file exists from here on, rows or not
        self._schemas.setdefault(dst, part.schema)
        if not part.num_rows:
            return
        parts.append(part)
        self._buffered += part.num_rows
        if sum(p.num_rows for p in parts) >= ROW_GROUP_ROWS:  # whole row groups: files do not depend on slicing
            self._flush(dst, whole=True)
        if self._buffered >= 4 * ROW_GROUP_ROWS:  # many files filling at once: memory comes first
            for name, waiting in self._buffers.items():
                if waiting:
                    self._flush(name)

    def _flush(self, dst: str, whole: bool = False) -> None:
        parts = self._buffers[dst]
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0] if parts else None
        if dst not in self._writers:
            self._open(dst, table if table is not None else self._schemas[dst].empty_table())
        if table is None:
            return
        n = table.num_rows // ROW_GROUP_ROWS * ROW_GROUP_ROWS if whole else table.num_rows
        writer, schema = self._writers[dst]
        writer.write_table(table.slice(0, n).cast(schema), row_group_size=ROW_GROUP_ROWS)
        self._buffers[dst] = [table.slice(n)] if n < table.num_rows else []
        self._buffered -= n

    def _open(self, dst: str, first: pa.Table) -> None:
        """The file's writer. Columns whose first rows are mostly distinct (keys, pseudonyms) are not
        dictionary-encoded: the encoder would fill a dictionary page per row group, then give up on it."""
        schema = schema_metadata(self.contract, first.schema.empty_table(), self.descriptions).schema
        sample = first.slice(0, 4096)
        dictionary = [n for n in first.column_names
                      if sample.num_rows < 64 or pc.count_distinct(sample[n]).as_py() <= sample.num_rows // 2]
        statistics = [n for n in first.column_names if n not in self._no_statistics]
        writer = pq.ParquetWriter(self.pending.add(dst), schema, compression="zstd", use_dictionary=dictionary,
                                  write_statistics=statistics)
        self._writers[dst] = (writer, schema)

    def close(self) -> PendingWrite:
        """Finish the files; the PendingWrite deletes the files they replace once they are published."""
        try:
            self._join()
            if self._failed is not None:
                raise self._failed
            if self.key is None and self.layout == "snapshot" and f"{self.base}/data.parquet" not in self._buffers:
                if self.schema is None:
                    raise ValueError(f"{self.base}: a snapshot needs the table's columns (no slice was written)")
                self._add(f"{self.base}/data.parquet", self.schema.empty_table())  # the whole table: no rows
            for dst in self._buffers:
                self._flush(dst)
            for writer, _ in self._writers.values():
                writer.close()
        except BaseException:
            self.abort()
            raise
        writes = set(self._writers)
        own = {f"part-{h[:16]}.parquet" for h in self.hashes}
        replaced = {posixpath.dirname(p) for p in writes if p.endswith("/data.parquet")}
        stale = [p for p in self._existing if self.layout == "snapshot" or posixpath.basename(p) in own
                 or (self.layout == "by_partition" and posixpath.dirname(p) in replaced)]
        self.pending.deletes = [p for p in stale if p not in writes]
        return self.pending

    def abort(self) -> None:
        """Close and remove whatever was written (a background writer stops first)."""
        self._cancelled = True
        if self._queue is not None:
            while True:  # the slices still waiting are not written
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._join()
        for writer, _ in self._writers.values():
            try:
                writer.close()
            except Exception:  # a failed write (disk full) may leave the writer unable to finish: removed anyway
                pass
        self._writers.clear()
        self._buffers.clear()
        self._schemas.clear()
        self.pending.abort()


def stage(root: str | Path, zone: str, contract: Contract, data: pa.Table | Iterable[pa.Table], layout: str,
          hashes: Iterable[str] = (), descriptions: dict[str, str] | None = None) -> PendingWrite:
    """Write `data` (a table, or its slices) as the dataset's files under temporary names (`Stager`); publish
    them with `commit()`. Call it holding the table's load lock."""
    stager = Stager(root, zone, contract, layout, hashes, descriptions)
    try:
        for part in [data] if isinstance(data, pa.Table) else data:
            stager.write(part)
    except BaseException:
        stager.abort()
        raise
    return stager.close()


def stage_file(root: str | Path, relative: str) -> PendingWrite:
    """One file for `<root>/<relative>` (a dimension's, a mart's, the catalogue) to be written at `moves[0][0]`,
    under a temporary name exactly as `stage` writes its files; `commit()` publishes it."""
    fs, base = filesystem(root)
    pending = PendingWrite(fs=fs)
    pending.add(f"{base}/{relative}")
    return pending


def whole(tmp: str | Path) -> bool:
    """A staged file is still there and complete (its Parquet footer reads): safe to publish as it is."""
    try:
        pq.read_metadata(str(tmp))
        return True
    except Exception:  # missing, truncated, unreadable: the caller rebuilds the file instead
        return False


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
