"""The business-registration office's monthly workbook through the pipeline: the government layout in .xlsx and
legacy .xls, pre-2025 ward codes converted (splits flagged, never guessed), tax codes kept as text; and the
workbooks that must fail alone (sheet missing, truncated, no header, header found twice)."""

from __future__ import annotations

import hashlib
import io
from datetime import date
from pathlib import Path

import pytest

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.businesses import DEFECTS, HEADERS, SHEET, business_rows, expected_quarantine, write_businesses
from assets.demo.govexcel import write_gov_xls, write_gov_xlsx
from tests.conftest import query, run_datasets

FIRMS = load_contract(CONTRACTS_DIR / "dang_ky_doanh_nghiep.yaml")
# The same contract for a district office whose system still writes .xls.
FIRMS_XLS = FIRMS.model_copy(update={"landing": "so_tai_chinh/dang_ky_doanh_nghiep/*.xls",
                                     "format": FIRMS.format.model_copy(update={"type": "xls"})})
LANDING = Path("landing/so_tai_chinh/dang_ky_doanh_nghiep")
ROWS = 100  # the 20 seeded defects stay under the contract's 25% rejected-share limit
READ = ROWS + DEFECTS["duplicate_row"]
KEY = "kho-test-pseudonym-key-0123456789abcdef"
LEAVES = [leaf for h in HEADERS for leaf in (h[1] if isinstance(h, tuple) else [h])]



