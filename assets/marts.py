"""Marts: analyst tables computed from curated tables, one Dagster asset each, in the `mart` zone.

PostgreSQL: schema `mart` (`mart.dich_vu_cong`); SQLite: the zone prefix (`mart_dich_vu_cong`). Each mart is
recomputed whole from its curated source on every materialisation (pandas over the columns it needs), replaced in
one transaction, with a Parquet copy under `<lake>/mart/<table>/`. Every rate is stated as numerator / denominator
in the table's comment, the rate column's comment and the asset description, because KPI definitions differ
between systems; the counts behind each rate are columns too, so another definition is one division away.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations as real types.
import hashlib
import inspect
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from assets import tables
from assets.contract import Contract
from assets.tables import TableSpec
from pipelines.policy import AUTOMATION, pool
from pipelines.resources import KhoResource

GROUP = "mart"
ZONE = "mart"
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class Mart:
    spec: TableSpec
    description: str  # English, for the UI: grain, definitions, numerator / denominator of each rate
    source: str  # the curated dataset it is computed from
    reads: tuple[str, ...]  # the source columns it needs
    compute: Callable[[pd.DataFrame, date], pd.DataFrame]  # (curated rows, as-of date) -> mart rows
    dimensions: tuple[str, ...] = ()  # danh_muc tables it joins (lineage)


def _ward_names() -> pd.DataFrame:
    from quality import admin_units

    return admin_units.units_current()[["ma_phuong_xa", "ten_phuong_xa"]]


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce")


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, missing (not 0) where nothing was counted."""
    return (numerator / denominator.where(denominator > 0)).astype("float64")


# ---------------------------------------------------------------- public services (dịch vụ công)

DOSSIER_RESOLVED = ("da_hoan_thanh", "da_tra_ket_qua")
DOSSIER_CLOSED = ("tu_choi", "da_rut")  # refused or withdrawn without a result: neither resolved nor pending

_ON_TIME = ("ty_le_dung_han = (so_giai_quyet_truoc_han + so_giai_quyet_dung_han) / so_da_giai_quyet")
_ONLINE = "ty_le_truc_tuyen = so_truc_tuyen / so_tiep_nhan"
_FULL = "ty_le_toan_trinh = so_truc_tuyen_toan_trinh / so_tiep_nhan"

