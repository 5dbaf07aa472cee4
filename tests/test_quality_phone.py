import random
import time

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest

from quality import bulk, phone
from quality.phone import _VN_RULE, OLD_MOBILE_PREFIXES, _decide, _one, normalize, normalize_phone
from quality.text import map_unique

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


# ---------------------------------------------------------------- the column fast path against normalize_phone

SEPARATED = [
    lambda d: d,
    lambda d: f"{d[:4]} {d[4:7]} {d[7:]}",
    lambda d: f"{d[:4]}.{d[4:7]}.{d[7:]}",
    lambda d: f"{d[:4]}-{d[4:7]}-{d[7:]}",
    lambda d: f"({d[:3]}) {d[3:]}",
    lambda d: f" {d[:3]}/{d[3:]} ",
    lambda d: f"{d[:2]}  {d[2:]}",
]


def _generated_phones(rng: random.Random) -> list:
    """Every old prefix, every 2- and 3-digit start, HCMC landlines, +84/84/0084 forms, separators, junk, foreign."""
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    national = [f"{p}{digits(7)}" for p in OLD_MOBILE_PREFIXES for _ in range(3)]  # 10-digit old mobiles
    national += [f"{p}{digits(6)}" for p in OLD_MOBILE_PREFIXES]  # old prefix, one digit short
    national += [f"{a}{digits(8)}" for a in range(1, 10) for _ in range(30)]  # 9 digits, every first digit
    national += [f"{a}{b}{digits(7)}" for a in range(1, 10) for b in range(10)]
    national += [f"{a}{b}{c}{digits(6)}" for a in range(1, 10) for b in range(10) for c in range(0, 10, 3)]
    national += [f"28{digits(8)}" for _ in range(200)] + [f"28{d}{digits(7)}" for d in "0123456789"]  # landlines
    national += [f"28{digits(rng.choice([6, 7, 9]))}" for _ in range(40)]  # landline, wrong length
    national += [f"{rng.choice(['1800', '1900'])}{digits(rng.randrange(3, 8))}" for _ in range(40)]
    national += [f"{rng.choice(['199', '799', '69', '672', '1210', '1228'])}{digits(rng.randrange(3, 8))}"
                 for _ in range(60)]
    national += [digits(rng.randrange(1, 13)) for _ in range(150)]  # any length, any start
    out = []
    for nsn in national:
        for form in rng.sample(["0", "0", "0", "+84", "+84", "84", "0084", "+840", "840", "", "+8400", "00"], 3):
            out.append(rng.choice(SEPARATED)(form + nsn))
    out += [f"{rng.choice(['+1', '+44', '+65', '001', '0086', '+', '+0', '+8', '++84'])} {digits(rng.randrange(4, 12))}"
            for _ in range(200)]
    out += [rng.choice(SEPARATED)(digits(rng.randrange(0, 18))) for _ in range(200)]
    junk = ["", " ", "   ", ".", "...", "-", "()", "+", "+84", "0", "00", "84", "0903 123 456 ext 1",
            "0903123456 (Zalo)", "0903 123 456 / 0913 123 456", "0903\t123456", "0903\u00a0123\u00a0456",
            "\u00a00903123456", "０９０３１２３４５６", "٠٩٠٣١٢٣٤٥٦", "0903_123_456", "0903,123,456", "o903123456",
            "tel: 0903123456", "0903123456\n",
            "+84 (0) 903 123 456", "(+84)903123456", "84-903-123-456", "+84.903.123.456", "0084-903-123-456"]
    out += junk + [None, float("nan"), pd.NA, 903123456, 84903123456, 903123456.0, True, b"0903123456"]
    return out


def _per_value(raw: pd.Series) -> tuple[list, list]:
    """normalize_phone once per distinct value: what normalize() did before it had a column fast path."""
    phones, reasons = map_unique(raw, _one, width=2)
    return list(phones), list(reasons)


