"""Read departmental Excel exports (.xlsx, legacy .xls) laid out the way Vietnamese government offices write them.

A typical sheet: banner rows (Ủy ban nhân dân..., the department, Cộng hòa xã hội chủ nghĩa..., the title and
period), a header over one or two rows with merged cells, a column-number row "(1) (2) ...", an STT column, the
data with blank rows, a "Tổng cộng" row and a signature block. Only the data rows come out, as text, under the
contract's canonical column names; everything dropped is reported as Skipped.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import math
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import pandas as pd
from python_calamine import CalamineError, CalamineWorkbook, PasswordError, SheetTypeEnum, SheetVisibleEnum

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Extracted, Skipped
from assets.extract.headers import normalise_header, strip_marks

HEADER_SCAN_ROWS = 30
# Zip-bomb guards for xlsx: the expanded content may be at most this many times max_bytes, and no large member
# may inflate more than ZIP_MAX_RATIO times (Apache POI uses the same 1:100 floor). Real sheet XML runs 5-30x.
ZIP_MAX_EXPANSION = 10
ZIP_MAX_RATIO = 100
ZIP_RATIO_MIN_SIZE = 1 << 20  # small members (styles, themes) may compress well without being a threat

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"

_WS = re.compile(r"[\s\u200b\ufeff]+")
_COLUMN_NUMBER = re.compile(r"^\(?\s*(\d{1,3}|[a-z])\s*\)?(\s*=.*)?$")
# Matched on the diacritics-stripped text, anchored at the end so "Tổng công ty ..." is not a totals row.
_TOTALS = re.compile(r"^(tong cong|tong so|tong|cong)(\s*[:.])?(\s+(toan|chung)\b.*|\s*\(.*\))?$")
_SIGNATURE = re.compile(
    r"^(nguoi lap|nguoi duyet|nguoi kiem tra|thu truong|(kt|tl|tm|q|ktl)\.?\s*(giam doc|thu truong|chu tich)"
    r"|(pho )?giam doc|ke toan|truong phong|chanh van phong|noi nhan|xac nhan|ghi chu"
    r"|[^,]{0,60},\s*ngay\b.*\bthang\b.*\bnam\b)"
)
_SIGNATURE_MAX_CELLS = 3  # signature rows hold a label or two; a data row starting "Kế toán..." holds more


# ---------------------------------------------------------------------------------------------- text helpers


def _display(value: Any) -> str:
    text = value if isinstance(value, str) else _text(value) or ""  # a year header 2025 reads "2025"
    return _WS.sub(" ", text).strip()


def _col_letter(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _rows_place(first: int, last: int) -> str:
    """0-based inclusive row indexes -> "row 3" / "rows 3-5" (1-based, as Excel shows them)."""
    return f"row {first + 1}" if first == last else f"rows {first + 1}-{last + 1}"


def _is_empty(value: Any) -> bool:
    return value == "" or value is None or (isinstance(value, str) and value.isspace())


# ---------------------------------------------------------------------------------------------- cell -> text


def _float_text(v: float) -> str:
    if v.is_integer():
        return str(int(v))  # 1500000000.0 -> "1500000000"
    if math.isnan(v) or math.isinf(v):
        return repr(v)
    r = repr(v)
    return format(Decimal(r), "f") if "e" in r else r  # 1e-07 -> "0.0000001"


def _round_second(v: dt.datetime) -> dt.datetime:
    # Excel stores times as day fractions; 10:00:00 can come back as 09:59:59.999999.
    if v.microsecond >= 500_000:
        v += dt.timedelta(seconds=1)
    return v.replace(microsecond=0)


def _datetime_text(v: dt.datetime) -> str:
    v = _round_second(v)
    day = f"{v.day:02d}/{v.month:02d}/{v.year:04d}"
    return day if v.time() == dt.time(0) else f"{day} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"


def _time_text(v: dt.time) -> str:
    return f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}"


def _duration_text(v: dt.timedelta) -> str:
    seconds = round(v.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    return f"{sign}{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


_TEXT = {
    str: lambda v: None if not v or v.isspace() else v,  # text as is: "0301234567" keeps its zero
    float: _float_text,
    int: str,
    bool: lambda v: "TRUE" if v else "FALSE",
    dt.datetime: _datetime_text,
    dt.date: lambda v: f"{v.day:02d}/{v.month:02d}/{v.year:04d}",
    dt.time: _time_text,
    dt.timedelta: _duration_text,
}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    convert = _TEXT.get(type(value))
    return convert(value) if convert else str(value)


# ---------------------------------------------------------------------------------------------- header matching


@dataclass
class _Label:
    """What a sheet column is called in a header candidate."""

    full: str  # "group / sub" or the single header, normalised
    leaf: str  # the lowest header text, normalised
    display: str  # as written, for messages
    top: str  # the upper header text (the group, or the header itself), normalised

    def __post_init__(self) -> None:
        self.full_bare, self.leaf_bare = strip_marks(self.full), strip_marks(self.leaf)


class _Aliases:
    """A contract's header aliases, normalised once."""

    def __init__(self, columns: dict[str, list[str]]):
        self.names = list(columns)
        self.written = {name: list(aliases) for name, aliases in columns.items()}
        self.forms: dict[str, set[str]] = {}
        for name, aliases in columns.items():
            forms: set[str] = set()
            for alias in [*aliases, name]:  # the canonical name itself is accepted too (re-exports of our own tables)
                n = normalise_header(alias)
                if n:
                    forms.update((n, strip_marks(n)))
            self.forms[name] = forms

    def matches(self, labels: dict[int, _Label]) -> dict[str, list[int]]:
        """canonical name -> matching sheet columns; a full "group / sub" match wins over a bare sub-header."""
        found: dict[str, list[int]] = {}
        for name in self.names:
            forms = self.forms[name]
            full = [c for c, lab in labels.items() if lab.full in forms or lab.full_bare in forms]
            leaf = [c for c, lab in labels.items() if lab.leaf in forms or lab.leaf_bare in forms]
            if full or leaf:
                found[name] = full or leaf
        return found


