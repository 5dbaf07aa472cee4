"""quality.gx.validate on rows staged on disk (assets.batches.Staged), read by column.

The same rows validated as a DataFrame and as a Parquet file of 5-row row groups must give the same Outcome:
every result (success, counts, row positions, observed values, exceptions), the suite's result JSON (but for the
batch markers: GX's load time, and the fingerprint of the frame GX hashed) and the Data Docs page. Then: the
staged run reads only the columns the expectations name, one at a time for the fast path.

Peak memory on a large file (not a test; run it): `.venv/bin/python -m tests.test_gx_staged --rows 2000000`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assets import batches
from quality import fastcheck
from quality import gx as qgx
from tests.test_fastcheck import E, WARDS, make_frame
from tests.test_fastcheck import SPECS as FAST_SPECS

ROOT = Path(__file__).resolve().parents[1]

# Every fast type (tests.test_fastcheck.SPECS), then what GX answers: GX-only types, a fast type the fast path
# declines (flag), missing columns, a name GX resolves case-insensitively, expectations on the table's columns,
# a row condition (reads every column), warn severity, and repeated specs.
GX_SPECS = [
    E("expect_column_max_to_be_between", column="so", max_value=2),
    E("expect_column_mean_to_be_between", column="ty_le", min_value=0.5, severity="warn"),
    E("expect_column_values_to_be_in_type_list", column="ten", type_list=["str"]),
    E("expect_column_pair_values_to_be_equal", column_A="kenh", column_B="co_quan"),
    E("expect_multicolumn_sum_to_equal", column_list=["so", "ty_le"], sum_total=1),
    E("expect_column_values_to_match_regex", column="ten", regex=r"(?i)^hoà"),
    E("expect_column_values_to_not_be_null", column="khong_co"),
    E("expect_compound_columns_to_be_unique", column_list=["ma_ho_so", "khong_co"]),
    E("expect_column_max_to_be_between", column="khong_co", max_value=1),
    E("expect_column_values_to_not_be_null", column="KENH"),
    E("expect_column_to_exist", column="ty_le", column_index=4),
    E("expect_column_to_exist", column="khong_co"),
    E("expect_table_columns_to_match_ordered_list", column_list=["ma_ho_so", "ten"]),
    E("expect_table_column_count_to_equal", value=12),
    E("expect_column_type_to_be", column="ngay_tiep_nhan", type_="object"),
    E("expect_table_row_count_to_equal", value=60),
    E("expect_column_values_to_not_be_null", column="ten", row_condition="so>0", condition_parser="pandas"),
]
SPECS = FAST_SPECS + GX_SPECS + [FAST_SPECS[0], GX_SPECS[0], dict(FAST_SPECS[3], severity="warn")]
# Without the row condition, GX reads only its specs' columns (and a frame without rows for the table's columns).
NARROW_SPECS = [s for s in SPECS if "row_condition" not in s["kwargs"]]


@pytest.fixture(autouse=True)
def _wards(monkeypatch):
    monkeypatch.setattr(qgx, "_current_codes_provider", lambda: frozenset({"26734", "26740", "00001"}))


def frame(n: int, seed: int) -> pd.DataFrame:
    # ma_so_thue as `str` (make_frame: object), so that the frame is exactly what the Parquet file gives back
    return make_frame(n, seed).astype({"ma_so_thue": "str"})


def stage(path: Path, df: pd.DataFrame, rows: int = 5) -> batches.Staged:
    w = batches.Writer(path)
    for start in range(0, len(df), rows):
        w.write(df.iloc[start:start + rows].reset_index(drop=True))
    return w.close(empty=df.iloc[:0])


def normal(doc: dict) -> dict:
    """The suite result without what differs from run to run: GX's load time and the fingerprint of the frame GX
    hashed (left out of a staged run, whose GX frames are only some of the columns)."""
    doc = json.loads(json.dumps(doc, default=str))
    markers = doc.get("meta", {}).get("batch_markers", {})
    for key in ("ge_load_time", "pandas_data_fingerprint"):
        markers.pop(key, None)
    return doc


def assert_same(a: qgx.Outcome, b: qgx.Outcome) -> None:
    assert a.success == b.success
    assert len(a.results) == len(b.results)
    for ra, rb in zip(a.results, b.results):  # json: NaN observed values compare equal
        assert json.dumps(asdict(ra), default=str) == json.dumps(asdict(rb), default=str), ra.expectation
    assert normal(a.result_json) == normal(b.result_json)


FRAMES = {
    "random": lambda: frame(60, 1),
    "odd_length": lambda: frame(23, 2),
    "empty": lambda: frame(0, 3),
    "all_null": lambda: frame(6, 4).assign(
        ma_ho_so=pd.Series([None] * 6, dtype="str"), ngay_hen_tra=pd.Series([None] * 6, dtype=object),
        ten=pd.Series([None] * 6, dtype="str")),
}


def test_the_specs_cover_every_fast_type():
    assert {s["expectation"] for s in SPECS} >= fastcheck.FAST_TYPES
    assert {s.get("severity") for s in SPECS} == {"error", "warn"}
    for spec in SPECS:
        qgx.check_expectation(spec)


@pytest.mark.parametrize("specs", [SPECS, NARROW_SPECS], ids=["every_column", "narrow"])
@pytest.mark.parametrize("engine", ["auto", "gx"])
@pytest.mark.parametrize("frame_name", list(FRAMES))
def test_staged_gives_the_whole_frames_outcome(tmp_path, frame_name, engine, specs):
    df = FRAMES[frame_name]()
    staged = stage(tmp_path / "rows.parquet", df)
    whole = staged.read()  # the whole frame of the file
    if frame_name not in ("empty", "all_null"):  # all-missing columns come back as text
        pd.testing.assert_frame_equal(whole, df)
    assert_same(qgx.validate(whole, "staged", specs, engine=engine),
                qgx.validate(staged, "staged", specs, engine=engine))


def test_fast_suite_without_gx_is_the_same(tmp_path):
    df = frame(60, 5)
    staged = stage(tmp_path / "rows.parquet", df)
    whole, by_column = qgx.validate(df, "fast", FAST_SPECS), qgx.validate(staged, "fast", FAST_SPECS)
    assert_same(whole, by_column)
    assert all(r["meta"] == {"kho_engine": "fastcheck"} for r in by_column.result_json["results"])


def _page(path: str) -> str:
    html = Path(path).read_text(encoding="utf-8")
    html = re.sub(r"kho-[0-9a-f]{12}", "RUN", html)  # run name
    # the batch markers' fingerprint row (the whole frame's run has one; see normal())
    html = re.sub(r"<tr>(?:(?!</tr>).)*?pandas_data_fingerprint(?:(?!</tr>).)*</tr>", "", html, flags=re.S)
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", html)  # element ids
    return re.sub(r"\d{8}T\d{6}\.\d+Z|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?", "TIME", html)


@pytest.mark.parametrize("specs", [FAST_SPECS, SPECS], ids=["all_fast", "with_gx"])
def test_docs_page_is_the_same(tmp_path, specs):
    df = frame(60, 6)
    staged = stage(tmp_path / "rows.parquet", df)
    whole = qgx.validate(df, "docs", specs, docs_dir=str(tmp_path / "a"))
    by_column = qgx.validate(staged, "docs", specs, docs_dir=str(tmp_path / "b"))
    assert_same(whole, by_column)
    assert Path(by_column.docs_path).is_file()
    page = _page(by_column.docs_path)
    # the counts on the page come from the merged results: the fast ones were computed on narrow frames
    unique = by_column.results[[s["expectation"] for s in specs].index("expect_column_values_to_be_unique")]
    assert unique.unexpected_count and f"{unique.unexpected_count} unexpected values" in page
    assert _page(whole.docs_path).replace("/a/", "/X/") == page.replace("/b/", "/X/")


class Spy:
    """A batch that records which columns are read."""

    def __init__(self, staged: batches.Staged):
        self.staged, self.reads = staged, []

    @property
    def num_rows(self) -> int:
        return self.staged.num_rows

    @property
    def columns(self) -> list[str]:
        return self.staged.columns

    def read(self, columns=None) -> pd.DataFrame:
        self.reads.append(list(columns) if columns is not None else None)
        return self.staged.read(columns)


def test_reads_only_the_named_columns(tmp_path):
    df = frame(40, 7)
    spy = Spy(stage(tmp_path / "rows.parquet", df))
    suite = [E("expect_column_values_to_not_be_null", column="ngay_tiep_nhan"),
             E("expect_column_values_to_be_in_set", column="kenh", value_set=["truc_tiep"]),
             E("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_hen_tra",
               column_B="ngay_tiep_nhan"),
             E("expect_table_row_count_to_be_between", min_value=1)]
    out = qgx.validate(spy, "narrow", suite)
    assert_same(qgx.validate(df, "narrow", suite), out)
    assert all(len(r) == 1 for r in spy.reads)  # the fast path reads a column at a time
    assert sorted(c for r in spy.reads for c in r) == ["kenh", "ngay_hen_tra", "ngay_tiep_nhan"]  # each once

    spy.reads.clear()  # GX fallbacks: one read of their columns, those GX could resolve the names to
    gx_suite = [E("expect_column_max_to_be_between", column="so", max_value=1),
                E("expect_column_values_to_not_be_null", column="KENH"), suite[0]]
    out = qgx.validate(spy, "narrow", gx_suite)
    assert_same(qgx.validate(df, "narrow", gx_suite), out)
    assert spy.reads == [["ngay_tiep_nhan"], ["kenh", "so"]]
    assert out.results[1].unexpected_rows == df.index[df["kenh"].isna()].tolist()  # "KENH" is kenh to GX

    spy.reads.clear()  # a row condition may name any column: everything is read
    qgx.validate(spy, "narrow", [GX_SPECS[-1]])
    assert spy.reads == [list(df.columns)]


def test_what_each_expectation_reads():
    reads = qgx._reads
    assert reads(E("expect_column_values_to_be_between", column="a", min_value=0, mostly=0.5)) == ("a",)
    assert reads(E("expect_column_pair_values_a_to_be_greater_than_b", column_A="b", column_B="a")) == ("b", "a")
    assert reads(E("expect_compound_columns_to_be_unique", column_list=["a", "b", "a"])) == ("a", "b")
    assert reads(E("expect_table_row_count_to_be_between", min_value=1)) == ()
    assert reads(E("expect_table_columns_to_match_set", column_set=["a"])) == qgx._SCHEMA
    assert reads(E("expect_column_values_to_not_be_null", column="a", row_condition="b>0",
                   condition_parser="pandas")) == qgx._EVERYTHING
    assert reads(E("expect_table_row_count_to_equal", value=1, row_condition="b>0",
                   condition_parser="pandas")) == qgx._EVERYTHING
    # every kwarg a contract may write is either a column, a condition or a parameter naming no column
    for name, spec in qgx.SUPPORTED_EXPECTATIONS.items():
        for key in spec.required + spec.optional:
            assert key in qgx._PARAMETERS or key in (*qgx._COLUMN_KWARGS, "column_list", "row_condition",
                                                     "condition_parser"), (name, key)


def test_empty_file_and_zero_columns(tmp_path):
    df = frame(0, 8)
    staged = stage(tmp_path / "rows.parquet", df)
    assert staged.num_rows == 0
    suite = [E("expect_table_row_count_to_be_between", min_value=1), E("expect_table_row_count_to_equal", value=0)]
    for engine in ("auto", "gx"):
        assert_same(qgx.validate(df, "empty", suite, engine=engine), qgx.validate(staged, "empty", suite,
                                                                                  engine=engine))


# ---------------------------------------------------------------- peak memory (a measurement, run by hand)

_WORKER = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from assets import batches
from quality import gx as qgx
from tests.test_gx_staged import big_suite
mode, path, which = sys.argv[1], sys.argv[2], sys.argv[3]
suite = big_suite() if which == "all" else big_suite()[:-1]
staged = batches.Staged(path)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
rows = staged if mode == "columns" else staged.read()
out = qgx.validate(rows, "big", suite)
print(json.dumps({{"mode": mode, "suite": which, "seconds": time.perf_counter() - t,
                  "base_mb": base / 1024, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "fails": [r.unexpected_count for r in out.results]}}))
"""


