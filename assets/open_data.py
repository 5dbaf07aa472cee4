"""Open data (dữ liệu mở): non-personal curated tables and the marts, as CSV plus CKAN and DCAT metadata.

What is published: every mart (aggregates), and each curated table whose contract says `open_data: true` — which
the contract refuses for a table with any personal column: a pseudonym is still personal data under Law 91/2025
(whoever holds the key can go back), so such a table is never published, not even without those columns; its marts
are. Opting in is the department's decision, because free text (notes, addresses of premises) can hold personal
data no column flag catches. Whatever reaches the writer is filtered again: personal columns and kho's `_kho_*`
provenance columns are dropped and any cell that is a kho pseudonym is emptied, so a later mistake cannot leak.

Written to `<data>/open_data/` (replaced whole on each run, so a table no longer published disappears):
- `<name>.csv`: UTF-8 with BOM (Excel opens Vietnamese text correctly), CRLF lines; text cells beginning with
  = + - @ (or a tab / carriage return) are prefixed with ' so a spreadsheet never runs them as formulas;
- `<name>.ckan.json`: the CKAN `package_create` body (title, notes, organisation/publisher, licence, temporal
  coverage, update frequency, the CSV resource with its sha256 and the column dictionary);
- `catalog.jsonld`: a DCAT catalogue (JSON-LD) of all of them.
`<name>` follows the warehouse's SQLite naming: the table name for curated tables, `mart_<table>` for marts.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations as real types.
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import sqlalchemy as sa
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from assets import marts, tables
from assets.contract import Contract
from assets.warehouse import Warehouse
from pipelines.policy import AUTOMATION, pool
from pipelines.resources import KhoResource
from quality.pseudonym import HEX_CHARS, PREFIX

GROUP = "open_data"
FOLDER = "open_data"
PUBLISHER = "Ủy ban nhân dân Thành phố Hồ Chí Minh"  # the catalogue's publisher; each dataset names its department
# The licence is the city's decision; CC BY 4.0 is the usual choice for government open data. One place to change.
LICENCE = {"id": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0",
           "url": "https://creativecommons.org/licenses/by/4.0/"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PSEUDONYM = re.compile(rf"^{re.escape(PREFIX)}[0-9a-f]{{{HEX_CHARS}}}$")
FREQUENCY = {"daily": "http://purl.org/cc/freq/daily", "weekly": "http://purl.org/cc/freq/weekly",
             "monthly": "http://purl.org/cc/freq/monthly", "irregular": "http://purl.org/cc/freq/irregular"}


@dataclass(frozen=True)
class Publication:
    name: str  # file stem
    title: str
    description: str
    department: Contract  # the contract whose department publishes it and whose freshness sets the frequency
    upstream: AssetKey  # the asset that writes the table
    columns: tuple[tuple[str, str, str], ...]  # (name, type, Vietnamese description): exactly what is written
    sql_table: Callable[[Warehouse], sa.Table]  # where it is in the warehouse
    period: str | None  # column giving the temporal coverage (a date or a YYYY-MM text)


def publishable_columns(contract: Contract) -> tuple[tuple[str, str, str], ...]:
    """The columns of a curated table that open data may carry: never a personal one, never provenance."""
    cols = [(n, t, contract.columns[n].description) for n, t in contract.curated_columns.items()
            if not contract.columns[n].personal]
    if contract.partitioning:
        cols.append((contract.partitioning.key, "text", "Kỳ báo cáo"))
    return tuple(cols)


def publications(contracts) -> list[Publication]:
    """What is published: curated tables whose contract opts in, then every mart whose source has a contract."""
    out = []
    for c in contracts:
        if not c.open_data:
            continue
        cols = publishable_columns(c)
        out.append(Publication(
            c.table, c.title, " ".join(c.description.split()), c, AssetKey([c.dataset, "curated"]), cols,
            lambda wh, c=c: wh.curated_table(c),
            c.partitioning.column if c.partitioning else None))
    by_name = {c.dataset: c for c in contracts}
    for m in marts.MARTS:
        if m.source in by_name:
            spec = m.spec
            out.append(Publication(
                f"{spec.zone}_{spec.table}", spec.title, m.description, by_name[m.source],
                AssetKey([marts.GROUP, spec.table]), spec.columns,
                spec.sql_table, "thang"))
    return out


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe (CSV injection)."""
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            text = col.astype(object)
            risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
            out[name] = text.where(~risky, "'" + text.astype(str))
    return out


def _safe(frame: pd.DataFrame, pub: Publication) -> pd.DataFrame:
    """Only the declared columns, and no cell that is a pseudonym (a 12-digit tax code stands as one)."""
    frame = frame[[n for n, _, _ in pub.columns]].copy()
    for name in frame.columns:
        if frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]):
            values = frame[name].astype(object)
            frame[name] = values.where(~values.map(lambda v: isinstance(v, str) and bool(PSEUDONYM.match(v))), None)
    return frame


def frequency(contract: Contract) -> str:
    """DCAT frequency from the contract's freshness cron (minute hour day-of-month month day-of-week)."""
    if not contract.freshness:
        return "irregular"
    fields = contract.freshness.cron.split()
    if len(fields) != 5:
        return "irregular"
    _, _, dom, month, dow = fields
    if dom != "*" and month == "*" and dow == "*":
        return "monthly"
    if dom == "*" and month == "*" and dow != "*":
        return "weekly"
    if dom == "*" and month == "*" and dow == "*":
        return "daily"
    return "irregular"


