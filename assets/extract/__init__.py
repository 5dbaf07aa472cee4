"""Extract: the bytes of one export -> a table of text with the contract's column names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pandas as pd

from assets.extract.base import Extracted, Report

if TYPE_CHECKING:
    from assets.contract import ChildTable, Contract


def extract(contract: "Contract", data: bytes, file: str) -> Extracted:
    fmt = contract.format
    columns = {name: col.headers for name, col in contract.columns.items()}
    required = {name for name, col in contract.columns.items() if col.required}
    if fmt.type == "csv":
        from assets.extract.csv import read_csv

        return read_csv(data, file, columns, required, encoding=fmt.encoding, delimiter=fmt.delimiter)
    if fmt.type == "sql":
        # A snapshot that assets.sources.pull wrote from the source: UTF-8 CSV under the canonical names.
        from assets.extract.csv import read_csv

        return read_csv(data, file, columns, required, encoding="utf-8", delimiter=",")
    if fmt.type in ("xlsx", "xls"):
        from assets.extract.excel import read_excel

        return read_excel(data, file, columns, sheet=fmt.sheet)
    if fmt.type == "json":
        from assets.extract.json import read_json

        got, kids = read_json(data, file, columns, required, records_path=fmt.records_path,
                              children={name: child.path for name, child in fmt.children.items()})
        # Children are mapped here, with the parent, so a file whose lists do not fit the contract fails
        # at extract like any other unreadable file.
        got.children = {name: _child_columns(kids[name], fmt.children[name], name, file) for name in kids}
        return got
    raise NotImplementedError(f"{file}: format '{fmt.type}' has no reader yet")


def extract_slices(contract: "Contract", source: str | Path | bytes, file: str,
                   rows: int | None = None) -> tuple[Iterator[pd.DataFrame], Report]:
    """One export (a path, or its bytes) as frames of `rows` rows each (the last one fewer; None: one frame), and
    its Report. The frames joined are `extract(contract, data, file).frame`: the same columns, rows, values,
    reasons and ROW_COLUMN, in file order; there is always at least one frame (empty when the file has no rows).

    A CSV (or SQL snapshot) is never held whole: it is read a chunk at a time (assets.extract.csv.CHUNK_BYTES), so
    memory grows with `rows` and the chunk, not with the file. Other formats are read whole, then sliced.
    An export that cannot be read raises ExportError naming the file and the place: a bad header, encoding or an
    empty file when this is called, what is found further in the file while the frames are read. The Report's
    encoding and notes are set here and completed (e.g. "row numbers (_kho_row) are approximate") by the time the
    last frame is read."""
    fmt = contract.format
    if fmt.type in ("csv", "sql"):
        from assets.extract.csv import csv_slices

        columns = {name: col.headers for name, col in contract.columns.items()}
        required = {name for name, col in contract.columns.items() if col.required}
        source = source if isinstance(source, (bytes, bytearray, memoryview)) else Path(source)
        if fmt.type == "sql":  # a snapshot that assets.sources.pull wrote: UTF-8 CSV under the canonical names
            return csv_slices(source, file, columns, required, encoding="utf-8", delimiter=",", rows=rows)
        return csv_slices(source, file, columns, required, encoding=fmt.encoding, delimiter=fmt.delimiter,
                          rows=rows)
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    got = extract(contract, data, file)
    report = Report(skipped=got.skipped, encoding=got.encoding, notes=got.notes, children=got.children)
    return _sliced(got.frame, rows), report


def _sliced(frame: pd.DataFrame, rows: int | None) -> Iterator[pd.DataFrame]:
    if not rows or len(frame) <= rows:
        yield frame
        return
    for start in range(0, len(frame), rows):
        yield frame.iloc[start:start + rows].reset_index(drop=True)


def _child_columns(frame: pd.DataFrame, child: "ChildTable", name: str, file: str) -> pd.DataFrame:
    """Flattened JSON keys (`donVi.ten` -> `donVi_ten`) -> the child's canonical column names."""
    from assets.extract.headers import map_headers
    from assets.extract.json import PARENT_COLUMN, SEQ_COLUMN

    columns = {c: [h.replace(".", "_") for h in col.headers] for c, col in child.columns.items()}
    # With no element in any record the file cannot show the child's fields: nothing is missing then.
    required = {c for c, col in child.columns.items() if col.required} if len(frame) else set()
    found = [c for c in frame.columns if c not in (PARENT_COLUMN, SEQ_COLUMN)]
    mapping, _ = map_headers(found, columns, required, file, f"child table '{name}' (field '{child.path}')")
    out = pd.DataFrame({canon: frame[found[i]] for i, canon in mapping.items()}, index=frame.index)
    for canon in child.columns:
        if canon not in out:
            out[canon] = pd.Series([None] * len(frame), index=frame.index, dtype="str")
    out = out[list(child.columns)]
    out[PARENT_COLUMN], out[SEQ_COLUMN] = frame[PARENT_COLUMN], frame[SEQ_COLUMN]
    return out
