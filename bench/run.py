"""kho against its limit, plain GX, a naive pandas chain and dlt, on one generated one-stop dossier export.

    .venv/bin/python bench/run.py --rows 1000000 [--runs N] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                  [--dagster] [--docs] [--paths kho,limit,gx,naive,dlt] [--out bench/RESULTS.md]

The CSV comes from the demo generator (assets.demo.dossiers: 18 columns, Vietnamese text with 30% NFD names,
dd/mm/yyyy dates, `1.234.567` fees, 10-digit tax codes, counted defects) and is cached under KHO_BENCH_CACHE
(default /tmp/kho-bench). Each path runs in its own subprocess (so its peak RSS is its own), N times; the
median is reported. Paths:

- kho: what the Dagster assets call, without Dagster: assets.flow.clean_files (extract + clean, a slice at a
  time, into a staged Parquet file) -> validate (repeated keys; quality.gx: the contract's GX suite, vectorised
  where GX's answer can be reproduced exactly) -> assets.load.write_quarantine -> load_curated (pseudonyms,
  Parquet zstd lake, SQL by ADBC), slice by slice. With --docs the
  validation also renders its Data Docs page (imports GX). --dagster adds the same through dagster materialize.
- limit: pyarrow.csv read -> Arrow compute cleaning (dates, trim+NFC, numbers, dedupe) -> Parquet zstd ->
  ADBC ingest. No validation, no quarantine, no pseudonyms: the floor for this hardware.
- gx: the same contract suite in plain GX 1.x (pandas engine, result_format COMPLETE) on kho's cleaned frame
  (preparing the frame is not timed; importing GX is reported separately).
- naive: pandas read_csv -> pandas cleaning -> the same suite in GX (COMPLETE) -> DataFrame.to_sql.
- dlt: dlt (if installed: `pip install -e '.[bench]'`) loading the same file through its Arrow path (pyarrow
  read with every column pinned to text, Parquet load files; no cleaning, no validation).
- dlt+checks: what a team would stitch together from the fastest pieces for the work kho does: the limit chain's
  read and Arrow cleaning, the suite in plain GX, HMAC-SHA256 pseudonyms, dlt loading the typed table (still no
  quarantine, lake or lineage columns).

SQLite always; PostgreSQL with --pg: kho loads into a scratch database (its zones are schemas), the other paths
into a scratch schema of the given database; both are dropped afterwards. Prints the table and the ratios the
README quotes, and writes them to bench/RESULTS.md (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATASET = "ho_so_tthc"
MONTH = date(2026, 10, 1)
PATHS = ("kho", "limit", "gx", "naive", "dlt", "dlt+checks")
T = time.perf_counter


# ---------------------------------------------------------------- shared helpers


def contract():
    from assets.contract import CONTRACTS_DIR, load_contract

    return load_contract(CONTRACTS_DIR / f"{DATASET}.yaml")


def header_names() -> dict[str, str]:
    """The export's headers -> the contract's column names."""
    from assets.demo.dossiers import HEADERS

    c = contract()
    by_header = {h: name for name, col in c.columns.items() for h in col.headers}
    return {h: by_header[h] for h in HEADERS}


def pg_urls(url: str) -> dict[str, str]:
    """One PostgreSQL URL in the spellings each client wants."""
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    libpq = u.set(drivername="postgresql").render_as_string(hide_password=False)
    dlt_url = u.set(drivername="postgresql", password=u.password or "unused").render_as_string(hide_password=False)
    return {"sqlalchemy": u.render_as_string(hide_password=False), "libpq": libpq, "dlt": dlt_url}


def client_cpu() -> float:
    """CPU seconds of this process (every thread) and of the children it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def server_cpu() -> float | None:
    """CPU seconds of the local PostgreSQL server so far: its live processes, plus the backends that exited (the
    postmaster's reaped children); None when no server runs on this machine. On 2 shared cores a path's wall
    time swings with its neighbours; its CPU seconds, the server's included, are the work it asks for."""
    tick, procs = os.sysconf("SC_CLK_TCK"), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if name == "postgres":  # fields 4 (ppid), 14-17 (utime, stime, cutime, cstime): rest[0] is field 3
            procs[int(stat.parent.name)] = (int(rest[1]), [int(x) for x in rest[11:15]])
    if not procs:
        return None
    total = sum(u + s for _, (u, s, _cu, _cs) in procs.values())
    total += sum(cu + cs for ppid, (_u, _s, cu, cs) in procs.values() if ppid not in procs)  # the postmaster
    return total / tick


