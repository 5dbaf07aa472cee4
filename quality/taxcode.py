"""Tax codes (mã số thuế / mã số doanh nghiệp).

10 digits with a check digit, optional branch suffix "-001".."-999"; since
2025-07-01 an individual's 12-digit CCCD number is their tax code.

The rule agrees with python-stdnum's stdnum.vn.mst on every 10- and 13-digit
string (tests compare them on random codes):
- check = 10 - (weighted sum mod 11); remainder 0 would need check "10", so no
  digit matches and the code is invalid; remainder 1 gives check 9, remainder
  10 gives check 0;
- digits 3-9 (the sequential number) "0000000" are never issued: invalid;
- branch suffix "000" is invalid.
Where we differ, on purpose: stdnum strips "-" anywhere ("0100-109106" passes);
we accept a hyphen only before the branch suffix, so mangled values get
flagged instead of silently rejoined. stdnum knows no 12-digit personal codes.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import bulk
from quality.citizen_id import cccd_years, is_valid_cccd
from quality.text import is_missing, map_unique

INVALID = "invalid_tax_code"

_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_SEPARATORS = re.compile(r"[\s.]")
_CODE = re.compile(r"([0-9]{10})(?:-?([0-9]{3}))?")
_PERSONAL = re.compile(r"[0-9]{12}")


def _check_digit_ok(code: str) -> bool:
    remainder = sum(w * int(d) for w, d in zip(_WEIGHTS, code)) % 11
    return remainder != 0 and int(code[9]) == (10 - remainder) % 10


def _compact(s: Any) -> str | None:
    """Separators removed; "" for missing, None for unusable input."""
    if is_missing(s):
        return ""
    if isinstance(s, (bool, float)):  # a float from Excel has lost its leading zero
        return None
    return _SEPARATORS.sub("", str(s))


def normalize_tax_code(s: Any) -> str | None:
    """Canonical text form ("0100109106", "0100109106-001", 12-digit CCCD), None if invalid."""
    text = _compact(s)
    if not text:
        return None
    if _PERSONAL.fullmatch(text):
        return text if is_valid_cccd(text) else None
    match = _CODE.fullmatch(text)
    if not match:
        return None
    code, branch = match.groups()
    if code[2:9] == "0000000" or branch == "000" or not _check_digit_ok(code):
        return None
    return f"{code}-{branch}" if branch else code


def is_valid_tax_code(s: Any) -> bool:
    return normalize_tax_code(s) is not None


def _one(value: Any) -> tuple[str | None, str | None]:
    code = normalize_tax_code(value)
    if code is None and _compact(value) != "":
        return None, INVALID
    return code, None


# ---------------------------------------------------------------- the column fast path
#
# A value that holds only ASCII digits, spaces, dots and hyphens is settled for the whole column at once: its
# compact form (spaces and dots removed) is "" (missing), 12 digits (CCCD rule, citizen_id.cccd_years),
# 10 digits with an optional [-]3-digit branch (check digit on the digit columns), or anything else (invalid),
# exactly as normalize_tax_code decides. Other values go through _one once per distinct value.

_FAST_TEXT = r"^[0-9 .\-]*$"
_BRANCH_CODE = r"^[0-9]{10}(?:-?[0-9]{3})?$"
_INVALID = pa.scalar(INVALID, pa.large_string())
_DASH = pa.scalar("-", pa.large_string())
_TYPES = [pa.large_string(), pa.large_string()]


def check_digits_ok(codes: np.ndarray) -> np.ndarray:
    """_check_digit_ok and the never-issued sequential number 0000000, for 10-digit codes as int64."""
    d = [bulk.digit(codes, 10, i) for i in range(10)]
    remainder = sum(w * d[i] for i, w in enumerate(_WEIGHTS)) % 11
    sequential = codes // 10 % 10**7  # digits 3-9
    return (remainder != 0) & (d[9] == (10 - remainder) % 10) & (sequential != 0)


def _decide(arr: pa.Array) -> tuple[list[pa.Array], np.ndarray]:
    """bulk.Decide for _one: (code, reason). Rows of plain digits are sorted from their bytes, RE2 reads the rest."""
    digits = bulk.digit_rows(arr)
    fast = digits | bulk.matches_where(arr, _FAST_TEXT, bulk.valid(arr) & ~digits)
    text = bulk.replace_rows(arr, bulk.matches_where(arr, r"[ .]", fast & ~digits),
                             lambda a: pc.replace_substring_regex(a, r"[ .]", ""))
    length, plain = bulk.lengths(text), bulk.digit_rows(text)
    personal = fast & plain & (length == 12)
    company = fast & ~personal & ((plain & ((length == 10) | (length == 13)))
                                  | bulk.matches_where(text, _BRANCH_CODE, fast & ~plain))
    ok = np.zeros(len(arr), dtype=bool)
    if personal.any():
        ok[personal] = cccd_years(bulk.digits_int(text, personal))[0]
    branched = company & (length > 10)
    if company.any():
        ok[company] = check_digits_ok(_ints(pc.utf8_slice_codeunits(text.filter(pa.array(company)), 0, 10)))
    if branched.any():
        ok[branched] &= _ints(pc.utf8_slice_codeunits(text.filter(pa.array(branched)), -3)) != 0  # branch 000
    out = bulk.replace_rows(text, branched, lambda a: pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(a, 0, 10), pc.utf8_slice_codeunits(a, -3), _DASH))
    fields = [bulk.where(ok, out), bulk.where(fast & (length > 0) & ~ok, _INVALID)]
    return fields, ~fast & bulk.valid(arr)


def _ints(digits: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def normalize(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(normalised codes, reason codes); missing input is not an error here (not-null is its own rule).

    The usual shapes are settled for the whole column at once (_decide), every other value goes through
    normalize_tax_code once per distinct value: same result either way."""
    codes, reasons = bulk.run(values, _decide, _one, _TYPES)
    return bulk.series(codes, values), bulk.series(reasons, values)
