"""quality.fastcheck against GX itself: the same success flags, unexpected counts, rows and result dicts.

Each frame is validated twice: by the fast path alone (fastcheck.evaluate, which must take every spec listed here)
and by GX 1.x through quality.gx with engine="gx". Frames are small and generated: nulls, NFD text, values on
and around the bounds, duplicates, nullable integer and date columns, empty frames.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import unicodedata

import numpy as np
import pandas as pd
import pytest

from quality import fastcheck
from quality import gx as qgx
from quality.taxcode import is_valid_tax_code

WARDS = ["26734", "26737", "26740"]


def _tax(rng: random.Random) -> str | None:
    kind = rng.random()
    head = f"{rng.randrange(10**9):09d}"
    if kind < 0.3:  # a valid 10-digit code
        for c in "0123456789":
            if is_valid_tax_code(head + c):
                return head + c
    if kind < 0.45:
        return head + str(rng.randrange(10))  # valid or not, by chance
    if kind < 0.55:
        return f"079{rng.randrange(4)}{rng.randrange(100):02d}{rng.randrange(10**6):06d}"  # 12-digit CCCD
    if kind < 0.62:
        return f"{head}{rng.randrange(10)}-{rng.choice(['000', '001', '123'])}"
    if kind < 0.67:
        return f"{head}{rng.randrange(10)}{rng.choice(['000', '002'])}"
    if kind < 0.72:
        return rng.choice(["", " 0100109106", "0100.109.106", "01001O9106", "０１００１０９１０６", "0000000000"])
    return None if kind < 0.8 else "0100109106"


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    names = ["Hoà", "Thuỷ", "Nguyễn An", "Lê", "x", "ab", "Bình Dương", "a\nb"]
    text = [None if rng.random() < 0.15 else
            (unicodedata.normalize("NFD", v) if rng.random() < 0.4 else v)
            for v in (rng.choice(names) for _ in range(n))]
    codes = [None if rng.random() < 0.1 else f"HS{rng.randrange(n // 2 + 1)}" for _ in range(n)]
    fee = pd.array([None if rng.random() < 0.1 else rng.choice([-1, 0, 1, 5, 10, 11, 2_000, 50_000_000])
                    for _ in range(n)], dtype="Int64")
    ratio = [math.nan if rng.random() < 0.1 else rng.choice([0.0, 0.5, 1.0, 1.5, 2.0]) for _ in range(n)]
    day = dt.date(2026, 10, 1)
    received = [None if rng.random() < 0.1 else day + dt.timedelta(days=rng.randrange(5)) for _ in range(n)]
    due = [None if rng.random() < 0.1 else day + dt.timedelta(days=rng.randrange(5)) for _ in range(n)]
    return pd.DataFrame({
        "ma_ho_so": pd.Series(codes, dtype="str"),
        "ten": pd.Series(text, dtype="str"),
        "kenh": pd.Series([rng.choice(["truc_tiep", "truc_tuyen", "fax", None]) for _ in range(n)], dtype="str"),
        "le_phi": fee,
        "ty_le": pd.Series(ratio, dtype="float64"),
        "so": pd.Series([rng.randrange(-3, 4) for _ in range(n)], dtype="int64"),
        "ngay_tiep_nhan": pd.Series(received, dtype=object),
        "ngay_hen_tra": pd.Series(due, dtype=object),
        "ma_so_thue": pd.Series([_tax(rng) for _ in range(n)], dtype=object),
        "ma_phuong_xa": pd.Series([None if rng.random() < 0.1 else rng.choice(WARDS + ["00001", "2674"])
                                   for _ in range(n)], dtype="str"),
        "co_quan": pd.Series([rng.choice(["A", "B", None]) for _ in range(n)], dtype="str"),
        "thu_tuc": pd.Series([rng.choice(["1.001612", "1.00161", "x1.001612", "2.000908\n", None])
                              for _ in range(n)], dtype="str"),
    })


def E(name: str, severity: str = "error", **kwargs) -> dict:
    return {"expectation": name, "kwargs": kwargs, "severity": severity}


SPECS = [
    E("expect_column_values_to_not_be_null", column="ma_ho_so"),
    E("expect_column_values_to_not_be_null", column="ten", mostly=0.8),
    E("expect_column_values_to_not_be_null", column="so"),
    E("expect_column_values_to_be_in_set", column="kenh", value_set=["truc_tiep", "truc_tuyen"]),
    E("expect_column_values_to_be_in_set", column="ten", value_set=["Hoà", "Thuỷ"], mostly=0.2),  # NFD is out
    E("expect_column_values_to_be_in_set", column="le_phi", value_set=[0, 1, 5.0]),
    E("expect_column_values_to_be_between", column="le_phi", min_value=0, max_value=10),
    E("expect_column_values_to_be_between", column="le_phi", min_value=0, max_value=10, strict_min=True,
      strict_max=True),
    E("expect_column_values_to_be_between", column="le_phi", max_value=50_000_000, strict_max=True),
    E("expect_column_values_to_be_between", column="ty_le", min_value=0.5, max_value=1.5, mostly=0.5),
    E("expect_column_values_to_be_between", column="so", min_value=-1, strict_min=True),
    E("expect_column_values_to_be_between", column="so", min_value=-1.5, max_value=2.5),
    E("expect_column_values_to_match_regex", column="thu_tuc", regex=r"^[0-9]\.[0-9]{6}$"),
    E("expect_column_values_to_match_regex", column="thu_tuc", regex=r"\d\.\d+", mostly=0.5),
    E("expect_column_values_to_match_regex", column="ten", regex=r"^(Ho|Lê|x)"),
    E("expect_column_values_to_match_regex", column="ten", regex=r"b$"),
    E("expect_column_values_to_match_regex", column="ma_ho_so", regex=r"^HS[1-5]?\d*$"),
    E("expect_column_values_to_be_unique", column="ma_ho_so"),
    E("expect_column_values_to_be_unique", column="ten"),
    E("expect_column_values_to_be_unique", column="so"),
    E("expect_compound_columns_to_be_unique", column_list=["ma_ho_so", "co_quan"]),
    E("expect_compound_columns_to_be_unique", column_list=["ma_ho_so", "co_quan"], ignore_row_if="any_value_is_missing"),
    E("expect_compound_columns_to_be_unique", column_list=["kenh", "co_quan"], ignore_row_if="never", mostly=0.1),
    E("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_hen_tra", column_B="ngay_tiep_nhan",
      or_equal=True, ignore_row_if="either_value_is_missing"),
    E("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_hen_tra", column_B="ngay_tiep_nhan"),
    E("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_hen_tra", column_B="ngay_tiep_nhan",
      ignore_row_if="neither", mostly=0.3),
    E("expect_column_pair_values_a_to_be_greater_than_b", column_A="ty_le", column_B="so", or_equal=True),
    E("expect_column_value_lengths_to_be_between", column="ten", min_value=2, max_value=4),
    E("expect_column_value_lengths_to_be_between", column="ten", min_value=2, strict_min=True, severity="warn"),
    E("expect_column_value_lengths_to_be_between", column="ma_ho_so", max_value=3),
    E("expect_table_row_count_to_be_between", min_value=1),
    E("expect_table_row_count_to_be_between", min_value=10, max_value=10, strict_max=True),
    E("expect_column_values_to_be_valid_tax_code", column="ma_so_thue"),
    E("expect_column_values_to_be_current_ward_code", column="ma_phuong_xa", value_set=WARDS),
    E("expect_column_values_to_be_current_ward_code", column="ma_phuong_xa"),
]


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12)
    return a == b


def _same_result(fast: dict, ours: dict) -> bool:
    return fast.keys() == ours.keys() and all(_close(fast[k], ours[k]) for k in fast)


@pytest.fixture(autouse=True)
def _wards(monkeypatch):
    monkeypatch.setattr(qgx, "_current_codes_provider", lambda: frozenset({"26734", "26740", "00001"}))


FRAMES = {
    "random": lambda: make_frame(240, 1),
    "few": lambda: make_frame(12, 2),
    "empty": lambda: make_frame(0, 3),
    "all_null": lambda: make_frame(6, 4).assign(
        ma_ho_so=pd.Series([None] * 6, dtype="str"), ngay_hen_tra=pd.Series([None] * 6, dtype=object),
        ten=pd.Series([None] * 6, dtype="str")),
    "labels": lambda: make_frame(30, 5).set_axis(range(100, 130)),
}


@pytest.mark.parametrize("frame_name", list(FRAMES))
def test_fast_path_gives_gx_answers(frame_name):
    df = FRAMES[frame_name]()
    by_gx = qgx.validate(df, "diff", SPECS, engine="gx")
    gx_results = {r["expectation_config"]["meta"]["kho_index"]: r for r in by_gx.result_json["results"]}
    positional = df.reset_index(drop=True)
    for i, spec in enumerate(SPECS):
        fast = fastcheck.evaluate(positional, spec, qgx._current_codes_provider)
        assert fast is not None, f"fast path declined {spec}"
        want = by_gx.results[i]
        assert want.exception is None, (spec, want.exception)
        assert (fast.success, fast.result.get("unexpected_count")) == (want.success, want.unexpected_count), spec
        rows = fast.unexpected_rows.tolist() if fast.unexpected_rows is not None else []
        assert rows == want.unexpected_rows, spec
        assert _same_result(fast.result, gx_results[i]["result"]), (spec, fast.result, gx_results[i]["result"])


def test_validate_auto_equals_gx_outcomes():
    df = make_frame(60, 9)
    auto, gx = qgx.validate(df, "diff", SPECS), qgx.validate(df, "diff", SPECS, engine="gx")
    fields = ("expectation", "success", "unexpected_count", "unexpected_rows", "row_level", "observed_value")
    assert [[getattr(r, f) for f in fields] for r in auto.results] == [[getattr(r, f) for f in fields]
                                                                      for r in gx.results]
    assert auto.success == gx.success
    assert auto.result_json["statistics"] == gx.result_json["statistics"]
    assert [r["expectation_config"]["type"] for r in auto.result_json["results"]] == \
        [s["expectation"] for s in SPECS]


@pytest.mark.parametrize("spec, why", [
    (E("expect_column_values_to_match_regex", column="ten", regex=r"(?i)^hoà"), "case-insensitive flag"),
    (E("expect_column_values_to_match_regex", column="ten", regex=r"(a)\1"), "back reference"),
    (E("expect_column_values_to_match_regex", column="ten", regex=r"\w+"), "Unicode \\w on non-ASCII text"),
    (E("expect_column_values_to_match_regex", column="ten", regex=r"(a$)+b"), "`$` inside a group"),
    (E("expect_column_values_to_be_between", column="ten", min_value="a"), "text bounds"),
    (E("expect_column_values_to_be_in_set", column="kenh", value_set=["fax", 1]), "mixed value set"),
    (E("expect_column_values_to_not_be_null", column="khong_co"), "missing column"),
    (E("expect_column_max_to_be_between", column="so", max_value=1), "not a fast type"),
    (E("expect_column_values_to_not_be_null", column="so", row_condition='so>0', condition_parser="pandas"),
     "row condition"),
])
def test_fast_path_declines_what_it_cannot_reproduce(spec, why):
    assert fastcheck.evaluate(make_frame(20, 6), spec) is None, why


def test_declined_specs_still_get_gx_answers():
    df = make_frame(40, 7)
    specs = [E("expect_column_values_to_match_regex", column="ten", regex=r"(?i)^hoà"),
             E("expect_column_values_to_not_be_null", column="khong_co"),
             E("expect_column_values_to_not_be_null", column="ma_ho_so")]
    auto, gx = qgx.validate(df, "mixed", specs), qgx.validate(df, "mixed", specs, engine="gx")
    assert [(r.success, r.unexpected_rows, r.row_level) for r in auto.results] == \
        [(r.success, r.unexpected_rows, r.row_level) for r in gx.results]
    assert "khong_co" in auto.results[1].exception


@pytest.mark.parametrize("regex", [r"^[0-9]\.[0-9]{6}$", r"a.b", r"^(x|yz)+?\d{2,}$", r"[^a-c\-]", r"\s", r"\A\d\Z",
                                   r"[\d.]{1,3}", r"colou?r", r"a$|b", ""])
def test_translated_regexes_match_like_python(regex):
    translated = fastcheck.re2_pattern(regex)
    assert translated is not None
    values = ["1.001612", "1.001612\n", "a\nb", "axb", "xyz12", "x12", "d", "-", " ", "\t", "1", "12", "123", "1.2",
              "colour", "color", ""]
    got = fastcheck._regex_matches(pd.Series(values, dtype="str"), regex)
    import re

    assert got.tolist() == [re.search(regex, v) is not None for v in values]


def test_tax_code_vector_rule_equals_the_python_rule():
    rng = random.Random(11)
    values = pd.Series([v for v in (_tax(rng) for _ in range(3000)) if v is not None], dtype=object)
    fast = fastcheck.tax_code_validity(values, is_valid_tax_code)
    assert fast.tolist() == [is_valid_tax_code(v) for v in values]
    assert 0 < fast.sum() < len(values)


def test_result_json_without_gx_import_has_gx_shape():
    df = make_frame(30, 8)
    out = qgx.validate(df, "shape", SPECS[:3])
    doc = out.result_json
    assert {"success", "results", "suite_name", "suite_parameters", "statistics", "meta"} <= doc.keys()
    first = doc["results"][0]
    assert first["expectation_config"]["type"] == "expect_column_values_to_not_be_null"
    assert first["exception_info"] == {"raised_exception": False, "exception_traceback": None,
                                       "exception_message": None}
    assert "unexpected_list" not in str(doc)


def test_large_frame_fast_path_is_vectorised():
    # 200k rows through the whole contract-like suite well under GX's time; a guard against per-row Python.
    import time

    n = 200_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "ma_ho_so": pd.Series([f"HS{i}" for i in range(n)], dtype="str"),
        "le_phi": pd.array(rng.integers(0, 100, n), dtype="Int64"),
        "ma_so_thue": pd.Series(["0100109106"] * n, dtype="str"),
        "thu_tuc": pd.Series(["1.001612"] * n, dtype="str"),
    })
    specs = [E("expect_column_values_to_not_be_null", column="ma_ho_so"),
             E("expect_column_values_to_be_unique", column="ma_ho_so"),
             E("expect_column_values_to_be_between", column="le_phi", min_value=0, max_value=50),
             E("expect_column_values_to_be_valid_tax_code", column="ma_so_thue"),
             E("expect_column_values_to_match_regex", column="thu_tuc", regex=r"^[0-9]\.[0-9]{6}$")]
    t = time.perf_counter()
    out = qgx.validate(df, "big", specs)
    assert time.perf_counter() - t < 5
    assert [r.success for r in out.results] == [True, True, False, True, True]


def test_missing_mask_equals_isna():
    import decimal

    d, t = dt.date(2026, 10, 1), dt.datetime(2026, 10, 1, 8)
    columns = [
        [d, d], [d, None, d], [None, None], [], [d, math.nan], [d, pd.NaT], [d, pd.NA], [t, None, d],
        ["a", 1, True, None, d, t], ["a", decimal.Decimal("NaN")], [1.5, math.nan], [np.float64("nan"), "x"],
        [pd.Timestamp("2026-10-01"), None], [np.datetime64("NaT"), d],
    ]
    for values in columns:
        s = pd.Series(values, dtype=object)
        assert fastcheck._missing(s).tolist() == s.isna().tolist(), values
    for s in (pd.Series(["a", None], dtype="str"), pd.array([1, None], dtype="Int64"), pd.Series([1.0, math.nan])):
        s = pd.Series(s)
        assert fastcheck._missing(s).tolist() == s.isna().tolist()


def _dates(n: int, rng: random.Random, missing) -> pd.Series:
    day = dt.date(2026, 10, 1)
    return pd.Series([missing if rng.random() < 0.2 else day + dt.timedelta(days=rng.randrange(4))
                      for _ in range(n)], dtype=object)


PAIR_SPECS = [s for s in SPECS if s["kwargs"].get("column_A") == "ngay_hen_tra"]
PAIR_FRAMES = {
    # each side's values: dates only, dates and None, dates and NaN, all None, all NaN
    "dates": lambda rng: (_dates(50, rng, dt.date(2026, 10, 2)), _dates(50, rng, dt.date(2026, 10, 3))),
    "with_none": lambda rng: (_dates(50, rng, None), _dates(50, rng, None)),
    "with_nan": lambda rng: (_dates(50, rng, math.nan), _dates(50, rng, None)),
    "one_side_none": lambda rng: (pd.Series([None] * 50, dtype=object), _dates(50, rng, None)),
    "one_side_nan": lambda rng: (_dates(50, rng, None), pd.Series([math.nan] * 50, dtype=object)),
}


@pytest.mark.parametrize("name", list(PAIR_FRAMES))
def test_pair_of_date_columns_gives_gx_answers(name):
    due, received = PAIR_FRAMES[name](random.Random(12))
    df = pd.DataFrame({"ngay_hen_tra": due, "ngay_tiep_nhan": received})
    by_gx = qgx.validate(df, "pairs", PAIR_SPECS, engine="gx")
    for i, spec in enumerate(PAIR_SPECS):
        fast = fastcheck.evaluate(df, spec)
        assert fast is not None, spec
        want = by_gx.results[i]
        assert want.exception is None
        assert (fast.success, fast.unexpected_rows.tolist()) == (want.success, want.unexpected_rows), (name, spec)
        assert _same_result(fast.result, by_gx.result_json["results"][i]["result"])


def test_pair_of_dates_and_datetimes_is_left_to_gx():
    d, t = dt.date(2026, 10, 1), dt.datetime(2026, 10, 1, 8)
    df = pd.DataFrame({"ngay_hen_tra": pd.Series([d, t], dtype=object),
                       "ngay_tiep_nhan": pd.Series([d, d], dtype=object)})
    assert fastcheck.evaluate(df, PAIR_SPECS[0]) is None


def test_regex_on_repeating_values_goes_through_the_dictionary():
    import re

    rng = random.Random(13)
    values = ["1.001612", "1.001612\n", "x1.001612", "2.000908", "", "Hoà", None]
    s = pd.Series([rng.choice(values) for _ in range(60_000)], dtype="str")
    regex = r"^[0-9]\.[0-9]{6}$"
    assert fastcheck._few_distinct(fastcheck._text_array(s))
    got = fastcheck._regex_matches(s, regex)
    assert got.tolist() == [isinstance(v, str) and re.search(regex, v) is not None for v in s.tolist()]
    unique = pd.Series([f"HS{i}" for i in range(60_000)], dtype="str")
    assert not fastcheck._few_distinct(fastcheck._text_array(unique))
    assert fastcheck._regex_matches(unique, r"^HS\d+$").all()


def test_object_columns_arrow_cannot_take_are_left_to_gx():
    # a str beside an int, a lone surrogate: not text to Arrow, so GX answers (this used to raise)
    for values in (["a", 5, None], ["a", "\ud800", None]):
        df = pd.DataFrame({"x": pd.Series(values, dtype=object)})
        for spec in (E("expect_column_values_to_be_in_set", column="x", value_set=["a"]),
                     E("expect_column_values_to_be_unique", column="x"),
                     E("expect_column_values_to_match_regex", column="x", regex="a"),
                     E("expect_column_values_to_be_current_ward_code", column="x", value_set=["a"])):
            assert fastcheck.evaluate(df, spec) is None, (values, spec)
    out = qgx.validate(pd.DataFrame({"x": pd.Series(["a", 5, "b"], dtype=object)}), "mixed",
                       [E("expect_column_values_to_be_in_set", column="x", value_set=["a", "b"])])
    assert out.results[0].unexpected_rows == [1]


def test_text_set_membership_in_arrow_equals_isin():
    rng = random.Random(14)
    members = ["Hoà", unicodedata.normalize("NFD", "Hoà"), "", "a\nb"]
    for dtype in ("str", object):
        s = pd.Series([rng.choice(members + ["x", None]) for _ in range(300)], dtype=dtype)
        for value_set in (members[:1], members, []):
            got = fastcheck._str_in(s, value_set)
            assert got.tolist() == [v is not None and v == v and v in value_set for v in s.tolist()]

