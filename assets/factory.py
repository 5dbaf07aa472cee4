"""Turn each contract into its Dagster assets: raw -> clean -> validated -> curated.

`validated` carries the contract's GX suite as a blocking asset check: when it fails, `curated` does not run,
and the quarantine already holds the rejected rows with their reasons so the department can fix the file.

Partitions: a contract with `partitioning` gets monthly or daily partitions (its reporting periods, on
Asia/Ho_Chi_Minh time); a run for a period reads the landing files that belong to it (`assets.periods`) and
loads only that period's rows. A contract without it gets one dynamic partition per received file, keyed by
the file's hash. SQL sources without `partitioning` stay unpartitioned and take whatever is new.
"""

# No `from __future__ import annotations`: Dagster reads the asset functions' annotations as real types.
import hashlib
import warnings
from dataclasses import asdict

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetIn, AssetKey, Config,
    DailyPartitionsDefinition, DynamicPartitionsDefinition, Failure, MaterializeResult, MetadataValue,
    MonthlyPartitionsDefinition, Output, PartitionsDefinition, PreviewWarning, RetryPolicy, TableColumn,
    TableColumnDep, TableColumnLineage, TableSchema, asset,
)

from assets import children, flow, load
from assets.batches import Staged
from assets.clean import Reasons
from assets.contract import Contract
from assets.errors import ExportError
from assets.extract.csv import REASONS
from assets.periods import FORMATS, TZ, file_period
from assets.raw import archive
from assets.sources import pull
from assets.warehouse import now
from pipelines.policy import AUTOMATION, RETRY, faults, pool
from pipelines.resources import KhoResource
from quality.pseudonym import MissingKey

CHECK = "gx_suite"
KINDS = {"csv": {"csv"}, "xlsx": {"excel", "xlsx"}, "xls": {"excel", "xls"}, "json": {"json"}, "sql": {"sql"}}
FILE_KEY = 16  # hex digits of the sha256 that name a file partition


class RawConfig(Config):
    reload: bool = False  # also take files already loaded (or failed) before
    full_refresh: bool = False  # SQL sources: re-read the whole source, ignoring the stored watermark


def code_version(contract: Contract) -> str:
    """Changes whenever the contract changes, so the UI shows its assets as stale."""
    return hashlib.sha256(contract.model_dump_json().encode()).hexdigest()[:12]


def partitions_def(contract: Contract) -> PartitionsDefinition | None:
    p = contract.partitioning
    if p:
        cls = MonthlyPartitionsDefinition if p.grain == "month" else DailyPartitionsDefinition
        start = pd.Timestamp(p.start).strftime(FORMATS[p.grain])
        return cls(start_date=start, timezone=TZ, fmt=FORMATS[p.grain])
    if contract.format.type == "sql":  # pulled on a schedule, never dropped: nothing to key a partition by
        return None
    return DynamicPartitionsDefinition(name=files_partitions(contract))


def files_partitions(contract: Contract) -> str:
    """The dynamic partitions (one per received file) of a contract without reporting periods."""
    return f"{contract.dataset}_files"


def file_key(sha256: str) -> str:
    return sha256[:FILE_KEY]


def column_schema(contract: Contract) -> TableSchema:
    return TableSchema(columns=[
        TableColumn(name, col.type, description=col.description + (" (dữ liệu cá nhân)" if col.personal else ""))
        for name, col in contract.columns.items()
    ])


def table_schema(contract: Contract) -> TableSchema:
    """The warehouse table: the contract's columns plus the reporting period."""
    extra = [TableColumn(contract.partitioning.key, "text", description="Kỳ báo cáo")] if contract.partitioning else []
    return TableSchema(columns=[*column_schema(contract).columns, *extra])


def export_schema(contract: Contract) -> TableSchema:
    """The columns as departments write them in their exports (the first header alias), before mapping."""
    return TableSchema(columns=[
        TableColumn(_header(col, name), "text", description=f"{col.description} -> {name}")
        for name, col in contract.columns.items()
    ])


