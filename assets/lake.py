"""The Parquet lake: zstd files in Hive-style partitions, one folder per dataset, written atomically.

A file is first written under a hidden temporary name and renamed into place only after the warehouse
transaction commits, so a reader never sees half a file and the lake is never ahead of the warehouse.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.contract import Contract


def schema_metadata(contract: Contract, table: pa.Table) -> pa.Table:
    """Vietnamese descriptions on each field and the dataset's identity on the schema."""
    fields = []
    for f in table.schema:
        col = contract.columns.get(f.name)
        meta = {"description": col.description, "kho_type": col.type} if col else {}
        fields.append(f.with_metadata({k: str(v).encode() for k, v in meta.items()}) if meta else f)
    meta = {"kho.dataset": contract.dataset, "kho.title": contract.title, "kho.department": contract.department.name}
    return table.cast(pa.schema(fields, metadata={k: v.encode() for k, v in meta.items()}))


@dataclass
class PendingWrite:
    """Files written under temporary names; `commit` renames them in, `abort` removes them."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)
    replace_dirs: list[Path] = field(default_factory=list)

    def commit(self) -> None:
        for folder in self.replace_dirs:  # replace_partition: the old files of that period go
            for old in folder.glob("*.parquet"):
                if old not in {dst for _, dst in self.moves}:
                    old.unlink()
        for tmp, dst in self.moves:
            os.replace(tmp, dst)

    def abort(self) -> None:
        for tmp, _ in self.moves:
            tmp.unlink(missing_ok=True)


def stage(contract: Contract, lake_root: Path, zone: str, frame: pd.DataFrame, file_name: str,
          replace: bool = False) -> PendingWrite:
    """Write `frame` into `<lake>/<zone>/<dataset>/[<key>=<value>/]<file_name>` under temporary names."""
    pending = PendingWrite()
    base = lake_root / zone / contract.dataset
    key = contract.partitioning.key if contract.partitioning and zone == "curated" else None
    groups = frame.groupby(key, dropna=False) if key and not frame.empty else [(None, frame)]
    for value, part in groups:
        value = value[0] if isinstance(value, tuple) else value
        folder = base / f"{key}={value}" if key else base
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(part.drop(columns=[key]) if key else part, preserve_index=False)
        table = schema_metadata(contract, table)
        tmp = folder / f".{file_name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        pending.moves.append((tmp, folder / file_name))
        if replace:
            pending.replace_dirs.append(folder)
    return pending


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
