"""CSV exports read a slice at a time (assets.extract.extract_slices): the slices joined are what one read gives,
whatever the encoding, line ends, quoting, blank lines or rejected rows, with chunks cut anywhere.

The expected rows are built with the file (values, reasons, original text, the line each record starts on),
independently of the reader; files are written with the real codecs (assets.extract.encoding.encode)."""

from __future__ import annotations

import os
import unicodedata
from unittest.mock import patch

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assets.extract.csv as csv_reader
from assets.contract import Contract, Format
from assets.errors import ExportError
from assets.extract import extract, extract_slices
from assets.extract.base import ROW_COLUMN
from assets.extract.csv import ORIGINAL, REASONS
from assets.extract.encoding import SAMPLE_BYTES, decode, encode

COLUMNS = {"ma": ["Mã", "Mã hồ sơ"], "ten": ["Tên", "Họ tên"], "ghi_chu": ["Ghi chú"], "dia_chi": ["Địa chỉ"]}
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1258", "tcvn3", "vni", "viscii"]
# Phrases every legacy encoding holds and gives back as written (TCVN3 writes toned capitals with lowercase codes:
# an all-capitals phrase comes back, a title-case toned capital would not, so there is none).
PHRASES = ["Nguyễn Văn Hoà", "Trần Thị Thuỷ", "Lê Văn Tám", "Phường Bến Thành", "Đặc khu Côn Đảo", "ĐƯỜNG LÊ LỢI",
           "Hồ Chí Minh", "ghi chú", "Số 12", "Tổng cộng", "abc", "hồ sơ đã tiếp nhận"]
EXAMPLES = int(os.environ.get("KHO_SLICES_EXAMPLES", 200))


def contract(encoding: str | None = None, delimiter: str | None = None) -> Contract:
    return Contract.model_validate({
        "dataset": "ho_so_thu", "title": "Hồ sơ (kiểm thử)", "description": "test",
        "department": {"code": "trung_tam_hcc", "name": "Trung tâm"}, "landing": "trung_tam_hcc/x/*.csv",
        "format": {"type": "csv", "encoding": encoding, "delimiter": delimiter},
        "columns": {name: {"description": name, "headers": headers, "required": name == "ma"}
                    for name, headers in COLUMNS.items()},
    })


def read_slices(c: Contract, source, rows: int, chunk: int) -> tuple[list[pd.DataFrame], object]:
    with patch.object(csv_reader, "CHUNK_BYTES", chunk):
        frames, report = extract_slices(c, source, "x.csv", rows)
        return list(frames), report


def joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


def as_objects(frame: pd.DataFrame) -> list[dict]:
    frame = frame.astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


# ---- files built with what they must give ----------------------------------------------------------------------

