"""Shared dimension tables (danh mục dùng chung): administrative units, the 2025 crosswalk, VSIC 2018 industries.

They come from reference data shipped with `quality`, not from departments, so they have no contract: each table
is declared here with its Vietnamese column descriptions (SQL comments, Parquet field metadata, Dagster column
schema). A materialisation replaces the whole table in one transaction (delete + insert), so analysts see either
the old list or the new one, never half; the Parquet copy goes to `<lake>/curated/<table>/data.parquet` (a local
folder or an object store, `assets.lake.stage_file`) and is published only after the commit, so the lake is never
ahead of the warehouse.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations (context, resources)
# as real types, not strings.
import hashlib
import re
from dataclasses import dataclass
from importlib import metadata as pkg_metadata
from importlib import resources
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, TableColumn, TableSchema, asset,
)

from assets import lake
from assets.warehouse import Warehouse
from pipelines.resources import KhoResource
from quality import admin_units

GROUP = "danh_muc"
_SQL = {"text": sa.Text, "integer": sa.SmallInteger, "boolean": sa.Boolean}
_ARROW = {"text": pa.string(), "integer": pa.int16(), "boolean": pa.bool_()}


@dataclass(frozen=True)
class Dimension:
    table: str
    title: str  # Vietnamese: SQL table comment and Parquet metadata
    description: str  # the Dagster UI description
    columns: tuple[tuple[str, str, str], ...]  # (name, text|integer|boolean, Vietnamese description)
    key: tuple[str, ...]  # primary key: a reload can never duplicate a row
    frame: Callable[[], pd.DataFrame]
    sources: tuple[str, ...]  # files under quality/ the table is built from; their bytes make the code version

    def schema(self) -> TableSchema:
        return TableSchema(columns=[TableColumn(n, t, description=d) for n, t, d in self.columns])


def _reference(name: str):
    return resources.files("quality").joinpath("reference", name)


_ADMIN_SOURCES = ("admin_units.py", "reference/nso-communes.tsv", "reference/nso-old-to-new.tsv")


# ---------------------------------------------------------------- frames


def _province_names() -> dict[str, str]:
    # NSO's conversion table names each current province as "Thành phố Hồ Chí Minh (79)": the official names.
    with _reference("nso-old-to-new.tsv").open("rb") as f:
        provinces = pd.read_csv(f, sep="\t", dtype=str, usecols=["new_province"])["new_province"].unique()
    pairs = (re.fullmatch(r"(.+?)\s*\((\d{2})\)", p.strip()) for p in provinces)
    return {m.group(2): m.group(1) for m in pairs if m}


def _units_current() -> pd.DataFrame:
    units = admin_units.units_current()
    units.insert(1, "ten_tinh", units["ma_tinh"].map(_province_names()).astype("str"))
    return units


def _crosswalk() -> pd.DataFrame:
    cw = admin_units.crosswalk()
    cw["so_don_vi_moi"] = cw.groupby("ma_cu")["ma_moi"].transform("size").astype("int16")
    return cw


def _vsic() -> pd.DataFrame:
    with _reference("vsic2018.tsv").open("rb") as f:
        vsic = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False, comment="#")
    vsic["cap"] = vsic["cap"].astype("int16")
    vsic["ma_nganh_cha"] = vsic["ma_nganh_cha"].replace("", None)
    return vsic


_PROVINCE = ("ma_tinh", "text", "Mã tỉnh, thành phố (2 chữ số)")
_LOAI = ("loai", "text", "Loại đơn vị hành chính cấp xã (Phường, Xã, Đặc khu, Thị trấn)")

DIMENSIONS = (
    Dimension(
        "dm_don_vi_hanh_chinh", "Danh mục đơn vị hành chính cấp xã hiện hành (từ 01/07/2025)",
        "Current commune-level administrative units since the 1 July 2025 reform: 3,321 phường, xã and đặc khu "
        "in 34 provinces, no district level (HCMC, ma_tinh 79: 168 units). Codes and names from the NSO "
        "directory. A 5-digit code means this list only: the same code may have named another ward before 2025.",
        (_PROVINCE, ("ten_tinh", "text", "Tên tỉnh, thành phố"),
         ("ma_phuong_xa", "text", "Mã đơn vị hành chính cấp xã (5 chữ số)"),
         ("ten_phuong_xa", "text", "Tên đơn vị hành chính cấp xã"), _LOAI),
        ("ma_phuong_xa",), _units_current, _ADMIN_SOURCES,
    ),
    Dimension(
        "dm_don_vi_hanh_chinh_cu", "Danh mục đơn vị hành chính cấp xã trước 01/07/2025",
        "Commune-level units as they were before 1 July 2025 (63 provinces, with districts), for reading old "
        "exports. Convert to current units through dm_chuyen_doi_dvhc, never by equal code or name.",
        (_PROVINCE, ("ten_tinh", "text", "Tên tỉnh, thành phố (trước 01/07/2025)"),
         ("ma_quan_huyen", "text", "Mã quận, huyện, thị xã, thành phố thuộc tỉnh (3 chữ số)"),
         ("ten_quan_huyen", "text", "Tên quận, huyện, thị xã, thành phố thuộc tỉnh"),
         ("ma_phuong_xa", "text", "Mã đơn vị hành chính cấp xã cũ (5 chữ số)"),
         ("ten_phuong_xa", "text", "Tên đơn vị hành chính cấp xã cũ"), _LOAI),
        ("ma_phuong_xa",), admin_units.units_pre2025, _ADMIN_SOURCES,
    ),
    Dimension(
        "dm_chuyen_doi_dvhc", "Bảng chuyển đổi đơn vị hành chính cấp xã cũ sang mới (01/07/2025)",
        "Old -> new commune crosswalk from the NSO conversion table, one row per (ma_cu, ma_moi). An old unit "
        "with so_don_vi_moi > 1 was split: converting it by code alone is ambiguous and must be flagged, not "
        "guessed; nso_main marks the destination NSO says took the whole population.",
        (("ma_cu", "text", "Mã đơn vị hành chính cấp xã cũ"), ("ten_cu", "text", "Tên đơn vị cũ"),
         ("quan_huyen_cu", "text", "Quận, huyện cũ"), ("tinh_cu", "text", "Tỉnh, thành phố cũ"),
         ("ma_moi", "text", "Mã đơn vị hành chính cấp xã mới"), ("ten_moi", "text", "Tên đơn vị mới"),
         ("toan_bo", "boolean", "Toàn bộ đơn vị cũ nhập vào đơn vị mới này (không chỉ một phần)"),
         ("nso_main", "boolean", "Đơn vị mới nhận toàn bộ dân số của đơn vị cũ bị chia tách (theo Cục Thống kê)"),
         ("so_don_vi_moi", "integer", "Số đơn vị mới mà đơn vị cũ được chuyển về (lớn hơn 1: bị chia tách)")),
        ("ma_cu", "ma_moi"), _crosswalk, _ADMIN_SOURCES,
    ),
    Dimension(
        "dm_nganh_kinh_te", "Hệ thống ngành kinh tế Việt Nam VSIC 2018 (Quyết định 27/2018/QĐ-TTg), cấp 1 và cấp 2",
        "Vietnam Standard Industrial Classification 2018 (Decision 27/2018/QĐ-TTg): the 21 sections A-U (cap 1) "
        "and the 88 two-digit divisions (cap 2), each division pointing to its section.",
        (("ma_nganh", "text", "Mã ngành (cấp 1: chữ cái A-U; cấp 2: 2 chữ số)"),
         ("cap", "integer", "Cấp ngành (1 hoặc 2)"),
         ("ma_nganh_cha", "text", "Mã ngành cấp 1 chứa ngành cấp 2 này (trống với ngành cấp 1)"),
         ("ten_nganh", "text", "Tên ngành")),
        ("ma_nganh",), _vsic, ("reference/vsic2018.tsv",),
    ),
)


# ---------------------------------------------------------------- loading


def sql_table(wh: Warehouse, dim: Dimension) -> sa.Table:
    schema, name = wh.locate("curated", dim.table)
    existing = wh.metadata.tables.get(f"{schema}.{name}" if schema else name)
    if existing is not None:
        return existing
    cols = [sa.Column(n, _SQL[t](), nullable=n not in dim.key, comment=d) for n, t, d in dim.columns]
    return sa.Table(name, wh.metadata, *cols, sa.PrimaryKeyConstraint(*dim.key), schema=schema, comment=dim.title)


def _arrow(dim: Dimension, frame: pd.DataFrame) -> pa.Table:
    fields = [pa.field(n, _ARROW[t], metadata={"description": d.encode()}) for n, t, d in dim.columns]
    meta = {"kho.dataset": dim.table, "kho.title": dim.title}
    schema = pa.schema(fields, metadata={k: v.encode() for k, v in meta.items()})
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def load(kho: KhoResource, dim: Dimension) -> int:
    """Replace the table (one transaction) and its Parquet file (renamed in after the commit); rows loaded."""
    frame = dim.frame()[[n for n, _, _ in dim.columns]]
    wh = kho.warehouse
    table = sql_table(wh, dim)
    wh.create(table)
    pending = lake.stage_file(kho.lake_root, f"curated/{dim.table}/data.parquet")  # local folder or object store
    with pending.publishing():
        pq.write_table(_arrow(dim, frame), pending.moves[0][0], compression="zstd")
        with wh.transaction() as conn:
            conn.execute(table.delete())
            rows = wh.insert(conn, table, frame)
    return rows


# ---------------------------------------------------------------- assets


def code_version(dim: Dimension) -> str:
    """Changes with the reference data or the table's shape, so the UI marks the table stale."""
    h = hashlib.sha256(repr((dim.table, dim.columns, dim.key)).encode())
    for name in dim.sources:
        h.update(resources.files("quality").joinpath(name).read_bytes())
    if "admin_units.py" in dim.sources:  # which also reads the package's pre-2025 list
        h.update(pkg_metadata.version("vietnamadminunits").encode())
    return h.hexdigest()[:12]


def _build(dim: Dimension):
    @asset(
        key=AssetKey([GROUP, dim.table]), group_name=GROUP, kinds={"parquet", "sql"}, description=dim.description,
        code_version=code_version(dim),
        metadata={"dagster/column_schema": dim.schema(), "dagster/table_name": dim.table},
    )
    def dimension(context: AssetExecutionContext, kho: KhoResource) -> MaterializeResult:
        rows = load(kho, dim)
        schema, name = kho.warehouse.locate("curated", dim.table)
        context.log.info(f"{dim.table}: replaced with {rows} rows")
        return MaterializeResult(metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": dim.schema(),
            "dagster/table_name": f"{schema}.{name}" if schema else name,
            "lake": MetadataValue.path(f"{lake.dataset_url(kho.lake_root, 'curated', dim.table)}/data.parquet"),
        })

    return dimension


def build_dimension_assets() -> list:
    """One asset per shared dimension table, keys danh_muc/<table>."""
    return [_build(dim) for dim in DIMENSIONS]
