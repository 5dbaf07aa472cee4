"""Edges of the quality vocabulary without running GX: current ward codes, what an expectation outcome
quarantines or blocks, and reason codes in words (quality.reasons)."""

from __future__ import annotations

import pytest

from quality import admin_units, reasons
from quality.gx import ExpectationOutcome
from quality.reasons import ColumnInfo, describe, describe_batch, parse

# ---------------------------------------------------------------- current ward codes


def test_current_codes_are_the_nso_directory():
    codes = admin_units.current_codes()
    assert isinstance(codes, frozenset) and len(codes) == 3321
    assert codes == frozenset(admin_units.units_current()["ma_phuong_xa"])
    assert all(len(c) == 5 and c.isdigit() for c in codes)
    hcmc = admin_units.current_codes("79")
    assert len(hcmc) == 168 and hcmc < codes
    assert "26740" in hcmc  # Phường Sài Gòn
    assert admin_units.current_codes(79) == hcmc  # a code typed as a number
    assert admin_units.current_codes("99") == frozenset()


def test_an_old_code_that_went_away_is_not_current():
    old_only = set(admin_units.crosswalk()["ma_cu"]) - admin_units.current_codes()
    assert old_only  # most pre-2025 wards were merged away
    assert admin_units.resolve_code(sorted(old_only)[0], "2025").reason == admin_units.WARD_UNKNOWN


# ---------------------------------------------------------------- what an outcome does to rows and the batch


def outcome(expectation="expect_column_values_to_not_be_null", severity="error", success=False, rows=(1, 2),
            row_level=True, **kwargs) -> ExpectationOutcome:
    kwargs = kwargs or {"column": "a"}
    return ExpectationOutcome(expectation=expectation, column=kwargs.get("column"), kwargs=kwargs, severity=severity,
                              success=success, unexpected_count=len(rows), unexpected_rows=list(rows),
                              row_level=row_level, observed_value=None)


@pytest.mark.parametrize(("kw", "quarantines", "blocks"), [
    ({}, True, False),  # error map expectation: its rows go to quarantine, the batch is not blocked
    ({"severity": "warn"}, False, False),  # warn: recorded only
    ({"column": "a", "mostly": 0.9}, False, True),  # a tolerated ratio judges the batch
    ({"column": "a", "mostly": 0.9, "success": True}, False, False),
    ({"column": "a", "mostly": 1}, True, False),
    ({"row_level": False, "rows": ()}, False, True),  # the expectation raised: no row list, block
    ({"rows": ()}, True, True),  # failed without rows to quarantine: never a silent pass
    ({"expectation": "expect_table_row_count_to_be_between", "row_level": False, "rows": (), "min_value": 5},
     False, True),
])
def test_quarantines_or_blocks(kw, quarantines, blocks):
    r = outcome(**kw)
    assert (r.quarantines, r.blocks) == (quarantines, blocks)


def test_reason_codes_name_every_column():
    assert outcome().reason_code == "expect_column_values_to_not_be_null:a"
    pair = outcome("expect_column_pair_values_a_to_be_greater_than_b", column_A="han", column_B="nhan")
    assert pair.columns == ("han", "nhan") and pair.reason_code.endswith(":han,nhan")
    multi = outcome("expect_compound_columns_to_be_unique", column_list=["x", "y", "z"])
    assert multi.reason_code == "expect_compound_columns_to_be_unique:x,y,z"
    assert outcome("expect_table_row_count_to_be_between", min_value=1).reason_code == \
        "expect_table_row_count_to_be_between"


# ---------------------------------------------------------------- reason codes in words

INFO = {
    "ngay_nhan": ColumnInfo("Ngày tiếp nhận", "date"), "ngay_hen": ColumnInfo("Ngày hẹn trả", "date"),
    "kenh": ColumnInfo("Kênh tiếp nhận", allowed=("Trực tiếp", "Trực tuyến")), "so": ColumnInfo("Số lượng", "integer"),
    "tong": ColumnInfo("Tổng", "integer"),
}


def test_parse_reads_every_form_the_pipeline_writes():
    assert parse("invalid_date:ngay_nhan;duplicate_row;wrong_column_count(expected 18);"
                 "expect_column_pair_values_a_to_be_greater_than_b:ngay_hen,ngay_nhan") == [
        ("invalid_date", None, ("ngay_nhan",)), ("duplicate_row", None, ()),
        ("wrong_column_count", "expected 18", ()),
        ("expect_column_pair_values_a_to_be_greater_than_b", None, ("ngay_hen", "ngay_nhan")),
    ]
    assert parse(None) == [] and parse("") == []
    assert parse("Something Else") == [("Something Else", None, ())]


def test_the_brief_example_and_every_clean_code_has_words():
    assert str(describe("invalid_date", ("ngay_nhan",), INFO)) == \
        "Ngày không hợp lệ (phải ghi dd/mm/yyyy) / Invalid date (write dd/mm/yyyy)"
    for code in [*reasons._CLEAN, *reasons._RULES, "unknown_value", "invalid_number"]:
        words = describe(code, ("kenh",), INFO, {}, "expected 3")
        assert words.vi and words.en and "{" not in words.vi + words.en and words.vi != words.en, code


def test_words_use_the_contract_and_the_rule():
    assert "Trực tiếp, Trực tuyến" in describe("unknown_value", ("kenh",), INFO).vi
    assert describe("wrong_column_count", arg="expected 18").vi.count("18") == 1
    between = describe("expect_column_values_to_be_between", ("so",), INFO, {"min_value": 0, "max_value": 5_000_000})
    assert (between.vi, between.en) == ("Phải từ 0 đến 5.000.000", "Must be between 0 and 5,000,000")
    pair = describe("expect_column_pair_values_a_to_be_greater_than_b", ("ngay_hen", "ngay_nhan"), INFO,
                    {"or_equal": True})
    assert pair.vi == "«Ngày hẹn trả» phải cùng ngày hoặc sau «Ngày tiếp nhận»"
    numbers = describe("expect_column_pair_values_a_to_be_greater_than_b", ("tong", "so"), INFO, {})
    assert numbers.en == "«Tổng» must be greater than «Số lượng»"
    assert "Tổng" in describe("duplicate_key_conflict", ("tong",), INFO).vi
    odd = describe("expect_column_values_to_be_purple", ("kenh",), INFO, {"column": "kenh", "shade": 3})
    assert "expect_column_values_to_be_purple(shade=3)" in odd.en


def test_batch_words():
    mostly = describe_batch("expect_column_values_to_not_be_null", ("kenh",), {"column": "kenh", "mostly": 0.9},
                            INFO, unexpected_share=0.25)
    assert mostly.vi == ("«Kênh tiếp nhận»: 25% số dòng không đạt «Bắt buộc phải có giá trị», "
                         "chỉ cho phép tối đa 10%")
    rows = describe_batch("expect_table_row_count_to_be_between", (), {"min_value": 10}, INFO, observed=3)
    assert "3" in rows.vi and "10" in rows.en
    broke = describe_batch("expect_column_max_to_be_between", ("so",), {"column": "so"}, INFO,
                           exception="column 'so' does not exist")
    assert "does not exist" in broke.vi and "Số lượng" in broke.en
    assert str(reasons.rejected_share(0.305, 0.25)) == \
        "30,5% số dòng bị loại, vượt ngưỡng cho phép 25% / 30.5% of rows rejected, above the allowed 25%"
