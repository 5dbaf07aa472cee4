"""Delimited text exports: decode once, sniff the dialect, read every column as text with Arrow."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.csv as pacsv

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Extracted
from assets.extract.encoding import decode
from assets.extract.headers import map_headers

DELIMITERS = ",;\t|"
REASONS = "_kho_reasons"  # reasons a row is rejected, set as early as the reader
ORIGINAL = "_kho_original"  # the source text of a row that could not be split into columns


def _header_line(text: str, file: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    raise ExportError(file, "the file has no header line (it is empty or blank)")


def sniff_delimiter(header: str, file: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise ExportError(file, "cannot tell the delimiter (none of , ; tab | in the header)", "line 1") from None
        return best


def read_csv(data: bytes, file: str, columns: dict[str, list[str]], required: set[str],
             encoding: str | None = None, delimiter: str | None = None) -> Extracted:
    if not data.strip():
        raise ExportError(file, "the file is empty")
    text, used = decode(data, file, encoding)
    header_line = _header_line(text, file)
    delimiter = delimiter or sniff_delimiter(header_line, file)
    try:
        header = next(csv.reader([header_line], delimiter=delimiter))
    except csv.Error as e:  # e.g. a header cell over the csv module's field limit (131,072 characters)
        raise ExportError(file, f"cannot read the header line: {e}", "line 1") from None
    if not text.endswith(("\n", "\r")):  # Arrow cannot skip a header that is the last, unterminated line
        text += "\n"
    mapping, unknown = map_headers([h.strip() for h in header], columns, required, file, "line 1")

    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.text))
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=text[: text.index(header_line)].count("\n") + 1,
                                           use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=True, null_values=[""],
                                                 quoted_strings_can_be_null=True),
        )
    except pa.ArrowInvalid as e:
        raise ExportError(file, f"cannot parse as delimited text: {e}") from None

    frame = table.select([names[i] for i in mapping]).rename_columns(list(mapping.values())).to_pandas()
    for name in columns:
        if name not in frame:
            frame[name] = None
    frame = frame[list(columns)]
    # Records are numbered like a spreadsheet: line 1 is the header, so record k is on "row k+1".
    frame[ROW_COLUMN] = range(2, len(frame) + 2)
    frame[REASONS] = None
    frame[ORIGINAL] = None
    if bad:
        import pandas as pd

        rejected = pd.DataFrame({name: None for name in columns}, index=range(len(bad)))
        rejected[ROW_COLUMN] = [n + 1 if n is not None else -1 for n, _ in bad]
        rejected[REASONS] = f"wrong_column_count(expected {len(header)})"
        rejected[ORIGINAL] = [t for _, t in bad]
        frame = pd.concat([frame, rejected], ignore_index=True)
    notes = [f"columns not in the contract, ignored: {', '.join(unknown)}"] if unknown else []
    missing = [c for c in columns if c not in mapping.values()]
    if missing:
        notes.append(f"optional columns absent from the file, left empty: {', '.join(missing)}")
    return Extracted(frame=frame, encoding=used, notes=notes)