def big_suite() -> list[dict]:
    return [E("expect_column_values_to_not_be_null", column="ma_ho_so"),
            E("expect_column_values_to_be_unique", column="ma_ho_so"),
            E("expect_column_values_to_not_be_null", column="ngay_tiep_nhan"),
            E("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_hen_tra", column_B="ngay_tiep_nhan",
              or_equal=True, ignore_row_if="either_value_is_missing"),
            E("expect_column_values_to_be_in_set", column="kenh", value_set=["truc_tiep", "truc_tuyen"]),
            E("expect_column_values_to_be_between", column="le_phi", min_value=0, max_value=50_000_000),
            E("expect_column_values_to_match_regex", column="ma_thu_tuc", regex=r"^[0-9]\.[0-9]{6}$",
              severity="warn"),
            E("expect_column_values_to_be_current_ward_code", column="ma_phuong_xa", value_set=WARDS),
            E("expect_table_row_count_to_be_between", min_value=1),
            E("expect_column_max_to_be_between", column="so_ngay", max_value=60)]  # GX answers this one


def write_big(path: Path, n: int, slice_rows: int = 200_000) -> batches.Staged:
    """n rows x 15 columns, written a slice at a time."""
    rng = np.random.default_rng(0)
    day0 = np.datetime64("2026-10-01")
    w = batches.Writer(path)
    for start in range(0, n, slice_rows):
        k = min(slice_rows, n - start)
        received = day0 + rng.integers(0, 28, k).astype("timedelta64[D]")
        due = received + rng.integers(-1, 30, k).astype("timedelta64[D]")
        w.write(pd.DataFrame({
            "ma_ho_so": pd.Series([f"HS-{i:09d}" for i in range(start, start + k)], dtype="str"),
            "ma_thu_tuc": pd.Series(rng.choice(["1.001612", "1.000908", "2.002154", "x"], k), dtype="str"),
            "ten_thu_tuc": pd.Series(rng.choice(["Cấp giấy phép xây dựng", "Đăng ký khai sinh"], k), dtype="str"),
            "ma_co_quan": pd.Series(rng.choice(["SXD", "STP", "UBND-Q1"], k), dtype="str"),
            "ma_phuong_xa": pd.Series(rng.choice(WARDS + ["00001"], k), dtype="str"),
            "kenh": pd.Series(rng.choice(["truc_tiep", "truc_tuyen", "buu_chinh"], k), dtype="str"),
            "ngay_tiep_nhan": pd.Series(received.astype(object), dtype=object),
            "ngay_hen_tra": pd.Series(due.astype(object), dtype=object),
            "ngay_hoan_thanh": pd.Series(np.where(rng.random(k) < 0.3, None, due.astype(object)), dtype=object),
            "trang_thai": pd.Series(rng.choice(["da_tra", "dang_xu_ly"], k), dtype="str"),
            "ho_ten": pd.Series([f"Nguyễn Văn {i % 9973}" for i in range(start, start + k)], dtype="str"),
            "so_dien_thoai": pd.Series([f"09{i % 10**8:08d}" for i in range(start, start + k)], dtype="str"),
            "ma_so_thue": pd.Series(np.where(rng.random(k) < 0.7, None, "0100109106"), dtype="str"),
            "le_phi": pd.array(rng.integers(-10, 100_000, k), dtype="Int64"),
            "so_ngay": rng.integers(0, 90, k).astype("float64"),
        }))
    return w.close()


def measure(n: int) -> list[dict]:
    """Peak RSS of a fresh process validating an n-row file, by column and whole; with and without a GX
    fallback (GX's import is in both peaks)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.parquet"
        write_big(path, n)
        out = []
        for which in ("fast", "all"):
            for mode in ("columns", "whole"):
                done = subprocess.run([sys.executable, "-c", _WORKER.format(root=str(ROOT)), mode, str(path), which],
                                      cwd=ROOT, check=True, capture_output=True, text=True)
                out.append(json.loads(done.stdout.strip().splitlines()[-1]))
        return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    results = measure(args.rows)
    for r in results:
        print(json.dumps(r))
    for columns, whole in (results[:2], results[2:]):
        assert columns["fails"] == whole["fails"]
        print(f"{args.rows} rows x 15 columns, suite {columns['suite']}: peak {columns['peak_mb']:.0f} MB "
              f"({columns['seconds']:.1f} s) reading by column vs {whole['peak_mb']:.0f} MB ({whole['seconds']:.1f} s) "
              f"reading the whole file (interpreter + imports before: {columns['base_mb']:.0f} MB)")
