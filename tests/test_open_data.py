"""Open data: marts and opted-in curated tables as BOM CSV + CKAN + DCAT; formulas neutralised; nothing personal."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pandas as pd
import pytest

from assets import open_data, tables
from assets.contract import Contract, load_contracts
from assets.marts import DICH_VU_CONG, dich_vu_cong
from assets.open_data import export, neutralise, publishable_columns, publications
from pipelines.resources import KhoResource
from tests.test_marts import AS_OF, _dossiers

FACILITIES = Contract.model_validate({
    "dataset": "co_so_mo", "title": "Cơ sở khám chữa bệnh", "description": "Danh sách cơ sở.",
    "department": {"code": "so_y_te", "name": "Sở Y tế Thành phố Hồ Chí Minh"}, "landing": "so_y_te/x/*.csv",
    "columns": {"ma_co_so": {"description": "Mã cơ sở"}, "ten_co_so": {"description": "Tên cơ sở"},
                "ma_so_thue": {"type": "tax_code", "description": "Mã số thuế"},
                "ngay_cap_phep": {"type": "date", "description": "Ngày cấp phép"}},
    "partitioning": {"column": "ngay_cap_phep", "grain": "month"},
    "freshness": {"cron": "0 9 5 * *"}, "open_data": True,
})
PSEUDONYM = "ps_" + "0123456789abcdef" * 2


def _load(kho: KhoResource, contract: Contract, frame: pd.DataFrame) -> None:
    wh = kho.warehouse
    table = wh.curated_table(contract)
    wh.create(table)
    frame = frame.assign(_kho_load_id="L1", _kho_file_sha256="f" * 64, _kho_row=2,
                         _kho_loaded_at=pd.Timestamp("2026-11-01", tz="UTC"))
    with wh.transaction() as conn:
        wh.insert(conn, table, frame)


def _csv(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_neutralise_prefixes_formula_starts_in_text_only():
    frame = pd.DataFrame({"t": ["=1+1", "+84903", "-x", "@SUM(A1)", "\tcmd", "an toàn", None], "n": [-1] * 7})
    out = neutralise(frame)
    assert out["t"].tolist()[:6] == ["'=1+1", "'+84903", "'-x", "'@SUM(A1)", "'\tcmd", "an toàn"]
    assert pd.isna(out["t"].iloc[6])
    assert out["n"].tolist() == [-1] * 7  # numbers stay numbers


def test_export_writes_csv_ckan_and_dcat(tmp_path):
    kho = KhoResource(data_dir=str(tmp_path))
    _load(kho, FACILITIES, pd.DataFrame({
        "ma_co_so": ["CS-1", "CS-2", "CS-3"], "ten_co_so": ["=HYPERLINK(\"x\")", "Phòng khám Hòa Bình", "@cmd"],
        "ma_so_thue": ["0301234567", PSEUDONYM, None],  # a person's tax code reaches curated as a pseudonym
        "ngay_cap_phep": [date(2026, 9, 3), date(2026, 10, 1), date(2026, 10, 31)],
        "ky": ["2026-09", "2026-10", "2026-10"],
    }))
    tables.replace(kho.warehouse, kho.lake_root, DICH_VU_CONG, dich_vu_cong(_dossiers(), AS_OF))

    contracts = (*load_contracts(), FACILITIES)
    written = {w["name"]: w["rows"] for w in export(kho.warehouse, tmp_path, contracts)}
    assert written == {"co_so_mo": 3, "mart_dich_vu_cong": 3}  # marts without rows yet are not published
    folder = tmp_path / "open_data"

    rows = _csv(folder / "co_so_mo.csv")
    assert list(rows[0]) == ["ma_co_so", "ten_co_so", "ma_so_thue", "ngay_cap_phep", "ky"]  # no _kho_ columns
    assert [r["ten_co_so"] for r in rows] == ["'=HYPERLINK(\"x\")", "Phòng khám Hòa Bình", "'@cmd"]
    assert [r["ma_so_thue"] for r in rows] == ["0301234567", "", ""]  # never a pseudonym
    assert rows[0]["ngay_cap_phep"] == "2026-09-03"

    ckan = json.loads((folder / "co_so_mo.ckan.json").read_text(encoding="utf-8"))
    extras = {e["key"]: e["value"] for e in ckan["extras"]}
    assert ckan["title"] == "Cơ sở khám chữa bệnh" and ckan["author"] == "Sở Y tế Thành phố Hồ Chí Minh"
    assert ckan["license_id"] == open_data.LICENCE["id"] and ckan["owner_org"] == "so_y_te"
    assert extras == {"publisher": "Sở Y tế Thành phố Hồ Chí Minh", "temporal_start": "2026-09-03",
                      "temporal_end": "2026-10-31", "frequency": "monthly", "rows": "3"}
    resource = ckan["resources"][0]
    assert resource["format"] == "CSV" and resource["size"] == (folder / "co_so_mo.csv").stat().st_size
    assert [f["id"] for f in resource["fields"]] == list(rows[0])

    mart = _csv(folder / "mart_dich_vu_cong.csv")
    assert sum(int(r["so_tiep_nhan"]) for r in mart) == 14
    catalog = json.loads((folder / "catalog.jsonld").read_text(encoding="utf-8"))
    by_id = {d["dct:identifier"]: d for d in catalog["dcat:dataset"]}
    dv = by_id["kho-hcm-mart_dich_vu_cong"]
    assert dv["dct:temporal"] == {"@type": "dct:PeriodOfTime", "dcat:startDate": "2026-09", "dcat:endDate": "2026-10"}
    assert dv["dct:publisher"]["foaf:name"] == "Trung tâm Phục vụ hành chính công Thành phố Hồ Chí Minh"
    assert dv["dct:accrualPeriodicity"] == {"@id": "http://purl.org/cc/freq/monthly"}
    assert "tử số" not in dv["dct:description"] and "/ received" in dv["dct:description"]  # rates defined

    # A second export replaces the folder: a table no longer published disappears.
    export(kho.warehouse, tmp_path, load_contracts())
    assert not (folder / "co_so_mo.csv").exists() and (folder / "mart_dich_vu_cong.csv").exists()


def test_no_personal_column_can_reach_open_data(tmp_path):
    # The shipped contracts: no table with a personal column is published, and no published column is personal.
    for pub in publications(load_contracts()):
        assert not any(c.personal for c in pub.department.columns.values()) or pub.name.startswith("mart_")
    for c in load_contracts():
        assert not {n for n, _, _ in publishable_columns(c)} & {n for n, col in c.columns.items() if col.personal}
    # Even a contract forced past validation (model_copy does not validate) publishes no personal value,
    # here with raw values sitting in the table as if pseudonymisation had been skipped.
    forced = FACILITIES.model_copy(update={"columns": {
        **FACILITIES.columns,
        "so_cccd": FACILITIES.columns["ma_co_so"].model_copy(update={"type": "citizen_id", "personal": True}),
    }})
    kho = KhoResource(data_dir=str(tmp_path))
    _load(kho, forced, pd.DataFrame({"ma_co_so": ["CS-1"], "ten_co_so": ["A"], "ma_so_thue": [None],
                                     "so_cccd": ["079203001234"], "ngay_cap_phep": [date(2026, 10, 1)],
                                     "ky": ["2026-10"]}))
    export(kho.warehouse, tmp_path, [forced])
    body = (tmp_path / "open_data" / "co_so_mo.csv").read_text(encoding="utf-8-sig")
    assert "so_cccd" not in body and "079203001234" not in body
    assert "so_cccd" not in (tmp_path / "open_data" / "co_so_mo.ckan.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("cron, expected", [("0 9 5 * *", "monthly"), ("0 8 * * 1", "weekly"),
                                            ("30 6 * * *", "daily"), ("0 9 1 1,7 *", "irregular")])
def test_update_frequency_from_the_freshness_cron(cron, expected):
    contract = FACILITIES.model_copy(update={"freshness": FACILITIES.freshness.model_copy(update={"cron": cron})})
    assert open_data.frequency(contract) == expected
