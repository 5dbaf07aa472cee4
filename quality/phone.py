"""Phone numbers -> E.164 ("+84903123456"), region VN.

Old 11-digit mobile numbers (0162..., 0120...) were renumbered to 10 digits in
2018 and `phonenumbers` no longer accepts them, so we convert the prefix first.
A number with an explicit foreign country code ("+1 650...") is kept if valid.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from quality import bulk
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


# ---------------------------------------------------------------- the column fast path
#
# normalize() decides the usual shapes for the whole column at once and gives every other value to _one:
# - the text holds only digits, spaces and . - ( ) / +, and not only spaces;
# - compacted, it fails `\+?[0-9]{6,15}` (invalid), or it is a VN number: 0..., +84..., 0084..., 84 + 9/10
#   digits, or no prefix at all (Excel dropped the 0), whose national number does not start with 0.
# The national number is converted (2018 prefixes) exactly as in normalize_phone, and judged by phonenumbers'
# own VN metadata, read at import: is_valid_number(+84 nsn) holds iff the general description and one number
# type's description (pattern and possible lengths) match nsn; parse() changes nothing in "+84" + nsn when nsn
# starts with 1-9 (VN's national prefix for parsing is "0"). Foreign country codes, "+84 00...", tabs, NBSP and
# anything else stay with _one.

_FAST_TEXT = r"^ *[0-9.()/+\-][0-9 .()/+\-]*$"  # only these characters, and not blank
_SHAPE = r"^\+?[0-9]{6,15}$"  # as in normalize_phone
_VN_PREFIX = r"^(?:\+|00)?840?"  # +84 / 0084 / 84, then one trunk 0 (only used where they apply)


def _vn_rule() -> tuple[tuple[tuple[int, ...], str], list[tuple[tuple[int, ...], str]]] | None:
    """(general description, [number type descriptions]) of VN as (possible lengths, RE2 pattern), in the
    order phonenumbers' _number_type_helper tries them; None when this phonenumbers release is not one the
    fast path can mirror (then every value goes through normalize_phone)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("VN")
    if (
        meta is None
        or tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(84, ())) != ("VN",)
        or meta.national_prefix_for_parsing not in (None, "", "0")
        or meta.national_prefix_transform_rule
    ):
        return None
    kinds = [meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number, meta.pager,
             meta.uan, meta.voicemail, meta.fixed_line]
    if not meta.same_mobile_and_fixed_line_pattern:
        kinds.append(meta.mobile)

    def rule(desc) -> tuple[tuple[int, ...], str] | None:
        if desc is None or not desc.national_number_pattern:  # _match_national_number: never matches
            return None
        return tuple(desc.possible_length or ()), desc.national_number_pattern

    general = rule(meta.general_desc)
    types = [r for r in map(rule, kinds) if r is not None]
    if general is None or not types:
        return None
    probe = pa.array(["0"], type=pa.large_string())
    try:
        for _, pattern in [general, *types]:
            pc.match_substring_regex(probe, f"^(?:{pattern})$")  # RE2 must accept it
    except (pa.ArrowException, ValueError):
        return None
    return general, types


_VN_RULE = _vn_rule()


def _vn_valid(nsn: pa.Array, candidate: np.ndarray) -> np.ndarray:
    """is_valid_number(+84 nsn) for the candidate rows (all-digit nsn, first digit 1-9)."""
    general, types = _VN_RULE
    length = bulk.lengths(nsn)
    valid = np.zeros(len(nsn), dtype=bool)
    for n in np.unique(length[candidate]).tolist():
        if general[0] and n not in general[0]:
            continue
        allowed = [pattern for lengths, pattern in types if not lengths or n in lengths]
        if not allowed:
            continue
        rows = np.flatnonzero(candidate & (length == n))
        subset = nsn.take(pa.array(rows))
        ok = bulk.matches(subset, f"^(?:{general[1]})$")
        ok &= bulk.matches(subset, "^(?:" + "|".join(f"(?:{p})" for p in allowed) + ")$")
        valid[rows] = ok
    return valid