class Timer:
    """Wall seconds per step; CPU seconds of the client and, for a local PostgreSQL, of the server."""

    def __init__(self, db: str) -> None:
        self.steps: dict[str, float] = {}
        self.cpu = {"client": 0.0, "server": 0.0 if db == "postgresql" and server_cpu() is not None else None}

    def __call__(self, name: str, fn, *args, **kwargs):
        server = server_cpu() if self.cpu["server"] is not None else None
        client, t = client_cpu(), T()
        out = fn(*args, **kwargs)
        self.steps[name] = self.steps.get(name, 0.0) + T() - t
        self.cpu["client"] += client_cpu() - client
        if server is not None:
            self.cpu["server"] += server_cpu() - server
        return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- paths (run inside a worker process)


def run_kho(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    import hashlib

    import sqlalchemy as sa

    from assets import flow, load
    from assets.warehouse import Warehouse, now

    c = contract()
    with open(csv, "rb") as f:  # not read whole: the 10M-row file is 2.5 GB
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    files = [{"archive_path": str(csv), "file_name": csv.name, "sha256": sha}]
    work = Path(tempfile.mkdtemp(prefix="kho-bench-"))
    scratch = None
    try:
        if db == "postgresql":
            scratch = f"kho_bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(pg_urls(pg)["sqlalchemy"], isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
            url = pg_urls(pg)["sqlalchemy"].rsplit("/", 1)[0] + f"/{scratch}"
        else:
            url = f"sqlite:///{work / 'warehouse.sqlite'}"
        wh = Warehouse(url)
        t = Timer(db)
        cleaned, _ = t("extract + clean", flow.clean_files, c, files, work / "clean.parquet")
        v = t("validate", flow.validate, c, cleaned, docs_dir=str(work / "docs") if docs else None,
              out=work / "validated.parquet")
        run_id = str(uuid.uuid4())  # the load id on every row, as a Dagster run's id
        quarantined = t("quarantine", load.write_quarantine, wh, str(work / "lake"), c, v.frame, run_id, [sha])
        rejected = v.rejected_rows
        log = [{"load_id": run_id, "dataset": c.dataset, "department": c.department.code, "partition_key": None,
                "file_name": csv.name, "file_sha256": sha, "rows_read": len(v.frame),
                "rows_quarantined": rejected, "rows_loaded": len(v.frame) - rejected, "check_outcome": "passed",
                "status": "loaded", "message": None, "started_at": now(), "finished_at": now()}]
        loaded = t("load (pseudonyms, Parquet, SQL)", load.load_curated, wh, str(work / "lake"), c, v.frame,
                   run_id, files, log)
        wh.engine.dispose()
        rows = getattr(loaded, "rows", loaded)
        fast = sum(1 for r in v.results if r.exception is None)
        return t, {"rows_in": len(v.frame), "rows_loaded": int(rows), "rows_quarantined": int(quarantined),
                   "check_passed": bool(v.passed), "fast_expectations": fast}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if scratch:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()


def run_kho_dagster(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    import sqlalchemy as sa
    from dagster import FilesystemIOManager

    from assets.factory import build_assets
    from pipelines.resources import KhoResource, StagingIOManager
    from pipelines.runs import materialize_landing

    c = contract()
    work = Path(tempfile.mkdtemp(prefix="kho-bench-dagster-"))
    scratch = None
    try:
        landing = work / "landing" / Path(c.landing).parent
        landing.mkdir(parents=True)
        shutil.copyfile(csv, landing / "ho_so_2026_10.csv")
        url = ""
        if db == "postgresql":
            scratch = f"kho_bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(pg_urls(pg)["sqlalchemy"], isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
            url = pg_urls(pg)["sqlalchemy"].rsplit("/", 1)[0] + f"/{scratch}"
        resources = {"kho": KhoResource(data_dir=str(work), warehouse_url=url),
                     "staging": StagingIOManager(data_dir=str(work)),
                     "io_manager": FilesystemIOManager(base_dir=str(work / "staging" / "_dagster"))}
        t = Timer(db)
        result = t("dagster materialize (raw, clean, validated, curated)", materialize_landing,
                   build_assets(c), resources, [c])
        return t, {"success": bool(result.success)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if scratch:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()


def _per_distinct(col, fn):
    """fn over a column's distinct values, taken back to the rows, when the column repeats (coded values, names,
    places: NFC once per distinct value); over every value otherwise."""
    import pyarrow.compute as pc

    coded = pc.dictionary_encode(col).combine_chunks()
    if len(coded.dictionary) * 2 > len(coded):
        return fn(col)
    return pc.take(fn(coded.dictionary), coded.indices)


def _read_text(csv: Path, names: dict[str, str]):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
        column_types={h: pa.string() for h in names}, strings_can_be_null=True))


def _limit_clean(table, names: dict[str, str]):
    """Arrow compute only: trim + NFC text (once per distinct value where values repeat), dd/mm/yyyy dates,
    `1.234.567` numbers, mapped values, dedupe."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from assets.clean import LOCAL_TZ  # noqa: F401  (same conventions as kho; dates stay dates)
    from quality.text import key_text

    c = contract()
    table = table.rename_columns([names[h] for h in table.column_names])
    cols = {}
    for name in table.column_names:
        col, spec = table[name], c.columns[name]
        if spec.type == "date":
            stamps = pc.strptime(col, format="%d/%m/%Y", unit="s", error_is_null=True)
            cols[name] = pc.cast(stamps, pa.date32())
        elif spec.type == "integer":
            digits = pc.replace_substring(col, ".", "")
            ok = pc.match_substring_regex(digits, r"^[0-9]+$")
            cols[name] = pc.cast(pc.if_else(ok, digits, None), pa.int64())
        else:
            text = _per_distinct(col, lambda v: pc.utf8_normalize(pc.utf8_trim_whitespace(v), "NFC"))
            if spec.values:
                lookup = {key_text(k): v for k, v in spec.values.items()}
                keys = pc.unique(text).to_pylist()
                mapped = {k: lookup.get(key_text(k)) for k in keys if k is not None}
                idx = pc.index_in(text, value_set=pa.array(list(mapped)))
                text = pc.take(pa.array(list(mapped.values()), type=pa.string()), idx)
            cols[name] = text
    out = pa.table(cols)
    rows = pa.table({"ma_ho_so": out["ma_ho_so"], "_row": pa.array(np.arange(out.num_rows))})
    first = rows.group_by("ma_ho_so", use_threads=False).aggregate([("_row", "min")])["_row_min"]
    if len(first) == out.num_rows:
        return out
    keep = np.zeros(out.num_rows, dtype=bool)
    keep[first.to_numpy()] = True
    return out.filter(keep)  # the first of each key, in file order


def run_limit(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = header_names()
    work = Path(tempfile.mkdtemp(prefix="kho-bench-limit-"))
    schema = f"kho_bench_{uuid.uuid4().hex[:10]}"
    try:
        t = Timer(db)
        table = t("read (pyarrow.csv)", _read_text, csv, names)
        table = t("clean (Arrow compute)", _limit_clean, table, names)
        t("Parquet zstd", pq.write_table, table, work / "part.parquet", compression="zstd")

        def ingest():
            if db == "sqlite":
                import adbc_driver_sqlite.dbapi as adbc

                data = pa.table({n: (c.cast(pa.string()) if pa.types.is_date(c.type) else c)
                                 for n, c in zip(table.column_names, table.columns)})  # SQLite has no date type
                with adbc.connect(str(work / "limit.sqlite")) as conn, conn.cursor() as cur:
                    cur.adbc_ingest(DATASET, data, mode="create")
                    conn.commit()
            else:
                import adbc_driver_postgresql.dbapi as adbc

                with adbc.connect(pg_urls(pg)["libpq"]) as conn, conn.cursor() as cur:
                    cur.execute(f'CREATE SCHEMA "{schema}"')
                    cur.adbc_ingest(DATASET, table, mode="create", db_schema_name=schema)
                    conn.commit()

        t("ADBC ingest", ingest)
        return t, {"rows_loaded": table.num_rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if db == "postgresql":
            _drop_schema(pg, schema)


def _drop_schema(pg: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_urls(pg)["sqlalchemy"])
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _gx_validate(frame, suite_specs: list[dict]):
    """Plain GX 1.x: ephemeral context, pandas datasource, the suite, result_format COMPLETE."""
    import great_expectations as gx

    from quality.gx import _gx_expectation, _register_custom_expectations

    _register_custom_expectations()  # the contract's custom expectations (tax code, ward code) are GX classes
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("bench").add_dataframe_asset("dossiers")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    suite = gx.ExpectationSuite(name="bench")
    for i, spec in enumerate(suite_specs):
        suite.add_expectation(_gx_expectation(spec, i))
    return batch.validate(suite, result_format={"result_format": "COMPLETE"})


def run_gx(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    from assets import flow

    c = contract()
    files = [{"archive_path": str(csv), "file_name": csv.name, "sha256": "bench"}]
    cleaned = flow.clean_batch(c, flow.extract_files(c, files)[0])
    alive = flow.validate(c, cleaned).checked  # the rows kho gives GX: cleaned, key not repeated
    typed = cleaned[list(c.columns)].iloc[alive].reset_index(drop=True)
    del cleaned
    t = Timer(db)
    result = t("GX validate (pandas, COMPLETE)", _gx_validate, typed, c.suite())
    return t, {"rows_in": len(typed), "success": bool(result.success)}


def _naive_clean(df):
    import pandas as pd

    c = contract()
    df = df.rename(columns=header_names())
    for name, spec in c.columns.items():
        if name not in df:
            df[name] = None
            continue
        if spec.type == "date":
            df[name] = pd.to_datetime(df[name], format="%d/%m/%Y", errors="coerce").dt.date
        elif spec.type == "integer":
            df[name] = pd.to_numeric(df[name].str.replace(".", "", regex=False), errors="coerce").astype("Int64")
        else:
            df[name] = df[name].str.strip().str.normalize("NFC")
            if spec.values:  # the contract's spellings, as a dict lookup
                df[name] = df[name].map(spec.values)
    return df.drop_duplicates(subset=c.primary_key, keep="first").reset_index(drop=True)


def run_naive(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    import pandas as pd
    import sqlalchemy as sa

    c = contract()
    work = Path(tempfile.mkdtemp(prefix="kho-bench-naive-"))
    schema = f"kho_bench_{uuid.uuid4().hex[:10]}"
    try:
        if db == "sqlite":
            engine, target = sa.create_engine(f"sqlite:///{work / 'naive.sqlite'}"), None
        else:
            engine, target = sa.create_engine(pg_urls(pg)["sqlalchemy"]), schema
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        t = Timer(db)
        df = t("read (pandas)", pd.read_csv, csv, dtype=str, keep_default_na=False, na_values=[""],
               encoding="utf-8-sig")
        df = t("clean (pandas)", _naive_clean, df)
        result = t("GX validate (pandas, COMPLETE)", _gx_validate, df[list(c.columns)], c.suite())
        t("to_sql", df.to_sql, DATASET, engine, schema=target, if_exists="replace", index=False, chunksize=50_000)
        engine.dispose()
        return t, {"rows_loaded": len(df), "gx_success": bool(result.success)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if db == "postgresql":
            _drop_schema(pg, schema)


def _with_dlt(db: str, pg: str | None, load) -> tuple[Timer, dict]:
    """load(t, pipeline, names) in a dlt pipeline to a scratch SQLite file or PostgreSQL schema."""
    import dlt

    names = header_names()
    work = Path(tempfile.mkdtemp(prefix="kho-bench-dlt-"))
    schema = f"kho_bench_{uuid.uuid4().hex[:10]}"
    os.environ["DLT_DATA_DIR"] = str(work)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    try:
        if db == "sqlite":
            destination = dlt.destinations.sqlalchemy(credentials=f"sqlite:///{work / 'dlt.sqlite'}")
        else:
            destination = dlt.destinations.postgres(credentials=pg_urls(pg)["dlt"])
        pipeline = dlt.pipeline(pipeline_name=f"kho_bench_{uuid.uuid4().hex[:6]}", destination=destination,
                                dataset_name=schema, pipelines_dir=str(work))
        t = Timer(db)
        info = load(t, pipeline, names)
        return t, {"loaded": not info.has_failed_jobs}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if db == "postgresql":
            _drop_schema(pg, schema)


def run_dlt(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    import dlt

    def load(t, pipeline, names):
        def dossiers():
            yield _read_text(csv, names)

        return t("dlt run (extract, normalize, load)", pipeline.run,
                 dlt.resource(dossiers, name=DATASET, write_disposition="replace"), loader_file_format="parquet")

    return _with_dlt(db, pg, load)


def _hmac_columns(table, key: bytes):
    """The contract's pseudonymised columns as hex HMAC-SHA256 of their text, as a notebook would write it."""
    import hmac

    import pyarrow as pa

    c = contract()
    for name, col in c.columns.items():
        if col.personal and col.protect == "pseudonymise":
            hashed = [None if v is None else hmac.digest(key, v.encode(), "sha256").hex()
                      for v in table[name].to_pylist()]
            table = table.set_column(table.schema.get_field_index(name), name, pa.array(hashed, pa.string()))
    return table


def run_dlt_checked(csv: Path, db: str, pg: str | None, docs: bool) -> tuple[Timer, dict]:
    """What a team would stitch together for the same work, from the fastest pieces: the limit chain's read and
    Arrow cleaning, the contract's suite in plain GX, HMAC pseudonyms, and dlt to load the result."""
    import dlt

    c = contract()
    key = os.environ["KHO_PSEUDONYM_KEY"].encode()

    def load(t, pipeline, names):
        table = t("read (pyarrow.csv)", _read_text, csv, names)
        table = t("clean (Arrow compute)", _limit_clean, table, names)
        t("GX validate (pandas, COMPLETE)",  # columns absent from the file are empty, as in the naive chain
          lambda: _gx_validate(table.to_pandas().reindex(columns=list(c.columns)), c.suite()))
        table = t("pseudonyms (hmac)", _hmac_columns, table, key)
        return t("dlt run (extract, normalize, load)", pipeline.run,
                 dlt.resource([table], name=DATASET, write_disposition="replace"), loader_file_format="parquet")

    return _with_dlt(db, pg, load)


WORKERS = {"kho": run_kho, "kho+docs": run_kho, "kho_dagster": run_kho_dagster, "limit": run_limit, "gx": run_gx,
           "naive": run_naive, "dlt": run_dlt, "dlt+checks": run_dlt_checked}


def worker(args) -> None:
    t = T()
    if args.worker.startswith("kho"):
        import assets.flow  # noqa: F401
        import assets.load  # noqa: F401
    imports = {"kho modules": T() - t}
    if args.worker in ("gx", "naive", "dlt+checks"):
        t = T()
        import great_expectations  # noqa: F401

        imports["great_expectations"] = T() - t
    if args.worker == "kho_dagster":
        t = T()
        import dagster  # noqa: F401

        imports["dagster"] = T() - t
    fn = WORKERS[args.worker]
    runs = []
    for _ in range(args.runs):
        runs.append(fn(Path(args.csv), args.db, args.pg, args.worker == "kho+docs"))
    totals = [sum(t.steps.values()) for t, _ in runs]
    steps = {k: statistics.median(t.steps[k] for t, _ in runs) for k in runs[0][0].steps}
    cpu = {k: None if runs[0][0].cpu[k] is None else statistics.median(t.cpu[k] for t, _ in runs)
           for k in runs[0][0].cpu}
    print("RESULT " + json.dumps({"path": args.worker, "db": args.db, "seconds": statistics.median(totals),
                                  "all_seconds": totals, "steps": steps, "cpu": cpu, "info": runs[-1][1],
                                  "imports": imports, "peak_rss_mb": peak_mb()}), flush=True)


# ---------------------------------------------------------------- orchestration


def dossier_csv(rows: int, copies: int = 1) -> tuple[Path, int]:
    """The generated export of `rows` dossiers; with copies > 1, that many copies of its records under one
    header, each copy with its own dossier codes (a city-wide export bigger than memory, quickly)."""
    from assets.demo.dossiers import DEFECTS, write_dossiers

    cache = Path(os.environ.get("KHO_BENCH_CACHE", "/tmp/kho-bench"))
    path = cache / f"dossiers-{rows}-{MONTH:%Y%m}.csv"
    if not path.exists():
        t = T()
        tmp = path.with_suffix(".tmp")
        write_dossiers(tmp, rows=rows, month=MONTH)
        tmp.replace(path)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {T() - t:.0f} s", flush=True)
    read = rows + DEFECTS["duplicate_row"] + DEFECTS["duplicate_key_conflict"] // 2
    if copies == 1:
        return path, read
    big = cache / f"dossiers-{rows}x{copies}-{MONTH:%Y%m}.csv"
    if not big.exists():
        t = T()
        data = path.read_bytes()
        header_end = data.index(b"\n") + 1
        code = f"HCM-{MONTH:%Y%m}-".encode()
        with open(big.with_suffix(".tmp"), "wb") as out:
            out.write(data[:header_end])
            for k in range(copies):
                out.write(data[header_end:].replace(code, code + b"%02d" % k))
        big.with_suffix(".tmp").replace(big)
        print(f"generated {big} ({big.stat().st_size / 1e6:.0f} MB) in {T() - t:.0f} s", flush=True)
    return big, read * copies


def settle(pg: str | None) -> None:
    """Before each path, the previous paths' writes are flushed: the kernel's dirty pages (dlt's SQLite file is
    several GB) and, for PostgreSQL, a CHECKPOINT (~0.4 GB of WAL a load, with max_wal_size 1 GB). Otherwise
    the next path runs while the disk and the server are still writing them."""
    os.sync()
    if not pg:
        return
    import sqlalchemy as sa

    engine = sa.create_engine(pg_urls(pg)["sqlalchemy"], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CHECKPOINT"))
    engine.dispose()


def spawn(path: str, db: str, csv: Path, runs: int, pg: str | None) -> dict | None:
    env = dict(os.environ)
    env.setdefault("KHO_PSEUDONYM_KEY", secrets.token_hex(32))  # a throwaway key: pseudonyms are computed
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", path, "--db", db, "--csv", str(csv),
           "--runs", str(runs)] + (["--pg", pg] if pg else [])
    print(f"-- {path} on {db} ...", flush=True)
    settle(pg if db == "postgresql" else None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
            print(f"   {out['seconds']:.2f} s  (" + ", ".join(f"{k} {v:.2f}" for k, v in out["steps"].items())
                  + f")  CPU {_cpu(out)} s  peak {out['peak_rss_mb']:.0f} MB", flush=True)
            return out
    print(f"   FAILED (exit {proc.returncode})\n{proc.stderr[-3000:]}", flush=True)
    return {"path": path, "db": db, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
            f"exit {proc.returncode}"}


def _median(outs: list[dict]) -> dict:
    """One path's rounds as one result: median seconds and steps, the largest peak RSS."""
    ok = [o for o in outs if o and "seconds" in o]
    if not ok:
        return outs[-1]
    first = ok[0]
    return {**first, "seconds": statistics.median(o["seconds"] for o in ok),
            "all_seconds": [round(o["seconds"], 2) for o in ok],
            "steps": {k: statistics.median(o["steps"][k] for o in ok) for k in first["steps"]},
            "cpu": {k: None if v is None else statistics.median(o["cpu"][k] for o in ok)
                    for k, v in first["cpu"].items()},
            "peak_rss_mb": max(o["peak_rss_mb"] for o in ok)}


def _cpu(r: dict) -> str:
    """CPU seconds as 'client' or 'client + server'."""
    client, server = r["cpu"]["client"], r["cpu"]["server"]
    return f"{client:.1f}" + ("" if server is None else f" + {server:.1f}")


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("pandas", "pyarrow", "duckdb", "great_expectations", "sqlalchemy", "adbc-driver-sqlite",
                 "adbc-driver-postgresql", "dagster", "dlt"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _pg_version(pg: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_urls(pg)["sqlalchemy"])
    with engine.connect() as conn:
        v = conn.execute(sa.text("SHOW server_version")).scalar()
    engine.dispose()
    return f"PostgreSQL {v}"


def ratios(res: dict[str, dict], db: str) -> list[tuple[str, float | None, str, str]]:
    def get(path):
        r = res.get((path, db)) or res.get((path, "-"))
        return r if r and "seconds" in r else None

    def s(path):
        return get(path) and get(path)["seconds"]

    def cpu(path):  # client + server
        return get(path) and get(path)["cpu"]["client"] + (get(path)["cpu"]["server"] or 0)

    kho, limit, gx, naive, dlt = s("kho"), s("limit"), s("gx"), s("naive"), s("dlt")
    out = []

    def add(name, num, den, need, test):
        value = num / den if num and den else None
        ok = "—" if value is None or not test else ("yes" if test(value) else "NO")
        out.append((name, value, need, ok))

    add("kho / (limit + plain GX)", kho, (limit + gx) if limit and gx else None, "<= 1.25", lambda v: v <= 1.25)
    add("naive / kho", naive, kho, ">= 5", lambda v: v >= 5)
    add("dlt / kho", dlt, kho, "> 1", lambda v: v > 1)
    add("kho / limit", kho, limit, "aim <= 2", lambda v: v <= 2)
    add("naive / kho, in CPU seconds", cpu("naive"), cpu("kho"), "(the work asked)", None)
    add("dlt / kho, in CPU seconds", cpu("dlt"), cpu("kho"), "(the work asked)", None)
    add("dlt+checks / kho", s("dlt+checks"), kho, "(for reading)", None)
    return out


def report(res: dict, dbs: list[str], rows: int, csv: Path, args, started: str, load: tuple) -> str:
    lines = [
        "# kho benchmark results",
        "",
        f"Measured {started} with `{' '.join(['python', 'bench/run.py'] + sys.argv[1:])}` "
        f"on {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; {_versions()}"
        + (f"; {_pg_version(args.pg)}" if args.pg else "") + ".",
        f"Input: {csv.name}, {rows:,} rows read, {csv.stat().st_size / 1e6:.0f} MB, 18 columns (assets.demo.dossiers). "
        f"Median of {args.runs} round(s); in each round every path runs once, in its own process"
        + ", each after a sync of the disk" + (" and, for PostgreSQL, a CHECKPOINT. " if args.pg else ". ") +
        f"Load average before/after: {load[0]} / {load[1]} (the machine is shared: trust ratios more than seconds).",
        "",
    ]
    for db in dbs:
        lines += [f"## {db}", "", "| path | seconds | rows/s | CPU s | peak RSS MB | steps (s) |",
                  "|---|---:|---:|---:|---:|---|"]
        for path in ("kho", "kho+docs", "kho_dagster", "limit", "gx", "naive", "dlt", "dlt+checks"):
            r = res.get((path, db)) or (res.get((path, "-")) if path == "gx" else None)
            if not r:
                continue
            if "error" in r:
                lines.append(f"| {path} | failed | | | | {r['error'][:200]} |")
                continue
            steps = "; ".join(f"{k} {v:.2f}" for k, v in r["steps"].items())
            imports = "; ".join(f"import {k} {v:.1f}" for k, v in r["imports"].items() if v > 0.05)
            runs = r.get("all_seconds") or []
            spread = f"runs {', '.join(f'{x:.1f}' for x in runs)}; " if len(runs) > 1 else ""
            lines.append(f"| {path} | {r['seconds']:.2f} | {rows / r['seconds']:,.0f} | {_cpu(r)} | "
                         f"{r['peak_rss_mb']:.0f} | "
                         f"{spread}{steps}{' (not timed: ' + imports + ')' if imports else ''} |")
        lines += ["", "| ratio | measured | required | met |", "|---|---:|---|---|"]
        for name, value, need, ok in ratios(res, db):
            lines.append(f"| {name} | {'n/a' if value is None else f'{value:.2f}'} | {need} | {ok} |")
        lines.append("")
    lines += [
        "Paths: kho = assets.flow extract/clean/validate + assets.load quarantine/curated (pseudonyms, Parquet zstd, "
        "ADBC), as the assets call them, without Dagster; kho+docs = the same with the Data Docs page rendered "
        "(imports GX); kho_dagster = the same through dagster materialize; limit = pyarrow.csv + Arrow compute "
        "cleaning + Parquet zstd + ADBC ingest; gx = the contract's suite in plain GX (pandas, COMPLETE) on kho's "
        "cleaned frame; naive = pandas read + pandas cleaning + GX + to_sql; dlt = dlt's Arrow path (text columns, "
        "Parquet load files), no cleaning or validation; dlt+checks = what a team would stitch together from the "
        "fastest pieces for kho's work: pyarrow.csv + the limit chain's Arrow cleaning + the suite in plain GX + "
        "HMAC pseudonyms + dlt loading the typed table (still no quarantine, lake or lineage). Import times are "
        "reported apart and not in the seconds. CPU s: the path's process (every thread) over its timed steps, + "
        "the local PostgreSQL server's processes over the same steps: the work the path asks of the machine.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=None,
                    help="rounds (every path once per round; median); default 1 from 1M rows, else 3")
    ap.add_argument("--pg", default=None, help="PostgreSQL URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--copies", type=int, default=1,
                    help="the input is this many copies of the --rows export (distinct dossier codes): "
                         "--rows 1000000 --copies 10 --paths kho is the 10M-row, 2.5 GB run")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--dagster", action="store_true", help="also run kho through dagster materialize")
    ap.add_argument("--docs", action="store_true", help="also run kho with its Data Docs page")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"), help="Markdown file ('' for none)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.rows >= 1_000_000 else 3)
    if args.worker:
        return worker(args)

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    csv, rows = dossier_csv(args.rows, args.copies)
    paths = [p for p in args.paths.split(",") if p]
    if "dlt" in paths:
        try:
            import dlt  # noqa: F401
        except ImportError:
            print("dlt is not installed (pip install -e '.[bench]'): skipping it", flush=True)
            paths.remove("dlt")
    load_before = os.getloadavg()
    dbs = ["sqlite"] + (["postgresql"] if args.pg else [])
    jobs = [("gx", "-")] if "gx" in paths else []
    extra = (["kho+docs"] if args.docs else []) + (["kho_dagster"] if args.dagster else [])
    for db in dbs:
        jobs += [(path, db) for path in [p for p in paths if p != "gx"] + (extra if "kho" in paths else [])]
    # Round robin: every path runs once per round, so a busy spell on a shared machine hits all paths alike.
    rounds: dict = {job: [] for job in jobs}
    for r in range(args.runs):
        if args.runs > 1:
            print(f"== round {r + 1}/{args.runs}", flush=True)
        for path, db in jobs:
            rounds[(path, db)].append(spawn(path, db, csv, 1, args.pg))
    res = {job: _median(outs) for job, outs in rounds.items()}
    load_after = os.getloadavg()
    text = report(res, dbs, rows, csv, args, started,
                  tuple(f"{a:.1f}" for a in (load_before[0], load_after[0])))
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
