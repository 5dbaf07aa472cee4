"""Ward/commune codes and names across the 1 July 2025 reform.

Two vintages of commune-level units exist side by side in departmental data:
"pre2025" (63 provinces, districts, ~10,000 wards) and "2025" (34 provinces,
3,321 units, no districts). The same 5-digit code can name different units in
the two vintages (new 26740 Phường Sài Gòn holds old Bến Nghé's code), so a code
is only meaningful with its vintage, and old -> new goes through a crosswalk
keyed by (vintage, code), never by code or name equality.

Sources:
- NSO's current directory (`reference/nso-communes.tsv`): current names/types.
- NSO's conversion table (`reference/nso-old-to-new.tsv`): the crosswalk.
- vietnamadminunits' `data/dataset.db`: the pre-2025 unit list (read directly;
  the package's own converter is never called, it can reach an online geocoder).

An old ward split across several new units is ambiguous: every candidate is
returned and nothing is guessed. Where NSO says one destination took the whole
population, that one is exposed as `nso_main`, still flagged ambiguous.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quality.text import is_missing, key_text, strip_diacritics

HCMC = "79"
VINTAGES = ("2025", "pre2025")

# Statuses
CURRENT = "current"
CONVERTED = "converted"
AMBIGUOUS = "ambiguous"
UNKNOWN = "unknown"

# Reason codes (quarantine vocabulary)
WARD_AMBIGUOUS_SPLIT = "ward_ambiguous_split"  # one old ward -> several new units
WARD_AMBIGUOUS_NAME = "ward_ambiguous_name"  # a name that fits several units (or both vintages differently)
WARD_UNKNOWN = "ward_unknown"
PROVINCE_UNKNOWN = "province_unknown"

# NSO's conversion table types three old codes wrong; the old name tells which rows.
_NSO_CODE_TYPOS = {("01615", "Mỹ Hưng"): "01651", ("02485", "Phú Thịnh"): "02482", ("00553", "Đặng Xá"): "00556"}
# Notes meaning only part of the old unit went to this destination ("Nhâp" is NSO's spelling slip).
_PARTIAL_NOTE = re.compile(r"một phần|phần còn lại|toàn bộ diện tích", re.IGNORECASE)
_WHOLE_POPULATION_NOTE = re.compile(r"toàn bộ dân số", re.IGNORECASE)
_CODE_IN_PARENS = re.compile(r"\((\d+)\)\s*$")

# Unit-type prefixes as written in exports, with and without diacritics, abbreviated or not.
_WARD_PREFIXES = {
    "Thị trấn": r"thị\s*trấn|thi\s*tran|t\.\s*t\.?|tt\.?",
    "Đặc khu": r"đặc\s*khu|dac\s*khu|đ\.\s*k\.?|đk\.?|dk\.?",
    "Phường": r"phường|phuong|p\.?",
    "Xã": r"xã|xa|x\.?",
}
_DISTRICT_PREFIXES = {
    "Thị xã": r"thị\s*xã|thi\s*xa|t\.\s*x\.?|tx\.?",
    "Thành phố": r"thành\s*phố|thanh\s*pho|t\.\s*p\.?|tp\.?",
    "Quận": r"quận|quan|q\.?",
    "Huyện": r"huyện|huyen|h\.?",
}
_PROVINCE_PREFIXES = {
    "Thành phố": r"thành\s*phố|thanh\s*pho|t\.\s*p\.?|tp\.?",
    "Tỉnh": r"tỉnh|tinh|t\.?",
}
# Common names the package's keyword lists lack.
_PROVINCE_ALIASES = {"tphcm": HCMC, "hcmc": HCMC, "saigon": HCMC, "tphochiminh": HCMC}


def _prefix_patterns(prefixes: dict[str, str]) -> list[tuple[str, re.Pattern[str]]]:
    # A prefix must end at a space, a dot or a digit ("P.Bến Thành", "P1", "Q.3"), so "Phú Mỹ" keeps its P.
    return [
        (kind, re.compile(rf"^(?:{alts})(?:\s+|(?<=\.)|(?=\d))\s*(?P<rest>\S.*)$", re.IGNORECASE | re.DOTALL))
        for kind, alts in prefixes.items()
    ]


_WARD_RE = _prefix_patterns(_WARD_PREFIXES)
_DISTRICT_RE = _prefix_patterns(_DISTRICT_PREFIXES)
_PROVINCE_RE = _prefix_patterns(_PROVINCE_PREFIXES)
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Resolution:
    """Outcome of resolving one ward code or name to a current (2025) unit."""

    code: str | None  # current 5-digit code, only when unambiguous
    name: str | None  # current official name (NSO), only when unambiguous
    status: str  # "current", "converted", "ambiguous", "unknown"
    candidates: tuple[str, ...] = ()  # current codes it may be, sorted
    reason: str | None = None  # reason code when not cleanly resolved
    nso_main: str | None = None  # split ward: destination NSO says took the whole population


# ---------------------------------------------------------------- keys and parsing


@lru_cache(maxsize=1 << 17)
def _akey(text: str) -> str:
    """Accent-preserving key: tone placement, case, spacing, punctuation and "01"/"1" don't matter."""
    return "".join(str(int(w)) if w.isascii() and w.isdigit() else w for w in _WORDS.findall(key_text(text)))


