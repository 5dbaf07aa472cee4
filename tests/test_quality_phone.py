import time

import numpy as np
import pandas as pd
import pytest

from quality.phone import normalize, normalize_phone

# The 2018 renumbering as published, written out here rather than derived from the module's table.
CONVERTED = {
    "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036", "0167": "037",
    "0168": "038", "0169": "039", "0120": "070", "0121": "079", "0122": "077", "0126": "076",
    "0128": "078", "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",
    "0186": "056", "0188": "058", "0199": "059",
}  # fmt: skip


@pytest.mark.parametrize(("old", "new"), sorted(CONVERTED.items()))
def test_every_converted_prefix(old, new):
    expected = "+84" + new[1:] + "2345678"
    assert normalize_phone(old + "2345678") == expected
    assert normalize_phone(f"+84 {old[1:]} 234 5678") == expected
    assert normalize_phone(f"84{old[1:]}2345678") == expected
    assert normalize_phone(f"{old}.234.5678") == expected
    assert normalize_phone(f"{old}-234-5678") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0903123456",
        "0903 123 456",
        "0903.123.456",
        "(+84) 903-123-456",
        "+84903123456",
        "84903123456",
        "0084 903 123 456",
        "+84 0903 123 456",  # trunk 0 kept after +84
        "903123456",  # Excel dropped the leading 0
        903123456,
    ],
)
def test_mobile_forms(raw):
    assert normalize_phone(raw) == "+84903123456"


@pytest.mark.parametrize("raw", ["028 3829 6052", "02838296052", "+84 28 3829 6052", "(028) 3829.6052"])
def test_hcmc_landline(raw):
    assert normalize_phone(raw) == "+842838296052"


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "0903 123 456 / 0913 123 456",  # two numbers in one cell
        "0903123456 (Zalo)",
        "123",
        "0903 123",
        "09031234567",  # too long
        "0103123456",  # no such prefix
        "0162345678",  # old 11-digit prefix but only 10 digits
        "+84 162 345 67",
        903123456.0,  # Excel number: ambiguous, not guessed
        "0000000000",
    ],
)
def test_garbage_is_invalid(raw):
    assert normalize_phone(raw) is None


def test_normalize_series_reasons_and_missing():
    raw = pd.Series(["0903 123 456", None, "", "  ", "xyz", "01623456789"], name="so_dien_thoai")
    phones, reasons = normalize(raw)
    assert phones.iloc[0] == "+84903123456" and phones.iloc[5] == "+84323456789"
    assert phones.iloc[1:5].isna().all()
    assert reasons.iloc[4] == "invalid_phone"
    assert reasons.drop(index=4).isna().all()
    assert phones.name == "so_dien_thoai"


def test_normalize_is_fast_on_repeated_values():
    pool = ["0903 123 456", "01623456789", "028 3829 6052", "bad", None]
    raw = pd.Series(np.random.default_rng(1).choice(np.array(pool, dtype=object), 1_000_000))
    start = time.perf_counter()
    phones, reasons = normalize(raw)
    assert time.perf_counter() - start < 2.0
    assert (reasons == "invalid_phone").sum() == (raw == "bad").sum()
    assert (phones == "+84323456789").sum() == (raw == "01623456789").sum()
