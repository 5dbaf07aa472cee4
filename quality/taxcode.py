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

import pandas as pd

from quality.citizen_id import is_valid_cccd
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


def normalize(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(normalised codes, reason codes); missing input is not an error here (not-null is its own rule)."""
    codes, reasons = map_unique(values, _one, width=2)
    return (
        pd.Series(codes, index=values.index, name=values.name, dtype="str"),
        pd.Series(reasons, index=values.index, name=values.name, dtype="str"),
    )