def _skey(text: str) -> str:
    """Accent-free key, for names typed without diacritics."""
    return _akey(strip_diacritics(text))


def _has_diacritics(text: str) -> bool:
    return strip_diacritics(text) != text


def _split_prefix(text: str, patterns: list[tuple[str, re.Pattern[str]]]) -> tuple[str | None, str]:
    for kind, pattern in patterns:
        m = pattern.match(text)
        if m:
            return kind, m.group("rest")
    return None, text


def _strip_type(name: str, kind: str | None) -> str:
    """Reference name without its leading type word ("Phường Sài Gòn" -> "Sài Gòn")."""
    if kind and name.casefold().startswith(kind.casefold() + " "):
        return name[len(kind) + 1 :]
    return name


def _norm_code(value: Any, width: int) -> str | None:
    """Zero-padded code text; accepts ints and Excel floats (26740.0, 4 for "00004"). None if not a code."""
    if is_missing(value):
        return None
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)(?:\.0*)?", text)
    if not m or len(m.group(1)) > width:
        return None
    return m.group(1).zfill(width)


# ---------------------------------------------------------------- reference data


def _package_db() -> Path:
    # Locate the data file without importing vietnamadminunits (its import pulls in the geocoding converter).
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("vietnamadminunits is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "dataset.db"


def _read_tsv(name: str) -> pd.DataFrame:
    with resources.files("quality").joinpath("reference", name).open("rb") as f:
        return pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)


class _NameIndex:
    """key -> entries, by accented key and by accent-free key."""

    def __init__(self) -> None:
        self.accented: dict[str, list[tuple]] = defaultdict(list)
        self.plain: dict[str, list[tuple]] = defaultdict(list)

    def add(self, name: str, entry: tuple) -> None:
        for index, key in ((self.accented, _akey(name)), (self.plain, _skey(name))):
            if key and entry not in index[key]:
                index[key].append(entry)

    def get(self, name: str, accented: bool) -> list[tuple]:
        if accented:
            return self.accented.get(_akey(name), [])
        return self.plain.get(_skey(name), [])


@cache
def _current_table() -> tuple[pd.DataFrame, dict[str, tuple[str, str, str]]]:
    """The current units and code -> (province, name, type), without the name indexes of the whole reference
    (~3 s to build): resolving 2025-vintage codes needs nothing else."""
    c = _read_tsv("nso-communes.tsv")
    # NSO writes one name "xã Bắc Sơn": normalise the type word's case, keep the rest as published.
    names = [t + " " + _strip_type(n, t) for n, t in zip(c["name"], c["type"])]
    current = pd.DataFrame(
        {"ma_tinh": c["province_code"], "ma_phuong_xa": c["code"], "ten_phuong_xa": names, "loai": c["type"]},
    ).astype("str")
    by_code = {code: (prov, name, kind) for prov, code, name, kind in current.itertuples(index=False, name=None)}
    return current, by_code