def _header(col, name: str) -> str:
    return col.headers[0] if col.headers else name


def lineage(contract: Contract, upstream: AssetKey, from_export: bool = False) -> TableColumnLineage:
    """Each column from the same column one step up; from the export's header for the first step."""
    deps = {name: [TableColumnDep(asset_key=upstream, column_name=_header(col, name) if from_export else name)]
            for name, col in contract.columns.items()}
    if contract.partitioning:  # the period is derived from the partition column
        p = contract.partitioning
        source = _header(contract.columns[p.column], p.column) if from_export else p.key
        deps[p.key] = [TableColumnDep(asset_key=upstream, column_name=source)]
    return TableColumnLineage(deps_by_column=deps)


def build_assets(contract: Contract, retry_policy: RetryPolicy = RETRY) -> list:
    ds, dept = contract.dataset, contract.department
    parts = partitions_def(contract)
    common = dict(group_name=dept.code, owners=[f"team:{dept.code}"], code_version=code_version(contract),
                  io_manager_key="staging", tags={"department": dept.code}, partitions_def=parts,
                  retry_policy=retry_policy, pool=pool(contract.table))
    key = lambda step: AssetKey([ds, step])  # noqa: E731
    with warnings.catch_warnings():  # per-partition check results are "preview" in Dagster 1.13; we rely on them
        warnings.simplefilter("ignore", PreviewWarning)
        gx_spec = AssetCheckSpec(CHECK, asset=key("validated"), blocking=True, partitions_def=parts,
                                 description="The contract's Great Expectations suite on the cleaned batch")

    @asset(key=key("raw"), kinds=KINDS[contract.format.type], **common,
           metadata={"dagster/column_schema": export_schema(contract)},
           description=f"{contract.title}: the exports as received from {dept.name}, archived by sha256.")
    def raw(context: AssetExecutionContext, config: RawConfig, kho: KhoResource) -> Output[pd.DataFrame]:
        with faults(ds):
            wh = kho.warehouse
            load.recover(wh, kho.lake_root, contract)  # a crashed load's committed but unpublished lake files
            try:
                pull(contract, kho.landing, wh, full=config.full_refresh)
            except ExportError as e:  # the source cannot be read as the contract says: logged, never retried
                _log_failure(kho, contract, context.run.run_id, [{"file_name": e.file, "sha256": None}], e,
                             partition=_partition(context))
                raise Failure(description=f"{ds}: {e}", allow_retries=False) from None
            files = archive(kho.landing, kho.raw, contract.landing, ds, dept.code)
            wh.create(wh.manifest, wh.load_log)
            with wh.transaction() as conn:
                known = {tuple(r) for r in conn.execute(sa.select(wh.manifest.c.sha256, wh.manifest.c.file_name)
                                                        .where(wh.manifest.c.dataset == ds))}
                new = [asdict(f) for f in files if (f.sha256, f.file_name) not in known]
                if new:
                    conn.execute(wh.manifest.insert(), new)
                ended = set() if config.reload else {tuple(r) for r in conn.execute(
                    sa.select(wh.load_log.c.file_sha256, wh.load_log.c.status).where(wh.load_log.c.dataset == ds)
                    .where(wh.load_log.c.status.in_(["loaded", "failed"])))}
            # The same bytes under two names are one export: keep the first name.
            unique = list({f.sha256: asdict(f) for f in reversed(files)}.values())[::-1]
            if parts is None:  # whatever is new
                done = {sha for sha, _ in ended}
                batch = [f for f in unique if f["sha256"] not in done]
            elif contract.partitioning:
                batch = _period_files(kho, contract, unique, set(context.partition_keys),
                                      failed={sha for sha, status in ended if status == "failed"})
            else:
                batch = _keyed_file(kho, contract, unique, context.partition_key)
            if parts is not None and not batch:
                raise Failure(description=f"{ds}: no export for {_partition(context)} under "
                                          f"landing/{contract.landing}", allow_retries=False)
            frame = pd.DataFrame(batch, columns=[f for f in ("dataset", "department", "file_name", "size",
                                                             "sha256", "received_at", "archive_path")])
            return Output(frame, metadata={
                "files_in_landing": len(files), "files_to_load": len(frame),
                "files": MetadataValue.md("\n".join(f"- `{f['file_name']}` {f['sha256'][:12]}" for f in batch)
                                          or "none"),
            })

    @asset(key=key("clean"), ins={"raw": AssetIn(key("raw"))}, kinds={"pandas"}, **common,
           automation_condition=AUTOMATION,
           metadata={"dagster/column_schema": table_schema(contract),
                     "dagster/column_lineage": lineage(contract, key("raw"), from_export=True)},
           description=f"{contract.title}: decoded, typed and normalised; rows that cannot be cleaned carry reasons.")
    def clean(context: AssetExecutionContext, kho: KhoResource, raw: pd.DataFrame) -> Output[Staged]:
        with faults(ds):
            files = raw.to_dict("records")
            failures: list = []
            counts = {"reasons": 0, "outside": 0}

            def mark(cleaned: pd.DataFrame) -> None:
                counts["outside"] += _outside_period(context, contract, cleaned)
                counts["reasons"] += int(cleaned[REASONS].notna().sum())

            cleaned, reports = flow.clean_files(contract, files, kho.work_file(context), failures, mark)
            for f, e in failures:  # an unreadable file fails alone: logged, kept in the raw archive, not retried
                _log_failure(kho, contract, context.run.run_id, [f], e, partition=_partition(context))
                context.log.error(str(e))
            if failures and len(failures) == len(files):
                raise Failure(description=f"{contract.dataset}: " + "; ".join(str(e) for _, e in failures),
                              allow_retries=False)
            notes = [f"{f['file_name']}: {r.encoding or ''} " + "; ".join(
                [f"skipped {s.place} ({s.why})" for s in r.skipped] + r.notes)
                for f in files if (r := reports.get(f["sha256"]))] + [f"FAILED {e}" for _, e in failures]
            return Output(cleaned, metadata={
                "dagster/row_count": len(cleaned), "rows_with_reasons": counts["reasons"],
                **({"rows_outside_period": counts["outside"]} if contract.partitioning else {}),
                "read_notes": MetadataValue.md("\n".join(f"- {n}" for n in notes) or "no files"),
                "dagster/column_schema": table_schema(contract),
                "dagster/column_lineage": lineage(contract, key("raw"), from_export=True),
            })

    @asset(key=key("validated"), ins={"clean": AssetIn(key("clean"))}, kinds={"great_expectations"}, **common,
           automation_condition=AUTOMATION, check_specs=[gx_spec],
           metadata={"dagster/column_schema": table_schema(contract),
                     "dagster/column_lineage": lineage(contract, key("clean"))},
           description=f"{contract.title}: checked with the contract's GX suite; rejected rows go to quarantine.")
    def validated(context: AssetExecutionContext, kho: KhoResource, clean: Staged):
        with faults(ds):
            wh = kho.warehouse
            files = _batch_files(kho, contract, clean)
            if not files:
                yield Output(clean, metadata={"dagster/row_count": 0})
                yield AssetCheckResult(check_name=CHECK, passed=True, metadata={"note": "no new files"})
                return
            v = flow.validate(contract, clean, docs_dir=str(kho.docs), out=kho.work_file(context))
            hashes = [f["sha256"] for f in files]
            quarantined = load.write_quarantine(wh, kho.lake_root, contract, v.frame, context.run.run_id, hashes)
            _record_checks(kho, contract, context.run.run_id, v.results)
            if not v.passed:
                _log_rows(kho, contract, context.run.run_id, files, v.frame, "check_failed", "; ".join(v.problems),
                          partition=_partition(context))
            yield Output(v.frame, metadata={"dagster/row_count": len(v.frame), "rows_quarantined": quarantined})
            yield AssetCheckResult(
                check_name=CHECK, passed=v.passed, severity=AssetCheckSeverity.ERROR,
                description="; ".join(v.problems) or "all error-level expectations passed",
                metadata={
                    "rows": len(v.frame), "rows_quarantined": quarantined,
                    "failed_expectations": MetadataValue.md(_results_md(v.results)),
                    **({"data_docs": MetadataValue.url("file://" + v.docs_path)} if v.docs_path else {}),
                })

    @asset(key=key("curated"), ins={"validated": AssetIn(key("validated"))}, kinds={"parquet", wh_kind()},
           **{**common, "io_manager_key": "io_manager"}, automation_condition=AUTOMATION,
           metadata={"dagster/column_schema": table_schema(contract), "dagster/table_name": contract.table,
                     "dagster/column_lineage": lineage(contract, key("validated"))},
           description=f"{contract.description.strip()}\n\nOwner: {dept.name}. Load mode: {contract.load.mode}.")
    def curated(context: AssetExecutionContext, kho: KhoResource, validated: Staged) -> MaterializeResult:
        with faults(ds):
            files = _batch_files(kho, contract, validated)
            if not files:
                return MaterializeResult(metadata={"dagster/row_count": 0, "note": "no new files"})
            log = _log_rows(kho, contract, context.run.run_id, files, validated, "loaded", None, write=False,
                           partition=_partition(context))
            for row in log:
                if row["rows_read"] != row["rows_loaded"] + row["rows_quarantined"]:
                    raise Failure(f"{ds}: rows read != loaded + quarantined for {row['file_name']}: {row}",
                                  allow_retries=False)
            run_id, hashes = context.run.run_id, [f["sha256"] for f in files]
            try:
                # Child tables first: if one fails, the parent's load-log row is not written and the files stay pending.
                for child, rows in children.validated_children(contract, validated, files):
                    load.write_quarantine(kho.warehouse, kho.lake_root, child, rows, run_id, hashes)
                    load.load_curated(kho.warehouse, kho.lake_root, child, rows, run_id, files,
                                      _log_rows(kho, child, run_id, files, rows, "loaded", None, write=False,
                                                partition=_partition(context)))
                loaded = load.load_curated(kho.warehouse, kho.lake_root, contract, validated, run_id, files, log)
            except MissingKey as e:  # personal data and no KHO_PSEUDONYM_KEY: nothing written, files stay pending
                raise Failure(description=str(e), allow_retries=False) from None
            return MaterializeResult(metadata={
                "dagster/row_count": loaded.rows, "rows_read": len(validated),
                "rows_quarantined": sum(row["rows_quarantined"] for row in log), **loaded.metadata(),
                "dagster/column_lineage": lineage(contract, key("validated")),
            })

    return [raw, clean, validated, curated]


