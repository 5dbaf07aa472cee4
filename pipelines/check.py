"""`kho check FILE --dataset NAME`: a department checks one export before sending it.

The pipeline's own steps (`assets.flow`: extract, clean, validate) run on the file as it is: nothing is
archived, loaded or written (no Data Docs either). The report, in Vietnamese and English, says what was read,
which rows fail which rule and why (row number in the file, column, the value as written, the rule in plain
words from `quality.reasons`), and whether the file would be accepted.

Exit codes: 0 accepted (rejected rows, if any, would be quarantined), 1 rejected (the blocking check would
fail: nothing would be loaded), 2 the file cannot be read (or no such file / dataset).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from assets.contract import Contract
    from assets.extract.base import Extracted
    from assets.flow import Validation

ACCEPTED, REJECTED, UNREADABLE = 0, 1, 2
DEFAULT_LIMIT = 50

_ENCODINGS = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 (có BOM / with BOM)", "utf-16-le": "UTF-16 (Unicode text)",
    "utf-16-be": "UTF-16 big-endian", "cp1258": "Windows-1258", "tcvn3": "TCVN3 (ABC)", "vni": "VNI-Windows",
    "viscii": "VISCII",
}
# What readers say they skipped (assets.extract.*: Skipped.why), in Vietnamese.
_SKIPPED = [
    (r"banner above the header", "dòng tiêu đề văn bản phía trên bảng"),
    (r"header", "dòng tiêu đề cột"),
    (r"blank row", "dòng trống"),
    (r"column-number row", "dòng đánh số cột"),
    (r"totals row \((?P<x>.*)\)", "dòng tổng cộng ({x})"),
    (r"signature block", "phần ký tên"),
    (r"no value in the contract's columns(?P<x>.*)", "không có dữ liệu ở các cột quy định{x}"),
]
_NOTES = [
    (r"(?:columns|fields|source columns) not in the contract, ignored: (?P<x>.*)",
     "Cột bỏ qua (không có trong quy định) / Ignored columns (not in the contract): {x}"),
    (r"optional columns absent from the (?:file|source), left empty: (?P<x>.*)",
     "Cột không bắt buộc vắng mặt, để trống / Optional columns absent, left empty: {x}"),
]


@dataclass
class SelfCheck:
    file: Path
    sha256: str
    contract: Contract
    read: Extracted
    validation: Validation
    rows_in_file: np.ndarray  # source row number of each row GX saw (positions of ExpectationOutcome.unexpected_rows)

    @property
    def accepted(self) -> bool:
        return self.validation.passed


def check_file(path: Path, contract: Contract) -> SelfCheck:
    """Extract, clean and validate one file exactly as the pipeline would; raises ExportError if unreadable."""
    from assets import flow
    from assets.extract.base import ROW_COLUMN

    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    extracted, reports = flow.extract_files(contract, [{"archive_path": str(path), "file_name": path.name,
                                                        "sha256": sha}])
    cleaned = flow.clean_batch(contract, extracted)
    validation = flow.validate(contract, cleaned)
    return SelfCheck(path, sha, contract, reports[sha], validation, cleaned[ROW_COLUMN].to_numpy()[validation.checked])


# ---------------------------------------------------------------- the failures table


def column_info(contract: Contract) -> dict:
    from quality.reasons import ColumnInfo

    return {name: ColumnInfo(col.headers[0] if col.headers else name, col.type, tuple(col.values or ()))
            for name, col in contract.columns.items()}


def failures(check: SelfCheck) -> pd.DataFrame:
    """One row per (rejected row, reason): dong (row in the file), cot (columns), ten_cot (their headers),
    gia_tri (the value as written), ma_loi (reason code), loi_vi, loi_en. Sorted by row."""
    import pandas as pd

    from assets.clean import ORIGINAL_PREFIX
    from assets.extract.base import ROW_COLUMN
    from assets.extract.csv import ORIGINAL, REASONS
    from quality.reasons import describe, parse

    contract, v = check.contract, check.validation
    info = column_info(contract)
    kwargs = {}
    for r in v.results:
        if r.quarantines:
            kwargs.setdefault(r.reason_code, r.kwargs)
    bad = v.frame[v.rejected].reset_index(drop=True)
    long = bad[REASONS].str.split(";").explode().rename("reason").reset_index().drop_duplicates()
    columns = ["dong", "cot", "ten_cot", "gia_tri", "ma_loi", "loi_vi", "loi_en"]
    parts = []
    for reason, group in long.groupby("reason", sort=False):
        ((code, arg, cols),) = parse(reason) or [(reason, None, ())]
        shown = cols or (tuple(contract.primary_key) if code.startswith("duplicate_") else ())
        words = describe(code, shown, info, kwargs.get(reason), arg, contract.format.number_style)
        rows = bad.loc[group["index"].to_numpy()]
        values = [rows[ORIGINAL_PREFIX + c].astype("object").fillna("").astype(str)
                  for c in shown if ORIGINAL_PREFIX + c in rows]
        if values:  # the cells the reason names, as written ("a | b" for a pair rule)
            value = values[0].str.cat(values[1:], sep=" | ") if len(values) > 1 else values[0]
        else:  # a row that could not be split into columns: its raw text
            value = rows[ORIGINAL].astype("object") if ORIGINAL in rows else ""
        parts.append(pd.DataFrame({
            "dong": rows[ROW_COLUMN].to_numpy(), "cot": ",".join(shown),
            "ten_cot": ", ".join(info[c].label if c in info else c for c in shown),
            "gia_tri": pd.Series(value, index=rows.index).to_numpy(), "ma_loi": reason,
            "loi_vi": words.vi, "loi_en": words.en,
        }))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).sort_values(["dong", "ma_loi"], kind="stable", ignore_index=True)


def blocking_reasons(check: SelfCheck) -> list:
    """Why the file would be refused, as quality.reasons.Words (empty when accepted)."""
    from quality.reasons import Words, describe_batch, rejected_share

    v, info = check.validation, column_info(check.contract)
    out = [describe_batch(r.expectation, r.columns, r.kwargs, info, r.observed_value,
                          None if r.unexpected_percent is None else r.unexpected_percent / 100, r.exception)
           for r in v.results if r.blocks]
    share, limit = (float(v.rejected.mean()) if len(v.frame) else 0.0), check.contract.quality.max_rejected_share
    if share > limit:
        out.append(rejected_share(share, limit))
    if not v.passed and not out:  # never a silent verdict: fall back to the pipeline's own words
        out = [Words(p, p) for p in v.problems]
    return out


# ---------------------------------------------------------------- the report


def _translate(text: str, table: list[tuple[str, str]], info: dict | None = None) -> str | None:
    for pattern, words in table:
        m = re.fullmatch(pattern, text)
        if m:
            # Contract column names become the headers a clerk writes ("Ngày hẹn trả mới (ngay_hen_tra_moi)").
            names = {k: ", ".join(f"{info[n].label} ({n})" if info and n in info and info[n].label != n else n
                                  for n in v.split(", ")) for k, v in m.groupdict().items()}
            return words.format(**names)
    return None


def _num(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def _cell(value: object, width: int) -> str:
    missing = value is None or (isinstance(value, float) and value != value)
    text = "" if missing else " ".join(str(value).split())
    text = text or "(trống/empty)"
    return (text[: width - 1] + "…") if len(text) > width else text.ljust(width)


def render(check: SelfCheck, limit: int | None = DEFAULT_LIMIT) -> str:
    from quality.reasons import describe, describe_batch

    c, v, read = check.contract, check.validation, check.read
    info = column_info(c)
    total, rejected = len(v.frame), int(v.rejected.sum())
    out = [
        "KIỂM TRA TỆP DỮ LIỆU / DATA FILE SELF-CHECK",
        f"  Tệp / File:              {check.file}",
        f"  SHA-256:                 {check.sha256}",
        f"  Bộ dữ liệu / Dataset:    {c.dataset} — {c.title} ({c.department.name})",
        "",
        "1. ĐÃ ĐỌC / WHAT WAS READ",
        f"  Số dòng dữ liệu / Data rows:   {_num(total)}",
        f"  Bảng mã / Encoding:            {_ENCODINGS.get(read.encoding, read.encoding or '— (Excel)')}",
    ]
    for s in read.skipped:
        vi = _translate(s.why, _SKIPPED)
        out.append(f"  Bỏ qua / Skipped:              {s.place}: {vi + ' / ' if vi else ''}{s.why}")
    for note in read.notes:
        out.append(f"  {_translate(note, _NOTES, info) or 'Ghi chú / Note: ' + note}")

    table = failures(check)
    out += ["", "2. LỖI TỪNG DÒNG / ROW PROBLEMS"]
    if table.empty:
        out.append("  Không có dòng lỗi. / No row has a problem.")
    else:
        out.append(f"  {_num(rejected)} / {_num(total)} dòng bị loại / rows rejected "
                   f"({rejected / total:.1%}; ngưỡng / limit {c.quality.max_rejected_share:.0%})")
        out.append("  Theo quy tắc / By rule:")
        by_rule = table.groupby(["ten_cot", "loi_vi", "loi_en"], sort=False).size().sort_values(ascending=False)
        for (label, vi, en), n in by_rule.items():
            out.append(f"  {n:>6}  {label + ': ' if label else ''}{vi} / {en}")
        shown = table if not limit else table.head(limit)
        out += ["", f"  {'Dòng/Row':<9} {'Cột/Column':<22} {'Giá trị/Value':<28} Lỗi / Problem"]
        for r in shown.itertuples(index=False):  # at most `limit` lines: printing, not processing
            row = str(r.dong) if r.dong and r.dong > 0 else "?"
            out.append(f"  {row:<9} {_cell(r.ten_cot or '—', 22)} {_cell(r.gia_tri, 28)} {r.loi_vi} / {r.loi_en}")
        if len(shown) < len(table):
            more = len(table) - len(shown)
            out.append(f"  … còn {_num(more)} lỗi nữa: dùng --limit 0 để xem hết hoặc --csv TỆP để lưu danh sách"
                       f" / … {more:,} more: use --limit 0 to see all, or --csv FILE to save the list")

    warnings = v.warnings
    if warnings:
        out += ["", "3. CẢNH BÁO (không chặn tệp) / WARNINGS (do not block the file)"]
        for r in warnings:
            if r.row_level and r.unexpected_rows:
                words = describe(r.expectation, r.columns, info, r.kwargs)
                rows = check.rows_in_file[r.unexpected_rows]
                listed = ", ".join(str(x) for x in rows[:10]) + (", …" if len(rows) > 10 else "")
                out.append(f"  {_num(len(rows))} dòng / rows — {_quoted_labels(r.columns, info)}{words.vi} / "
                           f"{words.en}  (dòng / rows {listed})")
            else:
                pct = None if r.unexpected_percent is None else r.unexpected_percent / 100
                words = describe_batch(r.expectation, r.columns, r.kwargs, info, r.observed_value, pct, r.exception)
                out.append(f"  {words}")

    out += ["", "KẾT LUẬN / VERDICT"]
    if not check.accepted:
        out.append("  KHÔNG ĐẠT: tệp sẽ bị từ chối, không dòng nào được nạp. / REJECTED: the file would be refused"
                   " and nothing loaded.")
        out.append("  Lý do / Why:")
        out += [f"    - {w}" for w in blocking_reasons(check)]
        out.append("  Sửa tệp rồi kiểm tra lại. / Fix the file, then check it again.")
    elif rejected:
        out.append(f"  ĐẠT: tệp sẽ được nhận; {_num(rejected)} dòng lỗi ở trên sẽ bị giữ lại (cách ly), hãy sửa và "
                   f"gửi lại các dòng đó. / ACCEPTED: the file would be loaded; the {rejected:,} rows above would be "
                   "held back (quarantined): fix them and send them again.")
    else:
        out.append("  ĐẠT: tệp sẽ được nhận toàn bộ. / ACCEPTED: the whole file would be loaded.")
    return "\n".join(out)


def _quoted_labels(columns, info) -> str:
    return (", ".join(info[c].label if c in info else c for c in columns) + ": ") if columns else ""


def render_unreadable(file: Path, error: Exception) -> str:
    place = getattr(error, "place", None)
    reason = getattr(error, "reason", None) or str(error)
    return "\n".join([
        "KHÔNG ĐỌC ĐƯỢC TỆP / THE FILE CANNOT BE READ",
        f"  Tệp / File:      {getattr(error, 'file', None) or file}",
        *([f"  Vị trí / Place:  {place}"] if place else []),
        f"  Lý do / Reason:  {reason}",
        "  Sửa tệp theo lý do trên rồi kiểm tra lại. / Fix the file as the reason says, then check it again.",
    ])


# ---------------------------------------------------------------- command line


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="self-check one export without loading it (exit 0 accepted, 1 rejected, "
                                     "2 unreadable)")
    p.add_argument("file", type=Path, help="the export file (CSV, Excel, ...)")
    p.add_argument("--dataset", required=True, help="the dataset (contract) the file belongs to, e.g. ho_so_tthc")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"row problems to print (default {DEFAULT_LIMIT}; 0 = all)")
    p.add_argument("--csv", type=Path, help="also save every row problem to this CSV file (opens in Excel)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from assets.contract import load_contracts
    from assets.errors import ExportError

    contracts = {c.dataset: c for c in load_contracts()}
    contract = contracts.get(args.dataset)
    if contract is None:
        print(f"Không có bộ dữ liệu '{args.dataset}' / No dataset '{args.dataset}'. "
              f"Có / Known: {', '.join(sorted(contracts))}", file=sys.stderr)
        return UNREADABLE
    if not args.file.is_file():
        print(render_unreadable(args.file, ExportError(str(args.file), "không tìm thấy tệp / no such file")))
        return UNREADABLE
    try:
        check = check_file(args.file, contract)
    except ExportError as e:
        print(render_unreadable(args.file, e))
        return UNREADABLE
    except NotImplementedError as e:  # a format without a reader yet, or a database source
        print(render_unreadable(args.file, ExportError(str(args.file), str(e))))
        return UNREADABLE
    print(render(check, args.limit or None))
    if args.csv:
        failures(check).to_csv(args.csv, index=False, encoding="utf-8-sig")
        print(f"\nĐã lưu danh sách lỗi / Row problems saved: {args.csv}")
    return ACCEPTED if check.accepted else REJECTED
