"""A fast, vectorised evaluator for the common GX expectations, giving GX's own answers.

GX stays the definition of what each expectation means: every rule below repeats what GX 1.24's pandas engine
computes (the metric GX runs, its null filtering, `ignore_row_if`, `mostly`, strict bounds, result format), and
tests/test_fastcheck.py runs both on generated data and requires the same success flags, unexpected counts and
unexpected rows. What is skipped is GX's machinery, not its logic: no import (~3-10 s), no DataFrame
fingerprint (~1.4 s per 1M rows), no metric graph; regexes run in RE2 (pyarrow) when the pattern provably means
the same there, tax codes are checked on digit matrices instead of once per value in Python.

`evaluate(df, spec, ...)` returns a FastResult, or None when the expectation, its kwargs or the column's data are
outside what this module reproduces exactly; quality.gx then runs GX itself for that expectation.

Row positions: `unexpected_rows` are positions in `df`; `result` is GX's `result` dict (COMPLETE format,
unexpected values excluded) with `unexpected_index_list` holding the same positions, as GX reports them on a
0..n-1 index.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

PARTIAL = 20  # GX's partial_unexpected_count for COMPLETE

FAST_TYPES = frozenset({
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_value_lengths_to_be_between",
    "expect_table_row_count_to_be_between",
    "expect_column_values_to_be_valid_tax_code",
    "expect_column_values_to_be_current_ward_code",
})

# kwargs that change what GX computes in ways this module does not reproduce: such a spec goes to GX.
_UNSUPPORTED_KWARGS = frozenset({"row_condition", "condition_parser"})


@dataclass
class FastResult:
    success: bool
    result: dict  # GX's result dict
    unexpected_rows: np.ndarray | None  # positions (map expectations), None for table expectations
    observed_value: Any = None


class _Skip(Exception):
    """This spec is not for the fast path: let GX evaluate it."""


# ---------------------------------------------------------------- helpers


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


# Exact types pandas never counts as missing (isna() tests NaN floats, NaT, pd.NA, Decimal NaN, None one by one).
_NEVER_MISSING = frozenset({str, int, bool, dt.date, dt.datetime})
_NONE = type(None)


def _missing(s: pd.Series) -> np.ndarray:
    """s.isna() as numpy. An object column whose values are all of types that are never missing (or None) is
    settled from the set of its value types, cheaper than pandas' per-value test."""
    if s.dtype == object and len(s):
        values = s.to_numpy()
        types = set(map(type, values))
        if types <= _NEVER_MISSING:
            return np.zeros(len(s), dtype=bool)
        if types <= _NEVER_MISSING | {_NONE}:
            return np.equal(values, None)  # these types never compare equal to None
    return s.isna().to_numpy()


def _column(df: pd.DataFrame, name: Any) -> pd.Series:
    if not isinstance(name, str) or name not in df.columns or list(df.columns).count(name) != 1:
        raise _Skip  # GX reports a missing column as an exception: its wording comes from GX
    return df[name]


def _is_text(s: pd.Series) -> bool:
    """Every non-null value is a str (pandas `str` dtype, or object holding only str)."""
    if isinstance(s.dtype, pd.StringDtype):
        return True
    if s.dtype != object:
        return False
    values = s[s.notna()]
    if not len(values):
        return True
    kind = _arrow_type(values)  # None: Arrow cannot take them (a str beside other objects, a lone surrogate)
    return kind is not None and pa.types.is_string(kind)