def wh_kind() -> str:
    import os

    url = os.environ.get("KHO_WAREHOUSE_URL", "sqlite")
    return "postgres" if url.startswith("postgres") else url.split(":")[0].split("+")[0]


def _partition(context) -> str | None:
    """The partition (or range) a run covers, as the load log records it."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    r = context.partition_key_range
    return r.start if r.start == r.end else f"{r.start}...{r.end}"


def _period_files(kho: KhoResource, contract: Contract, files: list[dict], periods: set[str],
                  failed: set[str]) -> list[dict]:
    """The landing files of these periods, oldest first. Files that could not be read are not retried; where a
    period's export replaces the period (load modes replace, replace_partition) only its newest file counts."""
    mine = {}
    for f in files:
        if f["sha256"] in failed:
            continue
        period = file_period(contract, f["archive_path"], f["file_name"], f["received_at"],
                             cache=kho.root / "staging" / "periods", sha256=f["sha256"])
        if period in periods:
            mine.setdefault(period, []).append(f)
    arrival = lambda f: (f["received_at"], f["file_name"])  # noqa: E731
    if contract.load.mode in ("replace", "replace_partition"):
        return sorted((max(group, key=arrival) for group in mine.values()), key=arrival)
    return sorted((f for group in mine.values() for f in group), key=arrival)


