"""The curated lake: Hive partitions, zstd, Vietnamese descriptions, readable as is by DuckDB and pandas, the same
rows as the table after every load mode; and the same on an S3-compatible store (a local moto server)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.load_support import OCT, OCT_V2, contract, dataset_name, load, open_warehouse, rows, sha

NOV = [("CS04", "Trung tâm y tế Thủ Đức", 80, date(2026, 11, 2))]


@pytest.fixture
def wh(request, tmp_path):
    wh = open_warehouse(request, tmp_path, "sqlite")
    yield wh
    wh.engine.dispose()


def _duckdb_rows(lake: str, dataset: str, columns: str = "ma_co_so, so_giuong, ky, _kho_load_id") -> list[tuple]:
    sql = (f"SELECT {columns} FROM read_parquet('{lake}/curated/{dataset}/**/*.parquet', hive_partitioning=true) "
           "ORDER BY ALL")
    return duckdb.sql(sql).fetchall()


def _files(lake: Path, dataset: str) -> list[str]:
    return sorted(str(p.relative_to(lake / "curated" / dataset)) for p in (lake / "curated" / dataset).rglob("*"))


def test_replace_partition_lake_is_hive_zstd_described_and_readable(wh, tmp_path):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, str(lake), c, "oct.csv", OCT, "L1")
    load(wh, str(lake), c, "nov.csv", NOV, "L2")
    load(wh, str(lake), c, "oct_v2.csv", OCT_V2, "L3")
    assert _files(lake, c.dataset) == ["ky=2026-10", "ky=2026-10/data.parquet", "ky=2026-11",
                                       "ky=2026-11/data.parquet"]
    expected = [("CS01", 150, "2026-10", "L3"), ("CS03", 5, "2026-10", "L3"), ("CS04", 80, "2026-11", "L2")]
    assert _duckdb_rows(str(lake), c.dataset) == expected
    assert rows(wh, c, ["ma_co_so", "so_giuong", "ky", "_kho_load_id"]) == expected  # the lake is the table

    frame = pd.read_parquet(lake / "curated" / c.dataset)  # pandas/pyarrow read the Hive folders too
    assert sorted(zip(frame["ma_co_so"], frame["ky"].astype(str))) == [
        ("CS01", "2026-10"), ("CS03", "2026-10"), ("CS04", "2026-11")]
    meta = pq.ParquetFile(lake / "curated" / c.dataset / "ky=2026-10" / "data.parquet")
    assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
    schema = meta.schema_arrow
    assert schema.field("so_giuong").metadata[b"description"].decode() == "Số giường bệnh"
    assert schema.field("_kho_loaded_at").metadata[b"description"].decode() == "Thời điểm nạp (UTC)"
    assert schema.metadata[b"kho.title"].decode() == "Cơ sở y tế (kiểm thử)"
    assert str(schema.field("ngay_cap_nhat").type) == "date32[day]"


def test_append_lake_has_one_file_per_source_file(wh, tmp_path):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), "append", partitioned=True)
    load(wh, str(lake), c, "oct.csv", OCT, "L1")
    load(wh, str(lake), c, "oct_v2.csv", OCT_V2, "L2")
    load(wh, str(lake), c, "oct.csv", OCT, "L3")
    assert _files(lake, c.dataset) == ["ky=2026-10", f"ky=2026-10/part-{sha('oct.csv')[:16]}.parquet",
                                       f"ky=2026-10/part-{sha('oct_v2.csv')[:16]}.parquet"]
    assert _duckdb_rows(str(lake), c.dataset) == [
        ("CS01", 120, "2026-10", "L3"), ("CS01", 150, "2026-10", "L2"), ("CS02", 10, "2026-10", "L3"),
        ("CS03", 5, "2026-10", "L2")]


def test_scd2_lake_is_the_whole_table(wh, tmp_path):
    lake = tmp_path / "lake"
    c = contract(dataset_name(), "scd2")
    load(wh, str(lake), c, "r1.csv", OCT, "L1")
    load(wh, str(lake), c, "r2.csv", OCT_V2, "L2")
    columns = "ma_co_so, so_giuong, is_current, _kho_load_id"
    assert _files(lake, c.dataset) == ["data.parquet"]
    got = duckdb.sql(f"SELECT {columns} FROM '{lake}/curated/{c.dataset}/*.parquet' ORDER BY ALL").fetchall()
    assert got == rows(wh, c, ["ma_co_so", "so_giuong", "is_current", "_kho_load_id"]) == [
        ("CS01", 120, False, "L1"), ("CS01", 150, True, "L2"), ("CS02", 10, True, "L1"), ("CS03", 5, True, "L2")]


def test_lake_on_s3_compatible_store(wh, s3):
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    root = "s3://kho-lake/city"
    result = load(wh, root, c, "oct.csv", OCT, "L1", rejected=[("CS09", "x", None, date(2026, 10, 1))])
    load(wh, root, c, "nov.csv", NOV, "L2")
    load(wh, root, c, "oct_v2.csv", OCT_V2, "L3")
    assert result.lake == f"{root}/curated/{c.dataset}"
    s3.invalidate_cache()
    assert sorted(s3.find("kho-lake")) == [
        f"kho-lake/city/curated/{c.dataset}/ky=2026-10/data.parquet",
        f"kho-lake/city/curated/{c.dataset}/ky=2026-11/data.parquet",
        f"kho-lake/city/quarantine/{c.dataset}/part-{sha('oct.csv')[:16]}.parquet"]  # nothing temporary left
    frame = pd.read_parquet(f"{root}/curated/{c.dataset}")
    assert sorted(zip(frame["ma_co_so"], frame["so_giuong"], frame["ky"].astype(str), frame["_kho_load_id"])) == [
        ("CS01", 150, "2026-10", "L3"), ("CS03", 5, "2026-10", "L3"), ("CS04", 80, "2026-11", "L2")]
