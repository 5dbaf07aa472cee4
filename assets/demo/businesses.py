"""Demo export of the business-registration office: enterprises newly registered in a month, as the monthly
report workbook in the government layout (banner, two-row header, column numbers, totals, signature).

Seeded and deterministic. Defects are deliberate and counted (`DEFECTS`): each damages one distinct row, so the
pipeline must quarantine exactly `expected_quarantine()` rows.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from assets.demo.dossiers import FAMILY, GIVEN, MIDDLE, cccd, tax_code
from assets.demo.govexcel import write_gov_xlsx

SHEET = "DN thành lập mới"
HEADERS = [
    "Mã số doanh nghiệp", "Tên doanh nghiệp", "Loại hình doanh nghiệp", "Ngày đăng ký",
    ("Địa chỉ trụ sở chính", ["Số nhà, đường", "Phường/xã", "Quận/huyện", "Mã phường/xã"]),
    "Vốn điều lệ (đồng)", "Mã ngành chính",
    ("Người đại diện theo pháp luật", ["Họ và tên", "Số CCCD"]),
]
TYPES = [("Công ty TNHH một thành viên", "Công ty TNHH {} "), ("Công ty TNHH hai thành viên trở lên", "Công ty TNHH {} "),
         ("Công ty cổ phần", "Công ty Cổ phần {} "), ("Doanh nghiệp tư nhân", "Doanh nghiệp tư nhân {} ")]
TRADES = [("4711", "Thương mại"), ("4933", "Vận tải"), ("5610", "Nhà hàng"), ("6201", "Công nghệ phần mềm"),
          ("4100", "Xây dựng"), ("7020", "Tư vấn quản lý"), ("1071", "Thực phẩm"), ("6810", "Bất động sản")]
BRANDS = ["Sài Gòn", "Phương Nam", "Bến Thành", "Thủ Đức", "Gia Định", "Chợ Lớn", "Hòa Bình", "Tân Phú",
          "Minh Khang", "An Phát", "Đại Việt", "Hưng Thịnh"]
STREETS = ["Lê Lợi", "Nguyễn Huệ", "Hai Bà Trưng", "Điện Biên Phủ", "Võ Văn Ngân", "Phan Đăng Lưu", "Hoàng Văn Thụ",
           "Cộng Hòa", "Nguyễn Văn Trỗi"]
# Wards as the register still writes them: pre-2025 codes and names. The last three were split in 2025.
OLD_WARDS = [
    ("26734", "Phường Tân Định", "Quận 1"), ("26740", "Phường Bến Nghé", "Quận 1"),
    ("26743", "Phường Bến Thành", "Quận 1"), ("26749", "Phường Phạm Ngũ Lão", "Quận 1"),
    ("26758", "Phường Nguyễn Cư Trinh", "Quận 1"), ("26800", "Phường Linh Trung", "Thành phố Thủ Đức"),
    ("26809", "Phường Hiệp Bình Phước", "Thành phố Thủ Đức"), ("26905", "Phường 13", "Quận Bình Thạnh"),
    ("26944", "Phường 1", "Quận Bình Thạnh"), ("26977", "Phường 1", "Quận Tân Bình"),
    ("27043", "Phường 4", "Quận Phú Nhuận"),
]
SPLIT_WARDS = [("26737", "Phường Đa Kao", "Quận 1"), ("26746", "Phường Nguyễn Thái Bình", "Quận 1"),
               ("27148", "Phường 4", "Quận 3")]

DEFECTS = {
    "invalid_tax_code": 3,  # wrong check digit
    "tax_code_as_number": 2,  # typed as a number: the leading zero is gone (9 digits) -> invalid_tax_code
    "ward_ambiguous_split": 4,  # old ward split across several 2025 units: flagged, never guessed
    "ward_unknown": 1,
    "invalid_number": 2,  # charter capital written "1,5 tỷ"
    "invalid_date": 2,
    "unknown_value": 1,  # "Chi nhánh" is not an enterprise type
    "vsic_not_level4": 2,  # "47.11": fails the contract's regex expectation
    "invalid_citizen_id": 2,
    "duplicate_row": 1,  # the same enterprise listed twice: the repeat is quarantined
}


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def business_rows(rows: int, month: date, seed: int = 11) -> list[list]:
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        kind, pattern = rng.choice(TYPES)
        vsic, trade = rng.choice(TRADES)
        code, ward, district = rng.choice(OLD_WARDS)
        capital = rng.choice([100, 500, 1_000, 1_500, 2_000, 5_000, 10_000, 50_000]) * 1_000_000
        out.append([
            tax_code(rng), pattern.format(trade) + rng.choice(BRANDS), kind,
            month + timedelta(days=rng.randrange(28)),  # a real date cell
            f"{rng.randrange(1, 300)} {rng.choice(STREETS)}", ward, district, code,
            # Offices type the capital as text with dot grouping, or as a number cell.
            f"{capital:,}".replace(",", ".") if rng.random() < 0.6 else capital,
            vsic, _name(rng), cccd(rng),
        ])
    _seed_defects(out, rng)
    return out


def _seed_defects(rows: list[list], rng: random.Random) -> None:
    picks = iter(rng.sample(range(len(rows)), sum(DEFECTS.values())))
    for _ in range(DEFECTS["invalid_tax_code"]):
        row = rows[next(picks)]
        row[0] = row[0][:9] + str((int(row[0][9]) + 1) % 10)
    for _ in range(DEFECTS["tax_code_as_number"]):
        row = rows[next(picks)]
        row[0] = int(row[0])  # 03xxxxxxxx typed as the number 3xxxxxxxx
    for i in range(DEFECTS["ward_ambiguous_split"]):
        rows[next(picks)][5:8] = [*SPLIT_WARDS[i % len(SPLIT_WARDS)][1:], SPLIT_WARDS[i % len(SPLIT_WARDS)][0]]
    for _ in range(DEFECTS["ward_unknown"]):
        rows[next(picks)][7] = "99999"
    for _ in range(DEFECTS["invalid_number"]):
        rows[next(picks)][8] = "1,5 tỷ"
    for bad in ["31/09/2026", "15/13/2026"][: DEFECTS["invalid_date"]]:
        rows[next(picks)][3] = bad  # typed as text over the date cell
    for _ in range(DEFECTS["unknown_value"]):
        rows[next(picks)][2] = "Chi nhánh"
    for _ in range(DEFECTS["vsic_not_level4"]):
        row = rows[next(picks)]
        row[9] = f"{row[9][:2]}.{row[9][2:]}"
    for _ in range(DEFECTS["invalid_citizen_id"]):
        rows[next(picks)][11] = "07909012345"  # 11 digits
    for _ in range(DEFECTS["duplicate_row"]):
        rows.append(list(rows[next(picks)]))


def expected_quarantine() -> int:
    return sum(DEFECTS.values())


def write_businesses(path: Path, rows: int = 300, month: date = date(2026, 10, 1), seed: int = 11) -> Path:
    """The month's report workbook, as the registration office sends it."""
    data = business_rows(rows, month, seed)
    capital = sum(int(str(r[8]).replace(".", "")) for r in data if str(r[8]).replace(".", "").isdigit())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gov_xlsx(
        str(path), sheet=SHEET,
        banner=["ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH", "SỞ TÀI CHÍNH", "PHÒNG ĐĂNG KÝ KINH DOANH"],
        title="DANH SÁCH DOANH NGHIỆP ĐĂNG KÝ THÀNH LẬP MỚI",
        period=f"Tháng {month.month:02d} năm {month.year}", headers=HEADERS, rows=data,
        totals={8: capital},
        signature=["\tTP. Hồ Chí Minh, ngày 05 tháng 11 năm 2026", "Người lập biểu\tKT. GIÁM ĐỐC",
                   "\tPHÓ GIÁM ĐỐC", "", "Lê Thị Thu\tPhạm Minh Tuấn"],
    )
    return path
