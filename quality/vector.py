"""Vectorised twins of the per-value validators and normalisers in quality/ (Arrow compute + numpy).

Per-value Python (validators, phonenumbers, NFC) costs 1-35 us a value, and a 1M-row export has ~1M distinct
dossier codes, citizen IDs and phones. Each function here settles the values whose shape makes the answer certain
with Arrow compute (RE2) and numpy, and hands every other value to the quality module's own function, once per
distinct value; the results, dtypes and index are exactly those of that function (tests/test_fastcheck_clean.py
compares them value by value).

- `clean_text`: quality.text.clean_text
(Tax codes, citizen IDs and phones have their bulk paths in their own modules, `quality.bulk`.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import bulk
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


def mask(arr: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False),
                      dtype=bool)


def simple_text(arr: pa.Array, space_runs: bool = False) -> np.ndarray:
    """mask(arr, _SIMPLE_TEXT), read off the bytes (RE2 takes ~5x longer): not null, not empty, bytes 0x20-0x7e
    only, no space first, last or (unless `space_runs`) next to another space."""
    offsets, data = bulk.byte_view(arr)
    space = data == 0x20
    bad = (data - np.uint8(0x20)) > 0x5e  # uint8 wraps: outside 0x20-0x7e
    if not space_runs:
        bad[1:] |= space[1:] & space[:-1]  # across a row boundary it is a first or last space: refused below
    ok = (offsets[1:] > offsets[:-1]) & bulk.valid(arr) & ~bulk.row_any(offsets, bad)
    ok[ok] = ~space[offsets[:-1][ok]] & ~space[offsets[1:][ok] - 1]
    return ok


def series(arr: pa.Array, like: pd.Series) -> pd.Series:
    return pd.Series(pa.chunked_array([arr]).to_pandas().array, index=like.index, name=like.name, dtype="str")


def clean_text(values: pd.Series) -> pd.Series:
    """quality.text.clean_text: values already clean stay in Arrow, the others go through clean_text."""
    arr = text_array(values)
    if arr is None:
        return _clean_text_py(values)
    rest = ~simple_text(arr) & values.notna().to_numpy()
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
