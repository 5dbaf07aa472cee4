"""The incremental SQL reader against SQLite and, when reachable (always under CI=true), MariaDB and PostgreSQL."""

import datetime as dt
import os
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN
from assets.extract.sql import read_sql_source

SERVERS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
}
COLUMNS = {
    "so_giay_phep": ["sogiayphep", "so_gp"],  # the source writes SoGiayPhep: matched case-insensitively
    "chu_dau_tu": ["ten_chu_dau_tu"],
    "ma_so_thue": ["Mã số thuế"],  # a CSV header text in a shared contract: never reaches the SQL
    "dien_tich": ["dien_tich_san"],
    "so_tang": [],
    "ngay_cap": [],
    "ngay_cap_nhat": [],
    "ma_phuong_xa": [],  # absent from the source: left empty
}
REQUIRED = {"so_giay_phep", "ngay_cap_nhat"}
OWNERS = ["Công ty TNHH Xây dựng Sài Gòn", "Nguyễn Thị Hồng Nhung", "Trần Văn Đức", "Hợp tác xã Thủ Đức"]
START = dt.datetime(2026, 3, 1, 8, 0, 0)


def _engine(backend: str, tmp_path) -> tuple[str, sa.Engine]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'so_xay_dung.db'}"
        return url, sa.create_engine(url)
    url = SERVERS[backend]
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as e:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"{backend} at {url} is unreachable and CI=true: {e}")
        pytest.skip(f"{backend} at {url} is unreachable")
    return url, engine


def _row(i: int) -> dict:
    return {"id": i, "SoGiayPhep": f"{i:03d}/GPXD", "chu_dau_tu": OWNERS[i % 4], "ma_so_thue": f"03{i:08d}",
            "dien_tich": Decimal("1500000000.00") if i == 20 else (None if i == 13 else Decimal(f"{i * 10}.50")),
            "so_tang": i % 5 + 1, "ngay_cap": dt.date(2026, 1, i), "ngay_cap_nhat": START + dt.timedelta(hours=i)}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def source(request, tmp_path):
    url, engine = _engine(request.param, tmp_path)
    table = sa.Table(
        f"giay_phep_xay_dung_{uuid.uuid4().hex[:10]}", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("SoGiayPhep", sa.String(30)),
        sa.Column("chu_dau_tu", sa.Unicode(200)),
        sa.Column("ma_so_thue", sa.String(14)),
        sa.Column("dien_tich", sa.Numeric(14, 2)),
        sa.Column("so_tang", sa.Integer),
        sa.Column("ngay_cap", sa.Date),
        sa.Column("ngay_cap_nhat", sa.DateTime),
        mysql_charset="utf8mb4",
    )
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [_row(i) for i in range(1, 21)])
        yield url, engine, table
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()


@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
def test_incremental_read(source):
    url, engine, table = source
    read = dict(file=f"sql:{table.name}", columns=COLUMNS, required=REQUIRED, watermark="ngay_cap_nhat",
                chunk_rows=7)  # 20 rows in three chunks

    first, high = read_sql_source(url, table=table.name, **read)
    f = first.frame
    assert list(f.columns) == [*COLUMNS, ROW_COLUMN]
    assert f["so_giay_phep"].tolist() == [f"{i:03d}/GPXD" for i in range(1, 21)]
    assert f[ROW_COLUMN].tolist() == list(range(1, 21))
    assert f.loc[0, "chu_dau_tu"] == "Nguyễn Thị Hồng Nhung" and f.loc[1, "chu_dau_tu"] == "Trần Văn Đức"
    assert f.loc[0, "ma_so_thue"] == "0300000001"
    assert f.loc[0, "dien_tich"] == "10.50" and f.loc[19, "dien_tich"] == "1500000000.00"
    assert f["dien_tich"].isna().sum() == 1
    assert f.loc[0, "so_tang"] == "2"
    assert f.loc[4, "ngay_cap"] == "05/01/2026"
    assert f.loc[0, "ngay_cap_nhat"] == "01/03/2026 09:00:00"
    assert f["ma_phuong_xa"].isna().all()
    assert all(isinstance(v, str) for c in COLUMNS for v in f[c].dropna())
    assert high == START + dt.timedelta(hours=20)

    with engine.begin() as conn:
        for i, hours in ((3, 1), (7, 2)):
            conn.execute(table.update().where(table.c.id == i).values(
                chu_dau_tu="Ban Quản lý dự án Đầu tư xây dựng", ngay_cap_nhat=high + dt.timedelta(hours=hours)))
        conn.execute(table.insert(), [{**_row(1), "id": 21, "SoGiayPhep": "021/GPXD",
                                       "ngay_cap_nhat": high + dt.timedelta(hours=3)}])

    second, high2 = read_sql_source(url, table=table.name, since=high, **read)
    assert second.frame["so_giay_phep"].tolist() == ["003/GPXD", "007/GPXD", "021/GPXD"]
    assert second.frame["chu_dau_tu"].tolist()[:2] == ["Ban Quản lý dự án Đầu tư xây dựng"] * 2
    assert high2 == high + dt.timedelta(hours=3)
    # A cursor stored as an ISO string works the same; nothing new gives no rows and keeps the watermark.
    again, _ = read_sql_source(url, table=table.name, since=high.isoformat(), **read)
    assert again.frame["so_giay_phep"].tolist() == ["003/GPXD", "007/GPXD", "021/GPXD"]
    empty, high3 = read_sql_source(url, table=table.name, since=high2, **read)
    assert len(empty.frame) == 0 and high3 == high2


