"""quality.vector (used by assets.clean and quality.pseudonym) against the quality functions it stands in for."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pandas as pd
import pytest

from assets import clean
from quality import vector
from quality.phone import OLD_MOBILE_PREFIXES
from quality.text import clean_text

EDGE = [None, "", " ", "  a  b ", "a\tb", "a\u00a0b", "x\u200by", "Hoà", unicodedata.normalize("NFD", "Thuỷ"),
        "ASCII only", "two  spaces", " lead", "trail ", "~!@#", "a\nb", "\x7f", "０９０", "١٢٣"]


def _same(a: pd.Series, b: pd.Series) -> None:
    assert a.dtype == b.dtype == "str"
    assert a.index.equals(b.index)
    assert [None if pd.isna(v) else v for v in a] == [None if pd.isna(v) else v for v in b]


def _phones(rng: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.35:
            v = f"0{rng.randrange(1, 10)}{rng.randrange(10**8):08d}"
        elif k < 0.5:
            v = f"0{rng.choice(list(OLD_MOBILE_PREFIXES) + ['160', '200', '123'])}{rng.randrange(10**7):07d}"
        elif k < 0.6:
            v = f"0{rng.randrange(1, 10)}{rng.randrange(10**9):09d}"  # 11 digits
        elif k < 0.7:
            d = f"09{rng.randrange(10**8):08d}"
            v = rng.choice([f"{d[:4]}.{d[4:7]}.{d[7:]}", f"{d[:4]} {d[4:]}", f"({d[:3]}) {d[3:]}", f"{d[:4]}-{d[4:]}"])
        elif k < 0.75:
            v = f"028 3{rng.randrange(10**3):03d} {rng.randrange(10**4):04d}"
        elif k < 0.8:
            v = rng.choice(["+84903123456", "+841689123456", "+8409031234567", "+84 903 123 456", "+840903123456",
                            "+84 1203 123 456", "84903123456", "0084903123456", "+1 650 253 0000", "903123456",
                            "12345", "0" * 10, "09031234567890", "0903 123 456 ext 1", "1800 1234"])
        elif k < 0.9:
            v = f"0{rng.randrange(10**rng.randrange(6, 11))}"
        else:
            v = None
        out.append(v)
    return out


def test_clean_text_fast_path_equals_clean_text():
    rng = random.Random(1)
    values = pd.Series([rng.choice(EDGE) for _ in range(2000)] + EDGE, dtype=object)
    _same(vector.clean_text(values), clean_text(values))
    as_str = values.astype("str")
    _same(vector.clean_text(as_str), clean_text(as_str))
    mixed = pd.Series(["a", 5, None, 2.5], dtype=object)  # not all text: clean_text itself
    _same(vector.clean_text(mixed), clean_text(mixed))


def test_clean_column_results_do_not_change_with_the_fast_paths(monkeypatch):
    from assets.contract import Column

    rng = random.Random(3)
    raw = pd.Series(_phones(rng, 500), dtype="str")
    col = Column.model_validate({"type": "phone", "description": "x", "headers": ["SĐT"]})
    fast = clean.clean_column("sdt", col, raw)
    monkeypatch.setattr(vector, "clean_text", clean_text)
    slow = clean.clean_column("sdt", col, raw)
    _same(fast[0], slow[0])
    assert [(m.tolist(), c) for m, c in sorted(fast[1], key=lambda x: x[1])] == \
        [(m.tolist(), c) for m, c in sorted(slow[1], key=lambda x: x[1])]
    assert np.any([m.any() for m, _ in fast[1]])


def test_date_fast_path_equals_parse_dates():
    rng = random.Random(4)
    values = [rng.choice([f"{rng.randrange(0, 33):02d}/{rng.randrange(0, 14):02d}/{rng.choice([1899, 1900, 2024, 2100, 2101])}",
                          "29/02/2024", "29/02/2025", "31/04/2026", "1/2/2026", "2026-10-01", "01.10.2026",
                          "01/10/2026 08:30", None, "x", "01/10/26"]) for _ in range(3000)]
    text = clean_text(pd.Series(values, dtype=object)).set_axis(range(7, 3007))
    got, got_bad = clean.fast_dates(text, False)
    want, want_bad = clean._parse_dates(text, False)
    assert got.index.equals(want.index) and got.dtype == want.dtype == object
    assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in want]
    present = text.notna().to_numpy()
    assert (got_bad[present] == want_bad[present]).all()


@pytest.mark.parametrize("key", [b"k" * 32, bytes(range(64)), bytes(range(65)), b"x" * 200])
def test_pseudonyms_are_hmac_sha256(key):
    import datetime as dt
    import hashlib
    import hmac

    from quality.pseudonym import HEX_CHARS, PREFIX, pseudonymise

    values = pd.Series(["079052123456", "+84903123456", " padded ", "Nguyễn Văn Hoà",
                        unicodedata.normalize("NFD", "Hoà"), "a\tb", None, "079052123456", ""], dtype=object)
    got = pseudonymise(values, key)

    def reference(v):
        if v is None:
            return None
        text = unicodedata.normalize("NFC", str(v)).strip()
        return PREFIX + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:HEX_CHARS]

    assert [None if pd.isna(v) else v for v in got] == [reference(v) for v in values]
    dates = pd.Series([dt.date(2026, 10, 1), None], dtype=object)
    assert pseudonymise(dates, key)[0] == PREFIX + hmac.new(key, b"2026-10-01", hashlib.sha256).hexdigest()[:HEX_CHARS]