def _labels(rows: list[list[Any]], top: int, depth: int) -> dict[int, _Label]:
    """Column labels for a header candidate of one or two rows (merged cells already filled in `rows`)."""
    labels: dict[int, _Label] = {}
    upper = rows[top]
    lower = rows[top + 1] if depth == 2 else None
    group = group_display = None  # a group header written once, unmerged, covers the empty cells to its right
    for c, value in enumerate(upper):
        up = "" if _is_empty(value) else _display(value)
        low = "" if lower is None or _is_empty(lower[c]) else _display(lower[c])
        if not up and not low:
            group = None
            continue
        if low and up and up != low:
            group, group_display = normalise_header(up), up
            labels[c] = _Label(f"{group} / {normalise_header(low)}", normalise_header(low), f"{up} / {low}", group)
        elif low and not up and group:
            labels[c] = _Label(f"{group} / {normalise_header(low)}", normalise_header(low), f"{group_display} / {low}", group)
        else:
            text = up or low
            group = None
            labels[c] = _Label(normalise_header(text), normalise_header(text), text, normalise_header(text))
    return labels


def _fill_merges(rows: list[list[Any]], merges: list[tuple[tuple[int, int], tuple[int, int]]], last_row: int) -> None:
    """Copy each merged cell's value into the whole range, for rows up to last_row (the header area)."""
    for (r0, c0), (r1, c1) in merges:
        if r0 > last_row or r0 >= len(rows):
            continue
        value = rows[r0][c0] if c0 < len(rows[r0]) else ""
        if _is_empty(value):
            continue
        for r in range(r0, min(r1, last_row, len(rows) - 1) + 1):
            row = rows[r]
            for c in range(c0, min(c1, len(row) - 1) + 1):
                if _is_empty(row[c]):
                    row[c] = value


@dataclass
class _Header:
    top: int
    depth: int
    labels: dict[int, _Label]
    mapping: dict[str, int]  # canonical name -> sheet column


