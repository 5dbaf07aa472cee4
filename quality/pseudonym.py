"""Keyed pseudonyms for personal columns (Law 91/2025/QH15 on personal data protection, Decree 356/2025/NĐ-CP).

Shared tables never carry a citizen ID, phone, birth date, address or an individual's name: each contract-flagged
personal column is replaced by HMAC-SHA256(key, normalised value), written "ps_" + 32 hex characters (128 bits).
The same person gets the same pseudonym in every table and every load, so joins and distinct counts still work,
while nobody without the key can go back to the value.

Why keyed: an unkeyed hash of a CCCD or a phone is reversed by hashing every possible number (a CCCD has 10^6
random digits per birth province/sex/year; VN mobiles are ~10^9 numbers) — minutes on a laptop. Why not partial
masking ("079******123"): a CCCD's first six digits are birth province, century+sex and birth year, so a masked
CCCD still discloses them and, with a ward, often singles a person out; masked values also collide, so they cannot
serve as a join key. The key comes only from KHO_PSEUDONYM_KEY; there is no default key, because a key in code is
a key anyone can read.

The HMAC is a plain Python loop over pre-keyed SHA-256 states, once per distinct value: DuckDB's SHA-256 was
measured slower per value, so there is no SQL/vectorised hashing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import bulk, citizen_id, phone, vector
from quality.text import key_series

KEY_ENV = "KHO_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32
PREFIX = "ps_"
HEX_CHARS = 32

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_HELP = (
    f"set {KEY_ENV} to a secret of at least {MIN_KEY_BYTES} bytes (64 hex characters, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_hex(32))'`); kho refuses to load personal columns "
    "without it and never uses a default key"
)


class MissingKey(Exception):
    """No usable pseudonymisation key: unset, or too short to resist guessing."""


def parse_key(text: str) -> bytes:
    """A hex string is decoded (64 hex chars = 32 bytes); any other text is its UTF-8 bytes. Short keys refused."""
    text = text.strip()
    if not text:
        raise MissingKey(f"{KEY_ENV} is not set: {_HELP}")
    # Hex is decoded, so "00ff..." of 40 characters counts as the 20 bytes it holds, not 40.
    key = bytes.fromhex(text) if _HEX.fullmatch(text) else text.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise MissingKey(f"{KEY_ENV} is too short ({len(key)} bytes): {_HELP}")
    return key


def key_from_env() -> bytes:
    """The key from KHO_PSEUDONYM_KEY; raises MissingKey when unset, empty or shorter than 32 bytes."""
    return parse_key(os.environ.get(KEY_ENV, ""))


def _canonical(value: Any) -> bytes:
    """The bytes that get hashed: NFC text, ISO dates; one spelling per value."""
    if isinstance(value, (dt.date, dt.datetime)):  # also pd.Timestamp
        text = value.isoformat()
    else:
        text = unicodedata.normalize("NFC", str(value)).strip()
    return text.encode("utf-8")


def pseudonymise(values: pd.Series, key: bytes) -> pd.Series:
    """"ps_" + 32 hex chars of HMAC-SHA256(key, value) per row; missing stays missing.

    Values should already be normalised (E.164 phone, 12-digit CCCD): see `pseudonymise_column`.
    The HMAC runs once per distinct value, so a million rows of repeats cost as much as their distinct values.
    """
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise MissingKey(f"pseudonymisation key is too short: {_HELP}")
    text = _distinct_text(values)
    if text is None:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        taken = _pseudonyms(_messages(uniques), key).take(pa.array(codes, mask=codes < 0))  # code -1: missing
    else:  # (almost) every value distinct: hashing the few repeats twice costs less than finding them
        present = text.is_valid()
        taken = _pseudonyms(_messages(text.filter(present)), key)
        if text.null_count:
            taken = pc.replace_with_mask(pa.nulls(len(text), pa.large_string()), present, taken)
    return pd.Series(pa.chunked_array([taken]).to_pandas().array, index=values.index, name=values.name, dtype="str")


def _distinct_text(values: pd.Series) -> pa.Array | None:
    """The column as an Arrow string array when a random sample of it repeats a value at most once; else None.

    Deduplicating a million values costs ~0.2 s, a fourth of hashing them. The sample has 4*sqrt(rows) values,
    so a column in which each value comes twice shows ~8 repeated pairs in it, whatever its length: at most one
    means few enough repeats that hashing every row is the cheaper way (a dossier export's citizen IDs and
    phones: ~1.005 rows per distinct value).
    """
    n = len(values)
    if n < 65536:
        return None
    arr = vector.text_array(values)
    if arr is None:
        return None
    picks = np.random.default_rng(0).choice(n, min(n, int(4 * n**0.5)), replace=False)
    sample = arr.take(pa.array(picks))
    repeats = len(sample) - sample.null_count - pc.count_distinct(sample, mode="only_valid").as_py()
    return arr if repeats <= 1 else None


try:  # CPython's own SHA-256 (3.11: _sha256, 3.12+: _sha2); see _pseudonyms
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - other Pythons
    try:
        from _sha2 import sha256 as _sha256
    except ImportError:
        _sha256 = hashlib.sha256

_IPAD, _OPAD = bytes(x ^ 0x36 for x in range(256)), bytes(x ^ 0x5C for x in range(256))
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)  # byte -> its 2 hex chars


def _hmac_blocks(key: bytes) -> tuple[bytes, bytes]:
    """key^ipad and key^opad (RFC 2104): HMAC(key, m) = SHA256(key^opad || SHA256(key^ipad || m))."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return block.translate(_IPAD), block.translate(_OPAD)


