"""The data dictionary (từ điển dữ liệu), generated from the contracts, the marts and the shared dimensions.

One row per column of every table analysts can meet: its Vietnamese description, contract type and type in the
shared table, the source department, the headers departments write in their exports, whether it is personal data
and how shared tables protect it, plus the table's load mode and freshness deadline. It is written three ways:
- the warehouse table `tu_dien_du_lieu` in the curated zone (analysts can read it where they read the data);
- column comments, which the Warehouse already sets from the same descriptions on PostgreSQL;
- a static catalogue, `<lake>/catalogue.html`, one section per table, readable without any server.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations as real types.
import hashlib
import html
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, AutomationCondition, MaterializeResult, MetadataValue, asset

from assets import lake, tables
from assets.contract import Contract
from assets.dimensions import DIMENSIONS
from assets.marts import MARTS
from assets.tables import TableSpec
from pipelines.policy import pool
from pipelines.resources import KhoResource

GROUP = "tai_lieu"
CATALOGUE = "catalogue.html"

PROTECTION = {
    "pseudonymise": "Thay bằng bút danh có khóa (HMAC-SHA256) trong bảng dùng chung",
    "drop": "Không đưa vào bảng dùng chung",
}

SPEC = TableSpec(
    "curated", "tu_dien_du_lieu", "Từ điển dữ liệu: mọi bảng và cột của kho dữ liệu dùng chung",
    (
        ("bang", "text", "Tên bảng (không dấu, snake_case)"),
        ("vung", "text",
         "Vùng dữ liệu: curated (bảng dùng chung), mart (bảng phân tích), danh_muc (danh mục dùng chung)"),
        ("ten_bang", "text", "Tên bảng bằng tiếng Việt"),
        ("mo_ta_bang", "text", "Mô tả bảng"),
        ("don_vi_nguon", "text", "Đơn vị cung cấp dữ liệu"),
        ("ma_don_vi_nguon", "text", "Mã đơn vị cung cấp dữ liệu"),
        ("che_do_nap", "text", "Cách nạp: append (bổ sung theo tệp), replace (thay toàn bộ), "
                               "replace_partition (thay theo kỳ), rebuild (tính lại toàn bộ)"),
        ("tan_suat", "text", "Hạn cập nhật (lịch cron, giờ Việt Nam) và mô tả"),
        ("phan_vung", "text", "Cột và kỳ phân vùng trong hồ dữ liệu (Parquet)"),
        ("thu_tu", "integer", "Thứ tự cột trong bảng"),
        ("cot", "text", "Tên cột (không dấu, snake_case)"),
        ("mo_ta", "text", "Mô tả cột bằng tiếng Việt"),
        ("kieu", "text", "Kiểu dữ liệu theo hợp đồng dữ liệu"),
        ("kieu_trong_kho", "text", "Kiểu dữ liệu trong bảng dùng chung (trống: cột không được nạp)"),
        ("bat_buoc", "boolean", "Cột bắt buộc có giá trị"),
        ("khoa_chinh", "boolean", "Thuộc khóa chính"),
        ("tieu_de_xuat", "text", "Các tiêu đề cột đơn vị ghi trong tệp xuất (cách nhau bởi ' | ')"),
        ("gia_tri", "text", "Các mã giá trị hợp lệ (nếu cột có danh sách giá trị)"),
        ("du_lieu_ca_nhan", "boolean", "Dữ liệu cá nhân (Luật 91/2025/QH15)"),
        ("du_lieu_mo", "boolean", "Bảng được công bố là dữ liệu mở (thư mục open_data)"),
        ("bao_ve", "text", "Cách bảo vệ dữ liệu cá nhân trong bảng dùng chung"),
    ),
)


def _freshness(contract: Contract | None) -> str | None:
    f = contract.freshness if contract else None
    return f"{f.cron} ({f.description})" if f and f.description else (f.cron if f else None)


def _contract_rows(c: Contract) -> list[dict]:
    table = {
        "bang": c.table, "vung": "curated", "ten_bang": c.title, "mo_ta_bang": " ".join(c.description.split()),
        "don_vi_nguon": c.department.name, "ma_don_vi_nguon": c.department.code, "che_do_nap": c.load.mode,
        "tan_suat": _freshness(c),
        "phan_vung": (f"{c.partitioning.key} = {c.partitioning.column} ({c.partitioning.grain})"
                      if c.partitioning else None), "du_lieu_mo": c.open_data,
    }
    rows = [{
        **table, "cot": name, "mo_ta": col.description, "kieu": col.type, "kieu_trong_kho": col.curated_type,
        "bat_buoc": col.required, "khoa_chinh": name in c.primary_key, "tieu_de_xuat": " | ".join(col.headers) or None,
        "gia_tri": ", ".join(dict.fromkeys(col.values.values())) if col.values else None,
        "du_lieu_ca_nhan": col.personal, "bao_ve": PROTECTION[col.protect] if col.personal else None,
    } for name, col in c.columns.items()]
    if c.partitioning:
        rows.append({**table, "cot": c.partitioning.key, "mo_ta": "Kỳ báo cáo", "kieu": "text",
                     "kieu_trong_kho": "text", "du_lieu_ca_nhan": False})
    return rows


def _derived_rows(spec: TableSpec, zone: str, description: str, source: Contract | None, mode: str,
                  published: bool) -> list[dict]:
    table = {
        "bang": spec.table, "vung": zone, "ten_bang": spec.title, "mo_ta_bang": description,
        "don_vi_nguon": source.department.name if source else "Kho dữ liệu dùng chung (danh mục tham chiếu)",
        "ma_don_vi_nguon": source.department.code if source else "kho", "che_do_nap": mode,
        "tan_suat": _freshness(source), "du_lieu_mo": published,
    }
    return [{**table, "cot": n, "mo_ta": d, "kieu": t, "kieu_trong_kho": t, "du_lieu_ca_nhan": False}
            for n, t, d in spec.columns]


def with_children(contracts) -> list[Contract]:
    """The contracts and the derived contracts of their child tables (`<dataset>__<child>`)."""
    from assets.children import child_contract

    return [t for c in contracts for t in (c, *(child_contract(c, n) for n in c.format.children))]


def dictionary_frame(contracts) -> pd.DataFrame:
    by_name = {c.dataset: c for c in contracts}
    rows = [r for c in with_children(contracts) for r in _contract_rows(c)]
    for m in MARTS:
        if m.source in by_name:
            rows += _derived_rows(m.spec, "mart", m.description, by_name[m.source], "rebuild", True)
    for d in DIMENSIONS:
        spec = TableSpec("curated", d.table, d.title, d.columns)
        rows += _derived_rows(spec, "danh_muc", d.description, None, "replace", False)
    frame = pd.DataFrame(rows, columns=SPEC.names)
    frame["thu_tu"] = frame.groupby(["vung", "bang"]).cumcount() + 1
    for flag in ("bat_buoc", "khoa_chinh", "du_lieu_ca_nhan", "du_lieu_mo"):
        frame[flag] = frame[flag].fillna(False).astype(bool)
    return frame


# ---------------------------------------------------------------- the catalogue

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 2rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f3f3f3}code{font-size:.85rem}
.personal{background:#fff4e5}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
"""
NONE = "—"
_HEADINGS = ("Cột", "Mô tả", "Kiểu", "Kiểu trong kho", "Tiêu đề trong tệp xuất", "Dữ liệu cá nhân")


