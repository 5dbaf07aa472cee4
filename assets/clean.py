"""Clean: text table -> typed, normalised columns; every value that cannot be cleaned gets a reason code.

Reason codes look like `invalid_date:ngay_tiep_nhan`: what is wrong, and in which column. The original text
stays beside the typed value (ORIGINAL_PREFIX) so a quarantined row shows what the department sent.
Dates are day-first, always: a parser never guesses month-first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets.contract import Column, Contract
from assets.extract.base import ROW_COLUMN
from assets.extract.csv import ORIGINAL, REASONS
from quality import citizen_id, phone, taxcode
from quality import vector
from quality.fastcheck import digit_matrix
from quality.text import key_text

ORIGINAL_PREFIX = "_src_"  # _src_<column>: the text as the department wrote it

_DATE = r"^(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4})(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
_ISO = r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?:[ T](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
# Vietnamese numbers (files people type): '.' groups thousands, ',' marks decimals: 1.234.567,89.
# Machine numbers (JSON, SQL sources): '.' is the decimal point. Plain digits are both.
_NUMBER = {"vi": r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$", "plain": r"^[+-]?\d+(\.\d+)?$"}
_TRUE = {"co", "có", "x", "1", "true", "dung", "đúng", "yes"}
_FALSE = {"khong", "không", "0", "false", "sai", "no"}
LOCAL_TZ = "Asia/Ho_Chi_Minh"
_SAMPLE = 4096  # values sampled to decide whether a column repeats enough to clean once per distinct value


class Reasons:
    """Collects (mask, code) pairs and joins them into one ';'-separated string per row."""

    def __init__(self, n: int, initial: pd.Series | None = None):
        self.codes = np.full(n, "", dtype=object)
        if initial is not None:
            self.codes[:] = initial.fillna("").to_numpy(dtype=object)

    def add(self, mask, code: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            cur = self.codes[mask]
            self.codes[mask] = np.where(cur == "", code, cur + ";" + code)

    def series(self, index) -> pd.Series:
        return pd.Series(np.where(self.codes == "", None, self.codes), index=index, dtype=object)


def _parse_dates(text: pd.Series, with_time: bool) -> tuple[pd.Series, np.ndarray]:
    """Day-first dates (and optional times); impossible dates such as 31/02 are invalid, never rolled over."""
    arr = pa.array(text, type=pa.string())
    day_first, iso = pc.extract_regex(arr, _DATE), pc.extract_regex(arr, _ISO)

    def field(name: str) -> np.ndarray:
        values = pc.coalesce(pc.struct_field(day_first, name), pc.struct_field(iso, name))
        values = pc.if_else(pc.equal(values, ""), "0", values)
        return pc.fill_null(pc.cast(values, pa.int32()), 0).to_numpy()

    parts = pd.DataFrame({k: field(g) for k, g in
                          [("year", "y"), ("month", "m"), ("day", "d"), ("hour", "H"), ("minute", "M"),
                           ("second", "S")]})
    ok = ((parts.month >= 1) & (parts.month <= 12) & (parts.day >= 1) & (parts.day <= 31) & (parts.hour < 24)
          & (parts.minute < 60) & (parts.second < 60) & (parts.year >= 1900) & (parts.year <= 2100)).to_numpy()
    safe = parts.copy()
    safe.loc[~ok] = [2000, 1, 1, 0, 0, 0]
    # Feb 30 and friends: build the first of the month, add days, and require the month to be unchanged.
    first = pd.to_datetime(safe[["year", "month"]].assign(day=1))
    stamps = (first + pd.to_timedelta(safe.day - 1, unit="D") + pd.to_timedelta(safe.hour, unit="h")
              + pd.to_timedelta(safe.minute, unit="min") + pd.to_timedelta(safe.second, unit="s"))
    ok = ok & (stamps.dt.month == first.dt.month).to_numpy()
    stamps = stamps.where(ok)
    if with_time:
        out = stamps.dt.tz_localize(LOCAL_TZ).dt.tz_convert("UTC")  # stored in UTC
    else:
        out = pd.Series(np.where(ok, stamps.dt.date, None), index=text.index, dtype=object)
    return out.set_axis(text.index), ~ok


def fast_dates(text: pd.Series, with_time: bool) -> tuple[pd.Series, np.ndarray]:
    """_parse_dates: plain dd/mm/yyyy dates on a digit matrix (numpy calendar arithmetic), anything else
    (times, d/m, dots, ISO, junk) through _parse_dates."""
    arr = None if with_time else vector.text_array(text)
    if arr is None:
        return _parse_dates(text, with_time)
    n = len(text)
    out = np.full(n, None, dtype=object)
    bad = np.ones(n, dtype=bool)
    fixed = np.zeros(n, dtype=bool)  # dd/mm/yyyy exactly: ten bytes, '/' at 2 and 5, digits elsewhere
    ten = np.flatnonzero(pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False) == 10)
    if len(ten):
        d = digit_matrix(arr.take(pa.array(ten)), 10)
        sep = ord("/") - ord("0")
        shape = (d[:, 2] == sep) & (d[:, 5] == sep) & ((d[:, [0, 1, 3, 4, 6, 7, 8, 9]] >= 0)
                                                       & (d[:, [0, 1, 3, 4, 6, 7, 8, 9]] <= 9)).all(axis=1)
        fixed[ten[shape]] = True
    pick = np.flatnonzero(fixed)
    if len(pick):
        d = d[shape]
        day, month = d[:, 0] * 10 + d[:, 1], d[:, 3] * 10 + d[:, 4]
        year = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
        ok = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (year >= 1900) & (year <= 2100)
        first = ((np.where(ok, year, 2000) - 1970) * 12 + np.where(ok, month, 1) - 1).astype("datetime64[M]")
        days = first.astype("datetime64[D]") + (np.where(ok, day, 1) - 1).astype("timedelta64[D]")
        ok &= days.astype("datetime64[M]") == first  # 31/02 is invalid, never rolled over
        if ok.any():  # one datetime.date per day in range (1900-2100: at most 73k), not one per row
            first_day = days[ok].min()
            table = np.arange(first_day, days[ok].max() + 1).astype(object)
            out[pick[ok]] = table[(days[ok] - first_day).astype(np.int64)]
        bad[pick] = ~ok
    rest = np.flatnonzero(~fixed & text.notna().to_numpy())
    if len(rest):
        slow, slow_bad = _parse_dates(text.iloc[rest], False)
        out[rest] = slow.to_numpy(dtype=object)
        bad[rest] = slow_bad
    return pd.Series(out, index=text.index, dtype=object), bad


def _parse_numbers(text: pd.Series, integer: bool, style: str) -> tuple[pd.Series, np.ndarray]:
    arr = pa.array(text.str.replace(" ", "", regex=False), type=pa.string())
    ok = pc.fill_null(pc.match_substring_regex(arr, _NUMBER[style]), False)
    plain = pc.replace_substring(pc.replace_substring(arr, ".", ""), ",", ".") if style == "vi" else arr
    values = pc.cast(pc.if_else(ok, plain, None), pa.float64())
    series = pd.Series(values.to_numpy(zero_copy_only=False), index=text.index)
    bad = ~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    if integer:  # past 2**53 a float64 no longer holds every integer: such a value is refused, never rounded
        whole = series.isna() | ((series == np.floor(series)) & (series.abs() < 2 ** 53))
        bad |= ~whole.to_numpy()
        series = series.where(whole).astype("Int64")
    return series, bad


def _mapped(text: pd.Series, values: dict[str, str]) -> tuple[pd.Series, np.ndarray]:
    lookup = {key_text(k): v for k, v in values.items()} | {key_text(v): v for v in values.values()}
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    mapped = pa.array([lookup.get(key_text(u)) for u in uniques] + [None], type=pa.large_string())  # -1: missing
    out = vector.series(mapped.take(pa.array(np.where(codes < 0, len(uniques), codes))), text)
    return out, (text.notna() & out.isna()).to_numpy()


def _distinct(text: pd.Series) -> tuple[pd.Series, np.ndarray] | None:
    """(the column's distinct values, null included, in order of first appearance; each row's position among them)
    for a long Arrow text column whose sample repeats, or a long column with no value at all; else None."""
    if len(text) < 4 * _SAMPLE:
        return None
    if text.dtype == object:  # extract gives an absent column as None: one missing value stands for all
        return (text.iloc[:1].reset_index(drop=True), np.zeros(len(text), dtype=np.intp)) if text.isna().all() else None
    if not (isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow"):
        return None
    arr = vector.text_array(text)
    sample = arr.take(pa.array(np.linspace(0, len(text) - 1, _SAMPLE).astype(np.int64))).drop_null()
    if not len(sample) or pc.count_distinct(sample).as_py() > len(sample) // 2:
        return None
    encoded = pc.dictionary_encode(arr, null_encoding="encode")
    return (pd.Series(pd.array(encoded.dictionary, dtype=text.dtype), name=text.name),
            encoded.indices.to_numpy(zero_copy_only=False))


def clean_column(name: str, col: Column, text: pd.Series, number_style: str = "vi") -> tuple[pd.Series, list]:
    """One column: (typed values, [(mask, reason code), ...]).

    Every rule below is per value, so a column that repeats a few values (dates, fees, names, coded values) is
    cleaned once per distinct value and taken back to its rows: same values, masks and reason order (the
    distinct values are in order of first appearance)."""
    found = _distinct(text)
    if found is None:
        return _clean_column(name, col, text, number_style)
    distinct, codes = found
    values, failures = _clean_column(name, col, distinct, number_style)
    if (isinstance(values.dtype, pd.StringDtype) and values.dtype == text.dtype
            and vector.text_array(values).equals(vector.text_array(distinct))):  # cleaning changed nothing
        out = pd.Series(text.array, index=text.index, name=values.name)
    else:
        out = pd.Series(values.array.take(codes), index=text.index, name=values.name)
    return out, [(np.asarray(mask, dtype=bool)[codes], code) for mask, code in failures]


def _clean_column(name: str, col: Column, text: pd.Series, number_style: str) -> tuple[pd.Series, list]:
    text = vector.clean_text(text)
    present = text.notna().to_numpy()
    if col.values:
        out, bad = _mapped(text, col.values)
        return out, [(bad, f"unknown_value:{name}")]
    if col.type == "text":
        return text, []
    if col.type in ("date", "datetime"):
        out, bad = fast_dates(text, col.type == "datetime")
        return out, [(bad & present, f"invalid_date:{name}")]
    if col.type in ("integer", "decimal"):
        out, bad = _parse_numbers(text, col.type == "integer", number_style)
        return out, [(bad & present, f"invalid_number:{name}")]
    if col.type == "boolean":
        keys = text.map(lambda v: key_text(v) if isinstance(v, str) else None)
        out = keys.map(lambda k: True if k in _TRUE else False if k in _FALSE else None).astype("boolean")
        return out, [((out.isna().to_numpy()) & present, f"invalid_boolean:{name}")]
    if col.type == "tax_code":
        out, reasons = taxcode.normalize(text)
    elif col.type == "citizen_id":
        out, reasons = citizen_id.normalize(text)
    elif col.type == "phone":
        out, reasons = phone.normalize(text)
    elif col.type == "ward_code":
        from quality import admin_units  # loads reference tables: only when a contract has ward codes

        resolved = admin_units.resolve_series(text, col.vintage)
        out, reasons = resolved["ma_phuong_xa"], resolved["ly_do"]
    else:  # pragma: no cover - the contract model allows no other type
        raise ValueError(col.type)
    # A validator returns one reason code per row (e.g. invalid_tax_code): tag it with the column.
    return out, [((reasons == code).to_numpy(), f"{code}:{name}") for code in reasons.dropna().unique()]


def clean(contract: Contract, extracted: pd.DataFrame) -> pd.DataFrame:
    """Typed columns, `_src_` originals, ROW_COLUMN and REASONS (None for a clean row)."""
    n = len(extracted)
    failures, out = [], {}
    for name, col in contract.columns.items():
        values, found = clean_column(name, col, extracted[name], contract.format.number_style)
        failures += found
        out[name] = values.reset_index(drop=True) if isinstance(values, pd.Series) else values
    for name in contract.columns:
        out[ORIGINAL_PREFIX + name] = extracted[name].reset_index(drop=True)
    out[ROW_COLUMN] = extracted[ROW_COLUMN].reset_index(drop=True)
    if ORIGINAL in extracted:
        out[ORIGINAL] = extracted[ORIGINAL].reset_index(drop=True)
    out[REASONS] = _reasons(n, extracted[REASONS] if REASONS in extracted else None, failures)
    return pd.DataFrame(out, copy=False)  # every column is on RangeIndex(n)


def _reasons(n: int, initial: pd.Series | None, failures: list) -> pd.Series:
    """Reasons(n, initial) with every failure added, as .series(): joined only for the rows that have a reason."""
    rows = np.zeros(n, dtype=bool)
    for mask, _ in failures:
        rows |= mask
    if initial is not None:
        given = np.flatnonzero(initial.notna().to_numpy())
        rows[given] |= initial.iloc[given].to_numpy(dtype=object) != ""
    at = np.flatnonzero(rows)
    some = Reasons(len(at), None if initial is None else initial.iloc[at])
    for mask, code in failures:
        some.add(mask[at], code)
    joined = np.full(n, None, dtype=object)
    joined[at] = some.series(None).to_numpy(dtype=object)
    return pd.Series(joined, index=pd.RangeIndex(n), dtype=object)


def flag_duplicates(contract: Contract, cleaned: pd.DataFrame, reasons: Reasons) -> None:
    """Repeated primary keys (over the whole batch: `assets.flow.validate` calls this): identical copies keep the first and reject the rest as `duplicate_row`;
    copies that disagree are all rejected as `duplicate_key_conflict` (which one is right is not ours to guess)."""
    key = contract.primary_key
    if not key:
        return
    has_key = cleaned[key].notna().all(axis=1)
    dup_key = cleaned.duplicated(key, keep=False) & has_key
    if not dup_key.any():
        return
    sub = cleaned[dup_key]
    fingerprint = pd.util.hash_pandas_object(sub[list(contract.columns)].astype(str), index=False)
    variants = fingerprint.groupby([sub[k] for k in key]).transform("nunique")
    conflict = pd.Series(False, index=cleaned.index)
    conflict[sub.index] = variants > 1
    repeat = dup_key & ~conflict & cleaned.duplicated(key, keep="first")
    reasons.add(conflict.to_numpy(), "duplicate_key_conflict")
    reasons.add(repeat.to_numpy(), "duplicate_row")