def _pseudonyms(messages: pa.Array, key: bytes) -> pa.Array:
    """PREFIX + HEX_CHARS hex chars of HMAC-SHA256(key, m) for each message (a null-free large_binary array).

    HMAC from pre-keyed SHA-256 states (2 compressions a value instead of 4), then hex and prefix for all rows in
    numpy. For values this short the loop's cost is making and copying hash objects, not hashing: CPython's own
    SHA-256 copies a small struct where OpenSSL's (hashlib.sha256) copies an EVP context, and took ~20% less CPU
    per value here, though OpenSSL's uses the CPU's SHA instructions. DuckDB's sha256, vectorised but in
    software, was slower per value still (~1.7 us). Checked against hmac.new (tests/test_fastcheck_clean.py,
    tests/test_pseudonym.py).
    """
    inner, outer = _hmac_blocks(key)
    inner_copy, outer_copy = _sha256(inner).copy, _sha256(outer).copy
    digests: list[bytes] = []
    add = digests.append
    for message in messages.to_pylist():
        h = inner_copy()
        h.update(message)
        o = outer_copy()
        o.update(h.digest())
        add(o.digest())
    n = len(digests)
    head = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(n, 32)[:, : HEX_CHARS // 2]
    width = len(PREFIX) + HEX_CHARS
    text = np.empty((n, width), dtype=np.uint8)
    text[:, : len(PREFIX)] = np.frombuffer(PREFIX.encode(), dtype=np.uint8)
    text[:, len(PREFIX):] = _HEX_PAIRS[head].view(np.uint8).reshape(n, HEX_CHARS)
    offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _messages(uniques: Any) -> pa.Array:
    """_canonical of each distinct value, as large_binary; plain printable ASCII text (IDs, E.164 phones) is its
    own NFC and has nothing to strip, so it stays as it is, without a copy."""
    try:
        arr = pa.array(uniques, type=pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):  # dates, numbers: one by one
        values = uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)
        return pa.array([_canonical(v) for v in values], type=pa.large_binary())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    rest = ~vector.simple_text(arr, space_runs=True)  # printable ASCII, no space first or last
    binary = arr.cast(pa.large_binary())
    if not rest.any():
        return binary
    mask = pa.array(rest)
    canonical = [_canonical(t) for t in arr.filter(mask).to_pylist()]
    return pc.replace_with_mask(binary, mask, pa.array(canonical, type=pa.large_binary()))


NORMALISED_TYPES = ("citizen_id", "phone")  # types whose normalise is their cleaning's normalize()


