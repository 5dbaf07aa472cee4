"""Match the header texts departments write to the contract's canonical column names."""

from __future__ import annotations

import re
import unicodedata

from assets.errors import ExportError


_WS = re.compile(r"[\s\u200b\ufeff]+")
_TRAILING_MARKS = re.compile(r"(\s*(\(\*\)|\*|:))+$")
_SLASH = re.compile(r"\s*/\s*")
# Vietnamese tone and vowel marks decompose (NFD) into U+0300-U+036F; đ/Đ do not decompose.
_STRIP_MARKS = {cp: None for cp in range(0x300, 0x370)} | {ord("đ"): "d", ord("Đ"): "D"}


def normalise_header(text: str) -> str:
    """Header text as compared: NFC, casefolded, one space, no trailing ':' / '(*)', ' / ' around slashes."""
    s = _WS.sub(" ", unicodedata.normalize("NFC", str(text)).casefold()).strip()
    return _SLASH.sub(" / ", _TRAILING_MARKS.sub("", s)).strip()


def strip_marks(text: str) -> str:
    """Without diacritics, so "Mã số thuế" == "Ma so thue" and old/new tone placement ("hoà"/"hòa") agree."""
    return unicodedata.normalize("NFD", text).translate(_STRIP_MARKS)


def header_key(text: str) -> str:
    """Compare headers ignoring case, spacing, line breaks, trailing ':' and '(*)', and diacritics."""
    return strip_marks(normalise_header(text))


def alias_keys(columns: dict[str, list[str]]) -> dict[str, str]:
    """header key -> canonical name; the canonical name itself is always an alias."""
    keys: dict[str, str] = {}
    for name, aliases in columns.items():
        for alias in [name, *aliases]:
            keys.setdefault(header_key(alias), name)
    return keys


def map_headers(found: list[str], columns: dict[str, list[str]], required: set[str], file: str,
                place: str = "header") -> tuple[dict[int, str], list[str]]:
    """Position -> canonical name for the headers that match; the texts of those that don't.

    Fails, naming the file, when a required column is missing or two headers map to one column.
    """
    keys = alias_keys(columns)
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for i, text in enumerate(found):
        name = keys.get(header_key(text)) if text is not None else None
        if name is None:
            if text not in (None, ""):
                unknown.append(str(text))
            continue
        if name in mapping.values():
            first = next(found[j] for j, n in mapping.items() if n == name)
            raise ExportError(file, f"headers '{first}' and '{text}' both map to column '{name}'", place)
        mapping[i] = name
    missing = sorted(required - set(mapping.values()))
    if missing:
        wanted = "; ".join(f"{m} (written as {', '.join(repr(a) for a in columns[m]) or repr(m)})" for m in missing)
        raise ExportError(file, f"required column(s) missing: {wanted}. Headers found: {found}", place)
    return mapping, unknown
