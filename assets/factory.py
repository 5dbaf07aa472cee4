"""Turn each contract into its Dagster assets: raw -> clean -> validated -> curated.

`validated` carries the contract's GX suite as a blocking asset check: when it fails, `curated` does not run,
and the quarantine already holds the rejected rows with their reasons so the department can fix the file.
"""


import hashlib
from dataclasses import asdict

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetIn,
    AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetKey, Config, Failure,
    MaterializeResult, MetadataValue, Output, TableColumn, TableSchema, asset,
)

from assets import flow
from assets.contract import Contract
from assets.errors import ExportError
from assets.raw import archive
from assets.sources import pull
from assets.warehouse import now
from pipelines.resources import KhoResource

CHECK = "gx_suite"
KINDS = {"csv": "csv", "xlsx": "excel", "xls": "excel", "json": "json", "sql": "sql"}


class RawConfig(Config):
    reload: bool = False  # also take files already loaded (or failed) before


def code_version(contract: Contract) -> str:
    """Changes whenever the contract changes, so the UI shows its assets as stale."""
    return hashlib.sha256(contract.model_dump_json().encode()).hexdigest()[:12]


def column_schema(contract: Contract) -> TableSchema:
    return TableSchema(columns=[
        TableColumn(name, col.type, description=col.description + (" (dữ liệu cá nhân)" if col.personal else ""))
        for name, col in contract.columns.items()
    ])


