"""Column-at-a-time helpers for the validators' fast paths (quality.phone, citizen_id, taxcode).

A 1M-row export has ~1M distinct phones and citizen IDs, so "once per distinct value" (text.map_unique) is
still 1M Python calls. Each validator has a `decide` function that settles the common shapes for a whole
Arrow string array with Arrow compute (RE2) and numpy; `run` hands every value it leaves open to the
validator's per-value function through map_unique, so the result is the per-value function's on every row.
The byte helpers (byte_view ... splice) read and write a string array's buffers with numpy: "only digits" or
"starts with 0" over 1M values costs a few ms there, RE2 or a slice-and-join tens of ms.
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


def byte_view(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(n + 1 offsets into `data`, data): the bytes of a large_string array, without a copy.

    A null row's slot may hold bytes: callers mask null rows themselves."""
    if not len(arr):
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    buffers = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=width)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64,
                                                                                                    copy=False)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, dtype=np.uint8)
    return (offsets - offsets[0] if offsets[0] else offsets), data[offsets[0]: offsets[-1]]


def row_any(offsets: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Per row of byte_view's offsets: does some flagged byte lie in it."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=bool)
    if np.count_nonzero(flags) <= n // 4:  # rare: find each hit's row (side="right" skips empty rows)
        out[np.searchsorted(offsets, np.flatnonzero(flags), side="right") - 1] = True
        return out
    filled = offsets[1:] > offsets[:-1]  # reduceat over their starts: consecutive filled rows are adjacent
    out[filled] = np.logical_or.reduceat(flags, offsets[:-1][filled])
    return out


def digit_rows(arr: pa.Array) -> np.ndarray:
    """Rows that are not null and hold only ASCII digits (an empty string too), from the bytes."""
    offsets, data = byte_view(arr)
    other = (data - np.uint8(48)) > 9  # uint8 wraps: every byte outside '0'..'9'
    return ~row_any(offsets, other) & valid(arr)


def valid(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)


def matches_where(arr: pa.Array, pattern: str, rows: np.ndarray) -> np.ndarray:
    """matches() on the rows in mask `rows` only (False elsewhere): cheap when they are few."""
    out = np.zeros(len(arr), dtype=bool)
    if rows.any():
        out[rows] = matches(arr.filter(pa.array(rows)), pattern)
    return out


def head(arr: pa.Array, k: int) -> np.ndarray:
    """(k, n) uint8: byte j of each row in line j, 0 past the row's end and in null rows."""
    offsets, data = byte_view(arr)
    size = np.where(valid(arr), np.diff(offsets), 0)
    return np.stack([byte_at(data, offsets[:-1] + j, size > j) for j in range(k)]) if k else \
        np.zeros((0, len(arr)), dtype=np.uint8)


def byte_at(data: np.ndarray, at: np.ndarray, where: np.ndarray) -> np.ndarray:
    """data[at] where `where`, else 0 (`at` may run past the data there)."""
    if not len(data):
        return np.zeros(len(at), dtype=np.uint8)
    return np.where(where, data.take(at, mode="clip"), np.uint8(0))


def starts(first: np.ndarray, prefix: str) -> np.ndarray:
    """starts_with for an ASCII prefix, on head()'s bytes (null -> False)."""
    out = first[0] == ord(prefix[0])
    for j, char in enumerate(prefix[1:], 1):
        out &= first[j] == ord(char)
    return out


def rows_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The row of each byte position (sorted, in byte_view's data)."""
    if len(positions) <= len(offsets):
        return np.searchsorted(offsets, positions, side="right") - 1  # "right": empty rows own no byte
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))[positions]  # many: label every byte


def from_bytes(like: pa.Array, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A large_string array of `data` cut at `offsets` (n + 1, from 0), null where `like` is null."""
    validity = pa.array(valid(like)).buffers()[1] if like.null_count else None
    return pa.Array.from_buffers(pa.large_string(), len(like), [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=like.null_count)


def remove_bytes(arr: pa.Array, positions: np.ndarray, per_row: np.ndarray | None = None) -> pa.Array:
    """arr without the bytes at `positions` (sorted, in byte_view's data; ASCII bytes, or the text breaks);
    `per_row`: how many of them each row loses, when the caller knows."""
    if not len(positions):
        return arr
    offsets, data = byte_view(arr)
    if per_row is None:
        per_row = np.bincount(np.searchsorted(offsets, positions, side="right") - 1, minlength=len(arr))
    shifted = offsets.copy()
    np.subtract(shifted[1:], np.cumsum(per_row), out=shifted[1:])
    keep = np.ones(len(data), dtype=bool)
    keep[positions] = False
    return from_bytes(arr, shifted, data[keep])


def splice(arr: pa.Array, cut: np.ndarray, head: np.ndarray, head_size: np.ndarray) -> pa.Array:
    """Each row with its first cut[i] bytes (ASCII, within the row) replaced by head[:head_size[i], i]
    (head: (h, n) uint8); one pass over the bytes, where a slice and a join would copy every row twice."""
    offsets, data = byte_view(arr)
    keep = np.ones(len(data), dtype=bool)
    for j in range(int(cut.max(initial=0))):
        keep[offsets[:-1][cut > j] + j] = False
    size = np.diff(offsets) - cut + head_size
    to = np.zeros(len(arr) + 1, dtype=np.int64)
    np.cumsum(size, out=to[1:])
    out, body = np.empty(to[-1], dtype=np.uint8), np.ones(to[-1], dtype=bool)
    for j in range(int(head_size.max(initial=0))):
        rows = head_size > j
        at = to[:-1][rows] + j
        out[at], body[at] = head[j][rows], False
    out[body] = data[keep]
    return from_bytes(arr, to, out)


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
    sample = values.iloc[np.linspace(0, len(values) - 1, _SAMPLE).astype(np.int64)].dropna()
    return sample.nunique() < len(sample) // 2  # among present values: a mostly empty column of distinct codes is not


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
