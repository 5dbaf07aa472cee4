"""Demo source of the construction department: its permit table `gpxd_giay_phep`, as the department's own
database holds it (PascalCase columns, an Id key, NgayCapNhat stamped on every insert and update).

`write_permit_source` creates the table in any SQLAlchemy database (the demo writes a SQLite file; the tests
also use MariaDB) and `update_permits` changes some rows and adds new ones, as the department's system does
between two pulls. Seeded and deterministic; defects are deliberate and counted (`DEFECTS`), one row each.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from assets.demo.dossiers import FAMILY, GIVEN, MIDDLE, tax_code

TABLE = "gpxd_giay_phep"
KINDS = ["Xây dựng mới", "Sửa chữa, cải tạo", "Di dời", "Có thời hạn"]
STREETS = ["Nguyễn Văn Linh", "Phạm Văn Đồng", "Lê Văn Lương", "Kinh Dương Vương", "Tô Ký", "Nguyễn Duy Trinh"]
WARDS = ["26740", "26743", "26758", "26767", "27142", "26506", "27073", "26944", "26800", "26833"]
COMPANIES = ["Công ty TNHH Đầu tư Xây dựng Phú Mỹ", "Công ty Cổ phần Địa ốc Sài Gòn", "Hợp tác xã Thủ Đức"]
START = datetime(2026, 9, 1, 8, 0, 0)

DEFECTS = {
    "missing_issue_date": 1,  # NgayCap NULL: fails the required (not-null) expectation
    "invalid_tax_code": 2,
    "ward_unknown": 1,  # a pre-2025 code the 2025 list does not have
    "floors_out_of_range": 2,  # SoTang 0: fails the contract's expectation
    "unknown_value": 1,  # TrangThai "Đang thẩm định" is no permit status
    "duplicate_key_conflict": 2,  # one permit number on two different rows: both quarantined
}


def permit_table(table: str = TABLE) -> sa.Table:
    return sa.Table(
        table, sa.MetaData(),
        sa.Column("Id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("SoGiayPhep", sa.String(30)), sa.Column("LoaiGiayPhep", sa.Unicode(50)),
        sa.Column("ChuDauTu", sa.Unicode(200)), sa.Column("MaSoThue", sa.String(14)),
        sa.Column("DiaChiCongTrinh", sa.Unicode(300)), sa.Column("MaPhuongXa", sa.String(5)),
        sa.Column("DienTichXayDung", sa.Numeric(12, 2)), sa.Column("TongDienTichSan", sa.Numeric(12, 2)),
        sa.Column("SoTang", sa.Integer), sa.Column("NgayCap", sa.Date), sa.Column("TrangThai", sa.Unicode(50)),
        sa.Column("NgayCapNhat", sa.DateTime),
        mysql_charset="utf8mb4",
    )


def permit_rows(rows: int, seed: int = 31, first_id: int = 1, start: datetime = START,
                defects: bool = True) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        n = first_id + i
        issued = date(2026, 9, 1) + timedelta(days=rng.randrange(30))
        company = rng.random() < 0.3
        area = Decimal(rng.randrange(4000, 30000)) / 100
        floors = rng.randint(1, 7)
        out.append({
            "Id": n, "SoGiayPhep": f"{n:05d}/GPXD-SXD", "LoaiGiayPhep": rng.choice(KINDS),
            "ChuDauTu": rng.choice(COMPANIES) if company else f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
            "MaSoThue": tax_code(rng) if company else None,
            "DiaChiCongTrinh": f"{rng.randrange(1, 500)} {rng.choice(STREETS)}", "MaPhuongXa": rng.choice(WARDS),
            "DienTichXayDung": area, "TongDienTichSan": area * floors, "SoTang": floors, "NgayCap": issued,
            "TrangThai": "Đã cấp", "NgayCapNhat": start + timedelta(minutes=17 * i),
        })
    if defects:
        _seed_defects(out, rng)
    return out


def _seed_defects(rows: list[dict], rng: random.Random) -> None:
    picks = iter(rng.sample(range(len(rows)), sum(DEFECTS.values())))
    for _ in range(DEFECTS["missing_issue_date"]):
        rows[next(picks)]["NgayCap"] = None
    for _ in range(DEFECTS["invalid_tax_code"]):
        row = rows[next(picks)]
        good = tax_code(rng)
        row["MaSoThue"] = good[:9] + str((int(good[9]) + 1) % 10)
    for _ in range(DEFECTS["ward_unknown"]):
        rows[next(picks)]["MaPhuongXa"] = "26734"
    for _ in range(DEFECTS["floors_out_of_range"]):
        rows[next(picks)]["SoTang"] = 0
    for _ in range(DEFECTS["unknown_value"]):
        rows[next(picks)]["TrangThai"] = "Đang thẩm định"
    for _ in range(DEFECTS["duplicate_key_conflict"] // 2):
        twin = dict(rows[next(picks)])
        twin["Id"] = max(r["Id"] for r in rows) + 1
        twin["DiaChiCongTrinh"] = "Lô B " + twin["DiaChiCongTrinh"]
        rows.append(twin)


def expected_quarantine() -> int:
    return sum(DEFECTS.values())


def write_permit_source(url: str, rows: int = 300, seed: int = 31, table: str = TABLE) -> list[dict]:
    """(Re)create the department's permit table at `url` with seeded rows; returns them."""
    engine = sa.create_engine(url)
    try:
        table = permit_table(table)
        table.drop(engine, checkfirst=True)
        table.create(engine)
        data = permit_rows(rows, seed)
        with engine.begin() as conn:
            conn.execute(table.insert(), data)
        return data
    finally:
        engine.dispose()


def update_permits(url: str, changed: list[int], new: int, at: datetime, seed: int = 37,
                   table: str = TABLE) -> list[dict]:
    """The department's day of work: permits `changed` (by Id) get adjusted, `new` permits are issued; every row
    touched is stamped NgayCapNhat = at (+ a minute each). Returns the new rows."""
    engine = sa.create_engine(url)
    table = permit_table(table)
    try:
        with engine.begin() as conn:
            for k, pk in enumerate(changed):
                conn.execute(table.update().where(table.c.Id == pk).values(
                    TrangThai="Đã điều chỉnh", NgayCapNhat=at + timedelta(minutes=k)))
            top = conn.execute(sa.select(sa.func.max(table.c.Id))).scalar() or 0
            fresh = permit_rows(new, seed, first_id=top + 1, start=at + timedelta(minutes=len(changed)), defects=False)
            if fresh:
                conn.execute(table.insert(), fresh)
        return fresh
    finally:
        engine.dispose()
