"""The CSV reader reads a file in chunks (assets.extract.csv.CHUNK_BYTES) and must give what one Arrow read of the
whole decoded text gives (its module's contract): the same rows, cells in NFC, the same errors, the same mojibake
repair. The reference here is built without the reader: decode() of the whole file, then one pyarrow.csv read of
that text (every column as text, empty cells null), NFC per cell, the header mapped to the contract's columns; the
line each record starts on comes from the rows the test wrote. The chunk size is made small, so a file of 700 kB
is read in over ten (up to a few hundred) chunks, and chunk boundaries fall next to and inside quoted multi-line
cells."""

from __future__ import annotations

import io
import unicodedata

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from assets.errors import ExportError
from assets.extract import encoding
from assets.extract.csv import read_csv
from tests.conftest import chunked_reads

COLUMNS = {"ma": ["Mã"], "ten": ["Tên", "Họ tên"], "ghi_chu": ["Ghi chú"]}
HEADER = "Mã,Họ tên,Ghi chú"
CONTRACT_NAMES = {h: name for name, headers in COLUMNS.items() for h in headers}  # header (NFC) -> column
EXTRA = ["_kho_row", "_kho_reasons", "_kho_original"]
BAD_ROW = unicodedata.normalize("NFD", 'HS-lỗi,"một","hai","ba"')  # 4 cells: rejected, kept with its text (NFC)
N = 20_000  # rows: about 700 kB, 150 chunks of 4 kB


def _rows(n: int) -> list[str]:
    """Records of one line each, but every 13th, whose note is a quoted cell of two lines with an escaped quote."""
    names = ["Nguyễn Văn Hoà", "Trần Thị Thuỷ", "Lê  An ", "Phạm\u00a0Bình", "x", ""]
    out = []
    for i in range(n):
        name = names[i % len(names)]
        if i % 3 == 0:
            name = unicodedata.normalize("NFD", name)
        note = f'"ghi chú {i}\r\ndòng ""hai"""' if i % 13 == 0 else f"ghi chú {i % 7}"
        out.append(f'HS{i},"{name}",{note}')
    return out


def _text(rows: list[str]) -> str:
    return "\r\n".join([HEADER, *rows]) + "\r\n"


def _file(rows: list[str], bom: bool = True) -> bytes:
    text = unicodedata.normalize("NFD", HEADER) + _text(rows)[len(HEADER):]  # the header in NFD too
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def _first_lines(rows: list[str]) -> list[int]:
    """The line of the file each row starts on (the header is line 1), counted on what the test wrote."""
    out, line = [], 2
    for row in rows:
        out.append(line)
        line += 1 + row.count("\r\n")
    return out


def _reference(data: bytes, lines: list[int]) -> list[dict]:
    """decode() of the whole file, one Arrow read of that text, NFC per cell, contract names: the records in file
    order (`lines`: where each record starts)."""
    text, _ = encoding.decode(data, "x.csv", None)
    width = len(HEADER.split(","))
    rejected = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        rejected.append((row.number, row.text))  # number: 1-based, the header is record 1
        return "skip"

    raw = [f"c{i}" for i in range(width)]
    table = pacsv.read_csv(  # the header is read as the first record
        io.BytesIO(text.encode("utf-8")),
        read_options=pacsv.ReadOptions(column_names=raw, use_threads=False),  # (rejected records numbered)
        parse_options=pacsv.ParseOptions(delimiter=",", newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in raw}, strings_can_be_null=True,
                                             null_values=[""], quoted_strings_can_be_null=True),
    )
    nfc = (lambda v: None if v is None else unicodedata.normalize("NFC", v))
    header, *records = table.to_pylist()
    names = [CONTRACT_NAMES[nfc(h)] for h in header.values()]
    assert sorted(names) == sorted(COLUMNS)
    good = iter(records)
    bad = {number - 2: t for number, t in rejected}  # -> 0-based index among the records after the header
    assert len(lines) == len(records) + len(bad)
    out = []
    for i, line in enumerate(lines):
        if i in bad:
            out.append({**dict.fromkeys(COLUMNS), "_kho_row": line,
                        "_kho_reasons": f"wrong_column_count(expected {width})", "_kho_original": nfc(bad[i])})
        else:
            cells = {name: nfc(v) for name, v in zip(names, next(good).values())}
            out.append({**{c: cells[c] for c in COLUMNS}, "_kho_row": line, "_kho_reasons": None,
                        "_kho_original": None})
    return out


