import random
import time
import unicodedata

import numpy as np
import pandas as pd
import pytest

from quality.text import clean_text, key_series, key_text, map_unique, strip_diacritics, title_case_vi


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


def test_clean_text_normalises_and_collapses():
    raw = pd.Series(
        ["  Phường\u00a0Bến \t Thành ", nfd("Hồ Chí Minh"), "", "   ", None, "\u200bQuận 1\ufeff", "a\nb"],
        index=list("abcdefg"),
        name="ten",
    )
    out = clean_text(raw)
    assert out.index.tolist() == list("abcdefg") and out.name == "ten"
    assert out["a"] == "Phường Bến Thành"
    assert out["b"] == "Hồ Chí Minh" and len(out["b"]) == len("Hồ Chí Minh")  # NFC: precomposed
    assert out[["c", "d", "e"]].isna().all()
    assert out["f"] == "Quận 1"
    assert out["g"] == "a b"


def test_clean_text_is_fast_on_repeated_values():
    pool = [" Xã\u00a0Bình Chánh ", "Phường Sài Gòn", "", None]
    values = pd.Series(np.random.default_rng(0).choice(pool, 1_000_000))
    start = time.perf_counter()
    out = clean_text(values)
    assert time.perf_counter() - start < 1.0
    assert out.value_counts()["Xã Bình Chánh"] == (values == " Xã\u00a0Bình Chánh ").sum()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("hoà", "hòa"),
        ("thuỷ", "thủy"),
        ("khoẻ", "khỏe"),
        ("Thuận Hoà", "Thuận Hòa"),
        ("Nguyễn Uý", "Nguyễn Úy"),
        ("Khánh Hoà", "Khánh Hòa"),
        ("Thanh Hoá", "Thanh Hóa"),
        ("HOÀ BÌNH", "hòa bình"),
        ("Phường  Hoà\u00a0Hưng", "phường hòa hưng"),
        (nfd("Thuỵ Khuê"), "Thụy Khuê"),
        ("quý", "qúy"),  # qu- onset: tone on the nucleus
        ("giá", "gía"),  # gi- onset
        ("người", "ngừơi"),  # ươ: tone on ơ
        ("mùa", "muà"),
        ("hoài", "hòai"),  # three vowels: middle
        ("khuỷu", "khủyu"),
        ("O’Brien", "o'brien"),
        ("Đắk Lắk", "đắk lắk"),
    ],
)
def test_key_text_unifies_spellings(old, new):
    assert key_text(old) == key_text(new)


def test_key_text_uses_new_style_tone_on_second_vowel_of_open_oa_oe_uy():
    assert key_text("Hòa") == "hoà"
    assert key_text("khỏe") == "khoẻ"
    assert key_text("thủy") == "thuỷ"
    assert key_text("Úy") == "uý"
    # closed syllables and other nuclei are the same in both styles
    assert key_text("hoàng") == "hoàng"
    assert key_text("huỳnh") == "huỳnh"
    assert key_text("tiếng việt") == "tiếng việt"


def test_key_text_keeps_distinct_words_distinct():
    assert key_text("hòa") != key_text("hoa")
    assert key_text("hòa") != key_text("hóa")
    assert key_text("Quận 1") != key_text("Quận 11")
    assert key_text("café") == "café"  # not a Vietnamese syllable: untouched
    assert key_text("ABC-12") == "abc-12"


VIET_CHARS = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯ àáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ"
    "\u0300\u0301\u0309\u0303\u0323\u00a0'’"  # loose tone marks too
)


def test_key_text_is_idempotent_and_nfc():
    rng = random.Random(3)  # random strings over Vietnamese letters and loose marks, seeded
    for _ in range(2000):
        s = "".join(rng.choice(VIET_CHARS) for _ in range(rng.randrange(12)))
        key = key_text(s)
        assert key_text(key) == key, s
        assert unicodedata.is_normalized("NFC", key)
        assert key == key.strip() and "  " not in key


def test_key_series_maps_each_value_and_keeps_missing():
    out = key_series(pd.Series(["Hoà Bình", "Hòa  Bình", None], name="x"))
    assert out.iloc[0] == out.iloc[1] == "hoà bình"
    assert pd.isna(out.iloc[2]) and out.name == "x"


def test_strip_diacritics():
    assert strip_diacritics("Ngày tiếp nhận") == "Ngay tiep nhan"
    assert strip_diacritics("ĐƯỜNG Đồng Khởi") == "DUONG Dong Khoi"
    assert strip_diacritics(nfd("Mã số thuế")) == "Ma so thue"


def test_title_case_vi():
    assert title_case_vi("nguyễn văn  AN") == "Nguyễn Văn An"
    assert title_case_vi("ĐẶNG thị\u00a0ÁNH tuyết") == "Đặng Thị Ánh Tuyết"
    assert title_case_vi(nfd("ỷ lan")) == "Ỷ Lan"
    assert title_case_vi("lê-nguyễn bảo") == "Lê-Nguyễn Bảo"


def test_map_unique_calls_once_per_value():
    calls = []
    out = map_unique(pd.Series(["a", "b", "a", None, "a"]), lambda v: calls.append(v) or v.upper())
    assert out.tolist() == ["A", "B", "A", None, "A"]
    assert sorted(calls) == ["a", "b"]
