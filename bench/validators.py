"""Phone, citizen-ID and tax-code cleaning speed: the column fast path against per-value normalising.

    .venv/bin/python bench/validators.py [rows=1000000] [--skip-per-value]

Values come from the demo generator (assets.demo.dossiers.dossier_rows), as clean_text leaves them (str dtype,
empty -> missing). "per value" is what normalize() did before the fast path: the module's per-value function
once per distinct value (text.map_unique); "column" is normalize(). Both must give the same answer, checked here.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.demo.dossiers import HEADERS, dossier_rows  # noqa: E402
from quality import citizen_id, phone, taxcode  # noqa: E402
from quality.text import map_unique  # noqa: E402


def columns(n: int) -> dict[str, pd.Series]:
    t = time.perf_counter()
    rows = pd.DataFrame(dossier_rows(n, date(2026, 10, 1)), columns=HEADERS)
    out = {}
    for key, header in [("phone", "Số điện thoại"), ("citizen_id", "Số CCCD"), ("tax_code", "Mã số thuế")]:
        text = rows[header].astype("str")
        out[key] = text.where(text != "")
    print(f"generated {len(rows):,} rows in {time.perf_counter() - t:.1f} s")
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def per_value(values: pd.Series, one, width: int) -> list[pd.Series]:
    fields = map_unique(values, one, width=width)
    return [pd.Series(f, index=values.index, name=values.name, dtype="str") for f in fields]


def same(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(dtype=object), b.to_numpy(dtype=object)
    return bool((pd.isna(x) == pd.isna(y)).all() and (x[~pd.isna(x)] == y[~pd.isna(y)]).all())


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    cols = columns(n)
    ids = cols["citizen_id"]
    implied = 1900 + 100 * (pd.to_numeric(ids.str[3]) // 2) + pd.to_numeric(ids.str[4:6])
    off = np.random.default_rng(0).random(len(ids)) < 0.01  # 1% disagree with the ID
    born = pd.to_datetime((implied + off).astype(int).astype(str) + "-06-01")
    cases = [
        ("phone", cols["phone"], lambda v: phone.normalize(v), lambda v: per_value(v, phone._one, 2)),
        ("citizen_id", ids, lambda v: citizen_id.normalize(v),
         lambda v: per_value(v, citizen_id._with_year, 3)[::2]),
        ("citizen_id + birth dates", ids, lambda v: citizen_id.normalize(v, born), None),
        ("tax_code", cols["tax_code"], lambda v: taxcode.normalize(v), lambda v: per_value(v, taxcode._one, 2)),
    ]
    print(f"{'column':26s} {'distinct':>9s} {'per value':>10s} {'column':>8s}")
    for name, values, fast, slow in cases:
        got, fast_s = timed(lambda: fast(values))
        slow_s = "-"
        if slow is not None and "--skip-per-value" not in sys.argv:
            want, seconds = timed(lambda: slow(values))
            assert all(same(a, b) for a, b in zip(got, want)), f"{name}: column and per-value results differ"
            slow_s = f"{seconds:.2f} s"
        print(f"{name:26s} {values.nunique():9,d} {slow_s:>10s} {fast_s:6.2f} s")


if __name__ == "__main__":
    main()
