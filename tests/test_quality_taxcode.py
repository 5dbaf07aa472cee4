import random

import pandas as pd
import pytest
from stdnum.vn import mst

from quality.taxcode import is_valid_tax_code, normalize, normalize_tax_code

WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0100109106", "0100109106"),  # Viettel
        ("0300588569", "0300588569"),  # Vinamilk
        ("0100233488", "0100233488"),
        ("0100109106-001", "0100109106-001"),
        ("0100109106001", "0100109106-001"),  # 13-digit form, as stdnum accepts
        ("0314409058 - 002", "0314409058-002"),
        ("01.00.112.437", "0100112437"),
        (" 0100109106\u00a0", "0100109106"),
        ("079085001234", "079085001234"),  # individual: 12-digit CCCD since 2025-07-01
    ],
)
def test_known_valid_codes(raw, expected):
    assert normalize_tax_code(raw) == expected
    assert is_valid_tax_code(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "0100109107",  # wrong check digit
        "100109106",  # leading zero lost
        100109106,
        100109106.0,  # Excel number
        "0100109106-000",  # branch 000 is not issued
        "0100109106-01",
        "0100-109106",  # stdnum accepts a hyphen anywhere; we do not
        "0100000003",  # check digit fits, but sequential number 0000000 is never issued
        "000085001234",  # 12 digits, not a CCCD (province 000)
        "01001091O6",
        "abc",
    ],
)
def test_invalid_codes(raw):
    assert normalize_tax_code(raw) is None
    assert not is_valid_tax_code(raw)


def test_agrees_with_stdnum_on_random_codes():
    rng = random.Random(20250701)
    codes = []
    for _ in range(3000):
        prefix = "".join(rng.choice("0123456789") for _ in range(9))
        codes.append(prefix + rng.choice("0123456789"))
        codes.append(prefix + mst.calc_check_digit(prefix)[-1])  # valid unless the remainder is 0
    codes += [c + f"{rng.randrange(0, 1000):03d}" for c in codes[:2000]]
    codes += [c[:10] + "-" + c[10:] for c in codes[-1000:]]
    assert sum(map(mst.is_valid, codes)) > 1500  # the sample has plenty of valid codes
    disagree = [c for c in codes if is_valid_tax_code(c) != mst.is_valid(c)]
    assert disagree == []
    for c in codes:
        if mst.is_valid(c):
            assert normalize_tax_code(c) == mst.format(c)


def test_remainder_zero_is_invalid_for_every_check_digit():
    rng = random.Random(7)
    prefixes = []
    while len(prefixes) < 20:
        prefix = "".join(rng.choice("0123456789") for _ in range(9))
        if sum(w * int(d) for w, d in zip(WEIGHTS, prefix)) % 11 == 0 and prefix[2:] != "0000000":
            prefixes.append(prefix)
    for prefix in prefixes:
        for digit in "0123456789":
            assert not is_valid_tax_code(prefix + digit)
            assert not mst.is_valid(prefix + digit)


def test_normalize_series_reasons():
    raw = pd.Series(
        ["0100109106", None, "", "  ", "0100109107", "0300588569-001", float("nan")], name="ma_so_thue"
    )
    codes, reasons = normalize(raw)
    assert codes.tolist()[:1] == ["0100109106"] and codes.iloc[5] == "0300588569-001"
    assert codes.iloc[[1, 2, 3, 4, 6]].isna().all()
    assert reasons.iloc[4] == "invalid_tax_code"
    assert reasons.drop(index=4).isna().all()  # missing is not this rule's business
    assert codes.name == "ma_so_thue" and codes.index.equals(raw.index)
