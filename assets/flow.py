"""The steps of one dataset's flow, without Dagster: extract -> clean -> validate (quarantine and load: `assets.load`).

Dagster assets (`assets.factory`) and the department self-check (`kho check`) both call these, so what a
clerk sees in the self-check is exactly what the pipeline would do.

Each step takes and gives either a DataFrame or, for exports larger than memory, a `batches.Staged` Parquet
file that is read a slice at a time; checks over the whole batch (repeated keys, uniqueness, row counts)
read only the columns they need, so they stay exact.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

import pyarrow as pa

from assets import batches, privacy
from assets.batches import Staged
from assets.clean import ORIGINAL_PREFIX, Reasons, clean, flag_duplicates
from assets.contract import Contract
from assets.periods import period_keys
from assets.errors import ExportError
from assets.extract import extract_slices
from assets.extract.base import ROW_COLUMN, Extracted
from assets.extract.csv import ORIGINAL, REASONS
from quality import pseudonym

FILE_COLUMN = "_kho_file_sha256"
NORMALISED = "kho.normalised"  # note of a cleaned file: {column: type} of the columns normalize() wrote
# Parquet types of cleaned columns, for a slice where a column has no value at all (pandas cannot tell then)
_ARROW = {"date": pa.date32(), "datetime": pa.timestamp("us", tz="UTC"), "integer": pa.int64(),
          "decimal": pa.float64(), "boolean": pa.bool_()}


@dataclass
class Validation:
    frame: pd.DataFrame | Staged  # the cleaned rows with their final reasons (Staged when given Staged)
    results: list  # quality.gx.ExpectationOutcome, one per expectation
    passed: bool  # the blocking verdict
    problems: list[str] = field(default_factory=list)  # why it did not pass, in words
    docs_path: str | None = None
    checked: np.ndarray | None = None  # positions of the rows GX saw (ExpectationOutcome.unexpected_rows index these)
    rejected_rows: int = 0

    @property
    def rejected(self) -> pd.Series:
        return self.frame[REASONS].notna()

    @property
    def warnings(self) -> list:
        """Failed warn-level expectations: recorded (check results, Data Docs), never blocking."""
        return [r for r in self.results if r.severity == "warn" and not r.success]


def extract_files(contract: Contract, files: list[dict],
                  failures: list | None = None) -> tuple[pd.DataFrame, dict[str, Extracted]]:
    """Every file of the batch as one frame; the rows carry the hash of the file they came from.

    With a `failures` list, a file that cannot be read is appended to it as (file, ExportError) and the
    others are still read: one bad export fails alone. Without it the first ExportError is raised."""
    frames, reports = [], {}
    for f in files:
        try:
            pieces, report = extract_slices(contract, f["archive_path"], f["file_name"])
            got = [piece.assign(**{FILE_COLUMN: f["sha256"]}) for piece in pieces]
        except ExportError as e:
            if failures is None:
                raise
            failures.append((f, e))
            continue
        frames.extend(got)
        reports[f["sha256"]] = report
    if not frames:
        return _empty(contract), reports
    return pd.concat(frames, ignore_index=True), reports


def _empty(contract: Contract) -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in contract.columns})
    empty[ROW_COLUMN], empty[REASONS], empty[ORIGINAL], empty[FILE_COLUMN] = [], None, None, None
    return empty


def clean_files(contract: Contract, files: list[dict], out: str | Path, failures: list | None = None,
                mark=None) -> tuple[Staged, dict[str, Extracted]]:
    """Extract and clean the batch's files a slice at a time (KHO_SLICE_ROWS) into the Parquet file `out`.

    Memory stays bounded by the slice, whatever the size of the exports. `mark(cleaned)` may add reasons to
    each cleaned slice (the Dagster step rejects rows outside the run's period). A file that fails part-way
    (`failures` given) leaves none of its rows behind."""
    reports, dropped = {}, set()
    types = {**{ORIGINAL_PREFIX + c: pa.large_string() for c in contract.columns},
             **{n: _ARROW.get(c.type, pa.large_string()) for n, c in contract.columns.items()},
             ROW_COLUMN: pa.int64()}
    repeated = [FILE_COLUMN, *([contract.partitioning.key] if contract.partitioning else [])]
    with batches.Writer(out, types, repeated, notes={NORMALISED: json.dumps(normalised_columns(contract))}) as w:
        for f in files:
            first = w.row_groups
            try:
                pieces, report = extract_slices(contract, f["archive_path"], f["file_name"], batches.slice_rows())
                # three stages at once: the next slice is read while this one is cleaned and the last one written
                for cleaned in batches.ahead(_cleaned(contract, batches.ahead(pieces), f["sha256"])):
                    if mark is not None:  # here, in the step's thread: it may log to Dagster
                        mark(cleaned)
                    w.write(cleaned)
            except ExportError as e:
                if failures is None:
                    raise
                failures.append((f, e))
                dropped.update(range(first, w.row_groups))
                continue
            reports[f["sha256"]] = report
        staged = w.close(empty=None if w.row_groups else clean_batch(contract, _empty(contract)))
    return staged.without(dropped), reports


def _cleaned(contract: Contract, pieces: Iterator[pd.DataFrame], sha256: str) -> Iterator[pd.DataFrame]:
    for piece in pieces:
        yield clean_batch(contract, piece.assign(**{FILE_COLUMN: sha256}))


def clean_batch(contract: Contract, extracted: pd.DataFrame) -> pd.DataFrame:
    cleaned = clean(contract, extracted)
    cleaned[FILE_COLUMN] = extracted[FILE_COLUMN].array  # as it is: through numpy, 1M hashes took ~0.25 s
    if contract.partitioning:  # the reporting period on local time, as Dagster's partition keys
        cleaned[contract.partitioning.key] = period_keys(contract, cleaned[contract.partitioning.column])
    return cleaned


def file_counts(rows: pd.DataFrame | Staged) -> dict[str, tuple[int, int]]:
    """{file sha256: (rows read, rows rejected)} of a batch, a slice at a time."""
    counts: dict[str, list[int]] = {}
    for piece in batches.slices(rows, [FILE_COLUMN, REASONS]):
        grouped = piece.groupby(FILE_COLUMN)[REASONS]
        for sha, (n, bad) in pd.DataFrame({"n": grouped.size(), "bad": grouped.count()}).iterrows():
            c = counts.setdefault(sha, [0, 0])
            c[0] += int(n)
            c[1] += int(bad)
    return {sha: (n, bad) for sha, (n, bad) in counts.items()}


def validate(contract: Contract, cleaned: pd.DataFrame | Staged, docs_dir: str | None = None,
             out: str | Path | None = None) -> Validation:
    """Flag repeated primary keys, then run the contract's GX suite on the rows that survived cleaning.

    Rows failing a row-level error expectation join the quarantine with `<expectation>:<column>[,<column>]`;
    batch-level error failures (table expectations, `mostly` ratios, expectations that raised) and a rejected
    share above the contract's limit fail the blocking check. Warn-level failures are only recorded.
    A Staged batch is read by column for the checks; its final reasons are written to `out`, an overlay of it.
    """
    from quality.gx import validate as gx_validate

    n = len(cleaned)
    reasons = Reasons(n, batches.read(cleaned, [REASONS])[REASONS])
    _duplicates(contract, cleaned, reasons)
    alive = np.flatnonzero(reasons.codes == "")
    typed = batches.Selection(cleaned, alive, list(contract.columns))
    if isinstance(cleaned, pd.DataFrame):
        typed = typed.read()
    outcome = gx_validate(typed, contract.dataset, contract.suite(), docs_dir=docs_dir)
    problems = []
    for r in outcome.results:
        if r.quarantines and r.unexpected_rows:
            mask = np.zeros(n, dtype=bool)
            mask[alive[r.unexpected_rows]] = True
            reasons.add(mask, r.reason_code)
        elif r.blocks:
            seen = r.exception or (f"{r.unexpected_percent:.1f}% of values unexpected"
                                   if r.unexpected_percent is not None else f"observed {r.observed_value}")
            problems.append(f"{r.expectation}{_args(r.kwargs)} failed ({seen})")
    rejected = int((reasons.codes != "").sum())
    if isinstance(cleaned, pd.DataFrame):
        frame = cleaned.copy(deep=False)  # only REASONS is replaced (copy-on-write keeps `cleaned` intact)
        frame[REASONS] = reasons.series(frame.index)
    else:
        frame = Staged(cleaned.path, overlay=batches.write(out, _reasons(cleaned, reasons)).path)
    share = rejected / n if n else 0.0
    if share > contract.quality.max_rejected_share:
        problems.append(f"{share:.1%} of rows rejected, above the contract's limit of "
                        f"{contract.quality.max_rejected_share:.0%}")
    return Validation(frame, outcome.results, not problems, problems, outcome.docs_path, alive, rejected)


def _reasons(staged: Staged, reasons: Reasons):
    """The final reasons, one table per row group of `staged`: its overlay."""
    at = 0
    for table in staged.tables([REASONS]):
        codes = reasons.codes[at:at + table.num_rows]
        yield pa.table({REASONS: pa.array(np.where(codes == "", None, codes), type=table.schema.field(REASONS).type)})
        at += table.num_rows


def _duplicates(contract: Contract, rows: pd.DataFrame | Staged, reasons: Reasons) -> None:
    """Repeated primary keys across the whole batch (`assets.clean.flag_duplicates` on the rows whose key
    repeats, read alone)."""
    if not contract.primary_key or not len(rows):
        return
    repeated = _repeated(contract.primary_key, rows)
    if not len(repeated):
        return
    found = Reasons(len(repeated))
    flag_duplicates(contract, batches.take(rows, repeated, list(contract.columns)), found)
    for code in set(found.codes) - {""}:
        mask = np.zeros(len(rows), dtype=bool)
        mask[repeated[found.codes == code]] = True
        reasons.add(mask, code)


def _repeated(key: list[str], rows: pd.DataFrame | Staged) -> np.ndarray:
    """Positions (ascending) of the rows whose complete key appears more than once. A Staged batch is grouped
    by DuckDB over its file, spilling to disk past a fixed memory limit: exact for any size of export."""
    if isinstance(rows, pd.DataFrame):
        keys = rows[key]
        return np.flatnonzero((keys.duplicated(keep=False) & keys.notna().all(axis=1)).to_numpy())
    import duckdb

    cols = ", ".join(f'"{k}"' for k in key)  # contract names are validated identifiers
    spill = rows.path.parent / f".{rows.path.name}.duckdb"
    with duckdb.connect(config={"memory_limit": "256MB", "temp_directory": str(spill)}) as db:
        found = db.execute(
            f"SELECT file_row_number AS pos FROM read_parquet(?, file_row_number = true) "
            f"WHERE {' AND '.join(f'{c} IS NOT NULL' for c in cols.split(', '))} "
            f"QUALIFY count(*) OVER (PARTITION BY {cols}) > 1 ORDER BY pos", [str(rows.path)]).fetchnumpy()["pos"]
    shutil.rmtree(spill, ignore_errors=True)
    return np.asarray(found, dtype=np.int64)


def _args(kwargs: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else ""


def quarantine_rows(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows with their original text, reasons and source row."""
    bad = frame[frame[REASONS].notna()]
    out = pd.DataFrame({c: bad[ORIGINAL_PREFIX + c] for c in contract.columns})
    out["_kho_reasons"] = bad[REASONS]
    out["_kho_original"] = bad[ORIGINAL] if ORIGINAL in bad else None
    out[ROW_COLUMN] = bad[ROW_COLUMN]
    out[FILE_COLUMN] = bad[FILE_COLUMN]
    return out.reset_index(drop=True)


def normalised_columns(contract: Contract) -> dict[str, str]:
    """{column: type} of the columns cleaning writes as their type's normalize() gives them (citizen IDs,
    phones): their accepted values need no second normalisation before pseudonyms."""
    return {n: c.type for n, c in contract.columns.items() if c.type in pseudonym.NORMALISED_TYPES}


def trusted_columns(contract: Contract, rows: pd.DataFrame | Staged) -> set[str]:
    """The columns of a cleaned file its note vouches for, as the contract still types them; none for a frame."""
    noted = json.loads(rows.note(NORMALISED) or "{}") if isinstance(rows, Staged) else {}
    return {n for n, t in noted.items() if n in contract.columns and contract.columns[n].type == t}


def curated_rows(contract: Contract, frame: pd.DataFrame, normalised: set[str] = frozenset()) -> pd.DataFrame:
    """Accepted rows as shared tables hold them: personal columns pseudonymised or dropped (`assets.privacy`).
    `normalised`: columns already as normalize() gives them (`trusted_columns` of the cleaned file).

    Raises quality.pseudonym.MissingKey when they carry personal data and KHO_PSEUDONYM_KEY is unset.
    """
    keep = list(contract.columns) + ([contract.partitioning.key] if contract.partitioning else [])
    # columns first, then rows: filtering the whole frame would also copy every _src_ original
    accepted, columns = frame[REASONS].isna().to_numpy(), keep + [ROW_COLUMN, FILE_COLUMN]
    good = frame[columns] if accepted.all() else frame.loc[accepted, columns]
    return privacy.protect(contract, good.reset_index(drop=True), normalised=normalised)
