"""A load session: one transaction on one table, holding that table's lock, on the fastest path there is.

- PostgreSQL and SQLite files: ADBC. SQLAlchemy cannot share a transaction with an ADBC connection, so the whole
  load (DDL excluded, see Warehouse.prepare) runs on the ADBC connection, load-log rows included. Arrow batches
  go straight into the target (COPY on PostgreSQL) when only rows are added (append, replace,
  replace_partition), or into a temporary staging table that SQL then merges (merge, scd2, or a table whose
  columns were altered by hand). On SQLite no SQLAlchemy connection to the file may be open in this process
  meanwhile (warehouse._Gate: two copies of SQLite in one process).
- Any other SQLAlchemy URL: the same SQL on a SQLAlchemy connection; DuckDB reads the Arrow staging data in
  place (a registered view), other databases get a TEMPORARY table filled by executemany.

Locks: PostgreSQL takes a session advisory lock keyed on the table, SQLite a lock file per table plus
BEGIN IMMEDIATE, other databases update the table's row in kho.load_lock. The ADBC locks are held from before
the first statement until the session ends, after the lake files are published, so two loads of one table
never interleave, neither in SQL nor in the lake.

SQL is written with `?` placeholders; each session turns them into its driver's style.
"""
from __future__ import annotations

import atexit
import os
import re
import uuid
from contextlib import ExitStack, closing, contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import sqlalchemy as sa

