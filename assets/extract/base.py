"""What every reader returns: a table of text with canonical column names, and what it skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

ROW_COLUMN = "_kho_row"  # where the row came from in the source (1-based line / sheet row / record index)


@dataclass
class Skipped:
    """Rows a reader dropped on purpose (banner, header, column numbers, totals, blank, signature)."""

    place: str  # e.g. "row 3" or "rows 1-4"
    why: str  # e.g. "banner", "totals row (Tổng cộng)"


@dataclass
class Report:
    """What a reader tells about an export besides its rows: the encoding it read, the rows it skipped on purpose,
    notes, and (JSON) the child tables. A reader that yields slices (assets.extract.extract_slices) fills it
    before the first slice and may add to it while slices are read: it is final once they are all read."""

    skipped: list[Skipped] = field(default_factory=list)
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    # JSON lists nested in records, one text table per contract child (see assets.children), keyed by
    # assets.extract.json.PARENT_COLUMN (the parent's ROW_COLUMN) and SEQ_COLUMN.
    children: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(kw_only=True)
class Extracted(Report):
    """A departmental export turned into text.

    `frame` holds only data rows; every column is text (pandas `str`/object, missing = None/NaN),
    named by the contract's canonical column names, plus ROW_COLUMN. Nothing is typed yet: typing is the
    cleaner's job, so a tax code always keeps its leading zeros here.
    """

    frame: pd.DataFrame
