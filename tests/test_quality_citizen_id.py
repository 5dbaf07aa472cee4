import datetime as dt
import random

import pandas as pd
import pyarrow as pa
import pytest

from quality import bulk
from quality.citizen_id import (
    BIRTH_MISMATCH,
    INVALID,
    PROVINCE_CODES,
    _decide,
    _with_year,
    birth_year,
    classify,
    is_legacy_cmnd,
    normalize,
)
from quality.text import map_unique


def test_province_codes_are_the_63_pre_2025_provinces():
    assert len(PROVINCE_CODES) == 63
    assert {"001", "079", "074", "077", "096"} <= PROVINCE_CODES  # Hà Nội, HCMC, Bình Dương, BR-VT, Cà Mau
    assert not {"000", "003", "097", "099"} & PROVINCE_CODES


@pytest.mark.parametrize(
    ("cccd", "year"),
    [("079085001234", 1985), ("079185001234", 1985), ("079203001234", 2003), ("001300000001", 2000)],
)
def test_century_digit_and_year(cccd, year):
    assert birth_year(cccd) == year
    assert classify(cccd) == (cccd, "cccd", None)


def test_separators_are_removed():
    assert classify(" 079 085 001 234 ") == ("079085001234", "cccd", None)
    assert classify("079.085.001.234") == ("079085001234", "cccd", None)


@pytest.mark.parametrize(
    "raw",
    [
        "000085001234",  # no province 000
        "097085001234",  # no province 097
        "079485001234",  # born in the 2100s
        "079285001234",  # born 2085: future
        "79085001234",  # leading zero lost
        79085001234.0,  # Excel number
        "07908500123A",
        "0790850012345",
        "000000000",
        "12345",
    ],
)
def test_invalid(raw):
    assert classify(raw) == (None, None, "invalid_citizen_id")


def test_missing_is_not_an_error():
    for raw in (None, "", "  ", float("nan"), pd.NA):
        assert classify(raw) == (None, None, None)


def test_legacy_cmnd():
    assert classify("023456789") == ("023456789", "cmnd", None)
    assert is_legacy_cmnd("023 456 789")
    assert not is_legacy_cmnd("079085001234")
    # a CMND has no birth data, so a birth date cannot contradict it
    assert classify("023456789", dt.date(1950, 1, 1)) == ("023456789", "cmnd", None)


def test_birth_date_check():
    assert classify("079085001234", dt.date(1985, 12, 31)) == ("079085001234", "cccd", None)
    mismatch = ("079085001234", "cccd", "citizen_id_birth_mismatch")
    assert classify("079085001234", dt.date(2085, 1, 1)) == mismatch
    assert classify("079203001234", dt.date(1903, 1, 1))[2] == "citizen_id_birth_mismatch"
    assert classify("079203001234", pd.Timestamp("2003-06-01"))[2] is None
    assert classify("079203001234", None)[2] is None


@pytest.mark.parametrize("as_datetime64", [False, True])
def test_normalize_series_with_birth_dates(as_datetime64):
    ids = pd.Series(
        ["079085001234", "079085001234", "023456789", "bad", None, "079203001234"], name="so_cccd"
    )
    born = pd.Series([dt.date(1985, 1, 1), dt.date(1986, 1, 1), dt.date(1960, 1, 1), None, None, None])
    if as_datetime64:
        born = pd.to_datetime(born)
    values, reasons = normalize(ids, born)
    assert values.tolist()[:3] == ["079085001234", "079085001234", "023456789"]
    assert values.iloc[[3, 4]].isna().all() and values.iloc[5] == "079203001234"
    assert reasons.tolist()[1] == "citizen_id_birth_mismatch"
    assert reasons.tolist()[3] == "invalid_citizen_id"
    assert reasons.iloc[[0, 2, 4, 5]].isna().all()
    assert values.name == "so_cccd"


def test_normalize_without_birth_dates_and_bad_inputs():
    values, reasons = normalize(pd.Series(["079085001234", "x"]))
    assert values.iloc[0] == "079085001234" and reasons.iloc[1] == "invalid_citizen_id"
    with pytest.raises(ValueError, match="rows"):
        normalize(pd.Series(["079085001234"]), pd.Series([], dtype=object))
    with pytest.raises(TypeError, match="dates"):
        normalize(pd.Series(["079085001234"]), pd.Series(["01/02/1985"]))


# ---------------------------------------------------------------- the column fast path against the per-value rule

