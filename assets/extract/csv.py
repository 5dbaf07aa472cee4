"""Delimited text exports, a chunk at a time: find the encoding and the header, then parse the text with Arrow in
chunks of about CHUNK_BYTES, every column as text. Memory grows with the chunk, not with the file.

What a chunk must give is what one Arrow read of the whole decoded text gives (decode() then pyarrow.csv):
- Chunks end between records. A chunk is cut after a line end (where the quotes before it pair up, when there are
  quotes) and parsed with a sentinel line after it; the sentinel comes back as a record of its own only if the
  chunk really ended between records (Arrow's own quoting rules decide), else the chunk is cut elsewhere.
- A record's row (ROW_COLUMN) is the line of the file it starts on. Blank lines are parsed as records (all cells
  empty), so every line belongs to one record: a record starts on the line after the previous one ends (1 + the
  line breaks in its cells), exactly, whatever the line ends, quoted line breaks, blank lines. Rows with every
  cell empty are then dropped where their line is empty (a blank line is not a record; ",," is).
- Decoding, control characters, mojibake and NFC are decode()'s rules, applied per piece, chunk and cell
  (assets.extract.encoding.Transcoder, Repair).
"""

from __future__ import annotations

import csv
import os
import re
import sys
import unicodedata
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Extracted, Report
from assets.extract.encoding import _CONTROL, Repair, Transcoder, _nfc, _strong_hit, mojibake_pattern
from assets.extract.headers import map_headers

DELIMITERS = ",;\t|"
REASONS = "_kho_reasons"  # reasons a row is rejected, set as early as the reader
ORIGINAL = "_kho_original"  # the source text of a row that could not be split into columns
BOM = "\ufeff"  # left at the start of a header cell by a file saved twice with a BOM, or one after a blank line
CHUNK_BYTES = 16 << 20  # text parsed at a time: peak memory grows with it (a few times over), not with the file
LONGEST_RECORD = 256 << 20  # a record spanning more (a stray quote swallowing the file) is refused
_SENTINEL = "\x01"  # the first cell of the line after each chunk (control characters are refused in the text)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f]")
_NOT_CONTROL = bytes(b for b in range(256) if not (b <= 8 or 0x0e <= b <= 0x1f))
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")


def _breaks(s: str | bytes, start: int = 0, end: int | None = None) -> int:
    """Line breaks in s[start:end], each \\r\\n, \\n or lone \\r once: the line ends Arrow reads."""
    lf, cr = ("\n", "\r") if isinstance(s, str) else (b"\n", b"\r")
    end = len(s) if end is None else end
    crs = s.count(cr, start, end)
    return s.count(lf, start, end) + (crs - s.count(cr + lf, start, end) if crs else 0)


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