DICH_VU_CONG = TableSpec(
    ZONE, "dich_vu_cong",
    "Kết quả giải quyết thủ tục hành chính theo cơ quan, phường xã và tháng tiếp nhận. "
    f"Tỷ lệ đúng hạn: {_ON_TIME}; tỷ lệ trực tuyến: {_ONLINE}; tỷ lệ toàn trình: {_FULL}. "
    "Hạn giải quyết = ngày hẹn trả mới (sau yêu cầu bổ sung) nếu có, nếu không là ngày hẹn trả.",
    (
        ("thang", "text", "Tháng tiếp nhận hồ sơ (YYYY-MM, theo ngày tiếp nhận)"),
        ("ma_co_quan", "text", "Mã cơ quan tiếp nhận"),
        ("ten_co_quan", "text", "Tên cơ quan tiếp nhận"),
        ("ma_phuong_xa", "text", "Mã phường, xã, đặc khu nơi nộp hồ sơ (trống: không gắn với phường xã)"),
        ("ten_phuong_xa", "text", "Tên phường, xã, đặc khu (danh mục đơn vị hành chính hiện hành)"),
        ("so_tiep_nhan", "integer", "Số hồ sơ tiếp nhận trong tháng (mọi kênh, mọi trạng thái)"),
        ("so_truc_tuyen", "integer", "Số hồ sơ tiếp nhận qua kênh trực tuyến"),
        ("so_toan_trinh", "integer", "Số hồ sơ của thủ tục cung cấp dịch vụ công trực tuyến toàn trình (mọi kênh)"),
        ("so_truc_tuyen_toan_trinh", "integer", "Số hồ sơ nộp trực tuyến của thủ tục toàn trình"),
        ("so_da_giai_quyet", "integer",
         "Số hồ sơ đã giải quyết: có ngày hoàn thành (hoặc ngày trả kết quả); "
         "= trước hạn + đúng hạn + quá hạn"),
        ("so_giai_quyet_truoc_han", "integer", "Đã giải quyết, ngày hoàn thành trước hạn giải quyết"),
        ("so_giai_quyet_dung_han", "integer",
         "Đã giải quyết, ngày hoàn thành đúng ngày hạn giải quyết (hoặc hồ sơ không có hạn)"),
        ("so_giai_quyet_qua_han", "integer", "Đã giải quyết, ngày hoàn thành sau hạn giải quyết"),
        ("so_dang_giai_quyet_trong_han", "integer",
         "Chưa giải quyết, chưa đến hạn vào ngày tính (hoặc không có hạn)"),
        ("so_dang_giai_quyet_qua_han", "integer", "Chưa giải quyết, đã quá hạn vào ngày tính"),
        ("so_tu_choi_hoac_rut", "integer", "Bị từ chối hoặc người nộp rút hồ sơ, không có ngày hoàn thành"),
        ("ty_le_dung_han", "decimal",
         f"Tỷ lệ giải quyết đúng hạn (0-1): tử số = trước hạn + đúng hạn, mẫu số = số đã giải quyết. {_ON_TIME}"),
        ("ty_le_truc_tuyen", "decimal",
         f"Tỷ lệ hồ sơ trực tuyến (0-1): tử số = số hồ sơ trực tuyến, mẫu số = số tiếp nhận. {_ONLINE}"),
        ("ty_le_toan_trinh", "decimal",
         "Tỷ lệ hồ sơ trực tuyến toàn trình (0-1): tử số = số hồ sơ trực tuyến của thủ tục toàn trình, "
         f"mẫu số = số tiếp nhận. {_FULL}"),
        ("ngay_tinh", "date", "Ngày tính (giờ Việt Nam): mốc xác định hồ sơ đang giải quyết còn trong hạn hay quá hạn"),
    ),
)

DOSSIER_COLUMNS = ("ma_co_quan", "ten_co_quan", "ma_phuong_xa", "kenh", "muc_do", "ngay_tiep_nhan", "ngay_hen_tra",
                   "ngay_hen_tra_moi", "ngay_hoan_thanh", "ngay_tra_kq", "trang_thai")


