"""Phone numbers -> E.164 ("+84903123456"), region VN.

Old 11-digit mobile numbers (0162..., 0120...) were renumbered to 10 digits in
2018 and `phonenumbers` no longer accepts them, so we convert the prefix first.
A number with an explicit foreign country code ("+1 650...") is kept if valid.
"""

from __future__ import annotations

import functools
import re
from typing import Any

try:  # what re.compile parses with (Python 3.11+); without it every national number goes through RE2
    from re import _constants as _sre, _parser as _sre_parse
except ImportError:  # pragma: no cover
    _sre = _sre_parse = None

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
    offsets, data = bulk.byte_view(nsn)
    return _vn_valid_digits(lambda j, rows: data[offsets[rows] + j], bulk.lengths(nsn), candidate, lambda: nsn)


def _vn_valid_digits(digit, length: np.ndarray, candidate: np.ndarray, strings) -> np.ndarray:
    """_vn_valid from each nsn's length and digit(j, rows), the j-th byte of those rows (all longer than j);
    `strings()` gives the nsn array, for lengths whose verdict needs RE2 on the whole number."""
    general, types = _VN_RULE
    valid = np.zeros(len(length), dtype=bool)
    for n in np.flatnonzero(np.bincount(length[candidate].clip(0))).tolist():
        if general[0] and n not in general[0]:
            continue
        allowed = [pattern for lengths, pattern in types if not lengths or n in lengths]
        if not allowed:
            continue
        rows = np.flatnonzero(candidate & (length == n))
        table = _prefix_table(n, tuple(allowed))
        if table is not None:  # the verdict on n digits hangs on the first k: look it up
            k, verdict = table
            key = np.zeros(len(rows), dtype=np.int32)
            for j in range(k):
                key = key * 10 + digit(j, rows) - 48
            valid[rows] = verdict[key]
            continue
        subset = strings().take(pa.array(rows))
        ok = bulk.matches(subset, f"^(?:{general[1]})$")
        ok &= bulk.matches(subset, "^(?:" + "|".join(f"(?:{p})" for p in allowed) + ")$")
        valid[rows] = ok
    return valid


# ---- the VN patterns as tables: `[2-9]\d{7}` on 8 digits only reads the first one
#
# Where every way through a pattern reads, past the first k digits, only classes that take any digit (\d), two
# strings of n digits with the same first k get the same verdict, so RE2's verdict on prefix + zeros, for each
# of the 10^k prefixes, is its verdict on every string. _significant finds k from the parsed pattern, over-counting
# (never under) where it is unsure, and gives up (RE2 then reads every row) on constructs it does not follow.

_TABLE_DIGITS = 5  # at most 10^5 prefixes per length


def _any_digit(op, av) -> bool:
    """Does this one-character item take every ASCII digit? (False when unsure.)"""
    if op is not _sre.IN:
        return False
    got: set[int] = set()
    for item, value in av:
        if item is _sre.NEGATE:
            return False
        if item is _sre.LITERAL:
            got.add(value)
        elif item is _sre.RANGE:
            got.update(range(max(value[0], 48), min(value[1], 57) + 1))
        elif item is _sre.CATEGORY and value is _sre.CATEGORY_DIGIT:
            got.update(range(48, 58))
    return got >= set(range(48, 58))


def _significant(pattern: str, n: int) -> int | None:
    """How many leading digits can decide whether `pattern` matches n ASCII digits (an upper bound);
    None for a pattern with constructs this does not follow."""
    if _sre_parse is None:  # pragma: no cover
        return None
    try:
        tree = _sre_parse.parse(pattern)
    except (re.error, RecursionError):
        return None
    if tree.state.flags & ~_sre.SRE_FLAG_UNICODE:
        return None
    far = 0

    def walk(items, at: set[int]) -> set[int] | None:  # positions the match can be at -> after `items`
        nonlocal far
        for op, av in items:
            if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN, _sre.ANY):
                inside = [p for p in at if p < n]
                if inside and not _any_digit(op, av):
                    far = max(far, max(inside) + 1)
                at = {p + 1 for p in inside}
            elif op is _sre.SUBPATTERN:
                if av[1] or av[2]:  # inline flags
                    return None
                at = walk(av[3], at)
            elif op is _sre.BRANCH:
                ends: set[int] = set()
                for branch in av[1]:
                    got = walk(branch, at)
                    if got is None:
                        return None
                    ends |= got
                at = ends
            elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
                low, high, sub = av
                ends, seen, count = (set(at) if low == 0 else set()), [frozenset(at)], 0
                while at and count < high:
                    at = walk(sub, at)
                    if at is None:
                        return None
                    count += 1
                    if frozenset(at) in seen:  # a cycle: every position it reaches, counted or not
                        ends |= set().union(*seen)
                        break
                    seen.append(frozenset(at))
                    if count >= low:
                        ends |= at
                at = ends
            else:  # anchors, lookarounds, backreferences, atomic groups, possessive repeats...
                return None
            if at is None:
                return None
        return at

    return None if walk(tree, {0}) is None else far