def catalogue_html(frame: pd.DataFrame) -> str:
    e = lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else html.escape(str(v))  # noqa: E731
    toc, sections = [], []
    for (zone, table), cols in frame.groupby(["vung", "bang"], sort=False):
        t = cols.iloc[0]
        anchor = f"{zone}-{table}"
        toc.append(f'<li><a href="#{anchor}"><code>{e(table)}</code></a> — {e(t.ten_bang)} ({e(zone)})</li>')
        facts = [("Vùng", zone), ("Đơn vị nguồn", t.don_vi_nguon), ("Cách nạp", t.che_do_nap),
                 ("Hạn cập nhật", t.tan_suat), ("Phân vùng", t.phan_vung),
                 ("Dữ liệu mở", "có" if t.du_lieu_mo else "không"),
                 ("Cột dữ liệu cá nhân", ", ".join(cols.loc[cols.du_lieu_ca_nhan, "cot"]) or "không có")]
        dl = "".join(f"<dt>{k}</dt><dd>{e(v) or NONE}</dd>" for k, v in facts)
        body = "".join(
            f'<tr{" class=personal" if r.du_lieu_ca_nhan else ""}><td><code>{e(r.cot)}</code></td><td>{e(r.mo_ta)}'
            f'{"<br><small>Giá trị: " + e(r.gia_tri) + "</small>" if r.gia_tri else ""}</td><td>{e(r.kieu)}</td>'
            f'<td>{e(r.kieu_trong_kho) or "<em>không nạp</em>"}</td><td>{e(r.tieu_de_xuat)}</td>'
            f'<td>{"Có — " + e(r.bao_ve) if r.du_lieu_ca_nhan else ""}</td></tr>'
            for r in cols.itertuples())
        sections.append(
            f'<section id="{anchor}"><h2><code>{e(table)}</code> — {e(t.ten_bang)}</h2>'
            f'<p>{e(t.mo_ta_bang)}</p><dl>{dl}</dl>'
            f'<table><thead><tr>{"".join(f"<th>{h}</th>" for h in _HEADINGS)}</tr></thead>'
            f'<tbody>{body}</tbody></table></section>')
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Từ điển dữ liệu — kho</title>'
            f'<style>{_STYLE}</style></head><body><h1>Từ điển dữ liệu — Kho dữ liệu dùng chung TP. Hồ Chí Minh</h1>'
            f'<p>Sinh tự động từ hợp đồng dữ liệu (assets/contracts), các bảng phân tích và danh mục dùng chung. '
            f'{len(frame)} cột trong {frame.groupby(["vung", "bang"]).ngroups} bảng.</p>'
            f'<ul>{"".join(toc)}</ul>{"".join(sections)}</body></html>\n')