class _Reference:
    def __init__(self) -> None:
        self._load_current()
        self._load_pre2025()
        self._load_crosswalk()
        self._build_indexes()

    def _load_current(self) -> None:
        self.current, self.current_by_code = _current_table()
        with sqlite3.connect(f"file:{_package_db()}?mode=ro", uri=True) as db:
            provinces = db.execute(
                "SELECT DISTINCT provinceCode, province, provinceKeywords FROM admin_units"
            ).fetchall()
            legacy = pd.read_sql(
                "SELECT provinceCode, province, provinceKeywords, districtCode, district, districtType,"
                " wardCode, ward, wardType FROM admin_units_legacy",
                db,
                dtype=str,
            )
        self.province_names = {code: name for code, name, _ in provinces}
        self.province_keys: dict[str, str] = dict(_PROVINCE_ALIASES)
        for code, name, keywords in provinces:
            for kw in [_skey(name), *json.loads(keywords or "[]")]:
                self.province_keys.setdefault(kw, code)
        self._legacy = legacy

    def _load_pre2025(self) -> None:
        lg = self._legacy
        self.old_province_keys: dict[str, str] = {}
        for code, name, keywords in lg[["provinceCode", "province", "provinceKeywords"]].drop_duplicates().itertuples(
            index=False, name=None
        ):
            for kw in [_skey(name), *json.loads(keywords or "[]")]:
                self.old_province_keys.setdefault(kw, code)
        wards = lg[lg["wardCode"].notna()]
        self.pre2025 = pd.DataFrame(
            {
                "ma_tinh": wards["provinceCode"],
                "ten_tinh": wards["province"],
                "ma_quan_huyen": wards["districtCode"],
                "ten_quan_huyen": wards["district"],
                "ma_phuong_xa": wards["wardCode"],
                "ten_phuong_xa": wards["ward"],
                "loai": wards["wardType"],
            }
        ).sort_values("ma_phuong_xa", ignore_index=True).astype("str")
        self.old_by_code = {r.ma_phuong_xa: r for r in self.pre2025.itertuples(index=False)}
        # Districts with no commune level before 2025 (island districts, now đặc khu).
        self.wardless_districts = lg[lg["wardCode"].isna()][["provinceCode", "districtCode", "district"]]

    def _load_crosswalk(self) -> None:
        x = _read_tsv("nso-old-to-new.tsv")
        for (typo, old_short), right in _NSO_CODE_TYPOS.items():
            rows = x.index[x["old_code"] == typo]
            rows = [i for i in rows if _akey(x.at[i, "old_name"]).endswith(_akey(old_short))]
            x.loc[rows, "old_code"] = right
        self.new_province_of_old: dict[str, str] = {}
        for old_p, new_p in x[["old_province", "new_province"]].drop_duplicates().itertuples(index=False, name=None):
            o, n = _CODE_IN_PARENS.search(old_p), _CODE_IN_PARENS.search(new_p)
            if o and n:
                self.new_province_of_old[o.group(1)] = n.group(1)

        # Island districts: NSO rows without an old ward code that turned a whole district into a đặc khu.
        by_district = {d: new for d, new in self._wardless_destinations(x)}
        self.wardless = {
            (prov, dcode): (name, by_district[dcode])
            for prov, dcode, name in self.wardless_districts.itertuples(index=False, name=None)
            if dcode in by_district
        }

        x = x[x["old_code"] != ""].drop_duplicates(["old_code", "new_code"])
        self._nso_old_names = list(x[["old_code", "old_name"]].drop_duplicates().itertuples(index=False, name=None))
        cw = pd.DataFrame(
            {
                "ma_cu": x["old_code"],
                "ten_cu": [self._old_attr(c, "ten_phuong_xa", n) for c, n in zip(x["old_code"], x["old_name"])],
                "quan_huyen_cu": [
                    self._old_attr(c, "ten_quan_huyen", d) for c, d in zip(x["old_code"], x["old_district"])
                ],
                "tinh_cu": [self._old_attr(c, "ten_tinh", p) for c, p in zip(x["old_code"], x["old_province"])],
                "ma_moi": x["new_code"],
                "ten_moi": x["new_code"].map(lambda c: self.current_by_code[c][1]),
                "toan_bo": ~x["note"].str.contains(_PARTIAL_NOTE),
                "nso_main": x["note"].str.contains(_WHOLE_POPULATION_NOTE),
            }
        ).sort_values(["ma_cu", "ma_moi"], ignore_index=True)
        text_cols = [c for c in cw.columns if c not in ("toan_bo", "nso_main")]
        self.crosswalk = cw.astype({c: "str" for c in text_cols})
        dests: dict[str, list[str]] = defaultdict(list)
        self.nso_main: dict[str, str] = {}
        for old, new, main in cw[["ma_cu", "ma_moi", "nso_main"]].itertuples(index=False, name=None):
            dests[old].append(new)
            if main:
                self.nso_main[old] = new
        self.destinations = {old: tuple(sorted(news)) for old, news in dests.items()}

    @staticmethod
    def _wardless_destinations(x: pd.DataFrame):
        rows = x.loc[x["old_code"] == "", ["old_district", "new_code"]]
        for district, new in rows.itertuples(index=False, name=None):
            m = _CODE_IN_PARENS.search(district)
            if m:
                yield m.group(1), new

    def _old_attr(self, code: str, column: str, fallback: str) -> str:
        row = self.old_by_code.get(code)
        return getattr(row, column) if row is not None else _CODE_IN_PARENS.sub("", fallback).strip()

    def _build_indexes(self) -> None:
        self.current_index = _NameIndex()  # entries: (province, type, code)
        for prov, code, name, kind in self.current.itertuples(index=False, name=None):
            self.current_index.add(_strip_type(name, kind), (prov, kind, code))

        self.old_index = _NameIndex()  # entries: (province, district, type, ident)
        for r in self.pre2025.itertuples(index=False):
            self.old_index.add(_strip_type(r.ten_phuong_xa, r.loai), self._old_entry(r))
        # NSO's spellings of old names ("Gari" for the package's "Ga Ri") answer too.
        for code, old_name in self._nso_old_names:
            r = self.old_by_code.get(code)
            if r is not None:
                self.old_index.add(_split_prefix(old_name, _WARD_RE)[1], self._old_entry(r))
        # Island districts answer to their district name ("Côn Đảo", "Huyện Côn Đảo").
        self.wardless_dest: dict[str, str] = {}
        for (prov, dcode), (name, new) in self.wardless.items():
            ident = f"district:{dcode}"
            self.wardless_dest[ident] = new
            for n in (name, _strip_type(name, "Huyện")):
                self.old_index.add(n, (prov, dcode, "Huyện", ident))

        self.district_index = _NameIndex()  # entries: (province, type, district code)
        districts = self._legacy[["provinceCode", "districtCode", "district", "districtType"]].drop_duplicates()
        for prov, dcode, name, kind in districts.itertuples(index=False, name=None):
            self.district_index.add(_strip_type(name, kind), (prov, kind, dcode))
        self.old_provinces_of_new: dict[str, set[str]] = defaultdict(set)
        for old, new in self.new_province_of_old.items():
            self.old_provinces_of_new[new].add(old)

    @staticmethod
    def _old_entry(r: Any) -> tuple[str, str, str, str]:
        return (r.ma_tinh, r.ma_quan_huyen, r.loai, r.ma_phuong_xa)

    def old_destinations(self, ident: str) -> tuple[str, ...]:
        if ident in self.wardless_dest:
            return (self.wardless_dest[ident],)
        return self.destinations.get(ident, ())