def _arrow_type(values: pd.Series) -> pa.DataType | None:
    try:
        return pa.array(values, from_pandas=True).type
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _text_array(s: pd.Series) -> pa.Array:
    arr = pa.array(s, type=pa.large_string(), from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _str_in(s: pd.Series, value_set: list) -> np.ndarray | None:
    """v in value_set for each value of a text column (nulls: False) when every member is a str, in Arrow
    (pandas' own isin for `str` columns, without its per-member conversion); None when Arrow cannot take the
    column (e.g. lone surrogates in an object column)."""
    try:
        arr = _text_array(s)
        members = pa.array(value_set, type=pa.large_string())
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None
    hit = pc.is_in(arr, value_set=members)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


_DICTIONARY_MIN_ROWS = 50_000
_DICTIONARY_SAMPLE = 4_096


def _few_distinct(arr: pa.Array) -> bool:
    """Whether an evenly spaced sample suggests few distinct values (codes, categories): then a per-value
    function is cheaper on the dictionary than on every row."""
    n = len(arr)
    if n < _DICTIONARY_MIN_ROWS:
        return False
    sample = arr.take(pa.array(np.linspace(0, n - 1, _DICTIONARY_SAMPLE).astype(np.int64)))
    return len(pc.unique(sample)) <= _DICTIONARY_SAMPLE // 16


def _per_value(arr: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """fn(arr) for an elementwise fn, evaluated once per distinct value when the values repeat a lot."""
    if not _few_distinct(arr):
        return fn(arr)
    encoded = pc.dictionary_encode(arr)
    return fn(encoded.dictionary).take(encoded.indices)  # null indices (null values) give null


def _numeric_kind(s: pd.Series) -> str | None:
    """'int' or 'float' for columns whose values compare like Python numbers; None otherwise."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if dtype == object:
        values = s[s.notna()]
        if len(values) and all(_number(v) for v in values.head(1000)) and all(map(_number, values)):
            return "float" if any(isinstance(v, (float, np.floating)) for v in values) else "int"
    return None


def _values(s: pd.Series, kind: str) -> np.ndarray:
    """The column's non-null values as numpy (int64 or float64); nulls filled with 0 (callers mask them)."""
    numbers = pd.to_numeric(s, errors="raise") if s.dtype == object else s  # numeric dtypes are numbers already
    if kind == "int":
        out = numbers.astype("Int64").to_numpy(dtype=np.int64, na_value=0)
    else:
        out = numbers.astype("Float64").to_numpy(dtype=np.float64, na_value=0.0)
    return out


def _map_result(n: int, considered: np.ndarray, bad: np.ndarray, mostly: Any,
                missing_fields: bool = True) -> FastResult:
    """GX's column/pair/multicolumn map result: `considered` rows were judged, `bad` (within them) failed."""
    bad = bad & considered
    rows = np.flatnonzero(bad)
    unexpected = int(len(rows))
    nonnull = int(considered.sum()) if missing_fields else n
    mostly = 1.0 if mostly is None else mostly
    if n == 0 or nonnull == 0:
        success = True  # GX: vacuously true
    else:
        success = (float(nonnull) - float(unexpected)) / float(nonnull) >= mostly
    listed = rows.tolist()
    result: dict[str, Any] = {"element_count": n, "unexpected_count": unexpected}
    total = unexpected / n * 100 if n > 0 else None
    if missing_fields:
        missing = n - nonnull
        nonmissing = (unexpected / nonnull * 100 if nonnull > 0 else None) if n > 0 else None
        result["unexpected_percent"] = nonmissing
        result.update({"missing_count": missing, "missing_percent": missing / n * 100 if n > 0 else None,
                       "unexpected_percent_total": total, "unexpected_percent_nonmissing": nonmissing})
    else:
        result["unexpected_percent"] = total
    result["partial_unexpected_index_list"] = listed[:PARTIAL]
    result["unexpected_index_list"] = listed
    return FastResult(bool(success), result, rows)


def _between(values: np.ndarray, lo: Any, hi: Any, strict_lo: Any, strict_hi: Any) -> np.ndarray:
    ok = np.ones(len(values), dtype=bool)
    if lo is not None:
        ok &= (values > lo) if strict_lo else (values >= lo)
    if hi is not None:
        ok &= (values < hi) if strict_hi else (values <= hi)
    return ok


def _comparable_bounds(kind: str, values: np.ndarray, bounds: list) -> bool:
    """int64 vs float bounds compare exactly in numpy only while |values| < 2**53."""
    if kind == "int" and any(isinstance(b, (float, np.floating)) for b in bounds if b is not None):
        return not len(values) or int(np.abs(values).max(initial=0)) < 2 ** 53
    return True


# ---------------------------------------------------------------- regex: Python re -> RE2, only when equal

try:  # Python 3.11+
    from re import _constants as _sre_c
    from re import _parser as _sre_p
except ImportError:  # pragma: no cover
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

_UNICODE_SENSITIVE = {_sre_c.CATEGORY_DIGIT, _sre_c.CATEGORY_NOT_DIGIT, _sre_c.CATEGORY_WORD,
                      _sre_c.CATEGORY_NOT_WORD, _sre_c.CATEGORY_SPACE, _sre_c.CATEGORY_NOT_SPACE}
_CATEGORY = {_sre_c.CATEGORY_DIGIT: r"\d", _sre_c.CATEGORY_NOT_DIGIT: r"\D", _sre_c.CATEGORY_WORD: r"\w",
             _sre_c.CATEGORY_NOT_WORD: r"\W", _sre_c.CATEGORY_SPACE: r"[\x{9}-\x{d}\x{1c}-\x{20}]",
             _sre_c.CATEGORY_NOT_SPACE: r"[^\x{9}-\x{d}\x{1c}-\x{20}]"}  # str.isspace() on ASCII


class _NotRE2(Exception):
    pass


def _lit(code: int) -> str:
    c = chr(code)
    return c if c.isascii() and c.isalnum() else f"\\x{{{code:x}}}"


def _in_class(items: list) -> tuple[str, bool]:
    """A character class; returns (re2 text, uses unicode-sensitive categories)."""
    parts, negate, sensitive = [], False, False
    for op, av in items:
        if op is _sre_c.NEGATE:
            negate = True
        elif op is _sre_c.LITERAL:
            parts.append(_lit(av))
        elif op is _sre_c.RANGE:
            parts.append(f"{_lit(av[0])}-{_lit(av[1])}")
        elif op is _sre_c.CATEGORY and av in _CATEGORY:
            sensitive |= av in _UNICODE_SENSITIVE
            text = _CATEGORY[av]
            if text.startswith("[^"):
                raise _NotRE2  # a negated class inside a class: keep it simple
            parts.append(text[1:-1] if text.startswith("[") else text)
        else:
            raise _NotRE2
    return "[" + ("^" if negate else "") + "".join(parts) + "]", sensitive


def _emit(seq, top: bool) -> tuple[str, bool]:
    out, sensitive = [], False
    items = list(seq)
    for i, (op, av) in enumerate(items):
        if op is _sre_c.LITERAL:
            out.append(_lit(av))
        elif op is _sre_c.NOT_LITERAL:
            out.append(f"[^{_lit(av)}]")
        elif op is _sre_c.ANY:
            out.append(".")
        elif op is _sre_c.IN:
            text, s = _in_class(av)
            out.append(text)
            sensitive |= s
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT):
            lo, hi, sub = av
            text, s = _emit(sub, False)
            sensitive |= s
            if hi is _sre_c.MAXREPEAT:
                q = "*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}"
            elif lo == 0 and hi == 1:
                q = "?"
            else:
                if hi > 1000:
                    raise _NotRE2  # RE2 caps repeat counts at 1000
                q = f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"
            out.append(f"(?:{text}){q}{'?' if op is _sre_c.MIN_REPEAT else ''}")
        elif op is _sre_c.SUBPATTERN:
            group, add, delete, sub = av
            if add or delete:
                raise _NotRE2
            text, s = _emit(sub, False)
            sensitive |= s
            out.append(f"(?:{text})")
        elif op is _sre_c.BRANCH:
            alts = []
            for alt in av[1]:
                text, s = _emit(alt, top)
                sensitive |= s
                alts.append(text)
            out.append("(?:" + "|".join(alts) + ")")
        elif op is _sre_c.AT:
            if av in (_sre_c.AT_BEGINNING, _sre_c.AT_BEGINNING_STRING):
                out.append(r"\A")
            elif av is _sre_c.AT_END_STRING:
                out.append(r"\z")
            elif av is _sre_c.AT_END and top and i == len(items) - 1:
                out.append(r"(?:\n?\z)")  # Python's `$`: the end, or before a final newline
            else:
                raise _NotRE2  # \b, \B, or `$` inside: left to GX
        elif op is _sre_c.CATEGORY:
            raise _NotRE2
        else:
            raise _NotRE2  # back references, look-arounds, conditionals, atomic groups...
    return "".join(out), sensitive


def re2_pattern(regex: str) -> tuple[str, bool] | None:
    """(RE2 pattern matching exactly where Python's re.search matches, whether it needs ASCII-only text),
    or None when the pattern is outside the translated subset."""
    if not isinstance(regex, str):
        return None
    try:
        parsed = _sre_p.parse(regex, 0)
    except re.error:
        return None
    if parsed.state.flags & ~(re.UNICODE | 0):  # (?i), (?m), (?s), (?x), ... change meaning
        return None
    try:
        return _emit(parsed, True)
    except (_NotRE2, TypeError, ValueError):
        return None


def _regex_matches(s: pd.Series, regex: str) -> np.ndarray | None:
    """re.search(regex, value) for every value of a text column; None if RE2 might answer differently."""
    translated = re2_pattern(regex)
    if translated is None:
        return None
    pattern, sensitive = translated
    arr = _text_array(s)
    if sensitive and not pc.all(pc.fill_null(pc.string_is_ascii(arr), True), min_count=0).as_py():
        return None  # \d \w \s are Unicode-aware in Python, ASCII in RE2
    try:
        hit = _per_value(arr, lambda values: pc.match_substring_regex(values, pattern))
    except pa.ArrowInvalid:
        return None
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


# ---------------------------------------------------------------- tax codes, vectorised

_WEIGHTS = np.array([31, 29, 23, 19, 17, 13, 7, 5, 3], dtype=np.int64)


def digit_matrix(arr: pa.Array, width: int) -> np.ndarray:
    """(n, width) digit matrix of an array whose values are all `width` ASCII digits."""
    arr = pa.array(arr.to_pylist(), type=pa.large_string()) if arr.offset else arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[: len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    return (data[offsets[0]: offsets[0] + len(arr) * width].reshape(len(arr), width).astype(np.int64) - 48)


def cccd_ok(d: np.ndarray) -> np.ndarray:
    from quality.citizen_id import PROVINCE_CODES

    provinces = np.array(sorted(int(p) for p in PROVINCE_CODES))
    prov = d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]
    year = 1900 + 100 * (d[:, 3] // 2) + d[:, 4] * 10 + d[:, 5]
    return np.isin(prov, provinces) & (year <= dt.date.today().year)


def mst_ok(d: np.ndarray) -> np.ndarray:
    rem = (d[:, :9] @ _WEIGHTS) % 11
    return (rem != 0) & (d[:, 9] == (10 - rem) % 10) & (d[:, 2:9].sum(axis=1) != 0)


def tax_code_validity(s: pd.Series, slow: Callable[[Any], bool]) -> np.ndarray:
    """`slow(value)` (quality.taxcode.is_valid_tax_code) for every non-null value, computed on digit matrices
    for the shapes that need no cleaning (10 digits, 12-digit CCCD, 10+3 or 10-3 branch codes); any other value
    goes through `slow` once per distinct value."""
    out = np.zeros(len(s), dtype=bool)
    if not len(s):
        return out
    if not _is_text(s):
        codes, uniques = pd.factorize(s)
        valid = np.fromiter((slow(u) for u in uniques), dtype=bool, count=len(uniques))
        return np.where(codes >= 0, valid[np.maximum(codes, 0)], False)
    arr = _text_array(s)
    lengths = pc.fill_null(pc.utf8_length(arr), -1).to_numpy(zero_copy_only=False)
    digits = np.asarray(pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]+$"), False)
                        .to_numpy(zero_copy_only=False), dtype=bool)
    done = np.zeros(len(s), dtype=bool)
    for width, rule in ((10, "mst"), (12, "cccd"), (13, "branch")):
        pick = np.flatnonzero(digits & (lengths == width))
        if not len(pick):
            continue
        d = digit_matrix(arr.take(pa.array(pick)), width)
        if rule == "mst":
            ok = mst_ok(d)
        elif rule == "cccd":
            ok = cccd_ok(d)
        else:
            ok = mst_ok(d[:, :10]) & (d[:, 10:].sum(axis=1) != 0)
        out[pick] = ok
        done[pick] = True
    hyphen = np.flatnonzero(~done & (lengths == 14) & np.asarray(pc.fill_null(pc.match_substring_regex(
        arr, r"^[0-9]{10}-[0-9]{3}$"), False).to_numpy(zero_copy_only=False), dtype=bool))
    if len(hyphen):
        d = digit_matrix(pc.replace_substring(arr.take(pa.array(hyphen)), "-", ""), 13)
        out[hyphen] = mst_ok(d[:, :10]) & (d[:, 10:].sum(axis=1) != 0)
        done[hyphen] = True
    nulls = s.isna().to_numpy()
    rest = np.flatnonzero(~done & ~nulls)
    if len(rest):
        codes, uniques = pd.factorize(s.iloc[rest])
        valid = np.fromiter((slow(u) for u in uniques), dtype=bool, count=len(uniques))
        out[rest] = valid[codes]
    return out


# ---------------------------------------------------------------- the expectations


def accepts(spec: dict) -> bool:
    """Whether evaluate() may answer this spec (it may still decline on the data); False: GX answers."""
    return spec.get("expectation") in FAST_TYPES and not _UNSUPPORTED_KWARGS & set(spec.get("kwargs") or {})


def evaluate(df: pd.DataFrame, spec: dict, current_codes: Callable[[], frozenset[str]] | None = None,
             ) -> FastResult | None:
    """GX's answer for one contract spec on df, or None when GX itself must answer."""
    name = spec.get("expectation")
    kwargs = dict(spec.get("kwargs") or {})
    if not accepts(spec):
        return None
    try:
        return _RULES[name](df, kwargs, current_codes)
    except _Skip:
        return None


def _nonnull_map(df, kwargs, test: Callable[[pd.Series], np.ndarray]) -> FastResult:
    """A column map expectation: nulls are left out, `test` judges the non-null values (True = expected)."""
    s = _column(df, kwargs["column"])
    considered = ~_missing(s)
    ok = np.ones(len(s), dtype=bool)
    if considered.all():
        ok = np.asarray(test(s), dtype=bool)
    elif considered.any():
        values = s[considered]
        ok[considered] = test(values)
    return _map_result(len(s), considered, ~ok, kwargs.get("mostly"))


def _text_in_set(df, kwargs, value_set: list) -> FastResult:
    """A text column against a set of str: membership judged on the whole column in Arrow, nulls left out."""
    s = _column(df, kwargs["column"])
    hit = _str_in(s, value_set)
    if hit is None:
        return _nonnull_map(df, kwargs, lambda v: v.isin(value_set).to_numpy())
    considered = ~_missing(s)
    return _map_result(len(s), considered, ~hit, kwargs.get("mostly"))


def _not_null(df, kwargs, _codes):
    s = _column(df, kwargs["column"])
    mostly = kwargs.get("mostly")
    null = _missing(s)
    return _map_result(len(s), np.ones(len(s), dtype=bool), null, mostly, missing_fields=False)


def _in_set(df, kwargs, _codes):
    value_set = kwargs.get("value_set")
    if value_set is None or isinstance(value_set, (str, dict)) or not hasattr(value_set, "__iter__"):
        raise _Skip
    value_set = list(value_set)
    s = _column(df, kwargs["column"])
    if all(isinstance(v, str) for v in value_set) and _is_text(s):
        return _text_in_set(df, kwargs, value_set)
    if all(_number(v) for v in value_set) and _numeric_kind(s):
        return _nonnull_map(df, kwargs, lambda v: v.isin(value_set).to_numpy())
    raise _Skip


def _values_between(df, kwargs, _codes):
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if (lo is None and hi is None) or any(b is not None and not _number(b) for b in (lo, hi)):
        raise _Skip
    if lo is not None and hi is not None and lo > hi:
        raise _Skip  # GX raises; its message is GX's
    s = _column(df, kwargs["column"])
    kind = _numeric_kind(s)
    if kind is None:
        raise _Skip
    values = _values(s, kind)
    if not _comparable_bounds(kind, values, [lo, hi]):
        raise _Skip
    mask = _missing(s)
    ok = _between(values, lo, hi, kwargs.get("strict_min"), kwargs.get("strict_max"))
    return _map_result(len(s), ~mask, ~ok, kwargs.get("mostly"))


def _match_regex(df, kwargs, _codes):
    regex = kwargs.get("regex")
    s = _column(df, kwargs["column"])
    if regex is None or not _is_text(s):
        raise _Skip
    null = _missing(s)
    hit = _regex_matches(s, regex)
    if hit is None:
        raise _Skip
    return _map_result(len(s), ~null, ~hit, kwargs.get("mostly"))


def _unique(df, kwargs, _codes):
    s = _column(df, kwargs["column"])
    if not (_is_text(s) or _numeric_kind(s)):
        raise _Skip
    return _nonnull_map(df, kwargs, lambda v: ~v.duplicated(keep=False).to_numpy())


def _compound_unique(df, kwargs, _codes):
    cols = kwargs.get("column_list")
    if not cols or len(set(cols)) != len(cols):
        raise _Skip
    frame = pd.DataFrame({c: _column(df, c) for c in cols})
    for c in cols:
        if not (_is_text(frame[c]) or _numeric_kind(frame[c])):
            raise _Skip
    ignore = kwargs.get("ignore_row_if", "all_values_are_missing")
    null = frame.isna().to_numpy()
    if ignore == "all_values_are_missing":
        considered = ~null.all(axis=1)
    elif ignore == "any_value_is_missing":
        considered = ~null.any(axis=1)
    elif ignore == "never":
        considered = np.ones(len(frame), dtype=bool)
    else:
        raise _Skip
    bad = np.zeros(len(frame), dtype=bool)
    if considered.any():
        bad[considered] = frame[considered].duplicated(keep=False).to_numpy()
    return _map_result(len(frame), considered, bad, kwargs.get("mostly"))


def _pair_side(s: pd.Series) -> tuple[str | None, np.ndarray]:
    """(kind, missing) of one side: how pandas compares its values ("number", "date": datetime.date objects,
    "empty": no value; None: other) and s.isna()."""
    if s.dtype == object:
        values = s.to_numpy()
        types = set(map(type, values))
        if types <= {dt.date, _NONE}:  # dates and None only: settled by the types, no per-value test
            missing = np.equal(values, None) if _NONE in types else np.zeros(len(s), dtype=bool)
            return ("date" if dt.date in types else "empty"), missing
    missing = s.isna().to_numpy()
    present = ~missing
    if not present.any():
        return "empty", missing
    if _numeric_kind(s):
        return "number", missing
    if s.dtype == object and set(map(type, s.to_numpy()[present])) == {dt.date}:
        return "date", missing
    return None, missing


def _pair_values(s: pd.Series) -> np.ndarray:
    """A "number" (or "empty") side as float64, nulls as 0 (callers mask them)."""
    kind = _numeric_kind(s)
    if kind == "int":
        values = _values(s, "int")
        if int(np.abs(values).max(initial=0)) >= 2 ** 53:
            raise _Skip  # int64 vs float64 would round
        return values.astype(np.float64)
    if kind == "float":
        return _values(s, "float")
    return np.zeros(len(s))


def _pair_greater(df, kwargs, _codes):
    a, b = _column(df, kwargs["column_A"]), _column(df, kwargs["column_B"])
    (kind_a, na), (kind_b, nb) = _pair_side(a), _pair_side(b)
    kinds = {kind_a, kind_b}
    if None in kinds or len(kinds - {"empty"}) > 1:
        raise _Skip
    kind = next(iter(kinds - {"empty"}), "number")
    ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
    if ignore == "both_values_are_missing":
        considered = ~(na & nb)
    elif ignore == "either_value_is_missing":
        considered = ~(na | nb)
    elif ignore == "neither":
        considered = np.ones(len(a), dtype=bool)
    else:
        raise _Skip
    if (considered & (na | nb)).any() and any(
            isinstance(c.dtype, pd.api.extensions.ExtensionDtype) for c in (a, b)):
        raise _Skip  # nullable dtypes compare to <NA>, not False: GX's handling of that is GX's
    compare = np.greater_equal if kwargs.get("or_equal") else np.greater
    both = ~na & ~nb  # pandas compares a missing value as False
    ok = np.zeros(len(a), dtype=bool)
    if kind == "date":
        # datetime.date objects on both sides (checked): compared as Python compares them, like pandas does
        va, vb = a.to_numpy(), b.to_numpy()
        ok = np.asarray(compare(va, vb), dtype=bool) if both.all() else ok
        if not both.all() and both.any():
            ok[both] = compare(va[both], vb[both])
    else:
        va, vb = _pair_values(a), _pair_values(b)
        with np.errstate(invalid="ignore"):
            ok = compare(va, vb) & both
    return _map_result(len(a), considered, ~ok, kwargs.get("mostly"))


def _value_lengths(df, kwargs, _codes):
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if (lo is None and hi is None) or any(b is not None and not _number(b) for b in (lo, hi)):
        raise _Skip
    if lo is not None and hi is not None and lo > hi:
        raise _Skip
    s = _column(df, kwargs["column"])
    if not _is_text(s):
        raise _Skip
    lengths = pc.fill_null(pc.utf8_length(_text_array(s)), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    null = _missing(s)
    ok = _between(lengths, lo, hi, kwargs.get("strict_min"), kwargs.get("strict_max"))
    return _map_result(len(s), ~null, ~ok, kwargs.get("mostly"))


def _row_count(df, kwargs, _codes):
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if (lo is None and hi is None) or any(b is not None and not _number(b) for b in (lo, hi)):
        raise _Skip
    if lo is not None and hi is not None and lo > hi:
        raise _Skip
    n = len(df)
    ok = bool(_between(np.array([n]), lo, hi, kwargs.get("strict_min"), kwargs.get("strict_max"))[0])
    return FastResult(ok, {"observed_value": n}, None, n)


def _valid_tax_code(df, kwargs, _codes):
    from quality.taxcode import is_valid_tax_code

    return _nonnull_map(df, kwargs, lambda v: tax_code_validity(v, is_valid_tax_code))


def _current_ward_code(df, kwargs, codes):
    s = _column(df, kwargs["column"])
    value_set = kwargs.get("value_set")
    if value_set is None:
        if codes is None:
            raise _Skip
        value_set = codes()
    if not _is_text(s) or not all(isinstance(v, str) for v in value_set):
        raise _Skip
    return _text_in_set(df, kwargs, list(value_set))


_RULES: dict[str, Callable[[pd.DataFrame, dict, Any], FastResult]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_between": _values_between,
    "expect_column_values_to_match_regex": _match_regex,
    "expect_column_values_to_be_unique": _unique,
    "expect_compound_columns_to_be_unique": _compound_unique,
    "expect_column_pair_values_a_to_be_greater_than_b": _pair_greater,
    "expect_column_value_lengths_to_be_between": _value_lengths,
    "expect_table_row_count_to_be_between": _row_count,
    "expect_column_values_to_be_valid_tax_code": _valid_tax_code,
    "expect_column_values_to_be_current_ward_code": _current_ward_code,
}