def write_catalogue(frame: pd.DataFrame, lake_root: str | Path) -> str:
    """<lake>/catalogue.html (local folder or object store); returns where it is."""
    pending = lake.stage_file(lake_root, CATALOGUE)
    tmp, dst = pending.moves[0]
    with pending.publishing():
        Path(tmp).write_text(catalogue_html(frame), encoding="utf-8")
    return dst


# ---------------------------------------------------------------- the asset


def build_dictionary_asset(contracts):
    contracts = tuple(contracts)
    version = hashlib.sha256("".join(c.model_dump_json() for c in contracts).encode()
                             + repr([m.spec for m in MARTS]).encode()).hexdigest()[:12]

    # Built from code only: again when missing or when a contract (the code version) changed.
    @asset(key=AssetKey([GROUP, SPEC.table]), group_name=GROUP, kinds={"sql", "html"}, code_version=version,
           automation_condition=AutomationCondition.on_missing() | AutomationCondition.code_version_changed(),
           pool=pool(SPEC.table),
           metadata={"dagster/column_schema": SPEC.dagster_schema(), "dagster/table_name": SPEC.table},
           description="The data dictionary: every table and column analysts meet (contracts, marts, shared "
                       "dimensions) with Vietnamese descriptions, types, source department and export headers, "
                       "personal-data flag and protection, load mode and freshness; also <lake>/catalogue.html.")
    def tu_dien_du_lieu(context: AssetExecutionContext, kho: KhoResource) -> MaterializeResult:
        frame = dictionary_frame(contracts)
        rows = tables.replace(kho.warehouse, kho.lake_root, SPEC, frame)
        path = write_catalogue(frame, kho.lake_root)
        return MaterializeResult(metadata={
            "dagster/row_count": rows, "tables": int(frame.groupby(["vung", "bang"]).ngroups),
            "catalogue": MetadataValue.path(path),
        })

    return tu_dien_du_lieu
