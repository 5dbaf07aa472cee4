"""`kho demo` end to end, as a newcomer runs it (no KHO_PSEUDONYM_KEY): no raw personal value of the demo exports
is anywhere analysts or the public can read — the shared SQLite tables (curated, marts, dictionary), the lake's
curated and mart Parquet, the catalogue and the open-data export — while the restricted quarantine keeps them.
Also checks the marts, the dictionary and the open data the demo produced against the curated tables."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import unicodedata
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.contract import load_contracts
from assets.extract import extract
from quality import citizen_id, phone
from quality.pseudonym import KEY_ENV

CONTRACTS = {c.dataset: c for c in load_contracts()}
RESTRICTED = ("quarantine_", "kho_")  # SQLite zone prefixes of what analysts never read


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from pipelines.cli import main

    data = tmp_path_factory.mktemp("demo") / "data"
    saved = dict(os.environ)
    os.environ.pop(KEY_ENV, None)  # a newcomer has no key: the demo makes one
    try:
        assert main(["demo", "--data", str(data)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return data


def _personal_values(data: Path) -> set[str]:
    """Every citizen ID, phone and individual's name in the demo exports, as written and as normalised."""
    conn = sqlite3.connect(data / "warehouse.sqlite")
    files = conn.execute("SELECT dataset, archive_path, file_name FROM kho_raw_manifest").fetchall()
    conn.close()
    values: set[str] = set()
    for dataset, path, name in files:
        contract = CONTRACTS[dataset]
        frame = extract(contract, Path(path).read_bytes(), name).frame
        for column, col in contract.columns.items():
            if not col.personal:
                continue
            text = frame[column].dropna().astype(str).str.strip()
            if col.type == "citizen_id":
                values |= set(text) | set(citizen_id.normalize(text)[0].dropna())
            elif col.type == "phone":
                e164 = phone.normalize(text)[0].dropna()
                values |= set(text) | set(text.str.replace(r"\D", "", regex=True)) | set(e164)
                values |= {"0" + p[3:] for p in e164 if p.startswith("+84")}
            elif col.type == "text":  # names: the NFC form a reader would search for
                values |= {unicodedata.normalize("NFC", v) for v in text if len(v.split()) >= 3}
    return {v for v in values if len(re.sub(r"\D", "", v)) >= 9 or not v[:1].isdigit() and len(v) >= 8}


def _sqlite_cells(data: Path, restricted: bool):
    conn = sqlite3.connect(data / "warehouse.sqlite")
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in names:
        if name.startswith(RESTRICTED) == restricted:
            for row in conn.execute(f'SELECT * FROM "{name}"'):
                yield from row
    conn.close()


def _shared_file_cells(data: Path):
    for zone in ("curated", "mart"):
        for path in sorted((data / "lake" / zone).rglob("*.parquet")):
            for column in pq.read_table(path).columns:
                yield from column.to_pylist()
    for path in [data / "lake" / "catalogue.html", *sorted((data / "open_data").iterdir())]:
        yield path.read_text(encoding="utf-8-sig")


_TOKEN = re.compile(r"[\w+.\-]+")


def _forms(cells) -> set[str]:
    """What a value could be found as: each text cell, its tokens (with their digit runs and separator-free
    digits), and its runs of 3 to 5 words (names inside free text). A set, so looking up thousands of values is
    instant where substring search over megabytes is not."""
    out: set[str] = set()
    for cell in {c for c in cells if isinstance(c, str) and not c.startswith("ps_")}:
        cell = unicodedata.normalize("NFC", cell)
        out.add(cell.strip())
        tokens = _TOKEN.findall(cell)
        for token in tokens:
            out.add(token)
            if any(ch.isdigit() for ch in token):
                out.update(re.findall(r"\+?\d+", token))
                out.add(re.sub(r"\D", "", token))
        words = cell.split()
        for n in (3, 4, 5):
            out.update(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    return out


def _leaked(values: set[str], forms: set[str]) -> list[str]:
    return sorted(v for v in values if v in forms or re.sub(r"[\s.\-]", "", v) in forms)


def test_no_raw_personal_value_reaches_shared_tables_lake_or_open_data(demo):
    values = _personal_values(demo)
    assert len(values) > 3000  # citizen IDs, phones and names of ~3,000 people, in every spelling
    assert (demo / "demo.key").exists()
    for where, cells in (("SQLite shared tables", _sqlite_cells(demo, restricted=False)),
                         ("lake, catalogue, open data", _shared_file_cells(demo))):
        leaked = _leaked(values, _forms(cells))
        assert not leaked, f"{where}: {leaked[:5]}"
    # The search does find raw values where they may be: the restricted quarantine keeps what was sent.
    assert _leaked(values, _forms(_sqlite_cells(demo, restricted=True)))


def test_curated_lake_keeps_statistics_except_for_pseudonyms(demo):
    """Row-group min/max help readers skip data, except for pseudonyms: uniformly random, they prune nothing, so
    the curated lake files do not spend time on theirs."""
    contract = CONTRACTS["ho_so_tthc"]
    hashed = {n for n, c in contract.columns.items() if c.personal and c.protect == "pseudonymise"}
    assert hashed
    files = sorted((demo / "lake" / "curated" / contract.dataset).rglob("*.parquet"))
    assert files
    for path in files:
        group = pq.ParquetFile(path).metadata.row_group(0)
        kept = {group.column(i).path_in_schema for i in range(group.num_columns) if group.column(i).is_stats_set}
        assert not kept & hashed
        assert {"ma_ho_so", "ngay_tiep_nhan", "_kho_loaded_at"} <= kept, path


def test_demo_marts_add_up_to_the_curated_tables(demo):
    conn = sqlite3.connect(demo / "warehouse.sqlite")
    one = lambda sql: conn.execute(sql).fetchone()  # noqa: E731
    assert one("SELECT sum(so_tiep_nhan) FROM mart_dich_vu_cong") == one("SELECT count(*) FROM ho_so_tthc")
    assert one("SELECT sum(so_dang_ky_moi), sum(von_dieu_le_dang_ky_moi) FROM mart_doanh_nghiep") == \
        one("SELECT count(DISTINCT ma_so_thue), sum(von_dieu_le) FROM dang_ky_doanh_nghiep")
    assert one("SELECT count(*) FROM mart_doanh_nghiep WHERE ma_nganh_cap1 IS NULL") == (0,)
    dictionary = pd.read_sql("SELECT bang, cot FROM tu_dien_du_lieu", conn)
    conn.close()
    assert {("ho_so_tthc", "so_cccd"), ("dich_vu_cong", "ty_le_dung_han")} <= set(zip(dictionary.bang, dictionary.cot))

    catalog = json.loads((demo / "open_data" / "catalog.jsonld").read_text(encoding="utf-8"))
    assert {d["dct:identifier"] for d in catalog["dcat:dataset"]} == {"kho-hcm-mart_dich_vu_cong",
                                                                      "kho-hcm-mart_doanh_nghiep"}
    personal = {n for c in CONTRACTS.values() for n, col in c.columns.items() if col.personal}
    for path in (demo / "open_data").glob("*.csv"):
        header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
        assert not set(header) & personal
