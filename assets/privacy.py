"""Personal data in shared tables (Law 91/2025/QH15, Decree 356/2025/NĐ-CP): pseudonymise or drop, per contract.

A contract column with `personal: true` reaches the curated table and the curated lake only as a keyed pseudonym
(`quality.pseudonym`, HMAC-SHA256 of the normalised value) or, with `protect: drop`, not at all. The raw value stays
in the two restricted places only: the raw archive (the exact bytes received) and the quarantine zone.

One more case the contract cannot flag per column: since 1 July 2025 an individual's tax code is their 12-digit
personal ID (CCCD). A `tax_code` column of organisations may therefore carry a citizen ID for a household business
or a sole trader; those 12-digit values are pseudonymised as citizen IDs (so they join with `so_cccd` pseudonyms),
while 10- and 13-character organisation codes stay as they are.

There is no default key: without KHO_PSEUDONYM_KEY a dataset that has personal values is refused (MissingKey),
and the Dagster asset turns that into a Failure naming the variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets.contract import Contract
from quality import vector
from quality.pseudonym import KEY_ENV, MissingKey, key_from_env, pseudonymise_column

PERSONAL_ID = r"\d{12}"  # an individual's tax code since 2025-07-01 is their CCCD number


def _individual_tax_codes(values: pd.Series) -> pd.Series:
    """Rows whose value fully matches PERSONAL_ID. A text column is settled in Arrow, where 12 bytes of ASCII
    digits is a match; Python's \\d also takes other scripts' digits, so non-ASCII values go through pandas."""
    arr = vector.text_array(values)
    if arr is None:
        return _individual_tax_codes_slow(values)
    found = _flags(pc.and_(pc.equal(pc.binary_length(arr), 12), pc.ascii_is_decimal(arr)))
    unsure = _flags(pc.invert(pc.string_is_ascii(arr)))
    if unsure.any():
        found[unsure] = _individual_tax_codes_slow(values[unsure]).to_numpy()
    return pd.Series(found, index=values.index, name=values.name)


def _flags(mask: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _individual_tax_codes_slow(values: pd.Series) -> pd.Series:
    return values.astype("str").str.fullmatch(PERSONAL_ID).fillna(False).astype(bool) & values.notna()


def require_key(contract: Contract) -> bytes:
    """KHO_PSEUDONYM_KEY, or MissingKey naming the dataset, its personal columns and the variable."""
    try:
        return key_from_env()
    except MissingKey as e:
        named = ", ".join(n for n, c in contract.columns.items() if c.personal) or "12-digit personal tax codes"
        raise MissingKey(f"{contract.dataset} has personal data ({named}) and is not loaded into shared tables "
                         f"without a pseudonymisation key: {e}") from None


def protect(contract: Contract, frame: pd.DataFrame, key: bytes | None = None,
            normalised: set[str] = frozenset()) -> pd.DataFrame:
    """The rows as shared tables may hold them; `key` defaults to KHO_PSEUDONYM_KEY (MissingKey if unset).
    `normalised`: columns already as their type's normalize() gives them (not normalised again).

    A contract with a pseudonymised column always needs the key, whatever the rows hold; one with only a
    tax-code column needs it when a row holds an individual's (12-digit) code.
    """
    personal = {n: c for n, c in contract.columns.items() if c.personal and n in frame}
    hashed = [n for n, c in personal.items() if c.protect == "pseudonymise"]
    individuals = {n: _individual_tax_codes(frame[n]) for n, c in contract.columns.items()
                   if c.type == "tax_code" and not c.personal and n in frame}
    individuals = {n: mask for n, mask in individuals.items() if mask.any()}
    out = frame.drop(columns=[n for n, c in personal.items() if c.protect == "drop"])
    if not hashed and not individuals:
        return out
    key = key or require_key(contract)
    for name in hashed:
        out[name] = pseudonymise_column(out[name], contract.columns[name].type, key, name in normalised)
    for name, mask in individuals.items():
        out[name] = _with_pseudonyms(out[name], mask, key)
    return out


def _with_pseudonyms(values: pd.Series, mask: pd.Series, key: bytes) -> pd.Series:
    """values, as text, with the rows in mask replaced by their citizen-ID pseudonyms (missing if invalid)."""
    pseudonyms = pseudonymise_column(values[mask], "citizen_id", key)
    arr = vector.text_array(values)
    if arr is None:  # not all text: through object, as str() would write each value
        values = values.astype(object)
        values[mask] = pseudonyms
        return values.astype("str")
    # in Arrow: an object round trip of a million-row column costs more than the pseudonyms of a few hundred
    done = pc.replace_with_mask(arr, pa.array(mask.to_numpy()), pa.array(pseudonyms.array, type=pa.large_string()))
    return vector.series(done, values)


DEMO_KEY_FILE = "demo.key"


def use_demo_key(data_dir: Path) -> Path | None:
    """For `kho demo` only: when KHO_PSEUDONYM_KEY is unset, use (or create) a random key in <data>/demo.key.

    Returns the key file when it was used, None when the environment already had a key. The key is random per
    data folder, readable by its owner only, and never a constant in the code.
    """
    if os.environ.get(KEY_ENV, "").strip():
        return None
    path = data_dir / DEMO_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    os.environ[KEY_ENV] = path.read_text().strip()
    return path
