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


def _indexes(wh, c) -> dict[str, str]:
    """name -> definition of the curated table's indexes."""
    with wh.engine.connect() as conn:
        if wh.dialect == "sqlite":
            got = conn.exec_driver_sql(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                                       f"'{c.table}' AND sql IS NOT NULL").all()
        else:
            got = conn.exec_driver_sql(f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'curated' "
                                       f"AND tablename = '{c.table}'").all()
    return {name: sql for name, sql in got}


def test_replace_partition_indexes_source_files_only_for_rows_without_a_period(wh, lake):
    """Every row written pays for its index entries: the source-file index of a replace_partition table holds
    only the rows its DELETE looks up by file (no period), and the DELETE uses it. On PostgreSQL the period's
    index is a BRIN. The full b-trees an earlier version made are replaced."""
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    load(wh, lake, c, "a.csv", OCT, "L1")
    table = wh.name_of(wh.curated_table(c))
    pg = wh.dialect == "postgresql"
    with wh.engine.begin() as conn:  # as kho made them before: full b-trees
        conn.exec_driver_sql(f'CREATE INDEX "ix_{c.table}__kho_file_sha256" ON {table} (_kho_file_sha256)')
        if pg:
            conn.exec_driver_sql(f'CREATE INDEX "ix_{c.table}_ky" ON {table} (ky)')
    load(wh, lake, c, "b.csv", OCT, "L2")
    indexes = _indexes(wh, c)
    assert f"ix_{c.table}__kho_file_sha256" not in indexes
    partial = indexes[f"ix_{c.table}__kho_file_sha256_where_ky_null"]
    assert "_kho_file_sha256" in partial and "WHERE" in partial.upper() and "IS NULL" in partial.upper()
    period = f"ix_{c.table}_ky_brin" if pg else f"ix_{c.table}_ky"
    assert set(indexes) == {period, f"ix_{c.table}__kho_file_sha256_where_ky_null"}
    assert ("USING brin (ky)" in indexes[period]) if pg else ("(ky)" in indexes[period])
    delete = f"DELETE FROM {table} WHERE ky IN ('2026-10') OR (ky IS NULL AND _kho_file_sha256 IN ('x'))"
    with wh.engine.connect() as conn:
        if wh.dialect == "sqlite":
            plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {delete}").all())
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN {delete}").all())
        conn.rollback()
    assert f"ix_{c.table}__kho_file_sha256_where_ky_null" in plan and period in plan
    assert rows(wh, c, ["ma_co_so", "_kho_load_id"]) == [("CS01", "L2")]


def test_sqlite_builds_an_empty_tables_indexes_after_its_rows_and_a_failed_load_leaves_them(tmp_path, monkeypatch):
    """Into an empty SQLite table the rows go in first and the plain indexes are built after them, in the same
    transaction: a load failing between its slices leaves the table as it was, indexes included; a finished
    load leaves the indexes kho declares, and a unique index someone added is never dropped."""
    import assets.load
    from assets.warehouse import Warehouse

    wh, lake = Warehouse(f"sqlite:///{tmp_path / 'kho.sqlite'}"), str(tmp_path / "lake")
    c = contract(dataset_name(), "replace_partition", partitioned=True)
    table = wh.curated_table(c)
    wh.prepare(table, "evolve", **assets.load._indexes(c))
    declared = _indexes(wh, c)
    with wh.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE UNIQUE INDEX "ux_{c.table}_ma_co_so" ON "{c.table}" (ma_co_so)')
    declared[f"ux_{c.table}_ma_co_so"] = _indexes(wh, c)[f"ux_{c.table}_ma_co_so"]

    def fail(where):
        if where == "curated-slice":
            raise RuntimeError("the server went away")

    two = [*OCT, ("CS02", "Trạm y tế", 10, date(2026, 10, 9))]
    with monkeypatch.context() as m:
        m.setattr(assets.load, "hold_for_test", fail)
        with pytest.raises(RuntimeError, match="went away"):
            load(wh, lake, c, "a.csv", two, "L1")
    assert _indexes(wh, c) == declared and rows(wh, c, ["ma_co_so"]) == []
    load(wh, lake, c, "a.csv", two, "L1")
    assert _indexes(wh, c) == declared and rows(wh, c, ["ma_co_so", "_kho_load_id"]) == [("CS01", "L1"),
                                                                                         ("CS02", "L1")]
    with pytest.raises(Exception, match="UNIQUE"):  # the unique index was there all along
        load(wh, lake, c, "b.csv", [("CS01", "Bệnh viện", 1, date(2026, 9, 3))], "L2")
    wh.engine.dispose()


def test_a_new_sqlite_warehouse_has_large_pages_and_an_old_one_keeps_its_own(tmp_path):
    """32 KiB pages make loads cheaper; a warehouse made before keeps its 4 KiB pages and still loads."""
    import sqlite3

    from assets.warehouse import SQLITE_PAGE_SIZE, Warehouse

    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE earlier (x INTEGER)")
    for path, pages in ((tmp_path / "new.sqlite", SQLITE_PAGE_SIZE), (old, 4096)):
        wh = Warehouse(f"sqlite:///{path}")
        c = contract(dataset_name(), "append")
        load(wh, str(tmp_path / "lake"), c, "a.csv", OCT, "L1")
        assert rows(wh, c, ["ma_co_so", "_kho_load_id"]) == [("CS01", "L1")]
        wh.engine.dispose()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA page_size").fetchone()[0] == pages


def test_date_columns_take_date_objects_datetime64_and_arrow_dates_but_never_a_time_of_day(tmp_path):
    import pandas as pd
    import pyarrow as pa

    from assets.warehouse import Warehouse

    wh = Warehouse(f"sqlite:///{tmp_path / 'kho.sqlite'}")
    table = wh.curated_table(contract(dataset_name(), "append"))
    want = [date(2026, 10, 3), None]
    for values in (pd.Series(want, dtype=object), pd.Series(pd.to_datetime(want)),
                   pd.Series(pd.to_datetime(want)).dt.tz_localize("Asia/Ho_Chi_Minh"),  # local midnight
                   pd.Series(want, dtype=pd.ArrowDtype(pa.date32())),
                   pd.Series(pd.to_datetime(want), dtype=pd.ArrowDtype(pa.timestamp("us")))):
        got = wh.arrow(table, pd.DataFrame({"ma_co_so": ["CS01", "CS02"], "ngay_cap_nhat": values}))
        assert got.column("ngay_cap_nhat").type == pa.date32() and got.column("ngay_cap_nhat").to_pylist() == want
    with pytest.raises(SchemaChangeError, match="ngay_cap_nhat"):
        wh.arrow(table, pd.DataFrame({"ngay_cap_nhat": pd.to_datetime(["2026-10-03 07:30"])}))
    wh.engine.dispose()