def _workbook(**changes) -> bytes:
    buf = io.BytesIO()
    args = dict(sheet=SHEET, banner=["ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH", "SỞ TÀI CHÍNH"],
                title="DANH SÁCH DOANH NGHIỆP ĐĂNG KÝ THÀNH LẬP MỚI", period="Tháng 10 năm 2026",
                headers=HEADERS, rows=business_rows(20, date(2026, 10, 1), seed=5))
    write_gov_xlsx(buf, **{**args, **changes})
    return buf.getvalue()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("excel")
    landing = data_dir / LANDING
    good = write_businesses(landing / "dn_thanh_lap_2026_10.xlsx", rows=ROWS)
    full = _workbook()
    rows = business_rows(20, date(2026, 10, 1), seed=5)
    # A month's newest workbook is its export: each bad one is the export of a month of its own, and fails alone.
    bad = {
        "sheet missing": ("dn_2026_05_sheet1.xlsx", _workbook(sheet="Sheet1"), "sheet 'DN thành lập mới' not found",
                          f"at sheet '{SHEET}'"),
        "truncated": ("dn_2026_06_upload_cut.xlsx", full[: len(full) * 4 // 5], "truncated or corrupt", "at end of file"),
        "no header": ("dn_2026_07_no_header.xlsx", _workbook(headers=["Cột 1", "Cột 2", "Cột 3"], rows=[["1", "2", "3"]]),
                      "header not found", f"at sheet '{SHEET}', rows 1-"),
        "header twice": ("dn_2026_08_two_tables.xlsx", _workbook(rows=rows[:10] + [None, LEAVES] + rows[10:]),
                         "header found twice", f"at sheet '{SHEET}', row "),
    }
    for name, data, _, _ in bad.values():
        (landing / name).write_bytes(data)
    xls = landing / "dn_thanh_lap_2026_09.xls"
    write_gov_xls(str(xls), sheet=SHEET, banner=["SỞ TÀI CHÍNH"], title="DANH SÁCH DOANH NGHIỆP",
                  period="Tháng 09 năm 2026", headers=HEADERS, rows=business_rows(ROWS, date(2026, 9, 1), seed=3))
    env = pytest.MonkeyPatch()
    env.setenv("KHO_PSEUDONYM_KEY", KEY)  # module scope: the per-test key fixture is not active yet
    try:
        xlsx_runs = run_datasets(data_dir, FIRMS)
        xls_runs = run_datasets(data_dir, FIRMS_XLS)
    finally:
        env.undo()
    return data_dir, good, xls, bad, xlsx_runs, xls_runs


def test_government_workbook_loads(loaded):
    data_dir, good, xls, _, xlsx_runs, xls_runs = loaded
    assert xls_runs.success
    assert [r.success for r in xlsx_runs.results] == [False] * 4 + [True]  # May-August fail, October loads
    log = query(data_dir, "SELECT * FROM kho_load_log WHERE status = 'loaded'").set_index("file_name")
    row = log.loc[str(good.relative_to(data_dir / "landing"))]
    assert (row.rows_read, row.rows_loaded, row.rows_quarantined) == (
        READ, READ - expected_quarantine(), expected_quarantine())
    row = log.loc[str(xls.relative_to(data_dir / "landing"))]
    assert (row.rows_read, row.rows_quarantined) == (READ, expected_quarantine())

    curated = query(data_dir, "SELECT * FROM dang_ky_doanh_nghiep")
    assert set(curated["ky"]) == {"2026-09", "2026-10"}
    assert curated["ma_so_thue"].str.fullmatch(r"03\d{8}").all()  # text: the leading zero stays
    assert (curated["von_dieu_le"] % 1_000_000 == 0).all() and curated["von_dieu_le"].min() >= 100_000_000
    # Old wards are converted to their 2025 unit: Tân Định (26734) is now 26737, Bến Nghé (26740) is 26740.
    old_to_new = curated.groupby("ten_phuong_xa_cu")["ma_phuong_xa"].agg(set).to_dict()
    assert old_to_new["Phường Tân Định"] == {"26737"} and old_to_new["Phường Bến Nghé"] == {"26740"}
    assert curated["nguoi_dai_dien"].str.startswith("ps_").all()  # personal: pseudonyms only

    q = query(data_dir, "SELECT * FROM quarantine_dang_ky_doanh_nghiep")
    q = q[q["_kho_file_sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()]
    assert len(q) == expected_quarantine()
    reasons = q["_kho_reasons"].str.split(";").explode().str.split(":").str[0].value_counts().to_dict()
    assert reasons == {
        "invalid_tax_code": DEFECTS["invalid_tax_code"] + DEFECTS["tax_code_as_number"],
        "ward_ambiguous_split": DEFECTS["ward_ambiguous_split"], "ward_unknown": DEFECTS["ward_unknown"],
        "invalid_number": DEFECTS["invalid_number"], "invalid_date": DEFECTS["invalid_date"],
        "unknown_value": DEFECTS["unknown_value"],
        "expect_column_values_to_match_regex": DEFECTS["vsic_not_level4"],
        "invalid_citizen_id": DEFECTS["invalid_citizen_id"], "duplicate_row": DEFECTS["duplicate_row"],
    }
    split = q[q["_kho_reasons"].str.contains("ward_ambiguous_split")]
    assert set(split["ma_phuong_xa"]) <= {"26737", "26746", "27148"}  # the old code as the office wrote it
    assert set(q[q["_kho_reasons"].str.contains("invalid_number")]["von_dieu_le"]) == {"1,5 tỷ"}
    assert q[q["_kho_reasons"].str.contains("invalid_tax_code")]["ma_so_thue"].str.len().min() == 9  # lost its 0


def test_unreadable_workbooks_fail_alone(loaded):
    data_dir, _, _, bad, _, _ = loaded
    log = query(data_dir, "SELECT * FROM kho_load_log WHERE status = 'failed'").set_index("file_name")
    assert len(log) == len(bad)
    for case, (name, data, reason, place) in bad.items():
        row = log.loc[str(LANDING.relative_to("landing") / name)]
        assert name in row.message and reason in row.message and place in row.message, (case, row.message)
        sha = hashlib.sha256(data).hexdigest()
        assert (data_dir / "raw" / sha[:2] / sha).read_bytes() == data, case  # kept in the archive as received
