"""The steps of one dataset's flow, without Dagster: extract -> clean -> validate (quarantine and load: `assets.load`).

Dagster assets (`assets.factory`) and the department self-check (`kho check`) both call these, so what a
clerk sees in the self-check is exactly what the pipeline would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assets import privacy
from assets.clean import ORIGINAL_PREFIX, Reasons, clean
from assets.contract import Contract
from assets.periods import period_keys
from assets.errors import ExportError
from assets.extract import extract
from assets.extract.base import ROW_COLUMN, Extracted
from assets.extract.csv import ORIGINAL, REASONS

FILE_COLUMN = "_kho_file_sha256"


@dataclass
class Validation:
    frame: pd.DataFrame  # the cleaned rows with their final reasons
    results: list  # quality.gx.ExpectationOutcome, one per expectation
    passed: bool  # the blocking verdict
    problems: list[str] = field(default_factory=list)  # why it did not pass, in words
    docs_path: str | None = None

    @property
    def rejected(self) -> pd.Series:
        return self.frame[REASONS].notna()

    @property
    def warnings(self) -> list:
        """Failed warn-level expectations: recorded (check results, Data Docs), never blocking."""
        return [r for r in self.results if r.severity == "warn" and not r.success]


def extract_files(contract: Contract, files: list[dict],
                  failures: list | None = None) -> tuple[pd.DataFrame, dict[str, Extracted]]:
    """Read every file of the batch; the rows carry the hash of the file they came from.

    With a `failures` list, a file that cannot be read is appended to it as (file, ExportError) and the
    others are still read: one bad export fails alone. Without it the first ExportError is raised."""
    frames, reports = [], {}
    for f in files:
        data = Path(f["archive_path"]).read_bytes()
        try:
            got = extract(contract, data, f["file_name"])
        except ExportError as e:
            if failures is None:
                raise
            failures.append((f, e))
            continue
        got.frame[FILE_COLUMN] = f["sha256"]
        frames.append(got.frame)
        reports[f["sha256"]] = got
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in contract.columns})
        empty[ROW_COLUMN], empty[REASONS], empty[ORIGINAL], empty[FILE_COLUMN] = [], None, None, None
        return empty, reports
    return pd.concat(frames, ignore_index=True), reports


def clean_batch(contract: Contract, extracted: pd.DataFrame) -> pd.DataFrame:
    cleaned = clean(contract, extracted)
    cleaned[FILE_COLUMN] = extracted[FILE_COLUMN].to_numpy()
    if contract.partitioning:  # the reporting period on local time, as Dagster's partition keys
        cleaned[contract.partitioning.key] = period_keys(contract, cleaned[contract.partitioning.column])
    return cleaned


def validate(contract: Contract, cleaned: pd.DataFrame, docs_dir: str | None = None) -> Validation:
    """Run the contract's GX suite on the rows that survived cleaning.

    Rows failing a row-level error expectation join the quarantine with `<expectation>:<column>[,<column>]`;
    batch-level error failures (table expectations, `mostly` ratios, expectations that raised) and a rejected
    share above the contract's limit fail the blocking check. Warn-level failures are only recorded.
    """
    from quality.gx import validate as gx_validate

    alive = np.flatnonzero(cleaned[REASONS].isna().to_numpy())
    typed = cleaned[list(contract.columns)].iloc[alive].reset_index(drop=True)
    outcome = gx_validate(typed, contract.dataset, contract.suite(), docs_dir=docs_dir)
    reasons = Reasons(len(cleaned), cleaned[REASONS])
    problems = []
    for r in outcome.results:
        if r.quarantines and r.unexpected_rows:
            mask = np.zeros(len(cleaned), dtype=bool)
            mask[alive[r.unexpected_rows]] = True
            reasons.add(mask, r.reason_code)
        elif r.blocks:
            seen = r.exception or (f"{r.unexpected_percent:.1f}% of values unexpected"
                                   if r.unexpected_percent is not None else f"observed {r.observed_value}")
            problems.append(f"{r.expectation}{_args(r.kwargs)} failed ({seen})")
    frame = cleaned.copy(deep=False)  # only REASONS is replaced below (copy-on-write keeps `cleaned` intact)
    frame[REASONS] = reasons.series(frame.index)
    share = float(frame[REASONS].notna().mean()) if len(frame) else 0.0
    if share > contract.quality.max_rejected_share:
        problems.append(f"{share:.1%} of rows rejected, above the contract's limit of "
                        f"{contract.quality.max_rejected_share:.0%}")
    return Validation(frame, outcome.results, not problems, problems, outcome.docs_path)


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


def curated_rows(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """Accepted rows as shared tables hold them: personal columns pseudonymised or dropped (`assets.privacy`).

    Raises quality.pseudonym.MissingKey when they carry personal data and KHO_PSEUDONYM_KEY is unset.
    """
    keep = list(contract.columns) + ([contract.partitioning.key] if contract.partitioning else [])
    # columns first, then rows: filtering the whole frame would also copy every _src_ original
    good = frame.loc[frame[REASONS].isna().to_numpy(), keep + [ROW_COLUMN, FILE_COLUMN]]
    return privacy.protect(contract, good.reset_index(drop=True))
