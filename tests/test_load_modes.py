"""Each load mode's exact resulting rows across several loads, re-loads included, on every warehouse target.

sqlite and postgresql run the ADBC fast path, generic the plain SQLAlchemy path (on SQLite), duckdb the
SQLAlchemy path with Arrow scanned in place. PostgreSQL is the session's fresh database (tests/conftest.py).
"""

from __future__ import annotations

from datetime import date

import pytest

from assets.warehouse import LoadError
from tests.load_support import contract, dataset_name, load, open_warehouse, rows, sha, stamp

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "duckdb", "generic"]

OCT = [("CS01", "Bệnh viện Quận 1", 120, date(2026, 10, 3)), ("CS02", "Trạm y tế Bến Thành", 10, date(2026, 10, 9))]
NOV = [("CS04", "Trung tâm y tế Thủ Đức", 80, date(2026, 11, 2))]
OCT_V2 = [("CS01", "Bệnh viện Quận 1", 150, date(2026, 10, 3)), ("CS03", "Phòng khám Sài Gòn", 5, date(2026, 10, 20))]
BAD = [("CS09", "Cơ sở lỗi", None, date(2026, 10, 1))]  # quarantined (invalid_number:so_giuong)


@pytest.fixture(params=BACKENDS)
def wh(request, tmp_path):
    wh = open_warehouse(request, tmp_path, request.param)
    yield wh
    wh.engine.dispose()


@pytest.fixture
def lake(tmp_path):
    return str(tmp_path / "lake")


def test_append_is_idempotent_by_file(wh, lake):
    c = contract(dataset_name(), "append", partitioned=True)
    load(wh, lake, c, "oct.csv", OCT, "L1", rejected=BAD)
    load(wh, lake, c, "nov.csv", NOV, "L2")
    load(wh, lake, c, "oct.csv", OCT, "L3", rejected=BAD)  # the same file again: replaces its own rows
    assert rows(wh, c, ["ma_co_so", "so_giuong", "ky", "_kho_load_id", "_kho_file_sha256", "_kho_row"]) == [
        ("CS01", 120, "2026-10", "L3", sha("oct.csv"), 2), ("CS02", 10, "2026-10", "L3", sha("oct.csv"), 3),
        ("CS04", 80, "2026-11", "L2", sha("nov.csv"), 2)]
    assert rows(wh, c, ["ma_co_so", "so_giuong", "_kho_reasons", "_kho_load_id"], zone="quarantine") == [
        ("CS09", None, "invalid_number:so_giuong", "L3")]
    log = wh.name_of(wh.load_log).replace('"', "")
    with wh.engine.connect() as conn:
        got = conn.exec_driver_sql(f"SELECT load_id, file_name, rows_read, rows_loaded, rows_quarantined FROM {log} "
                                   f"WHERE dataset = '{c.dataset}' ORDER BY load_id").all()
    assert [tuple(r) for r in got] == [("L1", "oct.csv", 3, 2, 1), ("L2", "nov.csv", 1, 1, 0),
                                       ("L3", "oct.csv", 3, 2, 1)]


def test_replace_makes_the_table_the_batch(wh, lake):
    c = contract(dataset_name(), "replace")
    load(wh, lake, c, "a.csv", OCT, "L1")
    load(wh, lake, c, "b.csv", OCT_V2, "L2")
    load(wh, lake, c, "b.csv", OCT_V2, "L3")
    assert rows(wh, c, ["ma_co_so", "ten_co_so", "so_giuong", "ngay_cap_nhat", "_kho_load_id"]) == [
        ("CS01", "Bệnh viện Quận 1", 150, date(2026, 10, 3), "L3"),
        ("CS03", "Phòng khám Sài Gòn", 5, date(2026, 10, 20), "L3")]


def test_replace_partition_replaces_exactly_that_period(wh, lake):
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, lake, c, "oct.csv", OCT, "L1")
    load(wh, lake, c, "nov.csv", NOV, "L2")
    load(wh, lake, c, "oct_v2.csv", OCT_V2, "L3")  # October exported again
    expected = [("CS01", 150, "2026-10", "L3"), ("CS03", 5, "2026-10", "L3"), ("CS04", 80, "2026-11", "L2")]
    assert rows(wh, c, ["ma_co_so", "so_giuong", "ky", "_kho_load_id"]) == expected
    load(wh, lake, c, "oct_v2.csv", OCT_V2, "L4")  # and once more: same rows
    assert rows(wh, c, ["ma_co_so", "so_giuong", "ky"]) == [r[:3] for r in expected]