_OLD = pa.array(list(OLD_MOBILE_PREFIXES), type=pa.large_string())
_NEW = pa.array(list(OLD_MOBILE_PREFIXES.values()), type=pa.large_string())
_EMPTY = pa.scalar("", pa.large_string())
_PLUS84 = pa.scalar("+84", pa.large_string())
_INVALID = pa.scalar(INVALID, pa.large_string())


def _convert_old_prefixes(nsn: pa.Array, rows: np.ndarray) -> pa.Array:
    """nsn with a 10-digit number's old 3-digit mobile prefix replaced (0162... -> 032...), in mask `rows`."""
    old = pc.index_in(pc.utf8_slice_codeunits(nsn, 0, 3), value_set=_OLD)
    hit = rows & (bulk.lengths(nsn) == 10) & np.asarray(pc.is_valid(old).to_numpy(zero_copy_only=False), dtype=bool)
    if not hit.any():
        return nsn
    renamed = pc.binary_join_element_wise(pc.take(_NEW, old), pc.utf8_slice_codeunits(nsn, 3), _EMPTY)
    return pc.if_else(pa.array(hit), renamed, nsn)


def _starts(arr: pa.Array, prefix: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.starts_with(arr, prefix), False).to_numpy(zero_copy_only=False), dtype=bool)


def _decide(arr: pa.Array) -> tuple[list[pa.Array], np.ndarray]:
    """bulk.Decide for _one: (E.164, reason) for the usual shapes, the rest left open."""
    fast = bulk.matches(arr, _FAST_TEXT)
    text = bulk.replace_rows(arr, fast & bulk.matches(arr, r"[ .()/\-]"),
                             lambda a: pc.replace_substring_regex(a, r"[ .()/\-]", ""))
    shape = fast & bulk.matches(text, _SHAPE)
    international = _starts(text, "+") | _starts(text, "00")
    vn = shape & bulk.matches(text, r"^(?:(?:\+|00)84|84[0-9]{9,10}$)")  # +84, 0084, 84 + a 9/10-digit nsn
    nsn = bulk.replace_rows(text, vn, lambda a: pc.replace_substring_regex(a, _VN_PREFIX, "", max_replacements=1))
    trunk = shape & ~vn & ~international  # 0903..., or 903... when Excel dropped the 0
    nsn = bulk.replace_rows(nsn, trunk & _starts(nsn, "0"), lambda a: pc.utf8_slice_codeunits(a, 1))
    # all digits now; foreign (+1 650...) and "+84 00..." (phonenumbers strips a second 0) are phonenumbers' to judge
    domestic = (vn | trunk) & (bulk.lengths(nsn) > 0) & ~_starts(nsn, "0")
    nsn = _convert_old_prefixes(nsn, domestic)
    ok = domestic & _vn_valid(nsn, domestic)
    decided = (fast & ~shape) | domestic
    e164 = pc.binary_join_element_wise(_PLUS84, nsn, _EMPTY)
    return [bulk.where(ok, e164), bulk.where(decided & ~ok, _INVALID)], ~decided & ~np.asarray(
        pc.is_null(arr).to_numpy(zero_copy_only=False), dtype=bool)


_TYPES = [pa.large_string(), pa.large_string()]


def normalize(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(E.164 numbers, reason codes); missing input is not an error here.

    The usual shapes are settled for the whole column at once (_decide); every other value goes through
    normalize_phone, once per distinct value. Same result as normalize_phone on every row."""
    if _VN_RULE is None:
        phones, reasons = map_unique(values, _one, width=2)
        return (
            pd.Series(phones, index=values.index, name=values.name, dtype="str"),
            pd.Series(reasons, index=values.index, name=values.name, dtype="str"),
        )
    phones, reasons = bulk.run(values, _decide, _one, _TYPES)
    return bulk.series(phones, values), bulk.series(reasons, values)
