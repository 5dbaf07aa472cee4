"""The warehouse: SQL tables through SQLAlchemy (any URL), their shape per contract, and schema evolution.

Zones: `curated` (what analysts query), `quarantine` (rejected rows with reasons and original values) and
`kho` (the pipeline's own tables: load log, raw manifest, check results). On PostgreSQL a zone is a schema;
SQLite has none, so there the zone is a table-name prefix (curated tables keep their plain name).

DDL goes through SQLAlchemy here (`prepare`); the rows of a load go through `assets.session`, which picks the
fastest path the database offers (ADBC for SQLite and PostgreSQL) and runs the load as one locked transaction.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from assets.contract import Contract

SQL_TYPES = {
    "text": sa.Text, "tax_code": sa.Text, "citizen_id": sa.Text, "phone": sa.Text, "ward_code": sa.Text,
    "integer": sa.BigInteger, "decimal": sa.Double, "date": sa.Date, "boolean": sa.Boolean,
    "datetime": lambda: sa.DateTime(timezone=True),
}
LOCK_WAIT_S = 600  # how long a SQLite load waits for another writer before giving up
# PostgreSQL: how long a statement waits for a lock (a table's load lock above all) before it fails and the run
# retries, and how long a session may sit idle inside a transaction before the server ends it and frees its locks.
# Without them a load whose connection was lost half-open (the server never hears it go) holds its table's lock
# until TCP gives up, hours later, and every later load of the table waits behind it. The idle limit must exceed
# the longest pause of a load between two statements (writing the lake's Parquet files while the table is locked).
PG_TIMEOUTS = {"lock_timeout": ("KHO_PG_LOCK_TIMEOUT_S", 300),
               "idle_in_transaction_session_timeout": ("KHO_PG_IDLE_IN_TRANSACTION_TIMEOUT_S", 1800)}
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
# PostgreSQL advisory lock keys besides the per-table ones (Warehouse.lock_key)
DDL_LOCK, WRITE_LOCK = (int.from_bytes(hashlib.sha256(k).digest()[:8], "big", signed=True)
                        for k in (b"kho:ddl", b"kho:write"))

PROVENANCE = [
    sa.Column("_kho_load_id", sa.Text, nullable=False, comment="Mã lần nạp"),
    sa.Column("_kho_file_sha256", sa.Text, nullable=False, comment="Mã băm SHA-256 của tệp nguồn"),
    sa.Column("_kho_row", sa.Integer, comment="Dòng trong tệp nguồn"),
    sa.Column("_kho_loaded_at", sa.DateTime(timezone=True), nullable=False, comment="Thời điểm nạp (UTC)"),
]
SCD2 = [
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, comment="Phiên bản có hiệu lực từ (UTC)"),
    sa.Column("valid_to", sa.DateTime(timezone=True), comment="Phiên bản hết hiệu lực lúc (UTC); trống: hiện hành"),
    sa.Column("is_current", sa.Boolean, nullable=False, comment="Phiên bản hiện hành"),
]
DELETED_AT = sa.Column("_kho_deleted_at", sa.DateTime(timezone=True),
                       comment="Thời điểm bản ghi không còn trong bản chụp đầy đủ (UTC)")


class LoadError(Exception):
    """A batch that cannot be loaded as it is: a data fault, so retrying will not help."""


class SchemaChangeError(LoadError):
    """The data or the contract no longer fits the table, and the contract does not allow this change."""


@dataclass
class SchemaChange:
    """How the existing table differs from the contract's: what a load added or would have to."""

    table: str
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the table, no longer in the contract: kept, loaded NULL
    retyped: list[str] = field(default_factory=list)  # "col: BIGINT -> text"
    exact: bool = True  # every column is declared exactly as kho would declare it: rows may be COPYed in as is

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.retyped)

    def describe(self) -> str:
        parts = [f"{what}: {', '.join(cols)}" for what, cols in
                 (("added", self.added), ("missing", self.missing), ("retyped", self.retyped)) if cols]
        return "; ".join(parts) or "no change"


