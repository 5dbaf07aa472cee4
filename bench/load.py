"""Warehouse load speed: kho's fast path against pandas `to_sql`, on the same generated dossier rows.

    .venv/bin/python bench/load.py [rows=1000000] [repeat=1]

Rows come from the demo generator (assets.demo.dossiers.dossier_rows), typed as the ho_so_tthc contract types
them, with provenance columns: the frame the curated step loads. For each database the same table is loaded
twice into fresh tables:
- fast path: `Warehouse.arrow` (pandas -> typed Arrow) + one load session in `replace` mode (ADBC ingest into a
  temporary table, INSERT ... SELECT, commit), i.e. what `assets.load.load_curated` does in SQL;
- to_sql: pandas `DataFrame.to_sql(..., if_exists="append")` into the same table shape, default method.
PostgreSQL runs in a fresh database (dropped afterwards) on KHO_BENCH_PG_ADMIN_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres). Prints seconds, rows/s and the ratio.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets import lake, modes  # noqa: E402
from assets.contract import CONTRACTS_DIR, load_contract  # noqa: E402
from assets.demo.dossiers import HEADERS, dossier_rows  # noqa: E402
from assets.session import session  # noqa: E402
from assets.warehouse import Warehouse  # noqa: E402

PG_ADMIN = os.environ.get("KHO_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def frame(n: int, contract) -> pd.DataFrame:
    t = time.perf_counter()
    written = pd.DataFrame(dossier_rows(n, date(2026, 10, 1)), columns=HEADERS)
    header = {h: name for name, col in contract.columns.items() for h in col.headers}
    raw = written.rename(columns=header).reindex(columns=list(contract.columns))  # absent columns: empty
    out = pd.DataFrame({name: raw[name].replace("", None) for name in contract.columns})
    for name, col in contract.columns.items():
        if raw[name].isna().all():  # a column the generator does not write: give it a value of its type
            raw[name] = raw["ngay_hen_tra"] if col.type == "date" else "x"
            out[name] = raw[name]
        if col.type == "date":
            out[name] = pd.to_datetime(raw[name], format="%d/%m/%Y", errors="coerce").dt.date.astype(object)
            out[name] = out[name].where(out[name].notna(), None)
        elif col.type == "integer":
            out[name] = pd.to_numeric(raw[name].astype("str").str.replace(".", "", regex=False),
                                      errors="coerce").astype("Int64")
    out = out.drop_duplicates(subset=contract.primary_key).reset_index(drop=True)
    out["ky"] = pd.to_datetime(raw["ngay_tiep_nhan"], format="%d/%m/%Y", errors="coerce").dt.strftime("%Y-%m")
    out["_kho_row"] = range(2, len(out) + 2)
    out["_kho_file_sha256"] = "0" * 64
    out["_kho_load_id"] = "bench"
    out["_kho_loaded_at"] = datetime.now(timezone.utc)
    print(f"generated {len(out):,} rows x {out.shape[1]} columns in {time.perf_counter() - t:.1f} s")
    return out


def fast_path(wh: Warehouse, contract, rows: pd.DataFrame) -> float:
    table = wh.curated_table(contract)
    exact = wh.prepare(table, "evolve").exact
    t = time.perf_counter()
    data = wh.arrow(table, rows)
    with session(wh, table) as s:
        modes.apply(s, contract, table, data, ["0" * 64], datetime.now(timezone.utc), exact)
        s.commit()
    return time.perf_counter() - t


def to_sql(wh: Warehouse, contract, rows: pd.DataFrame) -> float:
    table = wh.curated_table(contract)
    wh.prepare(table, "evolve")
    t = time.perf_counter()
    rows.to_sql(table.name, wh.engine, schema=table.schema, if_exists="append", index=False)
    return time.perf_counter() - t


def count(wh: Warehouse, contract) -> int:
    with wh.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {wh.name_of(wh.curated_table(contract))}")).scalar()


def bench(label: str, url: str, rows: pd.DataFrame, repeat: int) -> None:
    base = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
    results = {}
    for name, run in (("fast path", fast_path), ("to_sql", to_sql)):
        times = []
        for _ in range(repeat):
            contract = base.model_copy(update={"dataset": f"bench_{uuid.uuid4().hex[:8]}",
                                               "load": base.load.model_copy(update={"mode": "replace"})})
            wh = Warehouse(url)
            times.append(run(wh, contract, rows))
            assert count(wh, contract) == len(rows), f"{label} {name}: wrong row count"
            wh.engine.dispose()
        results[name] = statistics.median(times)
        print(f"{label:<11}{name:<11}{results[name]:8.2f} s {len(rows) / results[name]:>12,.0f} rows/s")
    print(f"{label:<11}fast path is {results['to_sql'] / results['fast path']:.1f}x faster than to_sql")


def lake_write(rows: pd.DataFrame, root: str) -> None:
    contract = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
    wh = Warehouse(f"sqlite:///{root}/lake.sqlite")
    data = wh.arrow(wh.curated_table(contract), rows)
    t = time.perf_counter()
    lake.stage(root, "curated", contract, data, "snapshot").commit()
    size = sum(p.stat().st_size for p in Path(root, "curated").rglob("*.parquet"))
    print(f"{'lake':<11}{'zstd':<11}{time.perf_counter() - t:8.2f} s   {size / 1e6:.1f} MB Parquet")


def main(n: int = 1_000_000, repeat: int = 1) -> None:
    rows = frame(n, load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{tmp}/bench.sqlite", rows, repeat)
        lake_write(rows, tmp)
    name = f"kho_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        bench("PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", rows, repeat)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
