import datetime as dt
import hashlib
import hmac
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest

from quality import citizen_id, phone, pseudonym
from quality.pseudonym import (
    KEY_ENV, MissingKey, key_from_env, parse_key, pseudonymise, pseudonymise_column,
)

KEY = bytes.fromhex("8f" * 32)
OTHER = bytes.fromhex("17" * 32)
PERSONAL = pd.Series(["079203001234", "+84903123456", "Nguyễn Văn An", "12 Lê Lợi, Phường Sài Gòn"])


def test_same_input_same_pseudonym_across_calls():
    first = pseudonymise(PERSONAL, KEY)
    again = pseudonymise(pd.concat([PERSONAL[::-1], PERSONAL]), KEY)
    assert first.tolist() == again.iloc[4:].tolist()
    assert first.tolist() == again.iloc[:4][::-1].tolist()
    assert all(re.fullmatch(r"ps_[0-9a-f]{32}", p) for p in first)
    assert first.nunique() == 4


def test_different_keys_give_different_pseudonyms():
    a, b = pseudonymise(PERSONAL, KEY), pseudonymise(PERSONAL, OTHER)
    assert not set(a) & set(b)


def test_no_raw_value_or_fragment_in_output():
    out = pseudonymise(PERSONAL, KEY)
    text = " ".join(out)
    for raw in PERSONAL:
        assert raw not in text
    # Not even the CCCD's birth-province/sex/year prefix or the phone's digits survive.
    for fragment in ("079203", "903123456", "Nguyễn"):
        assert fragment not in text


def test_missing_stays_missing_and_index_kept():
    values = pd.Series(["079203001234", None, np.nan, "079203001234"], index=[10, 11, 12, 13], name="so_cccd")
    out = pseudonymise(values, KEY)
    assert out.index.tolist() == [10, 11, 12, 13] and out.name == "so_cccd"
    assert out.isna().tolist() == [False, True, True, False]
    assert out[10] == out[13]


def test_normalised_value_is_pseudonymised_so_formats_join():
    phones = pd.Series(["0903 123 456", "+84 903.123.456", "84903123456", "0903-123-457"])
    out = pseudonymise_column(phones, "phone", KEY)
    assert out[0] == out[1] == out[2] == pseudonymise(pd.Series(["+84903123456"]), KEY)[0]
    assert out[3] != out[0]
    ids = pseudonymise_column(pd.Series(["079 203 001 234", "079203001234", "079.203.001.234"]), "citizen_id", KEY)
    assert ids.nunique() == 1
    names = pseudonymise_column(pd.Series(["NGUYỄN  VĂN HOÀ", "Nguyễn Văn Hòa"]), "text", KEY)
    assert names[0] == names[1]
    assert pseudonymise_column(pd.Series(["not a phone"]), "phone", KEY).isna().all()


def test_dates_hash_as_iso_dates():
    out = pseudonymise(pd.Series([dt.date(1990, 1, 2), None], dtype=object), KEY)
    assert out[0] == pseudonymise(pd.Series(["1990-01-02"]), KEY)[0]
    assert pd.isna(out[1])


def test_million_rows_with_repeats():
    rng = np.random.default_rng(0)
    values = pd.Series(rng.integers(0, 2_000, 1_000_000).astype(str), dtype="str")
    out = pseudonymise(values, KEY)
    assert len(out) == 1_000_000 and out.nunique() == values.nunique()
    assert out[values == values[0]].nunique() == 1


