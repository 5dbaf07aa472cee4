"""Demo export of the health department's licensing system: the register of licensed facilities, as its old
system writes it: semicolon-separated CSV in a legacy Vietnamese font encoding (TCVN3/ABC or VNI-Windows),
CRLF line ends. The bytes are produced with the real codec (`assets.extract.encoding.encode`).

Seeded and deterministic; defects are deliberate and counted (`DEFECTS`), one distinct row each.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from assets.demo.dossiers import FAMILY, MIDDLE
from assets.extract.encoding import encode

HEADERS = ["Mã cơ sở", "Tên cơ sở", "Loại hình", "Số giấy phép hoạt động", "Ngày cấp phép", "Địa chỉ",
           "Mã phường/xã", "Số giường bệnh", "Người phụ trách chuyên môn", "Điện thoại"]
KINDS = [("Bệnh viện", "Bệnh viện {}", (50, 900)), ("Phòng khám đa khoa", "Phòng khám đa khoa {}", (0, 20)),
         ("Phòng khám chuyên khoa", "Phòng khám chuyên khoa {}", (0, 5)), ("Trạm y tế", "Trạm y tế {}", (0, 10)),
         ("Nhà hộ sinh", "Nhà hộ sinh {}", (5, 30)),
         ("Phòng chẩn trị y học cổ truyền", "Phòng chẩn trị y học cổ truyền {}", (0, 0))]
NAMES = ["Nhân dân Gia Định", "Thống Nhất", "Chợ Rẫy", "Hùng Vương", "Nguyễn Trãi", "Phước Bình", "Hạnh Phúc",
         "Tâm Đức", "Hoàn Mỹ", "Minh Tâm", "Bình Thạnh", "Phú Nhuận", "Thủ Đức", "Sài Gòn", "Diên Hồng"]
STREETS = ["Nơ Trang Long", "Lý Thường Kiệt", "Nguyễn Chí Thanh", "Trần Hưng Đạo", "Lê Văn Việt",
           "Phạm Văn Đồng", "Quang Trung", "Nguyễn Thị Minh Khai", "Bạch Đằng"]
# Given names whose capital letter TCVN3 can write (it has no uppercase toned letters).
GIVEN = ["Bình", "Dũng", "Hương", "Khoa", "Lan", "Phúc", "Tâm", "Yến", "Quý", "Hoà", "Thuỷ", "Đức", "Nhung"]
WARDS = ["26740", "26743", "26758", "26767", "27142", "26506", "27073", "26944", "26737", "26800"]
TITLES = ["BS.", "BSCKI.", "BSCKII.", "ThS.BS.", "Y sĩ"]

DEFECTS = {
    "invalid_date": 2,  # 30/02/2019, 2019-14-01
    "invalid_phone": 2,
    "unknown_value": 2,  # "Phòng khám tư nhân" is no facility type the law names
    "ward_unknown": 2,  # the old system still writes a pre-2025 code that is not a 2025 unit
    "invalid_number": 1,  # beds "khoảng 50"
    "beds_out_of_range": 1,  # 12000 beds: fails the contract's expectation
    "duplicate_key_conflict": 2,  # one code on two different rows: both quarantined
}


def facility_rows(rows: int, seed: int = 17, first_code: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        kind, pattern, (lo, hi) = rng.choice(KINDS)
        licensed = date(2012, 1, 1) + timedelta(days=rng.randrange(5000))
        person = f"{rng.choice(TITLES)} {rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        out.append([
            f"79{first_code + i:03d}", pattern.format(rng.choice(NAMES)), kind,
            f"{rng.randrange(1, 9999):04d}/HCM-GPHĐ", licensed.strftime("%d/%m/%Y"),
            f"{rng.randrange(1, 500)} {rng.choice(STREETS)}", rng.choice(WARDS), str(rng.randint(lo, hi)),
            person, f"028 3{rng.randrange(1000):03d} {rng.randrange(10000):04d}",
        ])
    _seed_defects(out, rng)
    return out


def _seed_defects(rows: list[list[str]], rng: random.Random) -> None:
    picks = iter(rng.sample(range(len(rows)), sum(DEFECTS.values())))
    for bad in ["30/02/2019", "2019-14-01"][: DEFECTS["invalid_date"]]:
        rows[next(picks)][4] = bad
    for _ in range(DEFECTS["invalid_phone"]):
        rows[next(picks)][9] = "028 38"
    for _ in range(DEFECTS["unknown_value"]):
        rows[next(picks)][2] = "Phòng khám tư nhân"
    for _ in range(DEFECTS["ward_unknown"]):
        rows[next(picks)][6] = "26734"  # old Tân Định: no 2025 unit has this code
    for _ in range(DEFECTS["invalid_number"]):
        rows[next(picks)][7] = "khoảng 50"
    for _ in range(DEFECTS["beds_out_of_range"]):
        rows[next(picks)][7] = "12000"
    for _ in range(DEFECTS["duplicate_key_conflict"] // 2):
        twin = list(rows[next(picks)])
        twin[5] = "Số 1 " + twin[5]
        rows.append(twin)


def expected_quarantine() -> int:
    return sum(DEFECTS.values())


def facilities_text(rows: int = 300, seed: int = 17, first_code: int = 1) -> str:
    lines = [";".join(HEADERS)] + [";".join(r) for r in facility_rows(rows, seed, first_code)]
    return "\r\n".join(lines) + "\r\n"


def write_facilities(path: Path, encoding: str = "tcvn3", rows: int = 300, seed: int = 17,
                     first_code: int = 1) -> Path:
    """The register as the licensing system exports it, in `encoding` (tcvn3, vni, or any name decode knows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(facilities_text(rows, seed, first_code), encoding))
    return path
