"""Departmental database tables, read incrementally by a watermark column and streamed in chunks.

Identifiers are checked against a strict pattern and the SELECT is built from SQLAlchemy constructs, so a
contract can never inject SQL; the watermark value is always a bound parameter. A source that cannot be
reached raises SQLAlchemy's OperationalError unchanged: that is transient and the orchestrator retries it.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Extracted

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the cleaner reads naive datetimes as HCMC local time
# "no such table / column" as each driver reports it: a data fault, not worth a retry.
_MISSING_CODES = {"42P01", "42703", "42S02", "42S22", 1146, 1054}


def identifier(name: str, what: str, file: str, qualified: bool = False) -> tuple[str | None, str]:
    """(schema, name) of a plain identifier, or ExportError: nothing else ever reaches the SQL."""
    parts = str(name).split(".")
    if len(parts) > (2 if qualified else 1) or not all(IDENTIFIER.match(p) for p in parts):
        raise ExportError(file, f"{what} '{name}' is not a plain identifier (letters, digits, _"
                          f"{'; optionally schema.name' if qualified else ''})", what)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def sql_text(value: Any) -> str | None:
    """A database value as the text a departmental export would carry (day-first dates, no exponents)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f") if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(LOCAL_TZ)
        return (f"{value.day:02d}/{value.month:02d}/{value.year:04d} "
                f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if isinstance(value, dt.date):
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    if isinstance(value, dt.time):
        return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if isinstance(value, dt.timedelta):  # MySQL TIME columns arrive as timedelta
        seconds = int(value.total_seconds())
        sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
        return f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + raw.hex()
    return str(value)


def _since(since: Any, column: sa.ColumnElement) -> Any:
    """Accept an ISO string (how a Dagster cursor stores it) for a typed date/datetime/number watermark."""
    if not isinstance(since, str):
        return since
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return since
    parse = {dt.datetime: dt.datetime.fromisoformat, dt.date: dt.date.fromisoformat, int: int, Decimal: Decimal}
    return parse[kind](since) if kind in parse else since


def _db_fault(e: sa.exc.DBAPIError, file: str, place: str) -> ExportError | None:
    orig = e.orig
    code = getattr(getattr(orig, "diag", None), "sqlstate", None) or getattr(orig, "sqlstate", None)
    if code is None and getattr(orig, "args", None) and isinstance(orig.args[0], int):
        code = orig.args[0]
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if (isinstance(e, sa.exc.ProgrammingError) or code in _MISSING_CODES
            or message.startswith(("no such table", "no such column"))):
        return ExportError(file, f"the source rejected the query: {message}", place)
    return None


def _source(conn: sa.Connection, file: str, table: str | None, query: str | None) -> tuple[Any, str]:
    """The selectable to read from and a place name for messages."""
    if table is not None:
        schema, name = identifier(table, "table", file, qualified=True)
        try:
            return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn), f"table {table}"
        except sa.exc.NoSuchTableError:
            raise ExportError(file, f"table '{table}' does not exist in the source", f"table {table}") from None
    # The query is reviewed contract text, not a value; it is wrapped as a subquery to filter and order it.
    body = query.strip().rstrip(";").strip()
    probe = sa.select(sa.literal_column("*")).select_from(sa.text(body).columns().subquery("kho_src"))
    try:
        keys = list(conn.execute(probe.where(sa.false())).keys())
    except sa.exc.DBAPIError as e:
        if (fault := _db_fault(e, file, "query")) is not None:
            raise fault from None
        raise
    if len({k.lower() for k in keys}) != len(keys):
        raise ExportError(file, f"the query returns a column name twice: {keys}", "query")
    return sa.text(body).columns(*[sa.column(k) for k in keys]).subquery("kho_src"), "query"