SEPARATE = [lambda t: t, lambda t: f" {t} ", lambda t: f"{t[:3]} {t[3:6]} {t[6:]}",
            lambda t: f"{t[:3]}.{t[3:6]}.{t[6:]}",
            lambda t: f"{t[:3]}-{t[3:]}", lambda t: f"{t[:4]}..{t[4:]}", lambda t: f"-{t}-"]


def _generated_ids(rng: random.Random) -> list:
    """Every province slot 000-099 and century digit, birth years around this year, CMND, separators, junk."""
    this = dt.date.today().year
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    ids = [f"{p:03d}{c}{digits(2)}{digits(6)}" for p in range(100) for c in range(10) for _ in range(3)]
    ids += [f"{rng.randrange(100, 1000):03d}{digits(9)}" for _ in range(100)]
    for year in range(this - 2, this + 3):  # around the future-year edge, both sexes
        ids += [f"079{2 * ((year - 1900) // 100) + sex}{year % 100:02d}{digits(6)}" for sex in (0, 1) for _ in range(5)]
    ids += [digits(9) for _ in range(400)] + ["000000000", "000000001", "100000000"]
    ids += [digits(rng.choice([0, 1, 8, 10, 11, 13, 15])) for _ in range(300)]
    out = [rng.choice(SEPARATE)(i) for i in ids]
    junk = ["", " ", "   ", ".", "-", " .-. ", "079\t085001234", "079\u00a0085\u00a0001\u00a0234", "\u00a0079085001234",
            "079_085_001_234", "079/085/001/234", "O79085001234", "07908500123A", "０７９０８５００１２３４", "٠٧٩٠٨٥٠٠١٢٣٤",
            "079085001234\n", "+79085001234", "079,085,001,234"]
    return out + junk + [None, float("nan"), pd.NA, 79085001234, 23456789, 79085001234.0, True]


def _listed(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


@pytest.mark.parametrize("dedupe", [False, True])
@pytest.mark.parametrize("dtype", [object, "str"])
def test_fast_path_equals_the_per_value_rule(dtype, dedupe, monkeypatch):
    monkeypatch.setattr(bulk, "_repetitive", lambda values: dedupe)
    values = _generated_ids(random.Random(2016))
    if dtype == "str":
        values = [v for v in values if v is None or isinstance(v, str)]
    assert len(values) > 3000
    raw = pd.Series(values, dtype=dtype, name="so_cccd").set_axis(range(3, 3 + len(values)))
    ids, reasons = normalize(raw)
    want_ids, _, want_reasons = map_unique(raw, _with_year, width=3)  # normalize() before the fast path
    assert ids.dtype == reasons.dtype == "str" and ids.index.equals(raw.index) and ids.name == "so_cccd"
    assert _listed(ids) == list(want_ids) and _listed(reasons) == list(want_reasons)
    kinds = [classify(v)[1] if isinstance(v, str) else None for v in values]
    assert kinds.count("cccd") > 500 and kinds.count("cmnd") > 200 and list(want_reasons).count(INVALID) > 1000

    # with birth dates: as classify() decides row by row
    rng = random.Random(1)
    born = [None if rng.random() < 0.1 else dt.date(rng.choice([1950, 1985, 2003, dt.date.today().year]), 6, 1)
            for _ in values]
    for k, v in enumerate(values):
        if isinstance(v, str) and classify(v)[1] == "cccd" and rng.random() < 0.5:
            born[k] = dt.date(birth_year(classify(v)[0]), 12, 31)  # plenty of matches as well
    for dates in (pd.Series(born, dtype=object), pd.to_datetime(pd.Series(born))):
        ids, reasons = normalize(raw, dates)
        want = [(None, None, None) if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                else classify(v, b) for v, b in zip(raw.astype(object), born)]
        assert _listed(ids) == [w[0] for w in want]
        assert _listed(reasons) == [w[2] for w in want]
        assert [w[2] for w in want].count(BIRTH_MISMATCH) > 150


def test_fast_path_settles_the_usual_shapes():
    text = pa.array(["079085001234", "079 085 001 234", "079.085.001.234", "023456789", "", " ", "12345", "000000000",
                     "079485001234", None], type=pa.large_string())
    _, left_open = _decide(text)
    assert not left_open.any()
    assert _decide(pa.array(["079\t085001234", "O79085001234"], type=pa.large_string()))[1].all()
