"""Column-at-a-time helpers for the validators' fast paths (quality.phone, citizen_id, taxcode).

A 1M-row export has ~1M distinct phones and citizen IDs, so "once per distinct value" (text.map_unique) is
still 1M Python calls. Each validator has a `decide` function that settles the common shapes for a whole
Arrow string array with Arrow compute (RE2) and numpy; `run` hands every value it leaves open to the
validator's per-value function through map_unique, so the result is the per-value function's on every row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import infer_dtype

from quality.text import map_unique

# decide(text) -> (fields, open): one array per output field (null where there is no value), row-aligned with
# `text`, and a mask of the rows it could not settle (never a null row).
Decide = Callable[[pa.Array], tuple[list[pa.Array], np.ndarray]]

_SAMPLE = 4096  # values sampled to decide whether a column repeats enough to deduplicate first


def text_column(values: pd.Series) -> tuple[pa.Array, np.ndarray] | None:
    """(large_string Arrow array of the str values, null elsewhere; mask of the rows that are neither str
    nor a string-dtype null, which go per value). None when the column cannot hold text, or Arrow cannot
    hold it (lone surrogates): then every value goes per value."""
    try:
        if isinstance(values.dtype, pd.StringDtype) or (
            isinstance(values.dtype, pd.ArrowDtype)
            and pa.types.is_string(values.dtype.pyarrow_dtype) | pa.types.is_large_string(values.dtype.pyarrow_dtype)
        ):
            arr = pa.array(values.array, from_pandas=True)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            return arr.cast(pa.large_string()), np.zeros(len(values), dtype=bool)
        if values.dtype != object:
            return None
        raw = values.to_numpy(dtype=object)
        if infer_dtype(raw, skipna=True) in ("string", "empty"):
            other = np.zeros(len(raw), dtype=bool)  # str or missing: missing stays null
        else:  # ints, floats, bytes, NaT beside the text: those rows go per value
            other = ~np.fromiter((isinstance(v, str) for v in raw), dtype=bool, count=len(raw))
            raw = np.where(other, None, raw)
        return pa.array(raw, type=pa.large_string(), from_pandas=True), other
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None


def matches(arr: pa.Array, pattern: str) -> np.ndarray:
    """RE2 search of `pattern` (anchor it yourself) as a bool mask; null -> False."""
    hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def lengths(arr: pa.Array) -> np.ndarray:
    """Byte lengths (= characters for the ASCII the fast paths admit); null -> -1."""
    return np.asarray(pc.fill_null(pc.binary_length(arr), -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def digits_int(arr: pa.Array, rows: np.ndarray) -> np.ndarray:
    """int64 value of the rows in mask `rows` (each all ASCII digits, at most 18), in row order."""
    return np.asarray(pc.cast(arr.filter(pa.array(rows)), pa.int64()).to_numpy(zero_copy_only=False),
                      dtype=np.int64)


def digit(numbers: np.ndarray, width: int, i: int) -> np.ndarray:
    """Digit i (0 = leftmost) of `width`-digit numbers written with leading zeros."""
    return numbers // 10 ** (width - 1 - i) % 10


def where(mask: np.ndarray, value: pa.Array | pa.Scalar) -> pa.Array:
    """value (an array, or a scalar repeated) where mask, null elsewhere."""
    null = pa.scalar(None, value.type)
    return pc.if_else(pa.array(mask, type=pa.bool_()), value, null)


def replace_rows(arr: pa.Array, rows: np.ndarray, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """arr with the rows in mask `rows` replaced by fn(those rows)."""
    if not rows.any():
        return arr
    mask = pa.array(rows)
    return pc.replace_with_mask(arr, mask, fn(arr.filter(mask)))


def _patch(fields: list[pa.Array], rows: np.ndarray, values: pd.Series, one: Callable[[Any], tuple]) -> list:
    if not rows.any():
        return fields
    slow = map_unique(values, one, width=len(fields))
    mask = pa.array(rows)
    return [pc.replace_with_mask(f, mask, pa.array(col, type=f.type, from_pandas=True))
            for f, col in zip(fields, slow, strict=True)]


def _repetitive(values: pd.Series) -> bool:
    """True when a sample says most values repeat, so deciding once per distinct value pays off."""
    if len(values) <= 4 * _SAMPLE:
        return False
    sample = values.iloc[np.linspace(0, len(values) - 1, _SAMPLE).astype(np.int64)]
    return sample.nunique() < _SAMPLE // 2


def run(values: pd.Series, decide: Decide, one: Callable[[Any], tuple], types: list[pa.DataType]) -> list[pa.Array]:
    """Row-aligned arrays of one(value)'s fields for every row (missing rows: null), via `decide` where it can."""
    if not _repetitive(values):
        return _run(values, decide, one, types)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # as map_unique: each distinct value once
    fields = _run(pd.Series(uniques), decide, one, types)
    indices = pa.array(codes, mask=codes < 0)
    return [pc.take(f, indices) for f in fields]


def _run(values: pd.Series, decide: Decide, one: Callable[[Any], tuple], types: list[pa.DataType]) -> list[pa.Array]:
    column = text_column(values)
    if column is None:
        return [pa.array(c, type=t, from_pandas=True)
                for c, t in zip(map_unique(values, one, width=len(types)), types, strict=True)]
    arr, other = column
    fields, open_ = decide(arr)
    rows = open_ | other
    return _patch(fields, rows, values[rows], one)


def series(arr: pa.Array, like: pd.Series) -> pd.Series:
    """A "str" Series on like's index and name."""
    return pd.Series(pd.array(arr, dtype="str"), index=like.index, name=like.name, copy=False)
