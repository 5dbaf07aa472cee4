"""Reason codes in words a department clerk can act on, in Vietnamese and English.

Rejected rows carry machine-readable reason codes, several joined by ';':
`<code>[:<column>[,<column>...]]` — `invalid_date:ngay_tiep_nhan` from the cleaner,
`expect_column_values_to_be_between:le_phi` from a GX expectation, `duplicate_row` (no column),
`wrong_column_count(expected 18)` from a reader (an argument in parentheses).
`describe` turns one code into a sentence; `describe_batch` does the same for an expectation that failed the
whole batch. Column names appear as the department writes its headers (`ColumnInfo.label`).

No GX import here: the self-check prints these, the pipeline stores only the codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quality import admin_units, citizen_id, phone, taxcode


@dataclass(frozen=True)
class Words:
    vi: str
    en: str

    def __str__(self) -> str:
        return f"{self.vi} / {self.en}"


@dataclass(frozen=True)
class ColumnInfo:
    label: str  # the header as departments write it ("Ngày tiếp nhận")
    type: str = "text"  # the contract's column type
    allowed: tuple[str, ...] = ()  # written values accepted, for columns with a value list


_CODE = re.compile(r"^(?P<code>[a-z0-9_]+)(?:\((?P<arg>[^)]*)\))?(?::(?P<cols>.*))?$")


def parse(reasons: str | None) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """'invalid_date:ngay;wrong_column_count(expected 3)' -> [("invalid_date", None, ("ngay",)),
    ("wrong_column_count", "expected 3", ())]: (code, argument, columns) per reason."""
    out = []
    for item in (reasons or "").split(";"):
        item = item.strip()
        if not item:
            continue
        m = _CODE.match(item)
        if m is None:  # not our grammar: keep it whole, it still gets a (generic) message
            out.append((item, None, ()))
            continue
        cols = tuple(c for c in (m.group("cols") or "").split(",") if c)
        out.append((m.group("code"), m.group("arg"), cols))
    return out


# ---------------------------------------------------------------- numbers and names


def _num(value: Any, lang: str) -> str:
    """1.234.567 in Vietnamese, 1,234,567 in English; decimals with the other mark."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")
    return text.translate(str.maketrans(",.", ".,")) if lang == "vi" else text


def _pct(share: float, lang: str) -> str:
    text = f"{share * 100:.1f}".removesuffix(".0")
    return (text.replace(".", ",") if lang == "vi" else text) + "%"


def _quoted(names: Sequence[str], info: Mapping[str, ColumnInfo]) -> str:
    return ", ".join(f"«{info[c].label if c in info else c}»" for c in names)


def _values(values: Any, limit: int = 8) -> str:
    values = [str(v) for v in (values or [])]
    more = f", … (+{len(values) - limit})" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


# ---------------------------------------------------------------- row-level reasons

