import os
import uuid

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from dagster import AssetKey, materialize

from assets.dimensions import DIMENSIONS, build_dimension_assets
from pipelines.resources import KhoResource

EXPECTED_ROWS = {"dm_don_vi_hanh_chinh": 3321, "dm_nganh_kinh_te": 21 + 88}


def _run(kho: KhoResource) -> dict[str, int]:
    result = materialize(build_dimension_assets(), resources={"kho": kho})
    assert result.success
    counts = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        counts[mat.asset_key.path[-1]] = mat.metadata["dagster/row_count"].value
        assert {c.name for c in mat.metadata["dagster/column_schema"].schema.columns}
    return counts


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    kho = KhoResource(data_dir=str(tmp_path_factory.mktemp("kho")))
    first = _run(kho)
    second = _run(kho)  # a re-materialisation replaces, never appends
    return kho, first, second


def _query(kho: KhoResource, sql: str, **params):
    with kho.warehouse.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def test_asset_definitions():
    assets = build_dimension_assets()
    keys = {k for a in assets for k in a.keys}
    assert keys == {AssetKey(["danh_muc", d.table]) for d in DIMENSIONS}
    for a in assets:
        spec = next(iter(a.specs))
        assert spec.group_name == "danh_muc" and spec.kinds == {"parquet", "sql"}
        assert spec.description and "kho" in a.required_resource_keys


def test_row_counts_and_no_duplicates_on_rerun(loaded):
    kho, first, second = loaded
    assert first == second
    for table, rows in EXPECTED_ROWS.items():
        assert first[table] == rows
    for table, rows in first.items():
        assert _query(kho, f"SELECT COUNT(*) FROM {table}")[0][0] == rows
        assert pq.read_metadata(kho.lake / "curated" / table / "data.parquet").num_rows == rows
    assert first["dm_don_vi_hanh_chinh_cu"] > 10_000
    assert first["dm_chuyen_doi_dvhc"] > first["dm_don_vi_hanh_chinh_cu"]  # splits add rows


def test_current_units(loaded):
    kho, _, _ = loaded
    assert _query(kho, "SELECT COUNT(*) FROM dm_don_vi_hanh_chinh WHERE ma_tinh = '79'")[0][0] == 168
    row = _query(kho, "SELECT ma_tinh, ten_tinh, ten_phuong_xa, loai FROM dm_don_vi_hanh_chinh"
                      " WHERE ma_phuong_xa = '26740'")
    assert row == [("79", "Thành phố Hồ Chí Minh", "Phường Sài Gòn", "Phường")]
    assert _query(kho, "SELECT COUNT(DISTINCT ma_tinh) FROM dm_don_vi_hanh_chinh WHERE ten_tinh IS NOT NULL")[0][0] == 34


def test_crosswalk(loaded):
    kho, _, _ = loaded
    rows = _query(kho, "SELECT ma_moi, ten_moi, toan_bo, so_don_vi_moi FROM dm_chuyen_doi_dvhc WHERE ma_cu = '27487'")
    assert rows == [("27487", "Phường Tân Mỹ", True, 1)]
    # A split old unit lists every destination and says how many there are.
    split = _query(kho, "SELECT ma_cu, COUNT(*), MIN(so_don_vi_moi) FROM dm_chuyen_doi_dvhc"
                        " GROUP BY ma_cu HAVING COUNT(*) > 1 LIMIT 5")
    assert split and all(n == m for _, n, m in split)


def test_vsic_sections_and_divisions(loaded):
    kho, _, _ = loaded
    sections = dict(_query(kho, "SELECT ma_nganh, ten_nganh FROM dm_nganh_kinh_te WHERE cap = 1"))
    assert sorted(sections) == list("ABCDEFGHIJKLMNOPQRSTU")
    assert sections["F"] == "Xây dựng"
    divisions = dict(_query(kho, "SELECT ma_nganh, ma_nganh_cha FROM dm_nganh_kinh_te WHERE cap = 2"))
    assert len(divisions) == 88 and divisions["62"] == "J" and divisions["01"] == "A" and divisions["99"] == "U"
    # ISIC Rev.4 ranges, which VSIC 2018 keeps at division level.
    ranges = {"A": (1, 3), "B": (5, 9), "C": (10, 33), "D": (35, 35), "E": (36, 39), "F": (41, 43),
              "G": (45, 47), "H": (49, 53), "I": (55, 56), "J": (58, 63), "K": (64, 66), "L": (68, 68),
              "M": (69, 75), "N": (77, 82), "O": (84, 84), "P": (85, 85), "Q": (86, 88), "R": (90, 93),
              "S": (94, 96), "T": (97, 98), "U": (99, 99)}
    for code, section in divisions.items():
        low, high = ranges[section]
        assert low <= int(code) <= high, (code, section)


