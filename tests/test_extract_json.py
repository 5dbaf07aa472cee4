import json

import pytest

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN
from assets.extract.json import PARENT_COLUMN, SEQ_COLUMN, read_json

COLUMNS = {
    "ma_phan_anh": ["ma_phan_anh", "maPhanAnh"],
    "ho_ten": ["nguoi_phan_anh.ho_ten", "nguoiPhanAnh.hoTen"],
    "dien_thoai": ["nguoi_phan_anh.dien_thoai", "nguoiPhanAnh.dienThoai"],
    "ma_so_thue": ["ma_so_thue", "maSoThue"],
    "so_tien": ["so_tien", "soTien"],
    "da_xu_ly": ["da_xu_ly", "daXuLy"],
    "noi_dung": ["noi_dung", "noiDung"],
}
REQUIRED = {"ma_phan_anh", "noi_dung"}


def _bytes(doc, bom: bool = False) -> bytes:
    data = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def _records():
    return [
        {"ma_phan_anh": "PA-001", "nguoi_phan_anh": {"ho_ten": "Nguyễn Thị Hồng Nhung", "dien_thoai": "0903123456"},
         "ma_so_thue": "0301234567", "so_tien": 1500000000, "da_xu_ly": True,
         "noi_dung": "Đường Nguyễn Huệ ngập nước sau mưa"},
        {"ma_phan_anh": "PA-002", "nguoi_phan_anh": {"ho_ten": "Trần Văn Đức", "dien_thoai": None},
         "ma_so_thue": "0312345678-001", "so_tien": 12.50, "da_xu_ly": False, "noi_dung": "Rác thải ở hẻm 51"},
        {"ma_phan_anh": "PA-003", "noi_dung": "Đèn đường hỏng", "kenh": "Zalo"},
    ]


def test_array_of_records_keeps_text_exact():
    got, kids = read_json(_bytes(_records(), bom=True), "pa.json", COLUMNS, REQUIRED)
    f = got.frame
    assert kids == {}
    assert list(f.columns) == [*COLUMNS, ROW_COLUMN]
    assert f[ROW_COLUMN].tolist() == [1, 2, 3]
    assert f["ma_phan_anh"].tolist() == ["PA-001", "PA-002", "PA-003"]
    assert f.loc[0, "ho_ten"] == "Nguyễn Thị Hồng Nhung"
    assert f.loc[0, "noi_dung"] == "Đường Nguyễn Huệ ngập nước sau mưa"
    assert f["ma_so_thue"].tolist()[:2] == ["0301234567", "0312345678-001"]  # strings keep their zeros
    assert f["so_tien"].tolist()[:2] == ["1500000000", "12.5"]  # never 1.5e9
    assert f["da_xu_ly"].tolist()[:2] == ["true", "false"]
    assert f["dien_thoai"].isna().tolist() == [False, True, True]
    assert all(isinstance(v, str) for v in f["so_tien"].dropna())
    assert any("kenh" in n for n in got.notes)  # unknown field reported, not silently dropped


def test_number_literals_keep_their_digits():
    data = b'[{"ma_phan_anh": 7, "noi_dung": "x", "so_tien": 1.5e9},' \
           b' {"ma_phan_anh": 12345678901234567890, "noi_dung": "y", "so_tien": 0.10}]'
    f = read_json(data, "n.json", COLUMNS, REQUIRED)[0].frame
    assert f["ma_phan_anh"].tolist() == ["7", "12345678901234567890"]
    assert f["so_tien"].tolist() == ["1500000000", "0.10"]


@pytest.mark.parametrize("path", ["data", "result.items"])
def test_envelope(path):
    outer, inner = path.split(".")[0], path.split(".")[-1]
    doc = {"data": _records(), "total": 3} if "." not in path else {outer: {inner: _records(), "count": 3}}
    got, _ = read_json(_bytes(doc), "api.json", COLUMNS, REQUIRED, records_path=path)
    assert got.frame["ma_phan_anh"].tolist() == ["PA-001", "PA-002", "PA-003"]


def test_envelope_total_mismatch_is_a_truncated_export():
    doc = {"data": _records(), "total": 250, "page": 1}
    with pytest.raises(ExportError, match="total=250 but holds 3") as e:
        read_json(_bytes(doc), "api.json", COLUMNS, REQUIRED, records_path="data")
    assert e.value.file == "api.json"


def test_records_path_missing_or_not_a_list():
    with pytest.raises(ExportError, match="'data' does not exist.*'items'"):
        read_json(_bytes({"items": []}), "a.json", COLUMNS, REQUIRED, records_path="data")
    with pytest.raises(ExportError, match="is a dict, not an array"):
        read_json(_bytes({"data": {"x": 1}}), "a.json", COLUMNS, REQUIRED, records_path="data")
    with pytest.raises(ExportError, match="set format.records_path.*data"):
        read_json(_bytes({"data": []}), "a.json", COLUMNS, REQUIRED)


def test_alias_chosen_once_per_file_and_nested_objects_flattened():
    recs = [{"maPhanAnh": "PA-9", "nguoiPhanAnh": {"hoTen": "Lê Thị Hoà", "dienThoai": "0162 345 6789"},
             "noiDung": "Cây đổ"},
            {"maPhanAnh": "PA-10", "noiDung": "Ổ gà"}]
    f = read_json(_bytes(recs), "camel.json", COLUMNS, REQUIRED)[0].frame
    assert f["ma_phan_anh"].tolist() == ["PA-9", "PA-10"]
    assert f.loc[0, "ho_ten"] == "Lê Thị Hoà" and f.loc[0, "dien_thoai"] == "0162 345 6789"
    assert f["ho_ten"].isna().tolist() == [False, True]


