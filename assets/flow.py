"""The steps of one dataset's flow, without Dagster: extract -> clean -> validate -> quarantine / load.

Dagster assets (`assets.factory`) and the department self-check (`kho check`) both call these, so what a
clerk sees in the self-check is exactly what the pipeline would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assets import lake
from assets.clean import ORIGINAL_PREFIX, Reasons, clean
from assets.contract import Contract
from assets.extract import extract
from assets.extract.base import ROW_COLUMN, Extracted
from assets.extract.csv import ORIGINAL, REASONS
from assets.warehouse import Warehouse, now

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


def extract_files(contract: Contract, files: list[dict]) -> tuple[pd.DataFrame, dict[str, Extracted]]:
    """Read every file of the batch; the rows carry the hash of the file they came from."""
    frames, reports = [], {}
    for f in files:
        data = Path(f["archive_path"]).read_bytes()
        got = extract(contract, data, f["file_name"])
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
    if contract.partitioning:
        p = contract.partitioning
        fmt = "%Y-%m" if p.grain == "month" else "%Y-%m-%d"
        cleaned[p.key] = pd.to_datetime(cleaned[p.column], errors="coerce").dt.strftime(fmt)
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
    frame = cleaned.copy()
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
    good = frame[frame[REASONS].isna()]
    keep = list(contract.columns) + ([contract.partitioning.key] if contract.partitioning else [])
    return good[keep + [ROW_COLUMN, FILE_COLUMN]].reset_index(drop=True)


def with_provenance(frame: pd.DataFrame, load_id: str, loaded_at) -> pd.DataFrame:
    frame = frame.copy()
    frame["_kho_load_id"] = load_id
    frame["_kho_loaded_at"] = loaded_at
    return frame


def write_quarantine(wh: Warehouse, lake_root: Path, contract: Contract, frame: pd.DataFrame,
                     load_id: str, hashes: list[str]) -> int:
    """Replace this batch's quarantined rows (by file hash) in the lake and the warehouse."""
    rows = with_provenance(quarantine_rows(contract, frame), load_id, now())
    table = wh.quarantine_table(contract)
    wh.create(table)
    pending = lake.stage(contract, lake_root, "quarantine", rows, f"load_id={load_id}.parquet")
    try:
        with wh.transaction() as conn:
            if hashes:
                conn.execute(table.delete().where(table.c[FILE_COLUMN].in_(hashes)))
            wh.insert(conn, table, rows)
    except BaseException:
        pending.abort()
        raise
    pending.commit()
    return len(rows)


def load_curated(wh: Warehouse, lake_root: Path, contract: Contract, frame: pd.DataFrame, load_id: str,
                 files: list[dict], log_rows: list[dict]) -> int:
    """One transaction: delete what this load replaces, insert the rows, write the load-log rows."""
    rows = with_provenance(curated_rows(contract, frame), load_id, now())
    table = wh.curated_table(contract)
    wh.create(table, wh.load_log)
    hashes = [f["sha256"] for f in files]
    mode = contract.load.mode
    if mode == "append":  # idempotent by file: a re-load replaces that file's rows
        pending = lake.stage(contract, lake_root, "curated", rows, _append_name(rows, hashes))
    else:
        pending = lake.stage(contract, lake_root, "curated", rows, "data.parquet", replace=True)
    try:
        with wh.transaction() as conn:
            if mode == "append":
                conn.execute(table.delete().where(table.c[FILE_COLUMN].in_(hashes)))
            elif mode == "replace":
                conn.execute(table.delete())
            else:
                periods = sorted(rows[contract.partitioning.key].dropna().unique())
                conn.execute(table.delete().where(table.c[contract.partitioning.key].in_(periods)))
            loaded = wh.insert(conn, table, rows)
            conn.execute(wh.load_log.delete().where(
                (wh.load_log.c.load_id == load_id) & wh.load_log.c.file_sha256.in_(hashes)))
            conn.execute(wh.load_log.insert(), log_rows)
    except BaseException:
        pending.abort()
        raise
    pending.commit()
    return loaded


def _append_name(rows: pd.DataFrame, hashes: list[str]) -> str:
    return f"part-{'-'.join(sorted(h[:12] for h in hashes))}.parquet"