@cache
def _ref() -> _Reference:
    return _Reference()


# ---------------------------------------------------------------- tables


def units_current() -> pd.DataFrame:
    """The 3,321 current units: ma_tinh, ma_phuong_xa, ten_phuong_xa, loai (names and types from NSO)."""
    return _ref().current.copy()


@cache
def current_codes(province: str | None = None) -> frozenset[str]:
    """Codes (5-digit text) of the commune-level units in force since 2025-07-01: all 3,321, or one
    province's ("79" gives HCMC's 168). An unknown province code gives the empty set.

    Backs the GX expectation `expect_column_values_to_be_current_ward_code`.
    """
    if province is None:
        return frozenset(_current_table()[1])
    wanted = _norm_code(province, 2)
    return frozenset(code for code, (prov, _, _) in _current_table()[1].items() if prov == wanted)


def units_pre2025() -> pd.DataFrame:
    """Pre-reform wards: ma_tinh, ten_tinh, ma_quan_huyen, ten_quan_huyen, ma_phuong_xa, ten_phuong_xa, loai."""
    return _ref().pre2025.copy()


def crosswalk() -> pd.DataFrame:
    """Old -> new, one row per (ma_cu, ma_moi), from NSO's table with its code typos fixed.

    toan_bo: the whole old unit went to this destination; nso_main: NSO names this destination as the
    one that took the whole population of a split ward.
    """
    return _ref().crosswalk.copy()


