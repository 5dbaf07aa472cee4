"""Reading departmental Excel exports in the real government layout (banner, two-row header, totals, signature)."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile

import pytest
import xlsxwriter

from assets.demo.govexcel import write_gov_xls, write_gov_xlsx
from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Skipped
from assets.extract.excel import read_excel

BANNER = [
    "ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH",
    "SỞ TÀI CHÍNH",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
]
HEADERS = [
    "Mã số\ndoanh nghiệp",  # line break inside the cell, as departments wrap long headers
    "Tên doanh nghiệp (*)",
    ("Người đại diện theo pháp luật", ["Họ và tên", "Số CCCD"]),
    "Vốn điều lệ (đồng):",
    "Ngày thành lập",
    "Phường/xã",
    "Ghi chú",
]
ROWS = [
    ["0301234567", "Công ty TNHH Sài Gòn Xanh", "Nguyễn Văn An", "079085001234", 1500000000, dt.date(2026, 10, 5),
     "Phường Bến Thành"],
    None,  # a blank row left inside the data
    ["0312345678-001", "Công ty CP Thủ Đức", "Lê Thị Hoà", "001190004567", 2500000.5,
     dt.datetime(2026, 10, 6, 14, 30, 15), "Phường Thủ Đức"],
    ["0108765432", "Tổng công ty Điện lực", "Trần Bình", None, 0, dt.date(2026, 10, 31), "Xã Cần Giờ"],
]
COLUMNS = {
    "ma_so_thue": ["Mã số doanh nghiệp", "Mã số thuế", "MST"],
    "ten_doanh_nghiep": ["Tên doanh nghiệp"],
    "ho_ten_dai_dien": ["Người đại diện theo pháp luật / Họ và tên"],  # group / sub-header
    "so_cccd_dai_dien": ["Số CCCD"],  # sub-header alone, unique in the sheet
    "von_dieu_le": ["Vốn điều lệ (đồng)"],
    "ngay_thanh_lap": ["Ngay thanh lap"],  # written without diacritics
    "ten_phuong_xa": ["Phường / Xã"],
}
EXPECTED = [
    {
        "ma_so_thue": "0301234567",
        "ten_doanh_nghiep": "Công ty TNHH Sài Gòn Xanh",
        "ho_ten_dai_dien": "Nguyễn Văn An",
        "so_cccd_dai_dien": "079085001234",
        "von_dieu_le": "1500000000",
        "ngay_thanh_lap": "05/10/2026",
        "ten_phuong_xa": "Phường Bến Thành",
        ROW_COLUMN: 12,
    },
    {
        "ma_so_thue": "0312345678-001",
        "ten_doanh_nghiep": "Công ty CP Thủ Đức",
        "ho_ten_dai_dien": "Lê Thị Hoà",
        "so_cccd_dai_dien": "001190004567",
        "von_dieu_le": "2500000.5",
        "ngay_thanh_lap": "06/10/2026 14:30:15",
        "ten_phuong_xa": "Phường Thủ Đức",
        ROW_COLUMN: 14,
    },
    {
        "ma_so_thue": "0108765432",
        "ten_doanh_nghiep": "Tổng công ty Điện lực",  # not mistaken for a "Tổng cộng" row
        "ho_ten_dai_dien": "Trần Bình",
        "so_cccd_dai_dien": None,
        "von_dieu_le": "0",
        "ngay_thanh_lap": "31/10/2026",
        "ten_phuong_xa": "Xã Cần Giờ",
        ROW_COLUMN: 15,
    },
]
# Rows: 1-4 banner, 5 blank, 6 title, 7 period, 8 blank, 9-10 header, 11 column numbers, 12-15 data
# (13 blank), 16 blank, 17 Tổng cộng, 18 blank, 19-24 signature.
EXPECTED_SKIPPED = [
    Skipped("rows 1-8", "banner above the header"),
    Skipped("rows 9-10", "header"),
    Skipped("row 11", "column-number row"),
    Skipped("row 13", "blank row"),
    Skipped("row 16", "blank row"),
    Skipped("row 17", "totals row (Tổng cộng)"),
    Skipped("rows 18-24", "signature block"),
]


def gov_workbook(writer=write_gov_xlsx, **overrides) -> bytes:
    options = dict(
        sheet="DN",
        banner=BANNER,
        title="DANH SÁCH DOANH NGHIỆP ĐĂNG KÝ THÀNH LẬP MỚI",
        period="Tháng 10 năm 2026",
        headers=HEADERS,
        rows=ROWS,
        totals={4: 1502500000.5},
    )
    options.update(overrides)
    buffer = io.BytesIO()
    writer(buffer, **options)
    return buffer.getvalue()


def records(extracted) -> list[dict]:
    frame = extracted.frame.astype(object).where(extracted.frame.notna(), None)
    return frame.to_dict("records")


@pytest.mark.parametrize("writer", [write_gov_xlsx, write_gov_xls], ids=["xlsx", "xls"])
def test_government_layout_yields_exactly_the_data_rows(writer, tmp_path):
    path = tmp_path / ("dn.xlsx" if writer is write_gov_xlsx else "dn.xls")
    writer(
        str(path),
        sheet="DN",
        banner=BANNER,
        title="DANH SÁCH DOANH NGHIỆP ĐĂNG KÝ THÀNH LẬP MỚI",
        period="Tháng 10 năm 2026",
        headers=HEADERS,
        rows=ROWS,
        totals={4: 1502500000.5},
    )
    got = read_excel(path.read_bytes(), path.name, COLUMNS, sheet="DN")

    assert list(got.frame.columns) == [*COLUMNS, ROW_COLUMN]
    assert records(got) == EXPECTED
    assert got.skipped == EXPECTED_SKIPPED
    assert "columns not in the contract, ignored: STT (A), Ghi chú (I)" in got.notes
    assert any("DANH SÁCH DOANH NGHIỆP ĐĂNG KÝ THÀNH LẬP MỚI" in n and "Tháng 10 năm 2026" in n for n in got.notes)


def test_stt_column_kept_when_the_contract_asks_for_it():
    got = read_excel(gov_workbook(), "dn.xlsx", {"stt": ["STT"], "ma_so_thue": ["MST", "Mã số doanh nghiệp"]})
    assert got.frame["stt"].tolist() == ["1", "2", "3"]
    assert got.frame["ma_so_thue"].tolist() == ["0301234567", "0312345678-001", "0108765432"]


def test_sub_header_matches_alone_or_with_its_group_and_old_tone_marks():
    columns = {
        "ho_ten": ["Họ và tên"],
        "cccd": ["NGƯỜI ĐẠI DIỆN THEO PHÁP LUẬT/SỐ CCCD"],
        "phuong": ["Phường/xã:"],
        "ten": ["Tên doanh nghiệp"],
    }
    got = read_excel(gov_workbook(), "dn.xlsx", columns)
    assert got.frame["ho_ten"].tolist() == ["Nguyễn Văn An", "Lê Thị Hoà", "Trần Bình"]
    assert got.frame["cccd"].tolist()[:2] == ["079085001234", "001190004567"]
    # Old tone placement "hoà" in an alias still finds a header written "hòa".
    headers = ["Mã số thuế", "Địa chỉ (phường Tân Hòa)"]
    data = gov_workbook(headers=headers, rows=[["0301234567", "12 Lê Lợi"]], totals=None)
    got = read_excel(data, "dn.xlsx", {"mst": ["MST", "mã số thuế"], "dia_chi": ["Địa chỉ (phường Tân Hoà)"]})
    assert records(got) == [{"mst": "0301234567", "dia_chi": "12 Lê Lợi", ROW_COLUMN: 12}]


def test_sheet_chosen_by_name_among_several():
    extra = {
        "Hướng dẫn": [["Điền mỗi doanh nghiệp một dòng"]],
        "Phụ lục": [
            ["STT", "Mã số thuế", "Tên doanh nghiệp"],
            [1, "0300000001", "Chi nhánh Quận 1"],
            [2, "0300000002", "Chi nhánh Gò Vấp"],
        ],
    }
    data = gov_workbook(extra_sheets=extra)
    columns = {"ma_so_thue": ["Mã số thuế"], "ten_doanh_nghiep": ["Tên doanh nghiệp"]}

    annex = read_excel(data, "dn.xlsx", columns, sheet="Phụ lục")
    assert records(annex) == [
        {"ma_so_thue": "0300000001", "ten_doanh_nghiep": "Chi nhánh Quận 1", ROW_COLUMN: 2},
        {"ma_so_thue": "0300000002", "ten_doanh_nghiep": "Chi nhánh Gò Vấp", ROW_COLUMN: 3},
    ]
    assert annex.skipped == [Skipped("row 1", "header")]
    main = read_excel(data, "dn.xlsx", {"ma_so_thue": ["Mã số doanh nghiệp"]}, sheet="DN")
    assert main.frame["ma_so_thue"].tolist() == ["0301234567", "0312345678-001", "0108765432"]
    by_default = read_excel(data, "dn.xlsx", {"ma_so_thue": ["Mã số doanh nghiệp"]})
    assert by_default.frame["ma_so_thue"].tolist() == main.frame["ma_so_thue"].tolist()
    by_index = read_excel(data, "dn.xlsx", columns, sheet=2)
    assert by_index.frame["ma_so_thue"].tolist() == ["0300000001", "0300000002"]


def test_plain_numbered_column_row_and_signature_without_totals_row():
    # "1 2 3" as numbers under the header; no totals row, the block starts at "Người lập biểu".
    table = [
        ["SỞ Y TẾ"],
        ["DANH SÁCH CƠ SỞ KHÁM CHỮA BỆNH"],
        [],
        ["STT", "Mã cơ sở", "Tên cơ sở", "Số giường"],
        [1, 2, 3, 4],
        [1, "079001", "Bệnh viện Quận 1", 120],
        [2, "079002", "Phòng khám Bình Thạnh", None],
        [],
        [None, "Người lập biểu", None, "Giám đốc"],
        [None, None, None, None],
        [None, "Phạm Thị Cúc", None, "Võ Văn Đông"],
    ]
    data = gov_workbook(extra_sheets={"CSKCB": table})
    got = read_excel(data, "yte.xlsx", {"ma_co_so": ["Mã cơ sở"], "so_giuong": ["Số giường"]}, sheet="CSKCB")
    assert records(got) == [
        {"ma_co_so": "079001", "so_giuong": "120", ROW_COLUMN: 6},
        {"ma_co_so": "079002", "so_giuong": None, ROW_COLUMN: 7},
    ]
    assert got.skipped == [
        Skipped("rows 1-3", "banner above the header"),
        Skipped("row 4", "header"),
        Skipped("row 5", "column-number row"),
        Skipped("row 8", "blank row"),
        Skipped("rows 9-11", "signature block"),
    ]


def test_grand_total_above_the_details_does_not_end_the_table():
    # Statistical reports put the grand total first; a second "Cộng" closes the table.
    table = [
        ["BÁO CÁO DÂN SỐ THEO PHƯỜNG"],
        ["Phường", "Số hộ", 2025],  # a year header stored as a number
        ["Tổng cộng", 30, 90],
        ["Phường Sài Gòn", 10, 30],
        ["Phường Tân Định", 20, 60],
        [],
        ["Cộng", 30, 90],
        [None, "Trưởng phòng"],
    ]
    data = gov_workbook(extra_sheets={"DanSo": table})
    got = read_excel(data, "danso.xlsx", {"phuong": ["Phường"], "nam_2025": ["2025"]}, sheet="danso")
    assert records(got) == [
        {"phuong": "Phường Sài Gòn", "nam_2025": "30", ROW_COLUMN: 4},
        {"phuong": "Phường Tân Định", "nam_2025": "60", ROW_COLUMN: 5},
    ]
    assert got.skipped == [
        Skipped("row 1", "banner above the header"),
        Skipped("row 2", "header"),
        Skipped("row 3", "totals row (Tổng cộng)"),
        Skipped("row 6", "blank row"),
        Skipped("row 7", "totals row (Cộng)"),
        Skipped("row 8", "signature block"),
    ]
    assert got.notes[0] == "sheet 'danso' read as 'DanSo' (names differ only in case or spaces)"
    assert "columns not in the contract, ignored: Số hộ (B)" in got.notes


def test_unmerged_two_row_header_and_merged_data_cells(tmp_path):
    # A hand-made export: the group header written once without merging, and one ward merged down two rows.
    path = tmp_path / "hand.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, ["UBND PHƯỜNG SÀI GÒN"])
    ws.write_row(2, 0, ["STT", "Phường", "Chủ hộ", None])
    ws.write_row(3, 0, [None, None, "Họ tên", "Số điện thoại"])
    ws.write_row(4, 0, ["(1)", "(2)", "(3)", "(4)"])
    ws.merge_range(5, 1, 6, 1, "Phường Sài Gòn")
    ws.write_row(5, 2, ["Đỗ An", "0903123456"])
    ws.write_row(6, 0, [2, None, "Hồ Bình", "0283822123"])
    ws.write(5, 0, 1)
    ws.write_row(7, 0, ["Cộng:", None, 2])
    wb.close()
    columns = {"phuong": ["Phường"], "ho_ten": ["Chủ hộ / Họ tên"], "dien_thoai": ["Chủ hộ / Số điện thoại"]}
    got = read_excel(path.read_bytes(), "hand.xlsx", columns)
    assert records(got) == [
        {"phuong": "Phường Sài Gòn", "ho_ten": "Đỗ An", "dien_thoai": "0903123456", ROW_COLUMN: 6},
        {"phuong": "Phường Sài Gòn", "ho_ten": "Hồ Bình", "dien_thoai": "0283822123", ROW_COLUMN: 7},
    ]
    assert Skipped("rows 3-4", "header") in got.skipped
    assert Skipped("row 8", "totals row (Cộng:)") in got.skipped


# ------------------------------------------------------------------------------------------------ errors


def test_no_header_names_missing_columns_and_best_candidate():
    columns = {**COLUMNS, "nganh_nghe": ["Ngành nghề kinh doanh chính"]}
    with pytest.raises(ExportError) as err:
        read_excel(gov_workbook(), "dn_t10.xlsx", columns, sheet="DN")
    assert err.value.file == "dn_t10.xlsx"
    assert err.value.place == "sheet 'DN', rows 9-10"
    assert "missing nganh_nghe (any of: 'Ngành nghề kinh doanh chính')" in str(err.value)
    assert "best candidate rows 9-10 matched 7 of 8" in str(err.value)
    assert str(err.value).startswith("dn_t10.xlsx at sheet 'DN', rows 9-10: header not found")


def test_header_found_twice():
    # A second table pasted under the first one, with its own header.
    second = ["Mã số doanh nghiệp", "Tên doanh nghiệp", "Họ và tên", "Số CCCD"]
    rows = [ROWS[0], None, second, ["0309999999", "Công ty Bảng Hai", "Vũ Hải", "079000000001"]]
    with pytest.raises(ExportError) as err:
        read_excel(gov_workbook(rows=rows), "dn.xlsx", COLUMNS, sheet="DN")
    assert err.value.place == "sheet 'DN', row 14"
    assert "header found twice: rows 9-10 and row 14" in str(err.value)
    assert "dn.xlsx" in str(err.value)


def test_missing_sheet_lists_the_sheets_that_exist():
    data = gov_workbook(extra_sheets={"Phụ lục": [["x"]]})
    with pytest.raises(ExportError) as err:
        read_excel(data, "dn.xlsx", COLUMNS, sheet="Doanh nghiệp")
    assert err.value.place == "sheet 'Doanh nghiệp'"
    assert "sheets in the file: 'DN', 'Phụ lục'" in str(err.value)
    assert str(err.value).startswith("dn.xlsx at sheet 'Doanh nghiệp': ")


@pytest.mark.parametrize("writer", [write_gov_xlsx, write_gov_xls], ids=["xlsx", "xls"])
def test_truncated_file(writer):
    data = gov_workbook(writer)
    half = data[: len(data) // 2]
    with pytest.raises(ExportError) as err:
        read_excel(half, "cut.xlsx", COLUMNS)
    assert err.value.file == "cut.xlsx"
    assert "truncated or corrupt" in err.value.reason
    assert err.value.place
    assert str(err.value).startswith(f"cut.xlsx at {err.value.place}: ")


def _with_padded_sheet(data: bytes, padding: int) -> bytes:
    """The same xlsx with the sheet XML padded by whitespace: valid XML that deflates ~1000:1."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"</worksheet>", b" " * padding + b"</worksheet>")
            target.writestr(info.filename, content)
    return out.getvalue()


