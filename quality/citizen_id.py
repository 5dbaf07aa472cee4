"""Citizen IDs: 12-digit CCCD (căn cước công dân) and legacy 9-digit CMND.

CCCD layout: 3 digits birth-registration province, 1 digit century+sex,
2 digits birth year, 6 random digits; there is no check digit, so structure
and the row's birth date are all we can check.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import bulk
from quality.text import is_missing, map_unique

INVALID = "invalid_citizen_id"
BIRTH_MISMATCH = "citizen_id_birth_mismatch"

# Province codes of the 63 pre-2025 provinces as used in CCCD numbers
# (Thông tư 07/2016/TT-BCA, Điều 7; kept by Thông tư 59/2021/TT-BCA): the GSO
# province code with a leading 0. Cross-checked against the old_province codes in
# quality/reference/nso-old-to-new.tsv. An ID number is for life, so merged provinces' codes stay valid.
PROVINCE_CODES = frozenset(
    f"0{c}"
    for c in (
        "01 02 04 06 08 10 11 12 14 15 17 19 20 22 24 25 26 27 30 31 33 34 35 36 37 38 40 "
        "42 44 45 46 48 49 51 52 54 56 58 60 62 64 66 67 68 70 72 74 75 77 79 80 82 83 84 "
        "86 87 89 91 92 93 94 95 96"
    ).split()
)

_SEPARATORS = re.compile(r"[\s.\-]")
_CCCD = re.compile(r"[0-9]{12}")
_CMND = re.compile(r"[0-9]{9}")


def _compact(s: Any) -> str | None:
    """Digits with separators removed; "" for missing, None for unusable input."""
    if is_missing(s):
        return ""
    if isinstance(s, (bool, float)):  # a float from Excel has lost its leading zero
        return None
    return _SEPARATORS.sub("", str(s))


def birth_year(cccd: str) -> int:
    """Birth year encoded in a CCCD: digit 4 // 2 = centuries after 1900 (0/1 -> 19xx, 2/3 -> 20xx)."""
    return 1900 + 100 * (int(cccd[3]) // 2) + int(cccd[4:6])


def is_legacy_cmnd(s: Any) -> bool:
    """True for a 9-digit CMND (still accepted, but carries no birth data to check)."""
    text = _compact(s)
    return bool(text) and bool(_CMND.fullmatch(text)) and text != "0" * 9


def is_valid_cccd(s: Any) -> bool:
    """Structure of a 12-digit CCCD: known province code, birth year not in the future."""
    text = _compact(s)
    if not text or not _CCCD.fullmatch(text) or text[:3] not in PROVINCE_CODES:
        return False
    return birth_year(text) <= dt.date.today().year


def _classify(s: Any) -> tuple[str | None, str | None, str | None]:
    text = _compact(s)
    if text == "":
        return None, None, None
    if is_valid_cccd(text):
        return text, "cccd", None
    if is_legacy_cmnd(text):
        return text, "cmnd", None
    return None, None, INVALID


def classify(s: Any, birth_date: dt.date | None = None) -> tuple[str | None, str | None, str | None]:
    """(normalised id, "cccd" | "cmnd", reason code) for one value.

    Missing input is (None, None, None): not-null is a separate rule. A birth
    mismatch keeps the id, since either the id or the birth date may be wrong.
    """
    text, kind, reason = _classify(s)
    if kind == "cccd" and birth_date is not None and not is_missing(birth_date):
        if birth_date.year != birth_year(text):
            return text, kind, BIRTH_MISMATCH
    return text, kind, reason


def _with_year(s: Any) -> tuple[str | None, int | None, str | None]:
    text, kind, reason = _classify(s)
    return text, birth_year(text) if kind == "cccd" else None, reason


def _year(value: Any) -> int:
    if not isinstance(value, dt.date):  # also datetime and pd.Timestamp
        raise TypeError(f"birth_dates must hold dates, got {type(value).__name__}: {value!r}")
    return value.year


# ---------------------------------------------------------------- the column fast path
#
# A value that holds only ASCII digits, spaces, dots and hyphens is settled for the whole column at once: its
# compact form is "" (missing), 12 digits (CCCD: province code set, birth year from digits 4-6), 9 digits (CMND)
# or anything else (invalid), exactly as _classify decides. Other values (tabs, NBSP, letters, non-str) go
# through _with_year once per distinct value.

_FAST_TEXT = r"^[0-9 .\-]*$"
_PROVINCES = np.array(sorted(int(code) for code in PROVINCE_CODES), dtype=np.int64)  # all 3 digits: int is 1:1
_PROVINCE = np.zeros(1001, dtype=bool)  # _PROVINCES as a lookup table (np.isin sorts); 1000+ (not one) -> False
_PROVINCE[_PROVINCES] = True
_INVALID = pa.scalar(INVALID, pa.large_string())
_TYPES = [pa.large_string(), pa.int64(), pa.large_string()]


def cccd_years(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_valid_cccd, birth_year) of 12-digit CCCD numbers given as int64 (leading zeros implied)."""
    province = numbers // 10**9
    year = 1900 + 100 * (bulk.digit(numbers, 12, 3) // 2) + numbers // 10**6 % 100
    return _PROVINCE.take(province, mode="clip") & (year <= dt.date.today().year), year


def _decide(arr: pa.Array) -> tuple[list[pa.Array], np.ndarray]:
    """bulk.Decide for _with_year: (id, birth year, reason)."""
    digits = bulk.digit_rows(arr)  # nearly all rows: they match _FAST_TEXT and hold no separator; RE2 for the rest
    fast = digits | bulk.matches_where(arr, _FAST_TEXT, bulk.valid(arr) & ~digits)
    text = bulk.replace_rows(arr, bulk.matches_where(arr, r"[ .\-]", fast & ~digits),
                             lambda a: pc.replace_substring_regex(a, r"[ .\-]", ""))
    length = bulk.lengths(text)
    twelve, nine = fast & (length == 12), fast & (length == 9)
    ok = np.zeros(len(arr), dtype=bool)
    years = np.zeros(len(arr), dtype=np.int64)
    if twelve.any():
        ok[twelve], years[twelve] = cccd_years(bulk.digits_int(text, twelve))
    if nine.any():
        ok[nine] = bulk.digits_int(text, nine) != 0  # "000000000" is no CMND
    cccd = ok & twelve
    invalid = fast & (length > 0) & ~ok
    fields = [bulk.where(ok, text), bulk.where(cccd, pa.array(years)), bulk.where(invalid, _INVALID)]
    return fields, ~fast & np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)


def _birth_years(birth_dates: pd.Series) -> np.ndarray:
    """Year of each birth date as float, NaN where missing; TypeError for anything but dates."""
    if pd.api.types.is_datetime64_any_dtype(birth_dates.dtype):  # NaT -> NaN
        return birth_dates.dt.year.to_numpy(dtype=float, na_value=np.nan)
    return map_unique(birth_dates, _year).astype(float)


def normalize(values: pd.Series, birth_dates: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """(normalised ids, reason codes) for a column; birth_dates is matched by position.

    Ids are None where invalid or missing; a birth mismatch keeps the id and only
    sets the reason. Use classify() when the kind (cccd/cmnd) matters. The usual
    shapes are settled for the whole column at once (_decide), every other value
    goes through _with_year once per distinct value: same result either way.
    """
    ids, years, reasons = bulk.run(values, _decide, _with_year, _TYPES)
    if birth_dates is not None:
        if len(birth_dates) != len(values):
            raise ValueError(f"birth_dates has {len(birth_dates)} rows, values has {len(values)}")
        # float arrays: None -> NaN, and NaN never compares equal, so missing on either side never flags
        implied = years.to_numpy(zero_copy_only=False).astype(float)
        born = _birth_years(birth_dates)
        mismatch = (implied != born) & ~np.isnan(implied) & ~np.isnan(born)
        if mismatch.any():
            reasons = pc.if_else(pa.array(mismatch), pa.scalar(BIRTH_MISMATCH, pa.large_string()), reasons)
    return bulk.series(ids, values), bulk.series(reasons, values)