# ---------------------------------------------------------------- resolution by code


def _check_vintage(vintage: str | None, allow_none: bool = False) -> None:
    if vintage is None and allow_none:
        return
    if vintage not in VINTAGES:
        raise ValueError(f"vintage must be one of {VINTAGES}{' or None' if allow_none else ''}, got {vintage!r}")


def _current(code: str, status: str = CURRENT) -> Resolution:
    return Resolution(code, _current_table()[1][code][1], status, (code,), None)


def _from_destinations(dests: tuple[str, ...], main: str | None, reason: str = WARD_AMBIGUOUS_SPLIT) -> Resolution:
    if not dests:
        return Resolution(None, None, UNKNOWN, (), WARD_UNKNOWN)
    if len(dests) == 1:
        return _current(dests[0], CONVERTED)
    return Resolution(None, None, AMBIGUOUS, dests, reason, main)


@lru_cache(maxsize=1 << 16)
def _resolve_code(code: Any, vintage: str) -> Resolution:
    text = _norm_code(code, 5)
    if text is None:
        blank = is_missing(code) or not str(code).strip()
        return Resolution(None, None, UNKNOWN, (), None if blank else WARD_UNKNOWN)
    if vintage == "2025":
        return _current(text) if text in _current_table()[1] else Resolution(None, None, UNKNOWN, (), WARD_UNKNOWN)
    ref = _ref()
    return _from_destinations(ref.destinations.get(text, ()), ref.nso_main.get(text))


def resolve_code(code: str | int | float | None, vintage: str) -> Resolution:
    """Resolve a ward code of the given vintage ("2025" or "pre2025") to a current unit.

    Blank input gives status "unknown" with no reason (whether the field is required is the
    contract's business); a malformed or unlisted code gives reason "ward_unknown".
    """
    _check_vintage(vintage)
    try:
        return _resolve_code(code, vintage)
    except TypeError:  # unhashable input
        return Resolution(None, None, UNKNOWN, (), WARD_UNKNOWN)


def resolve_series(codes: pd.Series, vintage: str) -> pd.DataFrame:
    """resolve_code over a column, once per distinct value.

    Columns: ma_phuong_xa, ten_phuong_xa, trang_thai, ung_vien (candidate codes joined by ";"), ly_do.
    """
    _check_vintage(vintage)
    idx, uniques = pd.factorize(codes, use_na_sentinel=True)
    results = [resolve_code(v, vintage) for v in uniques]
    results.append(resolve_code(None, vintage))  # slot -1: missing values
    columns = {
        "ma_phuong_xa": [r.code for r in results],
        "ten_phuong_xa": [r.name for r in results],
        "trang_thai": [r.status for r in results],
        "ung_vien": [";".join(r.candidates) or None for r in results],
        "ly_do": [r.reason for r in results],
    }
    import pyarrow as pa

    rows = pa.array(np.where(idx < 0, len(results) - 1, idx))  # Arrow take: no per-row Python objects
    return pd.DataFrame(
        {name: pd.array(pa.array(values, type=pa.large_string()).take(rows), dtype="str")
         for name, values in columns.items()},
        index=codes.index,
    )


# ---------------------------------------------------------------- resolution by name


def _province_scope(province: str | None) -> tuple[set[str] | None, set[str] | None] | None:
    """(current province codes, pre-2025 province codes) to search; None means everywhere; None overall if unknown."""
    if province is None:
        return None, None
    ref = _ref()
    code = _norm_code(province, 2)
    if code is None:
        _, rest = _split_prefix(str(province).strip(), _PROVINCE_RE)
        for key in (_skey(rest), _skey(str(province))):
            if key in ref.province_keys:
                code = ref.province_keys[key]
                break
            if key in ref.old_province_keys:
                code = ref.old_province_keys[key]
                break
    if code in ref.province_names:
        return {code}, ref.old_provinces_of_new.get(code, set())
    if code in ref.new_province_of_old:  # a pre-2025 province (e.g. 74 Bình Dương)
        return {ref.new_province_of_old[code]}, {code}
    return None


