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
import tempfile
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


def _groups(table: pa.Table, column: str | None) -> Iterable[tuple[Any, pa.Table]]:
    if column is None or table.num_rows == 0:
        return [(None, table)] if table.num_rows or column is None else []
    values = table[column]
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


def stage(root: str | Path, zone: str, contract: Contract, data: pa.Table, layout: str,
          hashes: Iterable[str] = (), descriptions: dict[str, str] | None = None) -> PendingWrite:
    """Write `data` as the dataset's files under temporary names; publish them with `commit()`.

    layout: "snapshot" (the rows are the whole table: every other file goes), "by_partition" (the rows replace
    their partitions), "by_file" (the rows replace what their source files gave before). Call it holding the
    table's load lock: leftover temporary files of a killed load are then safe to remove.
    """
    fs, base = filesystem(root)
    base = f"{base}/{zone}/{contract.dataset}"
    key = contract.partitioning.key if contract.partitioning and contract.partitioning.key in data.column_names \
        else None
    writes: dict[str, pa.Table] = {}
    for value, part in _groups(data, key):
        folder = base if key is None else f"{base}/{key}={HIVE_NULL if value is None else value}"
        part = part.drop_columns([key]) if key else part
        if layout == "by_file" or (layout == "by_partition" and value is None):
            for sha, chunk in _groups(part, FILE_COLUMN):
                writes[f"{folder}/part-{sha[:16]}.parquet"] = chunk
        else:
            writes[f"{folder}/data.parquet"] = part
    existing = _find(fs, base)
    if _local(fs):  # a killed load's temporary files: ours to remove, we hold the lock
        for path in existing:
            if posixpath.basename(path).startswith(".") and path.endswith(".tmp"):
                os.unlink(path)
    existing = [p for p in existing if p.endswith(".parquet")]
    own = {f"part-{h[:16]}.parquet" for h in hashes}
    replaced = {posixpath.dirname(p) for p in writes if p.endswith("/data.parquet")}
    stale = [p for p in existing if layout == "snapshot" or posixpath.basename(p) in own
             or (layout == "by_partition" and posixpath.dirname(p) in replaced)]
    pending = PendingWrite(deletes=[p for p in stale if p not in writes], fs=fs)
    try:
        for dst, table in writes.items():
            tmp = pending.add(dst)
            pq.write_table(schema_metadata(contract, table, descriptions), tmp, compression="zstd")
    except BaseException:
        pending.abort()
        raise
    return pending


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