def _find_header(
    grid: list[list[Any]],
    merges: list[tuple[tuple[int, int], tuple[int, int]]],
    aliases: _Aliases,
    file: str,
    where: str,
) -> _Header:
    scan = min(HEADER_SCAN_ROWS, len(grid))
    area = [list(row) for row in grid[: scan + 1]]
    _fill_merges(area, merges, scan)
    vertical = {r0 for (r0, _), (r1, _) in merges if r1 > r0}  # rows where a merge reaches into the next row

    def score(top: int, depth: int) -> tuple[int, dict[int, _Label], dict[str, list[int]]]:
        labels = _labels(area, top, depth)
        found = aliases.matches(labels)
        return len(found), labels, found

    best: tuple[tuple[int, int, int], int] | None = None
    for r in range(scan):
        one = score(r, 1)[0]
        two = score(r, 2)[0] if r + 1 < len(area) else -1
        key = (max(one, two), one, -r)  # ties: the row that matches most on its own, then the earliest
        if best is None or key > best[0]:
            best = (key, r)
    if best is None or best[0][0] == 0:
        raise ExportError(
            file,
            "header not found: no row in the first "
            f"{scan} matches any column; expected {_expected(aliases, aliases.names)}",
            f"{where}, rows 1-{max(scan, 1)}",
        )
    top = best[1]
    n1, labels1, found1 = score(top, 1)
    depth, labels, found = 1, labels1, found1
    if top + 1 < len(area):
        n2, labels2, found2 = score(top, 2)
        # The next row belongs to the header if it adds matches or a header cell is merged down into it.
        if n2 > n1 or (n2 == n1 and top in vertical):
            depth, labels, found = 2, labels2, found2
    if depth == 1 and top - 1 in vertical and top > 0:
        # Matched only on the sub-header row: take the group row above it when merges tie the two together.
        n0, labels0, found0 = score(top - 1, 2)
        if n0 >= n1:
            top, depth, labels, found = top - 1, 2, labels0, found0

    rows_place = _rows_place(top, top + depth - 1)
    missing = [name for name in aliases.names if name not in found]
    if missing:
        matched = ", ".join(f"{n} ({_col_letter(found[n][0])})" for n in aliases.names if n in found)
        raise ExportError(
            file,
            f"header not found: missing {_expected(aliases, missing)}; "
            f"best candidate {rows_place} matched {len(found)} of {len(aliases.names)}: {matched}",
            f"{where}, {rows_place}",
        )
    mapping: dict[str, int] = {}
    owner: dict[int, str] = {}
    for name in aliases.names:
        cols = found[name]
        if len(cols) > 1:
            shown = ", ".join(f"{_col_letter(c)} '{labels[c].display}'" for c in cols)
            raise ExportError(
                file,
                f"column {name} matches several columns ({shown}); write its alias as 'group / header'",
                f"{where}, {rows_place}",
            )
        if cols[0] in owner:
            raise ExportError(
                file,
                f"column {_col_letter(cols[0])} '{labels[cols[0]].display}' matches both "
                f"{owner[cols[0]]} and {name}",
                f"{where}, {rows_place}",
            )
        mapping[name] = owner_col = cols[0]
        owner[owner_col] = name
    return _Header(top, depth, labels, mapping)


def _expected(aliases: _Aliases, names: list[str]) -> str:
    return ", ".join(f"{n} (any of: {', '.join(repr(a) for a in aliases.written[n]) or repr(n)})" for n in names)


def _prefix(text: str) -> str:
    """First four letters, casefolded, without marks or spaces: a cheap filter before full normalisation."""
    return "".join(strip_marks(text[:16].casefold()).split())[:4]