@functools.cache
def _prefix_table(n: int, allowed: tuple[str, ...]) -> tuple[int, np.ndarray] | None:
    """(k, verdict of each k-digit prefix) for nsn of n digits, or None when k is unknown or too large."""
    general = _VN_RULE[0][1]
    ks = [_significant(pattern, n) for pattern in (general, *allowed)]
    if None in ks or max(ks) > min(n, _TABLE_DIGITS):
        return None
    k = max(ks)

    def verdicts(tail: str) -> np.ndarray:
        probes = pa.array([f"{p:0{k}d}{tail}" for p in range(10**k)] if k else [tail], type=pa.large_string())
        return (bulk.matches(probes, f"^(?:{general})$")
                & bulk.matches(probes, "^(?:" + "|".join(f"(?:{p})" for p in allowed) + ")$"))

    verdict = verdicts("0" * (n - k))
    # RE2 reads the pattern as Python's parser did (phonenumbers writes plain syntax): other tails agree
    if not all((verdicts(tail) == verdict).all() for tail in ("9" * (n - k), ("4831607295" * n)[: n - k])):
        return None
    return k, verdict


_INVALID = pa.scalar(INVALID, pa.large_string())


# old 3-digit prefix as a number -> the new 2-digit prefix's bytes (0 where the prefix is not an old one)
_OLD_TO_NEW = np.zeros((1000, 2), dtype=np.uint8)
for _old, _new in OLD_MOBILE_PREFIXES.items():
    assert len(_old) == 3 and len(_new) == 2 and (_old + _new).isdigit() and _old[0] != "0"
    _OLD_TO_NEW[int(_old)] = np.frombuffer(_new.encode(), dtype=np.uint8)