def _coverage(frame: pd.DataFrame, column: str | None) -> tuple[str | None, str | None]:
    if not column or column not in frame or frame[column].dropna().empty:
        return None, None
    values = frame[column].dropna().astype(str)
    return values.min()[:10], values.max()[:10]


def _ckan(pub: Publication, csv_name: str, digest: str, size: int, rows: int, start, end) -> dict:
    dept = pub.department.department
    slug = re.sub(r"[^a-z0-9_-]", "-", f"kho-hcm-{pub.name}".lower())
    return {
        "name": slug, "title": pub.title, "notes": pub.description,
        "owner_org": dept.code, "author": dept.name, "maintainer": dept.name,
        "license_id": LICENCE["id"], "license_title": LICENCE["title"], "license_url": LICENCE["url"],
        "language": "vi",
        "extras": [{"key": k, "value": v} for k, v in (
            ("publisher", dept.name), ("temporal_start", start), ("temporal_end", end),
            ("frequency", frequency(pub.department)), ("rows", str(rows))) if v],
        "resources": [{
            "name": csv_name, "url": csv_name, "format": "CSV", "mimetype": "text/csv", "encoding": "utf-8-sig",
            "size": size, "hash": f"sha256:{digest}", "description": f"{pub.title} (CSV, UTF-8 có BOM)",
            "fields": [{"id": n, "type": t, "info": {"label": d, "notes": d}} for n, t, d in pub.columns],
        }],
    }


def _dcat(pub: Publication, ckan: dict, start, end) -> dict:
    dataset = {
        "@type": "dcat:Dataset", "dct:identifier": ckan["name"], "dct:title": pub.title,
        "dct:description": pub.description, "dct:language": "vi",
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": pub.department.department.name},
        "dct:license": LICENCE["url"],
        "dct:accrualPeriodicity": {"@id": FREQUENCY[frequency(pub.department)]},
        "dcat:distribution": [{
            "@type": "dcat:Distribution", "dct:title": ckan["resources"][0]["name"],
            "dcat:downloadURL": ckan["resources"][0]["url"], "dcat:mediaType": "text/csv", "dct:format": "CSV",
            "dcat:byteSize": ckan["resources"][0]["size"], "dct:license": LICENCE["url"],
        }],
    }
    if start:
        dataset["dct:temporal"] = {"@type": "dct:PeriodOfTime", "dcat:startDate": start, "dcat:endDate": end}
    return dataset


def export(wh: Warehouse, data_dir: Path, contracts) -> list[dict]:
    """Write every publication into <data>/open_data/ (swapped in whole); returns one summary per file."""
    target = data_dir / FOLDER
    staging = data_dir / f".{FOLDER}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    written, datasets = [], []
    try:
        for pub in publications(contracts):
            frame = _safe(tables.read(wh, pub.sql_table(wh), [n for n, _, _ in pub.columns]), pub)
            if frame.empty:  # not loaded yet: nothing to publish
                continue
            csv_name = f"{pub.name}.csv"
            body = neutralise(frame).to_csv(index=False, lineterminator="\r\n", date_format="%Y-%m-%d")
            data = body.encode("utf-8-sig")
            (staging / csv_name).write_bytes(data)
            start, end = _coverage(frame, pub.period)
            ckan = _ckan(pub, csv_name, hashlib.sha256(data).hexdigest(), len(data), len(frame), start, end)
            (staging / f"{pub.name}.ckan.json").write_text(json.dumps(ckan, ensure_ascii=False, indent=2),
                                                           encoding="utf-8")
            datasets.append(_dcat(pub, ckan, start, end))
            written.append({"name": pub.name, "rows": len(frame), "columns": len(pub.columns)})
        catalog = {
            "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
                         "foaf": "http://xmlns.com/foaf/0.1/"},
            "@type": "dcat:Catalog", "dct:title": "Dữ liệu mở — Kho dữ liệu dùng chung Thành phố Hồ Chí Minh",
            "dct:publisher": {"@type": "foaf:Organization", "foaf:name": PUBLISHER},
            "dct:license": LICENCE["url"], "dcat:dataset": datasets,
        }
        (staging / "catalog.jsonld").write_text(json.dumps(catalog, ensure_ascii=False, indent=2), encoding="utf-8")
        old = data_dir / f".{FOLDER}.old.{uuid.uuid4().hex}"
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def build_open_data_asset(contracts):
    contracts = tuple(contracts)
    deps = [p.upstream for p in publications(contracts)]

    @asset(key=AssetKey([GROUP, "xuat_ban"]), group_name=GROUP, kinds={"csv", "json"}, deps=deps,
           automation_condition=AUTOMATION, pool=pool(FOLDER),
           description="Open data export to <data>/open_data/: every mart and each curated table whose contract "
                       "opts in (open_data: true; never one with personal columns), as UTF-8-with-BOM CSV "
                       "(formula-like cells neutralised) with CKAN package JSON and a DCAT catalogue (publisher "
                       "department, licence, period, update frequency).")
    def xuat_ban(context: AssetExecutionContext, kho: KhoResource) -> MaterializeResult:
        written = export(kho.warehouse, kho.root, contracts)
        return MaterializeResult(metadata={
            "datasets": len(written), "folder": MetadataValue.path(str(kho.root / FOLDER)),
            "files": MetadataValue.md("\n".join(f"- `{w['name']}.csv`: {w['rows']} rows" for w in written) or "none"),
        })

    return xuat_ban