def _find_second_header(grid: list[list[Any]], header: _Header) -> int | None:
    """A later row that repeats the header (a second table pasted below): its index, else None."""
    checks = []
    for c in header.mapping.values():
        lab = header.labels[c]
        accepted = {lab.full, lab.leaf, lab.top}
        accepted |= {strip_marks(a) for a in accepted}
        lengths = [len(a) for a in accepted]
        # Only cells of header-like length starting with a header's first letter get normalised:
        # keeps this scan cheap on a million data rows.
        initials = set(" \t\r\n\xa0")  # leading blanks: let the full comparison decide
        for a in accepted:
            for ch in {a[:1], strip_marks(a[:1])}:
                first = unicodedata.normalize("NFD", ch)[:1]
                initials |= {ch, ch.upper(), first, first.upper()}
        prefixes = {_prefix(a) for a in accepted}
        checks.append((c, accepted, max(1, min(lengths) - 2), 3 * max(lengths) + 10, initials, prefixes))
    n = len(checks)
    need = 1 if n == 1 else max(2, math.ceil(n / 2))
    allowed_misses = n - need
    for r in range(header.top + header.depth, len(grid)):
        row = grid[r]
        hits = misses = 0
        for c, accepted, shortest, longest, initials, prefixes in checks:
            value = row[c]
            if (
                isinstance(value, str)
                and shortest <= len(value) <= longest
                and value[:1] in initials
                and _prefix(value) in prefixes
            ):
                norm = normalise_header(value)
                if norm in accepted or strip_marks(norm) in accepted:
                    hits += 1
                    if hits >= need:
                        return r
                    continue
            misses += 1
            if misses > allowed_misses:
                break
    return None


# ---------------------------------------------------------------------------------------------- row kinds


def _is_column_numbers(row: list[Any]) -> bool:
    """The "(1) (2) (3)" or "1 2 3" row departments put under the header."""
    values = [v for v in row if not _is_empty(v)]
    if len(values) < 2:
        return False
    numbers: list[int] = []
    letters: list[int] = []
    for v in values:
        if isinstance(v, bool):
            return False
        if isinstance(v, int | float):
            if not float(v).is_integer():
                return False
            numbers.append(int(v))
        elif isinstance(v, str):
            m = _COLUMN_NUMBER.match(normalise_header(v))
            if not m:
                return False
            mark = m.group(1)
            (numbers if mark.isdigit() else letters).append(int(mark) if mark.isdigit() else ord(mark))
        else:
            return False

    def consecutive(seq: list[int]) -> bool:
        return all(b == a + 1 for a, b in zip(seq, seq[1:], strict=False))

    # Marks run consecutively ("A B 1 2 3"), so a data row of small counts is not taken for them.
    return consecutive(numbers) and consecutive(letters) and (len(numbers) >= 2 or (not numbers and len(letters) >= 2))


def _first_value(row: list[Any]) -> Any:
    return next((v for v in row if not _is_empty(v)), None)


def _row_list(rows: list[int]) -> str:
    return ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _first_text(row: list[Any]) -> str | None:
    """The first non-empty cell, if it is text."""
    for v in row:
        if v != "" and not _is_empty(v):
            return v if isinstance(v, str) else None
    return None


def _row_kind(row: list[Any]) -> tuple[str | None, str]:
    """('totals' | 'signature' | None, label) from the row's first non-empty cell."""
    first = _first_text(row)  # a data row usually starts with its STT number: done here
    if first is None or len(first) > 120:
        return None, ""
    bare = strip_marks(normalise_header(first))
    if _TOTALS.match(bare):
        return "totals", _display(first)
    if _SIGNATURE.match(bare) and sum(not _is_empty(v) for v in row) <= _SIGNATURE_MAX_CELLS:
        return "signature", _display(first)
    return None, ""


# ---------------------------------------------------------------------------------------------- file checks


