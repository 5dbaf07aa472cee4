"""Vectorised twins of the per-value validators and normalisers in quality/ (Arrow compute + numpy).

Per-value Python (validators, phonenumbers, NFC) costs 1-35 us a value, and a 1M-row export has ~1M distinct
dossier codes, citizen IDs and phones. Each function here settles the values whose shape makes the answer certain
with Arrow compute (RE2) and numpy, and hands every other value to the quality module's own function, once per
distinct value; the results, dtypes and index are exactly those of that function (tests/test_fastcheck_clean.py
compares them value by value).

- `clean_text`: quality.text.clean_text
- `tax_codes`, `citizen_ids`, `phones`: quality.taxcode / citizen_id / phone `.normalize`
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import citizen_id, phone, taxcode
from quality.fastcheck import cccd_ok, digit_matrix, mst_ok
from quality.text import _clean_one, clean_text as _clean_text_py


_SIMPLE_TEXT = r"^[\x21-\x7e]+(?: [\x21-\x7e]+)*$"  # printable ASCII, single inner spaces: clean_text keeps it


def text_array(values: pd.Series) -> pa.Array | None:
    """The column as one Arrow string array when every value is a str or missing; None otherwise."""
    if not (isinstance(values.dtype, pd.StringDtype) or values.dtype == object):
        return None
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.large_string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    return arr.cast(pa.large_string()) if pa.types.is_string(arr.type) else arr


def digits_of_length(arr: pa.Array) -> np.ndarray:
    """Per value: its length when it is ASCII digits only ([0-9]+), else 0. No regex pass."""
    digits = np.asarray(pc.fill_null(pc.ascii_is_decimal(arr), False).to_numpy(zero_copy_only=False), dtype=bool)
    lengths = pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False)
    return np.where(digits, lengths, 0)


def mask(arr: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False),
                      dtype=bool)


def series(arr: pa.Array, like: pd.Series) -> pd.Series:
    return pd.Series(pa.chunked_array([arr]).to_pandas().array, index=like.index, name=like.name, dtype="str")


def _patch(arr: pa.Array, where: np.ndarray, values) -> pa.Array:
    """arr with the positions in `where` replaced by `values` (in order)."""
    if not where.any():
        return arr
    return pc.replace_with_mask(arr, pa.array(where), pa.array(values, type=arr.type, from_pandas=True))


def clean_text(values: pd.Series) -> pd.Series:
    """quality.text.clean_text: values already clean stay in Arrow, the others go through clean_text."""
    arr = text_array(values)
    if arr is None:
        return _clean_text_py(values)
    rest = ~mask(arr, _SIMPLE_TEXT) & values.notna().to_numpy()
    if rest.any():  # _clean_one once per distinct value, the rows rebuilt in Arrow
        arr = pc.replace_with_mask(arr, pa.array(rest), per_distinct(arr.filter(pa.array(rest)), _clean_one))
    return series(arr, values)


def per_distinct(arr: pa.Array, fn) -> pa.Array:
    """fn over the distinct values of a (null-free) string array, taken back to every row in Arrow."""
    encoded = pc.dictionary_encode(arr)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    done = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], type=arr.type)
    return done.take(encoded.indices)


def _slow_parts(values: pd.Series, rest: np.ndarray, normalize) -> tuple[list, list]:
    out, reasons = normalize(values[rest])
    return out.tolist(), reasons.tolist()


def _combine(arr: pa.Array, ok: np.ndarray, bad: np.ndarray, rest: np.ndarray, values: pd.Series, normalize,
             code: str, out: pa.Array | None = None) -> tuple[pd.Series, pd.Series]:
    """(normalised values, reason codes): `out` (default: the text) where ok, null + `code` where bad, the quality
    module's `normalize` on the `rest`."""
    result = pc.if_else(pa.array(ok), out if out is not None else arr, pa.scalar(None, pa.large_string()))
    reasons = pa.array(np.where(bad, code, None), type=pa.large_string())
    if rest.any():
        slow, why = _slow_parts(values, rest, normalize)
        result, reasons = _patch(result, rest, slow), _patch(reasons, rest, why)
    return series(result, values), series(reasons, values)


def _digits_ok(arr: pa.Array, where: np.ndarray, width: int, rule) -> np.ndarray:
    ok = np.zeros(len(arr), dtype=bool)
    pick = np.flatnonzero(where)
    if len(pick):
        ok[pick] = rule(digit_matrix(arr.take(pa.array(pick)), width))
    return ok


