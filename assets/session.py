"""A load session: one transaction on one table, holding that table's lock, on the fastest path there is.

- PostgreSQL and SQLite files: ADBC. SQLAlchemy cannot share a transaction with an ADBC connection, so the whole
  load (DDL excluded, see Warehouse.prepare) runs on the ADBC connection: Arrow batches are ingested into a
  temporary staging table (COPY on PostgreSQL), then plain SQL moves them into the target, in the transaction
  that also writes the load-log rows.
- Any other SQLAlchemy URL: the same SQL on a SQLAlchemy connection; DuckDB reads the Arrow staging data in
  place (registered view), other databases get a TEMPORARY table filled by executemany.

Locks: PostgreSQL takes a session advisory lock keyed on the table, SQLite a lock file per table plus
BEGIN IMMEDIATE, other databases update the table's row in kho.load_lock. The lock is held from before the
first statement until `close`, after the lake files are published, so two loads of one table never interleave,
neither in SQL nor in the lake.

SQL is written with `?` placeholders; each session turns them into its driver's style.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import sqlalchemy as sa

from assets.warehouse import LOCK_WAIT_S, Warehouse, sqlite_gate, sqlite_text

try:
    import fcntl
except ImportError:  # not on Windows: SQLite then relies on BEGIN IMMEDIATE alone
    fcntl = None


class Session:
    """What modes and loads need from a database, whatever the path."""

    def __init__(self, wh: Warehouse, table: sa.Table):
        self.wh, self.table = wh, table
        self.committed = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def fetch(self, sql: str) -> pa.Table: ...
    def _ingest(self, name: str, data: pa.Table) -> str: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...

    def stage(self, data: pa.Table) -> str:
        """A temporary table (or view) holding `data`; returns its name for SQL text."""
        return self._ingest(f"_kho_stg_{uuid.uuid4().hex[:12]}", data)

    def insert_rows(self, table: sa.Table, rows: list[dict]) -> None:
        """Small row lists (load-log rows) through the same staging path, typed by the table."""
        if not rows:
            return
        from assets.warehouse import arrow_type

        cols = [c for c in table.columns if c.name in rows[0]]
        data = pa.table({c.name: pa.array([r[c.name] for r in rows], type=arrow_type(c)) for c in cols})
        names = ", ".join(self.wh.quote(c.name) for c in cols)
        stg = self.stage(data)
        self.execute(f"INSERT INTO {self.wh.name_of(table)} ({names}) SELECT {names} FROM {stg}")


class AdbcSession(Session):
    def __init__(self, wh: Warehouse, table: sa.Table):
        super().__init__(wh, table)
        self.sqlite = wh.dialect == "sqlite"
        self._lockfile = self._gate = None
        if self.sqlite:
            import adbc_driver_sqlite.dbapi as adbc

            self._lock_file(Path(wh.engine.url.database))
            self._gate = sqlite_gate(wh.engine.url.database).exclusive()
            self._gate.__enter__()
            self.conn = adbc.connect(wh.engine.url.database, autocommit=True)
            self.cur = self.conn.cursor()
            self.cur.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
            self.cur.execute("BEGIN IMMEDIATE")
        else:
            self.conn = _postgres(wh)
            self.cur = self.conn.cursor()
            self.cur.execute("SELECT pg_advisory_lock($1)", (wh.lock_key(table),))  # session lock: past COMMIT
            self.conn.commit()

    def _lock_file(self, db: Path) -> None:
        if fcntl is None:
            return
        folder = db.parent / f".{db.name}.locks"
        folder.mkdir(exist_ok=True)
        self._lockfile = open(folder / f"{self.table.name}.lock", "w")
        fcntl.flock(self._lockfile, fcntl.LOCK_EX)  # released by the kernel if the process dies

    def _sql(self, sql: str) -> str:
        if self.sqlite:
            return sql
        n = iter(range(1, 10_000))
        return re.sub(r"\?", lambda _: f"${next(n)}", sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if params:
            self.cur.execute(self._sql(sql), tuple(_sqlite_param(p) if self.sqlite else p for p in params))
        else:
            self.cur.execute(sql)

    def fetch(self, sql: str) -> pa.Table:
        self.cur.execute(sql)
        return self.cur.fetch_arrow_table()

    def _ingest(self, name: str, data: pa.Table) -> str:
        if self.sqlite:  # SQLite has no date type: store the text SQLAlchemy reads back
            data = pa.table({n: sqlite_text(c) for n, c in zip(data.column_names, data.columns)})
        self.cur.adbc_ingest(name, data, mode="create", temporary=True)
        return self.wh.quote(name)

    def commit(self) -> None:
        if self.sqlite:
            self.cur.execute("COMMIT")
        else:
            self.conn.commit()
        self.committed = True

    def close(self) -> None:
        try:
            if not self.committed:
                if self.sqlite:
                    self.cur.execute("ROLLBACK")
                else:
                    self.conn.rollback()
            if not self.sqlite:
                self.cur.execute("SELECT pg_advisory_unlock($1)", (self.wh.lock_key(self.table),))
                self.conn.commit()
        finally:
            self.cur.close()
            self.conn.close()
            if self._gate:
                self._gate.__exit__(None, None, None)
            if self._lockfile:
                self._lockfile.close()


_TEMPLATES: dict[tuple[int, str], Any] = {}


def _postgres(wh: Warehouse):
    """A new ADBC connection. The driver's database object (~70 ms to set up: it reads the type catalogue) is
    made once per process and URL, and each load clones a connection from it (~5 ms)."""
    import adbc_driver_postgresql.dbapi as adbc

    url = wh.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    key = (os.getpid(), url)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = adbc.connect(url)
    return _TEMPLATES[key].adbc_clone()


class SqlaSession(Session):
    def __init__(self, wh: Warehouse, table: sa.Table):
        super().__init__(wh, table)
        self.conn = wh.engine.connect()
        self.conn.execution_options(kho_write=True)
        self.tx = self.conn.begin()
        self._views: list[str] = []
        if wh.dialect == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(?)", (wh.lock_key(table),))
        elif wh.dialect != "sqlite":  # SQLite: BEGIN IMMEDIATE already serialises writers
            self._row_lock()

    def _row_lock(self) -> None:
        lock, key = self.wh.load_lock, self.wh.name_of(self.table)
        stamp = datetime.now(timezone.utc)
        if not self.conn.execute(lock.update().where(lock.c.table_name == key).values(locked_at=stamp)).rowcount:
            self.conn.execute(lock.insert().values(table_name=key, locked_at=stamp))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        n = iter(range(10_000))
        named = re.sub(r"\?", lambda _: f":p{next(n)}", sql)
        values = [_sqlite_param(p) for p in params] if self.wh.dialect == "sqlite" else list(params)
        self.conn.execute(sa.text(named), {f"p{i}": v for i, v in enumerate(values)})

    def fetch(self, sql: str) -> pa.Table:
        if self.wh.dialect == "duckdb":
            return self.conn.connection.driver_connection.sql(sql).to_arrow_table()
        result = self.conn.execute(sa.text(sql))
        names = list(result.keys())
        return pa.Table.from_pylist([dict(zip(names, r)) for r in result], schema=None) if names else pa.table({})

    def _ingest(self, name: str, data: pa.Table) -> str:
        if self.wh.dialect == "duckdb":  # DuckDB scans the Arrow table in place
            self.conn.connection.driver_connection.register(name, data)
            self._views.append(name)
            return self.wh.quote(name)
        from assets.warehouse import SQL_TYPES

        kinds = {pa.types.is_timestamp: "datetime", pa.types.is_date: "date", pa.types.is_boolean: "boolean",
                 pa.types.is_integer: "integer", pa.types.is_floating: "decimal"}
        cols = [sa.Column(f.name, SQL_TYPES[next((k for test, k in kinds.items() if test(f.type)), "text")]())
                for f in data.schema]
        temp = sa.Table(name, sa.MetaData(), *cols, prefixes=["TEMPORARY"])
        temp.create(self.conn)
        rows = data.to_pylist()
        if rows:
            self.conn.execute(temp.insert(), rows)
        return self.wh.quote(name)

    def commit(self) -> None:
        for view in self._views:
            self.conn.connection.driver_connection.unregister(view)
        self._views.clear()
        self.tx.commit()
        self.committed = True

    def close(self) -> None:
        try:
            if not self.committed:
                self.tx.rollback()
        finally:
            self.conn.close()


def _sqlite_param(value: Any) -> Any:
    """Dates as the text SQLAlchemy's SQLite types write and read."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.isoformat() if isinstance(value, date) else value


def fast_path(wh: Warehouse) -> bool:
    if not wh.fast:
        return False
    if wh.dialect == "postgresql":
        return True
    db = wh.engine.url.database
    return wh.dialect == "sqlite" and bool(db) and db != ":memory:" and not db.startswith("file:")


@contextmanager
def session(wh: Warehouse, table: sa.Table) -> Iterator[Session]:
    """Lock `table`, begin; the caller commits. Leaving without a commit rolls everything back."""
    s = (AdbcSession if fast_path(wh) else SqlaSession)(wh, table)
    try:
        yield s
    finally:
        s.close()


def hold_for_test(where: str) -> None:
    """Tests only: KHO_TEST_HOLD=<where>:<marker file>:<seconds> pauses the load at `where` after touching the
    marker, so a test can kill -9 the process, or start a second load, in the middle of a transaction."""
    spec = os.environ.get("KHO_TEST_HOLD", "")
    if not spec.startswith(where + ":"):
        return
    import time

    _, marker, seconds = spec.split(":")
    Path(marker).touch()
    time.sleep(float(seconds))
