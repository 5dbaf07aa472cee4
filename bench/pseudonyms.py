"""Pseudonymisation of personal columns (assets.privacy.protect), against the same code at another git revision.

    .venv/bin/python bench/pseudonyms.py [--rows 1000000] [--csv FILE | --frame PICKLE] [--baseline HEAD] [--runs 3]

Synthetic columns: --rows distinct valid 12-digit CCCDs and E.164 mobiles, as assets.clean leaves them. With --csv,
also protect() on that export's accepted rows (extract, clean and validate first, not timed), as curated_rows
passes them; --csv with --frame also pickles those rows there, --frame alone reads them back. --baseline loads
quality/pseudonym.py and assets/privacy.py from that revision (read with `git show`, nothing checked out) so
both run in the same process and round, alternately; the outputs are compared too. Medians of --runs, wall
seconds and CPU seconds of all threads (the machine's other load shows in the first only).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = bytes(range(40))


def baseline(rev: str):
    """(pseudonym, privacy) modules as they were at rev."""
    modules = []
    with tempfile.TemporaryDirectory(prefix="kho-bench-pseudonyms-") as folder:
        for name, path in (("baseline_pseudonym", "quality/pseudonym.py"), ("baseline_privacy", "assets/privacy.py")):
            text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                                  text=True).stdout
            file = Path(folder) / f"{name}.py"
            file.write_text(text.replace("from quality.pseudonym import", "from baseline_pseudonym import"),
                            encoding="utf-8")
            spec = importlib.util.spec_from_file_location(name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            modules.append(module)
    return modules


def synthetic(rows: int):
    import numpy as np
    import pandas as pd

    from quality import citizen_id, phone

    rng = np.random.default_rng(0)
    provinces = np.array(sorted(citizen_id.PROVINCE_CODES))
    born_19xx = np.char.add(rng.choice(provinces, rows), rng.choice(["0", "1"], rows))  # century+sex digit
    ids = citizen_id.normalize(pd.Series(np.char.add(born_19xx, np.char.zfill(rng.integers(0, 10**8, rows)
                                                                              .astype(str), 8)).astype(object)))[0]
    prefixes = ["90", "91", "93", "94", "96", "97", "98", "32", "33", "35", "70", "77", "81", "83", "86", "88"]
    raw = np.char.add(np.char.add("+84", rng.choice(prefixes, rows)), np.char.zfill(rng.integers(0, 10**7, rows)
                                                                                    .astype(str), 7))
    phones = phone.normalize(pd.Series(raw.astype(object)))[0]
    return ids.dropna().reset_index(drop=True), phones.dropna().reset_index(drop=True)


def accepted_rows(csv: Path):
    from assets import flow
    from assets.contract import CONTRACTS_DIR, load_contract
    from assets.extract.base import ROW_COLUMN
    from assets.extract.csv import REASONS

    contract = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
    files = [{"archive_path": str(csv), "file_name": csv.name, "sha256": hashlib.sha256(csv.read_bytes()).hexdigest()}]
    frame = flow.validate(contract, flow.clean_batch(contract, flow.extract_files(contract, files)[0])).frame
    keep = list(contract.columns) + [contract.partitioning.key, ROW_COLUMN, flow.FILE_COLUMN]
    return contract, frame.loc[frame[REASONS].isna().to_numpy(), keep].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--frame", type=Path)
    parser.add_argument("--baseline", help="git revision to compare with, e.g. HEAD")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from assets import privacy
    from quality import pseudonym

    versions = {"now": (pseudonym, privacy)}
    if args.baseline:
        versions = {args.baseline: tuple(baseline(args.baseline))} | versions
    ids, phones = synthetic(args.rows)
    cases = {
        f"citizen IDs ({len(ids):,})": lambda p, _: p.pseudonymise_column(ids, "citizen_id", KEY),
        f"phones ({len(phones):,})": lambda p, _: p.pseudonymise_column(phones, "phone", KEY),
    }
    if args.csv or args.frame:
        import pandas as pd

        from assets.contract import CONTRACTS_DIR, load_contract

        if args.csv:
            contract, rows = accepted_rows(args.csv)
            if args.frame:
                rows.to_pickle(args.frame)
        else:
            contract, rows = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml"), pd.read_pickle(args.frame)
        source = (args.csv or args.frame).name
        cases[f"protect() on {source} ({len(rows):,} rows)"] = lambda _, v: v.protect(contract, rows, KEY)
    times = {(case, name): [] for case in cases for name in versions}
    for run in range(args.runs):
        for case, fn in cases.items():
            outputs = []
            for name, (p, v) in versions.items():
                start, cpu = time.perf_counter(), time.process_time()
                outputs.append(fn(p, v))
                times[case, name].append((time.perf_counter() - start, time.process_time() - cpu))
            if run == 0 and len(outputs) == 2:
                a, b = outputs
                pairs = [(a[c], b[c]) for c in a.columns] if list(getattr(a, "columns", [])) else [(a, b)]
                same = list(getattr(a, "columns", [])) == list(getattr(b, "columns", []))
                assert same and all(x.equals(y) and x.dtype == y.dtype for x, y in pairs), f"{case}: outputs differ"
    for case in cases:  # wall seconds (CPU seconds of all threads)
        medians = {name: statistics.median(w for w, _ in times[case, name]) for name in versions}
        cells = ", ".join(
            f"{name} {m:.2f} s (cpu {statistics.median(c for _, c in times[case, name]):.2f}; runs "
            f"{', '.join(f'{w:.2f}' for w, _ in times[case, name])})" for name, m in medians.items())
        ratio = f"; {medians[args.baseline] / medians['now']:.2f}x" if args.baseline else ""
        print(f"{case}: {cells}{ratio}")


if __name__ == "__main__":
    main()
