"""Schema evolution per contract (evolve / freeze), no silent type coercion, Vietnamese comments in PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from assets.warehouse import SchemaChangeError
from tests.load_support import COLUMNS, contract, dataset_name, load, open_warehouse, rows

OCT = [("CS01", "Bệnh viện Quận 1", 120, date(2026, 10, 3))]
WITH_DOCTORS = {**COLUMNS, "so_bac_si": {"type": "integer", "description": "Số bác sĩ"}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wh(request, tmp_path):
    wh = open_warehouse(request, tmp_path, request.param)
    yield wh
    wh.engine.dispose()


@pytest.fixture
def lake(tmp_path):
    return str(tmp_path / "lake")


def test_evolve_adds_a_new_column_as_nullable_and_reports_it(wh, lake):
    name = dataset_name()
    load(wh, lake, contract(name, "append"), "a.csv", OCT, "L1")
    wider = contract(name, "append", columns=WITH_DOCTORS)
    result = load(wh, lake, wider, "b.csv", [("CS02", "Trạm y tế", 10, date(2026, 10, 9), 3)], "L2")
    assert (result.schema.added, result.schema.missing, result.metadata()["schema_added_columns"]) == (
        ["so_bac_si"], [], "so_bac_si")
    assert rows(wh, wider, ["ma_co_so", "so_giuong", "so_bac_si"]) == [("CS01", 120, None), ("CS02", 10, 3)]
    with wh.engine.connect() as conn:
        message = conn.execute(sa.select(wh.load_log.c.message).where(wh.load_log.c.load_id == "L2")
                               .where(wh.load_log.c.dataset == name)).scalar_one()
    assert message == "schema evolved (added: so_bac_si)"

    # A column the contract no longer has stays in the table, loaded as NULL, and is reported.
    narrower = contract(name, "append", columns={k: v for k, v in WITH_DOCTORS.items() if k != "ten_co_so"})
    result = load(wh, lake, narrower, "c.csv", [("CS03", 5, date(2026, 10, 20), 1)], "L3")
    assert result.schema.missing == ["ten_co_so"]
    assert rows(wh, wider, ["ma_co_so", "ten_co_so", "so_bac_si"]) == [
        ("CS01", "Bệnh viện Quận 1", None), ("CS02", "Trạm y tế", 3), ("CS03", None, 1)]


def test_freeze_refuses_any_difference_and_changes_nothing(wh, lake):
    name = dataset_name()
    load(wh, lake, contract(name, "append", schema_change="freeze"), "a.csv", OCT, "L1")
    changed = {k: v for k, v in WITH_DOCTORS.items() if k != "ten_co_so"}
    changed["so_giuong"] = {"type": "text", "description": "Số giường bệnh (ghi chú)"}
    frozen = contract(name, "append", schema_change="freeze", columns=changed)
    with pytest.raises(SchemaChangeError) as e:
        load(wh, lake, frozen, "b.csv", [("CS02", "10", date(2026, 10, 9), 3)], "L2")
    assert "added: so_bac_si; missing: ten_co_so; retyped: so_giuong:" in str(e.value)
    assert "-> text" in str(e.value)
    assert rows(wh, contract(name, "append"), ["ma_co_so", "ten_co_so", "so_giuong"]) == [
        ("CS01", "Bệnh viện Quận 1", 120)]


def test_a_changed_type_fails_even_under_evolve(wh, lake):
    name = dataset_name()
    load(wh, lake, contract(name, "append"), "a.csv", OCT, "L1")
    retyped = {**COLUMNS, "so_giuong": {"type": "text", "description": "Số giường bệnh"}}
    with pytest.raises(SchemaChangeError, match=r"so_giuong: \w+ -> text.*never converts"):
        load(wh, lake, contract(name, "append", columns=retyped), "b.csv", [("CS02", "x", "10", None)], "L2")
    assert rows(wh, contract(name, "append"), ["ma_co_so", "so_giuong"]) == [("CS01", 120)]


def test_values_that_do_not_fit_their_type_fail_instead_of_being_coerced(wh, lake):
    c = contract(dataset_name(), "append")
    frame_rows = [("CS01", "Bệnh viện", "120 giường", date(2026, 10, 3))]
    with pytest.raises(SchemaChangeError, match="so_giuong: values of type"):
        load(wh, lake, c, "a.csv", frame_rows, "L1")
    with pytest.raises(SchemaChangeError, match="so_giuong"):  # 1.5 beds is not an integer, and never becomes 1
        load(wh, lake, contract(c.dataset, "append"), "b.csv", [("CS01", "x", 1.5, None)], "L1")


@pytest.mark.postgres
def test_postgres_tables_and_columns_carry_the_vietnamese_descriptions(request, tmp_path, lake):
    wh = open_warehouse(request, tmp_path, "postgresql")
    name = dataset_name()
    load(wh, lake, contract(name, "scd2"), "a.csv", OCT, "L1")
    load(wh, lake, contract(name, "scd2", columns=WITH_DOCTORS), "b.csv", [OCT[0] + (4,)], "L2")
    with wh.engine.connect() as conn:
        table = conn.execute(sa.text("SELECT obj_description(CAST(:t AS regclass), 'pg_class')"),
                             {"t": f"curated.{name}"}).scalar()
        columns = dict(conn.execute(sa.text(
            "SELECT column_name, col_description(CAST(:t AS regclass), ordinal_position) "
            "FROM information_schema.columns WHERE table_schema = 'curated' AND table_name = :n"),
            {"t": f"curated.{name}", "n": name}).all())
        quarantine = conn.execute(sa.text("SELECT obj_description(CAST(:t AS regclass), 'pg_class')"),
                                  {"t": f"quarantine.{name}"}).scalar()
    wh.engine.dispose()
    assert table == "Cơ sở y tế (kiểm thử)"
    assert quarantine == "Dòng bị loại: Cơ sở y tế (kiểm thử)"
    assert columns == {
        "ma_co_so": "Mã cơ sở", "ten_co_so": "Tên cơ sở", "so_giuong": "Số giường bệnh",
        "ngay_cap_nhat": "Ngày cập nhật", "so_bac_si": "Số bác sĩ",  # added by evolve, with its comment
        "_kho_load_id": "Mã lần nạp", "_kho_file_sha256": "Mã băm SHA-256 của tệp nguồn",
        "_kho_row": "Dòng trong tệp nguồn", "_kho_loaded_at": "Thời điểm nạp (UTC)",
        "valid_from": "Phiên bản có hiệu lực từ (UTC)",
        "valid_to": "Phiên bản hết hiệu lực lúc (UTC); trống: hiện hành", "is_current": "Phiên bản hiện hành"}
