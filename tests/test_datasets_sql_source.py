"""The construction department's permit table read through the pipeline by its watermark: a real SQLite file and
a real MariaDB server (never skipped under CI=true). Each pull lands a snapshot file that is archived and loaded
like any export; the watermark is kept in the warehouse; `full_refresh` re-reads everything."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import materialize

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.permits import DEFECTS, expected_quarantine, permit_table, update_permits, write_permit_source
from assets.factory import build_assets
from tests.conftest import MARIADB_URL, query, resources, run_datasets, server_unavailable

PERMITS = load_contract(CONTRACTS_DIR / "giay_phep_xay_dung.yaml")
ENV = PERMITS.format.url_env
ROWS = 40
READ = ROWS + DEFECTS["duplicate_key_conflict"] // 2
SNAPSHOTS = Path("landing/so_xay_dung/giay_phep_xay_dung")



def _contract(table: str):
    return PERMITS.model_copy(update={"format": PERMITS.format.model_copy(update={"table": table})})


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def source(request, data_dir, monkeypatch):
    """(url, contract) of a permit table filled by the department's system."""
    if request.param == "sqlite":
        url, table = f"sqlite:///{data_dir / 'so_xay_dung.sqlite'}", "gpxd_giay_phep"
    else:
        url, table = MARIADB_URL, f"gpxd_giay_phep_{uuid.uuid4().hex[:8]}"  # parallel runs share the server
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect():
                pass
        except sa.exc.OperationalError as e:
            server_unavailable(f"MariaDB at {url}", e)
        finally:
            engine.dispose()
    rows = write_permit_source(url, rows=ROWS, table=table)
    monkeypatch.setenv(ENV, url)
    yield url, _contract(table), max(r["NgayCapNhat"] for r in rows)
    if request.param == "mariadb":
        engine = sa.create_engine(url)
        permit_table(table=table).drop(engine, checkfirst=True)
        engine.dispose()


def test_incremental_pulls_by_watermark(data_dir, source):
    url, contract, top = source
    first = run_datasets(data_dir, contract)
    assert first.success
    snapshots = sorted((data_dir / SNAPSHOTS).glob("*.csv"))
    assert [p.name for p in snapshots] == [f"giay_phep_xay_dung_full_{top:%Y%m%dT%H%M%S}.csv"]  # the whole table
    log = query(data_dir, "SELECT * FROM kho_load_log")
    assert log[["file_name", "rows_read", "rows_loaded", "rows_quarantined", "status"]].values.tolist() == [
        [str(snapshots[0].relative_to(data_dir / "landing")), READ, READ - expected_quarantine(),
         expected_quarantine(), "loaded"]]
    manifest = query(data_dir, "SELECT * FROM kho_raw_manifest")
    assert (data_dir / "raw" / manifest.sha256[0][:2] / manifest.sha256[0]).read_bytes() == snapshots[0].read_bytes()
    marks = query(data_dir, "SELECT * FROM kho_source_watermarks")
    assert marks[["dataset", "watermark", "rows"]].values.tolist() == [
        ["giay_phep_xay_dung", str(top), READ]]
    assert url not in snapshots[0].read_text(encoding="utf-8") and url not in " ".join(log["message"].dropna())

    # The department adjusts two permits and issues two: only those four rows are pulled and merged.
    loaded = sorted(query(data_dir, "SELECT so_giay_phep FROM giay_phep_xay_dung")["so_giay_phep"])[:2]
    fresh = update_permits(url, changed=[int(n[:5]) for n in loaded], new=2, at=dt.datetime(2026, 10, 5, 9, 0), table=contract.format.table)
    top2 = max(r["NgayCapNhat"] for r in fresh)
    assert run_datasets(data_dir, contract).success
    second = sorted(set((data_dir / SNAPSHOTS).glob("*.csv")) - set(snapshots))
    assert [p.name for p in second] == [f"giay_phep_xay_dung_{top:%Y%m%dT%H%M%S}_{top2:%Y%m%dT%H%M%S}.csv"]
    assert len(pd.read_csv(second[0], dtype=str)) == 4
    curated = query(data_dir, "SELECT * FROM giay_phep_xay_dung")
    assert curated["so_giay_phep"].is_unique
    assert len(curated) == READ - expected_quarantine() + 2
    changed = curated.set_index("so_giay_phep").loc[loaded]
    assert set(changed["trang_thai"]) == {"da_dieu_chinh"}
    assert query(data_dir, "SELECT watermark FROM kho_source_watermarks ORDER BY pulled_at")["watermark"].tolist() == [
        str(top), str(top2)]

    # Nothing changed: no snapshot, no load.
    assert run_datasets(data_dir, contract).success
    assert len(list((data_dir / SNAPSHOTS).glob("*.csv"))) == 2
    assert len(query(data_dir, "SELECT * FROM kho_load_log")) == 2

    # A full re-read is one setting on the raw asset: every row again, merged without duplicates.
    full = materialize(build_assets(contract), resources=resources(data_dir), raise_on_error=False,
                       run_config={"ops": {"giay_phep_xay_dung__raw": {"config": {"full_refresh": True}}}})
    assert full.success
    log = query(data_dir, "SELECT * FROM kho_load_log ORDER BY finished_at")
    assert log["rows_read"].tolist()[-1] == READ + 2
    assert log["file_name"].tolist()[-1].endswith(f"giay_phep_xay_dung_full_{top2:%Y%m%dT%H%M%S}.csv")
    curated = query(data_dir, "SELECT * FROM giay_phep_xay_dung")
    assert curated["so_giay_phep"].is_unique and len(curated) == READ - expected_quarantine() + 2


def test_source_faults_are_logged_without_the_url(data_dir, monkeypatch):
    url = f"sqlite:///{data_dir / 'so_xay_dung.sqlite'}"
    write_permit_source(url, rows=ROWS)
    monkeypatch.delenv(ENV, raising=False)
    assert not run_datasets(data_dir, PERMITS).success
    monkeypatch.setenv(ENV, url)
    assert not run_datasets(data_dir, _contract("gpxd_khong_co")).success

    log = query(data_dir, "SELECT * FROM kho_load_log ORDER BY finished_at")
    assert log["status"].tolist() == ["failed", "failed"]
    assert f"${ENV}" in log["message"][0] and "is not set" in log["message"][0]
    assert "table 'gpxd_khong_co' does not exist" in log["message"][1]
    assert url not in " ".join(log["message"])
    assert not (data_dir / SNAPSHOTS).exists() or not list((data_dir / SNAPSHOTS).glob("*.csv"))
