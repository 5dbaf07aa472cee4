"""Row-level failures go to quarantine with reason codes; batch-level ones decide the blocking check.

A small contract uses each custom expectation on text columns (so GX, not the cleaner, judges them), a
cleaner failure, a pair rule, a `mostly` ratio and a warn-level rule. First through `assets.flow.validate`,
then one real Dagster materialisation: quarantine in the lake and the warehouse, check results per load,
and the Data Docs page the asset check links to.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from assets import flow
from assets.contract import load_contract
from tests.conftest import run_datasets

DATASET = "ho_so_kiem_thu"
CONTRACT = {
    "dataset": DATASET,
    "title": "Hồ sơ kiểm thử chất lượng",
    "description": "Test dataset for quarantine and checks.",
    "department": {"code": "so_kiem_thu", "name": "Sở Kiểm thử"},
    "landing": f"so_kiem_thu/{DATASET}/*.csv",
    "columns": {
        "ma_ho_so": {"description": "Mã hồ sơ", "headers": ["Mã hồ sơ"], "required": True},
        "ma_so_thue": {"description": "Mã số thuế", "headers": ["Mã số thuế"]},  # text: GX judges it
        "ma_phuong_xa": {"description": "Mã phường/xã", "headers": ["Mã phường/xã"]},  # text: GX judges it
        "ngay_nhan": {"type": "date", "description": "Ngày tiếp nhận", "headers": ["Ngày tiếp nhận"]},
        "ngay_hen": {"type": "date", "description": "Ngày hẹn trả", "headers": ["Ngày hẹn trả"]},
        "le_phi": {"type": "integer", "description": "Lệ phí", "headers": ["Lệ phí"]},
        "dien_thoai": {"description": "Điện thoại", "headers": ["Điện thoại"]},
        "ma_thu_tuc": {"description": "Mã thủ tục", "headers": ["Mã thủ tục"]},
    },
    "primary_key": ["ma_ho_so"],
    "expectations": [
        {"expect_column_values_to_be_valid_tax_code": {"column": "ma_so_thue"}},
        {"expect_column_values_to_be_current_ward_code": {"column": "ma_phuong_xa"}},  # NSO's current list
        {"expect_column_pair_values_a_to_be_greater_than_b": {
            "column_A": "ngay_hen", "column_B": "ngay_nhan", "or_equal": True,
            "ignore_row_if": "either_value_is_missing"}},
        {"expect_column_values_to_be_between": {"column": "le_phi", "min_value": 0, "max_value": 1_000_000}},
        {"expect_column_values_to_not_be_null": {"column": "dien_thoai", "mostly": 0.8}},  # a ratio: batch-level
        {"expect_column_values_to_match_regex": {"column": "ma_thu_tuc", "regex": r"^\d\.\d{6}$"},
         "severity": "warn"},
    ],
    "quality": {"max_rejected_share": 0.6, "min_rows": 3},
}
HEADER = "Mã hồ sơ,Mã số thuế,Mã phường/xã,Ngày tiếp nhận,Ngày hẹn trả,Lệ phí,Điện thoại,Mã thủ tục"
ROWS = [
    "HS01,0100109106,26740,01/10/2026,05/10/2026,1.000,0903123456,1.001612",  # clean
    "HS02,0100109107,26740,01/10/2026,05/10/2026,0,0903123456,1.001612",  # tax code check digit
    "HS03,3600252847,26734,01/10/2026,05/10/2026,0,0903123456,1.001612",  # 26734: Bến Nghé, gone in 2025
    "HS04,,26743,31/02/2026,05/10/2026,0,0903123456,1.001612",  # cleaner: no 31 February
    "HS05,,26743,02/10/2026,05/10/2026,2.000.000,0903123456,1.001612",  # fee above the maximum
    "HS06,,26743,09/10/2026,05/10/2026,0,0903123456,1.001612",  # due before received
    "HS07,079203001234,27142,02/10/2026,05/10/2026,0,,1.001612",  # no phone: tolerated (mostly), 12-digit ID ok
    "HS08,,27142,02/10/2026,05/10/2026,0,0903123456,TT-99",  # warn only: stays
    "HS09,0302000013,26758,03/10/2026,03/10/2026,,0903123456,2.000908",  # clean
    "HS10,,26758,03/10/2026,,0,0903123456,2.000908",  # clean (pair ignored when a date is missing)
]
# Row in the file (header is row 1) -> reason code, and the column holding the value the department wrote.
EXPECTED = {
    3: ("expect_column_values_to_be_valid_tax_code:ma_so_thue", "ma_so_thue", "0100109107"),
    4: ("expect_column_values_to_be_current_ward_code:ma_phuong_xa", "ma_phuong_xa", "26734"),
    5: ("invalid_date:ngay_nhan", "ngay_nhan", "31/02/2026"),
    6: ("expect_column_values_to_be_between:le_phi", "le_phi", "2.000.000"),
    7: ("expect_column_pair_values_a_to_be_greater_than_b:ngay_hen,ngay_nhan", "ngay_hen", "05/10/2026"),
}


def write_contract(folder: Path, **changes) -> Path:
    path = folder / f"{DATASET}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**CONTRACT, **changes}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_export(path: Path, rows: list[str] = ROWS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8-sig"))
    return path


def validate_file(tmp_path: Path, rows: list[str] = ROWS, **changes) -> flow.Validation:
    contract = load_contract(write_contract(tmp_path / "contracts", **changes))
    source = write_export(tmp_path / "export.csv", rows)
    extracted, _ = flow.extract_files(contract, [{"archive_path": str(source), "file_name": source.name,
                                                  "sha256": "f" * 64}])
    return flow.validate(contract, flow.clean_batch(contract, extracted))


def quarantined(frame: pd.DataFrame) -> dict[int, str]:
    bad = frame[frame["_kho_reasons"].notna()]
    return dict(zip(bad["_kho_row"].astype(int), bad["_kho_reasons"]))


# ---------------------------------------------------------------- through flow.validate


def test_custom_expectations_quarantine_exactly_the_failing_rows(tmp_path):
    v = validate_file(tmp_path)
    assert quarantined(v.frame) == {row: code for row, (code, _, _) in EXPECTED.items()}
    assert v.passed, v.problems  # 5 of 10 rejected, under the contract's 60%
    by_name = {r.expectation: r for r in v.results}
    tax = by_name["expect_column_values_to_be_valid_tax_code"]
    ward = by_name["expect_column_values_to_be_current_ward_code"]
    assert (tax.success, tax.unexpected_count, ward.success, ward.unexpected_count) == (False, 1, False, 1)
    # The tolerated ratio: one phone missing of 9 rows GX saw passes, and that row is not quarantined.
    phone = next(r for r in v.results if r.column == "dien_thoai")
    assert phone.success and phone.unexpected_count == 1 and 8 not in quarantined(v.frame)


def test_warn_failure_is_recorded_but_neither_quarantines_nor_blocks(tmp_path):
    v = validate_file(tmp_path)
    (warn,) = v.warnings
    assert (warn.expectation, warn.severity, warn.success, warn.unexpected_count) == \
        ("expect_column_values_to_match_regex", "warn", False, 1)
    assert 9 not in quarantined(v.frame) and v.passed


def test_a_ratio_below_mostly_blocks_without_quarantining(tmp_path):
    rows = [r.replace(",0903123456,", ",,") if i % 2 else r for i, r in enumerate(ROWS)]  # half the phones gone
    v = validate_file(tmp_path, rows)
    assert not v.passed
    assert any("expect_column_values_to_not_be_null" in p and "dien_thoai" in p for p in v.problems), v.problems
    assert not any("dien_thoai" in reasons for reasons in quarantined(v.frame).values())


def test_row_count_bounds_block(tmp_path):
    v = validate_file(tmp_path, ROWS[:1] + ROWS[8:], quality={"max_rejected_share": 0.6, "min_rows": 5})
    assert not v.passed
    assert [p for p in v.problems if p.startswith("expect_table_row_count_to_be_between")], v.problems


def test_rejected_share_above_the_contract_limit_blocks(tmp_path):
    v = validate_file(tmp_path, quality={"max_rejected_share": 0.3, "min_rows": 1})
    assert not v.passed and v.problems == ["50.0% of rows rejected, above the contract's limit of 30%"]


def test_custom_expectation_value_set_overrides_the_reference(tmp_path):
    expectations = [dict(e) for e in CONTRACT["expectations"]]
    expectations[1] = {"expect_column_values_to_be_current_ward_code": {"column": "ma_phuong_xa",
                                                                        "value_set": ["26740", "26734"]}}
    v = validate_file(tmp_path, expectations=expectations)
    wards = {row for row, code in quarantined(v.frame).items() if "current_ward_code" in code}
    assert wards == {6, 7, 8, 9, 10, 11}  # codes outside the set; row 5 the cleaner rejected before GX
    # GX judges a row on every rule: row 6 keeps both of its reasons, in the contract's order.
    assert quarantined(v.frame)[6] == ("expect_column_values_to_be_current_ward_code:ma_phuong_xa;"
                                       "expect_column_values_to_be_between:le_phi")


# ---------------------------------------------------------------- one real materialisation


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kho")
    contract = load_contract(write_contract(data_dir / "contracts"))
    write_export(data_dir / "landing" / "so_kiem_thu" / DATASET / "ho_so_2026_10.csv")
    result = run_datasets(data_dir, contract)
    return data_dir, result


def _sql(data_dir: Path, query: str) -> pd.DataFrame:
    engine = sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.text(query)).mappings().all())


def test_quarantine_holds_reason_codes_and_original_values_in_lake_and_warehouse(loaded):
    data_dir, result = loaded
    assert result.success
    (parquet,) = (data_dir / "lake" / "quarantine" / DATASET).glob("**/*.parquet")
    for rows in (pd.read_parquet(parquet), _sql(data_dir, f"SELECT * FROM quarantine_{DATASET}")):
        rows = rows.set_index(rows["_kho_row"].astype(int))
        assert sorted(rows.index) == sorted(EXPECTED)
        for row, (code, column, original) in EXPECTED.items():
            assert rows.at[row, "_kho_reasons"] == code
            assert rows.at[row, column] == original  # as the department wrote it, not the typed value
        assert rows["_kho_load_id"].nunique() == 1
    curated = _sql(data_dir, f"SELECT ma_ho_so FROM {DATASET}")
    assert sorted(curated["ma_ho_so"]) == ["HS01", "HS07", "HS08", "HS09", "HS10"]


def test_check_passes_with_a_warning_and_results_are_kept_per_load(loaded):
    data_dir, result = loaded
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    assert "⚠️ `expect_column_values_to_match_regex`" in check.metadata["failed_expectations"].value

    checks = _sql(data_dir, "SELECT * FROM kho_check_results")
    contract = load_contract(data_dir / "contracts" / f"{DATASET}.yaml")
    # One set of results per load, under the load id the quarantine rows carry.
    load_ids = set(_sql(data_dir, f"SELECT DISTINCT _kho_load_id FROM quarantine_{DATASET}")["_kho_load_id"])
    assert set(checks["load_id"]) == load_ids and len(load_ids) == 1 and set(checks["dataset"]) == {DATASET}
    assert len(checks) == len(contract.suite())
    by = {(r.expectation, r.column_name if isinstance(r.column_name, str) else None): r
          for r in checks.itertuples()}
    warn = by[("expect_column_values_to_match_regex", "ma_thu_tuc")]
    assert (warn.severity, bool(warn.success), warn.unexpected_count) == ("warn", False, 1)
    pair = by[("expect_column_pair_values_a_to_be_greater_than_b", "ngay_hen,ngay_nhan")]
    assert (bool(pair.success), pair.unexpected_count) == (False, 1)
    rows = by[("expect_table_row_count_to_be_between", None)]
    assert bool(rows.success) and rows.observed_value == "9"  # GX saw the rows that survived cleaning


def test_asset_check_links_an_existing_data_docs_page(loaded):
    data_dir, result = loaded
    (check,) = result.get_asset_check_evaluations()
    url = check.metadata["data_docs"].value
    assert url.startswith("file://")
    page = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    assert page.is_file() and page.suffix == ".html"
    assert page.resolve().is_relative_to((data_dir / "data_docs").resolve())
    html = page.read_text(encoding="utf-8")
    assert DATASET in html and "mã số thuế" in html
