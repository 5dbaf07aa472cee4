"""Shared fixtures: a data folder per test, real database servers, and running a dataset's assets."""

from __future__ import annotations

import contextlib

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("KHO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_URL = os.environ.get("KHO_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
TEST_KEY = "kho-test-pseudonym-key-0123456789abcdef"  # tests only; the pipeline never has a default key


def server_unavailable(what: str, error: Exception) -> None:
    """Under CI=true a missing server is a failure, never a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is unreachable and CI=true: {error}")
    pytest.skip(f"{what} is unreachable: {error}")


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch):
    monkeypatch.setenv("KHO_PSEUDONYM_KEY", TEST_KEY)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("KHO_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for the session, dropped afterwards."""
    name = f"kho_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as e:
        server_unavailable("PostgreSQL", e)
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def s3(monkeypatch):
    """A local moto S3 server for this test only, with the bucket `kho-lake`; the lake reaches it through the
    standard AWS_* variables."""
    import socket
    import urllib.request

    import s3fs
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # Moto keeps its state per process, not per server: start from an empty store.
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")).close()
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION":
                        "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir("kho-lake")
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def resources(data_dir: Path, warehouse_url: str = "") -> dict:
    from dagster import FilesystemIOManager

    from pipelines.resources import KhoResource, StagingIOManager

    return {
        "kho": KhoResource(data_dir=str(data_dir), warehouse_url=warehouse_url),
        "staging": StagingIOManager(data_dir=str(data_dir)),
        "io_manager": FilesystemIOManager(base_dir=str(data_dir / "staging" / "_dagster")),
    }


def run_datasets(data_dir: Path, *contracts, warehouse_url: str = ""):
    """Materialise the contracts' assets in-process, as `kho run` does: one run per partition with new files;
    returns the runs seen as one result (pipelines.runs.Runs)."""
    from assets.factory import build_assets
    from pipelines.runs import materialize_landing

    assets = [a for c in contracts for a in build_assets(c)]
    return materialize_landing(assets, resources(data_dir, warehouse_url), contracts)


def query(data_dir: Path, sql: str):
    """A query on the embedded SQLite warehouse of `data_dir`, as a DataFrame (connection closed after)."""
    import pandas as pd

    engine = sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")
    try:
        with engine.connect() as conn:
            return pd.DataFrame(conn.execute(sa.text(sql)).mappings().all())
    finally:
        engine.dispose()


@contextlib.contextmanager
def chunked_reads(monkeypatch, chunk: int):
    """The CSV reader with CHUNK_BYTES = `chunk`; yields the list it fills with each chunk's record count, so a
    test can show the file really was read a chunk at a time."""
    from assets.extract import csv as csv_reader

    chunks: list[int] = []
    tables = csv_reader._Reader.tables

    def counted(self):
        for table in tables(self):
            chunks.append(table.num_rows)
            yield table

    with monkeypatch.context() as m:
        m.setattr(csv_reader, "CHUNK_BYTES", chunk)
        m.setattr(csv_reader._Reader, "tables", counted)
        yield chunks
