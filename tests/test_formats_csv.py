"""Legacy-encoded CSV exports through the whole pipeline: the health department's register in every encoding
departments send, written with the real codecs, and the files that must fail alone (unknown encoding,
mixed encodings, unrepairable mojibake, UTF-16 without BOM, no header)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.health import HEADERS, expected_quarantine, facilities_text, write_facilities
from assets.extract.encoding import encode
from tests.conftest import query, run_datasets

FACILITIES = load_contract(CONTRACTS_DIR / "co_so_y_te.yaml")
LANDING = Path("landing/so_y_te/co_so_y_te")
ROWS = 60
READ = ROWS + 1  # the seeded key conflict appends a twin row
# The encodings old systems and Excel write (UTF-8 with BOM is the dossiers' and the demo's); each file has its
# own facility codes, so every file's rows can be told apart in the one table.
ENCODINGS = ["tcvn3", "vni", "viscii", "cp1258", "utf-16-le"]
KEY = "kho-test-pseudonym-key-0123456789abcdef"



def _archived(data_dir: Path, path: Path) -> Path:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return data_dir / "raw" / sha[:2] / sha


def _as_cp1252(data: bytes) -> str:
    """Bytes read as Windows-1252 the way Excel does: the five bytes cp1252 leaves undefined pass through."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in data)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("csv")
    env = pytest.MonkeyPatch()
    env.setenv("KHO_PSEUDONYM_KEY", KEY)  # module scope: the per-test key fixture is not active yet
    landing = data_dir / LANDING
    good = {enc: write_facilities(landing / f"ds_{enc}.csv", enc, rows=ROWS, first_code=100 * i + 100)
            for i, enc in enumerate(ENCODINGS)}
    text = facilities_text(rows=ROWS, first_code=900)
    # A whole file of UTF-8 read as Windows-1252 and saved again: repaired, because all of it reads back.
    good["mojibake_repairable"] = landing / "ds_excel_resaved.csv"
    good["mojibake_repairable"].write_bytes(_as_cp1252(text.encode("utf-8")).encode("utf-8"))
    bad = {
        "unknown encoding": ("ds_cp1251.csv", "Код;Название;Тип\r\n1;Больница;А\r\n".encode("cp1251"),
                             "cannot tell the encoding"),
        "mixed encodings": ("ds_mixed.csv", encode(text[:900], "tcvn3") + encode(text[900:], "vni"), "not valid"),
        "unrepairable mojibake": (
            "ds_mojibake.csv",
            (text[:600] + text[600:].encode("utf-8").decode("cp1252", errors="replace")).encode("utf-8"),
            "mojibake"),
        "utf-16 without BOM": ("ds_utf16_nobom.csv", text.encode("utf-16-le"), "UTF-16 without a byte-order mark"),
        "no header": ("ds_no_header.csv", encode("\r\n".join(text.splitlines()[1:]), "tcvn3"),
                      "required column(s) missing"),
    }
    for name, data, _ in bad.values():
        (landing / name).write_bytes(data)
    try:
        result = run_datasets(data_dir, FACILITIES)
    finally:
        env.undo()
    return data_dir, good, bad, result


def test_every_encoding_loads(loaded):
    data_dir, good, _, result = loaded
    assert len(result.results) == len(good) + 5  # one run per received file; the bad ones fail alone
    log = query(data_dir, "SELECT * FROM kho_load_log WHERE status = 'loaded'").set_index("file_name")
    for enc, path in good.items():
        row = log.loc[str(path.relative_to(data_dir / "landing"))]
        assert (row.rows_read, row.rows_loaded, row.rows_quarantined) == (
            READ, READ - expected_quarantine(), expected_quarantine()), enc
        assert row.check_outcome == "passed"
    curated = query(data_dir, "SELECT * FROM co_so_y_te")
    assert len(curated) == len(good) * (READ - expected_quarantine())

    # Every encoding decodes to exactly the text the department typed (NFC), tone marks and all.
    expected = pd.DataFrame([line.split(";") for line in facilities_text(rows=ROWS, first_code=100).splitlines()[1:]],
                            columns=HEADERS).set_index("Mã cơ sở")
    for i, enc in [*enumerate(ENCODINGS), (8, "mojibake_repairable")]:  # its codes start at 79900
        rows = curated[curated["ma_co_so"].str.startswith(f"79{i + 1}")].set_index("ma_co_so")
        assert len(rows) == READ - expected_quarantine(), enc
        codes = {f"79{100 + int(c[2:]) - 100 * (i + 1):03d}": c for c in rows.index}
        names = rows.loc[list(codes.values()), "ten_co_so"].tolist()
        assert names == expected.loc[list(codes), "Tên cơ sở"].tolist(), enc
    assert "Bệnh viện" in " ".join(curated["ten_co_so"])
    assert set(curated["loai_hinh"]) <= {"benh_vien", "phong_kham_da_khoa", "phong_kham_chuyen_khoa", "tram_y_te",
                                         "nha_ho_sinh", "phong_chan_tri_yhct"}
    assert curated["dien_thoai"].str.startswith("+8428").all()


def test_unreadable_files_fail_alone_with_file_place_and_reason(loaded):
    data_dir, _, bad, _ = loaded
    log = query(data_dir, "SELECT * FROM kho_load_log WHERE status = 'failed'").set_index("file_name")
    assert len(log) == len(bad)
    for case, (name, data, reason) in bad.items():
        row = log.loc[str(LANDING.relative_to("landing") / name)]
        assert row.rows_loaded == 0, case
        assert str(LANDING.relative_to("landing") / name) in row.message and reason in row.message, case
        assert _archived(data_dir, data_dir / LANDING / name).read_bytes() == data, case  # kept as received
    # Places are named: a line or byte offset where the reader can tell.
    assert "line" in log.loc[str(LANDING.relative_to("landing") / "ds_mojibake.csv")].message
    assert "byte offset" in log.loc[str(LANDING.relative_to("landing") / "ds_utf16_nobom.csv")].message
    assert "line 1" in log.loc[str(LANDING.relative_to("landing") / "ds_no_header.csv")].message


def test_failed_files_are_not_retried(loaded):
    data_dir, _, bad, _ = loaded
    before = query(data_dir, "SELECT * FROM kho_load_log")
    again = run_datasets(data_dir, FACILITIES)
    assert again.success and again.results == []  # nothing new: no run at all
    assert len(query(data_dir, "SELECT * FROM kho_load_log")) == len(before)
