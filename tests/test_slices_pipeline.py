"""Exports read a slice at a time (KHO_SLICE_ROWS) give exactly what one whole read gives, through Dagster.

The big-export path is the only path: a small export is one slice. These runs force slices of a few dozen rows,
so repeated keys fall in different slices, the blocking check sees the whole batch, and the warehouse, the
lake, the quarantine and the load log must come out identical to a run with one slice.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets import batches, flow
from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import DEFECTS, expected_quarantine, write_dossiers
from tests.conftest import query, run_datasets

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
LANDING = Path("landing/trung_tam_hcc/ho_so_tthc")
ROWS = 300
READ = ROWS + DEFECTS["duplicate_row"] + DEFECTS["duplicate_key_conflict"] // 2
SKIP = {"_kho_load_id", "_kho_loaded_at"}  # differ between any two runs


def _run(root: Path, monkeypatch, slice_rows: str) -> dict[str, pd.DataFrame]:
    monkeypatch.setenv("KHO_DATA_DIR", str(root))
    monkeypatch.setenv("KHO_SLICE_ROWS", slice_rows)
    write_dossiers(root / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    assert run_datasets(root, DOSSIERS).success
    out = {}
    for name, sql in {"curated": "SELECT * FROM ho_so_tthc ORDER BY _kho_row",
                      "quarantine": "SELECT * FROM quarantine_ho_so_tthc ORDER BY _kho_row, _kho_reasons",
                      "log": "SELECT dataset, file_name, rows_read, rows_loaded, rows_quarantined, status "
                             "FROM kho_load_log"}.items():
        frame = query(root, sql)
        out[name] = frame.drop(columns=[c for c in frame if c in SKIP]).reset_index(drop=True)
    lake = pq.read_table(root / "lake" / "curated" / DOSSIERS.dataset).to_pandas()
    out["lake"] = lake.drop(columns=[c for c in lake if c in SKIP]).sort_values("_kho_row").reset_index(drop=True)
    return out


def test_small_slices_load_exactly_what_one_slice_loads(tmp_path, monkeypatch):
    whole = _run(tmp_path / "whole", monkeypatch, "1000000")
    sliced = _run(tmp_path / "sliced", monkeypatch, "37")
    assert len(whole["curated"]) == READ - expected_quarantine()
    assert whole["log"].to_dict("records") == [{
        "dataset": DOSSIERS.dataset, "file_name": "trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv", "rows_read": READ,
        "rows_loaded": READ - expected_quarantine(), "rows_quarantined": expected_quarantine(), "status": "loaded"}]
    # The repeats are appended at the end of the file, their first copies anywhere: other slices.
    reasons = whole["quarantine"]["_kho_reasons"].str.split(";").explode()
    assert (reasons == "duplicate_row").sum() == DEFECTS["duplicate_row"]
    assert (reasons == "duplicate_key_conflict").sum() == DEFECTS["duplicate_key_conflict"]
    for name in whole:
        pd.testing.assert_frame_equal(sliced[name], whole[name], check_dtype=False, obj=name)
    # Slices really were slices: the staged steps hold one row group per 37 rows of each file.
    staged = batches.Staged(next((tmp_path / "sliced" / "staging" / DOSSIERS.dataset / "clean").glob("*.parquet")))
    assert pq.ParquetFile(staged.path).metadata.num_row_groups == -(-READ // 37)
    assert staged.num_rows == READ


def test_an_export_failing_part_way_leaves_none_of_its_rows(tmp_path, monkeypatch):
    """Two files in one batch; the second is cut inside a quoted field near its end, after several slices were
    cleaned: it fails alone and the staged batch holds exactly the first file's rows."""
    monkeypatch.setenv("KHO_SLICE_ROWS", "25")
    good = write_dossiers(tmp_path / "a.csv", rows=100)
    bad = write_dossiers(tmp_path / "b.csv", rows=100, seed=8)
    last = bad.read_bytes().rstrip(b"\r\n").rsplit(b"\r\n", 1)[1]
    bad.write_bytes(bad.read_bytes() + last.replace(b"HCM-", b"HCM-X", 1).rsplit(b",", 1)[0] + b',"12.000\r\n')
    files = [{"archive_path": str(p), "file_name": p.name, "sha256": p.stem * 32} for p in (good, bad)]
    failures: list = []
    staged, reports = flow.clean_files(DOSSIERS, files, tmp_path / "clean.parquet", failures)
    assert [f["file_name"] for f, _ in failures] == ["b.csv"]
    assert "b.csv" in str(failures[0][1]) and "quoted field" in str(failures[0][1])
    assert list(reports) == [files[0]["sha256"]]
    alone = flow.clean_batch(DOSSIERS, flow.extract_files(DOSSIERS, files[:1])[0])
    got = staged.read()
    assert len(got) == len(alone) == 100 + DEFECTS["duplicate_row"] + DEFECTS["duplicate_key_conflict"] // 2
    assert got["ma_ho_so"].tolist() == alone["ma_ho_so"].tolist()
    assert got["_kho_reasons"].fillna("").tolist() == alone["_kho_reasons"].fillna("").tolist()
    assert pq.ParquetFile(staged.path).metadata.num_row_groups == -(-len(alone) // 25)


@pytest.mark.parametrize("slice_rows", ["1", "7", "1000"])
def test_validation_of_a_staged_batch_equals_the_frame(tmp_path, monkeypatch, slice_rows):
    monkeypatch.setenv("KHO_SLICE_ROWS", slice_rows)
    source = write_dossiers(tmp_path / "x.csv", rows=60)
    files = [{"archive_path": str(source), "file_name": source.name, "sha256": "f" * 64}]
    frame = flow.clean_batch(DOSSIERS, flow.extract_files(DOSSIERS, files)[0])
    staged, _ = flow.clean_files(DOSSIERS, files, tmp_path / "clean.parquet")
    whole, piecewise = flow.validate(DOSSIERS, frame), flow.validate(DOSSIERS, staged, out=tmp_path / "v.parquet")
    assert piecewise.passed == whole.passed and piecewise.problems == whole.problems
    assert piecewise.rejected_rows == whole.rejected_rows == expected_quarantine()
    assert [(r.expectation, r.success, r.unexpected_count) for r in piecewise.results] == \
        [(r.expectation, r.success, r.unexpected_count) for r in whole.results]
    got = piecewise.frame.read()
    assert got["_kho_reasons"].fillna("").tolist() == whole.frame["_kho_reasons"].fillna("").tolist()
    assert got["ma_ho_so"].tolist() == whole.frame["ma_ho_so"].tolist()