# Codes a cleaner or reader sets (the column is in the code, not in the sentence).
_CLEAN: dict[str, tuple[str, str]] = {
    "invalid_date": ("Ngày không hợp lệ (phải ghi dd/mm/yyyy)", "Invalid date (write dd/mm/yyyy)"),
    "invalid_boolean": ("Giá trị có/không không hợp lệ (ghi Có hoặc Không)", "Invalid yes/no value (write Có or Không)"),
    taxcode.INVALID: (
        "Mã số thuế không hợp lệ (10 chữ số, đúng số kiểm tra, có thể thêm -001; cá nhân ghi 12 số CCCD)",
        "Invalid tax code (10 digits with a valid check digit, optional branch -001; individuals: 12-digit ID)"),
    citizen_id.INVALID: ("Số CCCD/CMND không hợp lệ (CCCD 12 chữ số hoặc CMND 9 chữ số)",
                         "Invalid citizen ID (12-digit CCCD or old 9-digit CMND)"),
    citizen_id.BIRTH_MISMATCH: ("Số CCCD không khớp với năm sinh", "Citizen ID does not match the birth year"),
    phone.INVALID: ("Số điện thoại không hợp lệ (di động 10 số như 0903123456, máy bàn 028...)",
                    "Invalid phone number (10-digit mobile such as 0903123456, landline 028...)"),
    admin_units.WARD_UNKNOWN: ("Không có phường/xã này trong danh mục đơn vị hành chính",
                               "No such ward/commune in the list of administrative units"),
    admin_units.WARD_AMBIGUOUS_SPLIT: (
        "Phường/xã cũ đã tách vào nhiều đơn vị mới: ghi mã phường/xã mới (sau 01/7/2025)",
        "The old ward was split into several new units: write the new ward code (after 1 July 2025)"),
    admin_units.WARD_AMBIGUOUS_NAME: ("Tên phường/xã trùng với nhiều đơn vị: ghi mã phường/xã",
                                      "The ward name fits several units: write the ward code"),
    admin_units.PROVINCE_UNKNOWN: ("Không xác định được tỉnh/thành phố", "Province or city not recognised"),
    "duplicate_row": ("Dòng lặp lại y hệt một dòng trước (dòng đầu được giữ)",
                      "Exact repeat of an earlier row (the first one is kept)"),
    "duplicate_key_conflict": ("Trùng {cols} với dòng khác nhưng nội dung khác nhau: giữ một dòng đúng",
                               "Same {cols} as another row with different content: keep the one right row"),
    "parent_rejected": ("Bản ghi cha bị loại nên dòng này cũng bị giữ lại: sửa bản ghi cha",
                        "Its parent record was rejected, so this row is held back too: fix the parent record"),
    "outside_period": ("Ngày thuộc kỳ báo cáo khác với kỳ của tệp: gửi dòng này trong tệp của kỳ đó",
                       "The date falls outside the file's reporting period: send this row in that period's file"),
    "wrong_column_count": ("Số cột của dòng khác dòng tiêu đề ({n} cột): kiểm tra dấu phân cách và dấu ngoặc kép",
                           "The row's number of columns differs from the header's ({n}): check separators and quotes"),
}

# GX expectations, row by row: the sentence says what the value must be.
_RULES: dict[str, tuple[str, str]] = {
    "expect_column_values_to_not_be_null": ("Bắt buộc phải có giá trị", "A value is required"),
    "expect_column_values_to_be_null": ("Phải để trống", "Must be left empty"),
    "expect_column_values_to_be_in_set": ("Phải là một trong: {values}", "Must be one of: {values}"),
    "expect_column_values_to_not_be_in_set": ("Không được là: {values}", "Must not be: {values}"),
    "expect_column_values_to_match_regex": ("Sai định dạng quy định (mẫu {regex})", "Wrong format (pattern {regex})"),
    "expect_column_values_to_not_match_regex": ("Có dạng không được phép (mẫu {regex})",
                                                "Has a form that is not allowed (pattern {regex})"),
    "expect_column_values_to_match_regex_list": ("Sai định dạng quy định (mẫu {regex_list})",
                                                 "Wrong format (patterns {regex_list})"),
    "expect_column_values_to_not_match_regex_list": ("Có dạng không được phép (mẫu {regex_list})",
                                                     "Has a form that is not allowed (patterns {regex_list})"),
    "expect_column_values_to_match_strftime_format": ("Sai định dạng ngày giờ ({strftime_format})",
                                                      "Wrong date/time format ({strftime_format})"),
    "expect_column_values_to_be_dateutil_parseable": ("Không đọc được thành ngày", "Cannot be read as a date"),
    "expect_column_values_to_be_json_parseable": ("Không phải JSON hợp lệ", "Not valid JSON"),
    "expect_column_values_to_match_json_schema": ("Không đúng cấu trúc JSON quy định",
                                                  "Does not follow the required JSON structure"),
    "expect_column_values_to_be_of_type": ("Sai kiểu dữ liệu ({type_})", "Wrong data type ({type_})"),
    "expect_column_values_to_be_in_type_list": ("Sai kiểu dữ liệu ({type_list})", "Wrong data type ({type_list})"),
    "expect_column_values_to_be_unique": ("Trùng với dòng khác (phải là duy nhất)",
                                          "Repeats another row (must be unique)"),
    "expect_column_values_to_be_increasing": ("Phải tăng dần theo thứ tự dòng", "Must increase from row to row"),
    "expect_column_values_to_be_decreasing": ("Phải giảm dần theo thứ tự dòng", "Must decrease from row to row"),
    "expect_column_value_lengths_to_equal": ("Phải có đúng {value} ký tự", "Must be exactly {value} characters"),
    "expect_column_value_z_scores_to_be_less_than": ("Giá trị bất thường so với các dòng khác",
                                                     "Unusual value compared with the other rows"),
    "expect_column_values_to_not_be_outliers": ("Giá trị bất thường so với các dòng khác",
                                                "Unusual value compared with the other rows"),
    "expect_compound_columns_to_be_unique": ("Tổ hợp {cols} trùng với dòng khác",
                                             "The combination {cols} repeats another row"),
    "expect_select_column_values_to_be_unique_within_record": ("Các ô {cols} không được trùng nhau trong một dòng",
                                                               "The cells {cols} must differ within a row"),
    "expect_multicolumn_sum_to_equal": ("Tổng {cols} phải bằng {sum_total}", "The sum of {cols} must be {sum_total}"),
    "expect_multicolumn_values_to_be_equal": ("Các ô {cols} phải bằng nhau", "The cells {cols} must be equal"),
    "expect_column_pair_values_to_be_equal": ("{a} phải bằng {b}", "{a} must equal {b}"),
    "expect_column_pair_values_to_be_in_set": ("Cặp giá trị {a}, {b} không có trong danh sách cho phép",
                                               "The pair {a}, {b} is not an allowed combination"),
    "expect_column_values_to_be_valid_tax_code": _CLEAN[taxcode.INVALID],
    "expect_column_values_to_be_current_ward_code": (
        "Không phải mã phường/xã hiện hành (5 chữ số, theo danh mục từ 01/7/2025)",
        "Not a current ward code (5 digits, from the list in force since 1 July 2025)"),
}

