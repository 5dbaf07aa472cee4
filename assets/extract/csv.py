"""Delimited text exports: decode once, sniff the dialect, read every column as text with Arrow."""

from __future__ import annotations

import csv
import io
import unicodedata

import numpy as np
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
BOM = "\ufeff"  # left at the start of a header cell by a file saved twice with a BOM, or one after a blank line


def _breaks(s: str | bytes, start: int = 0, end: int | None = None) -> int:
    """Line breaks in s[start:end], each \\r\\n, \\n or lone \\r once: the line ends Arrow reads."""
    lf, cr = ("\n", "\r") if isinstance(s, str) else (b"\n", b"\r")
    end = len(s) if end is None else end
    crs = s.count(cr, start, end)
    return s.count(lf, start, end) + (crs - s.count(cr + lf, start, end) if crs else 0)


def _value_breaks(table: pa.Table) -> np.ndarray:
    """Line breaks inside each record's values: the extra lines a record with quoted multi-line cells spans."""
    total = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        total += pc.fill_null(pc.count_substring_regex(col, "\r\n|\r|\n"), 0).to_numpy()
    return total


def _scan_records(text: str, start: int, delimiter: str) -> list[int] | None:
    """The line (0-based, from text[start:]) where each record starts, as the csv module splits them (blank lines
    are not records); None when the csv module cannot read the text."""
    reader = csv.reader(io.StringIO(text[start:], newline=""), delimiter=delimiter)
    out, before = [], 0
    try:
        for row in reader:
            if row:
                out.append(before)
            before = reader.line_num
    except csv.Error:  # e.g. a cell over the csv module's field limit
        return None
    return out


