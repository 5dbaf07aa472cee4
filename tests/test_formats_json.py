"""The 1022 hotline's API dump through the pipeline: envelope, nested objects, and the processing steps loaded as
the child table phan_anh_1022__buoc_xu_ly keyed to their feedback; and the dumps that must fail alone (another
envelope, renamed fields, a paged export, steps that are not a list, truncated JSON)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.hotline import (
    DEFECTS, STEP_DEFECTS, expected_quarantine, expected_steps, feedback_document, feedback_items, write_feedback,
)
from tests.conftest import query, run_datasets

HOTLINE = load_contract(CONTRACTS_DIR / "phan_anh_1022.yaml")
LANDING = Path("landing/trung_tam_1022/phan_anh_1022")
ROWS = 80
KEY = "kho-test-pseudonym-key-0123456789abcdef"



def _dump(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("json")
    landing = data_dir / LANDING
    good = write_feedback(landing / "phan_anh_2026_10.json", rows=ROWS)
    items = feedback_items(10, date(2026, 6, 1), defects=False)
    renamed = [{("id" if k == "maPhanAnh" else k): v for k, v in it.items()} for it in items]  # API v2
    steps_object = [{**it, "quaTrinhXuLy": it["quaTrinhXuLy"][0]} for it in items]
    # Each the export of a month of its own (a month's newest dump is its export): each fails alone.
    bad = {
        "another envelope": ("phan_anh_2026_05.json", _dump({"result": {"rows": items}}),
                             "records_path 'data.items' does not exist", "at $"),
        "renamed field": ("phan_anh_2026_06.json", _dump(feedback_document(renamed)),
                          "required field(s) in no record: ma_phan_anh (as 'maPhanAnh')", "at records"),
        "paged export": ("phan_anh_2026_07.json",
                         _dump({**feedback_document(items), "data": {"total": 500, "page": 1, "items": items}}),
                         "says total=500 but holds 10 records", "at total"),
        "steps not a list": ("phan_anh_2026_08.json", _dump(feedback_document(steps_object)),
                             "child table 'buoc_xu_ly': expected an array", "at record 1, field 'quaTrinhXuLy'"),
        "truncated": ("phan_anh_2026_09.json", _dump(feedback_document(items))[:-300], "invalid JSON", "at line 1"),
    }
    for name, data, _, _ in bad.values():
        (landing / name).write_bytes(data)
    env = pytest.MonkeyPatch()
    env.setenv("KHO_PSEUDONYM_KEY", KEY)  # module scope: the per-test key fixture is not active yet
    try:
        runs = run_datasets(data_dir, HOTLINE)
    finally:
        env.undo()
    return data_dir, good, bad, runs


def test_feedback_and_its_steps_load(loaded):
    data_dir, good, _, runs = loaded
    assert [r.success for r in runs.results] == [False] * 5 + [True]  # May-September fail alone, October loads
    doc = json.loads(good.read_text(encoding="utf-8"))
    items = doc["data"]["items"]
    read = len(items)
    steps_read, steps_bad = expected_steps(items)

    log = query(data_dir, "SELECT * FROM kho_load_log WHERE status = 'loaded'").set_index("dataset")
    assert log.loc["phan_anh_1022", ["rows_read", "rows_loaded", "rows_quarantined"]].tolist() == [
        read, read - expected_quarantine(), expected_quarantine()]
    assert log.loc["phan_anh_1022__buoc_xu_ly", ["rows_read", "rows_loaded", "rows_quarantined"]].tolist() == [
        steps_read, steps_read - steps_bad, steps_bad]

    calls = query(data_dir, "SELECT * FROM phan_anh_1022")
    steps = query(data_dir, "SELECT * FROM phan_anh_1022__buoc_xu_ly")
    assert len(calls) == read - expected_quarantine() and len(steps) == steps_read - steps_bad
    assert set(steps["ma_phan_anh"]) <= set(calls["ma_phan_anh"])  # no orphan step
    assert not steps.duplicated(["ma_phan_anh", "thu_tu"]).any()
    assert set(steps["ky"]) == set(calls["ky"]) == {"2026-10"}
    first = steps[steps["thu_tu"] == 1]
    assert set(first["hanh_dong"]) == {"tiep_nhan"} and set(first["ten_don_vi"]) == {"Tổng đài 1022"}
    # Nested fields reach their columns; personal ones as pseudonyms.
    assert set(calls["ten_linh_vuc"]) <= {"Môi trường", "Giao thông", "Trật tự đô thị", "Xây dựng",
                                         "An ninh trật tự", "Điện, nước"}
    assert calls["so_dien_thoai"].str.startswith("ps_").all()

    q = query(data_dir, "SELECT * FROM quarantine_phan_anh_1022__buoc_xu_ly")
    codes = q["_kho_reasons"].str.split(";").explode().value_counts().to_dict()
    assert codes["invalid_date:thoi_gian"] == STEP_DEFECTS["invalid_date"]
    assert codes["unknown_value:hanh_dong"] == STEP_DEFECTS["unknown_value"]
    assert codes["parent_rejected"] == steps_bad - sum(STEP_DEFECTS.values())  # every step of a rejected call
    parents = query(data_dir, "SELECT * FROM quarantine_phan_anh_1022")
    assert len(parents) == expected_quarantine()
    assert (parents["_kho_reasons"] == "duplicate_row").sum() == DEFECTS["duplicate_row"]


def test_a_new_export_of_the_month_replaces_calls_and_steps(loaded):
    data_dir, _, _, _ = loaded
    newer = write_feedback(data_dir / LANDING / "phan_anh_2026_10_bo_sung.json", rows=60, seed=5)
    env = pytest.MonkeyPatch()
    env.setenv("KHO_PSEUDONYM_KEY", KEY)
    try:
        assert run_datasets(data_dir, HOTLINE).success
    finally:
        env.undo()
    sha = hashlib.sha256(newer.read_bytes()).hexdigest()
    items = json.loads(newer.read_text(encoding="utf-8"))["data"]["items"]
    steps_read, steps_bad = expected_steps(items)
    steps = query(data_dir, "SELECT * FROM phan_anh_1022__buoc_xu_ly")
    assert set(steps["_kho_file_sha256"]) == {sha} and len(steps) == steps_read - steps_bad
    assert set(query(data_dir, "SELECT * FROM phan_anh_1022")["_kho_file_sha256"]) == {sha}


def test_dumps_that_do_not_fit_the_contract_fail_alone(loaded):
    data_dir, _, bad, _ = loaded
    log = query(data_dir, "SELECT * FROM kho_load_log WHERE status = 'failed'").set_index("file_name")
    assert len(log) == len(bad)
    for case, (name, data, reason, place) in bad.items():
        row = log.loc[str(LANDING.relative_to("landing") / name)]
        assert name in row.message and reason in row.message and place in row.message, (case, row.message)
        sha = hashlib.sha256(data).hexdigest()
        assert (data_dir / "raw" / sha[:2] / sha).read_bytes() == data, case
    assert set(log["dataset"]) == {"phan_anh_1022"}  # a failed dump loads no step either