def tax_codes(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """quality.taxcode.normalize: 10-digit codes and 12-digit personal codes on digit matrices."""
    arr = text_array(values)
    if arr is None:
        return taxcode.normalize(values)
    width = digits_of_length(arr)
    ten, twelve = width == 10, width == 12
    ok = _digits_ok(arr, ten, 10, mst_ok) | _digits_ok(arr, twelve, 12, cccd_ok)
    rest = ~(ten | twelve) & values.notna().to_numpy()
    return _combine(arr, ok, (ten | twelve) & ~ok, rest, values, taxcode.normalize, taxcode.INVALID)


def citizen_ids(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """quality.citizen_id.normalize (no birth dates): 12-digit CCCD and 9-digit CMND in Arrow and numpy."""
    arr = text_array(values)
    if arr is None:
        return citizen_id.normalize(values)
    width = digits_of_length(arr)
    twelve, nine = width == 12, width == 9
    ok = _digits_ok(arr, twelve, 12, cccd_ok) | _digits_ok(arr, nine, 9, lambda d: d.any(axis=1))
    rest = ~(twelve | nine) & values.notna().to_numpy()
    return _combine(arr, ok, (twelve | nine) & ~ok, rest, values, citizen_id.normalize, citizen_id.INVALID)


def _vn_phone_rule():
    """phonenumbers' own VN metadata as RE2 tests: a national number is valid when the general pattern and one
    number type's pattern match it at a length they allow (PhoneNumberUtil.is_valid_number for region VN)."""
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region("VN")
    kinds = [meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number, meta.pager,
             meta.uan, meta.voicemail, meta.fixed_line, meta.mobile]
    tests = [(tuple(d.possible_length or ()), f"^(?:{d.national_number_pattern})$") for d in kinds
             if d is not None and d.national_number_pattern]
    general = (tuple(meta.general_desc.possible_length or ()), f"^(?:{meta.general_desc.national_number_pattern})$")
    probe = pa.array(["0"], type=pa.large_string())
    for _, pattern in [general, *tests]:
        pc.match_substring_regex(probe, pattern)  # raises if RE2 cannot take it: then no fast path
    return general, tests


try:
    _PHONE_RULE = _vn_phone_rule()
except Exception:  # pragma: no cover - a phonenumbers release RE2 cannot read: every value takes the slow path
    _PHONE_RULE = None


def _phone_valid(nsn: pa.Array) -> np.ndarray:
    lengths = pc.utf8_length(nsn).to_numpy(zero_copy_only=False)

    def fits(rule) -> np.ndarray:
        allowed, pattern = rule
        ok = mask(nsn, pattern)
        return ok & np.isin(lengths, allowed) if allowed else ok

    general, tests = _PHONE_RULE
    any_type = np.zeros(len(nsn), dtype=bool)
    for rule in tests:
        any_type |= fits(rule)
    return fits(general) & any_type


def phones(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """quality.phone.normalize: domestic numbers written with a trunk 0 or +84 (and separators) in Arrow, validity
    by phonenumbers' VN patterns; everything else (foreign, 0084, 84..., odd characters) through phone.normalize."""
    arr = text_array(values)
    if arr is None or _PHONE_RULE is None:
        return phone.normalize(values)
    compact = pc.replace_substring_regex(arr, r"[ .()/-]", "")
    # 0903..., 0903 123 456, (028) ..., and the E.164 form +84903... (clean output pseudonymised again)
    fast = mask(arr, r"^[0-9 .()/+-]+$") & mask(compact, r"^(?:0|\+84)[1-9][0-9]{8,9}$")
    nsn = pc.replace_substring_regex(compact, r"^(?:0|\+84)", "")
    old = fast & (pc.fill_null(pc.utf8_length(nsn), 0).to_numpy(zero_copy_only=False) == 10)
    if old.any():  # 2018 renumbering: 0162... -> 032...
        prefix = pc.utf8_slice_codeunits(nsn, 0, 3)
        keys = list(phone.OLD_MOBILE_PREFIXES)
        hit = pc.index_in(prefix, value_set=pa.array(keys, type=pa.large_string()))
        renamed = pc.binary_join_element_wise(
            pc.take(pa.array(list(phone.OLD_MOBILE_PREFIXES.values()), type=pa.large_string()), hit),
            pc.utf8_slice_codeunits(nsn, 3), pa.scalar("", pa.large_string()))
        nsn = pc.if_else(pa.array(old & pc.is_valid(hit).to_numpy(zero_copy_only=False)), renamed, nsn)
    ok = fast & _phone_valid(nsn)
    e164 = pc.binary_join_element_wise(pa.scalar("+84", pa.large_string()), nsn, pa.scalar("", pa.large_string()))
    return _combine(arr, ok, fast & ~ok, ~fast & values.notna().to_numpy(), values, phone.normalize,
                    phone.INVALID, out=e164)
