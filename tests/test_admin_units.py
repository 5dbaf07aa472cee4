"""Ward/commune resolution across the 2025 reform, checked against the real NSO tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quality import admin_units as au
from quality.admin_units import Resolution, resolve_code, resolve_name, resolve_series


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return au.units_current()


@pytest.fixture(scope="module")
def pre2025() -> pd.DataFrame:
    return au.units_pre2025()


@pytest.fixture(scope="module")
def cw() -> pd.DataFrame:
    return au.crosswalk()


def _destinations(cw: pd.DataFrame, old: str) -> set[str]:
    return set(cw.loc[cw["ma_cu"] == old, "ma_moi"])


# ---------------------------------------------------------------- reference tables


def test_current_units_counts_and_codes(current):
    assert list(current.columns) == ["ma_tinh", "ma_phuong_xa", "ten_phuong_xa", "loai"]
    assert len(current) == 3321 and current["ma_phuong_xa"].is_unique
    assert current["ma_phuong_xa"].str.fullmatch(r"\d{5}").all()
    assert current["ma_tinh"].str.fullmatch(r"\d{2}").all()
    assert current["ma_tinh"].nunique() == 34
    hcmc = current[current["ma_tinh"] == "79"]
    assert len(hcmc) == 168
    assert hcmc["loai"].value_counts().to_dict() == {"Phường": 113, "Xã": 54, "Đặc khu": 1}


def test_current_names_and_types_come_from_nso(current):
    by_code = current.set_index("ma_phuong_xa")
    # Upgraded xã -> phường after the package's data (Bắc Ninh, Đồng Nai).
    assert by_code.loc["07294", ["ten_phuong_xa", "loai"]].tolist() == ["Phường Bố Hạ", "Phường"]
    assert by_code.loc["26368", ["ten_phuong_xa", "loai"]].tolist() == ["Phường Long Thành", "Phường"]
    assert (current["loai"] == "Phường").sum() == 709
    assert by_code.loc["00922", "ten_phuong_xa"] == "Xã Thuận Hoà"  # NSO's tone placement
    assert by_code.loc["06325", "ten_phuong_xa"] == "Xã Bắc Sơn"  # NSO wrote "xã Bắc Sơn"
    assert all(n.startswith(t + " ") for n, t in zip(current["ten_phuong_xa"], current["loai"]))


def test_pre2025_units_and_crosswalk_cover_each_other(pre2025, cw, current):
    assert len(pre2025) == 10035 and pre2025["ma_phuong_xa"].is_unique
    assert pre2025["ma_phuong_xa"].str.fullmatch(r"\d{5}").all()
    assert set(pre2025["ma_phuong_xa"]) == set(cw["ma_cu"])
    # Island districts had no commune level: their đặc khu have no old ward code to map from.
    assert set(current["ma_phuong_xa"]) - set(cw["ma_moi"]) == {"11948", "19742", "20333", "21548", "26732"}
    assert set(cw["ma_moi"]) <= set(current["ma_phuong_xa"])
    assert not cw.duplicated(["ma_cu", "ma_moi"]).any()
    assert list(cw.columns) == [
        "ma_cu", "ten_cu", "quan_huyen_cu", "tinh_cu", "ma_moi", "ten_moi", "toan_bo", "nso_main"
    ]  # fmt: skip


def test_crosswalk_flags(cw):
    n_dest = cw.groupby("ma_cu")["ma_moi"].transform("size")
    # NSO's "whole"/"partial" notes agree with the shape of the table once its code typos are fixed.
    assert (cw["toan_bo"] == (n_dest == 1)).all()
    assert cw.loc[n_dest > 1, "ma_cu"].nunique() == 440
    assert cw["nso_main"].sum() == 58
    assert not (cw["nso_main"] & cw["toan_bo"]).any()
    assert cw.groupby("ma_cu")["nso_main"].sum().max() == 1


def test_nso_code_typos_fixed(cw):
    assert _destinations(cw, "01651") == {"01648"}  # Mỹ Hưng (NSO wrote 01615)
    assert _destinations(cw, "01615") == {"01636"}  # Hồng Quang keeps its own row only
    assert _destinations(cw, "02482") == {"02494"}  # Phú Thịnh (NSO wrote 02485)
    assert _destinations(cw, "02485") == {"02458"}
    assert _destinations(cw, "00556") == {"00541", "00562"}  # Đặng Xá (NSO wrote 00553)
    assert _destinations(cw, "00553") == {"00136", "00541", "00565"}  # Cổ Bi
    assert cw.loc[cw["ma_cu"] == "01651", "ten_cu"].item() == "Xã Mỹ Hưng"


def test_package_errors_overridden_by_nso():
    assert resolve_code("31379", "pre2025") == Resolution("31378", "Xã Phú Hữu", "converted", ("31378",), None)
    assert "09817" in resolve_code("09013", "pre2025").candidates  # Văn Khê -> also Ô Diên
    hoa_binh = resolve_code("10798", "pre2025")
    assert hoa_binh.candidates == ("10804", "10843") and hoa_binh.nso_main == "10804"  # no spurious 11911


def test_codes_differ_between_vintages(current, pre2025):
    hcmc = current[current["ma_tinh"] == "79"]
    old = pre2025.set_index("ma_phuong_xa")
    short = au._strip_type
    reused = [
        code
        for code, name, kind in zip(hcmc["ma_phuong_xa"], hcmc["ten_phuong_xa"], hcmc["loai"])
        if code in old.index
        and au._akey(short(old.at[code, "ten_phuong_xa"], old.at[code, "loai"])) != au._akey(short(name, kind))
    ]
    assert len(reused) == 114


# ---------------------------------------------------------------- resolve_code


def test_reused_code_means_different_units():
    assert resolve_code("26740", "2025") == Resolution("26740", "Phường Sài Gòn", "current", ("26740",), None)
    # Old 26740 is Bến Nghé; it went whole into the new Phường Sài Gòn that took its code.
    assert resolve_code("26740", "pre2025") == Resolution("26740", "Phường Sài Gòn", "converted", ("26740",), None)
    # Current 26737 is Tân Định; old 26737 is Đa Kao, split between Tân Định and Sài Gòn.
    assert resolve_code("26737", "2025").name == "Phường Tân Định"
    assert resolve_code("26737", "pre2025") == Resolution(
        None, None, "ambiguous", ("26737", "26740"), "ward_ambiguous_split"
    )


def test_same_name_other_unit():
    # Old 27487 Phường Tân Phú (Quận 7) became Tân Mỹ, not the new Phường Tân Phú 27031.
    r = resolve_code("27487", "pre2025")
    assert (r.code, r.name, r.status) == ("27487", "Phường Tân Mỹ", "converted")
    r = resolve_name("Phường Tân Phú", district="Quận 7")
    assert (r.code, r.name, r.status) == ("27487", "Phường Tân Mỹ", "converted")


def test_split_ward_is_ambiguous_with_nso_main():
    r = resolve_code("26833", "pre2025")  # Long Thạnh Mỹ, Thủ Đức
    assert r.status == "ambiguous" and r.code is None and r.name is None
    assert r.candidates == ("26833", "26842")
    assert r.reason == "ward_ambiguous_split"
    assert r.nso_main == "26833"


def test_code_input_forms():
    assert resolve_code(26740, "2025").code == "26740"
    assert resolve_code(4, "2025").code == "00004"  # Excel dropped the leading zeros
    assert resolve_code("4.0", "2025").code == "00004"
    assert resolve_code(" 00004 ", "2025").name == "Phường Ba Đình"
    for bad in ("99999", "123456", "abc", "26740a"):
        assert resolve_code(bad, "2025") == Resolution(None, None, "unknown", (), "ward_unknown")
    assert resolve_code("27487", "2025").name == "Phường Tân Mỹ"
    assert resolve_code("00001", "2025").reason == "ward_unknown"  # old-only code is not a current unit
    for blank in (None, "", "  ", np.nan):
        assert resolve_code(blank, "pre2025") == Resolution(None, None, "unknown", (), None)
    with pytest.raises(ValueError):
        resolve_code("26740", "2024")


# ---------------------------------------------------------------- resolve_name


@pytest.mark.parametrize(
    "text", ["P. Bến Thành", "Phường Bến Thành", "phuong ben thanh", "P.Ben Thanh", "Bến Thành", "BẾN THÀNH"]
)
def test_name_prefixes_and_diacritics(text):
    assert resolve_name(text) == Resolution("26743", "Phường Bến Thành", "current", ("26743",), None)


@pytest.mark.parametrize(
    "text,district",
    [
        ("Phường 14, Quận 3", None),
        ("Phường 14", "Quận 3"),
        ("P.14", "Q.3"),
        ("P14", "Q3"),
        ("P.014", "q. 3"),
        ("phuong 14", "quan 3"),
        ("P14, Q3, TP.HCM", None),
    ],
)
def test_numbered_ward_with_old_district(text, district):
    r = resolve_name(text, district=district)
    assert (r.code, r.name, r.status) == ("27142", "Phường Nhiêu Lộc", "converted")


def test_numbered_ward_without_district_is_ambiguous():
    r = resolve_name("Phường 14")
    assert r.status == "ambiguous" and r.reason == "ward_ambiguous_name"
    assert "27142" in r.candidates and len(r.candidates) > 5


def test_name_in_both_vintages():
    # New Phường Tân Phú 27031, and old Tân Phú wards (Quận 7, Thủ Đức) that went elsewhere.
    r = resolve_name("Tân Phú")
    assert r.status == "ambiguous" and r.reason == "ward_ambiguous_name"
    assert {"27031", "27487", "26842"} <= set(r.candidates)
    assert resolve_name("Tân Phú", vintage="2025").code == "27031"
    assert resolve_name("Tân Phú", district="Q7").code == "27487"  # a district implies pre-2025
    # Old Bến Thành went whole into the new Bến Thành: no ambiguity.
    assert resolve_name("Bến Thành").status == "current"
    # Old-only names convert; new-only names are current.
    assert resolve_name("Bến Nghé").code == "26740"
    assert resolve_name("Bến Nghé", vintage="2025").status == "unknown"
    assert resolve_name("Sài Gòn", vintage="pre2025").status == "unknown"


def test_old_unit_types_and_island_district():
    r = resolve_name("TT. Củ Chi")  # thị trấn no longer exist
    assert (r.code, r.status) == ("27496", "converted")
    assert resolve_name("Thị trấn Củ Chi") == r
    # Unqualified: the old town went to Tân An Hội, and there is a new Xã Củ Chi.
    assert set(resolve_name("Củ Chi").candidates) == {"27496", "27553"}
    assert resolve_name("ĐK Côn Đảo").code == "26732"
    assert resolve_name("Huyện Côn Đảo", vintage="pre2025").code == "26732"  # no wards before 2025


def test_tone_placement_and_apostrophes():
    for text in ("Thuận Hoà", "Thuận Hòa", "Xã Thuận Hoà", "xa thuan hoa", "THUẬN HÒA"):
        assert resolve_name(text, province="08").code == "00922", text
    for text in ("Ea H'Leo", "Ea H’Leo", "ea hleo"):
        assert resolve_name(text, province="Đắk Lắk").code == "24184", text


def test_name_prefix_words_that_are_part_of_the_name():
    assert resolve_name("Phú Mỹ", vintage="2025").code == "26704"  # "P" of "Phú" is not a prefix
    assert resolve_name("xa dung", province="11").code == "03208"  # Xã Xa Dung without diacritics


def test_province_scope():
    assert resolve_name("Bến Thành", province="Hà Nội").status == "unknown"
    assert resolve_name("Phú Lợi", province="Bình Dương").code == "25750"  # a pre-2025 province
    assert resolve_name("Phường Sài Gòn, TP. Hồ Chí Minh", province=None).code == "26740"
    nationwide = resolve_name("Thuận Hòa", province=None)
    assert nationwide.status == "ambiguous" and "00922" in nationwide.candidates
    assert resolve_name("Bến Thành", province="Atlantis") == Resolution(None, None, "unknown", (), "province_unknown")


def test_unknown_and_blank_names():
    assert resolve_name("Phường Không Có Thật") == Resolution(None, None, "unknown", (), "ward_unknown")
    assert resolve_name("  ") == Resolution(None, None, "unknown", (), None)
    with pytest.raises(ValueError):
        resolve_name("Bến Thành", vintage="2026")


# ---------------------------------------------------------------- resolve_series


def test_resolve_series_200k_rows(cw):
    rng = np.random.default_rng(7)
    values = np.array([*cw["ma_cu"].unique()[:500], "26737", "26833", "99999", None], dtype=object)
    codes = pd.Series(rng.choice(values, 200_000), index=pd.RangeIndex(10, 200_010))
    out = resolve_series(codes, "pre2025")
    assert list(out.columns) == ["ma_phuong_xa", "ten_phuong_xa", "trang_thai", "ung_vien", "ly_do"]
    assert out.index.equals(codes.index)
    for i in rng.integers(0, len(codes), 50):
        value, row = codes.iloc[i], out.iloc[i]
        expected = resolve_code(value, "pre2025")
        assert row["trang_thai"] == expected.status
        assert (row["ma_phuong_xa"] if pd.notna(row["ma_phuong_xa"]) else None) == expected.code
    split = out[codes == "26737"].iloc[0]
    assert split.tolist()[2:] == ["ambiguous", "26737;26740", "ward_ambiguous_split"]
    assert (out.loc[codes == "99999", "ly_do"] == "ward_unknown").all()
    missing = out[codes.isna()]
    assert len(missing) and (missing["trang_thai"] == "unknown").all() and missing["ly_do"].isna().all()


def test_resolve_series_mixed_input():
    out = resolve_series(pd.Series([26740, "26740", 4.0, None]), "2025")
    assert out["ma_phuong_xa"].tolist()[:3] == ["26740", "26740", "00004"]
    assert out["ten_phuong_xa"].iloc[0] == "Phường Sài Gòn"
    assert out["trang_thai"].tolist() == ["current", "current", "current", "unknown"]
