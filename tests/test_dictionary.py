"""The data dictionary: every column of every contract, as a warehouse table and as a static HTML catalogue."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from dagster import materialize

from assets.contract import load_contracts
from assets.dictionary import SPEC, build_dictionary_asset, dictionary_frame, with_children
from assets.dimensions import DIMENSIONS
from assets.marts import MARTS
from pipelines.resources import KhoResource

CONTRACTS = load_contracts()


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r'<section id="([^"]+)">', page)[1:]
    return dict(zip(parts[::2], parts[1::2]))


def test_frame_has_every_column_of_every_table():
    frame = dictionary_frame(CONTRACTS)
    got = set(zip(frame["bang"], frame["cot"]))
    for c in with_children(CONTRACTS):
        assert {(c.table, n) for n in c.columns} <= got, c.dataset
    for m in MARTS:
        assert {(m.spec.table, n) for n in m.spec.names} <= got
    for d in DIMENSIONS:
        assert {(d.table, n) for n, _, _ in d.columns} <= got
    dossiers = frame[frame["bang"] == "ho_so_tthc"].set_index("cot")
    assert dossiers.loc["so_cccd", "du_lieu_ca_nhan"] and dossiers.loc["so_cccd", "kieu"] == "citizen_id"
    assert dossiers.loc["so_cccd", "kieu_trong_kho"] == "text" and "bút danh" in dossiers.loc["so_cccd", "bao_ve"]
    assert dossiers.loc["ngay_tiep_nhan", "tieu_de_xuat"] == "Ngày tiếp nhận | Ngày nhận"
    assert dossiers.loc["kenh", "gia_tri"] == "truc_tiep, truc_tuyen, buu_chinh_cong_ich"
    assert dossiers.loc["ma_ho_so", "khoa_chinh"] and not dossiers.loc["le_phi", "du_lieu_ca_nhan"]
    assert set(dossiers["che_do_nap"]) == {"replace_partition"} and "0 9 5 * *" in dossiers["tan_suat"].iloc[0]
    assert set(dossiers["don_vi_nguon"]) == {"Trung tâm Phục vụ hành chính công Thành phố Hồ Chí Minh"}


def test_catalogue_lists_every_column_of_every_contract(tmp_path):
    kho = KhoResource(data_dir=str(tmp_path))
    result = materialize([build_dictionary_asset(CONTRACTS)], resources={"kho": kho})
    assert result.success
    page = (tmp_path / "lake" / "catalogue.html").read_text(encoding="utf-8")
    sections = _sections(page)
    for c in with_children(CONTRACTS):
        section = sections[f"curated-{c.table}"]
        assert html.escape(c.title) in section and html.escape(c.department.name) in section
        for name, col in c.columns.items():
            assert f"<code>{name}</code>" in section, (c.table, name)
            assert html.escape(col.description) in section, (c.table, name)
            for header in col.headers:
                assert html.escape(header) in section, (c.table, name, header)
    for m in MARTS:
        assert all(f"<code>{n}</code>" in sections[f"mart-{m.spec.table}"] for n in m.spec.names)

    with kho.warehouse.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT bang, cot, du_lieu_ca_nhan FROM tu_dien_du_lieu")).all()
    assert len(rows) == len(dictionary_frame(CONTRACTS))
    assert ("ho_so_tthc", "so_dien_thoai", 1) in {tuple(r) for r in rows}
    assert [c[0] for c in SPEC.columns][:3] == ["bang", "vung", "ten_bang"]
