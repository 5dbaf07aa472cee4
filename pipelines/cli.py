"""`kho`: the command line.

  kho demo [--data DIR]   write the demo exports into the landing folder, run every asset, print a summary
  kho run  [--data DIR]   run every asset on what is in the landing folder, print a summary
  kho check FILE --dataset NAME   a department's self-check of one export: nothing is loaded
                                  (exit 0 accepted, 1 rejected, 2 unreadable)
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import sqlalchemy as sa


def write_demo_exports(landing: Path) -> list[Path]:
    """One export per demo dataset, as each department really sends it; the construction department's permit
    table is a SQLite database beside the landing folder, named to the pipeline by the contract's variable."""
    from assets.contract import CONTRACTS_DIR, load_contract
    from assets.demo.businesses import write_businesses
    from assets.demo.dossiers import write_dossiers
    from assets.demo.health import write_facilities
    from assets.demo.hotline import write_feedback
    from assets.demo.permits import write_permit_source

    source = landing.parent / "sources" / "so_xay_dung.sqlite"
    source.parent.mkdir(parents=True, exist_ok=True)
    write_permit_source(f"sqlite:///{source}")
    os.environ[load_contract(CONTRACTS_DIR / "giay_phep_xay_dung.yaml").format.url_env] = f"sqlite:///{source}"
    return [
        write_dossiers(landing / "trung_tam_hcc" / "ho_so_tthc" / "ho_so_2026_10.csv"),
        write_businesses(landing / "so_tai_chinh" / "dang_ky_doanh_nghiep" / "dn_thanh_lap_2026_10.xlsx"),
        write_facilities(landing / "so_y_te" / "co_so_y_te" / "ds_co_so_kcb_2026_10.csv", encoding="tcvn3"),
        write_feedback(landing / "trung_tam_1022" / "phan_anh_1022" / "phan_anh_2026_10.json"),
        source,
    ]


def run_all(data_dir: Path) -> bool:
    """Materialise every asset in-process, one run per dataset partition with new files; True when all succeeded."""
    os.environ["KHO_DATA_DIR"] = str(data_dir)
    from dagster import DagsterInstance

    from assets.contract import load_contracts
    from pipelines.definitions import build_definitions
    from pipelines.runs import materialize_landing

    defs = build_definitions()
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    result = materialize_landing(
        [*defs.assets], defs.resources, load_contracts(), instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    for note in result.notes:
        print(f"WAITING {note}", file=sys.stderr)
    for event in result.all_events:
        if event.is_step_failure:
            print(f"FAILED {event.step_key}: {event.step_failure_data.error.message.strip()}", file=sys.stderr)
    return result.success


def summary(data_dir: Path) -> str:
    from pipelines.resources import KhoResource

    kho = KhoResource(data_dir=str(data_dir), warehouse_url=os.environ.get("KHO_WAREHOUSE_URL", ""),
                      lake_url=os.environ.get("KHO_LAKE_URL", ""))
    wh = kho.warehouse
    wh.create(wh.load_log, wh.check_results)
    log, checks = wh.load_log, wh.check_results
    with wh.engine.connect() as conn:
        last = sa.select(log.c.dataset, sa.func.max(log.c.finished_at).label("t")).group_by(log.c.dataset).subquery()
        rows = conn.execute(sa.select(log).join(last, (log.c.dataset == last.c.dataset)
                                                & (log.c.finished_at == last.c.t)).order_by(log.c.dataset)).all()
        width = max([len(r.dataset) for r in rows] + [7]) + 2
        lines = [f"{'dataset':<{width}}{'file':<32}{'read':>8}{'loaded':>8}{'quarant.':>9}  status"]
        for r in rows:
            lines.append(f"{r.dataset:<{width}}{r.file_name.rsplit('/', 1)[-1][-31:]:<32}{r.rows_read:>8}"
                         f"{r.rows_loaded:>8}{r.rows_quarantined:>9}  {r.status}"
                         + (f": {r.message}" if r.message else ""))
            lines.extend(_check_lines(conn, checks, r.load_id, r.dataset))
    lines += ["", f"warehouse:  {wh.engine.url.render_as_string(hide_password=True)}",
              f"lake:       {kho.lake} (curated/, quarantine/, mart/)",
              f"catalogue:  {kho.lake / 'catalogue.html'}", f"open data:  {kho.root / 'open_data'}",
              f"data docs:  {kho.docs}"]
    return "\n".join(lines)


def _check_lines(conn, checks, load_id: str, dataset: str) -> list[str]:
    rows = conn.execute(sa.select(checks).where(checks.c.load_id == load_id)
                        .where(checks.c.dataset == dataset)).mappings()
    out = []
    for c in rows:
        # A row rule that failed sent its rows to quarantine; only a failed batch rule blocks the load.
        mark = ("ok  " if c["success"] else "warn" if c["severity"] == "warn"
                else "rows" if c["unexpected_count"] else "FAIL")
        col = f" [{c['column_name']}]" if c["column_name"] else ""
        bad = f" ({c['unexpected_count']} rows{' quarantined' if mark == 'rows' else ''})" if c["unexpected_count"] else ""
        out.append(f"    {mark} {c['expectation']}{col}{bad}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kho", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("demo", "run"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, default=Path(os.environ.get("KHO_DATA_DIR", "data")),
                       help="data folder (landing/, raw/, lake/, warehouse.sqlite); default ./data or $KHO_DATA_DIR")
    from pipelines.check import add_parser as add_check_parser

    add_check_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "check":
        return args.run(args)
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")  # Dagster's own selection internals
    data_dir = args.data.resolve()
    if args.command == "demo":
        for path in write_demo_exports(data_dir / "landing"):
            print(f"wrote demo export {path.relative_to(data_dir)}")
        from assets.privacy import use_demo_key

        if key_file := use_demo_key(data_dir):  # demo only: `kho run` refuses personal data without a key
            print(f"KHO_PSEUDONYM_KEY is not set: pseudonymising with a random demo key kept in {key_file} "
                  "(demo only; real loads need KHO_PSEUDONYM_KEY)")
    ok = run_all(data_dir)
    print(summary(data_dir))
    if args.command == "demo":
        key = f"KHO_PSEUDONYM_KEY=$(cat {data_dir / 'demo.key'}) " if (data_dir / "demo.key").exists() else ""
        print("\nTo load new files into this folder later (the demo set these for itself):\n"
              f"  export {key}{_source_env()}\n  .venv/bin/kho run --data {data_dir}")
    return 0 if ok else 1


def _source_env() -> str:
    from assets.contract import load_contracts

    names = sorted({c.format.url_env for c in load_contracts() if c.format.url_env})
    return " ".join(f"{n}={os.environ[n]}" for n in names if n in os.environ)


if __name__ == "__main__":
    sys.exit(main())
