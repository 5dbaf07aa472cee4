import datetime as dt

import pandas as pd
import pytest

from quality.citizen_id import PROVINCE_CODES, birth_year, classify, is_legacy_cmnd, normalize


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