def _match(columns: dict[str, list[str]], required: set[str], names: list[str], file: str,
           place: str) -> dict[str, str]:
    """Canonical name -> source column; aliases match source names case-insensitively."""
    by_lower: dict[str, list[str]] = {}
    for n in names:
        by_lower.setdefault(n.lower(), []).append(n)
    chosen: dict[str, str] = {}
    for canon, aliases in columns.items():
        # Aliases that are not identifiers (CSV header texts in a shared contract) can never match.
        wanted = [a for a in dict.fromkeys([*aliases, canon]) if IDENTIFIER.match(a)]
        hits = list(dict.fromkeys(s for a in wanted for s in by_lower.get(a.lower(), [])))
        if len(hits) > 1:
            raise ExportError(file, f"source columns {hits} all map to column '{canon}'", place)
        if hits:
            chosen[canon] = hits[0]
    missing = sorted(required - set(chosen))
    if missing:
        wanted = "; ".join(f"{m} (as {', '.join(repr(a) for a in columns[m]) or repr(m)})" for m in missing)
        raise ExportError(file, f"required column(s) missing: {wanted}. Source columns: {names}", place)
    return chosen


def read_sql_source(url: str, file: str, columns: dict[str, list[str]], required: set[str],
                    table: str | None = None, query: str | None = None, watermark: str | None = None,
                    since: object | None = None, chunk_rows: int = 100_000) -> tuple[Extracted, object | None]:
    """Rows with watermark > since (all when since is None), ordered by the watermark.

    Returns the text table and the new high watermark: the largest watermark read, or `since` if none.
    """
    if (table is None) == (query is None):
        raise ValueError("give exactly one of table or query")
    if since is not None and watermark is None:
        raise ValueError("since needs a watermark column")
    if watermark is not None:
        identifier(watermark, "watermark", file)
    backend = sa.engine.make_url(url)
    if backend.get_backend_name() == "sqlite" and backend.database not in (None, "", ":memory:"):
        if not Path(backend.database).is_file():  # sqlite would silently create an empty database
            raise ExportError(file, f"SQLite source '{backend.database}' does not exist", "url")

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            source, place = _source(conn, file, table, query)
            names = [c.name for c in source.columns]
            chosen = _match(columns, required, names, file, place)
            wm = None
            if watermark is not None:
                hit = [n for n in names if n.lower() == watermark.lower()]
                if not hit:
                    raise ExportError(file, f"watermark column '{watermark}' is not in the source; "
                                      f"columns: {names}", place)
                wm = source.c[hit[0]]
            selected = list(dict.fromkeys([*chosen.values(), *([wm.name] if wm is not None else [])]))
            stmt = sa.select(*[source.c[n] for n in selected])
            if wm is not None:
                if since is not None:
                    stmt = stmt.where(wm > _since(since, wm))
                stmt = stmt.order_by(wm)
            if not selected:
                raise ExportError(file, f"no source column matches the contract; source columns: {names}", place)
            texts: list[list[str | None]] = [[] for _ in selected]
            top = None  # every row read is > since, so the new high watermark is simply the largest read
            w = selected.index(wm.name) if wm is not None else None
            try:
                result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
                for part in result.partitions(chunk_rows):
                    for j, values in enumerate(zip(*part)):
                        texts[j].extend(sql_text(v) for v in values)
                        if j == w:
                            top = max((v for v in values if v is not None and (top is None or v > top)),
                                      default=top)
            except sa.exc.DBAPIError as e:
                if (fault := _db_fault(e, file, place)) is not None:
                    raise fault from None
                raise
    finally:
        engine.dispose()

    rows = len(texts[0])
    index = {n: j for j, n in enumerate(selected)}
    frame = pd.DataFrame({canon: pd.Series(texts[index[chosen[canon]]] if canon in chosen else [None] * rows,
                                           dtype="str") for canon in columns}, index=range(rows))
    frame[ROW_COLUMN] = pd.Series(range(1, rows + 1), dtype="int64")
    notes = []
    unused = [n for n in names if n not in chosen.values() and (wm is None or n != wm.name)]
    if unused:
        notes.append(f"source columns not in the contract, ignored: {', '.join(unused)}")
    absent = [c for c in columns if c not in chosen]
    if absent:
        notes.append(f"optional columns absent from the source, left empty: {', '.join(absent)}")
    return Extracted(frame=frame, notes=notes), (since if top is None else top)