def _check_zip(data: bytes, file: str, max_bytes: int) -> zipfile.ZipFile:
    """Refuse truncated zips and zip bombs before calamine inflates anything."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ExportError(
            file, f"not a readable xlsx: the zip is truncated or corrupt ({exc})", f"end of file (byte {len(data)})"
        ) from None
    limit = ZIP_MAX_EXPANSION * max_bytes
    declared = 0
    for info in infos:
        declared += info.file_size
        _check_member(file, info, info.file_size, limit)
        if declared > limit:
            raise ExportError(
                file,
                f"zip bomb refused: content expands to more than {limit:,} bytes "
                f"({ZIP_MAX_EXPANSION} x the {max_bytes:,}-byte limit)",
                f"zip member '{info.filename}'",
            )
    # Declared sizes can lie; inflate each member in chunks (no more than the limit) to count the real bytes.
    total = 0
    for info in infos:
        probe = copy.copy(info)
        probe.file_size = 1 << 62  # zipfile stops (and checks the CRC) at the declared size; run to the real end
        size = 0
        try:
            with zf.open(probe) as member:
                while chunk := member.read(1 << 20):
                    size += len(chunk)
                    if total + size > limit:
                        raise ExportError(
                            file,
                            f"zip bomb refused: content expands to more than {limit:,} bytes "
                            f"({ZIP_MAX_EXPANSION} x the {max_bytes:,}-byte limit)",
                            f"zip member '{info.filename}'",
                        )
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise ExportError(
                file, f"not a readable xlsx: zip member is corrupt ({exc})", f"zip member '{info.filename}'"
            ) from None
        if size != info.file_size:
            raise ExportError(
                file,
                f"zip member declares {info.file_size:,} bytes but holds {size:,}",
                f"zip member '{info.filename}'",
            )
        _check_member(file, info, size, limit)
        total += size
    return zf


def _check_member(file: str, info: zipfile.ZipInfo, size: int, limit: int) -> None:
    if size >= ZIP_RATIO_MIN_SIZE and size > ZIP_MAX_RATIO * max(info.compress_size, 1):
        raise ExportError(
            file,
            f"zip bomb refused: {info.compress_size:,} compressed bytes expand to {size:,} "
            f"(more than {ZIP_MAX_RATIO}x)",
            f"zip member '{info.filename}'",
        )


def _xlsx_dimensions(zf: zipfile.ZipFile, sheet: str) -> tuple[int, int] | None:
    """(rows, columns) from the sheet's <dimension ref> (counted from A1), read before calamine loads the sheet."""
    try:
        ns_rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
        workbook = ElementTree.fromstring(zf.read("xl/workbook.xml"))
        rel_id = next(
            (el.get(ns_rel) for el in workbook.iter() if el.tag.endswith("}sheet") and el.get("name") == sheet), None
        )
        rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        target = next((el.get("Target") for el in rels if el.get("Id") == rel_id), None)
        if not target:
            return None
        path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        with zf.open(path) as member:
            head = member.read(8192).decode("utf-8", "replace")
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, OSError):
        return None  # xlsb/ods or an unusual layout: calamine's own size is checked after loading
    m = re.search(r"<(?:\w+:)?dimension\s+ref=\"[A-Z]*\d*:?([A-Z]+)(\d+)\"", head)
    if not m:
        return None
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return int(m.group(2)), col


def _open(data: bytes, file: str, max_bytes: int) -> tuple[CalamineWorkbook, zipfile.ZipFile | None]:
    if len(data) > max_bytes:
        raise ExportError(
            file, f"file is {len(data):,} bytes, over the {max_bytes:,}-byte limit", f"whole file ({len(data):,} bytes)"
        )
    zf = None
    if data.startswith(_ZIP_MAGIC):
        zf = _check_zip(data, file, max_bytes)
    elif not data.startswith(_OLE_MAGIC):
        head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if head.startswith((b"<html", b"<!doctype", b"<table", b"<?xml", b"<meta")):
            reason = "not an Excel workbook: it is an HTML/XML page saved with an Excel name"
        elif not data:
            reason = "file is empty"
        else:
            reason = "not an Excel workbook (neither xlsx nor xls)"
        raise ExportError(file, reason, "start of file (byte 0)")
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data)), zf
    except PasswordError:
        reason = "workbook is password-protected; ask the department for an open copy"
        raise ExportError(file, reason, "workbook") from None
    except CalamineError as exc:
        raise ExportError(file, f"cannot open the workbook, it is truncated or corrupt ({exc})", "workbook") from None


