"""Delimited text exports: decode once, sniff the dialect, read every column as text with Arrow."""

from __future__ import annotations

import csv
import io
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Extracted
from assets.extract.encoding import decode
from assets.extract.headers import map_headers

DELIMITERS = ",;\t|"
REASONS = "_kho_reasons"  # reasons a row is rejected, set as early as the reader
ORIGINAL = "_kho_original"  # the source text of a row that could not be split into columns


def _header_line(text: str, file: str) -> str:
    head = text[: 1 << 16]  # the header is near the top: do not split a 250 MB text into lines for it
    lines = head.splitlines()
    if len(head) < len(text):
        lines = lines[:-1]  # the last line of the head may be cut short
    for line in lines:
        if line.strip():
            return line
    for line in text.splitlines()[len(lines):] if len(head) < len(text) else ():
        if line.strip():
            return line
    raise ExportError(file, "the file has no header line (it is empty or blank)")


def _nfc_cells(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """NFC per cell, once per distinct non-ASCII value (decode(nfc=False) left the text as written)."""
    ascii_ = pc.string_is_ascii(column)
    if pc.all(pc.fill_null(ascii_, True), min_count=0).as_py():
        return column
    distinct = pc.unique(pc.filter(column, pc.invert(pc.fill_null(ascii_, True)))).to_pylist()
    fixed = {v: unicodedata.normalize("NFC", v) for v in distinct if not unicodedata.is_normalized("NFC", v)}
    if not fixed:
        return column
    keys = pa.array(list(fixed), type=column.type)
    where = pc.index_in(column, value_set=keys)
    return pc.if_else(pc.is_valid(where), pc.take(pa.array(list(fixed.values()), type=column.type), where), column)


def sniff_delimiter(header: str, file: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise ExportError(file, "cannot tell the delimiter (none of , ; tab | in the header)", "line 1") from None
        return best


def _unterminated_quote(text: str, table: pa.Table, delimiter: str, file: str) -> None:
    """Arrow reads a quoted field that is never closed to the end of the file, as one value: a truncated export,
    or a stray quote swallowing every line after it, would load without a word. Such a field is the last value
    read, so it is found at the end of the text: an opening quote at a field start, then the value to the end."""
    if not table.num_rows or '"' not in text:
        return
    value = table.column(table.num_columns - 1)[table.num_rows - 1].as_py() or ""
    raw = value.replace('"', '""')
    start = len(text) - len(raw)  # where the value's text would begin
    if start >= 1 and text[start - 1] == '"' and text.endswith(raw) \
            and (start == 1 or text[start - 2] in (delimiter, "\n", "\r")):
        raise ExportError(file, 'the file ends inside a quoted field (a " that is never closed): the export is '
                          "truncated, or a stray quote would read every line after it as one value",
                          f"line {text.count(chr(10), 0, start) + 1}")


def read_csv(data: bytes, file: str, columns: dict[str, list[str]], required: set[str],
             encoding: str | None = None, delimiter: str | None = None) -> Extracted:
    if not data or data.isspace():  # = not data.strip(), without copying the file
        raise ExportError(file, "the file is empty")
    info: dict = {}
    text, used = decode(data, file, encoding, nfc=False, info=info)  # NFC per cell below: ~100x less work
    raw_header = _header_line(text, file)
    header_line = unicodedata.normalize("NFC", raw_header)
    delimiter = delimiter or sniff_delimiter(header_line, file)
    try:
        header = next(csv.reader([header_line], delimiter=delimiter))
    except csv.Error as e:  # e.g. a header cell over the csv module's field limit (131,072 characters)
        raise ExportError(file, f"cannot read the header line: {e}", "line 1") from None
    if not text.endswith(("\n", "\r")):  # Arrow cannot skip a header that is the last, unterminated line
        text += "\n"
        info.pop("raw", None)
    mapping, unknown = map_headers([h.strip() for h in header], columns, required, file, "line 1")

    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.text))
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(info["raw"])) if "raw" in info else io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=text[: text.index(raw_header)].count("\n") + 1,
                                           use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.large_string() for n in names},
                                                 strings_can_be_null=True, null_values=[""],
                                                 quoted_strings_can_be_null=True),
        )
    except pa.ArrowInvalid as e:
        raise ExportError(file, f"cannot parse as delimited text: {e}") from None
    _unterminated_quote(text, table, delimiter, file)

    table = table.select([names[i] for i in mapping]).rename_columns(list(mapping.values()))
    table = pa.table([_nfc_cells(c) for c in table.columns], names=table.column_names)
    frame = table.to_pandas()
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
        # Arrow numbers an invalid row by its line in the file, skipped lines included: already the row.
        rejected[ROW_COLUMN] = [n if n is not None else -1 for n, _ in bad]
        rejected[REASONS] = f"wrong_column_count(expected {len(header)})"
        rejected[ORIGINAL] = [unicodedata.normalize("NFC", t) for _, t in bad]
        frame = pd.concat([frame, rejected], ignore_index=True)
    notes = [f"columns not in the contract, ignored: {', '.join(unknown)}"] if unknown else []
    missing = [c for c in columns if c not in mapping.values()]
    if missing:
        notes.append(f"optional columns absent from the file, left empty: {', '.join(missing)}")
    return Extracted(frame=frame, encoding=used, notes=notes)