@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
def test_query_source_and_missing_objects(source):
    url, engine, table = source
    quote = engine.dialect.identifier_preparer.quote
    query = f"SELECT id, {quote('SoGiayPhep')} AS so_gp, ngay_cap_nhat FROM {quote(table.name)} WHERE id > 10;"
    read = dict(file="sql:query", columns=COLUMNS, required=REQUIRED, watermark="ngay_cap_nhat")
    got, high = read_sql_source(url, query=query, **read)
    assert got.frame["so_giay_phep"].tolist() == [f"{i:03d}/GPXD" for i in range(11, 21)]
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.id.in_([2, 15])).values(ngay_cap_nhat=START + dt.timedelta(days=9)))
    newer, _ = read_sql_source(url, query=query, since=high, **read)
    assert newer.frame["so_giay_phep"].tolist() == ["015/GPXD"]  # id 2 is outside the query

    with pytest.raises(ExportError, match="rejected the query"):
        read_sql_source(url, query=f"SELECT * FROM {table.name}_khong_co", **read)
    with pytest.raises(ExportError, match="rejected the query"):
        read_sql_source(url, query=f"SELECT khong_co FROM {quote(table.name)}", **read)
    with pytest.raises(ExportError, match=f"table '{table.name}_khong_co' does not exist"):
        read_sql_source(url, table=f"{table.name}_khong_co", **read)
    with pytest.raises(ExportError, match="watermark column 'ngay_sua' is not in the source"):
        read_sql_source(url, table=table.name, **{**read, "watermark": "ngay_sua"})
    with pytest.raises(ExportError, match="required column.*so_giay_phep"):
        read_sql_source(url, table=table.name, **{**read, "columns": {**COLUMNS, "so_giay_phep": ["so_gp"]}})


@pytest.mark.parametrize("bad", [
    {"table": "x; DROP TABLE y"}, {"table": "y--"}, {"table": "a.b.y"}, {"table": "`y`"},
    {"table": "y", "watermark": "id; DROP TABLE y"}, {"table": "y", "watermark": "main.id"},
])
def test_identifiers_that_could_inject_sql_are_refused(bad, tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE y (id INTEGER, ma TEXT)"))
        conn.execute(sa.text("INSERT INTO y VALUES (1, 'a')"))
    with pytest.raises(ExportError, match="is not a plain identifier"):
        read_sql_source(url, "src", {"ma": []}, {"ma"}, **bad)
    assert sa.inspect(engine).has_table("y")
    # The same table, named properly (also schema-qualified), reads fine.
    got, high = read_sql_source(url, "src", {"ma": []}, {"ma"}, table="main.y", watermark="id")
    assert got.frame["ma"].tolist() == ["a"] and high == 1
    engine.dispose()


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:1/test",
                                 "mysql+pymysql://root@127.0.0.1:1/test"])
def test_unreachable_source_is_a_transient_fault(url):
    with pytest.raises(sa.exc.OperationalError):
        read_sql_source(url, "src", {"ma": []}, set(), table="y")


def test_missing_sqlite_file_is_not_created(tmp_path):
    path = tmp_path / "khong_co.db"
    with pytest.raises(ExportError, match="does not exist"):
        read_sql_source(f"sqlite:///{path}", "src", {"ma": []}, set(), table="y")
    assert not path.exists()