def sniff_delimiter(header: str, file: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise ExportError(file, "cannot tell the delimiter (none of , ; tab | in the header)", "line 1") from None
        return best


class _Source:
    """The bytes of an export, in memory or in a file that is read where asked, never whole."""

    def __init__(self, source: bytes | str | Path):
        self._fd = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._data, self.size = source, len(source)
        else:
            self._fd = os.open(source, os.O_RDONLY)
            self.size = os.fstat(self._fd).st_size

    def read_at(self, offset: int, n: int) -> bytes:
        if self._fd is None:
            return bytes(self._data[offset:offset + n])
        out = os.pread(self._fd, n, offset)
        while len(out) < n and offset + len(out) < self.size:  # a short read of a regular file: read on
            more = os.pread(self._fd, n - len(out), offset + len(out))
            if not more:
                break
            out += more
        return out

    def blank(self) -> bool:
        """Nothing but ASCII whitespace (= not data.strip(), without reading the whole file for it)."""
        at = 0
        while at < self.size:
            block = self.read_at(at, 1 << 20)
            if not block.isspace():
                return False
            at += len(block)
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    __del__ = close


def _cuts(buf: bytes, end: int) -> list[int]:
    """Where else a chunk of buf[:end] (text that starts between records, and does not end between records as a
    whole) may end, best first: after the last line end where the quotes before it pair up (a line end inside a
    quoted cell ends no record), then after the last line end before `end`. Only the parse decides: a stray quote
    in an unquoted cell counts here, not for Arrow."""
    last = max(buf.rfind(b"\n", 0, end - 1), buf.rfind(b"\r", 0, end - 1)) + 1  # before the text's last line end
    if last and buf[last - 1] == 13 and buf[last] == 10:  # not between the CR and LF of a CRLF
        last = max(buf.rfind(b"\n", 0, last - 1), buf.rfind(b"\r", 0, last - 1)) + 1
    if last == 0:
        return []
    if buf.find(b'"', 0, last) < 0:
        return [last]
    cut, odd = last, buf.count(b'"', 0, last) % 2
    for _ in range(10_000):
        if not odd or cut == 0:
            break
        e = cut - 1  # the line end closing the line before `cut`
        if e and buf[e] == 10 and buf[e - 1] == 13:
            e -= 1
        start = max(buf.rfind(b"\n", 0, e), buf.rfind(b"\r", 0, e)) + 1
        odd ^= buf.count(b'"', start, cut) % 2
        cut = start
    return [cut, last] if not odd and 0 < cut < last else [last]


class _Reader:
    """One delimited export: the header at once (errors before any row), then the rows a chunk at a time."""

    def __init__(self, source: bytes | str | Path, file: str, columns: dict[str, list[str]], required: set[str],
                 encoding: str | None, delimiter: str | None):
        self.file, self.columns = file, columns
        self.src = _Source(source)
        try:
            if self.src.blank():
                raise ExportError(file, "the file is empty")
            self.tx = Transcoder(file, encoding, self.src.read_at, self.src.size)
            self.pieces = self.tx.pieces(max(1, CHUNK_BYTES // 4))
            self.repair = Repair(file)
            self.exact = True
            self._header(delimiter, required)
        except BaseException:
            self.src.close()
            raise

    # ---- the header ------------------------------------------------------------------------------------------

    def _text(self, data: bytes, offset: int) -> str:
        """UTF-8 of the text from stream offset `offset` as str (a bad byte is the file's, reported as decode())."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            if not self.tx.passthrough:
                raise
            raise self.tx.invalid_utf8(self.tx.start + offset + e.start) from None

    def _control(self, char: str, line: int) -> ExportError:
        hint = " (or UTF-16 without a byte-order mark)" if char == "\x00" else ""
        return ExportError(self.file, f"control character U+{ord(char):04X}: binary data{hint}, not a text export "
                                      f"read as {self.tx.used}", place=f"line {line}")

    def _header(self, delimiter: str | None, required: set[str]) -> None:
        """Reads the text up to the end of the header's line (the first line that is not blank) and maps it."""
        buf, eof, scan = b"", False, 0
        while True:
            m = _NOT_BLANK.search(buf, scan)
            end = -1
            if m:
                ends = [e for e in (buf.find(b"\n", m.start()), buf.find(b"\r", m.start())) if e >= 0]
                end = min(ends) if ends else -1
                if end >= 0 and buf[end] == 13 and end + 1 == len(buf) and not eof:
                    end = -1  # a CR at the end of what was read: maybe the half of a CRLF
            if (m is None or end < 0) and not eof:
                piece = next(self.pieces, None)
                if piece is None:
                    eof = True
                else:
                    buf += b"".join(piece)
                continue
            if m is None:
                raise ExportError(self.file, "the file has no header line (it is empty or blank)")
            stop = len(buf) if end < 0 else end + (2 if buf[end:end + 2] == b"\r\n" else 1)
            text = self._text(buf[:stop], 0)
            if any(line.strip() for line in text.splitlines()):
                break
            scan = stop
            if stop == len(buf) and eof:
                raise ExportError(self.file, "the file has no header line (it is empty or blank)")
        ctrl = _CONTROL.search(text)
        if ctrl:
            raise self._control(ctrl[0], text.count("\n", 0, ctrl.start()) + 1)
        text = self.repair.part(_nfc(text), 1)
        raw_header = _header_line(text, self.file)
        self.line = _breaks(text, 0, text.index(raw_header)) + 2  # the line the first record may start on
        self.rest, self.pos = buf[stop:], stop  # the text after the header's line, and its offset in the stream

        header_line = unicodedata.normalize("NFC", raw_header).lstrip(BOM)  # before csv: a quoted first cell stays one
        self.delimiter = delimiter = delimiter or sniff_delimiter(header_line, self.file)
        if _CONTROL.match(delimiter) and delimiter in raw_header:  # (cells are checked below; this is not in one)
            raise self._control(delimiter, self.line - 1)
        try:
            header = next(csv.reader([header_line], delimiter=delimiter))
        except csv.Error as e:  # e.g. a header cell over the csv module's field limit (131,072 characters)
            raise ExportError(self.file, f"cannot read the header line: {e}", "line 1") from None
        mapping, unknown = map_headers([h.strip().lstrip(BOM).strip() for h in header], self.columns, required,
                                       self.file, "line 1")
        self.width, self.mapping = len(header), mapping
        self.notes = [f"columns not in the contract, ignored: {', '.join(unknown)}"] if unknown else []
        self._approximate_at = len(self.notes)
        missing = [c for c in self.columns if c not in mapping.values()]
        if missing:
            self.notes.append(f"optional columns absent from the file, left empty: {', '.join(missing)}")
        self.names = [f"c{i}" for i in range(self.width)]
        self.mark = _SENTINEL if delimiter != _SENTINEL else "\x02"
        self.sentinel = (self.mark + delimiter * (self.width - 1) + "\n").encode("utf-8")
        self.schema = pa.schema([*((c, pa.large_string()) for c in self.columns), (ROW_COLUMN, pa.int64()),
                                 (REASONS, pa.large_string()), (ORIGINAL, pa.large_string())])

    # ---- the rows ----------------------------------------------------------------------------------------------

    def tables(self) -> Iterator[pa.Table]:
        """The rows (the schema's columns), a table per chunk, in file order."""
        parts, size, want, eof = ([self.rest] if self.rest else []), len(self.rest), CHUNK_BYTES, False
        self.rest = b""
        while True:
            while not eof and (size < want or parts[-1][-1] not in (10, 13)):  # whole lines, or the end
                piece = next(self.pieces, None)
                if piece is None:
                    eof = True
                else:
                    parts += [p for p in piece if len(p)]
                    size += sum(map(len, piece))
            if not parts:
                return
            # the pieces end at line ends: usually the chunk is all of them, with the sentinel line after
            tail = (b"\n" if eof and parts[-1][-1] not in (10, 13) else b"") + self.sentinel
            data = b"".join([*parts, tail])
            end, parts = len(data) - len(tail), None  # (what was read, joined: not kept twice)
            if eof:
                yield self._chunk(data, end, True)
                return
            got = self._chunk(data, end, False)
            if got is None:  # it ends inside a quoted cell: cut where the quotes pair up, or read on
                for cut in _cuts(data, end):
                    got = self._chunk(b"".join((memoryview(data)[:cut], self.sentinel)), cut, False)
                    if got is not None:
                        end = cut
                        break
                else:
                    if size > max(LONGEST_RECORD, 2 * CHUNK_BYTES):
                        raise ExportError(self.file, f"a quoted field runs on for more than {size >> 20} MB: a "
                                                     'stray " that is never closed would read the rest of the file '
                                                     "as one value", f"line {self.line}")
                    parts, want = [memoryview(data)[:end]], 2 * size
                    continue
            yield got
            rest = data[end:len(data) - len(tail)]
            parts, size, want = ([rest] if rest else []), len(rest), CHUNK_BYTES
            self.pos += end

    def _parse(self, data: bytes, blank_lines: bool, block: int = 1 << 22) -> tuple[pa.Table, list]:
        """Arrow's read of `data` (every column as text) and the records it could not split: [(number, text)].
        blank_lines: a blank line is a record (every cell empty), so every line belongs to a record.

        In one thread: Arrow numbers the records it rejects only then, and on 2 shared cores it is also the
        fastest (~95 ms for 32 MB of dossiers against 150-270 ms with threads)."""
        bad: list[tuple[int | None, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            bad.append((row.number, row.text))
            return "skip"

        hook = sys.unraisablehook  # pyarrow reports a rejected record that is not UTF-8 there, then fails
        sys.unraisablehook = lambda u: None if u.object is on_invalid else hook(u)
        try:
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(data)),
                read_options=pacsv.ReadOptions(column_names=self.names, use_threads=False, block_size=block),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                                 ignore_empty_lines=not blank_lines, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(column_types={n: pa.large_string() for n in self.names},
                                                     strings_can_be_null=True, null_values=[""],
                                                     quoted_strings_can_be_null=True),
            )
        except pa.ArrowInvalid as e:
            if "straddl" in str(e) and block < len(data):  # a record longer than a block: one block, then
                sys.unraisablehook = hook
                return self._parse(data, blank_lines, len(data) + 1)
            if self.tx.passthrough:  # Arrow checks the UTF-8 of every cell: name the byte as decode() would
                self._text(data, self.pos)
            raise ExportError(self.file, f"cannot parse as delimited text: {e}") from None
        finally:
            sys.unraisablehook = hook
        return table, bad

    def _records(self, data: bytes, tail: int, blank_lines: bool, final: bool) -> tuple[pa.Table, list] | None:
        """Arrow's read of a chunk (`data`: the chunk and `tail` bytes put after it, the sentinel line last), without
        the sentinel; None when the sentinel was read into a record (the chunk ends inside a quoted cell)."""
        table, bad = self._parse(data, blank_lines)
        n, total = table.num_rows, table.num_rows + len(bad)
        if n and table.column(0)[n - 1].as_py() == self.mark and all(num != total for num, _ in bad):
            return table.slice(0, n - 1), bad
        if not final:
            return None
        # The file ends inside a quoted cell. Arrow reads it to the end of the file as one value: a truncated
        # export, or a stray quote swallowing every line after it, would load without a word. A record short of
        # cells is rejected anyway (kept with its text); a whole one is refused.
        last = next((i for i, (num, _) in enumerate(bad) if num == total), None)
        if last is None:
            value = table.column(self.width - 1)[n - 1].as_py() or ""
            raw = value.replace('"', '""').encode("utf-8")
            start = len(data) - len(raw)  # where the value's text begins, after its opening quote
            if not (data.endswith(raw) and data[start - 1:start] == b'"'):
                start = 0
            raise ExportError(self.file, 'the file ends inside a quoted field (a " that is never closed): the export '
                                         "is truncated, or a stray quote would read every line after it as one value",
                              f"line {self.line + _breaks(data, 0, start)}")
        text = bad[last][1][:-(len(self.sentinel) - 1)]  # as Arrow gives it: without the line end closing it
        text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\n", "\r")) else text
        bad[last] = (total, text)
        return table, bad

    def _chunk(self, data: bytes, end: int, final: bool, checked: bool = False) -> pa.Table | None:
        """The rows of data[:end] (text that starts between records; the sentinel line after it), or None when it
        does not end between records."""
        buf, tail = data, data[end:]
        got = self._records(data, len(tail), True, final)
        if got is None:
            return None
        table, bad = got
        texts = [t for _, t in bad]

        # decode()'s checks on the text, here on the cells (and the rejected records' text)
        stats = [_byte_stats(c) for c in table.columns]
        if any(s[2] for s in stats) or any(_CONTROL.search(t) for t in texts):
            found = _CONTROL_BYTES.search(buf, 0, end)
            raise self._control(chr(buf[found.start()]), self.line + _breaks(buf, 0, found.start()))
        ascii_ = all(s[1] < 0x80 for s in stats) and all(t.isascii() for t in texts)
        distinct = {}
        if not ascii_ and not checked:
            pattern = mojibake_pattern()
            hit = any(_strong_hit(_nfc(t)) for t in texts if not t.isascii())
            for i, column in enumerate(table.columns):
                if hit:
                    break
                if stats[i][1] >= 0x80:
                    distinct[i] = values = _non_ascii(column)
                    suspects = pc.filter(values, pc.match_substring_regex(values, pattern)).to_pylist()
                    hit = any(_strong_hit(_nfc(v)) for v in suspects)
            if hit or self.repair.repairing:
                text = _nfc(buf[:end].decode("utf-8"))
                fixed = self.repair.part(text, self.line)
                if fixed != text:
                    fixed_bytes = fixed.encode("utf-8")
                    return self._chunk(fixed_bytes + tail, len(fixed_bytes), final, checked=True)
            else:
                self.repair.clean()

        # the line each record starts on: every line is one record's (blank lines too), a record spans 1 + the line
        # breaks in its cells
        good_n, total = table.num_rows, table.num_rows + len(bad)
        at = np.array([-1 if num is None else num for num, _ in bad], dtype=np.int64)  # 1-based record numbers
        placed = bool(len(at) == 0 or (at.min() >= 1 and at.max() <= total and len(np.unique(at)) == len(at)))
        if placed:
            is_bad = np.zeros(total, dtype=bool)
            is_bad[at - 1] = True
            spans = np.ones(total, dtype=np.int64)
            breaks = [i for i, s in enumerate(stats) if s[3]]
            if breaks:
                spans[~is_bad] += _value_breaks([table.column(i) for i in breaks])
            if bad:
                spans[at - 1] += np.array([_breaks(t) for t in texts], dtype=np.int64)
            starts = self.line + np.concatenate(([0], np.cumsum(spans)[:-1]))
            good_lines, bad_lines, good_at = starts[~is_bad], starts[at - 1], np.flatnonzero(~is_bad) + 1
            lines = int(spans.sum())
            empty = _empty_rows(table)
            if empty is not None:  # blank lines are not records; a record of empty cells (",,") is
                blank = empty & _empty_lines(buf, end, good_lines - self.line)
                if blank.any():
                    table, good_lines, good_at = table.filter(~blank), good_lines[~blank], good_at[~blank]
                    good_n = table.num_rows
        else:  # (Arrow numbers every record it rejects when it reads in one thread): rows approximately
            table, bad = self._records(data, len(tail), False, final)
            texts = [t for _, t in bad]
            good_n = table.num_rows
            good_lines = self.line + np.arange(good_n, dtype=np.int64)
            bad_lines = np.full(len(bad), -1, dtype=np.int64)
            lines = _breaks(buf, 0, end)
            self.exact = False
        self.line += lines

        # the contract's columns, NFC per cell (decode() left UTF-8 and UTF-16 text as written)
        out = []
        for name in self.columns:
            i = next((i for i, canon in self.mapping.items() if canon == name), None)
            if i is None:
                out.append(pa.nulls(good_n, pa.large_string()))
            else:
                out.append(_nfc_cells(table.column(i), distinct.get(i)) if stats[i][1] >= 0x80 else table.column(i))
        out += [pa.array(good_lines, pa.int64()), pa.nulls(good_n, pa.large_string()),
                pa.nulls(good_n, pa.large_string())]
        result = pa.Table.from_arrays(out, schema=self.schema)
        if not bad:
            return result
        k = len(bad)
        rejected = pa.Table.from_arrays(
            [pa.nulls(k, pa.large_string())] * len(self.columns)
            + [pa.array(bad_lines, pa.int64()), pa.array([f"wrong_column_count(expected {self.width})"] * k,
                                                         pa.large_string()),
               pa.array([unicodedata.normalize("NFC", t) for t in texts], pa.large_string())], schema=self.schema)
        result = pa.concat_tables([result, rejected])
        if placed:  # in file order
            result = result.take(np.argsort(np.concatenate([good_at, at]), kind="stable"))
        return result

    def empty(self) -> pa.Table:
        return self.schema.empty_table()

    def note_approximate(self, notes: list[str]) -> None:
        note = "row numbers (_kho_row) are approximate: the records could not be matched to lines"
        if not self.exact and note not in notes:
            notes.insert(self._approximate_at, note)

    def close(self) -> None:
        self.src.close()


def _byte_stats(column: pa.ChunkedArray) -> tuple[int, int, bool, bool]:
    """(lowest byte, highest byte, holds a control character, holds a line break) of a text column's cells, read
    on its data buffers (no per-cell work unless a byte below 0x20 is there)."""
    lo, hi, control, brk = 0xFF, 0, False, False
    for chunk in column.chunks:
        if len(chunk) == chunk.null_count:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
        first, last = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
        if last == first:
            continue
        data = chunk.buffers()[2]
        mm = pc.min_max(pa.Array.from_buffers(pa.uint8(), last - first, [None, data], offset=first)).as_py()
        lo, hi = min(lo, mm["min"]), max(hi, mm["max"])
        if mm["min"] < 0x20:
            raw = data.to_pybytes()[first:last]
            control = control or bool(raw.translate(None, _NOT_CONTROL))
            brk = brk or b"\n" in raw or b"\r" in raw
    return lo, hi, control, brk


def _empty_rows(table: pa.Table) -> np.ndarray | None:
    """Which rows have every cell empty (a blank line, or a record of empty cells); None: none has."""
    if not table.num_rows or any(c.null_count == 0 for c in table.columns):
        return None
    empty = None
    for c in table.columns:
        empty = pc.is_null(c) if empty is None else pc.and_(empty, pc.is_null(c))
    empty = np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)
    return empty if empty.any() else None


def _empty_lines(buf: bytes, end: int, lines: np.ndarray) -> np.ndarray:
    """Whether each of `lines` (0-based, counted as Arrow does: CRLF, LF or a lone CR ends a line) of buf[:end]
    holds nothing at all."""
    a = np.frombuffer(buf, dtype=np.uint8, count=end)
    lf, cr = np.flatnonzero(a == 10), np.flatnonzero(a == 13)
    ends = np.sort(np.concatenate([lf, cr[(cr + 1 >= end) | (a[np.minimum(cr + 1, end - 1)] != 10)]]))
    first = ends - ((a[ends] == 10) & (ends > 0) & (a[np.maximum(ends - 1, 0)] == 13))  # where each line end begins
    begins = np.concatenate(([0], ends[:-1] + 1))
    known = lines < len(ends)
    out = np.zeros(len(lines), dtype=bool)
    out[known] = first[lines[known]] == begins[lines[known]]
    return out


def _value_breaks(columns: list[pa.ChunkedArray]) -> np.ndarray:
    """Line breaks inside each record's values: the extra lines a record with quoted multi-line cells spans."""
    total = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    for col in columns:
        total += pc.fill_null(pc.count_substring_regex(col, "\r\n|\r|\n"), 0).to_numpy()
    return total


def _non_ascii(column: pa.ChunkedArray) -> pa.Array:
    """The distinct values of a column that are not ASCII."""
    values = pc.unique(column)
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return values.filter(pc.invert(pc.fill_null(pc.string_is_ascii(values), True)))


def _nfc_cells(column: pa.ChunkedArray, distinct: pa.Array | None = None) -> pa.ChunkedArray:
    """NFC per cell, once per distinct non-ASCII value (decode() left the text as written)."""
    values = (_non_ascii(column) if distinct is None else distinct).to_pylist()
    fixed = {v: unicodedata.normalize("NFC", v) for v in values if not unicodedata.is_normalized("NFC", v)}
    if not fixed:
        return column
    keys = pa.array(list(fixed), type=column.type)
    where = pc.index_in(column, value_set=keys)
    return pc.if_else(pc.is_valid(where), pc.take(pa.array(list(fixed.values()), type=column.type), where), column)


def _frame(table: pa.Table, present: set[str]) -> pd.DataFrame:
    """A slice as the readers give it: text columns as pandas `str`, a contract column the file lacks and the
    reasons / original text as objects (None when empty), ROW_COLUMN as int64."""
    frame = table.to_pandas()
    n = len(frame)
    for name in table.column_names:
        if name == ROW_COLUMN or name in present:
            continue
        column = table.column(name)
        values = np.full(n, None, dtype=object) if column.null_count == n else column.to_numpy(zero_copy_only=False)
        frame[name] = pd.Series(values, index=frame.index, dtype=object)  # (an ndarray alone would become `str`)
    return frame


def csv_slices(source: bytes | str | Path, file: str, columns: dict[str, list[str]], required: set[str],
               encoding: str | None = None, delimiter: str | None = None,
               rows: int | None = None) -> tuple[Iterator[pd.DataFrame], Report]:
    """A delimited export (bytes, or a path: then never read whole) as frames of `rows` rows (the last one fewer;
    None: one frame), in file order, and its Report (encoding, notes: final once every frame was read).

    Errors in the header, the encoding, an empty file are raised here; others (a bad byte, a control character,
    mojibake, a quoted field never closed...) while the frames are read."""
    reader = _Reader(source, file, columns, required, encoding, delimiter)
    report = Report(encoding=reader.tx.used, notes=reader.notes)
    present = set(reader.mapping.values())
    return _frames(reader, report, rows, present), report


def _frames(reader: _Reader, report: Report, rows: int | None, present: set[str]) -> Iterator[pd.DataFrame]:
    try:
        held, count, given = [], 0, False
        for table in reader.tables():
            report.encoding = reader.tx.used
            reader.note_approximate(report.notes)
            if not table.num_rows:
                continue
            held.append(table)
            count += table.num_rows
            while rows and count >= rows:
                whole = pa.concat_tables(held) if len(held) > 1 else held[0]
                yield _frame(whole.slice(0, rows), present)
                given = True
                rest = whole.slice(rows)
                held, count = ([rest] if rest.num_rows else []), rest.num_rows
        report.encoding = reader.tx.used
        reader.note_approximate(report.notes)
        if held or not given:
            yield _frame(pa.concat_tables(held) if held else reader.empty(), present)
    finally:
        reader.close()


def read_csv(data: bytes, file: str, columns: dict[str, list[str]], required: set[str],
             encoding: str | None = None, delimiter: str | None = None) -> Extracted:
    """The whole export as one frame: the one frame of csv_slices."""
    frames, report = csv_slices(data, file, columns, required, encoding, delimiter)
    (frame,) = list(frames)
    return Extracted(frame=frame, encoding=report.encoding, notes=report.notes)
