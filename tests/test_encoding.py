"""Decoding departmental text exports: every supported encoding, detection, NFC, mojibake, junk."""

import shutil
import subprocess
import time
import unicodedata

import pytest

from assets.errors import ExportError
from assets.extract.encoding import ENCODINGS, LEGACY, SAMPLE_BYTES, check_mojibake, decode, encode

# Written out by hand (not taken from the module under test): 12 vowels x 6 tones, minus the 6 plain ASCII
# vowels, plus đ = 67 lowercase letters; with their capitals, the 134 precomposed Vietnamese letters.
LOWER = "".join(c for c in "aàảãáạăằẳẵắặâầẩẫấậeèẻẽéẹêềểễếệiìỉĩíịoòỏõóọôồổỗốộơờởỡớợuùủũúụưừửữứựyỳỷỹýỵđ" if not c.isascii())
UPPER = LOWER.upper()
SENTENCE = "Ủy ban nhân dân Phường Sài Gòn; Nguyễn Thị Hoà; Trần Đức Thuỷ"
TCVN3_CAPS = set(UPPER) - set("ĂÂÊÔƠƯĐ")  # TCVN3 has no codes for these: written with lowercase codes

CSV = (
    "STT,Họ và tên,Địa chỉ,Phường/Xã,Ghi chú\n"
    "1,Nguyễn Thị Hoà,Số 12 đường Lê Lợi,Phường Bến Thành,Đ\n"
    "2,Trần Đức Thuỷ,Khu phố 3,Phường Sài Gòn,Ủy\n"
    "3,Lê Văn Tám,Ấp Bình Lợi,Xã Bình Chánh,\n"
    "4,Huỳnh Thị Ngọc Hương,Tổ 5,Đặc khu Côn Đảo,Đã tiếp nhận hồ sơ\n"
)


def sloppy(text: str, codepage: str) -> str:
    """What a tool does when it reads UTF-8 bytes as `codepage`, passing undefined bytes through."""
    return "".join(bytes([b]).decode(codepage, errors="ignore") or chr(b) for b in text.encode("utf-8"))


def test_letter_list_is_complete():
    assert len(LOWER) == 67 and len(LOWER + UPPER) == 134 and len(set(LOWER + UPPER)) == 134


@pytest.mark.parametrize("name", ["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1258", "vni", "viscii"])
def test_all_letters_round_trip(name):
    text = f"{LOWER}\n{UPPER}\n{SENTENCE}\n"
    data = encode(text, name)
    assert decode(data, "letters.csv", name) == (text, name)


def test_tcvn3_round_trip_and_its_capitals():
    # lowercase and Ă Â Ê Ô Ơ Ư Đ have their own codes: exact
    text = f"{LOWER} ĂÂÊÔƠƯĐ\n"
    assert decode(encode(text, "tcvn3"), "f.csv", "tcvn3") == (text, "tcvn3")
    # every toned capital comes back inside an all-capitals word (the .VnTimeH convention)
    for cap in sorted(TCVN3_CAPS):
        word = f"N{cap}G"
        assert encode(word, "tcvn3") == encode(word.lower(), "tcvn3").replace(b"n", b"N").replace(b"g", b"G")
        assert decode(encode(word, "tcvn3"), "f.csv", "tcvn3")[0] == word
    banner = "ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH\nSỞ TƯ PHÁP\nHỌ VÀ TÊN: LÊ THỊ HỒ\n"
    assert decode(encode(banner, "tcvn3"), "f.csv", "tcvn3")[0] == banner
    # a lone title-case toned capital has no evidence of a capital font: it comes back lowercase
    assert decode(encode(SENTENCE, "tcvn3"), "f.csv", "tcvn3")[0] == "ủ" + SENTENCE[1:]
    # title case and acronyms next to short words are left alone
    for kept in ("UBND Xã Tân Phú", "Hồ Chí Minh", "Sở GD&ĐT", "Đồng Nai"):
        assert decode(encode(kept, "tcvn3"), "f.csv", "tcvn3")[0] == kept