def dich_vu_cong(dossiers: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Public-service dossiers -> one row per (month received, agency, ward).

    due = ngay_hen_tra_moi if present (a supplement request moved it) else ngay_hen_tra;
    resolved on = ngay_hoan_thanh if present else ngay_tra_kq; comparisons are by calendar day.
    A dossier without a due date cannot be late: resolved -> on time, pending -> within deadline.
    Every dossier falls in exactly one of: resolved early / on time / late, pending within / over deadline,
    refused or withdrawn. So so_tiep_nhan is their sum.
    """
    d = dossiers
    received = _dates(d["ngay_tiep_nhan"])
    due = _dates(d["ngay_hen_tra_moi"]).fillna(_dates(d["ngay_hen_tra"])).dt.normalize()
    done = _dates(d["ngay_hoan_thanh"]).fillna(_dates(d["ngay_tra_kq"])).dt.normalize()
    today = pd.Timestamp(as_of)
    resolved = done.notna()
    closed = ~resolved & d["trang_thai"].isin(DOSSIER_CLOSED)
    pending = ~resolved & ~closed
    has_due = due.notna()
    online, full = d["kenh"].eq("truc_tuyen"), d["muc_do"].eq("toan_trinh")
    flags = pd.DataFrame({
        "so_tiep_nhan": True,
        "so_truc_tuyen": online,
        "so_toan_trinh": full,
        "so_truc_tuyen_toan_trinh": online & full,
        "so_da_giai_quyet": resolved,
        "so_giai_quyet_truoc_han": resolved & has_due & (done < due),
        "so_giai_quyet_dung_han": resolved & (~has_due | (done == due)),
        "so_giai_quyet_qua_han": resolved & has_due & (done > due),
        "so_dang_giai_quyet_trong_han": pending & (~has_due | (due >= today)),
        "so_dang_giai_quyet_qua_han": pending & has_due & (due < today),
        "so_tu_choi_hoac_rut": closed,
    }, index=d.index).fillna(False).astype("int64")
    keys = pd.DataFrame({"thang": received.dt.strftime("%Y-%m"), "ma_co_quan": d["ma_co_quan"].astype(object),
                         "ma_phuong_xa": d["ma_phuong_xa"].astype(object)}, index=d.index)
    grouped = pd.concat([keys, flags], axis=1).groupby(list(keys), dropna=False, sort=True).sum().reset_index()
    names = d.dropna(subset=["ten_co_quan"]).groupby("ma_co_quan")["ten_co_quan"].max()  # one name per agency
    grouped["ten_co_quan"] = grouped["ma_co_quan"].map(names)
    grouped = grouped.merge(_ward_names(), on="ma_phuong_xa", how="left")
    grouped["ty_le_dung_han"] = _rate(grouped.so_giai_quyet_truoc_han + grouped.so_giai_quyet_dung_han,
                                      grouped.so_da_giai_quyet)
    grouped["ty_le_truc_tuyen"] = _rate(grouped.so_truc_tuyen, grouped.so_tiep_nhan)
    grouped["ty_le_toan_trinh"] = _rate(grouped.so_truc_tuyen_toan_trinh, grouped.so_tiep_nhan)
    grouped["ngay_tinh"] = as_of
    return _tidy(grouped, DICH_VU_CONG)


# ---------------------------------------------------------------- enterprises (doanh nghiệp)

# The business-registration contract's columns this mart reads (dang_ky_doanh_nghiep.yaml). The register's
# monthly report lists new enterprises only; `ngay_giai_the` (dissolution date) is read when a contract has it.
ENTERPRISE_ID = "ma_so_thue"
ENTERPRISE_COLUMNS = (ENTERPRISE_ID, "loai_hinh", "nganh_nghe_chinh", "von_dieu_le", "ngay_dang_ky",
                      "ngay_giai_the", "ma_phuong_xa", "_kho_loaded_at", "_kho_row")

DOANH_NGHIEP = TableSpec(
    ZONE, "doanh_nghiep",
    "Doanh nghiệp đăng ký mới và giải thể theo phường xã hiện tại, tháng, loại hình và ngành kinh tế cấp 1 "
    "(VSIC 2018). Mỗi doanh nghiệp tính một lần theo bản ghi mới nhất (phường xã, ngành, vốn hiện tại).",
    (
        ("thang", "text", "Tháng (YYYY-MM) của ngày đăng ký thành lập (đăng ký mới) hoặc ngày giải thể"),
        ("ma_phuong_xa", "text", "Mã phường, xã, đặc khu nơi đặt trụ sở hiện tại"),
        ("ten_phuong_xa", "text", "Tên phường, xã, đặc khu (danh mục đơn vị hành chính hiện hành)"),
        ("loai_hinh", "text", "Loại hình doanh nghiệp"),
        ("ma_nganh_cap1", "text", "Ngành kinh tế cấp 1 (chữ cái A-U, VSIC 2018) của ngành nghề kinh doanh chính"),
        ("ten_nganh_cap1", "text", "Tên ngành kinh tế cấp 1 (VSIC 2018)"),
        ("so_dang_ky_moi", "integer", "Số doanh nghiệp có ngày đăng ký thành lập trong tháng"),
        ("von_dieu_le_dang_ky_moi", "integer",
         "Tổng vốn điều lệ (đồng) của các doanh nghiệp đăng ký mới trong tháng (vốn hiện tại)"),
        ("so_giai_the", "integer",
         "Số doanh nghiệp có ngày giải thể trong tháng (trống nếu dữ liệu nguồn không có ngày giải thể)"),
    ),
)


def _vsic_sections() -> pd.DataFrame:
    """Division (2 digits) -> section (A-U) with the section's name, from the shared VSIC dimension."""
    from assets.dimensions import DIMENSIONS

    vsic = next(d for d in DIMENSIONS if d.table == "dm_nganh_kinh_te").frame()
    sections = vsic[vsic["cap"] == 1].set_index("ma_nganh")["ten_nganh"]
    divisions = vsic[vsic["cap"] == 2][["ma_nganh", "ma_nganh_cha"]].rename(
        columns={"ma_nganh": "ma_nganh_cap2", "ma_nganh_cha": "ma_nganh_cap1"})
    divisions["ten_nganh_cap1"] = divisions["ma_nganh_cap1"].map(sections)
    return divisions


def doanh_nghiep(registrations: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Business registrations -> one row per (month, current ward, type, VSIC section).

    The current state of each enterprise is its most recently loaded row (a later export may move it to another
    ward). New registrations count by the month of ngay_dang_ky, dissolutions by the month of ngay_giai_the;
    so_giai_the is missing throughout when the source has no dissolution date.
    """
    r = registrations
    if len(r):
        order = r.assign(_t=pd.to_datetime(r["_kho_loaded_at"], utc=True, errors="coerce"))
        r = order.sort_values(["_t", "_kho_row"], kind="stable").drop_duplicates(ENTERPRISE_ID, keep="last")
    has_dissolution = r["ngay_giai_the"].notna().any()
    division = r["nganh_nghe_chinh"].astype("str").str.extract(r"^(\d{2})", expand=False)
    base = pd.DataFrame({"ma_phuong_xa": r["ma_phuong_xa"].astype(object), "loai_hinh": r["loai_hinh"].astype(object),
                         "ma_nganh_cap2": division.astype(object)}, index=r.index)
    base = base.reset_index(drop=True).merge(_vsic_sections(), on="ma_nganh_cap2", how="left")
    capital = pd.to_numeric(r["von_dieu_le"], errors="coerce").reset_index(drop=True)
    founded = _dates(r["ngay_dang_ky"]).dt.strftime("%Y-%m").reset_index(drop=True)
    dissolved = _dates(r["ngay_giai_the"]).dt.strftime("%Y-%m").reset_index(drop=True)
    keys = ["thang", "ma_phuong_xa", "loai_hinh", "ma_nganh_cap1", "ten_nganh_cap1"]
    new = base.assign(thang=founded, so_dang_ky_moi=1, von_dieu_le_dang_ky_moi=capital, so_giai_the=0)
    gone = base.assign(thang=dissolved, so_dang_ky_moi=0, von_dieu_le_dang_ky_moi=np.nan, so_giai_the=1)
    events = pd.concat([new[new.thang.notna()], gone[gone.thang.notna()]], ignore_index=True)
    grouped = events.groupby(keys, dropna=False, sort=True).agg(
        so_dang_ky_moi=("so_dang_ky_moi", "sum"), so_giai_the=("so_giai_the", "sum"),
        von_dieu_le_dang_ky_moi=("von_dieu_le_dang_ky_moi", lambda v: v.sum(min_count=1))).reset_index()
    grouped["von_dieu_le_dang_ky_moi"] = grouped["von_dieu_le_dang_ky_moi"].round().astype("Int64")
    if not has_dissolution:
        grouped["so_giai_the"] = pd.NA
    grouped["so_giai_the"] = grouped["so_giai_the"].astype("Int64")
    grouped = grouped.merge(_ward_names(), on="ma_phuong_xa", how="left")
    return _tidy(grouped, DOANH_NGHIEP)


def _tidy(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """The spec's columns in order, with missing values as None (not NaN) in text columns."""
    out = frame.reindex(columns=spec.names)
    for name, kind, _ in spec.columns:
        if kind == "text":
            out[name] = out[name].astype(object).where(out[name].notna(), None)
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- assets

MARTS = (
    Mart(DICH_VU_CONG, (
        "Public-service dossiers by month received x receiving agency x ward (one-stop system, ho_so_tthc). "
        "The deadline is the new due date when a supplement request moved it (ngay_hen_tra_moi), else the original "
        "due date; a dossier is resolved when it has a completion date (ngay_hoan_thanh, else ngay_tra_kq), "
        "compared with the deadline by calendar day. Dossiers without a deadline cannot be late. Pending dossiers "
        "are judged within/over deadline on ngay_tinh, the day the mart was computed (Asia/Ho_Chi_Minh).\n\n"
        "Rates (missing when the denominator is 0):\n"
        "- on-time rate ty_le_dung_han = (resolved early + resolved on time) / resolved\n"
        "- online rate ty_le_truc_tuyen = received online (kenh = truc_tuyen) / received\n"
        "- full-online share ty_le_toan_trinh = received online for a toàn trình procedure / received"),
        "ho_so_tthc", DOSSIER_COLUMNS, dich_vu_cong, ("dm_don_vi_hanh_chinh",)),
    Mart(DOANH_NGHIEP, (
        "Enterprises by month x current ward x enterprise type x VSIC 2018 section (dang_ky_doanh_nghiep, joined "
        "with danh_muc/dm_nganh_kinh_te on the main industry's 2-digit division). Each enterprise counts once, "
        "in its latest loaded row. New registrations and their charter capital (VND) count in the month of "
        "ngay_dang_ky; dissolutions in the month of ngay_giai_the where the source has it (the register's monthly "
        "report of new enterprises does not: so_giai_the is then missing, not 0)."),
        "dang_ky_doanh_nghiep", ENTERPRISE_COLUMNS, doanh_nghiep, ("dm_nganh_kinh_te", "dm_don_vi_hanh_chinh")),
)


def today() -> date:
    return datetime.now(LOCAL).date()


def refresh(kho: KhoResource, mart: Mart, contract: Contract, as_of: date | None = None) -> tuple[int, pd.DataFrame]:
    """Recompute the mart from its curated table and replace it; (rows written, the mart)."""
    wh = kho.warehouse
    source = tables.read(wh, wh.curated_table(contract), list(mart.reads))
    frame = mart.compute(source, as_of or today())
    return tables.replace(wh, kho.lake_root, mart.spec, frame), frame


def code_version(mart: Mart) -> str:
    """Changes with the mart's shape, definitions or computation, so the UI marks it stale."""
    text = repr((mart.spec, mart.description, mart.reads)) + inspect.getsource(mart.compute)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _build(mart: Mart, contract: Contract):
    @asset(
        key=AssetKey([GROUP, mart.spec.table]), group_name=GROUP, kinds={"pandas", "parquet", "sql"},
        description=mart.description, code_version=code_version(mart),
        deps=[AssetKey([mart.source, "curated"]), *(AssetKey(["danh_muc", t]) for t in mart.dimensions)],
        metadata={"dagster/column_schema": mart.spec.dagster_schema(), "dagster/table_name": mart.spec.table},
        tags={"department": contract.department.code}, automation_condition=AUTOMATION,
        pool=pool(f"{ZONE}.{mart.spec.table}"),
    )
    def _mart(context: AssetExecutionContext, kho: KhoResource) -> MaterializeResult:
        rows, frame = refresh(kho, mart, contract)
        context.log.info(f"{mart.spec.table}: {rows} rows from {mart.source}")
        return MaterializeResult(metadata={
            "dagster/row_count": rows, "dagster/table_name": mart.spec.location(kho.warehouse),
            "lake": MetadataValue.path(f"{kho.lake_root}/{ZONE}/{mart.spec.table}/data.parquet"),
        })

    return _mart


def build_mart_assets(contracts) -> list:
    """One asset per mart whose source dataset has a contract; keys mart/<table>."""
    by_name = {c.dataset: c for c in contracts}
    return [_build(m, by_name[m.source]) for m in MARTS if m.source in by_name]