def build_assets(contract: Contract) -> list:
    ds, dept = contract.dataset, contract.department
    common = dict(group_name=dept.code, owners=[f"team:{dept.code}"], code_version=code_version(contract),
                  io_manager_key="staging", tags={"department": dept.code})
    key = lambda step: AssetKey([ds, step])  # noqa: E731

    @asset(key=key("raw"), kinds={KINDS[contract.format.type]}, **common,
           description=f"{contract.title}: the exports as received from {dept.name}, archived by sha256.")
    def raw(context: AssetExecutionContext, config: RawConfig, kho: KhoResource) -> Output[pd.DataFrame]:
        wh = kho.warehouse
        pull(contract, kho.landing, wh)
        files = archive(kho.landing, kho.raw, contract.landing, ds, dept.code)
        wh.create(wh.manifest, wh.load_log)
        with wh.transaction() as conn:
            known = {tuple(r) for r in conn.execute(sa.select(wh.manifest.c.sha256, wh.manifest.c.file_name)
                                                    .where(wh.manifest.c.dataset == ds))}
            new = [asdict(f) for f in files if (f.sha256, f.file_name) not in known]
            if new:
                conn.execute(wh.manifest.insert(), new)
            done = set() if config.reload else {r[0] for r in conn.execute(
                sa.select(wh.load_log.c.file_sha256).where(wh.load_log.c.dataset == ds)
                .where(wh.load_log.c.status.in_(["loaded", "failed"])))}
        # The same bytes under two names are one export: keep the first name.
        batch = list({f.sha256: asdict(f) for f in reversed(files) if f.sha256 not in done}.values())[::-1]
        frame = pd.DataFrame(batch, columns=[f for f in ("dataset", "department", "file_name", "size", "sha256",
                                                         "received_at", "archive_path")])
        return Output(frame, metadata={
            "files_in_landing": len(files), "files_to_load": len(frame),
            "files": MetadataValue.md("\n".join(f"- `{f['file_name']}` {f['sha256'][:12]}" for f in batch) or "none"),
        })

    @asset(key=key("clean"), ins={"raw": AssetIn(key("raw"))}, kinds={"pandas"}, **common,
           description=f"{contract.title}: decoded, typed and normalised; rows that cannot be cleaned carry reasons.")
    def clean(context: AssetExecutionContext, kho: KhoResource, raw: pd.DataFrame) -> Output[pd.DataFrame]:
        files = raw.to_dict("records")
        try:
            extracted, reports = flow.extract_files(contract, files)
        except ExportError as e:
            _log_failure(kho, contract, context.run_id, files, e)
            raise Failure(description=f"{contract.dataset}: {e}", allow_retries=False) from None
        cleaned = flow.clean_batch(contract, extracted)
        notes = [f"{f['file_name']}: {r.encoding or ''} " + "; ".join(
            [f"skipped {s.place} ({s.why})" for s in r.skipped] + r.notes) for f, r in
            zip(files, reports.values())]
        return Output(cleaned, metadata={
            "dagster/row_count": len(cleaned), "rows_with_reasons": int(cleaned["_kho_reasons"].notna().sum()),
            "read_notes": MetadataValue.md("\n".join(f"- {n}" for n in notes) or "no files"),
            "dagster/column_schema": column_schema(contract),
        })

    @asset(key=key("validated"), ins={"clean": AssetIn(key("clean"))}, kinds={"great_expectations"}, **common,
           check_specs=[AssetCheckSpec(CHECK, asset=key("validated"), blocking=True,
                                       description="The contract's Great Expectations suite on the cleaned batch")],
           description=f"{contract.title}: checked with the contract's GX suite; rejected rows go to quarantine.")
    def validated(context: AssetExecutionContext, kho: KhoResource, clean: pd.DataFrame):
        wh = kho.warehouse
        files = _batch_files(kho, contract, clean)
        if not files:
            yield Output(clean, metadata={"dagster/row_count": 0})
            yield AssetCheckResult(check_name=CHECK, passed=True, metadata={"note": "no new files"})
            return
        v = flow.validate(contract, clean, docs_dir=str(kho.docs))
        hashes = [f["sha256"] for f in files]
        quarantined = flow.write_quarantine(wh, kho.lake, contract, v.frame, context.run_id, hashes)
        _record_checks(kho, contract, context.run_id, v.results)
        if not v.passed:
            _log_rows(kho, contract, context.run_id, files, v.frame, "check_failed", "; ".join(v.problems))
        yield Output(v.frame, metadata={"dagster/row_count": len(v.frame), "rows_quarantined": quarantined})
        yield AssetCheckResult(
            check_name=CHECK, passed=v.passed, severity=AssetCheckSeverity.ERROR,
            description="; ".join(v.problems) or "all error-level expectations passed",
            metadata={
                "rows": len(v.frame), "rows_quarantined": quarantined,
                "failed_expectations": MetadataValue.md(_results_md(v.results)),
                **({"data_docs": MetadataValue.url("file://" + v.docs_path)} if v.docs_path else {}),
            })

    @asset(key=key("curated"), ins={"validated": AssetIn(key("validated"))}, kinds={"parquet", wh_kind()}, **{**common, "io_manager_key": "io_manager"},
           metadata={"dagster/column_schema": column_schema(contract), "dagster/table_name": contract.table},
           description=f"{contract.description.strip()}\n\nOwner: {dept.name}. Load mode: {contract.load.mode}.")
    def curated(context: AssetExecutionContext, kho: KhoResource, validated: pd.DataFrame) -> MaterializeResult:
        files = _batch_files(kho, contract, validated)
        if not files:
            return MaterializeResult(metadata={"dagster/row_count": 0, "note": "no new files"})
        log = _log_rows(kho, contract, context.run_id, files, validated, "loaded", None, write=False)
        for row in log:
            if row["rows_read"] != row["rows_loaded"] + row["rows_quarantined"]:
                raise Failure(f"{ds}: rows read != loaded + quarantined for {row['file_name']}: {row}")
        loaded = flow.load_curated(kho.warehouse, kho.lake, contract, validated, context.run_id, files, log)
        return MaterializeResult(metadata={
            "dagster/row_count": loaded, "rows_read": len(validated),
            "rows_quarantined": int(validated["_kho_reasons"].notna().sum()),
            "table": contract.table, "lake": str(kho.lake / "curated" / ds),
        })

    return [raw, clean, validated, curated]


