"""Marts on small hand-checked fixtures: every number below was counted by hand from the rows above it."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pandas as pd
import pytest
import sqlalchemy as sa

from assets import marts, tables
from assets.marts import DICH_VU_CONG, DOANH_NGHIEP, dich_vu_cong, doanh_nghiep

AS_OF = date(2026, 11, 10)
A, B = "000.00.12.H29", "000.00.21.H29"
D = date.fromisoformat

# (agency, ward, channel, level, received, due, new due, finished, returned, status)
DOSSIERS = [
    # resolved early, on time, late
    (A, "26740", "truc_tuyen", "toan_trinh", "2026-10-01", "2026-10-05", None, "2026-10-03", None, "da_hoan_thanh"),
    (A, "26740", "truc_tiep", "mot_phan", "2026-10-02", "2026-10-06", None, "2026-10-06", None, "da_tra_ket_qua"),
    (A, "26740", "truc_tuyen", "mot_phan", "2026-10-02", "2026-10-04", None, "2026-10-08", None, "da_hoan_thanh"),
    # late against the first due date, early against the one a supplement request set: early
    (A, "26740", "truc_tuyen", "toan_trinh", "2026-10-03", "2026-10-05", "2026-10-12", "2026-10-10", None,
     "da_hoan_thanh"),
    # no completion date but a return date on the due day: resolved on time
    (A, "26740", "buu_chinh_cong_ich", None, "2026-10-05", "2026-10-07", None, None, "2026-10-07", "da_tra_ket_qua"),
    (A, "26740", "truc_tuyen", "toan_trinh", "2026-10-20", "2026-11-20", None, None, None, "dang_xu_ly"),  # within
    (A, "26740", "truc_tiep", "toan_trinh", "2026-10-21", "2026-10-25", None, None, None, "cho_bo_sung"),  # over
    # over against the first due date, within against the new one
    (A, "26740", "truc_tiep", "mot_phan", "2026-10-22", "2026-10-25", "2026-11-15", None, None, "cho_bo_sung"),
    (A, "26740", "truc_tiep", "mot_phan", "2026-10-23", None, None, None, None, "dang_xu_ly"),  # no due: within
    (A, "26740", "truc_tuyen", "mot_phan", "2026-10-24", "2026-10-30", None, None, None, "tu_choi"),  # refused
    (A, "26740", "truc_tiep", "mot_phan", "2026-10-25", None, None, "2026-10-25", None, "da_hoan_thanh"),  # no due
    (B, None, "truc_tuyen", "toan_trinh", "2026-09-30", "2026-10-02", None, "2026-10-02", None, "da_hoan_thanh"),
    (B, None, "truc_tiep", "mot_phan", "2026-09-15", "2026-09-20", None, None, None, "dang_xu_ly"),  # over
    (A, "26743", "truc_tiep", "mot_phan", "2026-10-10", "2026-10-15", None, None, None, "da_rut"),  # withdrawn
]


def _dossiers() -> pd.DataFrame:
    cols = ["ma_co_quan", "ma_phuong_xa", "kenh", "muc_do", "ngay_tiep_nhan", "ngay_hen_tra", "ngay_hen_tra_moi",
            "ngay_hoan_thanh", "ngay_tra_kq", "trang_thai"]
    frame = pd.DataFrame(DOSSIERS, columns=cols)
    for c in cols:
        if c.startswith("ngay"):
            frame[c] = frame[c].map(lambda v: D(v) if isinstance(v, str) else None)
    frame["ten_co_quan"] = frame["ma_co_quan"].map({A: "UBND Phường Sài Gòn", B: "Sở Tư pháp"})
    return frame


def _row(mart: pd.DataFrame, **keys) -> dict:
    mask = pd.Series(True, index=mart.index)
    for k, v in keys.items():
        mask &= mart[k].isna() if v is None else mart[k].eq(v)
    assert mask.sum() == 1, keys
    return mart[mask].iloc[0].to_dict()


def test_dich_vu_cong_counts_and_rates_by_hand():
    mart = dich_vu_cong(_dossiers(), AS_OF)
    assert list(mart.columns) == DICH_VU_CONG.names and len(mart) == 3

    a = _row(mart, thang="2026-10", ma_co_quan=A, ma_phuong_xa="26740")
    assert {k: a[k] for k in a if k.startswith("so_")} == {
        "so_tiep_nhan": 11, "so_truc_tuyen": 5, "so_toan_trinh": 4, "so_truc_tuyen_toan_trinh": 3,
        "so_da_giai_quyet": 6, "so_giai_quyet_truoc_han": 2, "so_giai_quyet_dung_han": 3, "so_giai_quyet_qua_han": 1,
        "so_dang_giai_quyet_trong_han": 3, "so_dang_giai_quyet_qua_han": 1, "so_tu_choi_hoac_rut": 1,
    }
    assert Fraction(a["ty_le_dung_han"]).limit_denominator(100) == Fraction(5, 6)
    assert Fraction(a["ty_le_truc_tuyen"]).limit_denominator(100) == Fraction(5, 11)
    assert Fraction(a["ty_le_toan_trinh"]).limit_denominator(100) == Fraction(3, 11)
    assert a["ten_co_quan"] == "UBND Phường Sài Gòn" and a["ten_phuong_xa"] == "Phường Sài Gòn"
    assert a["ngay_tinh"] == AS_OF

    b = _row(mart, thang="2026-09", ma_co_quan=B, ma_phuong_xa=None)  # a city agency: no ward
    assert (b["so_tiep_nhan"], b["so_da_giai_quyet"], b["so_giai_quyet_dung_han"], b["so_dang_giai_quyet_qua_han"]) \
        == (2, 1, 1, 1)
    assert (b["ty_le_dung_han"], b["ty_le_truc_tuyen"], b["ty_le_toan_trinh"]) == (1.0, 0.5, 0.5)
    assert b["ten_phuong_xa"] is None

    c = _row(mart, ma_phuong_xa="26743")  # nothing resolved: the on-time rate is missing, not 0
    assert (c["so_tiep_nhan"], c["so_tu_choi_hoac_rut"], c["so_da_giai_quyet"]) == (1, 1, 0)
    assert pd.isna(c["ty_le_dung_han"]) and c["ty_le_truc_tuyen"] == 0.0

    # Every dossier is in exactly one outcome.
    outcome = ["so_da_giai_quyet", "so_dang_giai_quyet_trong_han", "so_dang_giai_quyet_qua_han", "so_tu_choi_hoac_rut"]
    assert (mart[outcome].sum(axis=1) == mart["so_tiep_nhan"]).all()
    resolved = ["so_giai_quyet_truoc_han", "so_giai_quyet_dung_han", "so_giai_quyet_qua_han"]
    assert (mart[resolved].sum(axis=1) == mart["so_da_giai_quyet"]).all()


def test_without_a_new_due_date_column_the_original_due_date_counts():
    dossiers = _dossiers()
    dossiers["ngay_hen_tra_moi"] = None  # what tables.read gives for a table loaded before the column existed
    a = _row(dich_vu_cong(dossiers, AS_OF), ma_phuong_xa="26740")
    assert (a["so_giai_quyet_truoc_han"], a["so_giai_quyet_qua_han"]) == (1, 2)
    assert (a["so_dang_giai_quyet_trong_han"], a["so_dang_giai_quyet_qua_han"]) == (2, 2)


def test_every_rate_states_numerator_and_denominator():
    described = {n: d for n, _, d in DICH_VU_CONG.columns}
    mart = next(m for m in marts.MARTS if m.spec is DICH_VU_CONG)
    for rate in ("ty_le_dung_han", "ty_le_truc_tuyen", "ty_le_toan_trinh"):
        assert "tử số" in described[rate] and "mẫu số" in described[rate]
        assert f"{rate} = " in DICH_VU_CONG.title and f"{rate} = " in mart.description


# (tax code, type, VSIC, capital, registered, ward, loaded at)
ENTERPRISES = [
    ("0300000001", "co_phan", "6201", 1_000_000_000, "2026-10-05", "26740", "2026-11-01T00:00:00Z"),
    ("0300000002", "co_phan", "6202", 500_000_000, "2026-10-20", "26740", "2026-11-01T00:00:00Z"),
    ("0300000003", "tnhh_mot_thanh_vien", "4711", 100_000_000, "2026-10-07", "26740", "2026-11-01T00:00:00Z"),
    ("0300000004", "co_phan", "4100", 2_000_000_000, "2026-09-30", "26743", "2026-10-05T00:00:00Z"),
    # 0300000001 again, loaded later: it moved to 26743 and raised its capital; it counts there, once
    ("0300000001", "co_phan", "6201", 1_200_000_000, "2026-10-05", "26743", "2026-11-20T00:00:00Z"),
    ("0300000006", "tu_nhan", None, 300_000_000, "2026-10-01", "26740", "2026-11-01T00:00:00Z"),
]


def _enterprises(dissolved: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(ENTERPRISES, columns=["ma_so_thue", "loai_hinh", "nganh_nghe_chinh", "von_dieu_le",
                                               "ngay_dang_ky", "ma_phuong_xa", "_kho_loaded_at"])
    frame["ngay_dang_ky"] = frame["ngay_dang_ky"].map(D)
    frame["ngay_giai_the"] = frame["ma_so_thue"].map(lambda t: D((dissolved or {})[t]) if t in (dissolved or {})
                                                     else None)
    frame["_kho_row"] = range(len(frame))
    return frame


def _by_key(mart: pd.DataFrame) -> dict:
    keys = ["thang", "ma_phuong_xa", "loai_hinh", "ma_nganh_cap1"]
    return {tuple(r[k] for k in keys): (r["so_dang_ky_moi"], r["von_dieu_le_dang_ky_moi"],
                                        None if pd.isna(r["so_giai_the"]) else r["so_giai_the"])
            for r in mart.to_dict("records")}


def test_doanh_nghiep_by_ward_month_type_and_vsic_section():
    mart = doanh_nghiep(_enterprises(), AS_OF)
    assert list(mart.columns) == DOANH_NGHIEP.names
    assert _by_key(mart) == {  # no dissolution dates in the source: so_giai_the is missing, not 0
        ("2026-09", "26743", "co_phan", "F"): (1, 2_000_000_000, None),
        ("2026-10", "26740", "co_phan", "J"): (1, 500_000_000, None),
        ("2026-10", "26740", "tnhh_mot_thanh_vien", "G"): (1, 100_000_000, None),
        ("2026-10", "26740", "tu_nhan", None): (1, 300_000_000, None),
        ("2026-10", "26743", "co_phan", "J"): (1, 1_200_000_000, None),
    }
    j = mart[mart["ma_nganh_cap1"] == "J"].iloc[0]
    assert j["ten_nganh_cap1"] == "Thông tin và truyền thông"
    assert mart.loc[mart["ma_phuong_xa"] == "26740", "ten_phuong_xa"].iloc[0] == "Phường Sài Gòn"


def test_doanh_nghiep_counts_dissolutions_where_present():
    mart = doanh_nghiep(_enterprises({"0300000003": "2026-11-02"}), AS_OF)
    got = _by_key(mart)
    assert got[("2026-11", "26740", "tnhh_mot_thanh_vien", "G")] == (0, None, 1)
    assert got[("2026-10", "26740", "tnhh_mot_thanh_vien", "G")] == (1, 100_000_000, 0)
    assert int(mart["so_giai_the"].sum()) == 1 and int(mart["so_dang_ky_moi"].sum()) == 5


def test_mart_table_is_replaced_whole_with_comments_and_parquet(tmp_path):
    from pipelines.resources import KhoResource

    kho = KhoResource(data_dir=str(tmp_path))
    wh = kho.warehouse
    mart = dich_vu_cong(_dossiers(), AS_OF)
    assert tables.replace(wh, kho.lake_root, DICH_VU_CONG, mart) == 3
    assert tables.replace(wh, kho.lake_root, DICH_VU_CONG, mart.iloc[:2]) == 2  # replaced, never appended
    with wh.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT thang, so_tiep_nhan, ngay_tinh FROM mart_dich_vu_cong "
                                    "ORDER BY thang")).all()
    assert [tuple(r) for r in rows] == [("2026-09", 2, "2026-11-10"), ("2026-10", 11, "2026-11-10")]
    parquet = pd.read_parquet(tmp_path / "lake" / "mart" / "dich_vu_cong" / "data.parquet")
    assert len(parquet) == 2 and list(parquet.columns) == DICH_VU_CONG.names


@pytest.mark.postgres
def test_mart_on_postgresql_has_schema_mart_and_comments(postgres_url):
    from assets.warehouse import Warehouse

    wh = Warehouse(postgres_url)
    tables.replace(wh, "memory://kho-mart-test", DICH_VU_CONG, dich_vu_cong(_dossiers(), AS_OF))
    with wh.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sum(so_tiep_nhan) FROM mart.dich_vu_cong")).scalar() == len(DOSSIERS)
        comment = conn.execute(sa.text("SELECT col_description('mart.dich_vu_cong'::regclass, a.attnum) "
                                       "FROM pg_attribute a WHERE a.attrelid = 'mart.dich_vu_cong'::regclass "
                                       "AND a.attname = 'ty_le_dung_han'")).scalar()
        table_comment = conn.execute(sa.text("SELECT obj_description('mart.dich_vu_cong'::regclass)")).scalar()
    assert "tử số" in comment and "mẫu số" in comment and "ty_le_truc_tuyen = " in table_comment
    wh.engine.dispose()
