"""Workbooks in the layout Vietnamese government departments really export.

Used for demo exports and tests: banner lines, title and period, a two-row header with merged cells,
an STT column, a column-number row "(1) (2) ...", the data, a blank row, a "Tổng cộng" row and a
signature block. The same plan is written as .xlsx (xlsxwriter) or legacy .xls (xlwt).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import IO, Any

Header = str | tuple[str, list[str]]

DEFAULT_SIGNATURE = [
    "\tTP. Hồ Chí Minh, ngày 05 tháng 11 năm 2026",
    "Người lập biểu\tThủ trưởng đơn vị",
    "(Ký, ghi rõ họ tên)\t(Ký tên, đóng dấu)",
    "",
    "",
    "Nguyễn Văn An\tTrần Thị Bích",
]


@dataclass
class _Cell:
    row: int
    col: int
    value: Any
    style: str
    last_row: int | None = None  # set for merged ranges
    last_col: int | None = None


def _plan(
    banner: list[str],
    title: str,
    period: str,
    headers: list[Header],
    rows: list[list | None],
    totals: dict[int, object] | None,
    signature: list[str] | None,
    column_numbers: str | None,
) -> tuple[list[_Cell], list[int]]:
    """Lay the sheet out once so both file formats get the same cells; returns cells and column widths."""
    leaves: list[str] = []
    for h in headers:
        leaves.extend(h[1] if isinstance(h, tuple) else [h])
    width = 1 + len(leaves)  # STT + data columns
    last = width - 1
    cells: list[_Cell] = []
    r = 0

    def full_width(text: str, style: str) -> None:
        if last > 0:
            cells.append(_Cell(r, 0, text, style, r, last))
        else:
            cells.append(_Cell(r, 0, text, style))

    for line in banner:
        full_width(line, "banner")
        r += 1
    r += 1
    full_width(title, "title")
    r += 1
    full_width(period, "period")
    r += 2

    # Two-row header: plain headers merged vertically, groups merged across their sub-headers.
    cells.append(_Cell(r, 0, "STT", "header", r + 1, 0))
    c = 1
    for h in headers:
        if isinstance(h, tuple):
            group, subs = h
            if len(subs) > 1:
                cells.append(_Cell(r, c, group, "header", r, c + len(subs) - 1))
            else:
                cells.append(_Cell(r, c, group, "header"))
            for i, sub in enumerate(subs):
                cells.append(_Cell(r + 1, c + i, sub, "header"))
            c += len(subs)
        else:
            cells.append(_Cell(r, c, h, "header", r + 1, c))
            c += 1
    r += 2

    if column_numbers is not None:
        for i in range(width):
            label: Any = column_numbers.format(i + 1)
            cells.append(_Cell(r, i, int(label) if label.isdigit() else label, "colnum"))
        r += 1

    n = 0
    for values in rows:
        if values is None:  # a blank row left inside the data, STT not counted
            r += 1
            continue
        n += 1
        cells.append(_Cell(r, 0, n, "number"))
        for i in range(len(leaves)):
            value = values[i] if i < len(values) else None
            cells.append(_Cell(r, i + 1, value, _style_of(value)))
        r += 1

    r += 1  # departments leave a blank row before the totals
    label_end = min(totals) if totals else 1  # label spans STT and the columns before the first total
    if label_end >= 1:
        cells.append(_Cell(r, 0, "Tổng cộng", "total_label", r, label_end))
    else:
        cells.append(_Cell(r, 0, "Tổng cộng", "total_label"))
    for i, value in (totals or {}).items():
        cells.append(_Cell(r, i + 1, value, "total" if isinstance(value, int | float) else "total_label"))
    r += 2

    half = max(1, width // 2)
    for line in DEFAULT_SIGNATURE if signature is None else signature:
        left, _, right = line.partition("\t")
        if left:
            cells.append(_Cell(r, 0, left, "sign", r, half - 1) if half > 1 else _Cell(r, 0, left, "sign"))
        if right and width > 1:
            cells.append(_Cell(r, half, right, "sign", r, last) if last > half else _Cell(r, half, right, "sign"))
        r += 1

    widths = [6] + [max(12, min(40, len(h) + 2)) for h in leaves]
    return cells, widths


def _style_of(value: Any) -> str:
    if value is None:
        return "blank"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dt.datetime):
        return "datetime" if value.time() != dt.time(0) else "date"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, int | float):
        return "number"
    return "text"


def write_gov_xlsx(
    path_or_buffer: str | IO[bytes],
    *,
    sheet: str,
    banner: list[str],
    title: str,
    period: str,
    headers: list[Header],
    rows: list[list | None],
    totals: dict[int, object] | None = None,
    signature: list[str] | None = None,
    extra_sheets: dict[str, list[list]] | None = None,
    column_numbers: str | None = "({})",
) -> None:
    """Write a government-layout .xlsx.

    `headers`: a plain string is one column (merged over both header rows); a tuple (group, [subs])
    is a group header merged across its sub-headers. `rows` hold the data columns only (STT is added);
    None in `rows` writes a blank row.
    `totals` maps a data-column index (0-based, as in `rows`) to the value on the "Tổng cộng" row.
    `signature` lines go under the table, "\\t" splits a line into a left and a right half;
    None writes a typical block, [] writes none. `column_numbers` formats the column-number row
    ("({})" -> "(1)", "{}" -> the number 1), None leaves it out. `extra_sheets` are plain tables
    written after the main sheet.
    """
    import xlsxwriter

    cells, widths = _plan(banner, title, period, headers, rows, totals, signature, column_numbers)
    options = {"in_memory": True} if not isinstance(path_or_buffer, str) else {}
    wb = xlsxwriter.Workbook(path_or_buffer, options)
    font = {"font_name": "Times New Roman", "font_size": 12}
    border = {**font, "border": 1, "valign": "vcenter"}
    formats = {
        "banner": wb.add_format({**font, "bold": True, "align": "center"}),
        "title": wb.add_format({**font, "bold": True, "font_size": 14, "align": "center"}),
        "period": wb.add_format({**font, "italic": True, "align": "center"}),
        "header": wb.add_format({**border, "bold": True, "align": "center", "text_wrap": True}),
        "colnum": wb.add_format({**border, "italic": True, "align": "center"}),
        "text": wb.add_format({**border, "num_format": "@"}),
        "blank": wb.add_format(border),
        "bool": wb.add_format(border),
        "number": wb.add_format({**border, "num_format": "#,##0.##"}),
        "date": wb.add_format({**border, "num_format": "dd/mm/yyyy"}),
        "datetime": wb.add_format({**border, "num_format": "dd/mm/yyyy hh:mm:ss"}),
        "total_label": wb.add_format({**border, "bold": True, "align": "center"}),
        "total": wb.add_format({**border, "bold": True, "num_format": "#,##0.##"}),
        "sign": wb.add_format({**font, "bold": True, "align": "center"}),
    }
    ws = wb.add_worksheet(sheet)
    ws.set_landscape()
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)
    for cell in cells:
        fmt = formats[cell.style]
        if cell.last_row is not None and (cell.last_row, cell.last_col) != (cell.row, cell.col):
            ws.merge_range(cell.row, cell.col, cell.last_row, cell.last_col, "", fmt)
        _xlsx_write(ws, cell, fmt)
    for name, table in (extra_sheets or {}).items():
        extra = wb.add_worksheet(name)
        for r, values in enumerate(table):
            for c, value in enumerate(values):
                _xlsx_write(extra, _Cell(r, c, value, _style_of(value)), formats[_style_of(value)])
    wb.close()


def _xlsx_write(ws: Any, cell: _Cell, fmt: Any) -> None:
    value = cell.value
    if value is None:
        ws.write_blank(cell.row, cell.col, None, fmt)
    elif isinstance(value, str):
        ws.write_string(cell.row, cell.col, value, fmt)  # never let "0301234567" become a number
    elif isinstance(value, bool):
        ws.write_boolean(cell.row, cell.col, value, fmt)
    elif isinstance(value, dt.date):
        ws.write_datetime(cell.row, cell.col, value, fmt)
    else:
        ws.write_number(cell.row, cell.col, value, fmt)


def write_gov_xls(
    path_or_buffer: str | IO[bytes],
    *,
    sheet: str,
    banner: list[str],
    title: str,
    period: str,
    headers: list[Header],
    rows: list[list | None],
    totals: dict[int, object] | None = None,
    signature: list[str] | None = None,
    extra_sheets: dict[str, list[list]] | None = None,
    column_numbers: str | None = "({})",
) -> None:
    """Same as write_gov_xlsx, in the legacy .xls (BIFF8) format many district systems still export."""
    import xlwt

    cells, widths = _plan(banner, title, period, headers, rows, totals, signature, column_numbers)
    font = "font: name Times New Roman, height 240"
    borders = "borders: left thin, right thin, top thin, bottom thin"
    center = "align: horiz center, vert center, wrap on"
    styles = {
        "banner": xlwt.easyxf(f"{font}, bold on; align: horiz center"),
        "title": xlwt.easyxf(f"{font}, bold on, height 280; align: horiz center"),
        "period": xlwt.easyxf(f"{font}, italic on; align: horiz center"),
        "header": xlwt.easyxf(f"{font}, bold on; {borders}; {center}"),
        "colnum": xlwt.easyxf(f"{font}, italic on; {borders}; {center}"),
        "text": xlwt.easyxf(f"{font}; {borders}", num_format_str="@"),
        "blank": xlwt.easyxf(f"{font}; {borders}"),
        "bool": xlwt.easyxf(f"{font}; {borders}"),
        "number": xlwt.easyxf(f"{font}; {borders}", num_format_str="#,##0.##"),
        "date": xlwt.easyxf(f"{font}; {borders}", num_format_str="dd/mm/yyyy"),
        "datetime": xlwt.easyxf(f"{font}; {borders}", num_format_str="dd/mm/yyyy hh:mm:ss"),
        "total_label": xlwt.easyxf(f"{font}, bold on; {borders}; {center}"),
        "total": xlwt.easyxf(f"{font}, bold on; {borders}", num_format_str="#,##0.##"),
        "sign": xlwt.easyxf(f"{font}, bold on; align: horiz center"),
    }
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet(sheet)
    for i, w in enumerate(widths):
        ws.col(i).width = 256 * w
    for cell in cells:
        style = styles[cell.style]
        value = "" if cell.value is None else cell.value
        if cell.last_row is not None and (cell.last_row, cell.last_col) != (cell.row, cell.col):
            ws.write_merge(cell.row, cell.last_row, cell.col, cell.last_col, value, style)
        else:
            ws.write(cell.row, cell.col, value, style)
    for name, table in (extra_sheets or {}).items():
        extra = wb.add_sheet(name)
        for r, values in enumerate(table):
            for c, value in enumerate(values):
                if value is not None:
                    extra.write(r, c, value, styles[_style_of(value)])
    wb.save(path_or_buffer)