def _copy(columns: list[sa.Column]) -> list[sa.Column]:
    return [c._copy() for c in columns]


def family(declared: str) -> str:
    """A declared SQL type as one of kho's type families, whatever the dialect spells it."""
    d = declared.lower()
    for fam, words in (("datetime", ("timestamp", "datetime")), ("date", ("date",)), ("boolean", ("bool",)),
                       ("integer", ("int",)), ("decimal", ("double", "float", "real", "numeric", "decimal")),
                       ("text", ("char", "text", "string", "clob"))):
        if any(w in d for w in words):
            return fam
    return d


def arrow_type(column: sa.Column) -> pa.DataType:
    t = column.type
    # Integer widths follow the SQL type: PostgreSQL's binary COPY takes only the column's exact type.
    for kind, arrow in ((sa.DateTime, pa.timestamp("us", tz="UTC")), (sa.Date, pa.date32()),
                        (sa.Boolean, pa.bool_()), (sa.BigInteger, pa.int64()), (sa.SmallInteger, pa.int16()),
                        (sa.Integer, pa.int32()), (sa.Float, pa.float64())):
        if isinstance(t, kind):
            return arrow
    return pa.string()


class Warehouse:
    def __init__(self, url: str, fast: bool = True):
        self.url = url
        self.fast = fast  # False: the generic SQLAlchemy path even where ADBC exists (tests, odd setups)
        sqlite = url.startswith("sqlite")
        # SQLite: no idle pooled connections, so an ADBC load never waits on one (see _Gate). A database server:
        # a pooled connection the server or the network dropped is replaced before anyone gets it (pre-ping).
        server = not sqlite and sa.make_url(url).get_backend_name() != "duckdb"
        self.engine = sa.create_engine(url, **({"connect_args": {"timeout": LOCK_WAIT_S}, "poolclass": sa.NullPool}
                                               if sqlite and ":memory:" not in url and url.rstrip("/") != "sqlite:"
                                               else {"pool_pre_ping": True} if server else {}))
        self.dialect = self.engine.dialect.name
        if sqlite:
            _sqlite_transactions(self.engine)
        if self.dialect == "postgresql":
            _postgres_timeouts(self.engine)
        self.metadata = sa.MetaData()
        self._meta_tables()

    # ---- names -------------------------------------------------------------------------------------
    def locate(self, zone: str, table: str) -> tuple[str | None, str]:
        if self.dialect == "postgresql":
            return zone, table
        return None, table if zone == "curated" else f"{zone}_{table}"

    def quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def name_of(self, table: sa.Table) -> str:
        """The quoted, schema-qualified name for SQL text."""
        return (f"{self.quote(table.schema)}." if table.schema else "") + self.quote(table.name)

    def lock_key(self, table: sa.Table) -> int:
        """A stable 64-bit key per table: PostgreSQL advisory locks, SQLite lock files."""
        digest = hashlib.sha256(f"kho:{table.schema}.{table.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def _table(self, zone: str, name: str, *columns, comment: str | None = None, fresh: bool = False) -> sa.Table:
        """The zone's table; `fresh` rebuilds it from `columns` (a contract may have changed in this process)."""
        schema, table = self.locate(zone, name)
        key = f"{schema}.{table}" if schema else table
        if key in self.metadata.tables:
            if not fresh:
                return self.metadata.tables[key]
            self.metadata.remove(self.metadata.tables[key])
        return sa.Table(table, self.metadata, *columns, schema=schema, comment=comment)

    def _meta_tables(self) -> None:
        self.load_log = self._table(
            "kho", "load_log",
            sa.Column("load_id", sa.Text, nullable=False), sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("department", sa.Text), sa.Column("partition_key", sa.Text),
            sa.Column("file_name", sa.Text), sa.Column("file_sha256", sa.Text),
            sa.Column("rows_read", sa.BigInteger), sa.Column("rows_loaded", sa.BigInteger),
            sa.Column("rows_quarantined", sa.BigInteger), sa.Column("check_outcome", sa.Text),
            sa.Column("status", sa.Text, nullable=False), sa.Column("message", sa.Text),
            sa.Column("started_at", sa.DateTime(timezone=True)), sa.Column("finished_at", sa.DateTime(timezone=True)),
            comment="Nhật ký nạp: một dòng cho mỗi tệp của mỗi lần nạp",
        )
        self.manifest = self._table(
            "kho", "raw_manifest",
            sa.Column("sha256", sa.Text, nullable=False), sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("department", sa.Text), sa.Column("file_name", sa.Text, nullable=False),
            sa.Column("size", sa.BigInteger), sa.Column("received_at", sa.DateTime(timezone=True)),
            sa.Column("archive_path", sa.Text),
            sa.UniqueConstraint("dataset", "sha256", "file_name"),
            comment="Danh mục tệp gốc đã lưu trữ (nguyên vẹn, định danh bằng SHA-256)",
        )
        self.check_results = self._table(
            "kho", "check_results",
            sa.Column("load_id", sa.Text, nullable=False), sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("expectation", sa.Text), sa.Column("column_name", sa.Text), sa.Column("severity", sa.Text),
            sa.Column("success", sa.Boolean), sa.Column("unexpected_count", sa.BigInteger),
            sa.Column("observed_value", sa.Text), sa.Column("checked_at", sa.DateTime(timezone=True)),
            comment="Kết quả kiểm tra chất lượng dữ liệu theo từng lần nạp",
        )
        # Lake files a committed load has not published yet: written in the load's transaction, deleted once the
        # files are in place; a kill -9 in between leaves the row, and the next load or run publishes (assets.load).
        self.lake_pending = self._table(
            "kho", "lake_pending",
            sa.Column("id", sa.Text, primary_key=True), sa.Column("table_name", sa.Text, nullable=False),
            sa.Column("dataset", sa.Text, nullable=False), sa.Column("zone", sa.Text, nullable=False),
            sa.Column("load_id", sa.Text), sa.Column("layout", sa.Text, nullable=False),
            sa.Column("files", sa.Text, nullable=False), sa.Column("created_at", sa.DateTime(timezone=True)),
            comment="Tệp Parquet của lần nạp đã ghi vào kho nhưng chưa công bố lên hồ dữ liệu",
        )
        # Generic databases only: a row per table, updated inside each load to serialise loads of that table.
        self.load_lock = self._table(
            "kho", "load_lock", sa.Column("table_name", sa.Text, primary_key=True),
            sa.Column("locked_at", sa.DateTime(timezone=True)), comment="Khóa nạp theo bảng",
        )

    def curated_table(self, contract: Contract) -> sa.Table:
        # Personal columns are text pseudonyms here, or absent (assets.privacy); never their raw type.
        cols = [sa.Column(n, SQL_TYPES[t](), comment=contract.columns[n].description)
                for n, t in contract.curated_columns.items()]
        if contract.partitioning:
            cols.append(sa.Column(contract.partitioning.key, sa.Text, comment="Kỳ báo cáo"))
        load, extra = contract.load, []
        if load.mode == "scd2":
            extra = [*_copy(SCD2), sa.PrimaryKeyConstraint(*contract.primary_key, "valid_from")]
        elif load.mode == "merge":
            extra = [*_copy([DELETED_AT])] if load.on_missing == "close" else []
            extra.append(sa.PrimaryKeyConstraint(*contract.primary_key))
        return self._table("curated", contract.table, *cols, *_copy(PROVENANCE), *extra, comment=contract.title,
                           fresh=True)

    def quarantine_table(self, contract: Contract) -> sa.Table:
        # Original values as the department wrote them: always text, whatever the column's type.
        cols = [sa.Column(n, sa.Text, comment=c.description) for n, c in contract.columns.items()]
        return self._table(
            "quarantine", contract.table, *cols,
            sa.Column("_kho_reasons", sa.Text, nullable=False, comment="Lý do loại (mã lỗi:cột)"),
            sa.Column("_kho_original", sa.Text, comment="Dòng gốc không tách được thành cột"),
            *_copy(PROVENANCE), comment=f"Dòng bị loại: {contract.title}", fresh=True,
        )

    # ---- schema ------------------------------------------------------------------------------------
    def _ddl_lock(self, conn: sa.Connection) -> None:
        """PostgreSQL's CREATE ... IF NOT EXISTS is not safe against a concurrent twin (unique violation in the
        catalogue): DDL from concurrent runs takes turns. Held until the transaction ends."""
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": DDL_LOCK})

    def create(self, *tables: sa.Table) -> None:
        with self.transaction(serialize=False) as conn:
            self._ddl_lock(conn)
            for schema in {t.schema for t in tables} - {None}:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            for table in tables:
                table.create(conn, checkfirst=True)

    def prepare(self, table: sa.Table, policy: str = "evolve",
                index: tuple[str | tuple[str, str], ...] = (), by_range: tuple[str, ...] = ()) -> SchemaChange:
        """Create the table, or bring it to the contract's shape under `policy` (evolve | freeze).

        evolve adds new columns as nullable (with their comment) and keeps columns the contract dropped; freeze
        refuses any difference. A changed type is refused under both: data is never coerced silently.
        Runs under the table's load lock, so two first loads never race to create it.

        `index`: columns the load's DELETEs look up; `(column, other)` indexes `column` only on the rows where
        `other` IS NULL (and replaces a full index of `column` kho made before): every row written pays for
        an index entry, so one that lookups never need is not kept.
        `by_range`: columns whose rows arrive together, load after load (a period). On PostgreSQL their index is
        a BRIN (one summary per block range, not an entry per row: the COPY of 1M dossier rows took ~1.3 s less
        server time) and replaces the b-tree kho made before; a b-tree elsewhere.
        """
        change = SchemaChange(self.name_of(table))
        with self.transaction(serialize=False) as conn:
            if self.dialect == "postgresql":  # the table's lock first: waiting for it never blocks other DDL
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.lock_key(table)})
            self._ddl_lock(conn)
            if table.schema:
                conn.execute(sa.schema.CreateSchema(table.schema, if_not_exists=True))
            have = self._columns(conn, table)
            if have is None:
                table.create(conn)
            else:
                want = {c.name: c for c in table.columns}
                change.added = [n for n in want if n not in have]
                change.missing = [n for n in have if n not in want]
                change.retyped = [f"{n}: {have[n][0]} -> {family(self._declared(want[n]))}" for n in want
                                  if n in have and family(have[n][0]) != family(self._declared(want[n]))]
                change.exact = all(have[n][0].lower() == self._declared(want[n]).lower() for n in want if n in have)
                if change and policy == "freeze":
                    raise SchemaChangeError(f"{change.table} has schema_change: freeze and the contract no longer "
                                            f"matches it ({change.describe()})")
                if change.retyped:
                    raise SchemaChangeError(f"{change.table}: a column's type changed ({', '.join(change.retyped)}); "
                                            "kho never converts loaded data silently: migrate the table by hand "
                                            "or name a new column")
                for name in change.added:
                    self._add_column(conn, table, want[name])
                self._sync_comments(conn, table, have)
            if self.dialect in ("sqlite", "postgresql"):
                schema = f"{self.quote(table.schema)}." if table.schema else ""
                for entry in (*index, *by_range):
                    col, other = entry if isinstance(entry, tuple) else (entry, None)
                    name, how, tail = _index_name(table, col, other), "", ""
                    if other:
                        tail = f" WHERE {self.quote(other)} IS NULL"
                    if entry in by_range and self.dialect == "postgresql":
                        name, how = _index_name(table, col, brin=True), " USING brin"
                        tail = " WITH (autosummarize = on)"  # new block ranges summarised by autovacuum
                    if name != _index_name(table, col):  # replaces the full b-tree kho made before
                        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {schema}{self.quote(_index_name(table, col))}")
                    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {self.quote(name)} "
                                         f"ON {self.name_of(table)}{how} ({self.quote(col)}){tail}")
            if self.dialect not in ("sqlite", "postgresql"):
                self.load_lock.create(conn, checkfirst=True)
        return change

    def _declared(self, column: sa.Column) -> str:
        return column.type.compile(dialect=self.engine.dialect)

    def _columns(self, conn: sa.Connection, table: sa.Table) -> dict[str, tuple[str, str | None]] | None:
        """name -> (declared type, comment) of the existing table; None when there is no table.

        Read from the catalogue directly: some dialects' SQLAlchemy reflection (duckdb_engine) is broken.
        """
        if self.dialect == "sqlite":
            rows = conn.exec_driver_sql(f"PRAGMA table_info({self.quote(table.name)})").all()
            return {r[1]: (r[2], None) for r in rows} or None
        if self.dialect in ("postgresql", "duckdb"):
            comment = ("col_description(format('%I.%I', table_schema, table_name)::regclass::oid, ordinal_position)"
                       if self.dialect == "postgresql" else "NULL")
            rows = conn.execute(sa.text(
                f"SELECT column_name, data_type, {comment} FROM information_schema.columns "
                "WHERE table_name = :t AND table_schema = coalesce(:s, current_schema()) ORDER BY ordinal_position"),
                {"t": table.name, "s": table.schema}).all()
            return {r[0]: (r[1], r[2]) for r in rows} or None
        inspector = sa.inspect(conn)
        if not inspector.has_table(table.name, schema=table.schema):
            return None
        return {c["name"]: (str(c["type"]), c.get("comment")) for c in
                inspector.get_columns(table.name, schema=table.schema)}

    def _add_column(self, conn: sa.Connection, table: sa.Table, column: sa.Column) -> None:
        conn.exec_driver_sql(f"ALTER TABLE {self.name_of(table)} ADD COLUMN {self.quote(column.name)} "
                             f"{self._declared(column)}")
        if self.dialect == "postgresql" and column.comment:
            conn.execute(sa.schema.SetColumnComment(column))

    def _sync_comments(self, conn: sa.Connection, table: sa.Table, have: dict) -> None:
        """A reworded Vietnamese description reaches the existing table (PostgreSQL keeps comments)."""
        if self.dialect != "postgresql":
            return
        for column in table.columns:
            if column.name in have and column.comment and have[column.name][1] != column.comment:
                conn.execute(sa.schema.SetColumnComment(column))
        current = conn.execute(sa.text("SELECT obj_description(CAST(:n AS regclass), 'pg_class')"),
                               {"n": f"{table.schema}.{table.name}"}).scalar()
        if table.comment and current != table.comment:
            conn.execute(sa.schema.SetTableComment(table))

    # ---- rows --------------------------------------------------------------------------------------
    def arrow(self, table: sa.Table, frame: pd.DataFrame) -> pa.Table:
        """The frame typed exactly as the table's columns; a value that would have to change type fails.

        Columns pandas keeps in Arrow (text, ArrowDtype) and numpy columns convert without Python objects; dates
        may come as datetime.date objects, as datetime64 or as Arrow dates or timestamps, and datetime values go
        to a date column only when they are whole days (on their own clock when they carry a time zone)."""
        arrays, names = [], []
        for column in table.columns:
            if column.name not in frame:
                continue
            want = arrow_type(column)
            try:
                arrays.append(_arrow_values(frame[column.name], want))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
                raise SchemaChangeError(
                    f"{self.name_of(table)}.{column.name}: values of type {frame[column.name].dtype} do not fit "
                    f"{family(str(want))} without changing them ({e})") from None
            names.append(column.name)
        return pa.Table.from_arrays(arrays, names=names)

    @contextmanager
    def transaction(self, serialize: bool = True) -> Iterator[sa.Connection]:
        """A write transaction. Writers take turns, so read-then-write code (the raw manifest, the load log) never
        races a twin run: SQLite's BEGIN IMMEDIATE, on PostgreSQL an advisory lock held until COMMIT. Loads lock
        per table instead (assets.session), and `prepare` / `create` take their own locks (serialize=False)."""
        with self.engine.connect() as conn:
            conn.execution_options(kho_write=True)
            with conn.begin():
                if serialize and self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})
                yield conn

    def insert(self, conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
        """Rows into a table inside a SQLAlchemy transaction (small tables: dimensions, marts, generic loads)."""
        if frame.empty:
            return 0
        names = [c.name for c in table.columns if c.name in frame.columns]
        data = pa.Table.from_pandas(frame[names], preserve_index=False)
        if self.dialect == "postgresql" and conn.dialect.driver == "psycopg":
            return _copy_postgres(conn, table, data)
        rows = _python_rows(data, sqlite=self.dialect == "sqlite")
        if self.dialect == "sqlite":
            cols = ", ".join(self.quote(n) for n in names)
            target = (f"{self.quote(table.schema)}." if table.schema else "") + self.quote(table.name)
            sql = f'INSERT INTO {target} ({cols}) VALUES ({", ".join("?" * len(names))})'
            conn.connection.driver_connection.cursor().executemany(sql, rows)
        else:
            conn.execute(table.insert(), [dict(zip(names, r)) for r in rows])
        return len(frame)


def _arrow_values(values: pd.Series, want: pa.DataType) -> pa.Array | pa.ChunkedArray:
    if pa.types.is_date(want) and (pd.api.types.is_datetime64_any_dtype(values.dtype) or (
            isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_timestamp(values.dtype.pyarrow_dtype))):
        stamps = pa.array(values, from_pandas=True)  # datetime64 or Arrow timestamps: whole days only
        if pa.types.is_timestamp(stamps.type):
            wall = pc.local_timestamp(stamps) if stamps.type.tz else stamps
            if pc.all(pc.equal(pc.floor_temporal(wall, unit="day"), wall)).as_py() is False:
                raise ValueError("some values have a time of day")
            return pc.cast(wall, want)
    return pa.array(values, type=want, from_pandas=True)


def _index_name(table: sa.Table, col: str, null_in: str | None = None, brin: bool = False) -> str:
    ix = f"ix_{table.name}_{col}" + (f"_where_{null_in}_null" if null_in else "") + ("_brin" if brin else "")
    return ix if len(ix) <= 63 else f"ix_{hashlib.sha1(ix.encode()).hexdigest()[:16]}"


def pg_settings() -> list[str]:
    """The SET statements of PG_TIMEOUTS, in seconds from the environment (0: no limit, as in PostgreSQL)."""
    out = []
    for name, (env, default) in PG_TIMEOUTS.items():
        raw = os.environ.get(env, "").strip()
        try:
            seconds = float(raw) if raw else default
        except ValueError:
            raise ValueError(f"{env}={raw!r}: a number of seconds is needed") from None
        if seconds < 0:
            raise ValueError(f"{env}={raw!r}: a number of seconds is needed")
        out.append(f"SET {name} = {int(seconds * 1000)}")  # milliseconds
    return out


def _postgres_timeouts(engine: sa.Engine) -> None:
    """Each new connection of the engine gets PG_TIMEOUTS: the table lock `prepare` waits for, the write and DDL
    locks, and the generic load session (assets.session) all run on them. The ADBC session sets its own."""

    @sa.event.listens_for(engine, "connect")
    def _set(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for sql in pg_settings():
                cursor.execute(sql)
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET inside a rolled-back transaction would be undone


SQLITE_PAGE_SIZE = 32_768


def _sqlite_transactions(engine: sa.Engine) -> None:
    """pysqlite's own BEGIN is deferred and implicit; take transactions over so writers BEGIN IMMEDIATE.

    Every connection passes the file's in-process gate (`sqlite_gate`) so none is open during an ADBC load.
    """
    gate = sqlite_gate(engine.url.database)

    @sa.event.listens_for(engine, "do_connect")
    def _open(dialect, _record, cargs, cparams):
        gate.enter_shared()
        try:
            return dialect.dbapi.connect(*cargs, **cparams)
        except BaseException:
            gate.leave_shared()
            raise

    @sa.event.listens_for(engine, "close")
    def _close(_dbapi_conn, _record):
        gate.leave_shared()

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        dbapi_conn.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
        # A new file only (an existing one keeps its pages): loading 1M dossier rows into 32 KiB pages took
        # ~20% less time than into the default 4 KiB ones, and scans were no slower
        dbapi_conn.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("kho_write") else "BEGIN")


class _Gate:
    """Python's sqlite3 and the ADBC driver each link their own copy of SQLite. POSIX locks belong to the process,
    so one copy closing its file descriptor silently drops the other copy's locks, and each copy believes it is
    alone with the file (https://www.sqlite.org/howtocorrupt.html, "multiple copies of SQLite"). Within one
    process a file is therefore open either by any number of pysqlite connections (shared) or by one ADBC load
    (exclusive), never both. Between processes SQLite's own locking applies as usual. For the same reason the
    warehouse stays in rollback-journal mode: in WAL mode a closing ADBC connection removes the WAL index from
    under open pysqlite connections ("disk I/O error").
    """

    def __init__(self, name: str):
        self.name, self._cond, self._shared, self._exclusive = name, threading.Condition(), 0, False

    def enter_shared(self) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._exclusive, LOCK_WAIT_S):
                raise TimeoutError(f"{self.name}: an ADBC load held the file for {LOCK_WAIT_S} s")
            self._shared += 1

    def leave_shared(self) -> None:
        with self._cond:
            self._shared -= 1
            self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:  # a connection held this long is a leak in this process, not a reader: fail fast
            if not self._cond.wait_for(lambda: not self._exclusive and not self._shared, 60):
                raise TimeoutError(f"{self.name}: a SQLAlchemy connection to the file stayed open in this process "
                                   "during a load; close it first (see warehouse._Gate)")
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