def test_known_byte_layouts():
    # anchors from real documents / published converters, not from our own tables
    assert encode("Xin chào các bạn", "vni") == b"Xin cha\xf8o ca\xf9c ba\xefn"  # "Xin chaøo caùc baïn"
    assert encode("nhà nước; Thông tư", "tcvn3") == b"nh\xb5 n\xad\xedc; Th\xabng t\xad"  # "nhµ n­íc; Th«ng t­"
    assert encode("Việt Nam", "viscii") == b"Vi\xaet Nam"
    assert encode("Việt Nam", "cp1258") == b"Vi\xea\xf2t Nam"  # ê + combining dot below, as Windows writes it
    assert encode("Đ", "utf-16-le") == b"\xff\xfe\x10\x01" and encode("Đ", "utf-16-be") == b"\xfe\xff\x01\x10"


@pytest.mark.skipif(shutil.which("iconv") is None, reason="no iconv on this machine to cross-check with")
def test_cross_check_with_glibc_iconv():
    def iconv(data: bytes, src: str, dst: str) -> bytes:
        return subprocess.run(["iconv", "-f", src, "-t", dst], input=data, capture_output=True, check=True).stdout

    text = f"{LOWER}\n{UPPER}\n{SENTENCE}\n"
    for ours, theirs in (("viscii", "VISCII"), ("cp1258", "CP1258")):
        assert encode(text, ours) == iconv(text.encode(), "UTF-8", theirs)
        assert decode(iconv(text.encode(), "UTF-8", theirs), "f.csv", ours)[0] == text
    # TCVN3 (ABC) = the VN3 part of TCVN5712-1: same bytes for lowercase letters and Ă Â Ê Ô Ơ Ư Đ ...
    small = f"{LOWER} ĂÂÊÔƠƯĐ nhà nước\n"
    assert encode(small, "tcvn3") == iconv(small.encode(), "UTF-8", "TCVN5712-1")
    assert decode(encode(small, "tcvn3"), "f.csv", "tcvn3")[0] == iconv(encode(small, "tcvn3"), "TCVN5712-1", "UTF-8").decode()
    # ... but glibc follows VN1 for toned capitals (0x80-0x9F and C0 slots), which ABC files never use
    caps = "".join(sorted(TCVN3_CAPS))
    assert encode(caps, "tcvn3") == iconv(caps.lower().encode(), "UTF-8", "TCVN5712-1")
    assert encode(caps, "tcvn3") != iconv(caps.encode(), "UTF-8", "TCVN5712-1")


@pytest.mark.parametrize("name", LEGACY)
def test_detects_each_legacy_encoding_in_a_realistic_csv(name):
    text, used = decode(encode(CSV, name), "ho_tich.csv")
    assert used == name
    if name == "tcvn3":  # title-case toned capitals ("Ủy", "Ấp") cannot be told from lowercase in TCVN3
        assert text.lower() == CSV.lower() and "Đặc khu Côn Đảo" in text
    else:
        assert text == CSV
    rows = [line.split(",") for line in text.splitlines()]
    assert rows[1][4] == "Đ" and rows[2][4].lower() == "ủy"


@pytest.mark.parametrize("name", LEGACY)
def test_detects_short_lines(name):
    for line in ("Lê Văn Tám", "Tổng cộng", "Họ và tên", "Ghi chú", "ĐƯỜNG LÊ LỢI, PHƯỜNG BẾN NGHÉ"):
        data = encode(line, name)
        text, used = decode(data, "f.csv")
        assert text.lower() == line.lower()
        # "Ghi chú" is the same bytes in cp1258 and VISCII: either name reads it right
        assert used == name or decode(data, "f.csv", used) == (text, used)


def test_detection_refuses_to_guess_a_lone_letter():
    # one "Đ" is the same byte in cp1258 and VISCII, and "é" in TCVN3: there is nothing to decide on
    with pytest.raises(ExportError, match=r"cannot tell the encoding; name it in the contract \(format.encoding\)"):
        decode(encode("Đ\n", "cp1258"), "mot_chu.csv")
    assert decode(encode("Đ\n", "cp1258"), "mot_chu.csv", "cp1258")[0] == "Đ\n"