def test_two_aliases_in_one_file_are_refused():
    recs = [{"ma_phan_anh": "PA-1", "noi_dung": "a"}, {"maPhanAnh": "PA-2", "noi_dung": "b"}]
    with pytest.raises(ExportError, match="'ma_phan_anh' \\(record 1\\) and 'maPhanAnh' \\(record 2\\)") as e:
        read_json(_bytes(recs), "mixed.json", COLUMNS, REQUIRED)
    assert e.value.place == "record 2"


def test_object_where_a_value_is_expected_names_record_and_field():
    recs = [{"ma_phan_anh": "PA-1", "noi_dung": "a"},
            {"ma_phan_anh": "PA-2", "noi_dung": "b", "nguoi_phan_anh": {"dien_thoai": ["0903123456"]}}]
    with pytest.raises(ExportError) as e:
        read_json(_bytes(recs), "p.json", COLUMNS, REQUIRED)
    assert e.value.place == "record 2, field 'nguoi_phan_anh.dien_thoai'"


def test_child_table_rows_carry_parent_keys():
    recs = [
        {"ma_phan_anh": "PA-1", "noi_dung": "a", "qua_trinh_xu_ly": [
            {"buoc": 1, "can_bo": {"ho_ten": "Phạm Minh Châu", "don_vi": "UBND Phường Bến Thành"},
             "thoi_gian": "02/10/2026 08:15:00"},
            {"buoc": 2, "can_bo": {"ho_ten": "Võ Thị Sáu"}, "ket_qua": "Đã xử lý", "tep": ["a.pdf", "b.pdf"]},
        ]},
        {"ma_phan_anh": "PA-2", "noi_dung": "b", "qua_trinh_xu_ly": []},
        {"ma_phan_anh": "PA-3", "noi_dung": "c"},
        {"ma_phan_anh": "PA-4", "noi_dung": "d", "qua_trinh_xu_ly": [{"buoc": 1, "ket_qua": "Tiếp nhận"}]},
    ]
    got, kids = read_json(_bytes(recs), "c.json", COLUMNS, REQUIRED, children={"buoc_xu_ly": "qua_trinh_xu_ly"})
    steps = kids["buoc_xu_ly"]
    assert steps[PARENT_COLUMN].tolist() == [1, 1, 4]
    assert steps[SEQ_COLUMN].tolist() == [1, 2, 1]
    assert list(steps.columns) == ["buoc", "can_bo_ho_ten", "can_bo_don_vi", "thoi_gian", "ket_qua", "tep",
                                   PARENT_COLUMN, SEQ_COLUMN]
    assert steps["buoc"].tolist() == ["1", "2", "1"]
    assert steps["can_bo_ho_ten"].tolist()[:2] == ["Phạm Minh Châu", "Võ Thị Sáu"]
    assert steps.loc[1, "tep"] == '["a.pdf","b.pdf"]'
    # A child row joins back to its parent through the parent's ROW_COLUMN.
    parents = got.frame.set_index(ROW_COLUMN)["ma_phan_anh"]
    assert parents[steps[PARENT_COLUMN]].tolist() == ["PA-1", "PA-1", "PA-4"]
    assert not any("qua_trinh_xu_ly" in n for n in got.notes)


def test_child_path_that_is_not_a_list():
    recs = [{"ma_phan_anh": "PA-1", "noi_dung": "a", "qua_trinh_xu_ly": {"buoc": 1}}]
    with pytest.raises(ExportError) as e:
        read_json(_bytes(recs), "c.json", COLUMNS, REQUIRED, children={"buoc_xu_ly": "qua_trinh_xu_ly"})
    assert e.value.place == "record 1, field 'qua_trinh_xu_ly'"


def test_invalid_json_reports_line_and_column():
    data = '[\n  {"ma_phan_anh": "PA-1", "noi_dung": "Ngập"},\n  {"ma_phan_anh": "PA-2" "noi_dung": "x"}\n]'
    with pytest.raises(ExportError, match="invalid JSON") as e:
        read_json(data.encode(), "bad.json", COLUMNS, REQUIRED)
    assert e.value.place == "line 3, column 26"  # where the missing comma belongs
    assert "delimiter" in e.value.reason


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (b"[1, 2]", "record must be an object"),
    ('[{"ma_phan_anh": "1", "noi_dung": "Sài Gòn"}]'.encode("cp1258", errors="replace"), "not UTF-8"),
    (b'[{"ma_phan_anh": "1", "noi_dung": "a", "noi_dung": "b"}]', "key 'noi_dung' twice"),
    (b'[{"ma_phan_anh": "1", "noi_dung": "a", "so_tien": NaN}]', "'NaN' is not valid JSON"),
])
def test_unreadable_exports(data, reason):
    with pytest.raises(ExportError, match=reason):
        read_json(data, "x.json", COLUMNS, REQUIRED)


def test_missing_required_path_lists_what_exists():
    recs = [{"ma_phan_anh": "PA-1", "chi_tiet": {"mo_ta": "x"}}]
    with pytest.raises(ExportError, match=r"noi_dung.*Fields found: \['chi_tiet.mo_ta', 'ma_phan_anh'\]"):
        read_json(_bytes(recs), "m.json", COLUMNS, REQUIRED)


def test_empty_envelope_gives_no_rows():
    got, _ = read_json(_bytes({"data": [], "total": 0}), "e.json", COLUMNS, REQUIRED, records_path="data")
    assert len(got.frame) == 0 and list(got.frame.columns) == [*COLUMNS, ROW_COLUMN]
