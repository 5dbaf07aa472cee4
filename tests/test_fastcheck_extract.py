"""The big-file paths of the CSV reader (RE2 prescan, per-cell NFC, the file's own bytes to Arrow) give what the
whole-text path gives: the same frame, the same errors, the same mojibake repair."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from assets.errors import ExportError
from assets.extract import encoding
from assets.extract.csv import read_csv

COLUMNS = {"ma": ["Mã"], "ten": ["Tên", "Họ tên"], "ghi_chu": ["Ghi chú"]}


def _rows(n: int) -> list[str]:
    names = ["Nguyễn Văn Hoà", "Trần Thị Thuỷ", "Lê  An ", "Phạm\u00a0Bình", "x", ""]
    out = []
    for i in range(n):
        name = names[i % len(names)]
        if i % 3 == 0:
            name = unicodedata.normalize("NFD", name)
        out.append(f'HS{i},"{name}",ghi chú {i % 7}')
    return out


def _file(rows: list[str], header: str = "Mã,Họ tên,Ghi chú", bom: bool = True, nfd_header: bool = True) -> bytes:
    if nfd_header:
        header = unicodedata.normalize("NFD", header)
    text = "\r\n".join([header, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def _read(data: bytes, whole_text: bool, monkeypatch) -> pd.DataFrame:
    with monkeypatch.context() as m:
        if whole_text:
            m.setattr(encoding, "_PRESCAN_CHARS", 1 << 62)
        return read_csv(data, "x.csv", COLUMNS, {"ma"}).frame


@pytest.mark.parametrize("bom", [True, False])
def test_big_file_reads_like_the_whole_text_path(monkeypatch, bom):
    data = _file(_rows(40_000), bom=bom) + b'HS-bad,"one","two","three"\r\n'
    assert len(data) > encoding._PRESCAN_CHARS
    fast, slow = _read(data, False, monkeypatch), _read(data, True, monkeypatch)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["ten"].dropna().map(lambda v: unicodedata.is_normalized("NFC", v)).all()
    assert fast["_kho_original"].notna().sum() == 1


def test_big_file_with_a_control_character_fails_the_same(monkeypatch):
    rows = _rows(40_000)
    rows[30_000] = "HS1,bad\x07name,x"
    data = _file(rows)
    errors = []
    for whole in (False, True):
        with pytest.raises(ExportError) as e:
            _read(data, whole, monkeypatch)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "U+0007" in errors[0]


@pytest.mark.parametrize("damage", ["all", "part"])
def test_big_file_with_mojibake_is_repaired_or_refused_the_same(monkeypatch, damage):
    rows = _rows(40_000)
    text = "\r\n".join(["Mã,Họ tên,Ghi chú", *rows]) + "\r\n"
    if damage == "all":
        data = text.encode("utf-8").decode("cp1252", errors="ignore").encode("utf-8")
    else:
        rows[20_000] = "HS1,Cáº¥p,x"
        data = ("\r\n".join(["Mã,Họ tên,Ghi chú", *rows]) + "\r\n").encode("utf-8")
    outcomes = []
    for whole in (False, True):
        try:
            outcomes.append(_read(data, whole, monkeypatch))
        except ExportError as e:
            outcomes.append(str(e))
    if isinstance(outcomes[0], str):
        assert outcomes[0] == outcomes[1]
    else:
        pd.testing.assert_frame_equal(outcomes[0], outcomes[1])