@st.composite
def exports(draw):
    """(bytes, encoding named in the contract or None, delimiter or None, expected rows, expected encoding)."""
    enc = draw(st.sampled_from(ENCODINGS))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r\n", "\r"]))
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    names = ["ma", *draw(st.lists(st.sampled_from(["ten", "ghi_chu", "dia_chi"]), unique=True))]
    header = [draw(st.sampled_from(COLUMNS[n])) for n in names]
    unknown = draw(st.booleans())
    if unknown:
        names, header = [*names, None], [*header, "Cột lạ"]
    order = draw(st.permutations(range(len(names))))
    names, header = [names[i] for i in order], [header[i] for i in order]
    width = len(header)

    def cell() -> str:
        kind = draw(st.sampled_from(["phrase"] * 6 + ["empty", "lines", "quote", "delim", "blank_inside", "nfd"]))
        text = draw(st.sampled_from(PHRASES))
        return {"phrase": text, "empty": "", "lines": text + eol + draw(st.sampled_from(PHRASES)),
                "quote": f'{text} "{text}"', "delim": f"{text}{delim} {text}", "blank_inside": text + eol + eol + "x",
                "nfd": unicodedata.normalize("NFD", text) if enc.startswith("utf") else text}[kind]

    def quoted(value: str) -> str:
        if any(c in value for c in (delim, '"', "\r", "\n")) or draw(st.integers(0, 9)) == 0:
            return '"' + value.replace('"', '""') + '"'
        return value

    before = draw(st.integers(0, 2))
    lines, line, expected = [""] * before + [delim.join(quoted(h) for h in header)], before + 2, []
    for i in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["good"] * 8 + ["bad", "blank", "empty_record"]))
        if kind == "blank":
            text = ""
        elif kind == "bad":
            fields = draw(st.integers(1, width + 2).filter(lambda k: k != width))
            text = delim.join([f"B{i}"] + ["x"] * (fields - 1))
            expected.append({**dict.fromkeys(COLUMNS), ROW_COLUMN: line,
                             REASONS: f"wrong_column_count(expected {width})", ORIGINAL: text})
        elif kind == "empty_record":
            text = delim * (width - 1) if width > 1 else '""'
            expected.append({**dict.fromkeys(COLUMNS), ROW_COLUMN: line, REASONS: None, ORIGINAL: None})
        else:
            values = {n: (f"R{i}" if n == "ma" else cell()) for n in names}
            text = delim.join(quoted(values[n]) for n in names)
            expected.append({**{c: unicodedata.normalize("NFC", values[c]) or None if c in values else None
                                for c in COLUMNS}, ROW_COLUMN: line, REASONS: None, ORIGINAL: None})
        lines.append(text)
        line += 1 + text.count("\r\n") + text.replace("\r\n", "").count("\r") + text.replace("\r\n", "").count("\n")
    text = eol.join(lines) + draw(st.sampled_from([eol, eol, "", eol * 3]))
    data = encode(text, enc)
    named = enc if enc in ("cp1258", "tcvn3", "vni", "viscii") or draw(st.booleans()) else None
    used = "utf-8-sig" if enc == "utf-8-sig" or (named == "utf-8" and data.startswith(b"\xef\xbb\xbf")) else enc
    notes = []
    if unknown:
        notes.append("columns not in the contract, ignored: Cột lạ")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        notes.append(f"optional columns absent from the file, left empty: {', '.join(missing)}")
    given = delim if width == 1 else draw(st.sampled_from([None, delim]))  # one column: nothing to sniff
    return data, named, given, expected, used, notes


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(case=exports(), chunk=st.sampled_from([1, 16, 64, 300, 1 << 20]))
def test_slices_give_the_rows_the_file_holds(case, chunk):
    data, named, delim, expected, used, notes = case
    c = contract(named, delim)
    whole = extract(c, data, "x.csv")
    assert as_objects(whole.frame) == expected  # values (NFC), reasons, original text, lines: as built
    assert (whole.encoding, whole.notes) == (used, notes)
    assert decode(data, "x.csv", named)[1] == used

    frames, report = read_slices(c, data, 7, chunk)
    assert [len(f) for f in frames[:-1]] == [7] * (len(frames) - 1) and 0 < len(frames[-1]) <= 7 or \
        (len(frames) == 1 and not expected)
    pd.testing.assert_frame_equal(joined(frames), whole.frame)  # the same, to the dtype
    assert (report.encoding, report.notes) == (used, notes)


# ---- exact rows in the usual files, across chunks ------------------------------------------------------------------