def wh_kind() -> str:
    import os

    url = os.environ.get("KHO_WAREHOUSE_URL", "sqlite")
    return "postgres" if url.startswith("postgres") else url.split(":")[0].split("+")[0]


def _batch_files(kho: KhoResource, contract: Contract, frame: pd.DataFrame) -> list[dict]:
    """The manifest rows of the files whose rows are in this batch."""
    hashes = set(frame[flow.FILE_COLUMN].dropna().unique()) if len(frame) else set()
    wh = kho.warehouse
    with wh.engine.connect() as conn:
        rows = conn.execute(sa.select(wh.manifest).where(wh.manifest.c.dataset == contract.dataset)
                            .where(wh.manifest.c.sha256.in_(hashes))).mappings().all()
    return list({r["sha256"]: dict(r) for r in rows}.values())


def _log_rows(kho, contract, load_id, files, frame, status, message, write=True) -> list[dict]:
    finished = now()
    per_file = frame.groupby(flow.FILE_COLUMN)["_kho_reasons"]
    read, rejected = per_file.size(), per_file.count()
    rows = [{
        "load_id": load_id, "dataset": contract.dataset, "department": contract.department.code,
        "partition_key": None, "file_name": f["file_name"], "file_sha256": f["sha256"],
        "rows_read": int(read.get(f["sha256"], 0)), "rows_quarantined": int(rejected.get(f["sha256"], 0)),
        "rows_loaded": int(read.get(f["sha256"], 0) - rejected.get(f["sha256"], 0)) if status == "loaded" else 0,
        "check_outcome": "passed" if status == "loaded" else "failed", "status": status, "message": message,
        "started_at": finished, "finished_at": finished,
    } for f in files]
    if write:
        wh = kho.warehouse
        wh.create(wh.load_log)
        with wh.transaction() as conn:
            conn.execute(wh.load_log.delete().where((wh.load_log.c.load_id == load_id)
                                                    & wh.load_log.c.file_sha256.in_([r["file_sha256"] for r in rows])))
            conn.execute(wh.load_log.insert(), rows)
    return rows


def _log_failure(kho, contract, load_id, files, error: ExportError) -> None:
    wh = kho.warehouse
    wh.create(wh.load_log)
    failed = [f for f in files if f["file_name"] == error.file] or files
    with wh.transaction() as conn:
        conn.execute(wh.load_log.insert(), [{
            "load_id": load_id, "dataset": contract.dataset, "department": contract.department.code,
            "file_name": f["file_name"], "file_sha256": f["sha256"], "rows_read": 0, "rows_loaded": 0,
            "rows_quarantined": 0, "check_outcome": None, "status": "failed", "message": str(error),
            "started_at": now(), "finished_at": now(),
        } for f in failed])


def _record_checks(kho, contract, load_id, results) -> None:
    wh = kho.warehouse
    wh.create(wh.check_results)
    with wh.transaction() as conn:
        conn.execute(wh.check_results.delete().where(wh.check_results.c.load_id == load_id)
                     .where(wh.check_results.c.dataset == contract.dataset))
        conn.execute(wh.check_results.insert(), [{
            "load_id": load_id, "dataset": contract.dataset, "expectation": r.expectation, "column_name": r.column,
            "severity": r.severity, "success": r.success, "unexpected_count": r.unexpected_count,
            "observed_value": None if r.observed_value is None else str(r.observed_value), "checked_at": now(),
        } for r in results])


def _results_md(results) -> str:
    lines = [f"- {'✅' if r.success else ('⚠️' if r.severity == 'warn' else '❌')} `{r.expectation}`"
             f"{' on ' + r.column if r.column else ''}"
             f"{f': {r.unexpected_count} rows' if r.unexpected_count else ''}" for r in results]
    return "\n".join(lines)
