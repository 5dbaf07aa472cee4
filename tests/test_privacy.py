"""Personal data in shared tables: pseudonymised or dropped per contract, refused without a key, demo key."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest
import sqlalchemy as sa

from assets import privacy
from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import write_dossiers
from assets.errors import ContractError
from assets.extract.base import ROW_COLUMN
from assets.extract.csv import REASONS
from assets.flow import FILE_COLUMN, curated_rows
from assets.warehouse import Warehouse
from quality.pseudonym import KEY_ENV, MissingKey, pseudonymise_column
from tests.conftest import TEST_KEY, run_datasets

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
KEY = TEST_KEY.encode()
CCCD, PHONE = "079203001234", "+84903123456"


def _batch(**overrides) -> pd.DataFrame:
    row = {c: None for c in DOSSIERS.columns} | {
        "ma_ho_so": "HS-1", "ho_ten_nguoi_nop": "Nguyễn Văn Hòa", "so_cccd": CCCD, "so_dien_thoai": PHONE,
        "ma_so_thue": "0301234567", "ky": "2026-10", REASONS: None, ROW_COLUMN: 2, FILE_COLUMN: "ab" * 32,
    } | overrides
    return pd.DataFrame([row])


def _with(contract, column: str, **change):
    cols = dict(contract.columns)
    cols[column] = cols[column].model_copy(update=change)
    return contract.model_copy(update={"columns": cols})


def test_personal_columns_become_keyed_pseudonyms_of_the_normalised_value():
    rows = curated_rows(DOSSIERS, _batch(ho_ten_nguoi_nop="  NGUYỄN VĂN HOÀ "))
    assert rows.loc[0, "so_cccd"] == pseudonymise_column(pd.Series([CCCD]), "citizen_id", KEY)[0]
    assert rows.loc[0, "so_dien_thoai"] == pseudonymise_column(pd.Series(["0903 123 456"]), "phone", KEY)[0]
    # spelling, case and tone placement do not split a person
    assert rows.loc[0, "ho_ten_nguoi_nop"] == curated_rows(DOSSIERS, _batch()).loc[0, "ho_ten_nguoi_nop"]
    text = rows.astype(str).to_string()
    assert CCCD not in text and "903123456" not in text and "Nguy" not in text
    assert rows.loc[0, "ma_so_thue"] == "0301234567" and rows.loc[0, "ma_ho_so"] == "HS-1"


def test_drop_leaves_the_column_out_of_rows_table_and_lake_schema():
    contract = _with(DOSSIERS, "ho_ten_nguoi_nop", protect="drop")
    assert "ho_ten_nguoi_nop" not in contract.curated_columns
    assert "ho_ten_nguoi_nop" not in curated_rows(contract, _batch())
    table = Warehouse("sqlite://").curated_table(contract)
    assert "ho_ten_nguoi_nop" not in table.c
    assert isinstance(table.c["so_cccd"].type, sa.Text)  # a pseudonym, whatever the column's own type


def test_a_twelve_digit_tax_code_is_an_individual_and_gets_the_citizen_id_pseudonym():
    rows = curated_rows(DOSSIERS, pd.concat([_batch(ma_so_thue=CCCD), _batch(ma_ho_so="HS-2")], ignore_index=True))
    assert rows["ma_so_thue"].tolist() == [rows.loc[0, "so_cccd"], "0301234567"]  # joins with so_cccd


def test_without_a_key_personal_rows_are_refused_naming_the_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(MissingKey, match=f"ho_so_tthc has personal data .*{KEY_ENV}"):
        curated_rows(DOSSIERS, _batch())
    # A table with nothing personal needs no key.
    plain = DOSSIERS.model_copy(update={"columns": {n: c for n, c in DOSSIERS.columns.items() if not c.personal}})
    assert len(curated_rows(plain, _batch())) == 1
    with pytest.raises(MissingKey):  # ... unless a tax code turns out to be a person's
        curated_rows(plain, _batch(ma_so_thue=CCCD))


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d["columns"]["le_phi"].update(protect="drop"), "columns.le_phi", "only applies to a personal"),
    (lambda d: d.update(open_data=True), "(top level)", "personal columns cannot be published"),
])
def test_contract_rejects_protection_misuse(tmp_path, change, field, words):
    import yaml

    data = yaml.safe_load((CONTRACTS_DIR / "ho_so_tthc.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "ho_so_tthc.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError) as e:
        load_contract(path)
    assert field in str(e.value) and words in str(e.value)


def test_demo_key_is_random_private_reused_and_never_overrides_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    path = privacy.use_demo_key(tmp_path)
    assert path == tmp_path / "demo.key" and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = os.environ[KEY_ENV]
    assert len(bytes.fromhex(key)) == 32
    monkeypatch.delenv(KEY_ENV)
    assert privacy.use_demo_key(tmp_path) == path and os.environ[KEY_ENV] == key  # same folder, same pseudonyms
    assert privacy.use_demo_key(tmp_path / "other") is None  # the environment's key wins
    assert os.environ[KEY_ENV] == key
    monkeypatch.delenv(KEY_ENV)
    privacy.use_demo_key(tmp_path / "fresh")
    assert os.environ[KEY_ENV] != key


def test_pipeline_without_key_fails_clearly_and_loads_nothing_until_the_key_is_set(data_dir, monkeypatch):
    write_dossiers(data_dir / "landing" / "trung_tam_hcc" / "ho_so_tthc" / "ho_so_2026_10.csv", rows=100)
    monkeypatch.delenv(KEY_ENV)
    result = run_datasets(data_dir, DOSSIERS)
    assert not result.success
    failures = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    assert any(KEY_ENV in m and "ho_so_tthc has personal data" in m for m in failures), failures
    engine = sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        assert "ho_so_tthc" not in names or not conn.execute(sa.text("SELECT count(*) FROM ho_so_tthc")).scalar()
        loaded = conn.execute(sa.text("SELECT count(*) FROM kho_load_log WHERE status = 'loaded'")).scalar()
    assert not loaded
    assert not list((data_dir / "lake" / "curated").rglob("*.parquet"))
    # The raw values stay where they may: the raw archive and the restricted quarantine.
    assert list((data_dir / "raw").rglob("*"))

    monkeypatch.setenv(KEY_ENV, TEST_KEY)  # the files waited: the next run loads them
    assert run_datasets(data_dir, DOSSIERS).success
    with engine.connect() as conn:
        cccd = conn.execute(sa.text("SELECT so_cccd FROM ho_so_tthc")).scalars().all()
    assert len(cccd) > 80 and all(v.startswith("ps_") for v in cccd)
    engine.dispose()


def test_individual_tax_codes_as_pandas_fullmatch_finds_them():
    """The Arrow path settles ASCII values; Unicode digits (Python's \\d) and non-text columns go through pandas."""
    values = [CCCD, "0301234567", "0301234567-001", "999999999999", "١٢٣٤٥٦٧٨٩٠١٢", "07920300123４", None,
              "079203001234\n", " 079203001234", "", "Nguyễn", "0792030012345"]
    for column in (pd.Series(values, dtype="str"), pd.Series(values, dtype=object),
                   pd.Series([79203001234, 301234567, 123456789012, None], dtype=object)):
        got, want = privacy._individual_tax_codes(column), privacy._individual_tax_codes_slow(column)
        assert got.dtype == bool and got.index.equals(column.index) and got.tolist() == want.tolist()
    assert privacy._individual_tax_codes(pd.Series(values, dtype="str")).tolist() == [
        True, False, False, True, True, True, False, False, False, False, False, False]


def test_individual_tax_codes_are_replaced_in_arrow_as_through_object():
    values = pd.Series([CCCD, "0301234567", None, "999999999999", CCCD, "١٢٣٤٥٦٧٨٩٠١٢"], dtype="str", name="mst")
    mask = privacy._individual_tax_codes(values)
    got = privacy._with_pseudonyms(values, mask, KEY)
    want = values.astype(object)
    want[mask] = pseudonymise_column(values[mask], "citizen_id", KEY)
    want = want.astype("str")
    assert got.dtype == want.dtype == "str" and got.name == "mst" and got.index.equals(values.index)
    assert got.equals(want)
    assert got[0] == got[4] == pseudonymise_column(pd.Series([CCCD]), "citizen_id", KEY)[0]
    assert pd.isna(got[3]) and got[1] == "0301234567" and pd.isna(got[2])  # not a valid CCCD: no value kept
    mixed = pd.Series([79203001234, CCCD, None], dtype=object)  # not all text: through object, as before
    got = privacy._with_pseudonyms(mixed, privacy._individual_tax_codes(mixed), KEY)
    assert got.dtype == "str" and got[0] == "79203001234" and got[1] == want[0] and pd.isna(got[2])
