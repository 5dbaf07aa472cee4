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

A batch goes through a session a slice at a time: `append` once per slice, `stage(data, into=...)` adds each
slice to one staging table, and `scan` reads a table back in slices, so memory follows the slice size.
"""
from __future__ import annotations

import atexit
import os
import re
import uuid
from contextlib import ExitStack, closing, contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from assets.warehouse import LOCK_NOT_AVAILABLE, LOCK_WAIT_S, Warehouse, pg_settings, sqlite_gate, sqlite_text

try:
    import fcntl
except ImportError:  # not on Windows: SQLite then relies on BEGIN IMMEDIATE alone
    fcntl = None


SCAN_ROWS = 100_000  # rows per slice when a table is read back (`Session.scan`)


class Session:
    """What modes and loads need from a database, whatever the path."""

    def __init__(self, wh: Warehouse, table: sa.Table):
        self.wh, self.table = wh, table
        self.committed = False
        self._staged: dict[str, str] = {}  # staging tables of this session: name for SQL -> name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def fetch(self, sql: str) -> pa.Table: ...
    def _ingest(self, name: str, data: pa.Table, create: bool) -> str: ...
    def _batches(self, sql: str) -> Iterable[pa.RecordBatch | pa.Table]: ...
    def commit(self) -> None: ...

    def scan(self, table: sa.Table, where: str = "", rows: int = SCAN_ROWS) -> Iterator[pa.Table]:
        """`SELECT *` from the table (`WHERE where`) a slice of about `rows` rows at a time, as the database hands
        the rows back (SQLite: text dates, 0/1 booleans). At least one slice, possibly without rows."""
        sql = f"SELECT * FROM {self.wh.name_of(table)}" + (f" WHERE {where}" if where else "")
        yield from _rebatch(self._batches(sql), rows)

    def execute_committed(self, sql: str, params: Sequence[Any] = ()) -> None:
        """After `commit`: one more statement in a transaction of its own (the ADBC sessions still hold the
        table's lock)."""
        ...

    def stage(self, data: pa.Table, into: str | None = None) -> str:
        """A temporary table holding `data`; returns its name for SQL text. `into`, a name `stage` returned
        before: `data` is added to that table (the slices of one batch, every slice with the same columns)."""
        if into is not None:
            self._ingest(self._staged[into], data, create=False)
            return into
        name = f"_kho_stg_{uuid.uuid4().hex[:12]}"
        quoted = self._ingest(name, data, create=True)
        self._staged[quoted] = name
        return quoted

    def unstage(self, name: str) -> None:
        """Drop a staging table `stage` returned (its rows are in place): temporary space stays one slice."""
        self.execute(f"DROP TABLE {name}")
        self._dropped(self._staged.pop(name))

    def _dropped(self, name: str) -> None: ...

    def defer_indexes(self, table: sa.Table) -> None:
        """Called with the table's rows for this load deleted: a session may build its indexes after the rows
        are in (`build_deferred`), where that is cheaper and invisible to readers. By default it does not."""

    def build_deferred(self) -> None:
        """The indexes `defer_indexes` dropped, built again, in the same transaction."""

    def append(self, table: sa.Table, data: pa.Table, exact: bool = False) -> None:
        """Rows into `table` as they are (by column name). `exact`: the table's columns are declared as kho
        declares them, so a fast path may write straight into it instead of through a staging table."""
        if data.num_rows:
            names = ", ".join(self.wh.quote(c) for c in data.column_names)
            stg = self.stage(data)
            self.execute(f"INSERT INTO {self.wh.name_of(table)} ({names}) SELECT {names} FROM {stg}")
            self.unstage(stg)

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
        self.unstage(stg)


def _rebatch(batches: Iterable[pa.RecordBatch | pa.Table], rows: int) -> Iterator[pa.Table]:
    """Batches gathered into tables of at least `rows` rows (the last may be smaller); at least one table."""
    parts: list[pa.Table] = []
    count, schema = 0, None
    for batch in batches:
        part = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if schema is None or part.schema != schema:  # SQLAlchemy rows: a slice's types are its own
            if parts:
                yield pa.concat_tables(parts)
                parts, count = [], 0
            schema = part.schema
        parts.append(part)
        count += part.num_rows
        if count >= rows:
            yield pa.concat_tables(parts)
            parts, count = [], 0
    if parts or schema is None:
        yield pa.concat_tables(parts) if parts else pa.table({})


class AdbcSession(Session):
    def __init__(self, wh: Warehouse, table: sa.Table, held: ExitStack):
        super().__init__(wh, table)
        self.sqlite = wh.dialect == "sqlite"
        self._deferred: list[str] = []  # CREATE INDEX statements to run again before the commit
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

    def _batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        if self.sqlite:
            self.cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(SCAN_ROWS)})
        self.cur.execute(sql)
        reader = self.cur.fetch_record_batch()
        if not self.sqlite or PROBE not in reader.schema.names:
            yield from reader
            return
        for batch in reader:  # without the probe row (see scan)
            yield batch.filter(pc.equal(batch.column(PROBE), 0)).drop_columns([PROBE])

    def scan(self, table: sa.Table, where: str = "", rows: int = SCAN_ROWS) -> Iterator[pa.Table]:
        if not self.sqlite:
            yield from super().scan(table, where, rows)
            return
        # The SQLite driver types each column by the values of the result's first batch and fails on a later
        # value of another type: a column NULL all through the first batch (valid_to, a rarely filled date)
        # would break the read. A first row of values of each column's declared type (dropped again) types them.
        self.cur.execute(f"PRAGMA table_info({self.wh.quote(table.name)})")
        declared = [(name, kind) for _, name, kind, *_ in self.cur.fetchall()]
        q = self.wh.quote
        cols = ", ".join(q(name) for name, _ in declared)
        probe = ", ".join(f"{_probe_value(kind)} AS {q(name)}" for name, kind in declared)
        sql = (f"SELECT {probe}, 1 AS {PROBE} UNION ALL SELECT {cols}, 0 FROM {self.wh.name_of(table)}"
               + (f" WHERE {where}" if where else ""))
        yield from _rebatch(self._batches(sql), rows)

    def _ingest(self, name: str, data: pa.Table, create: bool) -> str:
        self.cur.adbc_ingest(name, self._typed(data), mode="create" if create else "append", temporary=True)
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

    def defer_indexes(self, table: sa.Table) -> None:
        """SQLite, into an empty table: its plain indexes are dropped and built again after the rows are in
        (`build_deferred`), one sort instead of a b-tree insert per row: 1M dossier rows went in ~25% faster
        and the period index then took ~0.5 s to build. Readers never see the difference: the transaction
        holds the file's write lock, and a rollback brings the indexes back. Not on PostgreSQL, where DROP
        INDEX would lock readers out until the commit."""
        if not self.sqlite or self.fetch(f"SELECT 1 FROM {self.wh.name_of(table)} LIMIT 1").num_rows:
            return
        db = f"{self.wh.quote(table.schema)}." if table.schema else ""  # an attached file's tables
        self.cur.execute(f"PRAGMA {db}index_list({self.wh.quote(table.name)})")
        plain = [name for _, name, unique, origin, *_ in self.cur.fetchall() if not unique and origin == "c"]
        for name in plain:  # created by CREATE INDEX, not unique: building it later cannot fail
            self.cur.execute(f"SELECT sql FROM {db}sqlite_master WHERE type = 'index' AND name = ?", (name,))
            self._deferred.append(self.cur.fetchone()[0])
            self.cur.execute(f"DROP INDEX {db}{self.wh.quote(name)}")

    def build_deferred(self) -> None:
        while self._deferred:
            self.cur.execute(self._deferred.pop(0))

    def commit(self) -> None:
        self.cur.execute("COMMIT") if self.sqlite else self.conn.commit()
        self.committed = True

    def execute_committed(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.execute(sql, params)  # SQLite: the connection is in autocommit mode outside BEGIN ... COMMIT
        if not self.sqlite:
            self.conn.commit()


PROBE = "_kho_probe"


def _probe_value(declared: str) -> str:
    """A value of a SQLite column's declared type as SQLAlchemy stores it there (dates as text, booleans 0/1)."""
    kind = declared.upper()
    if "INT" in kind or "BOOL" in kind:
        return "0"
    if any(word in kind for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "0.0"
    return "''"


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
        self._temps: dict[str, sa.Table] = {}
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

    def _batches(self, sql: str) -> Iterator[pa.RecordBatch | pa.Table]:
        if self.wh.dialect == "duckdb":
            yield from self.conn.connection.driver_connection.sql(sql).to_arrow_reader(SCAN_ROWS)
            return
        result = self.conn.execute(sa.text(sql).execution_options(yield_per=SCAN_ROWS))
        names = list(result.keys())
        for part in result.partitions():
            yield pa.Table.from_pylist([dict(zip(names, r)) for r in part])

    def _ingest(self, name: str, data: pa.Table, create: bool) -> str:
        if self.wh.dialect == "duckdb":  # DuckDB reads the Arrow slice in place, into its temporary table
            view = f"{name}_{uuid.uuid4().hex[:6]}"
            self.conn.connection.driver_connection.register(view, data)
            try:
                self.execute(f"CREATE TEMPORARY TABLE {self.wh.quote(name)} AS SELECT * FROM {view}" if create
                             else f"INSERT INTO {self.wh.quote(name)} SELECT * FROM {view}")
            finally:
                self.conn.connection.driver_connection.unregister(view)
            return self.wh.quote(name)
        if create:
            from assets.warehouse import SQL_TYPES

            kinds = {pa.types.is_timestamp: "datetime", pa.types.is_date: "date", pa.types.is_boolean: "boolean",
                     pa.types.is_integer: "integer", pa.types.is_floating: "decimal"}
            cols = [sa.Column(f.name, SQL_TYPES[next((k for test, k in kinds.items() if test(f.type)), "text")]())
                    for f in data.schema]
            self._temps[name] = sa.Table(name, sa.MetaData(), *cols, prefixes=["TEMPORARY"])
            self._temps[name].create(self.conn)
        rows = data.to_pylist()
        if rows:
            self.conn.execute(self._temps[name].insert(), rows)
        return self.wh.quote(name)

    def _dropped(self, name: str) -> None:
        self._temps.pop(name, None)

    def commit(self) -> None:
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
