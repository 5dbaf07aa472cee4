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


# batches.ahead: the next slice is made in a thread of its own while this one is consumed


def test_ahead_gives_every_item_in_order_made_in_another_thread():
    import threading

    made_in = []

    def items():
        for i in range(50):
            made_in.append(threading.current_thread().name)
            yield i

    assert list(batches.ahead(items())) == list(range(50))
    assert set(made_in) == {"kho ahead"}


def test_ahead_raises_the_producers_error_at_the_item_it_stopped_at():
    def items():
        yield from range(3)
        raise flow.ExportError("x.csv", "broken quote", "row 7")

    got = []
    with pytest.raises(flow.ExportError, match="x.csv at row 7: broken quote"):
        for item in batches.ahead(items()):
            got.append(item)
    assert got == [0, 1, 2]


def test_ahead_stops_the_producer_when_the_caller_stops_early():
    import threading
    import time

    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="ingest failed"):
        for item in batches.ahead(items(), depth=1):
            if item == 2:
                raise RuntimeError("ingest failed")
    time.sleep(0.3)
    assert threading.active_count() == before  # the producer's thread is gone
    assert len(made) <= 5  # it ran at most a slot and the item in hand ahead of the caller


@pytest.mark.parametrize("few", [True, False])
def test_present_reads_only_the_row_groups_holding_rejected_rows(tmp_path, monkeypatch, few):
    """A few rows are fetched alone (DuckDB): no row group is read whole. Many are read with their row group,
    and only the row groups holding them."""
    frame = pd.DataFrame({"ma": [f"HS{i:03d}" for i in range(90)], "_kho_reasons": None})
    frame["_kho_reasons"] = frame["_kho_reasons"].astype(object)
    frame.loc[[5, 70, 71], "_kho_reasons"] = ["duplicate_key", "invalid_date", "invalid_date"]
    staged = batches.write(tmp_path / "v.parquet", [frame[i:i + 30] for i in range(0, 90, 30)])
    monkeypatch.setattr(batches, "FEW_ROWS", 3 if few else 2)
    read = []

    class Counting(batches.Staged):
        def _group(self, files, names, i, **kw):
            read.append((i, tuple(names)))
            return super()._group(files, names, i, **kw)

    got = list(Counting(staged.path).present("_kho_reasons"))
    assert [list(g["ma"]) for g in got] == [["HS005"], ["HS070", "HS071"]]
    assert [list(g["_kho_reasons"]) for g in got] == [["duplicate_key"], ["invalid_date", "invalid_date"]]
    full = ("ma", "_kho_reasons")
    # the middle slice: its reasons only
    assert [i for i, names in read if names == full] == ([] if few else [0, 2])

    clean = batches.write(tmp_path / "c.parquet", [frame.assign(_kho_reasons=None)[i:i + 30] for i in (0, 30)])
    (empty,) = batches.present(clean, "_kho_reasons", ["ma", "_kho_reasons"])
    assert list(empty.columns) == ["ma", "_kho_reasons"] and len(empty) == 0


def test_work_files_of_a_failed_run_are_swept_by_the_next_run(tmp_path, monkeypatch):
    """A step that fails after writing its rows leaves its work file (personal data as sent); the next step of
    any later run removes the files of runs the instance knows are finished."""
    from dagster import DagsterInstance

    from assets.factory import build_assets
    from pipelines.runs import materialize_landing
    from tests.conftest import resources

    monkeypatch.setenv("KHO_DATA_DIR", str(tmp_path))
    work = tmp_path / "staging" / "_work"
    instance = DagsterInstance.ephemeral()
    landing = tmp_path / LANDING
    landing.mkdir(parents=True)
    (landing / "ho_so_2026_10.csv").write_bytes(b'"Ma ho so","Ngay tiep nhan"\r\n"HS1,"01/10/2026\r\n')  # cut quote
    first = materialize_landing(build_assets(DOSSIERS), resources(tmp_path), [DOSSIERS], instance)
    assert not first.success
    failed_run = first.results[0].run_id
    left = [p.name for p in work.iterdir()]
    assert left and all(name.startswith(failed_run) for name in left)

    write_dossiers(landing / "ho_so_2026_10.csv", rows=ROWS)  # the department sends it again, whole
    second = materialize_landing(build_assets(DOSSIERS), resources(tmp_path), [DOSSIERS], instance)
    assert second.success
    assert not any(p.name.startswith(failed_run) for p in work.iterdir())