def _read_in_chunks(data: bytes, chunk: int, monkeypatch) -> tuple[list[dict], int]:
    """The reader's records with CHUNK_BYTES = `chunk`, and how many chunks it read."""
    with chunked_reads(monkeypatch, chunk) as chunks:
        frame = read_csv(data, "x.csv", COLUMNS, {"ma"}).frame
    assert list(frame.columns) == [*COLUMNS, *EXTRA]
    frame = frame.astype(object)
    records = frame.where(frame.notna(), None).to_dict("records")
    for r in records:
        r["_kho_row"] = int(r["_kho_row"])
    return records, len(chunks)


def _error_of(call) -> ExportError:
    with pytest.raises(ExportError) as e:
        call()
    return e.value


@pytest.mark.parametrize("chunk", [4096, 50_000])
@pytest.mark.parametrize("bom", [True, False])
def test_a_file_read_in_chunks_gives_one_read_of_the_decoded_text(monkeypatch, bom, chunk):
    rows = [*_rows(N), BAD_ROW]
    data = _file(rows, bom=bom)
    got, chunks = _read_in_chunks(data, chunk, monkeypatch)
    assert chunks > 10 and chunks >= len(data) // chunk // 2  # really read a chunk at a time
    expected = _reference(data, _first_lines(rows))
    assert len(got) == len(expected) == N + 1
    for g, e in zip(got, expected):  # (a mismatch names its record, not a 20,000-row diff)
        assert g == e
    # what the reference stands for, by construction: names in NFC, the multi-line notes whole, one rejected row
    assert got[0]["ten"] == "Nguyễn Văn Hoà" and got[3]["ten"] == "Phạm\u00a0Bình" and got[5]["ten"] is None
    assert got[18_993]["ghi_chu"] == 'ghi chú 18993\r\ndòng "hai"'
    assert got[18_994]["_kho_row"] == 2 + 18_994 + 1462  # (two lines each: rows 0, 13, ..., 18993)
    assert [r["_kho_original"] for r in got if r["_kho_reasons"]] == ['HS-lỗi,"một","hai","ba"']


def test_a_control_character_in_a_late_chunk_fails_as_decode_does(monkeypatch):
    rows = _rows(N)
    rows[15_000] = "HS1,bad\x07name,x"
    data = _file(rows)
    whole = _error_of(lambda: encoding.decode(data, "x.csv", None))
    got = _error_of(lambda: _read_in_chunks(data, 4096, monkeypatch))
    line = _first_lines(rows)[15_000]
    assert str(got) == str(whole)
    assert got.file == "x.csv" and got.place == f"line {line}" and "control character U+0007" in got.reason


def sloppy(text: str) -> str:
    """UTF-8 read as Windows-1252 the way Excel does (the five bytes cp1252 leaves undefined pass through)."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8"))


@pytest.mark.parametrize("damage", ["all", "lossy", "first", "part"])
def test_mojibake_read_in_chunks_is_repaired_or_refused_as_decode_does(monkeypatch, damage):
    rows = _rows(N)
    if damage == "all":  # every line mangled once, and every byte kept: it reads back
        data = sloppy(_text(rows)).encode("utf-8")
    elif damage == "lossy":  # the bytes cp1252 leaves undefined dropped: it does not read back (the header already)
        data = _text(rows).encode("utf-8").decode("cp1252", errors="ignore").encode("utf-8")
    elif damage == "first":  # the header and rows 0-999 mangled, then ASCII rows (over two chunks), then chunks of
        # clean Vietnamese only: no mojibake in them, yet they must read back like the text before, and cannot
        rows[1000:1400] = [f"HS{i},An,ghi chu" for i in range(1000, 1400)]
        text = _text(rows)
        cut = text.index("\r\nHS1000,") + 2
        data = (sloppy(text[:cut]) + text[cut:]).encode("utf-8")
    else:  # clean Vietnamese, and one mangled line in a late chunk
        rows[15_000] = "HS1,Cáº¥p,x"
        data = _text(rows).encode("utf-8")
    if damage == "all":
        got, chunks = _read_in_chunks(data, 8192, monkeypatch)  # (repairing is slower: fewer chunks)
        assert chunks > 10
        expected = _reference(data, _first_lines(rows))
        assert len(got) == len(expected) == N
        for g, e in zip(got, expected):
            assert g == e
        assert got[0]["ten"] == "Nguyễn Văn Hoà" and got[13]["ghi_chu"] == 'ghi chú 13\r\ndòng "hai"'
        return
    whole = _error_of(lambda: encoding.decode(data, "x.csv", None))
    got = _error_of(lambda: _read_in_chunks(data, 4096, monkeypatch))
    assert str(got) == str(whole)
    assert got.file == "x.csv" and got.reason.startswith("mojibake ") and "cannot be repaired" in got.reason
    assert got.place == ("line 1" if damage in ("lossy", "first") else f"line {_first_lines(rows)[15_000]}")
