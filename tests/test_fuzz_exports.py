"""Fuzz: malformed departmental exports through extract -> clean -> validate (assets.flow, dossier contract).

Every generated file must end in one of two ways, and nothing else may escape:
- an ExportError whose message starts with the file's name (a clerk can tell which file to fix), or
- a batch in which rows read = rows kept + rows quarantined, every quarantined row carrying a reason code.
Where a mutation keeps the file's line structure, "rows read" is also checked against the number of data lines
actually written, so a reader can not lose rows silently either.

Hypothesis runs derandomised (fixed seed, no example database): the same examples on every machine.
GX validation costs ~0.1 s an example, so the full flow (with GX) runs on a smaller sample than extract+clean.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets import flow
from assets.contract import CONTRACTS_DIR, Format, load_contract
from assets.demo.dossiers import HEADERS, dossier_rows
from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN
from assets.extract.csv import REASONS

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
ROWS = dossier_rows(40, date(2026, 10, 1))[:12]  # 12 rows, one of them a seeded defect
NAME = "trung_tam_hcc/ho_so_tthc/xuat_thang_10.csv"
DATE_COLUMNS = [HEADERS.index(h) for h in ("Ngày tiếp nhận", "Ngày hẹn trả", "Ngày hoàn thành", "Ngày trả kết quả")]
RECEIVED = HEADERS.index("Ngày tiếp nhận")
IMPOSSIBLE_DATES = ["31/02/2026", "29/02/2025", "30/02/2024", "31/04/2026", "31/06/2026", "31/09/2026",
                    "31/11/2026", "00/10/2026", "32/10/2026", "15/13/2026", "15/00/2026", "2026-02-30",
                    "2026/13/45", "99/99/9999", "15/10/0000", "31/12/1899", "01/01/2101", "1/1/26",
                    "15-10-2026 24:00", "15/10/2026 23:60", "ngày 15 tháng 10", "15.10.2026.", "١٥/١٠/٢٠٢٦"]
# A cell's text may hold anything but what changes the CSV's line structure.
CELL = st.text(st.characters(blacklist_characters='",\r\n', blacklist_categories=("Cs",)), max_size=40)
SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def render(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
    return buf.getvalue()


def run(workdir: Path, contract, data: bytes, name: str = NAME, gx: bool = False):
    """The flow as the `clean` and `validated` assets run it. Returns None for an ExportError, else
    (rows read, rows kept, rows quarantined, frame)."""
    path = workdir / "export"
    path.write_bytes(data)
    files = [{"archive_path": str(path), "file_name": name, "sha256": "f" * 64}]
    try:
        extracted, _ = flow.extract_files(contract, files)
    except ExportError as e:
        assert str(e).startswith(name), f"the message does not name the file: {e}"
        assert e.file == name and e.reason.strip()
        return None
    cleaned = flow.clean_batch(contract, extracted)
    read = len(extracted)
    assert len(cleaned) == read
    frame = cleaned
    if gx:
        v = flow.validate(contract, cleaned)
        assert len(v.frame) == read
        frame = v.frame
        # what the load writes: curated rows and quarantined rows, together exactly the rows read
        assert len(flow.curated_rows(contract, frame)) + len(flow.quarantine_rows(contract, frame)) == read
    reasons = frame[REASONS]
    quarantined = int(reasons.notna().sum())
    kept = int(reasons.isna().sum())
    assert kept + quarantined == read
    assert reasons.dropna().str.fullmatch(r"[a-z_0-9]+(\([^)]*\))?(:[a-z_0-9,]+)?(;[a-z_0-9]+(\([^)]*\))?(:[a-z_0-9,]+)?)*").all(), \
        reasons.dropna().unique()[:5]
    assert frame[ROW_COLUMN].notna().all()
    quarantine = flow.quarantine_rows(contract, frame)
    assert len(quarantine) == quarantined
    return read, kept, quarantined, frame


# ------------------------------------------------------------------------------------------------ strategies


@st.composite
def structured(draw):
    """Mutations that keep one record per line: (csv bytes, the final rows as written, the header width)."""
    header = list(HEADERS)
    rows = [list(r) for r in ROWS]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["date", "columns", "huge", "bom", "cell", "blank", "extra_headers",
                                     "formula", "whitespace_row"]))
        if not rows:
            continue
        i = draw(st.integers(0, len(rows) - 1))
        if kind in ("date", "huge", "bom", "cell", "formula", "columns") and not rows[i]:
            continue  # a blank line has no cells
        if kind == "date" and len(rows[i]) > RECEIVED:
            rows[i][RECEIVED] = draw(st.sampled_from(IMPOSSIBLE_DATES))
        elif kind == "columns":
            delta = draw(st.integers(-len(rows[i]) + 1, 6).filter(lambda d: d != 0))
            rows[i] = rows[i][:delta] if delta < 0 else rows[i] + ["thừa"] * delta
        elif kind == "huge":
            col = draw(st.integers(0, len(rows[i]) - 1))
            rows[i][col] = draw(st.sampled_from(["A", "ệ", "0", " "])) * draw(st.sampled_from([70_000, 140_000, 400_000]))
        elif kind == "bom":
            col = draw(st.integers(0, len(rows[i]) - 1))
            at = draw(st.integers(0, len(rows[i][col])))
            rows[i][col] = rows[i][col][:at] + "\ufeff" + rows[i][col][at:]
        elif kind == "cell":
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(CELL)
        elif kind == "blank":
            rows.insert(i, [])  # an empty line: not a record
        elif kind == "extra_headers":  # a column the contract does not know, twice: ignored, not fatal
            header += ["Ghi chú", "Ghi chú"]
            rows = [r + ["a", "b"] if r else r for r in rows]
        elif kind == "formula" and len(rows[i]) > 2:
            rows[i][2] = draw(st.sampled_from(["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]))
        elif kind == "whitespace_row":
            rows.insert(i, ["   "])
    if draw(st.integers(0, 19)) == 0:
        rows = [r for r in rows if not r or len(r) == 1][:2]  # nothing but a header (and blank lines)
    encoding = draw(st.sampled_from(["utf-8-sig", "utf-8", "utf-16", "utf-16-le-bom", "cp1258", "vni", "tcvn3"]))
    text = render(header, rows)
    if encoding == "utf-16":
        data = text.encode("utf-16")  # with BOM
    elif encoding == "utf-16-le-bom":
        data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    elif encoding in ("cp1258", "vni", "tcvn3"):
        from assets.extract.encoding import encode

        try:
            data = encode(text, encoding)
        except ExportError:  # a generated character the legacy table cannot hold: send it as UTF-8 instead
            data = text.encode("utf-8")
    else:
        data = text.encode(encoding)
    return data, [r for r in rows if r], len(header)


@st.composite
def damaged(draw):
    """Byte-level damage: truncation, wrong encodings, junk, NUL bytes, BOMs in the middle, nothing but a header."""
    text = render(HEADERS, ROWS)
    base = text.encode("utf-8-sig")
    kind = draw(st.sampled_from(["truncate", "truncate_quoted", "encoding", "junk", "junk_inside", "nul", "bom",
                                 "header_only", "text", "quote", "duplicate_header", "concatenated", "delimiter"]))
    if kind == "truncate":
        return base[: draw(st.integers(0, len(base) - 1))]
    if kind == "truncate_quoted":  # every field quoted, as many systems export: a cut lands inside quotes
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows([HEADERS, *ROWS])
        quoted = buf.getvalue().encode("utf-8")
        return quoted[: draw(st.integers(len(quoted) // 2, len(quoted) - 1))]
    if kind == "encoding":
        codec = draw(st.sampled_from(["utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis",
                                      "koi8-r", "ascii", "cp1258", "utf-7"]))
        return text.encode(codec, errors="replace")
    if kind == "junk":
        return draw(st.binary(max_size=3000))
    if kind == "junk_inside":
        at = draw(st.integers(0, len(base)))
        return base[:at] + draw(st.binary(min_size=1, max_size=200)) + base[at:]
    if kind == "nul":
        positions = sorted(draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=5)))
        for p in reversed(positions):
            text = text[:p] + "\x00" + text[p:]
        return text.encode("utf-8")
    if kind == "bom":
        p = draw(st.integers(1, len(text)))
        bom = draw(st.sampled_from(["\ufeff", "\ufffe"]))
        return ("\ufeff" + text[:p] + bom + text[p:]).encode("utf-8")
    if kind == "header_only":
        line = render(HEADERS, [])
        return draw(st.sampled_from([line, line.rstrip(), line + "\r\n\r\n", "\ufeff" + line])).encode("utf-8")
    if kind == "text":
        return draw(st.text(max_size=500)).encode("utf-8", errors="surrogatepass")
    if kind == "quote":  # a stray quote: the reader may merge lines, but it must still account for every record
        p = draw(st.integers(0, len(text)))
        return (text[:p] + '"' + text[p:]).encode("utf-8")
    if kind == "duplicate_header":  # two columns that both mean the dossier code
        col = draw(st.integers(0, len(HEADERS) - 1))
        alias = draw(st.sampled_from(["Mã hồ sơ", "Số hồ sơ", "MA HO SO", HEADERS[col]]))
        return render(HEADERS + [alias], [r + ["x"] for r in ROWS]).encode("utf-8")
    if kind == "concatenated":  # two exports glued together: the second BOM and header land mid-file
        return base + base
    sep = draw(st.sampled_from([";", "\t", "|", ":"]))
    return text.replace(",", sep).encode("utf-8")


# ------------------------------------------------------------------------------------------------ tests


@settings(max_examples=120, **SETTINGS)
@given(case=structured())
def test_structured_damage_is_quarantined_row_by_row(workdir, case):
    data, records, width = case
    got = run(workdir, DOSSIERS, data)
    if got is None:
        return  # a clear ExportError naming the file (checked in run)
    read, kept, quarantined, frame = got
    assert read == len(records), f"{len(records)} data lines written, {read} rows read: rows lost or invented"
    reasons = frame[REASONS].fillna("")
    wrong_width = sum(len(r) != width for r in records)
    assert reasons.str.contains("wrong_column_count").sum() == wrong_width
    impossible = sum(len(r) == width and r[RECEIVED] in IMPOSSIBLE_DATES for r in records)
    assert reasons.str.contains("invalid_date:ngay_tiep_nhan").sum() >= impossible  # never rolled over
    assert quarantined >= wrong_width + impossible - 0


@settings(max_examples=100, **SETTINGS)
@given(data=damaged())
def test_damaged_bytes_fail_clearly_or_are_accounted_for(workdir, data):
    run(workdir, DOSSIERS, data)


@settings(max_examples=30, **SETTINGS)
@given(case=st.one_of(structured().map(lambda c: c[0]), damaged()))
def test_full_flow_with_great_expectations(workdir, case):
    run(workdir, DOSSIERS, case, gx=True)


@pytest.mark.parametrize("cut", [1, 2, 5, 16, 25])  # inside "200.000", then inside "0792197544" and "079302689195"
def test_an_export_cut_inside_a_quoted_field_is_refused(workdir, cut):
    """A quoted field never closed runs to the end of the file: Arrow would read it (and every line after a stray
    quote) as one value. Cut in the last field, the reader refuses the file, naming it and the line; cut earlier,
    the short last record is quarantined (wrong_column_count) with its text."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows([HEADERS, *ROWS])
    data = buf.getvalue().rstrip("\r\n").encode("utf-8")[:-cut]
    got = run(workdir, DOSSIERS, data)
    if cut < 9:
        assert got is None
        with pytest.raises(ExportError, match="never closed") as info:
            flow.extract_files(DOSSIERS, [{"archive_path": str(workdir / "export"), "file_name": NAME,
                                           "sha256": "f" * 64}])
        assert info.value.place == f"line {len(ROWS) + 1}"
    else:
        read, _, _, frame = got
        assert read == len(ROWS)
        last = frame[frame[ROW_COLUMN] == len(ROWS) + 1]
        assert last[REASONS].str.contains("wrong_column_count").all() and len(last) == 1
    # a stray quote opening the last field of the 3rd row: without the check, rows 4.. would vanish into it
    lines = render(HEADERS, ROWS).split("\r\n")
    lines[3] = lines[3].rsplit(",", 1)[0] + ',"' + lines[3].rsplit(",", 1)[1]
    assert run(workdir, DOSSIERS, "\r\n".join(lines).encode("utf-8")) is None