@pytest.mark.parametrize("dropped", [[], [0], [5, 6, 99], list(range(0, 100, 3))])
def test_drop_rows_equals_a_filter(dropped):
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.table({"ma": [f"HS{i:03d}" for i in range(100)], "phi": list(range(100))})
    drop = pa.array([i in dropped for i in range(100)])
    got = batches.drop_rows(table, drop)
    assert got.equals(table.filter(pc.invert(drop)))
    assert got.num_rows == 100 - len(dropped)


def test_rows_are_taken_exactly_from_the_file_and_its_overlay(tmp_path, monkeypatch):
    """take and present give exactly the frame's rows, few or many, with the overlay's columns in place of the
    file's."""
    import numpy as np

    frame = pd.DataFrame({"ma": [f"HS{i:04d}" for i in range(1000)], "phi": range(1000)})
    frame["_kho_reasons"] = pd.Series([None] * 1000, dtype=object)
    reasons = frame[["_kho_reasons"]].copy()
    reasons.loc[[5, 700], "_kho_reasons"] = ["duplicate_key", "invalid_date"]
    base = batches.write(tmp_path / "clean.parquet", [frame[:500], frame[500:]])
    over = batches.write(tmp_path / "validated.parquet", [reasons[:500], reasons[500:]])
    staged = batches.Staged(base.path, over.path)

    types = []
    for few in (batches.FEW_ROWS, 0):  # fetched alone, or read with their row groups
        monkeypatch.setattr(batches, "FEW_ROWS", few)
        got = list(staged.present("_kho_reasons"))
        assert [g.to_dict("records") for g in got] == [
            [{"ma": "HS0005", "phi": 5, "_kho_reasons": "duplicate_key"}],
            [{"ma": "HS0700", "phi": 700, "_kho_reasons": "invalid_date"}]]
        types.append([g.dtypes.to_dict() for g in got])
        for positions in ([3, 499, 500, 999], list(range(0, 1000, 2)), []):
            taken = batches.take(staged, np.array(positions, dtype=np.int64), ["ma", "phi", "_kho_reasons"])
            assert taken["ma"].tolist() == [f"HS{i:04d}" for i in positions]
            assert taken["phi"].tolist() == positions
            assert (taken["_kho_reasons"].fillna("").tolist()
                    == reasons["_kho_reasons"].take(positions).fillna("").tolist())
            types.append(taken.dtypes.to_dict())
    assert types[0] == types[4] and types[1:4] == types[5:]  # the same types either way


def test_a_cleaned_files_normalised_columns_are_not_normalised_again(tmp_path, monkeypatch):
    """Cleaning notes in its file which columns normalize() wrote (citizen IDs, phones). The load pseudonymises
    them as they are, with the same pseudonyms as normalising again would give; a note the contract no longer
    agrees with (the column retyped) is ignored, and a frame carries no note."""
    from quality import pseudonym

    monkeypatch.setenv("KHO_PSEUDONYM_KEY", "k" * 64)
    csv = tmp_path / "ho_so_2026_10.csv"
    write_dossiers(csv, rows=ROWS)
    staged, _ = flow.clean_files(DOSSIERS, [{"archive_path": str(csv), "file_name": csv.name, "sha256": "ab" * 32}],
                                 tmp_path / "clean.parquet")
    assert flow.trusted_columns(DOSSIERS, staged) == {"so_cccd", "so_dien_thoai"}
    phone = DOSSIERS.columns["so_dien_thoai"].model_copy(update={"type": "text"})
    retyped = DOSSIERS.model_copy(update={"columns": {**DOSSIERS.columns, "so_dien_thoai": phone}})
    assert flow.trusted_columns(retyped, staged) == {"so_cccd"}
    cleaned = staged.read()
    assert flow.trusted_columns(DOSSIERS, cleaned) == set()

    checked = []
    normalise = pseudonym.normalise
    monkeypatch.setattr(pseudonym, "normalise", lambda v, t: checked.append(v.name) or normalise(v, t))
    trusted = flow.curated_rows(DOSSIERS, cleaned, flow.trusted_columns(DOSSIERS, staged))
    assert "so_cccd" not in checked and "so_dien_thoai" not in checked
    again = flow.curated_rows(DOSSIERS, cleaned)
    assert {"so_cccd", "so_dien_thoai"} <= set(checked)
    pd.testing.assert_frame_equal(trusted, again)
    assert trusted["so_cccd"].str.startswith("ps_").all()
