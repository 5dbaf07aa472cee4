"""Vietnamese text cleaning and comparison keys.

Exports mix NFC/NFD, NBSP and tabs from Excel, and two tone-placement styles
("hoà" vs "hòa"); a join key must not split on any of them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

# Invisible characters that survive .split(): zero-width space/joiners and a stray BOM.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc\u0060"})

# Combining tone marks (grave, acute, tilde, hook above, dot below) vs vowel
# modifiers (circumflex, breve, horn) in NFD.
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_VOWELS = frozenset("aeiouy")
_LETTERS = frozenset("abcdđeghiklmnopqrstuvxy")
# Open two-vowel nuclei that take the tone on the second vowel: new style hoà, khoẻ, thuỷ
# (old style wrote hòa, khỏe, thủy). Both occur, even in the official NSO lists.
_SECOND_VOWEL_TONE = frozenset({"oa", "oe", "uy"})
_WORD = re.compile(r"[\w\u0300-\u036f]+")  # stray combining marks belong to their word


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and pd.NA (not for empty strings)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def map_unique(values: pd.Series, fn: Callable[[Any], Any], width: int | None = None) -> Any:
    """Apply fn once per distinct non-missing value; missing rows get None.

    Exports repeat a handful of values millions of times, so this is the cheap
    way to run per-value Python logic over a column. With width=k, fn returns a
    k-tuple and the result is a tuple of k row-aligned object arrays.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    columns = [np.full(len(uniques) + 1, None, dtype=object) for _ in range(width or 1)]
    for i, value in enumerate(uniques):  # slot -1 stays None: code -1 means missing
        result = fn(value)
        if width is None:
            columns[0][i] = result
        else:
            for column, item in zip(columns, result, strict=True):
                column[i] = item
    taken = tuple(column[codes] for column in columns)
    return taken[0] if width is None else taken


def _clean_one(value: Any) -> str | None:
    text = unicodedata.normalize("NFC", str(value)).translate(_INVISIBLE)
    return " ".join(text.split()) or None  # str.split() also splits on NBSP, tabs, newlines


def clean_text(values: pd.Series) -> pd.Series:
    """NFC, trim, collapse whitespace runs to one space; empty -> missing."""
    return pd.Series(map_unique(values, _clean_one), index=values.index, name=values.name, dtype="str")


@functools.lru_cache(maxsize=1 << 16)  # a column's words are a few thousand syllables, seen again and again
def _canonical_tone(word: str) -> str:
    """Move a lowercase NFC syllable's tone mark to its new-style position.

    Only touches words that parse as one Vietnamese syllable with exactly one
    tone mark; anything else (loanwords, codes) is returned unchanged.
    """
    letters: list[list[str]] = []  # [base letter, vowel modifiers]
    tone = None
    for ch in unicodedata.normalize("NFD", word):
        if ch in _TONES:
            if tone is not None:
                return word
            tone = ch
        elif unicodedata.combining(ch):
            if not letters:
                return word
            letters[-1][1] += ch
        else:
            letters.append([ch, ""])
    if tone is None or any(base not in _LETTERS for base, _ in letters):
        return word
    vowels = [i for i, (base, _) in enumerate(letters) if base in _VOWELS]
    # "qu" and "gi" + vowel: the u/i belongs to the onset (quý, giá), not the nucleus.
    onset = letters[0][0] + letters[1][0] if len(letters) > 1 and not letters[1][1] else ""
    if len(vowels) > 1 and vowels[0] == 1 and onset in ("qu", "gi"):
        vowels = vowels[1:]
    if not vowels or len(vowels) > 3 or vowels[-1] - vowels[0] != len(vowels) - 1:
        return word
    marked = [i for i in vowels if letters[i][1]]
    if marked:  # ê, ơ, â...: tone on the (last) modified vowel: tiếng, người
        pos = marked[-1]
    elif vowels[-1] < len(letters) - 1:  # closed syllable: hoàn, huỳnh
        pos = vowels[-1]
    elif len(vowels) == 3:  # oai, oay, uya, oeo
        pos = vowels[1]
    elif len(vowels) == 2:
        nucleus = letters[vowels[0]][0] + letters[vowels[1]][0]
        pos = vowels[1] if nucleus in _SECOND_VOWEL_TONE else vowels[0]
    else:
        pos = vowels[0]
    letters[pos][1] += tone
    return unicodedata.normalize("NFC", "".join(base + marks for base, marks in letters))


def key_text(s: str) -> str:
    """Join/compare key: NFC, casefold, collapsed whitespace, one apostrophe, canonical tones."""
    text = " ".join(unicodedata.normalize("NFC", s).translate(_INVISIBLE).casefold().split())
    text = text.translate(_APOSTROPHES)
    return _WORD.sub(lambda m: _canonical_tone(m.group()), text)


def key_series(values: pd.Series) -> pd.Series:
    """key_text over a column (once per distinct value); missing stays missing."""
    mapped = map_unique(values, lambda v: key_text(str(v)))
    return pd.Series(mapped, index=values.index, name=values.name, dtype="str")


def strip_diacritics(s: str) -> str:
    """Remove all diacritics, đ -> d, for headers typed without them ("Ngay tiep nhan")."""
    decomposed = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def title_case_vi(s: str) -> str:
    """Name case: "nguyễn văn  AN" -> "Nguyễn Văn An" (NFC, whitespace collapsed)."""
    words = unicodedata.normalize("NFC", s).translate(_INVISIBLE).split()
    # Capitalise each hyphen-separated part too; str.title() would also capitalise after apostrophes.
    return " ".join("-".join(p[:1].upper() + p[1:].lower() for p in w.split("-")) for w in words)