# ---- the other readers, same contract --------------------------------------------------------------------

AS_JSON = DOSSIERS.model_copy(update={"format": Format(type="json")})
AS_XLSX = DOSSIERS.model_copy(update={"format": Format(type="xlsx")})


def _records() -> list[dict]:
    return [dict(zip(HEADERS, r)) for r in ROWS]


@st.composite
def json_exports(draw):
    records = _records()
    kind = draw(st.sampled_from(["truncate", "deep", "big_number", "surrogate", "nested_value", "not_records",
                                 "junk", "duplicate_key", "nul", "ok"]))
    text = json.dumps(records, ensure_ascii=draw(st.booleans()))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))].encode()
    if kind == "deep":
        n = draw(st.sampled_from([50, 5_000, 200_000]))
        return ('[{"Mã hồ sơ": ' + "[" * n + "]" * n + "}]").encode()
    if kind == "big_number":
        return text.replace('"0"', draw(st.sampled_from(["1e999999999", "1" + "0" * 5000, "-0.0e-99999", "1.5e3"]))
                            , 1).encode()
    if kind == "surrogate":
        return text.replace("HCM", "\\ud800HCM", 1).encode()
    if kind == "nested_value":
        records[draw(st.integers(0, len(records) - 1))]["Mã thủ tục"] = draw(st.sampled_from([{"a": 1}, [1, 2], None, True, 1.5]))
        return json.dumps(records).encode()
    if kind == "not_records":
        return json.dumps(draw(st.sampled_from([{}, 1, "x", [1, 2], [[]], {"data": records}, None]))).encode()
    if kind == "junk":
        return draw(st.binary(max_size=500))
    if kind == "duplicate_key":
        return text.replace('"Mã hồ sơ"', '"Mã hồ sơ": "x", "Mã hồ sơ"', 1).encode() if "Mã hồ sơ" in text \
            else text.replace('"M\\u00e3 h\\u1ed3 s\\u01a1"', '"M\\u00e3 h\\u1ed3 s\\u01a1": "x", "M\\u00e3 h\\u1ed3 s\\u01a1"', 1).encode()
    if kind == "nul":
        return text.replace("HCM", "\\u0000HCM", 1).encode()
    return text.encode()


