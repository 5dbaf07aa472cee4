"""Demo export of the 1022 hotline system: a month's feedback as its API returns it, one JSON document with the
envelope {"status", "message", "data": {"total", "page", "pageSize", "items": [...]}}, camelCase fields, nested
objects (field, place, reporter) and, in each item, the list of processing steps `quaTrinhXuLy`.

Seeded and deterministic; defects are deliberate and counted: `DEFECTS` for the feedback rows (one distinct
record each), `STEP_DEFECTS` for the step rows of records that are otherwise clean.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from assets.demo.dossiers import FAMILY, GIVEN, MIDDLE, MOBILE

CHANNELS = ["Tổng đài", "Zalo", "Ứng dụng Công dân số", "Cổng 1022", "Email"]
FIELDS = [("MT", "Môi trường", "Rác thải tồn đọng tại {}"), ("GT", "Giao thông", "Đèn tín hiệu hỏng tại {}"),
          ("DT", "Trật tự đô thị", "Lấn chiếm vỉa hè tại {}"), ("XD", "Xây dựng", "Công trình không phép tại {}"),
          ("AN", "An ninh trật tự", "Tụ tập gây ồn ào tại {}"), ("DN", "Điện, nước", "Mất nước kéo dài tại {}")]
PLACES = [("26740", "Đường Lê Lợi"), ("26743", "Chợ Bến Thành"), ("26758", "Đường Trần Hưng Đạo"),
          ("26944", "Đường Nơ Trang Long"), ("27073", "Đường Cách Mạng Tháng Tám"), ("26506", "Đường Quang Trung"),
          ("26800", "Đường Võ Văn Ngân"), ("27142", "Đường Nam Kỳ Khởi Nghĩa")]
AGENCIES = [("1022", "Tổng đài 1022"), ("UBND-26740", "Ủy ban nhân dân Phường Sài Gòn"),
            ("UBND-26743", "Ủy ban nhân dân Phường Bến Thành"), ("SXD", "Sở Xây dựng"),
            ("CAP", "Công an phường"), ("SNMT", "Sở Nông nghiệp và Môi trường")]
STEPS = ["Tiếp nhận", "Chuyển xử lý", "Đang xử lý", "Báo cáo kết quả", "Đóng phản ánh"]
STATUS_BY_STEPS = {1: "Mới tiếp nhận", 2: "Đang xử lý", 3: "Đang xử lý", 4: "Đã xử lý", 5: "Đã đóng"}

DEFECTS = {
    "invalid_date": 2,  # thoiGianTiepNhan "2026-10-32 08:00:00"
    "unknown_value": 2,  # kenhTiepNhan "Fax"
    "invalid_phone": 2,
    "missing_code": 1,  # maPhanAnh null: fails the required (not-null) expectation
    "duplicate_row": 2,  # an item repeated across two API pages: the repeat is quarantined
}
STEP_DEFECTS = {"invalid_date": 2, "unknown_value": 1}  # on steps of clean records


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _phone(rng: random.Random) -> str:
    number = f"{rng.choice(MOBILE)}{rng.randrange(10**7):07d}"
    return number if rng.random() < 0.8 else f"+84 {number[1:]}"  # the app sends E.164-ish numbers


def feedback_items(rows: int, month: date, seed: int = 23, defects: bool = True) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for i in range(rows):
        code, field, pattern = rng.choice(FIELDS)
        ward, street = rng.choice(PLACES)
        received = datetime(month.year, month.month, 1, 7) + timedelta(minutes=rng.randrange(27 * 24 * 60))
        steps, t = [], received
        for n in range(rng.randint(1, 5)):
            agency = AGENCIES[0] if n == 0 else rng.choice(AGENCIES[1:])
            steps.append({"buoc": n + 1, "donVi": {"ma": agency[0], "ten": agency[1]}, "hanhDong": STEPS[n],
                          "thoiGian": _stamp(t), "ghiChu": None if rng.random() < 0.6 else "Đã liên hệ người phản ánh"})
            t += timedelta(hours=rng.randrange(2, 72))
        items.append({
            "maPhanAnh": f"1022-{month:%y%m}-{i + 1:06d}", "thoiGianTiepNhan": _stamp(received),
            "kenhTiepNhan": rng.choice(CHANNELS), "linhVuc": {"ma": code, "ten": field},
            "tieuDe": pattern.format(street), "noiDung": f"Người dân phản ánh: {pattern.format(street).lower()}.",
            "diaBan": {"maPhuongXa": ward, "diaChi": f"{rng.randrange(1, 300)} {street}"},
            "nguoiPhanAnh": {"hoTen": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
                             "soDienThoai": _phone(rng)},
            "trangThai": STATUS_BY_STEPS[len(steps)], "hanXuLy": (received + timedelta(days=10)).strftime("%Y-%m-%d"),
            "quaTrinhXuLy": steps,
        })
    if defects:
        _seed_defects(items, rng)
    return items


def _seed_defects(items: list[dict], rng: random.Random) -> None:
    picks = iter(rng.sample(range(len(items)), sum(DEFECTS.values()) + sum(STEP_DEFECTS.values())))
    for _ in range(DEFECTS["invalid_date"]):
        items[next(picks)]["thoiGianTiepNhan"] = "2026-10-32 08:00:00"
    for _ in range(DEFECTS["unknown_value"]):
        items[next(picks)]["kenhTiepNhan"] = "Fax"
    for _ in range(DEFECTS["invalid_phone"]):
        items[next(picks)]["nguoiPhanAnh"]["soDienThoai"] = "1022"
    for _ in range(DEFECTS["missing_code"]):
        items[next(picks)]["maPhanAnh"] = None
    for _ in range(DEFECTS["duplicate_row"]):
        items.append(json.loads(json.dumps(items[next(picks)])))
    for _ in range(STEP_DEFECTS["invalid_date"]):
        items[next(picks)]["quaTrinhXuLy"][0]["thoiGian"] = "32/10/2026 08:00"
    for _ in range(STEP_DEFECTS["unknown_value"]):
        items[next(picks)]["quaTrinhXuLy"][0]["hanhDong"] = "Treo"


def rejected_records(items: list[dict]) -> set[int]:
    """0-based indexes of the records the pipeline must quarantine (every defect, and the repeats)."""
    seen, out = set(), set()
    for i, it in enumerate(items):
        key = json.dumps(it, sort_keys=True)
        if (it["maPhanAnh"] is None or it["thoiGianTiepNhan"].endswith("32 08:00:00") or it["kenhTiepNhan"] == "Fax"
                or it["nguoiPhanAnh"]["soDienThoai"] == "1022" or key in seen):
            out.add(i)
        seen.add(key)
    return out


def expected_quarantine() -> int:
    return sum(DEFECTS.values())


def expected_steps(items: list[dict]) -> tuple[int, int]:
    """(step rows read, step rows quarantined): steps of rejected records, plus the seeded step defects."""
    rejected = rejected_records(items)
    read = sum(len(it["quaTrinhXuLy"]) for it in items)
    bad = sum(len(items[i]["quaTrinhXuLy"]) for i in rejected) + sum(STEP_DEFECTS.values())
    return read, bad


def feedback_document(items: list[dict], page_size: int = 5000) -> dict:
    return {"status": "success", "message": "Lấy dữ liệu thành công",
            "data": {"total": len(items), "page": 1, "pageSize": page_size, "items": items}}


def write_feedback(path: Path, rows: int = 300, month: date = date(2026, 10, 1), seed: int = 23) -> Path:
    """The month's API dump, UTF-8 JSON as the hotline system returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = feedback_document(feedback_items(rows, month, seed))
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
