"""Hostile inputs: broken or malicious contracts, landing folders with links and escapes, zip bombs and huge sheets,
formulas in CSV written for people.

A contract is code the city's departments hand in: whatever it holds, the code location must either load or fail
with a ContractError naming the file and the field, and nothing from it may reach SQL or a path unchecked.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.contract import CONTRACTS_DIR, IDENTIFIER, load_contract, load_contracts
from assets.demo.dossiers import write_dossiers
from assets.errors import ContractError, ExportError
from assets.raw import archive
from tests.conftest import run_datasets

SOURCE = (CONTRACTS_DIR / "ho_so_tthc.yaml").read_text(encoding="utf-8")
INJECTION = 'x"; DROP TABLE y; --'


def _sub(old: str, new: str) -> str:
    assert old in SOURCE, old
    return SOURCE.replace(old, new, 1)


def _laughs() -> str:
    """A billion laughs: nine levels of nine aliases, 387 million values once expanded."""
    levels = "a0: &x0 [lol], " + ", ".join(f"a{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, 10))
    return _sub("  - expect_column_values_to_be_between: {column: le_phi, min_value: 0, max_value: 50000000}",
                "  - expect_column_values_to_be_in_set: {column: le_phi, value_set: [{" + levels + "}]}")


# (case, contract text or bytes, the field the error must name)
BROKEN = [
    ("yaml syntax", SOURCE + "\n  bad: [unclosed\n", "(yaml)"),
    ("not a mapping", "- a\n- b\n", "(top level)"),
    ("empty file", "", "(top level)"),
    ("not utf-8", SOURCE.encode("cp1258", errors="replace"), "(file)"),
    ("NUL bytes", "dataset: \x00\x01", "(yaml)"),
    ("key written twice", SOURCE + "\ndataset: ho_so_tthc\n", "(yaml)"),
    ("billion laughs", _laughs(), "(yaml)"),
    ("typo in a field", _sub("primary_key:", "primary_keys:"), "primary_keys"),
    ("unknown column type", _sub("type: integer", "type: money"), "columns.le_phi.type"),
    ("column name injects SQL", _sub("  ma_thu_tuc:\n", f"  '{INJECTION}':\n"), "columns"),
    ("department code injects SQL", _sub("code: trung_tam_hcc", f"code: '{INJECTION}'"), "department.code"),
    ("partition key injects SQL", _sub("key: ky}", f"key: '{INJECTION}'}}"), "partitioning.key"),
    ("partition key is a path", _sub("key: ky}", "key: '../../etc'}"), "partitioning.key"),
    ("impossible start date", _sub("key: ky}", "key: ky, start: '2026-02-30'}"), "partitioning.start"),
    ("cron Dagster refuses", _sub('cron: "0 9 5 * *"', 'cron: "every monday"'), "freshness.cron"),
    ("absolute landing", _sub('landing: "trung_tam_hcc/ho_so_tthc/*.csv"', 'landing: "/etc/*"'), "landing"),
    ("landing leaves the folder", _sub('landing: "trung_tam_hcc/ho_so_tthc/*.csv"', 'landing: "../../*/*.csv"'),
     "landing"),
    ("two-character delimiter", _sub("  type: csv ", "  delimiter: ';;'\n  type: csv "), "format.delimiter"),
    ("unknown encoding", _sub("  type: csv ", "  encoding: klingon\n  type: csv "), "format.encoding"),
    ("unknown expectation", _sub("expect_column_values_to_be_between:", "expect_column_values_to_be_bogus:"),
     "(top level)"),
    ("expectation on a missing column", _sub("{column: le_phi, min_value", "{column: khong_co, min_value"),
     "(top level)"),
    ("primary key not a column", _sub("primary_key: [ma_ho_so]", "primary_key: [ma_ho_so, khong_co]"), "(top level)"),
    ("reserved _kho name", _sub("  ma_thu_tuc:\n", "  _kho_row:\n"), "columns"),
]


@pytest.fixture(scope="module")
def definitions_module():
    import pipelines.definitions as module  # builds the shipped contracts' Definitions once, on import

    return module


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / f"{name}.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize("case, text, field", BROKEN, ids=[c for c, _, _ in BROKEN])
def test_a_broken_contract_fails_the_code_location_with_its_file_and_field(tmp_path, monkeypatch, definitions_module,
                                                                          case, text, field):
    """Beside a good contract, a broken one stops Definitions with a ContractError naming it; nothing else escapes."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    _write(folder, "co_so_y_te", (CONTRACTS_DIR / "co_so_y_te.yaml").read_text(encoding="utf-8"))
    broken = _write(folder, "ho_so_tthc", text)
    monkeypatch.setattr(definitions_module, "load_contracts", lambda directory=folder: load_contracts(directory))
    with pytest.raises(ContractError) as info:
        definitions_module.build_definitions()
    assert info.value.file == str(broken) and str(broken) in str(info.value)
    assert info.value.field == field, str(info.value)
    assert info.value.problem.strip()


