"""Phone numbers -> E.164 ("+84903123456"), region VN.

Old 11-digit mobile numbers (0162..., 0120...) were renumbered to 10 digits in
2018 and `phonenumbers` no longer accepts them, so we convert the prefix first.
A number with an explicit foreign country code ("+1 650...") is kept if valid.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import phonenumbers

from quality.text import is_missing, map_unique

INVALID = "invalid_phone"

# 2018 renumbering, old 3-digit prefix after the trunk 0 -> new 2-digit prefix
# (Thông tư 22/2017/TT-BTTTT and the MIC conversion schedule).
OLD_MOBILE_PREFIXES = {
    **{f"16{d}": f"3{d}" for d in "23456789"},  # Viettel 0162-0169 -> 032-039
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",  # MobiFone
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",  # VinaPhone
    "186": "56", "188": "58",  # Vietnamobile
    "199": "59",  # Gmobile
}  # fmt: skip

_SEPARATORS = re.compile(r"[\s.\-()/]")


def _national_number(text: str) -> str | None:
    """The VN national significant number (no trunk 0), or None if not a VN number."""
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    elif not (text.startswith("84") and len(text) in (11, 12)):  # 84 + 9/10-digit NSN
        return text[1:] if text.startswith("0") else text  # no 0: Excel dropped it
    if not text.startswith("84"):
        return None
    text = text[2:]
    return text[1:] if text.startswith("0") else text  # "+84 0903..." is a common slip


def normalize_phone(s: Any) -> str | None:
    """E.164 text, or None when missing or not a valid number."""
    if is_missing(s) or isinstance(s, (bool, float)):  # a float has lost its leading zero
        return None
    text = _SEPARATORS.sub("", str(s))
    if not re.fullmatch(r"\+?[0-9]{6,15}", text):
        return None
    nsn = _national_number(text)
    if nsn is None:  # explicit foreign country code: let phonenumbers judge it
        candidate = "+" + text.lstrip("+").removeprefix("00")
    else:
        if len(nsn) == 10 and nsn[:3] in OLD_MOBILE_PREFIXES:
            nsn = OLD_MOBILE_PREFIXES[nsn[:3]] + nsn[3:]
        candidate = "+84" + nsn
    try:
        number = phonenumbers.parse(candidate, "VN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _one(value: Any) -> tuple[str | None, str | None]:
    phone = normalize_phone(value)
    blank = isinstance(value, str) and not value.strip()
    return phone, None if phone or blank else INVALID


def normalize(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(E.164 numbers, reason codes); missing input is not an error here."""
    phones, reasons = map_unique(values, _one, width=2)
    return (
        pd.Series(phones, index=values.index, name=values.name, dtype="str"),
        pd.Series(reasons, index=values.index, name=values.name, dtype="str"),
    )