def _pick_sheet(wb: CalamineWorkbook, sheet: str | int | None, file: str) -> str:
    names = wb.sheet_names
    listed = ", ".join(repr(n) for n in names)
    if sheet is None:
        # The first visible worksheet: hidden sheets usually hold lookup lists.
        for meta in wb.sheets_metadata:
            if meta.visible == SheetVisibleEnum.Visible and meta.typ == SheetTypeEnum.WorkSheet:
                return meta.name
        if names:
            return names[0]
        raise ExportError(file, "workbook has no sheets", "workbook")
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return names[sheet]
        raise ExportError(file, f"sheet index {sheet} not found; sheets in the file: {listed}", f"sheet {sheet}")
    if sheet in names:
        return sheet
    close = [n for n in names if normalise_header(n) == normalise_header(sheet)]  # "DN " or "dn" typed in a contract
    if len(close) == 1:
        return close[0]
    raise ExportError(file, f"sheet '{sheet}' not found; sheets in the file: {listed}", f"sheet '{sheet}'")


# ---------------------------------------------------------------------------------------------- the reader


def read_excel(
    data: bytes,
    file: str,
    columns: dict[str, list[str]],
    sheet: str | int | None = None,
    max_bytes: int = 200_000_000,
    max_cells: int = 50_000_000,
) -> Extracted:
    """Read one sheet of a departmental .xlsx/.xls export into text columns named by the contract.

    `columns` maps canonical names to the header texts departments write ("Mã số doanh nghiệp", "MST");
    a header under a group header matches "Group / Header" or just "Header" when that is unique.
    Every column in `columns` is required. `sheet` is a name, a 0-based index, or None for the first
    visible sheet. Raises ExportError naming the file and the place for anything that cannot be read.
    """
    if not columns:
        raise ExportError(file, "no columns requested", "contract")
    wb, zf = _open(data, file, max_bytes)
    with wb:
        name = _pick_sheet(wb, sheet, file)
        where = f"sheet '{name}'"
        if zf is not None and (dims := _xlsx_dimensions(zf, name)) and dims[0] * dims[1] > max_cells:
            raise ExportError(
                file,
                f"sheet is {dims[0]:,} rows x {dims[1]:,} columns, over the {max_cells:,}-cell limit",
                where,
            )
        try:
            ws = wb.get_sheet_by_name(name)
            end = ws.end
            if end is not None and (end[0] + 1) * (end[1] + 1) > max_cells:
                raise ExportError(
                    file,
                    f"sheet is {end[0] + 1:,} rows x {end[1] + 1:,} columns, over the {max_cells:,}-cell limit",
                    where,
                )
            grid = ws.to_python(skip_empty_area=False) if end is not None else []
            merges = ws.merged_cell_ranges or []
        except CalamineError as exc:
            raise ExportError(file, f"cannot read the sheet, it is truncated or corrupt ({exc})", where) from None
    if not grid:
        raise ExportError(file, "sheet is empty", where)
    extracted = _extract(grid, merges, _Aliases(columns), file, where)
    if isinstance(sheet, str) and sheet != name:
        extracted.notes.insert(0, f"sheet '{sheet}' read as '{name}' (names differ only in case or spaces)")
    return extracted