def test_the_good_contracts_of_that_folder_load(tmp_path, monkeypatch, definitions_module):
    folder = tmp_path / "contracts"
    folder.mkdir()
    for name in ("co_so_y_te", "ho_so_tthc"):
        _write(folder, name, (CONTRACTS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    monkeypatch.setattr(definitions_module, "load_contracts", lambda directory=folder: load_contracts(directory))
    defs = definitions_module.build_definitions()
    assert {k.path[0] for k in defs.resolve_all_asset_keys()} >= {"co_so_y_te", "ho_so_tthc"}


def test_sql_injection_in_a_column_name_is_refused_at_load(tmp_path):
    path = _write(tmp_path, "ho_so_tthc", _sub("  ma_thu_tuc:\n", f"  '{INJECTION}':\n"))
    with pytest.raises(ContractError, match=re.escape(f"'{INJECTION}' is not a valid name")) as info:
        load_contract(path)
    assert info.value.file == str(path) and info.value.field == "columns"


def test_every_name_that_reaches_sql_or_a_path_is_an_identifier():
    """What the warehouse and the lake build names from, in every shipped contract."""
    for c in load_contracts():
        names = [c.dataset, c.table, c.department.code, *c.columns, *c.format.children,
                 *[col for child in c.format.children.values() for col in child.columns]]
        if c.partitioning:
            names.append(c.partitioning.key)
        assert all(IDENTIFIER.fullmatch(n) for n in names), (c.dataset, [n for n in names if not IDENTIFIER.fullmatch(n)])


# ---- the landing folder ----------------------------------------------------------------------------------


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing" / "trung_tam_hcc" / "ho_so_tthc"
    write_dossiers(folder / "ho_so_2026_10.csv", rows=40)
    return tmp_path / "landing"


def _archive(landing: Path, tmp_path: Path, pattern: str = "trung_tam_hcc/ho_so_tthc/*.csv"):
    return archive(landing, tmp_path / "raw", pattern, "ho_so_tthc", "trung_tam_hcc")


def test_a_symlinked_file_is_refused(landing, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("Mã hồ sơ\nmật\n", encoding="utf-8")
    (landing / "trung_tam_hcc" / "ho_so_tthc" / "zz.csv").symlink_to(secret)
    with pytest.raises(ExportError, match="symbolic links are not accepted") as info:
        _archive(landing, tmp_path)
    assert "zz.csv" in str(info.value)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").rglob("*"))  # nothing archived


def test_a_symlinked_folder_is_refused_even_inside_landing(landing, tmp_path):
    (landing / "trung_tam_hcc" / "khac").symlink_to(landing / "trung_tam_hcc" / "ho_so_tthc", target_is_directory=True)
    with pytest.raises(ExportError, match="symbolic links") as info:
        _archive(landing, tmp_path, "trung_tam_hcc/*/*.csv")
    assert "khac" in info.value.place


@pytest.mark.parametrize("pattern", ["../*.csv", "trung_tam_hcc/../../*", "/etc/*", "~/*"])
def test_a_pattern_leaving_landing_is_refused(landing, tmp_path, pattern):
    (tmp_path / "outside.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(ExportError, match="inside the landing folder"):
        _archive(landing, tmp_path, pattern)


def test_lock_files_pipes_and_hidden_files_are_not_exports(landing, tmp_path):
    folder = landing / "trung_tam_hcc" / "ho_so_tthc"
    (folder / "~$ho_so_2026_10.csv").write_bytes(b"\x00owner")  # Excel's lock file
    (folder / ".ho_so_2026_10.csv.part").write_bytes(b"half")  # an upload in progress
    os.mkfifo(folder / "pipe.csv")  # opening it would block forever
    rows = _archive(landing, tmp_path)
    assert [r.file_name for r in rows] == ["trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv"]
    archived = Path(rows[0].archive_path)
    assert archived.read_bytes() == (folder / "ho_so_2026_10.csv").read_bytes()
    assert not (archived.stat().st_mode & 0o222)  # read-only
    assert not list((tmp_path / "raw").glob(".*.part"))  # no temporary file left behind


def test_the_same_bytes_are_archived_once(landing, tmp_path):
    folder = landing / "trung_tam_hcc" / "ho_so_tthc"
    (folder / "ban_sao.csv").write_bytes((folder / "ho_so_2026_10.csv").read_bytes())
    rows = _archive(landing, tmp_path)
    assert len(rows) == 2 and rows[0].sha256 == rows[1].sha256 and rows[0].archive_path == rows[1].archive_path
    assert len([p for p in (tmp_path / "raw").rglob("*") if p.is_file()]) == 1


def test_a_symlink_in_landing_stops_the_run_and_loads_nothing(data_dir):
    dossiers = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
    folder = data_dir / "landing" / "trung_tam_hcc" / "ho_so_tthc"
    write_dossiers(folder / "ho_so_2026_10.csv", rows=40)
    (data_dir / "passwd.csv").write_text("x\n", encoding="utf-8")
    (folder / "passwd.csv").symlink_to(data_dir / "passwd.csv")
    with pytest.raises(ExportError, match="symbolic links are not accepted"):
        run_datasets(data_dir, dossiers)
    warehouse = data_dir / "warehouse.sqlite"
    assert not warehouse.exists() or not sa.inspect(sa.create_engine(f"sqlite:///{warehouse}")).has_table("ho_so_tthc")


# ---- Excel: zip bombs and huge sheets, at pipeline level -------------------------------------------------

BUSINESSES = load_contract(CONTRACTS_DIR / "dang_ky_doanh_nghiep.yaml")


def _zip_bomb() -> bytes:
    """A workbook-shaped zip whose sheet inflates about 1000:1 (to 40 MB here; the ratio is what is refused)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"<c>0</c>" * (1 << 17)  # 1 MB
            for _ in range(40):
                member.write(block)
    return buf.getvalue()


def _huge_sheet() -> bytes:
    """A tiny workbook whose sheet claims A1:XFD1048576 (17 billion cells): refused before it is loaded."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet(BUSINESSES.format.sheet if isinstance(BUSINESSES.format.sheet, str) else "DN")
    ws.write(0, 0, "Mã số doanh nghiệp")
    ws.write(1048575, 16383, "x")
    wb.close()
    return buf.getvalue()


@pytest.mark.parametrize("make, words", [(_zip_bomb, "zip bomb refused"), (_huge_sheet, "cell limit")],
                         ids=["zip bomb", "huge sheet"])
def test_excel_bombs_are_refused_by_size_limits_at_pipeline_level(data_dir, make, words):
    landing = data_dir / "landing" / Path(BUSINESSES.landing).parent
    landing.mkdir(parents=True)
    bomb = landing / "dang_ky_2026_10.xlsx"
    bomb.write_bytes(make())
    result = run_datasets(data_dir, BUSINESSES)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key.endswith("__clean")
    message = failure.step_failure_data.user_failure_data.description
    assert "dang_ky_2026_10.xlsx" in message and words in message, message
    engine = sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")
    assert not sa.inspect(engine).has_table(BUSINESSES.table)
    log = pd.read_sql("SELECT status, message FROM kho_load_log", engine)
    assert log["status"].tolist() == ["failed"] and words in log["message"][0]


# ---- CSV written for people: formulas ----------------------------------------------------------------------


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(cells=st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["=", "+", "-", "@", "\t", "\r"]).flatmap(
    lambda c: st.text(max_size=12).map(lambda t: c + t))), min_size=1, max_size=8))
def test_open_data_csv_never_starts_a_cell_with_a_formula(cells):
    """Whatever text a department typed, a spreadsheet opening the open-data CSV sees no formula
    (assets.open_data, owner issue 6: neutralised with a leading apostrophe)."""
    import csv

    from assets.open_data import neutralise

    frame = pd.DataFrame({"ten": pd.Series(cells, dtype="str"), "ghi_chu": pd.Series(cells, dtype=object)})
    body = neutralise(frame).to_csv(index=False, lineterminator="\r\n")
    rows = list(csv.reader(io.StringIO(body)))[1:]
    for row, original in zip(rows, cells):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
            if original.startswith(("=", "+", "-", "@", "\t", "\r")):
                assert cell == "'" + original
