"""Reporting periods: the key of a row's period, and which period a received file belongs to.

Keys are written like the lake's Hive folders (`ky=2026-10`, `ky=2026-10-31`) and are also the Dagster partition
keys, on Asia/Ho_Chi_Minh time. A file belongs to the period its name states (the contract's `file_period`
regex, else a yyyy-mm(-dd) date in the name); when the name states none, to the period most of its rows fall in;
when its rows cannot be read either, to the period before it arrived, so that period's run fails and says why.
No Dagster here: the self-check and the flow use it too.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from assets.contract import Contract
from assets.errors import ExportError

TZ = "Asia/Ho_Chi_Minh"
FORMATS = {"month": "%Y-%m", "day": "%Y-%m-%d"}
# A date in a file name: 2026-10, 2026_10, 202610, 2026-10-31 ... not inside a longer run of digits.
NAME_DATE = re.compile(r"(?<!\d)(?P<year>(?:19|20)\d{2})[-_.]?(?P<month>0[1-9]|1[0-2])"
                       r"(?:[-_.]?(?P<day>0[1-9]|[12]\d|3[01]))?(?!\d)")


def period_keys(contract: Contract, values: pd.Series) -> pd.Series:
    """The period key of each cleaned value of the partition column (None where there is no date)."""
    if values.dtype == object:  # cleaned dates: datetime.date objects, a few dozen distinct ones a month
        codes, uniques = pd.factorize(values)
        if all(type(u) is date for u in uniques):  # none equal to a datetime or Timestamp: per distinct day
            keys = _stamp_keys(contract, pd.Series(uniques, dtype=object)).to_numpy(dtype=object)
            return pd.Series(np.append(keys, None)[codes], index=values.index, name=values.name, dtype=object)
    return _stamp_keys(contract, values)


def _stamp_keys(contract: Contract, values: pd.Series) -> pd.Series:
    p = contract.partitioning
    stamps = pd.to_datetime(values, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:  # datetimes are stored in UTC; periods are local
        stamps = stamps.dt.tz_convert(TZ)
    # strftime once per distinct stamp (a month of dossiers has a few dozen dates): 1M strftime calls take ~1 s
    codes, uniques = pd.factorize(stamps)
    keys = np.append(pd.Index(uniques).strftime(FORMATS[p.grain]).to_numpy(dtype=object), None)  # slot -1: NaT
    return pd.Series(keys[codes], index=values.index, name=values.name, dtype=object)


def _key(grain: str, year: int, month: int, day: int = 1) -> str | None:
    try:
        return date(year, month, day).strftime(FORMATS[grain])
    except ValueError:
        return None


def period_from_name(contract: Contract, file_name: str) -> str | None:
    p = contract.partitioning
    pattern = re.compile(p.file_period) if p.file_period else NAME_DATE
    m = pattern.search(PurePosixPath(file_name).name)
    if not m:
        return None
    g = m.groupdict()
    if p.grain == "day" and not g.get("day"):
        return None
    return _key(p.grain, int(g["year"]), int(g["month"]), int(g.get("day") or 1))


def period_from_rows(contract: Contract, source: bytes | Path, file_name: str) -> str | None:
    """The period most rows fall in; None when the file cannot be read or has no dated row. Read a slice at a
    time: a city-wide export bigger than memory is dated like any other."""
    from assets.batches import slice_rows
    from assets.clean import clean_column
    from assets.extract import extract_slices

    p = contract.partitioning
    counts: Counter = Counter()
    try:
        pieces, _ = extract_slices(contract, source, file_name, slice_rows())
        for frame in pieces:
            if p.column in frame and len(frame):
                values, _ = clean_column(p.column, contract.columns[p.column], frame[p.column],
                                         contract.format.number_style)
                counts.update(k for k in period_keys(contract, values) if k)
    except ExportError:
        return None
    return counts.most_common(1)[0][0] if counts else None


def period_before(contract: Contract, received_at: datetime) -> str:
    """The period before the one the file arrived in: a period's export arrives after it closes."""
    local = received_at.astimezone(ZoneInfo(TZ)).date()
    if contract.partitioning.grain == "day":
        return (local - timedelta(days=1)).strftime(FORMATS["day"])
    return (local.replace(day=1) - timedelta(days=1)).strftime(FORMATS["month"])


def file_period(contract: Contract, path: Path, file_name: str, received_at: datetime,
                cache: Path | None = None, sha256: str | None = None) -> str:
    """The period a received file belongs to. Reading rows is cached by hash under `cache` (bytes never change)."""
    named = period_from_name(contract, file_name)
    if named:
        return named
    cached = cache / f"{contract.dataset}-{sha256}" if cache and sha256 else None
    if cached and cached.exists():
        found = cached.read_text().strip() or None
    else:
        found = period_from_rows(contract, Path(path), file_name)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(found or "")
    return found or period_before(contract, received_at)