def test_parquet_carries_descriptions(loaded):
    kho, _, _ = loaded
    schema = pq.read_schema(kho.lake / "curated" / "dm_don_vi_hanh_chinh" / "data.parquet")
    assert schema.field("ma_phuong_xa").metadata[b"description"].decode().startswith("Mã đơn vị hành chính")
    assert schema.metadata[b"kho.dataset"] == b"dm_don_vi_hanh_chinh"
    assert not list((kho.lake / "curated" / "dm_don_vi_hanh_chinh").glob("*.tmp"))


@pytest.mark.postgres
def test_postgres_schema_comments_and_replace(tmp_path):
    """On PostgreSQL the tables live in schema `curated` and carry their Vietnamese comments."""
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            name = f"kho_dim_{uuid.uuid4().hex[:8]}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is unreachable and CI=true: {e}")
        pytest.skip(f"PostgreSQL is unreachable: {e}")
    kho = KhoResource(data_dir=str(tmp_path), warehouse_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        assert _run(kho) == _run(kho)
        assert _query(kho, "SELECT COUNT(*) FROM curated.dm_don_vi_hanh_chinh WHERE ma_tinh = '79'")[0][0] == 168
        assert _query(kho, "SELECT ma_moi, toan_bo FROM curated.dm_chuyen_doi_dvhc WHERE ma_cu = '27487'") == [
            ("27487", True)]
        comment = _query(kho, "SELECT col_description('curated.dm_don_vi_hanh_chinh'::regclass, 3)")[0][0]
        assert comment == "Mã đơn vị hành chính cấp xã (5 chữ số)"
        assert _query(kho, "SELECT obj_description('curated.dm_nganh_kinh_te'::regclass)")[0][0].startswith(
            "Hệ thống ngành kinh tế")
    finally:
        kho.warehouse.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_dimension_and_mart_on_s3_compatible_store(tmp_path, monkeypatch, s3):
    """KHO_LAKE_URL=s3://...: a dimension's and a derived table's Parquet copies go to the object store (a local
    moto server), readable there with pandas and pyarrow, and no local folder named "s3:" appears."""
    import pandas as pd

    from assets import tables

    monkeypatch.chdir(tmp_path)
    kho = KhoResource(data_dir=str(tmp_path / "data"), lake_url="s3://kho-lake/city")
    vsic = [a for a in build_dimension_assets() if a.key == AssetKey(["danh_muc", "dm_nganh_kinh_te"])]
    result = materialize(vsic, resources={"kho": kho})
    assert result.success
    (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
    url = "s3://kho-lake/city/curated/dm_nganh_kinh_te/data.parquet"
    assert mat.metadata["lake"].value == url

    spec = tables.TableSpec("mart", "thu_s3", "Bảng thử", (("ma", "text", "Mã"), ("so", "integer", "Số")))
    assert tables.replace(kho.warehouse, kho.lake_root, spec, pd.DataFrame({"ma": ["a", "b"], "so": [1, 2]})) == 2

    s3.invalidate_cache()
    assert sorted(s3.find("kho-lake")) == ["kho-lake/city/curated/dm_nganh_kinh_te/data.parquet",
                                           "kho-lake/city/mart/thu_s3/data.parquet"]  # nothing temporary left
    frame = pd.read_parquet(url)
    assert len(frame) == EXPECTED_ROWS["dm_nganh_kinh_te"]
    assert frame.set_index("ma_nganh").loc["A", "cap"] == 1
    assert _query(kho, "SELECT COUNT(*) FROM dm_nganh_kinh_te")[0][0] == len(frame)
    with s3.open(url, "rb") as f:
        schema = pq.read_schema(f)
    assert schema.field("ten_nganh").metadata[b"description"].decode() == "Tên ngành"
    assert schema.metadata[b"kho.dataset"] == b"dm_nganh_kinh_te"
    assert pd.read_parquet("s3://kho-lake/city/mart/thu_s3").to_dict("list") == {"ma": ["a", "b"], "so": [1, 2]}
    assert not list(tmp_path.rglob("s3:*")) and not (tmp_path / "data" / "lake").exists()
    kho.warehouse.engine.dispose()