def _extract(
    grid: list[list[Any]],
    merges: list[tuple[tuple[int, int], tuple[int, int]]],
    aliases: _Aliases,
    file: str,
    where: str,
) -> Extracted:
    header = _find_header(grid, merges, aliases, file, where)
    first_after = header.top + header.depth
    again = _find_second_header(grid, header)
    if again is not None:
        raise ExportError(
            file,
            f"header found twice: {_rows_place(header.top, first_after - 1)} and row {again + 1} "
            "(a second table in the sheet); split it into its own sheet or file",
            f"{where}, row {again + 1}",
        )

    kinds: list[tuple[int, str]] = [(r, "banner above the header") for r in range(header.top)]
    kinds += [(r, "header") for r in range(header.top, first_after)]
    notes = [f"{where}, header {_rows_place(header.top, first_after - 1)}"]
    banner = [_display(v) for r in range(header.top) for v in grid[r] if not _is_empty(v)]
    if banner:
        notes.append("banner: " + " | ".join(dict.fromkeys(banner)))
    used = set(header.mapping.values())
    ignored = [f"{lab.display} ({_col_letter(c)})" for c, lab in sorted(header.labels.items()) if c not in used]
    if ignored:
        notes.append("columns not in the contract, ignored: " + ", ".join(ignored))

    start = first_after
    while start < len(grid) and all(_is_empty(v) for v in grid[start]):
        kinds.append((start, "blank row"))
        start += 1
    if start < len(grid) and _is_column_numbers(grid[start]):
        kinds.append((start, "column-number row"))
        start += 1

    names = aliases.names
    cols = [header.mapping[n] for n in names]
    filled = _fill_down(grid, merges, start, set(cols))
    if filled:
        notes.append("merged cells filled down: " + ", ".join(filled))

    out_rows: list[int] = []
    out_values: list[list[str | None]] = [[] for _ in names]
    width = len(grid[0])
    r = start
    while r < len(grid):
        row = grid[r]
        if row.count("") == width or all(_is_empty(v) for v in row):
            kinds.append((r, "blank row"))
            r += 1
            continue
        kind, label = _row_kind(row)
        if kind == "totals":
            kinds.append((r, f"totals row ({label})"))
            r += 1
            if not out_rows:  # statistical reports often put the grand total first, above the details
                continue
            rest = range(r, len(grid))
            why = "signature block" if any(not _is_empty(v) for i in rest for v in grid[i]) else "blank row"
            kinds += [(i, why) for i in rest]
            numbered = [i + 1 for i in rest if isinstance(_first_value(grid[i]), int | float)]
            if numbered:
                notes.append(
                    f"rows after the totals row start with a number, check they are not data: {_row_list(numbered)}"
                )
            break
        if kind == "signature":
            kinds += [(i, "signature block") for i in range(r, len(grid))]
            break
        values = [None if (v := row[c]) == "" else (_TEXT.get(type(v)) or _text)(v) for c in cols]
        if all(v is None for v in values):
            first = _first_text(row)
            shown = f": {_display(first)[:60]}" if first else ""
            kinds.append((r, f"no value in the contract's columns{shown}"))
        else:
            out_rows.append(r + 1)
            for bucket, value in zip(out_values, values, strict=True):
                bucket.append(value)
        r += 1

    frame = pd.DataFrame({n: pd.Series(v, dtype="str") for n, v in zip(names, out_values, strict=True)})
    frame[ROW_COLUMN] = pd.Series(out_rows, dtype="int64")
    return Extracted(frame=frame, skipped=_group(kinds), notes=notes)


def _fill_down(
    grid: list[list[Any]], merges: list[tuple[tuple[int, int], tuple[int, int]]], start: int, cols: set[int]
) -> list[str]:
    """A value merged down over several data rows belongs to each of them (e.g. one ward over its rows)."""
    filled = []
    for (r0, c0), (r1, _c1) in merges:
        if r0 < start or r1 <= r0 or c0 not in cols or r0 >= len(grid):
            continue
        value = grid[r0][c0]
        if _is_empty(value) or _row_kind(grid[r0])[0]:
            continue
        for r in range(r0 + 1, min(r1, len(grid) - 1) + 1):
            if _is_empty(grid[r][c0]):
                grid[r][c0] = value
        filled.append(f"{_col_letter(c0)}{r0 + 1}:{_col_letter(c0)}{r1 + 1}")
    return filled


def _group(kinds: list[tuple[int, str]]) -> list[Skipped]:
    """Consecutive rows dropped for the same reason become one Skipped("rows 1-6", why)."""
    skipped: list[Skipped] = []
    run: list[int] = []
    why = ""
    for r, reason in sorted(kinds):
        if run and reason == why and r == run[-1] + 1:
            run.append(r)
            continue
        if run:
            skipped.append(Skipped(_rows_place(run[0], run[-1]), why))
        run, why = [r], reason
    if run:
        skipped.append(Skipped(_rows_place(run[0], run[-1]), why))
    return skipped