def _district_codes(district: str, old_scope: set[str] | None) -> set[str]:
    ref = _ref()
    kind, rest = _split_prefix(district.strip(), _DISTRICT_RE)
    accented = _has_diacritics(district)
    for text, typed in ((rest, kind), (district, None)):
        for acc in (True, False) if accented else (False,):
            entries = [e for e in ref.district_index.get(text, acc) if old_scope is None or e[0] in old_scope]
            if typed:
                entries = [e for e in entries if e[1] == typed] or entries
            if entries:
                return {e[2] for e in entries}
    return set()


def _looks_like_province(text: str) -> bool:
    ref = _ref()
    _, rest = _split_prefix(text, _PROVINCE_RE)
    return any(k in ref.province_keys or k in ref.old_province_keys for k in (_skey(rest), _skey(text)))


def resolve_name(
    name: str, province: str | None = HCMC, district: str | None = None, vintage: str | None = None
) -> Resolution:
    """Resolve a ward name ("P. Bến Thành", "phuong ben thanh", "P.14", "Phường 14, Quận 3") to a current unit.

    province: current or pre-2025 province code or name (default HCMC "79"; None searches the whole country).
    district: pre-2025 district ("Quận 3", "Q.3", "Q3", "Huyện Củ Chi"); numbered wards need it.
    Trailing comma-separated parts of `name` fill district (and province, when province is None).
    vintage: "2025", "pre2025", or None to try both: a name that fits a current unit and a pre-2025
    unit converting elsewhere is ambiguous, unless a district is given (districts imply pre-2025).
    """
    _check_vintage(vintage, allow_none=True)
    if is_missing(name) or not str(name).strip():
        return Resolution(None, None, UNKNOWN, (), None)
    parts = [p.strip() for p in re.split(r"[,;]", str(name)) if p.strip()]
    ward = parts[0] if parts else ""
    for extra in parts[1:]:
        if _looks_like_province(extra):
            province = extra if province is None else province
        elif district is None:
            district = extra
    return _resolve_name(ward, province, district, vintage)


@lru_cache(maxsize=1 << 16)
def _resolve_name(ward: str, province: str | None, district: str | None, vintage: str | None) -> Resolution:
    ref = _ref()
    scope = _province_scope(province)
    if scope is None:
        return Resolution(None, None, UNKNOWN, (), PROVINCE_UNKNOWN)
    cur_scope, old_scope = scope
    districts = _district_codes(district, old_scope) if district and vintage != "2025" else set()

    current: list[tuple] = []
    old: list[tuple] = []
    kind, rest = _split_prefix(ward, _WARD_RE)
    accented = _has_diacritics(ward)
    # Prefix-stripped reading first, then the whole text ("Phương Liên" must not lose "Phương");
    # accented keys first so "Tân Phú" does not also match "Tấn Phú".
    for text, typed in ((rest, kind), (ward, None)) if kind else ((ward, None),):
        for acc in (True, False) if accented else (False,):
            if vintage != "pre2025":
                current = [e for e in ref.current_index.get(text, acc) if cur_scope is None or e[0] in cur_scope]
            if vintage != "2025":
                old = [
                    e
                    for e in ref.old_index.get(text, acc)
                    if (old_scope is None or e[0] in old_scope) and (not districts or e[1] in districts)
                ]
            if typed and (any(e[1] == typed for e in current) or any(e[2] == typed for e in old)):
                # The written type decides between same-named units ("Xã Tân Phú" vs "Phường Tân Phú");
                # if nothing has that type (upgraded units, thị trấn now xã) it is ignored.
                current = [e for e in current if e[1] == typed]
                old = [e for e in old if e[2] == typed]
            if current or old:
                break
        if current or old:
            break

    current_codes = tuple(sorted({e[2] for e in current}))
    idents = sorted({e[3] for e in old})
    dests = tuple(sorted({d for i in idents for d in ref.old_destinations(i)}))
    old_reason = WARD_AMBIGUOUS_SPLIT if len(idents) == 1 else WARD_AMBIGUOUS_NAME
    old_main = ref.nso_main.get(idents[0]) if len(idents) == 1 else None

    if old and (vintage == "pre2025" or districts or not current):
        return _from_destinations(dests, old_main, old_reason)
    if len(current_codes) == 1 and set(dests) <= set(current_codes):
        return _current(current_codes[0])
    if current_codes:
        return Resolution(None, None, AMBIGUOUS, tuple(sorted({*current_codes, *dests})), WARD_AMBIGUOUS_NAME)
    return Resolution(None, None, UNKNOWN, (), WARD_UNKNOWN)