@pytest.mark.parametrize("on_missing", ["keep", "delete", "close"])
def test_merge_upserts_on_the_key(wh, lake, on_missing):
    c = contract(dataset_name(), "merge", on_missing=on_missing)
    load(wh, lake, c, "s1.csv", OCT, "L1")
    second = load(wh, lake, c, "s2.csv", OCT_V2, "L2")
    load(wh, lake, c, "s2.csv", OCT_V2, "L3")  # unchanged rows keep the load that last changed them
    cols = ["ma_co_so", "so_giuong", "_kho_load_id"] + (["_kho_deleted_at"] if on_missing == "close" else [])
    kept = {"keep": [("CS02", 10, "L1")], "delete": [], "close": [("CS02", 10, "L1", stamp(second.loaded_at))]}
    new = [("CS01", 150, "L2"), ("CS03", 5, "L2")]
    new = [r + (None,) for r in new] if on_missing == "close" else new
    assert rows(wh, c, cols) == sorted(new + kept[on_missing])
    if on_missing == "close":  # a closed key that comes back is live again
        fourth = load(wh, lake, c, "s1.csv", OCT, "L4")
        assert rows(wh, c, cols) == [("CS01", 120, "L4", None), ("CS02", 10, "L4", None),
                                     ("CS03", 5, "L2", stamp(fourth.loaded_at))]


def test_scd2_versions_only_real_changes(wh, lake):
    c = contract(dataset_name(), "scd2", tracked=["so_giuong"], on_missing="close")
    cols = ["ma_co_so", "ten_co_so", "so_giuong", "valid_from", "valid_to", "is_current", "_kho_load_id"]
    t1 = stamp(load(wh, lake, c, "r1.csv", OCT, "L1").loaded_at)
    first = [("CS01", "Bệnh viện Quận 1", 120, t1, None, True, "L1"),
             ("CS02", "Trạm y tế Bến Thành", 10, t1, None, True, "L1")]
    assert rows(wh, c, cols) == first
    load(wh, lake, c, "r1.csv", OCT, "L2")  # the same snapshot again: nothing changes
    assert rows(wh, c, cols) == first

    renamed = ("CS02", "Trạm y tế phường Bến Thành", 10, date(2026, 10, 9))  # an untracked column: corrected
    t3 = stamp(load(wh, lake, c, "r3.csv", [OCT_V2[0], renamed, OCT_V2[1]], "L3").loaded_at)
    assert rows(wh, c, cols) == [
        ("CS01", "Bệnh viện Quận 1", 120, t1, t3, False, "L1"),  # tracked so_giuong changed: closed ...
        ("CS01", "Bệnh viện Quận 1", 150, t3, None, True, "L3"),  # ... and a new version opened
        ("CS02", "Trạm y tế phường Bến Thành", 10, t1, None, True, "L3"),
        ("CS03", "Phòng khám Sài Gòn", 5, t3, None, True, "L3")]

    t4 = stamp(load(wh, lake, c, "r4.csv", [OCT_V2[0]], "L4").loaded_at)  # CS02, CS03 absent: closed
    assert rows(wh, c, cols) == [
        ("CS01", "Bệnh viện Quận 1", 120, t1, t3, False, "L1"),
        ("CS01", "Bệnh viện Quận 1", 150, t3, None, True, "L3"),
        ("CS02", "Trạm y tế phường Bến Thành", 10, t1, t4, False, "L3"),
        ("CS03", "Phòng khám Sài Gòn", 5, t3, t4, False, "L3")]


def test_a_batch_with_a_key_twice_is_refused_and_changes_nothing(wh, lake):
    c = contract(dataset_name(), "merge")
    load(wh, lake, c, "s1.csv", OCT, "L1")
    with pytest.raises(LoadError, match="primary key more than once"):
        load(wh, lake, c, "s2.csv", [OCT_V2[0], OCT_V2[0]], "L2")
    assert rows(wh, c, ["ma_co_so", "so_giuong", "_kho_load_id"]) == [("CS01", 120, "L1"), ("CS02", 10, "L1")]


@pytest.mark.parametrize("load, problem", [
    ({"mode": "append", "on_missing": "delete"}, "on_missing only applies to load.mode merge or scd2"),
    ({"mode": "scd2", "on_missing": "delete"}, "scd2 keeps history"),
    ({"mode": "merge", "tracked": ["ten_co_so"]}, "tracked only applies to load.mode scd2"),
    ({"mode": "scd2", "tracked": ["ma_co_so"]}, "part of the primary_key"),
    ({"mode": "scd2", "tracked": ["so_bac_si"]}, "not a column of the shared table"),
])
def test_contracts_state_load_options_that_fit_their_mode(load, problem):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=problem):
        contract("t_contract", **load)