_GATES: dict[str, _Gate] = {}


def sqlite_gate(database: str | None) -> _Gate:
    key = os.path.realpath(database) if database and database != ":memory:" else f"memory:{id(database)}"
    return _GATES.setdefault(key, _Gate(key))


def sqlite_text(values: pa.Array | pa.ChunkedArray):
    """Dates and timestamps in the text form SQLAlchemy's SQLite types read back; each distinct value formatted
    once (a month of dossiers has a few dozen dates, a load one time stamp: a third of the cost)."""
    if not (pa.types.is_timestamp(values.type) or pa.types.is_date(values.type)):
        return values
    coded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    distinct = coded.dictionary
    if pa.types.is_timestamp(values.type):  # UTC wall time, "2026-10-01 07:30:00.000000"; strftime is 15x slower
        distinct = pc.cast(distinct, pa.timestamp("us"))
    return pc.take(pc.cast(distinct, pa.string()), coded.indices)


def _python_rows(data: pa.Table, sqlite: bool) -> list[tuple]:
    columns = [(sqlite_text(col) if sqlite else col).to_pylist() for col in data.columns]
    return list(zip(*columns))


def _copy_postgres(conn: sa.Connection, table: sa.Table, data: pa.Table) -> int:
    cursor = conn.connection.driver_connection.cursor()
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    cols = ", ".join(f'"{n}"' for n in data.column_names)
    with cursor.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
        for batch in data.to_batches(max_chunksize=50_000):
            for row in zip(*(c.to_pylist() for c in batch.columns)):
                copy.write_row(row)
    return data.num_rows


def now() -> datetime:
    return datetime.now(timezone.utc)
