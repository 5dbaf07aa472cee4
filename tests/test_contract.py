"""Contracts: the shipped ones load; a wrong one fails naming the file, the field and the problem."""

from pathlib import Path

import pytest
import yaml

from assets.contract import CONTRACTS_DIR, load_contract, load_contracts
from assets.errors import ContractError

DOSSIERS = CONTRACTS_DIR / "ho_so_tthc.yaml"


def test_shipped_contracts_load_and_describe_every_column():
    contracts = load_contracts()
    assert "ho_so_tthc" in {c.dataset for c in contracts}
    for c in contracts:
        assert all(col.description for col in c.columns.values())
        assert c.department.name


def test_suite_includes_expectations_implied_by_columns():
    c = load_contract(DOSSIERS)
    suite = c.suite()
    not_null = {e["kwargs"]["column"] for e in suite if e["expectation"] == "expect_column_values_to_not_be_null"}
    assert not_null == {n for n, col in c.columns.items() if col.required}
    assert any(e["expectation"] == "expect_table_row_count_to_be_between" for e in suite)


def _broken(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(DOSSIERS.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "ho_so_tthc.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d["columns"]["le_phi"].update(type="money"), "columns.le_phi.type", "Input should be"),
    (lambda d: d.update(primary_key=["khong_co"]), "(top level)", "primary_key names 'khong_co'"),
    (lambda d: d["columns"].update({"Mã Hồ Sơ": {"description": "x"}}), "columns", "not a valid name"),
    (lambda d: d["columns"]["ma_ho_so"].pop("description"), "columns.ma_ho_so.description", "Field required"),
    (lambda d: d["expectations"].append({"expect_values_to_be_pretty": {"column": "kenh"}}), "(top level)",
     "expect_values_to_be_pretty"),
    (lambda d: d["expectations"].append({"expect_column_values_to_not_be_null": {"column": "nope"}}),
     "(top level)", "names column 'nope'"),
    (lambda d: d["load"].update(mode="upsert_everything"), "load.mode", "Input should be"),
    (lambda d: d.update(dataset="DROP TABLE x; --"), "dataset", "not a valid name"),
])
def test_wrong_contract_names_file_field_and_problem(tmp_path, change, field, words):
    path = _broken(tmp_path, change)
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert err.value.file == str(path)
    assert err.value.field == field
    assert words in err.value.problem
    assert str(path) in str(err.value)


def test_dataset_must_match_file_name(tmp_path):
    path = tmp_path / "other_name.yaml"
    path.write_text(DOSSIERS.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ContractError, match="must match the file name"):
        load_contract(path)


def test_yaml_syntax_error_is_a_contract_error(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("dataset: [unclosed", encoding="utf-8")
    with pytest.raises(ContractError, match=r"x.yaml: field '\(yaml\)'"):
        load_contract(path)