def _keyed_file(kho: KhoResource, contract: Contract, files: list[dict], partition: str) -> list[dict]:
    """The file a file partition names: from the landing folder, or from the archive if it has left it."""
    found = [f for f in files if file_key(f["sha256"]) == partition]
    if found:
        return found[:1]
    wh = kho.warehouse
    with wh.engine.connect() as conn:
        row = conn.execute(sa.select(wh.manifest).where(wh.manifest.c.dataset == contract.dataset)
                           .where(wh.manifest.c.sha256.startswith(partition))).mappings().first()
    return [dict(row)] if row else []


def _outside_period(context, contract: Contract, cleaned: pd.DataFrame) -> int:
    """A period's run loads that period only: rows dated elsewhere are rejected, never loaded into another period."""
    if not contract.partitioning or cleaned.empty:
        return 0
    p = contract.partitioning
    outside = (cleaned[REASONS].isna() & ~cleaned[p.key].isin(set(context.partition_keys))).to_numpy()
    reasons = Reasons(len(cleaned), cleaned[REASONS])
    reasons.add(outside, f"outside_period:{p.column}")
    cleaned[REASONS] = reasons.series(cleaned.index)
    return int(outside.sum())


def _batch_files(kho: KhoResource, contract: Contract, rows: Staged) -> list[dict]:
    """The manifest rows of the files whose rows are in this batch."""
    hashes = set(flow.file_counts(rows))
    wh = kho.warehouse
    with wh.engine.connect() as conn:
        rows = conn.execute(sa.select(wh.manifest).where(wh.manifest.c.dataset == contract.dataset)
                            .where(wh.manifest.c.sha256.in_(hashes))).mappings().all()
    return list({r["sha256"]: dict(r) for r in rows}.values())