from assets.warehouse import LOCK_NOT_AVAILABLE, LOCK_WAIT_S, Warehouse, pg_settings, sqlite_gate, sqlite_text

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

    def execute_committed(self, sql: str, params: Sequence[Any] = ()) -> None:
        """After `commit`: one more statement in a transaction of its own (the ADBC sessions still hold the
        table's lock)."""
        ...

    def stage(self, data: pa.Table) -> str:
        """A temporary table (or view) holding `data`; returns its name for SQL text."""
        return self._ingest(f"_kho_stg_{uuid.uuid4().hex[:12]}", data)

    def append(self, table: sa.Table, data: pa.Table, exact: bool = False) -> None:
        """Rows into `table` as they are (by column name). `exact`: the table's columns are declared as kho
        declares them, so a fast path may write straight into it instead of through a staging table."""
        if data.num_rows:
            names = ", ".join(self.wh.quote(c) for c in data.column_names)
            self.execute(f"INSERT INTO {self.wh.name_of(table)} ({names}) SELECT {names} FROM {self.stage(data)}")

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
    def __init__(self, wh: Warehouse, table: sa.Table, held: ExitStack):
        super().__init__(wh, table)
        self.sqlite = wh.dialect == "sqlite"
        if self.sqlite:
            import adbc_driver_sqlite.dbapi as adbc

            held.enter_context(self._lock_file(Path(wh.engine.url.database)))
            held.enter_context(sqlite_gate(wh.engine.url.database).exclusive())
            self.conn = held.enter_context(closing(adbc.connect(wh.engine.url.database, autocommit=True)))
            self.cur = held.enter_context(closing(self.conn.cursor()))
            self.cur.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
            self.cur.execute("BEGIN IMMEDIATE")
        else:
            self.conn = held.enter_context(closing(_postgres(wh)))
            self.cur = held.enter_context(closing(self.conn.cursor()))
            key = wh.lock_key(table)
            for sql in pg_settings():  # a lost twin holding the lock fails this wait, then the server ends it
                self.cur.execute(sql)
            self.cur.execute("SELECT pg_advisory_lock($1)", (key,))  # a session lock: held past COMMIT
            self.conn.commit()  # the SETs too: they last for the connection
            held.callback(self._unlock, key)
        held.callback(self._rollback)

    def _rollback(self) -> None:
        if not self.committed:
            self.cur.execute("ROLLBACK") if self.sqlite else self.conn.rollback()

    def _unlock(self, key: int) -> None:
        self.cur.execute("SELECT pg_advisory_unlock($1)", (key,))
        self.conn.commit()

    @contextmanager
    def _lock_file(self, db: Path) -> Iterator[None]:
        """Held from before BEGIN until the lake is published; the kernel releases it if the process dies."""
        if fcntl is None:
            yield
            return
        folder = db.parent / f".{db.name}.locks"
        folder.mkdir(exist_ok=True)
        with open(folder / f"{self.table.name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

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
        self.cur.adbc_ingest(name, self._typed(data), mode="create", temporary=True)
        return self.wh.quote(name)

    def _typed(self, data: pa.Table) -> pa.Table:
        if self.sqlite:  # SQLite has no date type: store the text SQLAlchemy reads back
            data = pa.table({n: sqlite_text(c) for n, c in zip(data.column_names, data.columns)})
        return data

    def append(self, table: sa.Table, data: pa.Table, exact: bool = False) -> None:
        """Straight into the table (COPY on PostgreSQL): a staging copy would double the work."""
        if not exact:
            return super().append(table, data)
        if data.num_rows:
            self.cur.adbc_ingest(table.name, self._typed(data), mode="append", db_schema_name=table.schema)

    def commit(self) -> None:
        self.cur.execute("COMMIT") if self.sqlite else self.conn.commit()
        self.committed = True

    def execute_committed(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.execute(sql, params)  # SQLite: the connection is in autocommit mode outside BEGIN ... COMMIT
        if not self.sqlite:
            self.conn.commit()


_TEMPLATES: dict[tuple[int, str], Any] = {}


def _postgres(wh: Warehouse):
    """A new ADBC connection. The driver's database object (~70 ms to set up: it reads the type catalogue) is
    made once per process and URL, and each load clones a connection from it (~5 ms)."""
    import adbc_driver_postgresql.dbapi as adbc

    url = wh.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    key = (os.getpid(), url)
    if key not in _TEMPLATES:
        if not _TEMPLATES:
            atexit.register(_close_templates)
        _TEMPLATES[key] = adbc.connect(url)
    return _TEMPLATES[key].adbc_clone()


def _close_templates() -> None:
    for (pid, _), conn in list(_TEMPLATES.items()):
        if pid == os.getpid():
            conn.close()
    _TEMPLATES.clear()


class SqlaSession(Session):
    def __init__(self, wh: Warehouse, table: sa.Table, held: ExitStack):
        super().__init__(wh, table)
        if wh.dialect not in ("sqlite", "postgresql"):
            self._lock_row()
        self.conn = held.enter_context(wh.engine.connect())
        self.conn.execution_options(kho_write=True)  # SQLite: BEGIN IMMEDIATE, which serialises writers
        self.tx = self.conn.begin()
        held.callback(lambda: None if self.committed else self.tx.rollback())
        self._views: list[str] = []
        if wh.dialect == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(?)", (wh.lock_key(table),))
        elif wh.dialect != "sqlite":  # updating the table's lock row holds a row lock until COMMIT
            lock = wh.load_lock
            self.conn.execute(lock.update().where(lock.c.table_name == wh.name_of(table))
                              .values(locked_at=datetime.now(timezone.utc)))

    def _lock_row(self) -> None:
        lock, key = self.wh.load_lock, self.wh.name_of(self.table)
        try:
            with self.wh.transaction() as conn:
                if conn.execute(sa.select(lock.c.table_name).where(lock.c.table_name == key)).first() is None:
                    conn.execute(lock.insert().values(table_name=key))
        except sa.exc.IntegrityError:  # another load created it first
            pass

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

    def execute_committed(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.execute(sql, params)  # SQLAlchemy begins a new transaction
        self.conn.commit()


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
    """Lock `table`, begin; the caller commits. Leaving without a commit rolls everything back; the lock and
    the connection are released on the way out, however far opening got."""
    with ExitStack() as held:
        try:
            yield (AdbcSession if fast_path(wh) else SqlaSession)(wh, table, held)
        except Exception as e:
            # ADBC reports PostgreSQL's lock_timeout as a ProgrammingError, which a retry would not follow: it is a
            # wait that ran out (another load, or a lost connection the server has not ended yet), so say so.
            if getattr(e, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise TimeoutError(f"{wh.name_of(table)}: gave up waiting for a lock (lock_timeout, "
                                   f"KHO_PG_LOCK_TIMEOUT_S): {str(e).strip()}") from e
            raise


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