@settings(max_examples=25, **SETTINGS)
@given(data=json_exports())
def test_json_exports(workdir, data):
    run(workdir, AS_JSON, data, name="trung_tam_hcc/ho_so_tthc/api.json")


@functools.cache
def workbook() -> bytes:
    """The dossiers as a departmental workbook: banner, header on row 3, a totals row under the data."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("Hồ sơ")
    ws.write_row(0, 0, ["ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH"])
    ws.write_row(2, 0, HEADERS + ["Ngày hẹn trả mới"])  # the Excel reader needs every contract column
    for i, r in enumerate(ROWS):
        ws.write_row(3 + i, 0, r + [""])
    ws.write_row(4 + len(ROWS), 0, ["Tổng cộng", len(ROWS)])
    wb.close()
    return buf.getvalue()


@settings(max_examples=20, **SETTINGS)
@given(cut=st.integers(0, 100_000), flips=st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)),
                                                   min_size=1, max_size=4),
       kind=st.sampled_from(["truncate", "flip", "ok", "html"]))
def test_xlsx_exports(workdir, cut, flips, kind):
    data = workbook()
    if kind == "truncate":
        data = data[: cut % len(data)]
    elif kind == "flip":
        buf = bytearray(data)
        for at, value in flips:
            buf[at % len(buf)] = value
        data = bytes(buf)
    elif kind == "html":
        data = "<html><table><tr><td>Mã hồ sơ</td></tr></table></html>".encode()
    got = run(workdir, AS_XLSX, data, name="trung_tam_hcc/ho_so_tthc/bao_cao.xlsx")
    if kind == "ok":
        assert got is not None and got[0] == len(ROWS)


def test_zip_of_the_workbook_is_checked_before_inflating(workdir):
    """A member that lies about its size (declared small, inflates large) is refused, not read."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook())) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info, src.read(info.filename))
        out.writestr("xl/media/padding.bin", b"\0" * 30_000_000)
    assert run(workdir, AS_XLSX, buf.getvalue(), name="bom.xlsx") is None