def _record_lines(text: str, blob: bytes, base: int, header_at: int, header: str, skip: int, table: pa.Table,
                  bad: list[tuple[int | None, str]], delimiter: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """The 1-based line of the file where each good record (in order) and each rejected one starts, and whether
    those are exact. `blob[base:]` is the text as UTF-8 (the bytes Arrow read); the header is line `skip`.

    Arrow numbers a rejected row `skip` + its index among the records after the header (blank lines are not
    records, a multi-line record is one), so where rejected rows fall among the good ones is known exactly.
    A record's line then follows from the records before it: in the usual file every line after the header is
    one record (counted on the bytes, no splitting); with quoted multi-line cells a record spans 1 + the line
    breaks in its values (counted by Arrow); only when blank lines lie between records is the text read again
    with the csv module. When none of these agrees with Arrow's record count the lines are approximate."""
    good_n, total = table.num_rows, table.num_rows + len(bad)
    at = np.array([-1 if n is None or n < 0 else n - skip for n, _ in bad], dtype=np.int64)  # 1-based record
    placed = bool(len(at) == 0 or (at.min() >= 1 and at.max() <= total and len(np.unique(at)) == len(at)))
    if not placed:  # Arrow gave no usable row numbers: good rows by their own order, rejected rows unknown
        return skip + 1 + np.arange(good_n, dtype=np.int64), np.full(len(bad), -1, dtype=np.int64), False
    is_bad = np.zeros(total, dtype=bool)
    is_bad[at - 1] = True
    by_index = skip + 1 + np.arange(total, dtype=np.int64)  # one line per record
    end_of_header = header_at + len(header)
    if total == 0 or text[end_of_header:end_of_header + 1] not in ("\r", "\n"):
        return by_index[~is_bad], by_index[at - 1], total == 0
    body = end_of_header + (2 if text.startswith("\r\n", end_of_header) else 1)
    first, end = base + len(text[:body].encode("utf-8")), len(blob)
    while end > first and blob[end - 1] in (10, 13):  # blank lines at the end are not records
        end -= 1
    lines = _breaks(blob, first, end) + 1 if end > first else 0
    if lines == total:
        return by_index[~is_bad], by_index[at - 1], True
    spans = np.ones(total, dtype=np.int64)
    spans[~is_bad] += _value_breaks(table)
    spans[at - 1] += np.array([_breaks(t or "") for _, t in bad], dtype=np.int64)
    if int(spans.sum()) == lines:  # no blank line between records: each starts where the one before ended
        starts = skip + 1 + np.concatenate(([0], np.cumsum(spans)[:-1]))
        return starts[~is_bad], starts[at - 1], True
    scanned = _scan_records(text, body, delimiter)
    if scanned is None or len(scanned) != total:
        return by_index[~is_bad], by_index[at - 1], False
    starts = skip + 1 + np.array(scanned, dtype=np.int64)
    return starts[~is_bad], starts[at - 1], True


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


def _utf8(text: str, info: dict) -> tuple[bytes, int]:
    """(bytes, offset) where the text's UTF-8 starts: the file's own bytes when decode() says they are the text's
    (info["raw"], the file after any BOM), else the text encoded."""
    raw = info.get("raw")
    whole = getattr(raw, "obj", None)
    if isinstance(whole, (bytes, bytearray)) and len(whole) >= raw.nbytes:
        base = len(whole) - raw.nbytes
        if whole[base:base + 64] == raw[:64].tobytes():
            return whole, base
    return text.encode("utf-8"), 0


def read_csv(data: bytes, file: str, columns: dict[str, list[str]], required: set[str],
             encoding: str | None = None, delimiter: str | None = None) -> Extracted:
    if not data or data.isspace():  # = not data.strip(), without copying the file
        raise ExportError(file, "the file is empty")
    info: dict = {}
    text, used = decode(data, file, encoding, nfc=False, info=info)  # NFC per cell below: ~100x less work
    raw_header = _header_line(text, file)
    header_line = unicodedata.normalize("NFC", raw_header).lstrip(BOM)  # before csv: a quoted first cell stays one
    delimiter = delimiter or sniff_delimiter(header_line, file)
    try:
        header = next(csv.reader([header_line], delimiter=delimiter))
    except csv.Error as e:  # e.g. a header cell over the csv module's field limit (131,072 characters)
        raise ExportError(file, f"cannot read the header line: {e}", "line 1") from None
    if not text.endswith(("\n", "\r")):  # Arrow cannot skip a header that is the last, unterminated line
        text += "\n"
        info.pop("raw", None)
    mapping, unknown = map_headers([h.strip().lstrip(BOM).strip() for h in header], columns, required, file,
                                   "line 1")

    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.text))
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    header_at = text.index(raw_header)
    skip = _breaks(text, 0, header_at) + 1  # the lines up to the header's: it is line `skip` of the file
    blob, base = _utf8(text, info)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(info["raw"])) if "raw" in info else io.BytesIO(blob),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip, use_threads=False,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.large_string() for n in names},
                                                 strings_can_be_null=True, null_values=[""],
                                                 quoted_strings_can_be_null=True),
        )
    except pa.ArrowInvalid as e:
        raise ExportError(file, f"cannot parse as delimited text: {e}") from None
    _unterminated_quote(text, table, delimiter, file)
    good_lines, bad_lines, exact = _record_lines(text, blob, base, header_at, raw_header, skip, table, bad, delimiter)

    table = table.select([names[i] for i in mapping]).rename_columns(list(mapping.values()))
    table = pa.table([_nfc_cells(c) for c in table.columns], names=table.column_names)
    frame = table.to_pandas()
    for name in columns:
        if name not in frame:
            frame[name] = None
    frame = frame[list(columns)]
    # A record's row is the line of the file it starts on (1-based, like the editor and the error places show).
    frame[ROW_COLUMN] = good_lines
    frame[REASONS] = None
    frame[ORIGINAL] = None
    if bad:
        import pandas as pd

        rejected = pd.DataFrame({name: None for name in columns}, index=range(len(bad)))
        rejected[ROW_COLUMN] = bad_lines  # -1: Arrow could not say where it was
        rejected[REASONS] = f"wrong_column_count(expected {len(header)})"
        rejected[ORIGINAL] = [unicodedata.normalize("NFC", t) for _, t in bad]
        frame = pd.concat([frame, rejected], ignore_index=True)
    notes = [f"columns not in the contract, ignored: {', '.join(unknown)}"] if unknown else []
    if not exact:
        notes.append("row numbers (_kho_row) are approximate: the records could not be matched to lines")
    missing = [c for c in columns if c not in mapping.values()]
    if missing:
        notes.append(f"optional columns absent from the file, left empty: {', '.join(missing)}")
    return Extracted(frame=frame, encoding=used, notes=notes)
