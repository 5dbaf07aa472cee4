import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

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