_DATE_TYPES = ("date", "datetime")


def _between(kwargs: Mapping[str, Any], lang: str) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is not None and hi is not None:
        return f"từ {_num(lo, lang)} đến {_num(hi, lang)}" if lang == "vi" else \
            f"between {_num(lo, lang)} and {_num(hi, lang)}"
    if lo is not None:
        return f"từ {_num(lo, lang)} trở lên" if lang == "vi" else f"at least {_num(lo, lang)}"
    return f"không quá {_num(hi, lang)}" if lang == "vi" else f"at most {_num(hi, lang)}"


def describe(code: str, columns: Sequence[str] = (), info: Mapping[str, ColumnInfo] | None = None,
             kwargs: Mapping[str, Any] | None = None, arg: str | None = None, number_style: str = "vi") -> Words:
    """One row-level reason in words. `kwargs` are the expectation's (GX codes); `columns` those in the code
    (or the primary key for duplicate codes); `info` labels the columns; `arg` is the code's argument
    (`wrong_column_count(expected 18)`); `number_style` is the contract's ("vi" for files people type, "plain"
    for machine exports), which changes how numbers and dates may be written."""
    info, kwargs, columns = info or {}, dict(kwargs or {}), tuple(columns)
    if code == "unknown_value":
        allowed = next((info[c].allowed for c in columns if c in info and info[c].allowed), ())
        if allowed:
            return Words(f"Giá trị không có trong danh mục; ghi một trong: {_values(allowed)}",
                         f"Value not in the list; write one of: {_values(allowed)}")
        return Words("Giá trị không có trong danh mục", "Value not in the list")
    if code == "invalid_date" and number_style == "plain":  # machine exports (JSON, SQL) may also write ISO dates
        return Words("Ngày không hợp lệ (ghi dd/mm/yyyy hoặc yyyy-mm-dd)", "Invalid date (write dd/mm/yyyy or yyyy-mm-dd)")
    if code == "invalid_number":
        example = "1.234.567 hoặc 1.234,5" if number_style == "vi" else "1234567 hoặc 1234.5"
        return Words(f"Số không hợp lệ (ghi như {example})",
                     f"Invalid number (write like {example.replace(' hoặc ', ' or ')})")
    if code == "expect_column_values_to_be_between":
        return Words(f"Phải {_between(kwargs, 'vi')}", f"Must be {_between(kwargs, 'en')}")
    if code == "expect_column_value_lengths_to_be_between":
        return Words(f"Độ dài phải {_between(kwargs, 'vi')} ký tự", f"Length must be {_between(kwargs, 'en')} characters")
    if code == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = columns[:2] if len(columns) >= 2 else (kwargs.get("column_A", ""), kwargs.get("column_B", ""))
        dates = all(info[c].type in _DATE_TYPES for c in (a, b) if c in info)
        eq = bool(kwargs.get("or_equal"))
        if dates:
            vi = f"{_quoted([a], info)} phải {'cùng ngày hoặc ' if eq else ''}sau {_quoted([b], info)}"
            en = f"{_quoted([a], info)} must be {'on or ' if eq else ''}after {_quoted([b], info)}"
        else:
            vi = f"{_quoted([a], info)} phải lớn hơn {'hoặc bằng ' if eq else ''}{_quoted([b], info)}"
            en = f"{_quoted([a], info)} must be greater than {'or equal to ' if eq else ''}{_quoted([b], info)}"
        return Words(vi, en)
    template = _CLEAN.get(code) or _RULES.get(code)
    if template is None:
        args = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("column", "column_A", "column_B"))
        shown = f"{code}({args})" if args else code
        return Words(f"Không đạt quy tắc {shown}", f"Fails the rule {shown}")
    params = {k: (_values(v) if isinstance(v, (list, tuple, set)) else v) for k, v in kwargs.items()}
    params |= {"cols": _quoted(columns, info), "n": re.sub(r"\D", "", arg or "") or "?",
               "a": _quoted(columns[:1], info), "b": _quoted(columns[1:2], info)}
    if "value_set" in kwargs:
        params["values"] = _values(kwargs["value_set"])
    return Words(*(t.format_map(_Blank(params)) for t in template))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


