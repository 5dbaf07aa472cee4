"""Contract fields for SQL sources and JSON child tables: a wrong one fails at load with the file and the field."""

from __future__ import annotations

import pytest
import yaml

from assets.children import child_contract
from assets.contract import CONTRACTS_DIR, load_contract
from assets.errors import ContractError


def _write(tmp_path, name: str, change) -> str:
    data = yaml.safe_load((CONTRACTS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name, change, field, problem", [
    ("giay_phep_xay_dung", lambda d: d["format"].update(url_env="mysql://root:secret@db/sxd"), "format",
     "the NAME of the environment variable"),
    ("giay_phep_xay_dung", lambda d: d["format"].update(query="SELECT * FROM gpxd_giay_phep"), "format",
     "exactly one of table or query"),
    ("co_so_y_te", lambda d: d["format"].update(watermark="NgayCapNhat"), "format", "only apply to type sql"),
    ("co_so_y_te", lambda d: d["format"].update(children={"buoc": {"path": "x", "title": "x", "columns": {}}}),
     "format", "children only apply to type json"),
    ("phan_anh_1022", lambda d: d.pop("primary_key"), "(top level)", "needs the parent's primary_key"),
    ("phan_anh_1022", lambda d: d["format"]["children"]["buoc_xu_ly"]["columns"].update(
        thu_tu={"description": "Bước"}), "(top level)", "taken by the parent key"),
])
def test_wrong_source_or_child_fields_name_file_and_field(tmp_path, name, change, field, problem):
    path = _write(tmp_path, name, change)
    with pytest.raises(ContractError) as e:
        load_contract(tmp_path / f"{name}.yaml")
    assert e.value.file == path and e.value.field == field and problem in e.value.problem


def test_child_contract_is_keyed_to_its_parent():
    parent = load_contract(CONTRACTS_DIR / "phan_anh_1022.yaml")
    child = child_contract(parent, "buoc_xu_ly")
    assert child.dataset == "phan_anh_1022__buoc_xu_ly"
    assert child.primary_key == ["ma_phan_anh", "thu_tu"]
    assert list(child.columns)[:3] == ["ma_phan_anh", "thoi_gian_tiep_nhan", "thu_tu"]
    assert child.partitioning == parent.partitioning and child.load == parent.load
    assert child.columns["ma_phan_anh"] == parent.columns["ma_phan_anh"]
