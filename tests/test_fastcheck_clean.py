"""quality.vector (used by assets.clean and quality.pseudonym) against the quality functions it stands in for."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
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


# ---------------------------------------------------------------- byte-level helpers (quality.bulk) and the clean step

def _strings(rng: random.Random, n: int, alphabet: list[str]) -> list:
    return [None if rng.random() < 0.05 else "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 7)))
            for _ in range(n)]


@pytest.mark.parametrize("mostly_clean", [False, True])  # row_any's two routes: few flagged bytes, many
def test_simple_text_equals_the_regex(mostly_clean):
    rng = random.Random(11)
    values = _strings(rng, 5000, [" ", "  ", "a", "Z", "~", "\x7f", "\x1f", "\t", "é", "\u00a0", "1", "\n"])
    if mostly_clean:
        values = [v if rng.random() < 0.05 else f"HCM-{i}" for i, v in enumerate(values)]
    whole = pa.array(values, type=pa.large_string())
    for arr in (whole, whole.slice(7, 3000), pa.array(values, type=pa.string()), whole.slice(3, 0),
                pa.array([None, ""], type=pa.large_string())):
        assert (vector.simple_text(arr) == vector.mask(arr, vector._SIMPLE_TEXT)).all()
        # pseudonyms' plain messages: runs of spaces allowed inside, none first or last
        assert (vector.simple_text(arr, space_runs=True)
                == vector.mask(arr, r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")).all()


def test_byte_helpers():
    from quality import bulk

    rng = random.Random(12)
    values = _strings(rng, 3000, ["0", "7", " ", ".", "-", "+", "x", "ệ"])
    arr = pa.array(values, type=pa.large_string()).slice(5)
    values = values[5:]
    offsets, data = bulk.byte_view(arr)
    assert [None if v is None else data[offsets[i]:offsets[i + 1]].tobytes().decode() for i, v in enumerate(values)] \
        == values
    assert bulk.digit_rows(arr).tolist() == [v is not None and all(c in "07" for c in v) for v in values]
    for flags in (data == ord("x"), data != ord("0")):  # sparse and dense
        assert bulk.row_any(offsets, flags).tolist() == [
            bool(flags[offsets[i]:offsets[i + 1]].any()) for i in range(len(values))]
        at = np.flatnonzero(flags)
        assert (bulk.rows_of(offsets, at) == np.searchsorted(offsets, at, side="right") - 1).all()
    first = bulk.head(arr, 2)
    for prefix in ("0", "07", "x"):
        assert bulk.starts(first, prefix).tolist() == [v is not None and v.startswith(prefix) for v in values]
    separators = np.flatnonzero(np.isin(data, list(b" .-")))
    assert bulk.remove_bytes(arr, separators).to_pylist() == [
        None if v is None else v.replace(" ", "").replace(".", "").replace("-", "") for v in values]
    ascii_rows = np.array([v is not None and v[:2].isascii() and len(v) >= 2 for v in values])
    cut = np.where(ascii_rows, 2, 0)
    head = np.zeros((3, len(values)), dtype=np.uint8)
    head[:] = np.frombuffer(b"+84", dtype=np.uint8)[:, None]
    size = np.where(ascii_rows, 3, 0)
    assert bulk.splice(arr, cut, head, size).to_pylist() == [
        None if v is None else ("+84" + v[2:] if ok else v) for v, ok in zip(values, ascii_rows)]


def _messy_column(rng: random.Random, col_type: str, n: int) -> pd.Series:
    edge = EDGE + ["Trực tiếp", " trực  tuyến", unicodedata.normalize("NFD", "Bưu chính công ích"), "BCCI"]
    pools = {
        "date": ["01/10/2026", "31/02/2026", "29/02/2024", "1/2/2026", "2026-10-01", "01.10.2026", "05/10/2026 08:30",
                 "00/10/2026", "01/13/2026", "01/10/1899", " 05/10/2026 ", "x"],
        "datetime": ["01/10/2026 08:30", "01/10/2026 25:00", "2026-10-01T08:30:15", "01/10/2026", "x"],
        "integer": ["1.234.567", "1.234,5", "12", "-5", "1 000", "abc", "1.23"],
        "decimal": ["1.234,5", "12,25", "-0,5", "1.2.3", "7"],
        "boolean": ["Có", "không", "x", "1", "0", "đúng", "sai", "maybe"],
        "phone": ["0903 123 456", "01623456789", "+84 28 3829 6052", "84903123456", "12345", "+1 650 253 0000",
                  "0909682180", "0283 829 6052"],
        "citizen_id": ["079085001234", "079 085 001 234", "023456789", "000000000", "O79085001234", "12345"],
        "tax_code": ["0100109106", "0100109106-001", "0100109107", "0100 109 106", "079085001234", "x"],
        "text": ["Hồ sơ", "ASCII", "Trực tiếp"],
    }
    pool = pools[col_type] + edge
    distinct = [rng.choice(pool) for _ in range(60)]
    return pd.Series([rng.choice(distinct) for _ in range(n)], dtype="str")


@pytest.mark.parametrize("col_type", ["text", "date", "datetime", "integer", "decimal", "boolean", "phone",
                                      "citizen_id", "tax_code", "values"])
def test_clean_column_once_per_distinct_value_equals_every_row(col_type, monkeypatch):
    from assets.contract import Column

    spec = {"type": "text" if col_type == "values" else col_type, "description": "x", "headers": ["h"]}
    if col_type == "values":
        spec["values"] = {"Trực tiếp": "truc_tiep", "Trực tuyến": "truc_tuyen", "BCCI": "buu_chinh"}
    col = Column.model_validate(spec)
    raw = _messy_column(random.Random(13), "text" if col_type == "values" else col_type, 5 * clean._SAMPLE)
    raw.index = range(100, 100 + len(raw))
    assert clean._distinct(raw) is not None
    fast = clean.clean_column("c", col, raw)
    monkeypatch.setattr(clean, "_distinct", lambda text: None)
    slow = clean.clean_column("c", col, raw)
    assert fast[0].dtype == slow[0].dtype and fast[0].index.equals(slow[0].index)
    assert fast[0].name == slow[0].name
    assert [(type(v), v) if not pd.isna(v) else None for v in fast[0]] == \
        [(type(v), v) if not pd.isna(v) else None for v in slow[0]]
    assert [(m.tolist(), c) for m, c in fast[1]] == [(m.tolist(), c) for m, c in slow[1]]


def test_absent_column_is_cleaned_once():
    from assets.contract import Column

    n = 5 * clean._SAMPLE
    for col_type in ("text", "date", "integer", "phone"):
        col = Column.model_validate({"type": col_type, "description": "x", "headers": ["h"]})
        got, failures = clean.clean_column("c", col, pd.Series([None] * n, dtype=object))
        want, want_failures = clean._clean_column("c", col, pd.Series([None] * n, dtype=object), "vi")
        assert got.dtype == want.dtype and got.isna().all() and len(got) == n
        assert [(m.tolist(), c) for m, c in failures] == [(m.tolist(), c) for m, c in want_failures]


def test_reasons_are_joined_as_reasons_does():
    rng = np.random.default_rng(14)
    n = 500
    initial = pd.Series(rng.choice(np.array([None, "", "wrong_column_count", "bad_encoding"], dtype=object), n),
                        dtype=object)
    failures = [(rng.random(n) < 0.1, f"code_{i}:col") for i in range(6)]
    for start in (initial, None):
        want = clean.Reasons(n, start)
        for mask, code in failures:
            want.add(mask, code)
        got = clean._reasons(n, start, failures)
        assert got.dtype == object and got.tolist() == want.series(range(n)).tolist()


def test_period_keys_once_per_distinct_day():
    import datetime as dt

    from assets.contract import CONTRACTS_DIR, load_contract
    from assets.periods import _stamp_keys, period_keys

    contract = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
    for values in ([dt.date(2026, 10, 31), None, dt.date(2026, 11, 1), np.nan, dt.date(2026, 10, 31)],
                   [dt.date(2026, 1, 1), dt.datetime(2026, 1, 31, 23, 0)], [None, None], [],
                   ["2026-01-05", "2026-02-01"], [pd.Timestamp("2026-01-31 20:00", tz="UTC"), None]):
        s = pd.Series(values, dtype=object, name="ngay").set_axis(range(3, 3 + len(values)))
        got, want = period_keys(contract, s), _stamp_keys(contract, s)
        assert got.equals(want) and got.index.equals(want.index) and got.name == want.name


def test_integers_too_large_for_exact_storage_are_refused_not_rounded():
    """1.000.000.000.000.000.000.000 used to crash the Int64 cast; 2**53 + 1 would be rounded by float64."""
    import pandas as pd

    from assets.clean import _parse_numbers

    text = pd.Series(["1.000.000.000.000.000.000.000", "9.007.199.254.740.993", "9.007.199.254.740.991", "12"],
                     dtype="str")
    values, bad = _parse_numbers(text, integer=True, style="vi")
    assert bad.tolist() == [True, True, False, False]
    assert values.tolist()[2:] == [2 ** 53 - 1, 12] and values.isna().tolist()[:2] == [True, True]