def normalise(values: pd.Series, column_type: str) -> pd.Series:
    """The normalised form to pseudonymise, per contract column type; invalid values become missing.

    citizen_id: 12-digit CCCD / 9-digit CMND; phone: E.164; text (names, addresses): case, spacing and tone
    placement folded ("NGUYỄN  VĂN HOÀ" = "Nguyễn Văn Hòa"). Other types (dates) are already canonical.
    Idempotent, so already-cleaned columns can go through it again.
    """
    if column_type == "citizen_id":
        return values.astype("str") if _normal(values, _normal_citizen_ids) else citizen_id.normalize(values)[0]
    if column_type == "phone":
        return values.astype("str") if _normal(values, _normal_phones) else phone.normalize(values)[0]
    if column_type == "text":
        return key_series(values)
    return values


# assets.clean already normalised citizen_id and phone columns, so in the load they are normalize()'s fixed
# points; checking that (exactly: only values normalize() returns unchanged pass) costs a fraction of normalising
# again (~0.1 s instead of ~1 s for a million phones). Anything else goes through normalize() as before;
# tests/test_pseudonym.py compares the two on valid, invalid and old-prefix values.


def _normal(values: pd.Series, check) -> bool:
    """True when values is a string column whose every present value passes check (an Arrow string array)."""
    if not isinstance(values.dtype, pd.StringDtype):
        return False
    column = bulk.text_column(values)
    if column is None:
        return False
    arr, other = column
    return not other.any() and bool(check(arr))


def _normal_citizen_ids(arr: pa.Array) -> bool:
    """Every value a valid 12-digit CCCD (as citizen_id._decide judges it) or a 9-digit CMND other than 0s."""
    digits = _flags(pc.ascii_is_decimal(arr))  # RE2's ^[0-9]+$, at a fifth of the cost
    length = bulk.lengths(arr)
    twelve, nine = digits & (length == 12), digits & (length == 9)
    if ((length >= 0) & ~twelve & ~nine).any():  # length -1: missing, which stays missing
        return False
    return bool(citizen_id.cccd_years(bulk.digits_int(arr, twelve))[0].all()
                and (bulk.digits_int(arr, nine) != 0).all())


def _normal_phones(arr: pa.Array) -> bool:
    """Every value "+84" + a national number that phone._decide keeps as it is: valid by VN's metadata (its own
    _vn_valid), and no pre-2018 mobile prefix to convert."""
    if phone._VN_RULE is None:  # this phonenumbers release goes value by value: so does the check
        return False
    nsn = pc.utf8_slice_codeunits(arr, 3)
    length = bulk.lengths(nsn)
    # ^\+84[1-9][0-9]{3,12}$: normalize_phone's 6-15 digits, with +84 and no trunk 0 (Arrow kernels, not RE2)
    vn = _flags(pc.starts_with(arr, "+84")) & _flags(pc.ascii_is_decimal(nsn)) & (length >= 4) & (length <= 13)
    vn &= ~_flags(pc.starts_with(nsn, "0"))
    if (_flags(arr.is_valid()) & ~vn).any():
        return False
    ten = pc.utf8_slice_codeunits(nsn.filter(pa.array(vn & (length == 10))), 0, 3)
    if pc.any(pc.is_in(ten, value_set=pa.array(list(phone.OLD_MOBILE_PREFIXES)))).as_py():
        return False  # a 10-digit number with a pre-2018 mobile prefix gets its new one
    return bool((phone._vn_valid(nsn, vn) | ~vn).all())


def _flags(mask: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def pseudonymise_column(values: pd.Series, column_type: str, key: bytes, normalised: bool = False) -> pd.Series:
    """Normalise by contract column type, then pseudonymise: formatting differences never split a person.
    `normalised`: the values are already as `normalise` gives them (a cleaned file's citizen IDs and phones:
    checking that again cost ~0.2 s per 1M values and column)."""
    if column_type in NORMALISED_TYPES and normalised:
        return pseudonymise(values.astype("str"), key)
    if column_type != "text":
        return pseudonymise(normalise(values, column_type), key)
    # Names and addresses repeat: fold and hash each distinct value once, then one take back to the rows
    # (key_series then pseudonymise would deduplicate the whole column twice).
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    done = pseudonymise(normalise(pd.Series(uniques, dtype=object), column_type), key)
    taken = pa.array(done.array, type=pa.large_string()).take(pa.array(codes, mask=codes < 0))
    return pd.Series(pa.chunked_array([taken]).to_pandas().array, index=values.index, name=values.name, dtype="str")