# ---------------------------------------------------------------- batch-level reasons


def describe_batch(expectation: str, columns: Sequence[str], kwargs: Mapping[str, Any],
                   info: Mapping[str, ColumnInfo] | None = None, observed: Any = None,
                   unexpected_share: float | None = None, exception: str | None = None) -> Words:
    """Why an expectation failed the whole batch: a row count, a tolerated ratio (`mostly`), an aggregate."""
    info = info or {}
    where = _quoted(columns, info)
    if exception:
        return Words(f"Không kiểm tra được quy tắc {expectation} trên {where or 'tệp'}: {exception}",
                     f"Could not check the rule {expectation} on {where or 'the file'}: {exception}")
    if expectation == "expect_table_row_count_to_be_between":
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        need = (f"cần từ {_num(lo, 'vi')} đến {_num(hi, 'vi')} dòng" if lo is not None and hi is not None else
                f"cần ít nhất {_num(lo, 'vi')} dòng" if lo is not None else f"chỉ được tối đa {_num(hi, 'vi')} dòng")
        return Words(f"Tệp có {_num(observed, 'vi')} dòng dữ liệu hợp lệ; {need}",
                     f"The file has {_num(observed, 'en')} valid data rows; {_between(kwargs, 'en')} needed")
    if expectation == "expect_table_row_count_to_equal":
        return Words(f"Tệp có {_num(observed, 'vi')} dòng dữ liệu hợp lệ; cần đúng {_num(kwargs.get('value'), 'vi')}",
                     f"The file has {_num(observed, 'en')} valid data rows; exactly "
                     f"{_num(kwargs.get('value'), 'en')} needed")
    if unexpected_share is not None and kwargs.get("mostly") is not None:
        rule = describe(expectation, columns, info, kwargs)
        allowed = 1 - float(kwargs["mostly"])
        return Words(
            f"{where}: {_pct(unexpected_share, 'vi')} số dòng không đạt «{rule.vi}», chỉ cho phép tối đa "
            f"{_pct(allowed, 'vi')}",
            f"{where}: {_pct(unexpected_share, 'en')} of rows fail «{rule.en}», at most {_pct(allowed, 'en')} allowed")
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("column", "column_A", "column_B"))
    head = f"{where}: " if where else ""
    vi, en = f"{head}không đạt quy tắc {expectation}({args})", f"{head}fails the rule {expectation}({args})"
    if observed is not None:
        vi, en = f"{vi}; giá trị thực tế {observed}", f"{en}; observed {observed}"
    return Words(vi, en)


def rejected_share(share: float, limit: float) -> Words:
    return Words(f"{_pct(share, 'vi')} số dòng bị loại, vượt ngưỡng cho phép {_pct(limit, 'vi')}",
                 f"{_pct(share, 'en')} of rows rejected, above the allowed {_pct(limit, 'en')}")
