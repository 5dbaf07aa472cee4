"""`kho check FILE --dataset NAME`: a department's self-check, on the demo export and on broken files.

Exit 0 accepted, 1 rejected, 2 unreadable; nothing archived, loaded or written; a bilingual report that names
each failing row as it is numbered in the file, with the value as written and the rule in words.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from assets.demo import dossiers
from assets.demo.dossiers import DEFECTS, HEADERS, dossier_rows, expected_quarantine, write_dossiers
from pipelines.cli import main

INVALID_DATE = "Ngày không hợp lệ (phải ghi dd/mm/yyyy) / Invalid date (write dd/mm/yyyy)"


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The clerk's folder as the working directory; a data folder that must stay untouched."""
    monkeypatch.setenv("KHO_DATA_DIR", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def check(capsys, *args) -> tuple[int, str]:
    code = main(["check", *map(str, args)])
    return code, capsys.readouterr().out


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([HEADERS, *rows])
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))
    return path


def test_demo_export_is_accepted_and_every_bad_row_is_named(workdir, tmp_path, capsys):
    source = write_dossiers(workdir / "ho_so_2026_10.csv", rows=300)
    code, out = check(capsys, source, "--dataset", "ho_so_tthc", "--limit", "0", "--csv", workdir / "loi.csv")
    assert code == 0, out

    read = 300 + DEFECTS["duplicate_row"] + DEFECTS["duplicate_key_conflict"] // 2
    assert f"Data rows:   {read}" in out and "UTF-8 (có BOM / with BOM)" in out
    assert f"{expected_quarantine()} / {read} dòng bị loại / rows rejected" in out
    assert "ĐẠT: tệp sẽ được nhận" in out and "ACCEPTED" in out and "REJECTED" not in out

    # Each bad date: its row number in the file, the value as written, the rule in words.
    sent = pd.read_csv(source, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    dates = sent[sent["Ngày tiếp nhận"].isin(["31/02/2026", "2026/13/45", "00/10/2026"])]
    assert len(dates) == DEFECTS["invalid_date"]
    lines = out.splitlines()
    for i, value in dates["Ngày tiếp nhận"].items():
        row = i + 2  # header is row 1
        (line,) = [x for x in lines if x.split()[:1] == [str(row)]]
        assert "Ngày tiếp nhận" in line and value in line and line.endswith(INVALID_DATE)
    assert "phải cùng ngày hoặc sau «Ngày tiếp nhận»" in out  # the pair rule, in words
    assert "write one of: Trực tiếp, Trực tuyến" in out  # "Fax" is not a channel

    # The saved list: one line per (row, reason), machine-readable codes beside the words.
    saved = pd.read_csv(workdir / "loi.csv", dtype=str, encoding="utf-8-sig")
    assert len(saved) == expected_quarantine()
    assert saved["ma_loi"].str.split(":").str[0].value_counts().to_dict() == {
        "invalid_date": 3, "invalid_tax_code": 4, "duplicate_row": 3, "duplicate_key_conflict": 2,
        "invalid_phone": 2, "unknown_value": 2, "expect_column_pair_values_a_to_be_greater_than_b": 2}

    # Nothing archived, loaded or rendered: no data folder, nothing beside the files the clerk has.
    assert not (tmp_path / "data").exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["ho_so_2026_10.csv", "loi.csv"]


def test_too_many_bad_rows_reject_the_file_with_the_reason(workdir, capsys, monkeypatch):
    monkeypatch.setattr(dossiers, "_seed_defects", lambda rows, rng: None)  # 20 clean rows to start from
    rows = dossier_rows(20, date(2026, 10, 1), seed=3)
    for row in rows[:8]:
        row[8] = "2026-10-32"  # 8 of 20 rows: 40% rejected, the contract allows 25%
    rows[15][1] = "1001612"  # a procedure code without its dot: a warn-level rule
    code, out = check(capsys, write_rows(workdir / "ho_so.csv", rows), "--dataset", "ho_so_tthc", "--limit", "3")
    assert code == 1, out
    assert "KHÔNG ĐẠT" in out and "REJECTED: the file would be refused" in out
    assert "40% số dòng bị loại, vượt ngưỡng cho phép 25% / 40% of rows rejected, above the allowed 25%" in out
    assert "… còn 5 lỗi nữa" in out and "5 more" in out  # --limit 3 of 8
    assert "8 / 20 dòng bị loại / rows rejected" in out
    warning = next(x for x in out.splitlines() if "Mã thủ tục" in x and "(dòng / rows" in x)
    assert "Sai định dạng quy định" in warning and warning.endswith("(dòng / rows 17)")


def test_a_row_with_missing_cells_is_named_by_its_line_with_its_text(workdir, capsys, monkeypatch):
    monkeypatch.setattr(dossiers, "_seed_defects", lambda rows, rng: None)
    path = write_rows(workdir / "ho_so.csv", dossier_rows(10, date(2026, 10, 1)))
    path.write_bytes(path.read_bytes() + "HCM-X,1.000894,thiếu cột\r\n".encode("utf-8"))  # line 12 of the file
    code, out = check(capsys, path, "--dataset", "ho_so_tthc")
    assert code == 0, out
    (line,) = [x for x in out.splitlines() if "thiếu cột" in x]
    assert line.split()[0] == "12" and "HCM-X,1.000894,thiếu cột" in line
    assert "Số cột của dòng khác dòng tiêu đề (18 cột)" in line


def test_a_file_without_data_rows_is_rejected(workdir, capsys):
    code, out = check(capsys, write_rows(workdir / "trong.csv", []), "--dataset", "ho_so_tthc")
    assert code == 1
    assert "Tệp có 0 dòng dữ liệu hợp lệ; cần ít nhất 1 dòng" in out


@pytest.mark.parametrize(("content", "place", "reason"), [
    ("Mã hồ sơ,Tên thủ tục\r\nHS-1,Đăng ký khai sinh\r\n".encode("utf-8"), "line 1", "required column(s) missing"),
    (b"", None, "the file is empty"),
    ("Mã hồ sơ;Mã thủ tục\nHS-1;1.000894\n".encode("utf-16-le"), "line 1", "UTF-16"),
])
def test_an_unreadable_file_exits_2_naming_file_place_and_reason(workdir, capsys, content, place, reason):
    path = workdir / "hong.csv"
    path.write_bytes(content)
    code, out = check(capsys, path, "--dataset", "ho_so_tthc")
    assert code == 2, out
    assert out.startswith("KHÔNG ĐỌC ĐƯỢC TỆP / THE FILE CANNOT BE READ")
    assert "hong.csv" in out and reason in out
    if place:
        assert f"Vị trí / Place:  {place}" in out


def test_unknown_dataset_or_missing_file_exits_2(workdir, capsys):
    assert main(["check", "x.csv", "--dataset", "khong_co"]) == 2
    assert "ho_so_tthc" in capsys.readouterr().err
    code, out = check(capsys, workdir / "khong_co.csv", "--dataset", "ho_so_tthc")
    assert code == 2 and "no such file" in out