def _listed(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


def test_fast_path_uses_phonenumbers_metadata():
    assert _VN_RULE is not None  # this phonenumbers release: the column fast path is on
    general, types = _VN_RULE
    meta = phonenumbers.PhoneMetadata.metadata_for_region("VN")
    assert general == (tuple(meta.general_desc.possible_length), meta.general_desc.national_number_pattern)
    assert (tuple(meta.mobile.possible_length), meta.mobile.national_number_pattern) in types
    assert (tuple(meta.fixed_line.possible_length), meta.fixed_line.national_number_pattern) in types


@pytest.mark.parametrize("tables", [True, False])  # False: RE2 reads every national number (no prefix tables)
@pytest.mark.parametrize("dedupe", [False, True])  # True: the route for columns that repeat a few values
@pytest.mark.parametrize("dtype", [object, "str"])
def test_fast_path_equals_normalize_phone(dtype, dedupe, tables, monkeypatch):
    monkeypatch.setattr(bulk, "_repetitive", lambda values: dedupe)
    if not tables:
        monkeypatch.setattr(phone, "_prefix_table", lambda n, allowed: None)
    values = _generated_phones(random.Random(2018))
    if dtype == "str":
        values = [v for v in values if v is None or isinstance(v, str)]
    assert len(values) > 4000
    raw = pd.Series(values, dtype=dtype, name="sdt").set_axis(range(10, 10 + len(values)))
    phones, reasons = normalize(raw)
    want_phones, want_reasons = _per_value(raw)
    assert phones.index.equals(raw.index) and phones.name == reasons.name == "sdt"
    assert phones.dtype == reasons.dtype == "str"
    assert _listed(phones) == want_phones
    assert _listed(reasons) == want_reasons
    assert sum(p is not None for p in want_phones) > 1000 and sum(r is not None for r in want_reasons) > 1000


def test_fast_path_settles_the_usual_shapes():
    rng = random.Random(5)
    values = _generated_phones(rng)
    text = pa.array([v if isinstance(v, str) else None for v in values], type=pa.large_string())
    _, left_open = _decide(text)
    assert left_open.sum() < 0.3 * len(values)  # foreign, odd characters, "+84 00...": per value (few in real data)
    usual = pa.array(["0903 123 456", "01623456789", "+84 28 3829 6052", "84903123456", "0084 903 123 456", "12345",
                      "+84 0903 123 456", "903123456", "0903.123.456.7"], type=pa.large_string())
    assert not _decide(usual)[1].any()


def test_non_text_columns_go_per_value():
    raw = pd.Series([903123456, 84903123456, 12345, None], dtype="Int64")
    phones, reasons = normalize(raw)
    assert _listed(phones) == ["+84903123456", "+84903123456", None, None]
    assert _listed(reasons) == [None, None, "invalid_phone", None]


def test_normalize_is_fast_on_distinct_values():
    rng = np.random.default_rng(3)
    prefixes = np.array(["090", "091", "098", "032", "070", "085", "0168", "0123", "028 3"], dtype=object)
    raw = pd.Series(rng.choice(prefixes, 200_000) + pd.Series(rng.integers(0, 10**7, 200_000)).map("{:07d}".format),
                    dtype="str")
    start = time.perf_counter()
    phones, _ = normalize(raw)
    assert time.perf_counter() - start < 3.0  # per value (phonenumbers) this is ~8 s
    assert phones.notna().mean() > 0.9


def test_prefix_tables_give_re2s_verdict():
    """The VN patterns read only a few leading digits: the lookup tables agree with RE2 on whole numbers."""
    general, types = _VN_RULE
    rng = np.random.default_rng(7)
    tabled = 0
    for n in range(1, 16):
        allowed = tuple(p for lengths, p in types if not lengths or n in lengths)
        if not allowed or (general[0] and n not in general[0]):
            continue
        table = phone._prefix_table(n, allowed)
        tabled += table is not None
        k = table[0] if table else min(n, 4)
        numbers = [str(v) for v in rng.integers(10 ** (n - 1), 10**n, 20_000, dtype=np.int64)]
        numbers += [f"{p}{rng.integers(0, 10 ** (n - k), dtype=np.int64):0{n - k}d}" if n > k else str(p)
                    for p in range(10 ** (k - 1), 10**k)]  # every prefix
        nsn = pa.array(numbers + [None], type=pa.large_string())
        want = (bulk.matches(nsn, f"^(?:{general[1]})$")
                & bulk.matches(nsn, "^(?:" + "|".join(f"(?:{p})" for p in allowed) + ")$"))
        candidate = np.ones(len(nsn), dtype=bool)
        candidate[-1] = False
        got = phone._vn_valid(nsn, candidate)
        assert (got == want).all(), n
        assert want.any()
    assert tabled >= 4  # 7-10 digits: mobiles, landlines, 1800/1900


@pytest.mark.parametrize("pattern, n, k", [
    (r"\d{7}", 7, 0), (r"[2-9]\d{7}", 8, 1), (r"1(?:2[0-4]|3[5-9])\d{5}", 8, 3), (r"[12]\d{9}|7\d{6}", 10, 1),
    (r"\d+1", 5, 5), (r"(?:1\d)*2", 7, 7), (r"(?:|1)*2", 5, 5), (r"[^1]2\d", 4, 2), (r"[0-9a]\d", 2, 0),
    (r"(?i)1\d", 2, None), (r"1(?=2)\d", 2, None), (r"^1\d", 2, None), (r"(1)\1", 2, None), (r"1\d++", 3, None),
])
def test_significant_digits(pattern, n, k):
    assert phone._significant(pattern, n) == k