def _declare_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite a member's declared uncompressed size in both zip headers (a lying zip bomb)."""
    buf = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    struct.pack_into("<I", buf, info.header_offset + 22, size)
    at = 0
    while (at := bytes(buf).find(b"PK\x01\x02", at)) != -1:
        name_len = struct.unpack_from("<H", buf, at + 28)[0]
        if bytes(buf[at + 46 : at + 46 + name_len]).decode() == member:
            struct.pack_into("<I", buf, at + 24, size)
        at += 4
    return bytes(buf)


def test_zip_bomb_refused_before_calamine_inflates_it():
    bomb = _with_padded_sheet(gov_workbook(), 8_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(ExportError) as err:
        read_excel(bomb, "bomb.xlsx", COLUMNS, max_bytes=200_000)  # content may expand to 2 MB
    assert err.value.place == "zip member 'xl/worksheets/sheet1.xml'"
    assert "zip bomb refused" in str(err.value)
    assert str(err.value).startswith("bomb.xlsx at zip member 'xl/worksheets/sheet1.xml': ")

    # The same bomb declaring a harmless size is caught while inflating, not trusted.
    liar = _declare_size(bomb, "xl/worksheets/sheet1.xml", 5_000)
    assert zipfile.ZipFile(io.BytesIO(liar)).getinfo("xl/worksheets/sheet1.xml").file_size == 5_000
    with pytest.raises(ExportError) as err:
        read_excel(liar, "liar.xlsx", COLUMNS, max_bytes=200_000)
    assert err.value.place == "zip member 'xl/worksheets/sheet1.xml'"
    assert "zip bomb refused" in str(err.value)

    # Modest padding under the limits still reads.
    padded = _with_padded_sheet(gov_workbook(), 50_000)
    assert records(read_excel(padded, "ok.xlsx", COLUMNS, max_bytes=200_000)) == EXPECTED


@pytest.mark.parametrize("writer", [write_gov_xlsx, write_gov_xls], ids=["xlsx", "xls"])
def test_size_limits(writer):
    data = gov_workbook(writer)
    with pytest.raises(ExportError) as err:
        read_excel(data, "big.xlsx", COLUMNS, max_bytes=len(data) - 1)
    assert "over the" in err.value.reason and err.value.place.startswith("whole file")
    with pytest.raises(ExportError) as err:
        read_excel(data, "wide.xlsx", COLUMNS, sheet="DN", max_cells=100)
    assert err.value.place == "sheet 'DN'"
    assert "24 rows x 9 columns, over the 100-cell limit" in err.value.reason


def test_not_an_excel_file():
    html = "<html><body><table><tr><td>Mã số thuế</td></tr></table></body></html>".encode()
    with pytest.raises(ExportError) as err:
        read_excel(html, "export.xls", COLUMNS)
    assert "HTML" in err.value.reason and err.value.place == "start of file (byte 0)"


def test_ambiguous_sub_header_alias():
    headers = [("Người đại diện", ["Họ và tên"]), ("Kế toán trưởng", ["Họ và tên"])]
    data = gov_workbook(headers=headers, rows=[["An", "Bình"]], totals=None)
    with pytest.raises(ExportError) as err:
        read_excel(data, "dn.xlsx", {"ho_ten": ["Họ và tên"]})
    assert "matches several columns" in err.value.reason and "'group / header'" in err.value.reason
    got = read_excel(data, "dn.xlsx", {"ke_toan": ["Kế toán trưởng / Họ và tên"]})
    assert got.frame["ke_toan"].tolist() == ["Bình"]