def test_usual_file_numbers_every_record_by_its_line_across_slices_and_chunks(tmp_path):
    rows = [f'HS{i},"Tên {i}",' + ('"hai\r\ndòng"' if i % 5 == 0 else "x") for i in range(2000)]
    rows[777] = "HS-lỗi"
    path = tmp_path / "a.csv"
    path.write_bytes(("\r\n".join(["Mã,Tên,Ghi chú", *rows]) + "\r\n").encode("utf-8"))
    frames, report = read_slices(contract(), path, 300, 4096)
    got = joined(frames)
    assert [len(f) for f in frames] == [300] * 6 + [200]
    # a record starts after the header and the lines of the records before it (2 for each multi-line one)
    expected = [2 + i + (i + 4) // 5 for i in range(2000)]
    assert got[ROW_COLUMN].tolist() == expected
    assert got.loc[777, REASONS] == "wrong_column_count(expected 3)" and got.loc[777, ORIGINAL] == "HS-lỗi"
    assert got["ghi_chu"].tolist()[:2] == ["hai\r\ndòng", "x"]
    assert report.notes == ["optional columns absent from the file, left empty: dia_chi"]


def test_a_path_and_bytes_read_the_same(tmp_path):
    text = "Mã;Tên\n" + "".join(f"HS{i};Nguyễn Văn {i}\n" for i in range(100))
    path = tmp_path / "b.csv"
    path.write_bytes(encode(text, "vni"))
    from_path, report = read_slices(contract(), path, 30, 200)
    from_bytes, _ = read_slices(contract(), path.read_bytes(), 30, 1 << 20)
    pd.testing.assert_frame_equal(joined(from_path), joined(from_bytes))
    assert report.encoding == "vni" and len(from_path) == 4


def test_a_file_without_rows_gives_one_empty_slice():
    frames, report = read_slices(contract(), "Mã,Tên\r\n\r\n".encode(), 7, 64)
    assert len(frames) == 1 and frames[0].empty
    assert list(frames[0].columns) == [*COLUMNS, ROW_COLUMN, REASONS, ORIGINAL]
    pd.testing.assert_frame_equal(frames[0], extract(contract(), "Mã,Tên\r\n\r\n".encode(), "x.csv").frame)


# ---- encodings a block at a time ---------------------------------------------------------------------------------

ROWS_TEXT = "".join(f"HS{i},Nguyễn Thị Hoà {i},Phường Bến Thành\n" for i in range(300))


@pytest.mark.parametrize("enc", ["tcvn3", "vni", "viscii", "cp1258"])
def test_an_8bit_file_whose_first_letter_comes_late_is_detected_as_decode_does(enc):
    """decode() judges the encoding on the text around the first byte over 0x7F, wherever it is: here after more
    ASCII than the head sample and many chunks."""
    text = "Mã,Tên,Ghi chú\n" + "".join(f"HS{i},An,x\n" for i in range(SAMPLE_BYTES // 9)) + ROWS_TEXT
    data = encode(text, enc)
    frames, report = read_slices(contract(), data, 5000, 64 << 10)
    assert report.encoding == decode(data, "x.csv")[1] == enc
    got = joined(frames)
    assert got["ten"].iloc[-1] == "Nguyễn Thị Hoà 299" and len(got) == SAMPLE_BYTES // 9 + 300


def test_an_encoding_that_changes_part_way_fails_where_decode_fails():
    data = encode("Mã,Tên,Ghi chú\n" + ROWS_TEXT, "cp1258") + encode(ROWS_TEXT, "vni")
    with pytest.raises(ExportError, match="mark with no letter") as whole:
        decode(data, "x.csv")
    with patch.object(csv_reader, "CHUNK_BYTES", 4096), pytest.raises(ExportError) as sliced:
        frames, _ = extract_slices(contract(), data, "x.csv", 7)
        first = next(frames)  # the first rows come before the bad byte is reached
        assert len(first) == 7
        list(frames)
    assert str(sliced.value) == str(whole.value) and sliced.value.place == "line 302, byte offset 13610"


def test_damaged_utf8_late_in_the_file_fails_during_the_slices_as_decode_does():
    data = ("Mã,Tên,Ghi chú\n" + ROWS_TEXT * 3).encode("utf-8") + b"HS-x,Ph\xe1m,x\n" + ROWS_TEXT.encode("utf-8")
    with pytest.raises(ExportError) as whole:
        decode(data, "x.csv")
    with patch.object(csv_reader, "CHUNK_BYTES", 4096), pytest.raises(ExportError) as sliced:
        frames, _ = extract_slices(contract(), data, "x.csv", 7)
        next(frames)
        list(frames)
    assert str(sliced.value) == str(whole.value)
    assert "yet the rest reads as UTF-8" in str(sliced.value) and sliced.value.place.startswith("line 902,")


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_utf16_split_anywhere_reads_whole(enc):
    text = "Mã,Tên,Ghi chú\r\n" + ROWS_TEXT.replace("\n", "\r\n") + 'HS-q,"Trần\r\nThị",😀\r\n'
    data = encode(text, enc)
    for chunk in (16, 333, 1 << 20):
        frames, report = read_slices(contract(), data, 64, chunk)
        got = joined(frames)
        assert report.encoding == enc and len(got) == 301
        assert got["ten"].iloc[-1] == "Trần\r\nThị" and got["ghi_chu"].iloc[-1] == "😀"
        assert got[ROW_COLUMN].iloc[-1] == 302


def sloppy(text: str) -> str:
    """UTF-8 read as Windows-1252 the way Excel does (the five bytes cp1252 leaves undefined pass through)."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8"))


def test_mojibake_is_repaired_across_chunks_or_refused_as_decode_does():
    text = "Mã,Tên,Ghi chú\n" + ROWS_TEXT
    mangled = sloppy(text).encode("utf-8")  # read as cp1252 and saved again: all of it reads back
    assert decode(mangled, "x.csv")[0] == text
    frames, report = read_slices(contract(), mangled, 50, 2048)
    assert joined(frames)["ten"].iloc[-1] == "Nguyễn Thị Hoà 299" and report.encoding == "utf-8"
    # clean Vietnamese first, mojibake later: not one text that reads back
    lines = text.split("\n")
    lines[250] = sloppy(lines[250])
    mixed = "\n".join(lines).encode("utf-8")
    with pytest.raises(ExportError) as whole:
        decode(mixed, "x.csv")
    with patch.object(csv_reader, "CHUNK_BYTES", 2048), pytest.raises(ExportError) as sliced:
        frames, _ = extract_slices(contract(), mixed, "x.csv", 50)
        list(frames)
    assert str(sliced.value) == str(whole.value) and sliced.value.place == "line 251"


def test_a_control_character_late_in_the_file_names_its_line():
    data = ("Mã,Tên,Ghi chú\n" + ROWS_TEXT[:5000] + "HS-c,An\x07,x\n" + ROWS_TEXT[5000:]).encode("utf-8")
    with pytest.raises(ExportError) as whole:
        decode(data, "x.csv")
    with patch.object(csv_reader, "CHUNK_BYTES", 1024), pytest.raises(ExportError) as sliced:
        list(extract_slices(contract(), data, "x.csv", 7)[0])
    assert str(sliced.value) == str(whole.value) and "U+0007" in str(sliced.value)


# ---- errors: before the first slice, or while the slices are read -------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b" \r\n\t\r\n", "the file is empty"),
    ("Tên,Ghi chú\nAn,x\n".encode(), r"required column\(s\) missing"),
    ("Код;Название\r\n1;Больница\r\n".encode("cp1251"), "does not read as text in any supported encoding"),
    (b"\xff\xfe" + "Mã,Tên\n".encode("utf-16-le"), "contract says utf-8"),
])
def test_header_encoding_and_empty_files_fail_before_the_first_slice(data, message):
    c = contract("utf-8") if message == "contract says utf-8" else contract()
    with pytest.raises(ExportError, match=message) as e:
        extract_slices(c, data, "x.csv", 7)
    assert e.value.file == "x.csv"


def test_a_file_cut_inside_a_quoted_field_fails_after_the_rows_before_it(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(("Mã,Tên,Ghi chú\r\n" + ROWS_TEXT.replace("\n", "\r\n") + 'HS-z,An,"không đóng\r\n').encode())
    with patch.object(csv_reader, "CHUNK_BYTES", 1024):
        frames, _ = extract_slices(contract(), path, "x.csv", 100)
        assert len(next(frames)) == 100
        with pytest.raises(ExportError, match="never closed") as e:
            list(frames)
    assert e.value.place == "line 302"
    # the whole-file read says the same
    with pytest.raises(ExportError, match="never closed") as whole:
        extract(contract(), path.read_bytes(), "x.csv")
    assert whole.value.place == "line 302"


def test_a_quoted_cell_spanning_many_chunks_is_read_whole():
    long = "dòng\n" * 5000
    data = ('Mã,Tên,Ghi chú\nHS1,An,"' + long + '"\nHS2,Bình,x\n').encode("utf-8")
    frames, _ = read_slices(contract(), data, 7, 512)
    got = joined(frames)
    assert got["ghi_chu"].iloc[0] == long and got[ROW_COLUMN].tolist() == [2, 5003]


def test_a_record_longer_than_an_arrow_block_is_read():
    big = "x" * (6 << 20)  # Arrow parses 4 MB blocks
    data = f'Mã,Tên,Ghi chú\nHS1,An,"{big}"\nHS2,B,{big}\nHS3,C,"a\nb"\n'.encode()
    for chunk in (1 << 20, 16 << 20):
        got = joined(read_slices(contract(), data, 7, chunk)[0])
        assert got["ghi_chu"].str.len().tolist() == [6 << 20, 6 << 20, 3] and got[ROW_COLUMN].tolist() == [2, 3, 4]


# ---- other formats: read whole, then sliced ----------------------------------------------------------------------

def test_json_exports_are_sliced_too():
    import json

    c = contract().model_copy(update={"format": Format(type="json")})
    data = json.dumps([{"Mã": f"HS{i}", "Tên": f"Tên {i}"} for i in range(20)]).encode()
    frames, report = extract_slices(c, data, "x.json", 7)
    frames = list(frames)
    assert [len(f) for f in frames] == [7, 7, 6] and report.encoding == "utf-8"
    pd.testing.assert_frame_equal(joined(frames), extract(c, data, "x.json").frame)


# ---- where the whole-text reader was wrong -----------------------------------------------------------------------

def test_a_blank_line_before_a_record_cut_short_at_the_end_does_not_shift_the_rows():
    """The whole-text reader counted the blank line (line 4) as the line break inside the last, unclosed record."""
    data = 'Mã,Tên,Ghi chú\nHS1,An,x\nHS2,Bình,y\n\nHS3,Chi,z\nHS4,"không đóng\n\n'.encode()
    got = extract(contract(), data, "x.csv").frame
    assert got[ROW_COLUMN].tolist() == [2, 3, 5, 6]
    assert got[REASONS].tolist()[-1] == "wrong_column_count(expected 3)"
    assert got[ORIGINAL].tolist()[-1] == 'HS4,"không đóng\n'


def test_a_closed_last_cell_holding_only_a_line_end_is_not_taken_for_an_unclosed_quote():
    """The whole-text reader guessed from the end of the text; the parse tells."""
    data = 'Mã,Tên,Ghi chú\r\nHS1,An,"\r\n"\r\n'.encode()
    got = extract(contract(), data, "x.csv").frame
    assert got["ghi_chu"].tolist() == ["\r\n"] and got[ROW_COLUMN].tolist() == [2]
