import random

import pandas as pd
import pyarrow as pa
import pytest
from stdnum.vn import mst

from quality import bulk
from quality.taxcode import INVALID, _decide, _one, is_valid_tax_code, normalize, normalize_tax_code
from quality.text import map_unique

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


# ---------------------------------------------------------------- the column fast path against the per-value rule


def _generated_codes(rng: random.Random) -> list:
    """Valid and wrong check digits, remainder 0, sequential 0000000, branches, CCCDs, separators, junk."""
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    codes = []
    for _ in range(800):
        prefix = digits(9)
        codes += [prefix + rng.choice("0123456789"), prefix + mst.calc_check_digit(prefix)[-1]]
    codes += [f"{d}{d2}0000000{c}" for d in "0123" for d2 in "0123" for c in "0123456789"]  # never issued
    codes += [c + rng.choice(["000", "001", digits(3)]) for c in rng.sample(codes, 600)]  # 13-digit branch form
    codes += [c[:10] + "-" + c[10:] for c in codes[-300:]]
    codes += [f"0{p:02d}{rng.randrange(4)}{digits(8)}" for p in range(100) for _ in range(3)]  # 12 digits: CCCD or not
    codes += [digits(rng.choice([0, 1, 9, 11, 14, 15])) for _ in range(200)]
    separate = [lambda t: t, lambda t: f" {t} ", lambda t: f"{t[:2]}.{t[2:5]}.{t[5:]}", lambda t: f"{t[:4]} {t[4:]}",
                lambda t: f"{t[:4]}-{t[4:]}", lambda t: f"{t[:10]} - {t[10:]}", lambda t: f"-{t}", lambda t: f"{t}-"]
    out = [rng.choice(separate)(c) for c in codes]
    junk = ["", " ", "  ", ".", "-", " . ", "0100109106\t", "0100109106\u00a0", "\u00a00100109106", "01001091O6",
            "0100109106/001", "0100109106_001", "０１００１０９１０６", "0100109106--001", "0100109106-0001", "0100,109,106"]
    return out + junk + [None, float("nan"), pd.NA, 100109106, 100109106.0, 300588569, True]


def _listed(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


@pytest.mark.parametrize("dedupe", [False, True])
@pytest.mark.parametrize("dtype", [object, "str"])
def test_fast_path_equals_the_per_value_rule(dtype, dedupe, monkeypatch):
    monkeypatch.setattr(bulk, "_repetitive", lambda values: dedupe)
    values = _generated_codes(random.Random(1998))
    if dtype == "str":
        values = [v for v in values if v is None or isinstance(v, str)]
    assert len(values) > 3000
    raw = pd.Series(values, dtype=dtype, name="mst").set_axis(range(1, 1 + len(values)))
    codes, reasons = normalize(raw)
    want_codes, want_reasons = map_unique(raw, _one, width=2)  # normalize() before the fast path
    assert codes.dtype == reasons.dtype == "str" and codes.index.equals(raw.index) and codes.name == "mst"
    assert _listed(codes) == list(want_codes) and _listed(reasons) == list(want_reasons)
    assert sum(c is not None for c in want_codes) > 500 and list(want_reasons).count(INVALID) > 1000
    assert sum(isinstance(c, str) and "-" in c for c in want_codes) > 100  # branches


def test_fast_path_settles_the_usual_shapes():
    text = pa.array(["0100109106", "0100109107", "0100109106-001", "0100109106001", "0314409058 - 002", "01.00.112.437",
                     "079085001234", "000085001234", "0100-109106", "", " ", None], type=pa.large_string())
    assert not _decide(text)[1].any()
    assert _decide(pa.array(["0100109106\u00a0", "01001091O6"], type=pa.large_string()))[1].all()
