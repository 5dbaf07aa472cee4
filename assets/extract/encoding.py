"""Decode departmental text exports: find the encoding once per file (or take it from the contract),
convert with that encoding named, normalise to NFC, and refuse mojibake.

Names a contract's `format.encoding` may use are in ENCODINGS (a few aliases are accepted, see _ALIASES).

Why the legacy tables are written here and not taken from a library (evaluated for issue "CSV encodings"):
- Python has no codecs for TCVN3, VNI or VISCII, and we must ENCODE as well as decode (demo and test
  files are produced with the real codec).
- viparse 0.1.31 only decodes (str -> str over text already read as Latin-1), one Python step per
  character, its VNI table lacks ẳ/Ẳ and guesses `yï`/`iø`, and its auto-detection is unsafe on short
  cells. Not usable for encode, too slow for 50 MB.
- viscii-codec 1.0.1 is a one-file gencodec table (the same RFC 1456 table as below); not worth a pin.
- vniencoder is the VNI *typing* scheme (a1 -> á), not the VNI-Windows font encoding.
- glibc iconv knows TCVN5712-1, VISCII and CP1258 but not VNI, and a subprocess per file is fragile;
  the tests use it only to cross-check our bytes when /usr/bin/iconv exists.
- ftfy 6.3.1 "fixes" mixed text line by line, un-curls quotes, and took the legitimate `XÃ”` for
  mojibake; our rule is stricter (repair only if the whole text round-trips, otherwise reject), so
  a small check below does it without a new dependency.

Every decoder is a C-level charmap (codecs.charmap_decode / bytes.decode) plus at most one regex pass
and one NFC pass, so a 50 MB file is never walked character by character in Python.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from collections import Counter
from typing import Iterator

from assets.errors import ExportError

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1258", "tcvn3", "vni", "viscii")
LEGACY = ("cp1258", "tcvn3", "vni", "viscii")  # candidates scored when a file is neither BOM-marked nor UTF-8
SAMPLE_BYTES = 256 * 1024  # detection looks at this much; the whole file is then decoded with the winner

_ALIASES = {
    "utf8": "utf-8", "utf-8-bom": "utf-8-sig", "utf8-sig": "utf-8-sig",
    "utf-16le": "utf-16-le", "utf16le": "utf-16-le", "utf-16be": "utf-16-be", "utf16be": "utf-16-be",
    "windows-1258": "cp1258", "win1258": "cp1258", "cp-1258": "cp1258",
    "abc": "tcvn3", "tcvn3-abc": "tcvn3", "tcvn-3": "tcvn3",
    "vni-windows": "vni", "vni-win": "vni", "vniwin": "vni",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_UNDEFINED = "\ufffe"  # marks an unmapped byte in a charmap_decode table

# --- Vietnamese letters ---------------------------------------------------------------------------
_TONES = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền, sắc, hỏi, ngã, nặng
_SHAPES = ("\u0302", "\u0306", "\u031b")  # circumflex, breve, horn
_VOWELS = "aăâeêioôơuưy"
_LOWER = "".join(unicodedata.normalize("NFC", v + t) for v in _VOWELS for t in ("",) + _TONES) + "đ"
VIET_LOWER = "".join(c for c in _LOWER if not c.isascii())  # the 67 precomposed lowercase letters
VIET_UPPER = VIET_LOWER.upper()
VIET_LETTERS = VIET_LOWER + VIET_UPPER  # all 134


def _parts(letter: str) -> tuple[str, str | None, str | None]:
    """(ASCII base or đ/Đ, shape mark or None, tone mark or None) of one Vietnamese letter."""
    nfd = unicodedata.normalize("NFD", letter)
    shape = next((m for m in nfd[1:] if m in _SHAPES), None)
    tone = next((m for m in nfd[1:] if m in _TONES), None)
    return nfd[0], shape, tone


# toned letter -> same letter without tone (keeps ă â ê ô ơ ư), for syllable checks
_DETONE = {ord(c): unicodedata.normalize("NFC", "".join(m for m in unicodedata.normalize("NFD", c) if m not in _TONES))
           for c in _LOWER if _parts(c)[2]}

# --- byte tables ----------------------------------------------------------------------------------


def _cp1252_passthrough() -> dict[int, str]:
    """cp1252 symbols (not letters) for the high bytes: what a Windows "ANSI" export writes for quotes,
    dashes, NBSP or ° next to legacy-font text. Letters there would be invented, so they stay undefined."""
    out = {}
    for b in range(0x80, 0x100):
        try:
            c = bytes([b]).decode("cp1252")
        except UnicodeDecodeError:
            continue
        if not c.isalpha():
            out[b] = c
    return out


def _table(high: dict[int, str]) -> str:
    """256-char charmap_decode table: ASCII, then `high`, anything else undefined."""
    return "".join(chr(b) if b < 0x80 else high.get(b, _UNDEFINED) for b in range(256))


# TCVN3 ("ABC", the .VnTime fonts) is TCVN 5712:1993 "VN3": only the lowercase toned letters plus
# Ă Â Ê Ô Ơ Ư Đ. glibc's TCVN5712-1 is "VN1", which also puts uppercase toned letters in 0x01-0x17,
# 0x80-0x9F and the gaps of 0xA0-0xFF, and combining marks in 0xB0-0xB4. Real ABC files carry cp1252
# punctuation in 0x80-0x9F (smart quotes, dashes from Word/Excel) and type uppercase toned letters with
# the lowercase codes, drawn uppercase by the ".VnTimeH" fonts. So: the VN3 positions agree with
# TCVN5712-1 byte for byte; everything else is read as cp1252 symbols; we write uppercase toned
# letters with the lowercase codes, as ABC users did; on reading, an all-capitals word restores them.
_TCVN3_RUNS = {
    0xA1: "ĂÂÊÔƠƯĐăâêôơưđ", 0xB5: "àảãáạ", 0xBB: "ằẳẵắ", 0xC6: "ặầẩẫấậè",
    0xCE: "ẻẽéẹềểễếệìỉ", 0xDC: "ĩíịò", 0xE1: "ỏõóọồổỗốộờởỡớợù", 0xF1: "ủũúụừửữứựỳỷỹýỵ",
}
_TCVN3_HIGH = _cp1252_passthrough() | {start + i: c for start, run in _TCVN3_RUNS.items() for i, c in enumerate(run)}

# VISCII (RFC 1456): all 134 letters, six of them in C0 control positions.
_VISCII_C0 = {0x02: "Ẳ", 0x05: "Ẵ", 0x06: "Ẫ", 0x14: "Ỷ", 0x19: "Ỹ", 0x1E: "Ỵ"}
_VISCII_HIGH = (
    "ẠẮẰẶẤẦẨẬẼẸẾỀỂỄỆỐ"  # 80-8F
    "ỒỔỖỘỢỚỜỞỊỎỌỈỦŨỤỲ"  # 90-9F
    "Õắằặấầẩậẽẹếềểễệố"  # A0-AF
    "ồổỗỠƠộờởịỰỨỪỬơớƯ"  # B0-BF
    "ÀÁÂÃẢĂẳẵÈÉÊẺÌÍĨỳ"  # C0-CF
    "ĐứÒÓÔạỷừửÙÚỹỵÝỡư"  # D0-DF
    "àáâãảăữẫèéêẻìíĩỉ"  # E0-EF
    "đựòóôõỏọụùúũủýợỮ"  # F0-FF
)
_VISCII_TABLE = "".join(_VISCII_C0.get(b, chr(b)) for b in range(0x80)) + _VISCII_HIGH

# VNI-Windows: a letter is an ASCII base plus one mark byte (tone, circumflex/breve, or both in one byte);
# ơ ư đ, the i-family and ỵ are single bytes. Upper- and
# lowercase marks differ only in glyph placement, so both are read after either case of base.
_VNI_TONE = ({"\u0300": 0xF8, "\u0301": 0xF9, "\u0309": 0xFB, "\u0303": 0xF5, "\u0323": 0xEF},
             {"\u0300": 0xD8, "\u0301": 0xD9, "\u0309": 0xDB, "\u0303": 0xD5, "\u0323": 0xCF})
_VNI_CIRC = ({None: 0xE2, "\u0300": 0xE0, "\u0301": 0xE1, "\u0309": 0xE5, "\u0303": 0xE3, "\u0323": 0xE4},
             {None: 0xC2, "\u0300": 0xC0, "\u0301": 0xC1, "\u0309": 0xC5, "\u0303": 0xC3, "\u0323": 0xC4})
_VNI_BREVE = ({None: 0xEA, "\u0300": 0xE8, "\u0301": 0xE9, "\u0309": 0xFA, "\u0303": 0xFC, "\u0323": 0xEB},
              {None: 0xCA, "\u0300": 0xC8, "\u0301": 0xC9, "\u0309": 0xDA, "\u0303": 0xDC, "\u0323": 0xCB})
_VNI_SINGLE = {"ơ": 0xF4, "Ơ": 0xD4, "ư": 0xF6, "Ư": 0xD6, "đ": 0xF1, "Đ": 0xD1, "ì": 0xEC, "Ì": 0xCC,
               "í": 0xED, "Í": 0xCD, "ỉ": 0xE6, "Ỉ": 0xC6, "ĩ": 0xF3, "Ĩ": 0xD3, "ị": 0xF2, "Ị": 0xD2,
               "ỵ": 0xEE, "Ỵ": 0xCE}
_VNI_HIGH: dict[int, str] = _cp1252_passthrough()
for _case in (0, 1):
    _VNI_HIGH |= {b: t for t, b in _VNI_TONE[_case].items()}
    _VNI_HIGH |= {b: "\u0302" + (t or "") for t, b in _VNI_CIRC[_case].items()}
    _VNI_HIGH |= {b: "\u0306" + (t or "") for t, b in _VNI_BREVE[_case].items()}
_VNI_HIGH |= {b: c for c, b in _VNI_SINGLE.items()}
_VNI_DECODE = {b: chr(b) for b in range(0x80)} | _VNI_HIGH  # dict: a mark byte may stand for two marks


def _classes(groups: dict[bytes, bytes]) -> bytes:
    """bytes.translate table: each byte -> its class letter, '.' if none."""
    table = bytearray(b"." * 256)
    for members, cls in groups.items():
        for b in members:
            table[b] = cls[0]
    return bytes(table)


# Mark bytes must follow a base that can carry them. Checked on byte classes with bytes.translate and
# bytes.replace (C speed; a regex with look-behinds took 6 s on 40 MB): every valid base+mark pair has its
# mark neutralised to "x", so a mark letter left over is a stray mark at that very byte offset.
_VNI_CLASSES = _classes({
    b"aA": b"A", b"eEoO": b"E", b"uUyY\xf4\xd4\xf6\xd6": b"U",  # what each base may carry: A all, E no breve, U tone only
    bytes(sorted({*_VNI_TONE[0].values(), *_VNI_TONE[1].values()})): b"t",
    bytes(sorted({*_VNI_CIRC[0].values(), *_VNI_CIRC[1].values()})): b"c",
    bytes(sorted({*_VNI_BREVE[0].values(), *_VNI_BREVE[1].values()})): b"b",
})
_VNI_PAIRS = (b"At", b"Et", b"Ut", b"Ac", b"Ec", b"Ab")
# cp1258 writes most toned letters as toneless vowel + combining tone (0xCC 0xEC 0xDE 0xD2 0xF2)
_CP1258_CLASSES = _classes({"aăâeêioôơuưyAĂÂEÊIOÔƠUƯY".encode("cp1258"): b"V", b"\xcc\xec\xde\xd2\xf2": b"t"})
_CP1258_PAIRS = (b"Vt",)
_STRAY = re.compile(rb"[tcb]")


def _stray_marks(data: bytes, classes: bytes, pairs: tuple[bytes, ...]) -> bytes:
    """The byte classes of `data` with valid pairs neutralised; a remaining t/c/b is a stray mark."""
    marked = data.translate(classes)
    for pair in pairs:
        marked = marked.replace(pair, pair[:1] + b"x")
    return marked


def _vni_bytes(letter: str) -> bytes:
    if letter in _VNI_SINGLE:
        return bytes([_VNI_SINGLE[letter]])
    base, shape, tone = _parts(letter)
    upper = int(base.isupper())
    if shape == "\u031b":  # horn: ơ ư are single bytes, the tone follows
        return bytes([_VNI_SINGLE[unicodedata.normalize("NFC", base + shape)], _VNI_TONE[upper][tone]])
    if shape == "\u0302":
        return bytes([ord(base), _VNI_CIRC[upper][tone]])
    if shape == "\u0306":
        return bytes([ord(base), _VNI_BREVE[upper][tone]])
    return bytes([ord(base), _VNI_TONE[upper][tone]])


def _cp1258_bytes(letter: str) -> bytes:
    """Precomposed where cp1258 has the letter, else toneless letter + combining tone (as Windows writes)."""
    try:
        return letter.encode("cp1258")
    except UnicodeEncodeError:
        base, shape, tone = _parts(letter)
        return (unicodedata.normalize("NFC", base + (shape or "")) + tone).encode("cp1258")


def _encode_map(table: dict[int, str], letters: dict[str, bytes]) -> dict[int, bytes]:
    out = {ord(c): bytes([b]) for b, c in table.items() if c != _UNDEFINED and len(c) == 1}
    out.update({ord(c): b for c, b in letters.items()})
    return out


_TCVN3_TABLE = _table(_TCVN3_HIGH)
_TCVN3_CODE = {c: b for b, c in _TCVN3_HIGH.items()}
_ENCODE_MAPS = {
    "tcvn3": _encode_map(dict(enumerate(_TCVN3_TABLE)),
                         {c: bytes([_TCVN3_CODE.get(c) or _TCVN3_CODE[c.lower()]]) for c in VIET_LETTERS}),
    "viscii": _encode_map(dict(enumerate(_VISCII_TABLE)), {}),
    "vni": _encode_map({b: chr(b) for b in range(0x80)} | _cp1252_passthrough(),
                       {c: _vni_bytes(c) for c in VIET_LETTERS}),
    "cp1258": _encode_map({b: chr(b) for b in range(0x80)}, {}),  # filled below
}
for _b in range(0x80, 0x100):
    try:
        _ENCODE_MAPS["cp1258"][ord(bytes([_b]).decode("cp1258"))] = bytes([_b])
    except UnicodeDecodeError:
        pass
_ENCODE_MAPS["cp1258"].update({ord(c): _cp1258_bytes(c) for c in VIET_LETTERS})

# TCVN3 capitals: a word that mixes capitals with lowercase-coded toned letters (e.g. "PHƯờNG", "ủY") was
# set in a .VnTimeH font, so it is all capitals; a run of such words spreads that to short neighbours
# ("Hồ" in "LÊ THỊ Hồ"). A lone "Hồ" or title-case "Ủy" stays lowercase-toned: no evidence either way.
_U, _L = "A-ZĂÂÊÔƠƯĐ", VIET_LOWER
# a whole word of TCVN3 capitals and lowercase-coded letters with at least one capital; it starts with a
# plain character set so the regex engine skips everything else at C speed (a leading look-behind took 5 s)
_TOK = rf"[{_U}{_L}](?<![^\W\d_].)(?:(?<=[{_U}])[{_U}{_L}]*|[{_L}]*[{_U}][{_U}{_L}]*)(?![^\W\d_])"
_CAPS_RUN = re.compile(rf"{_TOK}(?:[ ]+{_TOK})*")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZĂÂÊÔƠƯĐ")
_LOWER_CODED, _VOWEL_CAPS = frozenset(_L), frozenset("ĂÂÊÔƠƯ")


def _capital_run(m: re.Match) -> str:
    """Evidence of a capitals font: a word with a capital after its first letter and either a lowercase-coded
    letter ("PHƯờNG", "ủY") or a capital vowel code after the first letter ("TÊN"). Acronyms ("ĐT", "UBND")
    are no evidence, so "Sở ĐT" and "UBND Xã" keep their case. Known cost: a title-case short word next to
    capitals ("Bà NGUYỄN VĂN A") is read as capitals too; case only, never a different letter."""
    run = m[0]
    if run.isascii():  # no lowercase-coded letter, no capital vowel code: no evidence (most runs: "HCM", "UBND")
        return run
    if any(_UPPER.intersection(w[1:]) and (_LOWER_CODED.intersection(w) or _VOWEL_CAPS.intersection(w[1:]))
           for w in run.split()):
        return run.upper()
    return run


def _tcvn3_capitals(text: str) -> str:
    return _CAPS_RUN.sub(_capital_run, text)


# --- small helpers --------------------------------------------------------------------------------


def _canonical(encoding: str, file: str) -> str:
    name = encoding.strip().lower().replace("_", "-")
    name = _ALIASES.get(name, name)
    if name not in ENCODINGS:
        raise ExportError(file, f"unknown encoding '{encoding}' in the contract; use one of {', '.join(ENCODINGS)}")
    return name


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _bad_byte(file: str, data: bytes, offset: int, name: str, why: str | None = None, *, at: int = 0,
              line_of=None) -> ExportError:
    """`data` is the file from byte `at` on (a part of it when read a part at a time: `line_of(offset in the file)`
    then gives the line)."""
    line = line_of(at + offset) if line_of else _line_of(data, offset)
    return ExportError(file, why or f"byte 0x{data[offset]:02X} is not valid {name}; the file is not in {name}",
                       place=f"line {line}, byte offset {at + offset}")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)  # returns at once (quick check) when already NFC


# --- decoding -------------------------------------------------------------------------------------


def _decode_legacy(data: bytes, name: str, file: str | None, *, at: int = 0, line_of=None) -> tuple[str, int]:
    """Decode with one 8-bit encoding. file=None: lenient, returns the count of invalid bytes/sequences
    (for scoring); otherwise strict, raising ExportError at the first one (`at`, `line_of`: see _bad_byte)."""
    errors = "strict" if file else "replace"
    marked = b""
    try:
        if name == "cp1258":
            text = data.decode("cp1258", errors)
            marked = _stray_marks(data, _CP1258_CLASSES, _CP1258_PAIRS)
        elif name == "vni":
            text = codecs.charmap_decode(data, errors, _VNI_DECODE)[0]
            marked = _stray_marks(data, _VNI_CLASSES, _VNI_PAIRS)
        else:
            text = codecs.charmap_decode(data, errors, _TCVN3_TABLE if name == "tcvn3" else _VISCII_TABLE)[0]
    except UnicodeDecodeError as e:
        raise _bad_byte(file, data, e.start, name, at=at, line_of=line_of) from None
    bad = 0
    if file:
        stray = _STRAY.search(marked)
        if stray:
            raise _bad_byte(file, data, stray.start(), name,
                            f"byte 0x{data[stray.start()]:02X} is a {name} tone/diacritic mark with no letter to "
                            f"carry it; the file is not in {name} or is damaged", at=at, line_of=line_of)
    else:
        bad = len(_STRAY.findall(marked)) + text.count("\ufffd")
    text = _nfc(text)
    if name == "tcvn3":
        text = _tcvn3_capitals(text)
    return text, bad


def _decode_named(data: bytes, file: str, name: str) -> tuple[str, str]:
    bom = next(((b, n) for b, n in _BOMS if data.startswith(b)), None)
    if name in ("utf-8", "utf-8-sig"):
        if bom and bom[1] != "utf-8-sig":
            raise ExportError(file, f"starts with a {bom[1]} byte-order mark but the contract says {name}")
        used, body = ("utf-8-sig", data[3:]) if bom else ("utf-8", data)
        try:
            return body.decode("utf-8"), used
        except UnicodeDecodeError as e:
            raise _bad_byte(file, data, e.start + len(data) - len(body), "UTF-8") from None
    if name in ("utf-16-le", "utf-16-be"):
        if bom and bom[1] != name:
            raise ExportError(file, f"starts with a {bom[1]} byte-order mark but the contract says {name}")
        skip = 2 if bom else 0
        try:
            return data[skip:].decode(name), name
        except UnicodeDecodeError as e:
            off = e.start + skip
            line = data[skip:off].decode(name, "replace").count("\n") + 1
            raise ExportError(file, f"not valid {name} ({e.reason})", place=f"line {line}, byte offset {off}") from None
    if bom:
        raise ExportError(file, f"starts with a {bom[1]} byte-order mark but the contract says {name}")
    return _decode_legacy(data, name, file)[0], name


# Vietnamese syllable on toneless lowercase letters: initial? nucleus final?  Permissive on purpose:
# it only has to tell real words from the nonsense a wrong 8-bit table produces.
_NUCLEI = sorted(
    "a ă â e ê i o ô ơ u ư y ai ao au ay âu ây eo êu ia iê iu oa oă oe oi oo ôi ơi ua uâ uê ui uô uơ uy ưa ưi "
    "ươ ưu yê iêu oai oao oay oeo uây uôi uya uyê uyu ươi ươu yêu".split(), key=len, reverse=True)
_SYLLABLE = re.compile(
    rf"(?P<i>ngh|ng|nh|ch|gh|gi|kh|ph|th|tr|qu|[bcdđghklmnprstvx])?(?P<n>{'|'.join(_NUCLEI)})(?P<f>ch|ng|nh|[cmnpt])?")
# Frequent syllables of city exports (names, places, administration). A wrong table can still spell
# possible syllables ("Lê Văn Tám" in cp1258 read as TCVN3 is "Lờ Vón Tỏm"); real text hits this list.
_COMMON = frozenset(unicodedata.normalize("NFC", w) for w in """
của và các có được trong là cho không người những với một này đã năm theo về tại phường xã quận huyện tỉnh
thành phố hồ chí minh nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ ngô dương lý thị văn đức hữu
thanh ngọc hoa hoà hòa lan hương mai thu hà hải sơn tuấn anh hùng dũng quang long nam bắc trung đông tây sài
gòn bến tân bình phú thủ dầu bà rịa vũng tàu cần giờ củ chi hóc môn nhà bè gò vấp quốc gia dân nhân ủy uỷ
ban hội đồng sở tư pháp tài chính kế hoạch đầu xây dựng giao thông vận nông nghiệp y tế giáo dục đào tạo
công thương lao động hoá hóa thể thao du lịch khoa học nội vụ tra sơ tục hành tiếp nhận trả kết quả giải
quyết đúng hạn trực tuyến bưu ích mức độ toàn trình phần ngày tháng số điện thoại địa chỉ họ tên ghi chú
tổng cộng mã căn cước định danh cá doanh thuế đăng ký giấy phép cấp mới đổi lại bổ sung chứng quyền sử
dụng đất ở khu ấp tổ đường hẻm lô chung cư tầng việt độc lập tự do hạnh phúc chủ nghĩa đơn vị cơ quan
trưởng phó giám đốc tịch kèm định biên bản báo cáo sách tình trạng đang xử lý hoàn quá hủy huỷ từ chối chờ
""".split())
_FRONT = ("i", "e", "ê", "y")  # k, gh, ngh only before these; c, g, ng never
_STOP_TONES = frozenset(unicodedata.normalize("NFC", v + t) for v in _VOWELS for t in ("\u0301", "\u0323"))
_ABBREVIATION = re.compile(r"[bcdđghklmnpqrstvx]{1,5}")  # "Đ", "HĐND": consonants with đ
_VIET_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz" + VIET_LOWER)
_TONED = frozenset(chr(k) for k in _DETONE)
_TOKEN = re.compile(r"\w+")
_ODD = re.compile(r"[^\x00-\x7f\w\u00a0\u201c\u201d\u2018\u2019\u2013\u2014\u2026\u2022\u00b0\u20ab\u20ac\u2116]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _is_vietnamese(token: str) -> bool:
    """A real-looking Vietnamese syllable (or a đ-abbreviation), spelled by the orthography's rules.
    The rules matter: a wrong 8-bit table often yields structurally possible nonsense ("phịp", "kà")."""
    if not (token.islower() or token.isupper() or token.istitle()):
        return False  # "ChÝ": a capital inside a word is a wrong table, not Vietnamese
    word = token.lower()
    if not set(word) <= _VIET_WORD_CHARS:
        return False
    if "đ" in word and _ABBREVIATION.fullmatch(word):
        return True
    toned = [c for c in word if c in _TONED]
    m = _SYLLABLE.fullmatch(word.translate(_DETONE))
    if len(toned) > 1 or not m:
        return False
    initial, nucleus, final = m["i"] or "", m["n"], m["f"] or ""
    front = nucleus.startswith(_FRONT)
    if (initial in ("k", "gh", "ngh") and not front) or (initial in ("c", "g", "ng") and front and nucleus != "y"):
        return False
    if final in ("p", "t", "c", "ch") and toned and toned[0] not in _STOP_TONES:
        return False  # checked syllables take only sắc or nặng
    if final in ("ch", "nh") and nucleus not in ("a", "ê", "i", "y", "oa", "uê", "uy"):
        return False
    return final != "" or nucleus not in ("ă", "â", "oă", "uâ")


def _score(text: str, invalid: int) -> tuple[int, int]:
    """(good, bad): words with non-ASCII letters that are / are not Vietnamese syllables, plus penalties
    for invalid bytes, stray symbols and control characters."""
    good = bad = 0
    for token, n in Counter(_TOKEN.findall(text)).items():
        if token.isascii():
            continue
        word = token.lower()
        if not token.isalpha():  # letters glued to digits or "_": no Vietnamese word looks like that
            bad += n
        elif _is_vietnamese(token):
            good += 2 * n if word in _COMMON else n
        else:
            bad += n
    bad += len(_ODD.findall(text)) + 3 * len(_CONTROL.findall(text)) + 3 * invalid
    return good, bad


_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH = bytes(range(0x80, 0x100))
_FIRST_HIGH = re.compile(rb"[\x80-\xff]")
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x19\x1b-\x1f]")
_VISCII_C0_BYTES = frozenset(_VISCII_C0)


def _detect(data: bytes, file: str) -> tuple[str, str]:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _decode_named(data, file, name)
    sample = data[:SAMPLE_BYTES]
    if b"\x00" in sample:
        raise ExportError(file, "contains NUL bytes: binary data, or UTF-16 without a byte-order mark "
                                "(name the encoding in the contract, format.encoding)",
                          place=f"line {_line_of(data, sample.index(0))}, byte offset {sample.index(0)}")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    # judge on the text itself: a long ASCII head (a banner, codes) must not hide the letters
    first = _FIRST_HIGH.search(data).start()
    name = _legacy_name(data[max(0, first - 1024):max(0, first - 1024) + SAMPLE_BYTES], data[:SAMPLE_BYTES], file,
                        bad, data[bad], lambda offset: _line_of(data, offset))
    return _decode_legacy(data, name, file)[0], name


def _damaged_utf8(file: str, offset: int, byte: int, line: int) -> ExportError:
    return ExportError(file, f"byte 0x{byte:02X} is not valid UTF-8, yet the rest reads as UTF-8: "
                             "the file is damaged or mixes encodings", place=f"line {line}, byte offset {offset}")


def _legacy_name(sample: bytes, head: bytes, file: str, bad: int, bad_byte: int, line_of) -> str:
    """The 8-bit encoding of a file that is not UTF-8: `sample` is SAMPLE_BYTES from 1024 bytes before its first
    byte over 0x7F, `head` its first SAMPLE_BYTES, `bad` the offset of its first byte that is not valid UTF-8
    (`bad_byte`), `line_of(offset)` the line of an offset. Raises ExportError when the file is damaged UTF-8,
    binary, or reads as no encoding clearly better than the others."""
    high = len(sample) - len(sample.translate(None, _HIGH))
    utf8 = sum(map(len, _UTF8_SEQ.findall(sample)))
    if utf8 >= 0.9 * high:  # almost every high byte sits in a valid UTF-8 sequence: damaged UTF-8
        raise _damaged_utf8(file, bad, bad_byte, line_of(bad))
    stray = next((m for m in _BINARY.finditer(head) if m[0][0] not in _VISCII_C0_BYTES), None)
    if stray:
        raise ExportError(file, f"control byte 0x{stray[0][0]:02X}: binary data, not a text export",
                          place=f"line {_line_of(head, stray.start())}, byte offset {stray.start()}")

    results = []
    for name in LEGACY:
        text, invalid = _decode_legacy(sample, name, None)
        good, bad = _score(text, invalid)
        results.append((good - bad, good, bad, name, text))
    results.sort(key=lambda r: -r[0])  # stable: ties keep LEGACY order
    score, good, bad, name, text = results[0]
    rivals = [r for r in results[1:] if r[4] != text]  # an identical reading is no rival
    if good == 0 and bad > 0:
        raise ExportError(file, "does not read as text in any supported encoding "
                                f"({', '.join(ENCODINGS)}): binary data or an unsupported encoding")
    if bad > good or (rivals and score - rivals[0][0] < max(1, 0.1 * good)):
        tried = ", ".join(f"{r[3]} {r[1]} words ok/{r[2]} bad" for r in results)
        raise ExportError(file, "cannot tell the encoding; name it in the contract (format.encoding). "
                                f"Tried: {tried}")
    return name


def decode(data: bytes, file: str, encoding: str | None = None) -> tuple[str, str]:
    """Bytes of one export -> (NFC text without BOM, encoding used): the rules the chunked CSV reader
    (assets.extract.csv) applies a piece at a time, stated on the whole text (its tests' reference).

    `encoding` from the contract is used as named; None detects it: BOM, then strict UTF-8, then the
    8-bit candidate whose reading forms Vietnamese words best. "utf-8" and "utf-8-sig" both accept a
    file with or without BOM and report which it was. Every failure is an ExportError with the place."""
    if encoding is not None:
        text, used = _decode_named(data, file, _canonical(encoding, file))
    else:
        text, used = _detect(data, file)
    if text.endswith("\x1a"):  # DOS end-of-file mark from old tools
        text = text.rstrip("\x1a")
    ctrl = _CONTROL.search(text)
    if ctrl:
        line = text.count("\n", 0, ctrl.start()) + 1
        hint = " (or UTF-16 without a byte-order mark)" if ctrl[0] == "\x00" else ""
        raise ExportError(file, f"control character U+{ord(ctrl[0]):04X}: binary data{hint}, not a text export "
                                f"read as {used}", place=f"line {line}")
    return check_mojibake(_nfc(text), file), used


def _re2_alternatives(chars) -> str:
    """An RE2 group matching any of `chars`, precomposed or in its canonical decomposition."""
    forms = {f for c in chars for f in (c, unicodedata.normalize("NFD", c))}
    return "(?:" + "|".join("".join(f"\\x{{{ord(x):x}}}" for x in f) for f in sorted(forms, key=len, reverse=True)) + ")"


@functools.cache
def mojibake_pattern() -> str:
    """An RE2 pattern (pyarrow.compute) found in every text where check_mojibake finds something to repair or
    refuse, written precomposed or decomposed; a text without it is left as it is (a superset: the exact check is
    check_mojibake's)."""
    def sloppy(lo: int, hi: int) -> list[str]:
        return [c for c, b in _SLOPPY.items() if lo <= b <= hi]

    lead2, lead3, cont = (_re2_alternatives(sloppy(lo, hi)) for lo, hi in ((0xC2, 0xDF), (0xE0, 0xEF), (0x80, 0xBF)))
    return rf"{lead2}{cont}|{lead3}{cont}{cont}"


# --- mojibake -------------------------------------------------------------------------------------
# UTF-8 bytes read as cp1252 (or cp1258 on Vietnamese Windows, or Latin-1 for the bytes cp1252 leaves
# undefined) and saved again: "Cấp" -> "Cáº¥p". _SLOPPY maps every such character back to its byte.
_SLOPPY: dict[str, int] = {chr(b): b for b in range(0x80, 0x100)}
for _enc in ("cp1252", "cp1258"):
    for _b in range(0x80, 0x100):
        try:
            _SLOPPY[bytes([_b]).decode(_enc)] = _b
        except UnicodeDecodeError:
            pass
_UNSLOPPY = {ord(c): b for c, b in _SLOPPY.items() if ord(c) != b}


def _cls(lo: int, hi: int) -> str:
    return "".join(re.escape(c) for c, b in _SLOPPY.items() if lo <= b <= hi)


_LEAD2, _LEAD3, _CONT = _cls(0xC2, 0xDF), _cls(0xE0, 0xEF), _cls(0x80, 0xBF)
# one leading set, so the regex engine skips other characters at C speed
_MOJIBAKE = re.compile(rf"[{_LEAD2}{_LEAD3}](?:(?<=[{_LEAD2}])[{_CONT}]|[{_CONT}]{{2}})")
# characters a Vietnamese export really contains; a decoded sequence must give one of them to count
_PLAUSIBLE = frozenset(VIET_LETTERS + "".join(_TONES) + "₫€\u00a0°“”‘’–—…•")
# what may legitimately follow a letter ("XÃ”", "HÀ…"): such a hit alone never rejects a file
_WEAK_CONT = frozenset("\u00a0…“”‘’–—•·°«»")
_MAX_LAYERS = 3  # text mangled twice or three times over still repairs


def _strong_hit(text: str) -> re.Match | None:
    """First sequence that can only be mojibake. Legit text has few candidate hits, so the Python loop
    is short; mojibake stops it at once."""
    for m in _MOJIBAKE.finditer(text):
        try:
            ch = m[0].translate(_UNSLOPPY).encode("latin-1").decode("utf-8")
        except UnicodeError:
            continue
        if ch in _PLAUSIBLE and not (m[0][0] in VIET_LETTERS and m[0][1] in _WEAK_CONT):
            return m
    return None


def check_mojibake(text: str, file: str) -> str:
    """Repair text that is UTF-8 read as cp1252/cp1258/Latin-1 ("Cáº¥p" -> "Cấp") when the whole text
    reads back cleanly; reject it, naming the line, when only part of it does. Clean text is returned as is.
    A hit that legit text can contain ("XÃ”": a capital and a curly quote) never triggers anything alone."""
    return _repair(text, file, 1)[0]


def _read_back(text: str) -> str:
    """One layer of mojibake undone; UnicodeError when the text does not read back."""
    return _nfc(text.translate(_UNSLOPPY).encode("latin-1").decode("utf-8"))


def _mojibake_error(text: str, start: int, end: int, file: str, line: int) -> ExportError:
    """`text` starts on line `line` of the file; the mojibake is text[start:end]."""
    at = text.rfind("\n", 0, start) + 1
    snippet = text[max(at, start - 20):end + 20].split("\n")[0]
    return ExportError(file, f"mojibake {snippet!r}: UTF-8 text that was read as Windows-1252 and saved "
                             "again (e.g. 'Cáº¥p' for 'Cấp'); it is mixed with text that cannot be read back, "
                             "so it cannot be repaired. Re-export the file as UTF-8",
                       place=f"line {line + text.count(chr(10), 0, start)}")


def _repair(text: str, file: str, line: int, hits: list | None = None) -> tuple[str, int]:
    """check_mojibake of a text starting on line `line`: (the text, layers undone). `hits` gets the error naming
    the first mojibake of each layer (what check_mojibake would say if the text went on with one that does not
    read back)."""
    for layers in range(_MAX_LAYERS):
        hit = _strong_hit(text)
        if hit is None:
            return text, layers
        error = _mojibake_error(text, hit.start(), hit.end(), file, line)
        if hits is not None:
            hits.append(error)
        try:
            text = _read_back(text)
        except UnicodeError:
            raise error from None
    return text, _MAX_LAYERS


class Repair:
    """check_mojibake over a text read a part at a time (parts split at line ends), judging the parts as one text.

    The first part holding non-ASCII text decides: clean, or mojibake undone N times. A later part must agree:
    clean text after clean text; after repaired text, a part that reads back the same N times (ASCII always
    does). Anything else is the mix check_mojibake refuses. (One difference from the whole text: a part mangled
    more times than the first repaired part is refused, where the whole text might have been undone further.)"""

    def __init__(self, file: str):
        self.file = file
        self.layers: int | None = None  # None: no non-ASCII text yet; 0: clean text seen
        self._first: list[ExportError] = []  # per layer, the first mojibake of the first repaired part

    @property
    def repairing(self) -> bool:
        return bool(self.layers)

    def clean(self) -> None:
        """A part with non-ASCII text and nothing to repair (checked by the caller, e.g. per cell)."""
        if self.layers is None:
            self.layers = 0
        elif self.layers:
            raise AssertionError("a part after repaired text must go through part()")

    def part(self, text: str, line: int) -> str:
        """The NFC text of the next part, which starts on line `line` of the file, as it must be read."""
        if text.isascii():
            return text
        if self.layers is None:
            text, self.layers = _repair(text, self.file, line, self._first)
            return text
        if self.layers == 0:
            hit = _strong_hit(text)
            if hit is not None:
                raise _mojibake_error(text, hit.start(), hit.end(), self.file, line)
            return text
        for layer in range(self.layers):
            try:
                text = _read_back(text)
            except UnicodeError:  # the whole text would not read back: named by its first mojibake, as there
                raise self._first[layer] from None
        hit = _strong_hit(text)
        if hit is not None:
            raise _mojibake_error(text, hit.start(), hit.end(), self.file, line)
        return text


# --- decoding a part at a time --------------------------------------------------------------------

_VISCII_C0_SEQ = tuple(bytes([b]) for b in _VISCII_C0)


def _line_end(text: bytes | str) -> int:
    """Where the text's last line ends (0: no line end); a CR at the very end may be the half of a CRLF."""
    lf, cr = ("\n", "\r") if isinstance(text, str) else (b"\n", b"\r")
    return max(text.rfind(lf), text.rfind(cr, 0, len(text) - 1)) + 1


class Transcoder:
    """An export read a block at a time, turned into UTF-8 a piece at a time: the pieces joined are
    decode(data, file, encoding) of the whole file, encoded as UTF-8, without holding the whole.

    `read_at(offset, n)` reads the file's bytes. The encoding is found as decode() finds it: from the byte-order
    mark, the NUL check and (for the binary check) the first SAMPLE_BYTES, and the SAMPLE_BYTES around the first
    byte over 0x7F, wherever it is (decode() reads the whole file as UTF-8 to find that byte; here ASCII is passed
    on, being the same text in every supported encoding, until it comes). A file whose sample is UTF-8 is read as
    UTF-8: a later invalid byte is what decode() reports for it (damaged UTF-8, `invalid_utf8`). A file named or
    found to be in another encoding is decoded strictly, every block, with the place of a bad byte in the file.

    UTF-8 files are passed on as they are (`passthrough`): the caller must check them (Arrow does, converting
    text) and report a bad byte with `invalid_utf8`. Control characters and mojibake are the caller's to check
    too (Repair), as decode() checks them on the text. The DOS end-of-file mark (0x1A) at the end is dropped."""

    def __init__(self, file: str, encoding: str | None, read_at, size: int):
        self.file, self._read_at, self.size = file, read_at, size
        head = read_at(0, SAMPLE_BYTES)
        self._head = head
        bom = next(((b, n) for b, n in _BOMS if head.startswith(b)), None)
        name = _canonical(encoding, file) if encoding is not None else (bom[1] if bom else None)
        self._damaged = encoding is None and bom is None  # an invalid byte in detected UTF-8: damaged UTF-8
        self.start = 0  # bytes of byte-order mark
        if name in ("utf-8", "utf-8-sig"):
            if bom and bom[1] != "utf-8-sig":
                raise ExportError(file, f"starts with a {bom[1]} byte-order mark but the contract says {name}")
            self.mode, self.used, self.start = "utf-8", "utf-8-sig" if bom else "utf-8", 3 if bom else 0
        elif name in ("utf-16-le", "utf-16-be"):
            if bom and bom[1] != name:
                raise ExportError(file, f"starts with a {bom[1]} byte-order mark but the contract says {name}")
            self.mode = self.used = name
            self.start = 2 if bom else 0
        elif name is not None:
            if bom:
                raise ExportError(file, f"starts with a {bom[1]} byte-order mark but the contract says {name}")
            self.mode = self.used = name
        else:
            if b"\x00" in head:
                at = head.index(0)
                raise ExportError(file, "contains NUL bytes: binary data, or UTF-16 without a byte-order mark "
                                        "(name the encoding in the contract, format.encoding)",
                                  place=f"line {_line_of(head, at)}, byte offset {at}")
            self.mode, self.used = None, "utf-8"  # None: ASCII so far

    @property
    def passthrough(self) -> bool:
        """The pieces are the file's own bytes (after the byte-order mark): UTF-8 not yet checked."""
        return self.mode in ("utf-8", None)

    def line_of(self, offset: int) -> int:
        """The line (as decode() counts: line feeds + 1) of a byte offset of the file."""
        utf16 = self.mode in ("utf-16-le", "utf-16-be")
        count, at = 0, self.start if utf16 else 0
        while at < offset:
            block = self._read_at(at, min(1 << 24, offset - at))
            if not block:
                break
            count += block.decode(self.mode, "replace").count("\n") if utf16 else block.count(b"\n")
            at += len(block)
        return count + 1

    def invalid_utf8(self, offset: int) -> ExportError:
        """The error decode() gives for the first invalid UTF-8 byte of a UTF-8 file, at `offset` of the file."""
        byte = self._read_at(offset, 1)[0]
        if self._damaged:
            return _damaged_utf8(self.file, offset, byte, self.line_of(offset))
        return ExportError(self.file, f"byte 0x{byte:02X} is not valid UTF-8; the file is not in UTF-8",
                           place=f"line {self.line_of(offset)}, byte offset {offset}")

    def pieces(self, block: int) -> Iterator[list[bytes | memoryview]]:
        """The text as UTF-8, in pieces of about `block` bytes, each ending at a line end (but the last); a piece
        is a list of buffers to join: in a UTF-8 file, views of what was read rather than copies."""
        at, carry, tail = self.start, b"", ""  # carry: raw bytes after the last line end; tail: decoded text after it
        while at < self.size:
            raw = self._read_at(at, block)
            if not raw:
                break
            begin, at = at - len(carry), at + len(raw)
            final = at >= self.size
            if self.mode is None and (not raw.isascii() or any(c in raw for c in _VISCII_C0_SEQ)):
                self._resolve(at - len(raw))  # the bytes before are ASCII
            if self.mode in ("utf-8", None):  # the file's own bytes
                if final:
                    yield [(carry + raw if carry else raw).rstrip(b"\x1a")]  # the DOS end-of-file mark
                    return
                cut = _line_end(raw)
                if not cut:
                    carry += raw
                    continue
                yield [carry, memoryview(raw)[:cut]] if carry else [memoryview(raw)[:cut]]
                carry = raw[cut:]
                continue
            data = carry + raw if carry else raw
            if self.mode in ("utf-16-le", "utf-16-be"):
                cut = len(data) if final else len(data) & ~1
                if not final and cut >= 2 and 0xD8 <= data[cut - (1 if self.mode == "utf-16-le" else 2)] <= 0xDB:
                    cut -= 2  # a high surrogate waits for its pair
                try:
                    text = tail + data[:cut].decode(self.mode)
                except UnicodeDecodeError as e:
                    off = begin + e.start
                    raise ExportError(self.file, f"not valid {self.mode} ({e.reason})",
                                      place=f"line {self.line_of(off)}, byte offset {off}") from None
                carry = data[cut:]
            else:  # 8-bit: whole lines, so a letter and its mark bytes (VNI, cp1258) stay together
                cut = len(data) if final else _line_end(data)
                if not cut and len(data) > max(4 * block, 1 << 26):  # no line end in 64 MB: any space will do
                    cut = data.rfind(b" ") + 1
                carry = data[cut:]
                if not cut:
                    continue
                text = tail + _decode_legacy(data[:cut], self.mode, self.file, at=begin, line_of=self.line_of)[0]
            if final:
                yield [text.rstrip("\x1a").encode("utf-8")]
                return
            cut = _line_end(text)
            tail = text[cut:]
            if cut:
                yield [text[:cut].encode("utf-8")]
        if at < self.size:
            raise ExportError(self.file, "the file changed while it was read")

    def _resolve(self, begin: int) -> None:
        """ASCII so far, and from `begin` a byte over 0x7F or a VISCII letter among the control bytes: find the
        encoding as decode() does, from the first byte over 0x7F of the file."""
        first, at = None, begin
        while at < self.size:
            block = self._read_at(at, 1 << 24)
            if not block:
                break
            if not block.isascii():
                i = 0
                while block[i:i + 65536].isascii():  # (a regex walks ASCII slowly)
                    i += 65536
                first = at + _FIRST_HIGH.search(block, i).start()
                break
            at += len(block)
        if first is None:
            self.mode = "utf-8"  # all ASCII: decode() reads it as UTF-8 (its control bytes are refused later)
            return
        start = max(0, first - 1024)
        sample = self._read_at(start, SAMPLE_BYTES)
        try:
            codecs.utf_8_decode(sample, "strict", start + len(sample) >= self.size)
        except UnicodeDecodeError as e:
            bad = start + e.start
            self.mode = self.used = _legacy_name(sample, self._head, self.file, bad, sample[e.start], self.line_of)
            return
        self.mode = "utf-8"


# --- encoding -------------------------------------------------------------------------------------


def encode(text: str, encoding: str, *, file: str = "<text>") -> bytes:
    """NFC text -> bytes in `encoding` (any name decode() reports), as a real tool of that era would write
    them: UTF-16 and utf-8-sig with BOM, cp1258 with combining tones where Windows uses them, TCVN3 with
    uppercase toned letters in lowercase codes (the ABC ".VnTimeH" practice)."""
    name = _canonical(encoding, file)
    text = unicodedata.normalize("NFC", text)
    if name in ("utf-8", "utf-8-sig"):
        return (codecs.BOM_UTF8 if name == "utf-8-sig" else b"") + text.encode("utf-8")
    if name in ("utf-16-le", "utf-16-be"):
        return (codecs.BOM_UTF16_LE if name == "utf-16-le" else codecs.BOM_UTF16_BE) + text.encode(name)
    try:
        return codecs.charmap_encode(text, "strict", _ENCODE_MAPS[name])[0]
    except UnicodeEncodeError as e:
        ch = text[e.start]
        raise ExportError(file, f"character {ch!r} (U+{ord(ch):04X}) cannot be written in {name}",
                          place=f"line {text.count(chr(10), 0, e.start) + 1}") from None