def _log_rows(kho, contract, load_id, files, frame, status, message, write=True, partition=None) -> list[dict]:
    finished = now()
    counts = flow.file_counts(frame)
    rows = [{
        "load_id": load_id, "dataset": contract.dataset, "department": contract.department.code,
        "partition_key": partition, "file_name": f["file_name"], "file_sha256": f["sha256"],
        "rows_read": (c := counts.get(f["sha256"], (0, 0)))[0], "rows_quarantined": c[1],
        "rows_loaded": c[0] - c[1] if status == "loaded" else 0,
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


def _log_failure(kho, contract, load_id, files, error: ExportError, partition=None) -> None:
    wh = kho.warehouse
    wh.create(wh.load_log)
    failed = [f for f in files if f["file_name"] == error.file] or files
    with wh.transaction() as conn:
        conn.execute(wh.load_log.insert(), [{
            "load_id": load_id, "dataset": contract.dataset, "department": contract.department.code,
            "partition_key": partition,
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
            "load_id": load_id, "dataset": contract.dataset, "expectation": r.expectation,
            "column_name": ",".join(r.columns) or None,
            "severity": r.severity, "success": r.success, "unexpected_count": r.unexpected_count,
            "observed_value": None if r.observed_value is None else str(r.observed_value), "checked_at": now(),
        } for r in results])


def _results_md(results) -> str:
    lines = [f"- {'✅' if r.success else ('⚠️' if r.severity == 'warn' else '❌')} `{r.expectation}`"
             f"{' on ' + r.column if r.column else ''}"
             f"{f': {r.unexpected_count} rows' if r.unexpected_count else ''}" for r in results]
    return "\n".join(lines)
