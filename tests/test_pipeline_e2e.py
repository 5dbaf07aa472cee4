"""One departmental export end to end, with Dagster, on real files and a real warehouse (SQLite and PostgreSQL)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import DEFECTS, HEADERS, expected_quarantine, write_dossiers
from tests.conftest import run_datasets

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
LANDING = Path("landing/trung_tam_hcc/ho_so_tthc")
ROWS = 400
READ = ROWS + DEFECTS["duplicate_row"] + DEFECTS["duplicate_key_conflict"] // 2  # repeats are appended


def _engine(data_dir: Path, url: str) -> sa.Engine:
    return sa.create_engine(url or f"sqlite:///{data_dir / 'warehouse.sqlite'}")


def _names(url: str) -> dict[str, str]:
    if url:
        return {"curated": "curated.ho_so_tthc", "quarantine": "quarantine.ho_so_tthc", "log": "kho.load_log",
                "checks": "kho.check_results", "manifest": "kho.raw_manifest"}
    return {"curated": "ho_so_tthc", "quarantine": "quarantine_ho_so_tthc", "log": "kho_load_log",
            "checks": "kho_check_results", "manifest": "kho_raw_manifest"}


def _query(engine: sa.Engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.text(sql)).mappings().all())


def _materialised(result) -> set[str]:
    return {"/".join(e.asset_key.path) for e in result.get_asset_materialization_events()}


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request, data_dir):
    if request.param == "sqlite":
        return ""
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # each test starts from an empty warehouse
        for schema in ("curated", "quarantine", "kho"):
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()
    return url


def test_dossier_export_loads_end_to_end(data_dir, warehouse):
    source = write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    result = run_datasets(data_dir, DOSSIERS, warehouse_url=warehouse)
    assert result.success
    assert _materialised(result) == {f"ho_so_tthc/{s}" for s in ("raw", "clean", "validated", "curated")}
    checks = [e for e in result.get_asset_check_evaluations()]
    assert [(c.check_name, c.passed) for c in checks] == [("gx_suite", True)]

    engine, t = _engine(data_dir, warehouse), _names(warehouse)
    quarantined = expected_quarantine()
    curated = _query(engine, f"SELECT * FROM {t['curated']}")
    assert len(curated) == READ - quarantined

    # Types and normalisation as an analyst sees them.
    assert curated["ma_so_thue"].dropna().str.fullmatch(r"\d{10}").all()
    assert curated["ma_so_thue"].dropna().str.startswith("03").all()  # text, leading zero kept
    assert set(curated["kenh"]) <= {"truc_tiep", "truc_tuyen", "buu_chinh_cong_ich"}
    assert set(curated["ky"]) == {"2026-10"}
    assert curated["ma_ho_so"].is_unique
    assert {str(d)[:7] for d in curated["ngay_tiep_nhan"]} == {"2026-10"}
    assert curated["_kho_file_sha256"].nunique() == 1 and curated["_kho_load_id"].nunique() == 1
    names = curated["ten_thu_tuc"].dropna()
    assert (names == names.map(lambda s: unicodedata.normalize("NFC", s))).all()

    # Every rejected row is in the quarantine with its reasons and the text the department sent.
    q = _query(engine, f"SELECT * FROM {t['quarantine']}")
    assert len(q) == quarantined
    reasons = q["_kho_reasons"].str.split(";").explode().str.split(":").str[0].value_counts().to_dict()
    assert reasons == {
        "invalid_date": DEFECTS["invalid_date"], "invalid_tax_code": DEFECTS["invalid_tax_code"],
        "duplicate_row": DEFECTS["duplicate_row"], "duplicate_key_conflict": DEFECTS["duplicate_key_conflict"],
        "invalid_phone": DEFECTS["invalid_phone"], "unknown_value": DEFECTS["unknown_value"],
        "expect_column_pair_values_a_to_be_greater_than_b": DEFECTS["due_before_received"],
    }
    bad_dates = q[q["_kho_reasons"].str.contains("invalid_date:ngay_tiep_nhan")]["ngay_tiep_nhan"]
    assert set(bad_dates) == {"31/02/2026", "2026/13/45", "00/10/2026"}
    assert set(q[q["_kho_reasons"].str.contains("unknown_value:kenh")]["kenh"]) == {"Fax"}
    source_rows = pd.read_csv(source, dtype=str, encoding="utf-8-sig")
    first_bad = q.iloc[0]
    assert source_rows.iloc[int(first_bad["_kho_row"]) - 2]["Mã hồ sơ"] == first_bad["ma_ho_so"]

    # The load log accounts for every row read.
    log = _query(engine, f"SELECT * FROM {t['log']}")
    assert log[["rows_read", "rows_loaded", "rows_quarantined", "status", "check_outcome"]].values.tolist() == [
        [READ, READ - quarantined, quarantined, "loaded", "passed"]]
    manifest = _query(engine, f"SELECT * FROM {t['manifest']}")
    assert manifest["file_name"].tolist() == ["trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv"]
    archived = data_dir / "raw" / manifest["sha256"][0][:2] / manifest["sha256"][0]
    assert archived.read_bytes() == source.read_bytes()
    assert len(_query(engine, f"SELECT * FROM {t['checks']}")) == len(DOSSIERS.suite())

    # The lake: zstd Parquet in Hive partitions with Vietnamese descriptions, readable by DuckDB as is.
    files = list((data_dir / "lake" / "curated" / "ho_so_tthc").glob("ky=*/*.parquet"))
    assert [f.parent.name for f in files] == ["ky=2026-10"]
    meta = pq.ParquetFile(files[0])
    assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
    assert meta.schema_arrow.field("ngay_tiep_nhan").metadata[b"description"].decode() == "Ngày tiếp nhận hồ sơ"
    lake = duckdb.sql(f"SELECT count(*), min(ky) FROM read_parquet('{data_dir}/lake/curated/ho_so_tthc/**/*.parquet',"
                      " hive_partitioning=true)").fetchall()[0]
    assert lake == (READ - quarantined, "2026-10")
    assert list((data_dir / "lake" / "quarantine" / "ho_so_tthc").glob("*.parquet"))


def test_rerun_without_new_files_changes_nothing(data_dir):
    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    assert run_datasets(data_dir, DOSSIERS).success
    engine, t = _engine(data_dir, ""), _names("")
    before = _query(engine, f"SELECT count(*) AS n, min(_kho_load_id) AS load FROM {t['curated']}").iloc[0].tolist()
    second = run_datasets(data_dir, DOSSIERS)
    assert second.success
    after = _query(engine, f"SELECT count(*) AS n, min(_kho_load_id) AS load FROM {t['curated']}").iloc[0].tolist()
    assert after == before
    assert len(_query(engine, f"SELECT * FROM {t['log']}")) == 1


def test_a_month_exported_again_replaces_that_month(data_dir):
    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    assert run_datasets(data_dir, DOSSIERS).success
    write_dossiers(data_dir / LANDING / "ho_so_2026_10_v2.csv", rows=ROWS + 50, seed=8)
    assert run_datasets(data_dir, DOSSIERS).success
    curated = _query(_engine(data_dir, ""), "SELECT ky, _kho_file_sha256 FROM ho_so_tthc")
    assert len(curated) == ROWS + 50 + DEFECTS["duplicate_row"] + 1 - expected_quarantine()
    assert curated["_kho_file_sha256"].nunique() == 1


def _bad_batch(path: Path) -> None:
    """An export where half the rows carry an impossible date: above the contract's 25% limit."""
    write_dossiers(path, rows=ROWS)
    frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    frame.loc[frame.index[: len(frame) // 2], "Ngày tiếp nhận"] = "32/10/2026"
    path.write_bytes(frame.to_csv(index=False).encode("utf-8-sig"))


def test_failing_blocking_check_stops_downstream(data_dir):
    _bad_batch(data_dir / LANDING / "ho_so_2026_10.csv")
    result = run_datasets(data_dir, DOSSIERS)
    assert not result.success
    assert _materialised(result) == {"ho_so_tthc/raw", "ho_so_tthc/clean", "ho_so_tthc/validated"}
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "above the contract's limit of 25%" in check.description
    engine = _engine(data_dir, "")
    assert not sa.inspect(engine).has_table("ho_so_tthc")  # nothing reached the curated zone
    log = _query(engine, "SELECT status, rows_loaded, message FROM kho_load_log").iloc[0]
    assert log["status"] == "check_failed" and log["rows_loaded"] == 0
    assert "rows rejected" in log["message"]
    # The department can see why: the rejected rows are in the quarantine already.
    assert _query(engine, "SELECT count(*) AS n FROM quarantine_ho_so_tthc")["n"][0] >= ROWS // 2


@pytest.mark.parametrize("content, words", [
    (b"", "the file is empty"),
    (bytes(range(256)) * 40, "encoding"),
    ("Mã hồ sơ,Tên thủ tục\nHS-1,Đăng ký khai sinh\n".encode("utf-8"), "required column(s) missing"),
])
def test_bad_file_fails_clearly_is_archived_and_nothing_is_loaded(data_dir, content, words):
    bad = data_dir / LANDING / "ho_so_hong.csv"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(content)
    # A second dataset with a good file must not be affected by the bad one.
    other = DOSSIERS.model_copy(update={"dataset": "ho_so_tthc_quan_1", "landing": "quan_1/*.csv"})
    write_dossiers(data_dir / "landing" / "quan_1" / "ho_so.csv", rows=ROWS)

    result = run_datasets(data_dir, DOSSIERS, other)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "ho_so_tthc__clean"
    message = failure.step_failure_data.user_failure_data.description
    assert "ho_so_hong.csv" in message and words in message
    assert "ho_so_tthc_quan_1/curated" in _materialised(result)

    engine = _engine(data_dir, "")
    log = _query(engine, "SELECT file_name, status, message FROM kho_load_log WHERE dataset = 'ho_so_tthc'")
    assert log.values.tolist() == [["trung_tam_hcc/ho_so_tthc/ho_so_hong.csv", "failed", message.split(": ", 1)[1]]]
    sha = _query(engine, "SELECT sha256 FROM kho_raw_manifest WHERE dataset = 'ho_so_tthc'")["sha256"][0]
    assert (data_dir / "raw" / sha[:2] / sha).read_bytes() == content
    assert not sa.inspect(engine).has_table("ho_so_tthc")

    # The failed file is not retried on the next run; a corrected file (new bytes) loads.
    bad.unlink()
    write_dossiers(data_dir / LANDING / "ho_so_sua.csv", rows=ROWS)
    assert run_datasets(data_dir, DOSSIERS).success
    assert _query(engine, "SELECT count(*) AS n FROM ho_so_tthc")["n"][0] == READ - expected_quarantine()


def test_header_aliases_other_delimiter_and_extra_columns(data_dir):
    """Another office writes 'Số hồ sơ' for 'Mã hồ sơ', separates with ';' and adds a column of its own."""
    path = write_dossiers(data_dir / LANDING / "ho_so.csv", rows=200)
    frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    frame = frame.rename(columns={"Mã hồ sơ": "Số hồ sơ"}).assign(**{"Ghi chú": "không"})
    path.write_bytes(frame.to_csv(index=False, sep=";").encode("utf-8"))
    result = run_datasets(data_dir, DOSSIERS)
    assert result.success
    clean = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "clean")
    assert "Ghi chú" in clean.materialization.metadata["read_notes"].value
    curated = _query(_engine(data_dir, ""), "SELECT ma_ho_so FROM ho_so_tthc")
    assert curated["ma_ho_so"].str.startswith("HCM-202610-").all()