def test_detection_reads_whole_file_beyond_the_sample():
    data = encode(CSV * (2 * SAMPLE_BYTES // len(CSV) + 1), "vni")
    assert len(data) > SAMPLE_BYTES
    text, used = decode(data, "lon.csv")
    assert used == "vni" and text.endswith(CSV)


def test_detection_looks_past_a_long_ascii_head():
    head = "MA_HS,SO\n" + "HS0001,12345\n" * (SAMPLE_BYTES // 13 + 10)  # more ASCII than one sample
    text, used = decode(encode(head + CSV, "viscii"), "dai.csv")
    assert used == "viscii" and text == head + CSV


def test_cp1258_combining_tones_end_nfc():
    data = b"Vi\xea\xf2t Nam, Hoa\xcc, Thuy\xd2, Nguy\xea\xden"  # ê+dot, a+grave, y+hook, ê+tilde
    text, used = decode(data, "f.csv", "cp1258")
    assert text == "Việt Nam, Hoà, Thuỷ, Nguyễn" and unicodedata.is_normalized("NFC", text)
    assert len(text) == len("Việt Nam, Hoà, Thuỷ, Nguyễn")  # precomposed, not base + mark
    assert decode(data, "f.csv") == (text, "cp1258")


@pytest.mark.parametrize("name", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(name):
    data = encode(CSV, name)
    assert decode(data, "unicode.txt") == (CSV, name)  # Excel "Unicode text"
    assert decode(data, "unicode.txt", name) == (CSV, name)
    other = "utf-16-be" if name == "utf-16-le" else "utf-16-le"
    with pytest.raises(ExportError, match=f"{name} byte-order mark but the contract says {other}"):
        decode(data, "unicode.txt", other)


def test_utf8_with_and_without_bom():
    assert decode(CSV.encode(), "a.csv") == (CSV, "utf-8")
    assert decode(b"\xef\xbb\xbf" + CSV.encode(), "a.csv") == (CSV, "utf-8-sig")
    assert decode(b"\xef\xbb\xbf" + CSV.encode(), "a.csv", "UTF8") == (CSV, "utf-8-sig")  # alias, BOM stripped
    decomposed = unicodedata.normalize("NFD", CSV).encode()
    assert decode(decomposed, "a.csv") == (CSV, "utf-8")  # NFD from a Mac export ends NFC


def test_aliases_and_unknown_names():
    assert decode(encode(CSV, "vni"), "f.csv", "VNI-Windows")[1] == "vni"
    assert decode(encode(CSV, "cp1258"), "f.csv", "windows-1258")[1] == "cp1258"
    assert decode(encode(CSV, "tcvn3"), "f.csv", "ABC")[1] == "tcvn3"
    with pytest.raises(ExportError, match="unknown encoding 'koi8-r'.*tcvn3, vni, viscii"):
        decode(b"abc", "f.csv", "koi8-r")
    assert set(ENCODINGS) == {"utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1258", "tcvn3", "vni", "viscii"}


def test_named_encoding_rejects_invalid_bytes_with_place():
    data = "a,b\nNguyễn,1\n".encode() + b"Tr\xe1\xbbn,2\n"  # truncated UTF-8 sequence on line 3
    with pytest.raises(ExportError) as e:
        decode(data, "hong.csv", "utf-8")
    assert e.value.file == "hong.csv" and e.value.place.startswith("line 3, byte offset 17")
    # a VNI mark with no letter to carry it (0xF9 after "x")
    with pytest.raises(ExportError, match="mark with no letter") as e:
        decode(b"ok\nx\xf9\n", "vni.csv", "vni")
    assert e.value.place == "line 2, byte offset 4"
    # a cp1258 tone after a consonant; a byte cp1258 does not define
    with pytest.raises(ExportError, match="not in cp1258") as e:
        decode(b"Hoa\nn\xec\n", "f.csv", "cp1258")
    assert e.value.place == "line 2, byte offset 5"
    with pytest.raises(ExportError, match="0x81 is not valid cp1258"):
        decode(b"a\x81b", "f.csv", "cp1258")
    # a byte that is neither a TCVN3 letter nor a symbol (0xC0 is a VN1 capital, not ABC)
    with pytest.raises(ExportError, match="0xC0 is not valid tcvn3"):
        decode(b"ab\xc0", "f.csv", "tcvn3")
    # the contract says an 8-bit encoding but the file is UTF-8 with BOM
    with pytest.raises(ExportError, match="utf-8-sig byte-order mark but the contract says vni"):
        decode(b"\xef\xbb\xbfabc", "f.csv", "vni")


def test_damaged_utf8_is_named_not_guessed():
    data = CSV.encode() + b"5,Ph\xe1m,x,y,z\n"  # one stray byte in an otherwise UTF-8 file
    with pytest.raises(ExportError, match="not valid UTF-8, yet the rest reads as UTF-8") as e:
        decode(data, "f.csv")
    assert e.value.place.startswith("line 6,")


@pytest.mark.parametrize("codepage", ["cp1252", "cp1258", "latin-1"])
def test_mojibake_repaired(codepage):
    mangled = sloppy(CSV, codepage)
    assert "Ã" in mangled or "Ă" in mangled
    assert check_mojibake(mangled, "f.csv") == CSV
    # saved back as UTF-8 (how it reaches us): decode repairs it; twice mangled still repairs
    assert decode(mangled.encode(), "f.csv") == (CSV, "utf-8")
    assert check_mojibake(sloppy(sloppy(CSV, "cp1252"), "cp1252"), "f.csv") == CSV
    assert check_mojibake("Cáº¥p giáº¥y", "f.csv") == "Cấp giấy"


def test_unrepairable_mojibake_rejected_with_file_and_line():
    mixed = "Tên,Ghi chú\nNguyễn Văn A,Cáº¥p má»›i\n"
    with pytest.raises(ExportError) as e:
        decode(mixed.encode(), "ho_so.csv")
    assert str(e.value).startswith("ho_so.csv at line 2: mojibake") and "Cáº¥p" in str(e.value)
    assert e.value.place == "line 2"


def test_legitimate_text_is_not_taken_for_mojibake():
    for text in ("XÃ”", "ĐỒNG NAI…", "“Hà Nội” – 25°C", "Â°", CSV, "È…"):
        assert check_mojibake(text, "f.csv") == text


def test_binary_junk_rejected():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(ExportError, match="NUL bytes: binary data"):
        decode(png, "anh.csv")
    with pytest.raises(ExportError, match="control byte 0x03: binary data"):
        decode(b"ab\x03\xff\xfe\xfd", "f.csv")
    junk = bytes((i * 167 + 13) % 128 + 128 for i in range(4000))  # high bytes only, no NUL
    with pytest.raises(ExportError, match="does not read as text|cannot tell the encoding"):
        decode(junk, "rac.csv")
    with pytest.raises(ExportError, match="control character U\\+0000") as e:
        decode(b"a,b\n\x00\x00", "f.csv", "utf-8")
    assert e.value.place == "line 2"


def test_dos_end_of_file_mark_is_dropped():
    assert decode(encode("Tên\nHoà\n", "vni") + b"\x1a", "f.csv") == ("Tên\nHoà\n", "vni")


def test_encode_refuses_what_the_encoding_cannot_hold():
    with pytest.raises(ExportError, match=r"'“' \(U\+201C\) cannot be written in viscii"):
        encode("“Hà Nội”", "viscii")  # VISCII uses 0x80-0x9F for capitals
    with pytest.raises(ExportError, match="cannot be written in tcvn3") as e:
        encode("a\nç", "tcvn3")
    assert e.value.place == "line 2"
    assert decode(encode("“Hà Nội” – 25°C", "tcvn3"), "f.csv", "tcvn3")[0] == "“Hà Nội” – 25°C"


def test_large_file_decodes_without_per_character_python():
    data = encode(CSV * 20_000, "vni")  # ~3.5 MB
    start = time.perf_counter()
    text, used = decode(data, "lon.csv")
    assert used == "vni" and len(text) == len(CSV) * 20_000
    assert time.perf_counter() - start < 5  # ~0.4 s here; a per-character loop takes many times that
