"""`_kho_row` of a CSV record is the 1-based line of the file the record starts on, whatever lies before it:
rejected rows (wrong column count), quoted cells spanning lines, blank lines, lines before the header, any line
ending, chunks of the reader cut anywhere. And a byte-order mark left at the start of a header cell does not hide
the column."""

from __future__ import annotations

import os
import unicodedata

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.extract.csv import read_csv
from tests.conftest import chunked_reads

COLUMNS = {"ma": ["Mã"], "ten": ["Tên"], "ghi_chu": ["Ghi chú"]}
HEADER = "Mã,Tên,Ghi chú"


def _read(text: str | bytes) -> pd.DataFrame:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return read_csv(data, "x.csv", COLUMNS, {"ma"}).frame


def _lines(frame: pd.DataFrame) -> dict:
    """Good rows by code -> line; rejected rows by their text -> line."""
    good = frame[frame["_kho_reasons"].isna()]
    bad = frame[frame["_kho_reasons"].notna()]
    return {**dict(zip(good["ma"], good["_kho_row"].astype(int))),
            **{f"bad:{t}": int(n) for t, n in zip(bad["_kho_original"], bad["_kho_row"])}}


def test_rows_after_a_rejected_row_keep_their_line():
    text = "\n".join([HEADER, "HS1,An,a", "HS2,Bình,b", "HS3 thiếu cột", "HS4,Chi,c", "HS5,Dũng,d,thừa,cột",
                      "HS6,Em,e"]) + "\n"
    assert _lines(_read(text)) == {"HS1": 2, "HS2": 3, "bad:HS3 thiếu cột": 4, "HS4": 5,
                                   "bad:HS5,Dũng,d,thừa,cột": 6, "HS6": 7}


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_quoted_multi_line_cell_does_not_shift_the_rows_after_it(eol):
    lines = [HEADER, "HS1,An,a", f'HS2,Bình,"dòng một{eol}dòng hai{eol}dòng ba"', "HS3 thiếu cột",
             f'HS4,"Chi{eol}Mai",c', "HS5,Dũng,d"]
    frame = _read(eol.join(lines) + eol)
    assert _lines(frame) == {"HS1": 2, "HS2": 3, "bad:HS3 thiếu cột": 6, "HS4": 7, "HS5": 9}
    assert frame.set_index("ma").at["HS2", "ghi_chu"] == f"dòng một{eol}dòng hai{eol}dòng ba"


def test_a_rejected_row_spanning_lines_and_blank_lines_between_records():
    text = "\r\n".join([HEADER, "HS1,An,a", "", '"HS2 thiếu cột', 'vẫn là HS2"', "", "",
                        'HS3,"Bình', '', 'Bảo",b', "HS4,Chi,c", "", ""]) + "\r\n"
    assert _lines(_read(text)) == {"HS1": 2, 'bad:"HS2 thiếu cột\r\nvẫn là HS2"': 4, "HS3": 8, "HS4": 11}


def test_blank_lines_before_the_header_count():
    text = "\r\n".join(["", "", "", HEADER, "HS1,An,a", "HS2 thiếu cột", "HS3,Bình,b"]) + "\r\n"
    assert _lines(_read(text)) == {"HS1": 5, "bad:HS2 thiếu cột": 6, "HS3": 7}


def test_old_mac_line_ends_and_no_final_line_end():
    assert _lines(_read("\r".join([HEADER, "HS1,An,a", "lỗi", 'HS2,"B\rC",b', "HS3,Chi,c"]))) == {
        "HS1": 2, "bad:lỗi": 3, "HS2": 4, "HS3": 6}


@pytest.mark.parametrize("chunk", [1000, 4099])
def test_rows_read_in_chunks_keep_their_line_and_cells(monkeypatch, chunk):
    """The reader parses a chunk of about CHUNK_BYTES at a time (made small here: hundreds of chunks, some cut
    next to or inside a quoted two-line cell): every record keeps the line it starts on and its cells, known by
    construction."""
    n, bad_at = 20_000, 12_345
    rows = [f'HS{i},"Tên {i}",' + ('"hai\r\ndòng"' if i % 7 == 0 else "x") for i in range(n)]
    rows[bad_at] = unicodedata.normalize("NFD", "HS-lỗi")  # kept with its text, in NFC
    data = b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8")
    with chunked_reads(monkeypatch, chunk) as chunks:
        frame = _read(data)
    assert len(chunks) > 100  # really read a chunk at a time
    # row i starts after the header and the rows before it: 1 line each, 2 for the multi-line ones (i % 7 == 0)
    expected = [(None, None, None, 2 + i + (i + 6) // 7, "wrong_column_count(expected 3)", "HS-lỗi") if i == bad_at
                else (f"HS{i}", f"Tên {i}", "hai\r\ndòng" if i % 7 == 0 else "x", 2 + i + (i + 6) // 7, None, None)
                for i in range(n)]
    frame = frame.astype(object)
    got = list(frame.where(frame.notna(), None).itertuples(index=False, name=None))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):  # one record at a time: a diff of 20,000 would take minutes to print
        assert g == e


@pytest.mark.parametrize("text", [
    "\ufeff\ufeffMã,Tên\nHS1,An\n",  # saved twice with a BOM: decode() removes one
    "\n\ufeffMã,Tên\nHS1,An\n",  # a BOM after a blank line is not the file's BOM
    '\n\ufeff"Mã",Tên\nHS1,An\n',  # ... before a quoted header cell
    "Tên,\ufeff Mã \nAn,HS1\n",  # at the start of a later cell
])
def test_a_bom_at_the_start_of_a_header_cell_is_not_part_of_the_name(text):
    frame = _read(text)
    assert frame["ma"].tolist() == ["HS1"] and frame["ten"].tolist() == ["An"]


# ---- any mix: lines known by construction ------------------------------------------------------------------

_cell = st.text(alphabet="ab đ,\"\n\r", max_size=6)
_record = st.one_of(
    st.tuples(st.just("good"), st.lists(_cell, min_size=3, max_size=3)),
    st.tuples(st.just("bad"), st.sampled_from([1, 2, 4])),  # columns: never the header's 3
)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') or not value else value


@settings(max_examples=int(os.environ.get("KHO_CSV_ROWS_EXAMPLES", 150)), deadline=None)
@given(records=st.lists(st.tuples(_record, st.integers(0, 2)), min_size=1, max_size=12),
       eol=st.sampled_from(["\n", "\r\n"]), before=st.integers(0, 2))
def test_any_mix_of_rows_numbers_every_record_by_its_first_line(records, eol, before):
    parts, line, expected = [""] * before + [HEADER], before + 1, []
    for i, ((kind, cells), blanks) in enumerate(records):
        parts += [""] * blanks
        line += blanks
        if kind == "good":
            cells = [f"R{i}", *cells[1:]]
            row = ",".join(_quote(c.replace("\r\n", "\n").replace("\r", "\n").replace("\n", eol)) for c in cells)
        else:
            row = ",".join([f"B{i}", *"xyz"][:cells])
        expected.append((f"R{i}" if kind == "good" else f"bad:{row}", line + 1))
        parts.append(row)
        line += 1 + row.count(eol)
    # a plain last record: assets.extract.csv._unterminated_quote takes a closed last cell holding only line ends
    # (`"\n"` + the final line end) for an unclosed quote running to the end of the file
    expected.append(("Rlast", line + 1))
    parts.append("Rlast,x,y")
    assert _lines(_read(eol.join(parts) + eol)) == dict(expected)