def _old_prefixes(data: np.ndarray, start: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose 10-digit national number, at data[start:], has a pre-2018 mobile prefix; their new prefix's two
    bytes, (2, n)) for the rows in mask `rows` (ASCII digits)."""
    at = np.flatnonzero(rows)
    s = start[at]
    code = (data[s].astype(np.int64) - 48) * 100 + (data[s + 1] - 48) * 10 + (data[s + 2] - 48)
    hit = _OLD_TO_NEW[code, 0] > 0
    old, new = np.zeros(len(rows), dtype=bool), np.zeros((2, len(rows)), dtype=np.uint8)
    old[at[hit]] = True
    new[:, at[hit]] = _OLD_TO_NEW[code[hit]].T
    return old, new


# what a byte that is not a digit is to _FAST_TEXT and `_SEPARATORS` (as far as the text _FAST_TEXT admits goes)
_OTHER, _SPACE, _SEPARATOR, _PLUS = 0, 1, 2, 3
_BYTE_KIND = np.full(256, _OTHER, dtype=np.uint8)
_BYTE_KIND[ord(" ")], _BYTE_KIND[list(b".()/-")], _BYTE_KIND[ord("+")] = _SPACE, _SEPARATOR, _PLUS


def _decide(arr: pa.Array) -> tuple[list[pa.Array], np.ndarray]:
    """bulk.Decide for _one: (E.164, reason) for the usual shapes, the rest left open.

    Rows of plain digits (nearly all) are sorted from their bytes; RE2 runs only on the others."""
    # _FAST_TEXT, the separators and the shape, from the bytes that are not digits (few, in a phone column)
    offsets, data = bulk.byte_view(arr)
    present = bulk.valid(arr)
    at = np.flatnonzero((data - np.uint8(48)) > 9)  # uint8 wraps: every byte outside '0'..'9'
    row, kind = bulk.rows_of(offsets, at), _BYTE_KIND[data[at]]
    n = len(arr)
    length = np.where(present, offsets[1:] - offsets[:-1], 0)
    spaces, separators = (np.bincount(row[kind == k], minlength=n) for k in (_SPACE, _SEPARATOR))
    separators += spaces
    foreign, plus = (np.bincount(row[kind == k], minlength=n) > 0 for k in (_OTHER, _PLUS))
    fast = present & ~foreign & (length > spaces)  # only _FAST_TEXT's characters, and not blank
    # separators out of every row; only fast rows' text is read below (and ASCII bytes never split a character)
    text = bulk.remove_bytes(arr, at[(kind == _SPACE) | (kind == _SEPARATOR)], separators)
    plain, size = present & ~foreign & ~plus, length - separators
    shape = fast & ((plain & (size >= 6) & (size <= 15)) | bulk.matches_where(text, _SHAPE, fast & ~plain))
    first = bulk.head(text, 4)
    international = bulk.starts(first, "+") | bulk.starts(first, "00")
    # +84, 0084, 84 + a 9/10-digit nsn
    vn = shape & ((plain & (bulk.starts(first, "0084") | (bulk.starts(first, "84") & ((size == 11) | (size == 12)))))
                  | bulk.matches_where(text, r"^(?:(?:\+|00)84|84[0-9]{9,10}$)", shape & ~plain))
    # the national number, without copying it: for +84 forms the rows themselves are rewritten; otherwise it is
    # the row past `skip` (a trunk 0), and a pre-2018 prefix (0162 -> 32) is a 4-byte cut and a 2-byte head
    base = bulk.replace_rows(text, vn, lambda a: pc.replace_substring_regex(a, _VN_PREFIX, "", max_replacements=1))
    trunk = shape & ~vn & ~international  # 0903..., or 903... when Excel dropped the 0
    offsets, data = bulk.byte_view(base)
    skip = (trunk & bulk.starts(bulk.head(base, 1), "0")).astype(np.int64)
    start, size = offsets[:-1] + skip, offsets[1:] - offsets[:-1] - skip
    lead = data.take(start, mode="clip") if len(data) else np.zeros(n, dtype=np.uint8)
    # all digits now; foreign (+1 650...) and "+84 00..." (phonenumbers strips a second 0) are phonenumbers' to judge
    domestic = (vn | trunk) & (size > 0) & (lead != ord("0"))
    old, new = _old_prefixes(data, start, domestic & (size == 10))
    cut = np.where(domestic, skip + 3 * old, 0)  # bytes of `base` before the rest of the national number
    length = size - old  # the national number's

    def digit(j: int, rows: np.ndarray) -> np.ndarray:  # the national number's j-th byte
        got = data[start[rows] + j + (old[rows] if j >= 2 else 0)]
        return np.where(old[rows], new[j, rows], got) if j < 2 else got

    ok = domestic & _vn_valid_digits(digit, length, domestic, lambda: bulk.splice(base, cut, new, 2 * old))
    decided = (fast & ~shape) | domestic
    return [_e164(base, ok, skip, old, cut, new), bulk.where(decided & ~ok, _INVALID)], ~decided & present


def _e164(base: pa.Array, ok: np.ndarray, skip: np.ndarray, old: np.ndarray, cut: np.ndarray,
          new: np.ndarray) -> pa.Array:
    """"+84" + the national number for the rows in `ok` (null elsewhere): one Arrow kernel for the usual form
    (0903... or 903...), bulk.splice for the rest."""
    usual = ok & ~old & (skip == np.bincount(skip[ok & ~old], minlength=2).argmax())
    out = pc.binary_replace_slice(base, 0, int(skip[usual][0]) if usual.any() else 0, "+84")
    rest = ok & ~usual
    if rest.any():
        head = np.zeros((5, int(rest.sum())), dtype=np.uint8)
        head[:3] = np.frombuffer(b"+84", dtype=np.uint8)[:, None]
        head[3:] = new[:, rest]
        mask = pa.array(rest)
        out = pc.replace_with_mask(out, mask, bulk.splice(base.filter(mask), cut[rest], head, 3 + 2 * old[rest]))
    return bulk.where(ok, out)


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