def test_missing_key_refused_with_instructions(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(MissingKey) as e:
        key_from_env()
    message = str(e.value)
    assert "set KHO_PSEUDONYM_KEY" in message
    assert "refuses to load personal columns" in message and "never uses a default key" in message
    monkeypatch.setenv(KEY_ENV, "   ")
    with pytest.raises(MissingKey, match="not set"):
        key_from_env()


def test_short_key_refused(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a" * 31)  # 31 bytes of text
    with pytest.raises(MissingKey, match="too short"):
        key_from_env()
    monkeypatch.setenv(KEY_ENV, "ab" * 20)  # hex: 20 bytes, not 40
    with pytest.raises(MissingKey, match=r"too short \(20 bytes\)"):
        key_from_env()
    with pytest.raises(MissingKey):
        pseudonymise(PERSONAL, b"short")


def test_key_from_env_hex_and_text(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "8f" * 32 + "\n")
    assert key_from_env() == KEY
    passphrase = "một câu dài đủ ba mươi hai byte trở lên"
    monkeypatch.setenv(KEY_ENV, passphrase)
    assert key_from_env() == passphrase.encode()
    assert parse_key("8F" * 32) == KEY



# ---------------------------------------------------------------- the fast paths give hmac.new's answer

ODD = ["079203001234", "+84903123456", " padded ", "Nguyễn Văn Hoà", unicodedata.normalize("NFD", "Hoà"), "a\tb",
       "", None, "x" * 300, "a\x00b", "é" * 70, "~!@#", np.nan]
LONG_KEY = "khóa bí mật dài hơn 64 byte, có dấu tiếng Việt: ấ ầ ẩ ẫ ậ ắ ằ ẳ ẵ ặ".encode()


def _reference(values, key: bytes) -> list:
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        text = v.isoformat() if isinstance(v, dt.date) else unicodedata.normalize("NFC", str(v)).strip()
        return "ps_" + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return [one(v) for v in values]


def _plain(out: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in out]


@pytest.mark.parametrize("key", [b"k" * 32, bytes(range(64)), bytes(range(65)), LONG_KEY],
                         ids=["32 bytes", "64 bytes", "65 bytes", "long text"])
@pytest.mark.parametrize("path", ["dedup", "distinct"])
def test_every_hmac_path_is_hmac_sha256(key, path):
    """Distinct values hashed once then taken back to the rows; all-distinct columns hashed without dedup."""
    assert len(LONG_KEY) > 64
    rng = np.random.default_rng(7)
    values = ODD * 3 + [f"{v:012d}" for v in rng.integers(0, 10**12, 66_000 if path == "distinct" else 300)]
    values = pd.Series(values, dtype=object).sample(frac=1, random_state=1)
    want = _reference(values, key)
    for column in (values, values.astype("str")):
        assert (pseudonym._distinct_text(column) is not None) == (path == "distinct")
        out = pseudonymise(column, key)
        assert out.dtype == "str" and out.index.equals(column.index) and out.name == column.name
        assert _plain(out) == want


def test_dates_and_numbers():
    values = pd.Series([dt.date(2026, 10, 1), None, dt.datetime(2020, 1, 2, 3, 4), dt.date(1990, 1, 2)] * 2,
                       dtype=object)
    assert _plain(pseudonymise(values, LONG_KEY)) == _reference(values, LONG_KEY)
    numbers = pd.Series([79203001234, 7, 7, 12])
    assert _plain(pseudonymise(numbers, KEY)) == _reference(numbers, KEY)


def test_repeated_values_are_deduplicated_first():
    values = pd.Series(np.tile(np.array(["079203001234", "079203001235"], dtype=object), 50_000), dtype="str")
    assert pseudonym._distinct_text(values) is None
    twice = pd.Series(np.repeat(np.arange(50_000), 2).astype(str), dtype="str")  # each value twice, side by side
    assert pseudonym._distinct_text(twice) is None
    assert pseudonym._distinct_text(pd.Series(np.arange(100_000).astype(str), dtype="str")) is not None


def _normalisable(column_type: str) -> list[str]:
    """Phones or citizen IDs, normalised or not, valid or not (random numbers mostly are not)."""
    rng = np.random.default_rng(11)

    def digits(n: int) -> str:
        return "".join(map(str, rng.integers(0, 10, n)))

    if column_type == "phone":
        values = [f"+84{rng.integers(1, 10)}{digits(int(n))}" for n in rng.integers(3, 13, 600)]
        values += [f"+84{p}{digits(7)}" for p in phone.OLD_MOBILE_PREFIXES]  # normalize gives the new prefix
        values += ["+84903123456", "+842838291234", "+16502530000", "+8409031234567", "+84", "0903123456"]
    else:
        values = [f"{p}{rng.integers(0, 4)}{digits(8)}" for p in sorted(citizen_id.PROVINCE_CODES)]
        values += [digits(12) for _ in range(200)] + [digits(9) for _ in range(20)]
        values += ["000000000", "079299001234", "079203001234", "07920300123", "0792030012345", "079 203 001 234"]
    return values + ["", " ", "+84903123456", "079203001234"]


@pytest.mark.parametrize("column_type, normalize, check", [
    ("phone", phone.normalize, "_normal_phones"), ("citizen_id", citizen_id.normalize, "_normal_citizen_ids")])
def test_normalise_skips_only_values_normalize_keeps(column_type, normalize, check):
    """The already-normalised check admits exactly normalize()'s fixed points: each value alone, then columns."""
    check = getattr(pseudonym, check)
    skipped = 0
    for value in _normalisable(column_type):
        column = pd.Series([value, None], dtype="str", name="x")
        got, want = pseudonym.normalise(column, column_type), normalize(column)[0]
        assert got.dtype == want.dtype and got.name == want.name and _plain(got) == _plain(want), value
        skipped += pseudonym._normal(column, check)
    assert skipped > 20  # normalised values do take the short way
    cleaned = normalize(pd.Series(_normalisable(column_type), dtype="str"))[0].dropna()
    foreign = cleaned.str.match(r"\+(?!84)")
    if column_type == "phone":  # normalize()'s fixed points too, but only VN numbers take the short way
        assert foreign.any() and not pseudonym._normal(cleaned, check)
    cleaned = cleaned[~foreign]
    assert pseudonym._normal(cleaned, check)
    assert pseudonym.normalise(cleaned, column_type).equals(normalize(cleaned)[0])
    for odd in ("+84123", "999999999999", "+84162123456", " 079203001234"):
        mixed = pd.concat([cleaned, pd.Series([odd], dtype="str")], ignore_index=True)
        assert not pseudonym._normal(mixed, check)
        assert _plain(pseudonym.normalise(mixed, column_type)) == _plain(normalize(mixed)[0])
    objects = cleaned.astype(object)  # not a string column: normalize() as before
    assert not pseudonym._normal(objects, check)
    assert pseudonym.normalise(objects, column_type).equals(normalize(objects)[0])


def test_text_columns_fold_each_distinct_value_once_with_the_same_result():
    from quality.text import key_series

    names = ["  NGUYỄN  VĂN HOÀ ", "Nguyễn Văn Hòa", None, "", " ", np.nan, unicodedata.normalize("NFD", "Thuỷ"),
             "a\u200bb", "O'Neil", "O’Neil"] * 3
    for column in (pd.Series(names, dtype=object, name="ho_ten"), pd.Series(names, dtype="str", name="ho_ten"),
                   pd.Series([1, 2, None, 1], dtype=object, index=[5, 6, 7, 8])):
        got, want = pseudonymise_column(column, "text", KEY), pseudonymise(key_series(column), KEY)
        assert got.dtype == want.dtype == "str" and got.index.equals(column.index) and got.name == column.name
        assert got.equals(want)
    assert got[5] == got[8] and pd.isna(got[7])
