"""Demo export of the one-stop system: public-service dossiers, as the system writes its monthly CSV.

Seeded and deterministic. Defects are deliberate and counted (`DEFECTS`), so tests and the demo summary
know exactly how many rows the pipeline must quarantine.
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from datetime import date, timedelta
from pathlib import Path

from quality.taxcode import is_valid_tax_code

HEADERS = ["Mã hồ sơ", "Mã thủ tục", "Tên thủ tục", "Mã cơ quan", "Cơ quan tiếp nhận", "Mã phường/xã",
           "Kênh tiếp nhận", "Mức độ", "Ngày tiếp nhận", "Ngày hẹn trả", "Ngày hoàn thành", "Ngày trả kết quả",
           "Trạng thái", "Họ tên người nộp", "Số CCCD", "Số điện thoại", "Mã số thuế", "Lệ phí (đồng)"]

PROCEDURES = [
    ("1.001612", "Đăng ký thành lập hộ kinh doanh", 100_000),
    ("1.000894", "Đăng ký khai sinh", 0),
    ("1.001193", "Cấp giấy phép xây dựng nhà ở riêng lẻ", 75_000),
    ("2.000908", "Chứng thực bản sao từ bản chính", 2_000),
    ("1.004227", "Đăng ký kết hôn", 0),
    ("1.010726", "Cấp phiếu lý lịch tư pháp", 200_000),
]
AGENCIES = [("000.00.12.H29", "Ủy ban nhân dân Phường Sài Gòn"), ("000.00.13.H29", "Ủy ban nhân dân Phường Bến Thành"),
            ("000.00.21.H29", "Sở Tư pháp"), ("000.00.25.H29", "Sở Xây dựng")]
WARDS = ["26740", "26743", "26758", "26767", "27142", "26506", "27073", "26944"]  # current HCMC units
CHANNELS = ["Trực tiếp", "Trực tuyến", "Bưu chính công ích"]
STATUSES = ["Đang xử lý", "Đã hoàn thành", "Đã trả kết quả", "Chờ bổ sung"]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Hoàng", "Thanh", "Đức"]
GIVEN = ["An", "Bình", "Hoà", "Thuỷ", "Dũng", "Hương", "Khoa", "Lan", "Phúc", "Tâm", "Yến", "Quý"]
MOBILE = ["090", "091", "093", "097", "098", "032", "035", "070", "079", "081", "085", "056"]
OLD_MOBILE = ["0168", "0169", "0120", "0121", "0126", "0123", "0188"]  # converted in 2018: still written

# Defect kinds and how many rows each produces (per file); every one is a quarantined row.
DEFECTS = {
    "invalid_date": 3,  # 31/02, 2026/13/45, 00/10/2026 in ngay_tiep_nhan
    "invalid_tax_code": 4,  # wrong check digit
    "duplicate_row": 3,  # exact repeats of a dossier: the repeats are quarantined, the first kept
    "duplicate_key_conflict": 2,  # two different rows with one dossier code: both quarantined
    "invalid_phone": 2,
    "unknown_value": 2,  # channel "Fax"
    "due_before_received": 2,  # ngay_hen_tra before ngay_tiep_nhan
}


def tax_code(rng: random.Random) -> str:
    while True:
        head = f"03{rng.randrange(10**7):07d}"
        for check in "0123456789":
            if is_valid_tax_code(head + check):
                return head + check


def cccd(rng: random.Random) -> str:
    year = rng.randrange(1950, 2006)
    century_sex = (0 if year < 2000 else 2) + rng.randrange(2)
    return f"079{century_sex}{year % 100:02d}{rng.randrange(10**6):06d}"


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"{rng.choice(OLD_MOBILE)}{rng.randrange(10**7):07d}"
    if rng.random() < 0.05:
        return f"028 3{rng.randrange(10**3):03d} {rng.randrange(10**4):04d}"  # HCMC landline
    number = f"{rng.choice(MOBILE)}{rng.randrange(10**7):07d}"
    return number if rng.random() < 0.8 else f"{number[:4]}.{number[4:7]}.{number[7:]}"


def _name(rng: random.Random) -> str:
    name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
    if rng.random() < 0.3:  # some systems write decomposed Unicode (NFD)
        name = unicodedata.normalize("NFD", name)
    return name if rng.random() < 0.9 else f"  {name}  "  # stray spaces


def dossier_rows(rows: int, month: date, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        code, proc, fee = rng.choice(PROCEDURES)
        agency = rng.choice(AGENCIES)
        received = month + timedelta(days=rng.randrange(28))
        due = received + timedelta(days=rng.choice([1, 3, 5, 7, 15]))
        finished = received + timedelta(days=rng.randrange(0, 20)) if rng.random() < 0.7 else None
        returned = finished + timedelta(days=rng.randrange(0, 3)) if finished and rng.random() < 0.8 else None
        status = ("Đã trả kết quả" if returned else "Đã hoàn thành") if finished else rng.choice(STATUSES[0::3])
        company = tax_code(rng) if rng.random() < 0.25 else ""
        fmt = lambda d: d.strftime("%d/%m/%Y") if d else ""  # noqa: E731
        out.append([
            f"HCM-{month:%Y%m}-{i + 1:07d}", code, proc, agency[0], agency[1], rng.choice(WARDS),
            rng.choice(CHANNELS), rng.choice(["Toàn trình", "Một phần"]), fmt(received), fmt(due), fmt(finished),
            fmt(returned), status, _name(rng), cccd(rng), _phone(rng), company,
            f"{fee:,}".replace(",", ".") if fee else "0",
        ])
    _seed_defects(out, rng)
    return out


def _seed_defects(rows: list[list[str]], rng: random.Random) -> None:
    """Damage distinct rows in place, one defect each, so the expected quarantine count is exact."""
    picks = iter(rng.sample(range(len(rows)), sum(DEFECTS.values())))
    for bad in ["31/02/2026", "2026/13/45", "00/10/2026"][: DEFECTS["invalid_date"]]:
        rows[next(picks)][8] = bad
    for _ in range(DEFECTS["invalid_tax_code"]):
        row = rows[next(picks)]
        good = tax_code(rng)
        row[16] = good[:9] + str((int(good[9]) + 1) % 10)
    for _ in range(DEFECTS["duplicate_row"]):
        rows.append(list(rows[next(picks)]))
    for _ in range(DEFECTS["duplicate_key_conflict"] // 2):
        twin = list(rows[next(picks)])
        twin[12] = "Từ chối" if twin[12] != "Từ chối" else "Đang xử lý"
        rows.append(twin)
    for _ in range(DEFECTS["invalid_phone"]):
        rows[next(picks)][15] = "12345"
    for _ in range(DEFECTS["unknown_value"]):
        rows[next(picks)][6] = "Fax"
    for _ in range(DEFECTS["due_before_received"]):
        row = rows[next(picks)]
        d, m, y = row[8].split("/")
        row[9] = (date(int(y), int(m), int(d)) - timedelta(days=2)).strftime("%d/%m/%Y")


def expected_quarantine() -> int:
    # each conflicting pair quarantines both rows; each exact repeat quarantines the repeat only
    return sum(DEFECTS.values())


def write_dossiers(path: Path, rows: int = 2000, month: date = date(2026, 10, 1), seed: int = 7) -> Path:
    """The monthly export as the one-stop system writes it: UTF-8 with BOM, comma-separated, quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(dossier_rows(rows, month, seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))
    return path
