"""Faults around a load: kill -9 in the middle of a Parquet write, the warehouse going away at the start of a run and
in the middle of a load, the same export twice, two exports for one period, two runs at once on one table, a lake
folder that cannot be written and a disk filling up during the write.

After each: no reader sees a partial file, the warehouse is never ahead of the lake nor behind it, and a re-run
(or the retry) leaves exactly the right rows. The kill -9 tests of the SQL load itself are in the load's own tests
(owner "issue 4"); here the process dies while the lake file is being written.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from dagster import Backoff, DagsterInstance, RetryPolicy, materialize

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import DEFECTS, expected_quarantine, write_dossiers
from tests.conftest import resources, run_datasets

REPO = Path(__file__).resolve().parents[1]
DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
LANDING = Path("landing/trung_tam_hcc/ho_so_tthc")
ROWS = 120
READ = ROWS + DEFECTS["duplicate_row"] + DEFECTS["duplicate_key_conflict"] // 2
LOADED = READ - expected_quarantine()
FAST_RETRY = RetryPolicy(max_retries=6, delay=0.2, backoff=Backoff.EXPONENTIAL)


def _sqlite(data_dir: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")


def _scalar(engine: sa.Engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def _frame(engine: sa.Engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.text(sql)).mappings().all())


def _lake_rows(lake: Path, zone: str, dataset: str) -> int:
    """What an analyst's DuckDB sees: every *.parquet under the dataset, Hive partitions."""
    files = duckdb.sql(f"SELECT file FROM glob('{lake}/{zone}/{dataset}/**/*.parquet')").fetchall()
    if not files:
        return 0
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/{zone}/{dataset}/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()[0][0]


def _hidden(lake: Path) -> list[Path]:
    return [p for p in lake.rglob(".*") if p.is_file()]


# ---- kill -9 in the middle of a Parquet write ------------------------------------------------------------

BIG = textwrap.dedent("""
    dataset: so_lieu_lon
    title: Số liệu lớn
    description: A wide table, so that writing its Parquet file takes a while.
    department: {code: so_thu_nghiem, name: Sở Thử nghiệm}
    landing: "so_thu_nghiem/so_lieu_lon/*.csv"
    columns:
      ma: {description: Mã}
      ghi_chu: {description: Ghi chú}
      ngay: {type: date, description: Ngày}
    partitioning: {column: ngay, grain: month, key: ky}
    load: {mode: replace_partition}
""")

LOADER = textwrap.dedent("""
    import sys
    from datetime import date
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from assets import load
    from assets.contract import load_contract
    from assets.warehouse import Warehouse

    data, n, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    contract = load_contract(data / "so_lieu_lon.yaml")
    noise = np.random.default_rng(seed).integers(0, 2**63, size=(n, 4), dtype=np.int64)
    sha = f"{seed:064x}"
    frame = pd.DataFrame({
        "ma": [f"M{seed}-{i:08d}" for i in range(n)],
        "ghi_chu": pd.Series(noise[:, 0]).astype(str) + pd.Series(noise[:, 1]).astype(str)
                   + pd.Series(noise[:, 2]).astype(str) + pd.Series(noise[:, 3]).astype(str),
        "ngay": [date(2026, 10, 1 + i % 28) for i in range(n)],
        "ky": "2026-10", "_kho_row": range(2, n + 2), "_kho_file_sha256": sha, "_kho_reasons": None,
    })
    url = sys.argv[4] if len(sys.argv) > 4 else f"sqlite:///{data / 'warehouse.sqlite'}"
    wh = Warehouse(url)
    if len(sys.argv) > 5:  # a disk that fills up: files this process writes may not grow past this many bytes
        import resource, signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[5]), int(sys.argv[5])))
    try:
        load.load_curated(wh, str(data / "lake"), contract, frame, f"load-{seed}", [{"sha256": sha, "file_name": "x"}],
                          [])
    except OSError as e:
        print("failed", e, flush=True)
        sys.exit(3)
    print("loaded", n, flush=True)
""")


def _loader(data: Path, n: int, seed: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOADER, str(data), str(n), str(seed), *extra], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_kill_9_while_the_lake_file_is_written_leaves_no_partial_file(tmp_path):
    (tmp_path / "so_lieu_lon.yaml").write_text(BIG, encoding="utf-8")
    first = _loader(tmp_path, 1000, 1)
    assert first.wait(60) == 0, first.stderr.read()
    lake = tmp_path / "lake"
    assert _lake_rows(lake, "curated", "so_lieu_lon") == 1000

    # A big replacement of the same period, killed as soon as its temporary Parquet file appears.
    victim = _loader(tmp_path, 200_000, 2)
    folder = lake / "curated" / "so_lieu_lon" / "ky=2026-10"
    deadline = time.monotonic() + 60
    while not list(folder.glob(".*.tmp")):
        assert victim.poll() is None, f"the load ended before its Parquet write: {victim.stderr.read()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL

    (tmp,) = folder.glob(".*.tmp")
    with pytest.raises(Exception):  # really half-written: not a readable Parquet file
        pq.ParquetFile(tmp).read()
    # Readers see the previous, whole file only: the temporary one is hidden and does not match *.parquet.
    assert [Path(f).name for (f,) in duckdb.sql(f"SELECT file FROM glob('{lake}/**/*.parquet')").fetchall()] \
        == ["data.parquet"]
    assert _lake_rows(lake, "curated", "so_lieu_lon") == 1000
    assert _scalar(_sqlite(tmp_path), "SELECT count(*) FROM so_lieu_lon") == 1000  # never committed

    again = _loader(tmp_path, 200_000, 2)
    assert again.wait(120) == 0, again.stderr.read()
    assert _lake_rows(lake, "curated", "so_lieu_lon") == 200_000
    assert _scalar(_sqlite(tmp_path), "SELECT count(DISTINCT ma) FROM so_lieu_lon WHERE ma LIKE 'M2-%'") == 200_000
    assert _scalar(_sqlite(tmp_path), "SELECT count(*) FROM so_lieu_lon") == 200_000
    assert not _hidden(lake)  # the killed load's temporary file is gone


@pytest.mark.postgres
def test_a_disk_filling_up_during_the_parquet_write_rolls_the_load_back(tmp_path, pg):
    """The lake's disk fills mid-write (RLIMIT_FSIZE in the loading process: EFBIG, as ENOSPC would): the load fails
    with the OS error, its SQL transaction is rolled back, the half-written file is removed, the old data stays."""
    url = pg[0]
    (tmp_path / "so_lieu_lon.yaml").write_text(BIG, encoding="utf-8")
    first = _loader(tmp_path, 1000, 1, url)
    assert first.wait(60) == 0, first.stderr.read()
    full = _loader(tmp_path, 200_000, 2, url, str(2 << 20))  # the new file needs ~10 MB; 2 MB are left
    out, err = full.communicate(timeout=120)
    assert full.returncode == 3, err[-2000:]
    assert out.startswith("failed") and "File too large" in out, out
    lake = tmp_path / "lake"
    assert _lake_rows(lake, "curated", "so_lieu_lon") == 1000 and not _hidden(lake)
    engine = sa.create_engine(url)
    assert _scalar(engine, "SELECT count(*) FROM curated.so_lieu_lon") == 1000
    assert _scalar(engine, "SELECT count(*) FROM curated.so_lieu_lon WHERE ma LIKE 'M2-%'") == 0
    engine.dispose()


def test_a_crash_after_the_sql_commit_does_not_leave_the_lake_behind(data_dir, monkeypatch):
    from assets import lake

    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    publish = lake.PendingWrite.commit

    def crash(self):  # the state a kill -9 right after the SQL commit leaves: committed rows, unpublished files
        if any("/curated/" in str(dst) for _, dst in self.moves):
            raise RuntimeError("simulated kill -9 between the SQL commit and the lake rename")
        publish(self)

    monkeypatch.setattr(lake.PendingWrite, "commit", crash)
    run_datasets(data_dir, DOSSIERS)
    monkeypatch.setattr(lake.PendingWrite, "commit", publish)
    run_datasets(data_dir, DOSSIERS)  # the next run, after the restart
    sql = _scalar(_sqlite(data_dir), "SELECT count(*) FROM ho_so_tthc")
    assert _lake_rows(data_dir / "lake", "curated", "ho_so_tthc") == sql == LOADED


# ---- the warehouse goes away ------------------------------------------------------------------------------


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL that the test controls: `refuse` resets the first n
    connections (a server not accepting yet), `stop` resets every open connection and closes the port (a server
    going down), `start` opens it again."""

    def __init__(self, target: tuple[str, int], refuse: int = 0):
        self.target, self.refuse = target, refuse
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # closed until start(): connection refused
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.refused = self.served = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.refused < self.refuse:
                self.refused += 1
                self._reset([client])
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
                self.served += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(1 << 16):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @staticmethod
    def _reset(conns: list[socket.socket]) -> None:
        for s in conns:  # shutdown first: close() alone does not wake a thread blocked in recv() on the socket
            for step in (lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
                         lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                try:
                    step()
                except OSError:
                    pass

    def stop(self) -> None:
        if self.listener is not None:
            self._reset([self.listener])
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        self._reset(conns)


@pytest.fixture
def pg(postgres_url):
    """An empty PostgreSQL warehouse; yields (url, proxy in front of it)."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        for schema in ("curated", "quarantine", "kho"):
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()
    url = sa.make_url(postgres_url)
    proxies = []

    def through_proxy(refuse: int = 0) -> tuple[str, Proxy]:
        proxy = Proxy((url.host or "127.0.0.1", url.port or 5432), refuse=refuse)
        proxies.append(proxy)
        return url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy

    yield postgres_url, through_proxy
    for proxy in proxies:
        proxy.stop()


def _run_period(data_dir: Path, url: str):
    from assets.factory import build_assets

    assets = build_assets(DOSSIERS, retry_policy=FAST_RETRY)
    return materialize(assets, partition_key="2026-10", resources=resources(data_dir, url),
                       instance=DagsterInstance.ephemeral(), raise_on_error=False)


def _retries(result) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def _check_loaded_once(url: str, lake: Path) -> None:
    engine = sa.create_engine(url)
    curated = _frame(engine, "SELECT ma_ho_so FROM curated.ho_so_tthc")
    assert len(curated) == LOADED and curated["ma_ho_so"].is_unique
    assert _scalar(engine, "SELECT count(*) FROM quarantine.ho_so_tthc") == expected_quarantine()
    log = _frame(engine, "SELECT status, rows_read, rows_loaded, rows_quarantined FROM kho.load_log")
    assert log.values.tolist() == [["loaded", READ, LOADED, expected_quarantine()]]
    engine.dispose()
    assert _lake_rows(lake, "curated", "ho_so_tthc") == LOADED
    assert _lake_rows(lake, "quarantine", "ho_so_tthc") == expected_quarantine()
    assert not _hidden(lake)


@pytest.mark.postgres
def test_warehouse_unavailable_at_the_start_is_retried_with_backoff(data_dir, pg):
    real, through_proxy = pg
    url, proxy = through_proxy(refuse=2)  # the first two connections are reset: the server is not up yet
    proxy.start()
    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    result = _run_period(data_dir, url)
    assert result.success
    assert proxy.refused == 2 and _retries(result)[:2] == ["ho_so_tthc__raw", "ho_so_tthc__raw"]
    _check_loaded_once(real, data_dir / "lake")


@pytest.mark.postgres
def test_warehouse_lost_in_the_middle_of_a_load_is_retried_without_duplicates(data_dir, pg, monkeypatch):
    real, through_proxy = pg
    url, proxy = through_proxy()
    proxy.start()
    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    marker = data_dir / "holding"
    # The curated load pauses inside its transaction (rows and load-log row written, not committed) ...
    monkeypatch.setenv("KHO_TEST_HOLD", f"curated:{marker}:1.0")

    def outage() -> None:  # ... while the database goes down for a second and comes back
        while not marker.exists():
            time.sleep(0.01)
        proxy.stop()
        time.sleep(1.0)
        proxy.start()

    threading.Thread(target=outage, daemon=True).start()
    result = _run_period(data_dir, url)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert "ho_so_tthc__curated" in _retries(result)
    _check_loaded_once(real, data_dir / "lake")


# ---- the same export twice, two exports for one period, two runs at once -----------------------------------


def test_the_same_export_dropped_twice_loads_once(data_dir):
    source = write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    (data_dir / LANDING / "ho_so_2026_10 (1).csv").write_bytes(source.read_bytes())  # a second copy, same bytes
    assert run_datasets(data_dir, DOSSIERS).success
    engine = _sqlite(data_dir)
    assert _scalar(engine, "SELECT count(*) FROM ho_so_tthc") == LOADED
    assert _scalar(engine, "SELECT count(DISTINCT ma_ho_so) FROM ho_so_tthc") == LOADED
    assert _frame(engine, "SELECT status FROM kho_load_log")["status"].tolist() == ["loaded"]
    # dropped again later, under a third name: nothing new
    (data_dir / LANDING / "ho_so_2026_10_lai.csv").write_bytes(source.read_bytes())
    assert run_datasets(data_dir, DOSSIERS).success
    assert _scalar(engine, "SELECT count(*) FROM ho_so_tthc") == LOADED
    assert _lake_rows(data_dir / "lake", "curated", "ho_so_tthc") == LOADED


def test_two_exports_for_one_period_leave_the_newest(data_dir):
    old = write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    new = write_dossiers(data_dir / LANDING / "ho_so_2026_10_sua.csv", rows=ROWS + 30, seed=8)
    os.utime(old, (time.time() - 3600,) * 2)  # the corrected export arrived later
    result = run_datasets(data_dir, DOSSIERS)
    assert result.success and len(result.results) == 1  # one run for the period
    engine = _sqlite(data_dir)
    files = _frame(engine, "SELECT DISTINCT _kho_file_sha256 AS f FROM ho_so_tthc")["f"].tolist()
    newest = _frame(engine, "SELECT sha256 FROM kho_raw_manifest WHERE file_name LIKE '%_sua.csv'")["sha256"][0]
    assert files == [newest]
    assert _scalar(engine, "SELECT count(*) FROM ho_so_tthc") == LOADED + 30
    assert _lake_rows(data_dir / "lake", "curated", "ho_so_tthc") == LOADED + 30
    assert new.exists()


def test_a_replaced_export_does_not_rerun_its_period(data_dir):
    old = write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    write_dossiers(data_dir / LANDING / "ho_so_2026_10_sua.csv", rows=ROWS + 30, seed=8)
    os.utime(old, (time.time() - 3600,) * 2)
    assert run_datasets(data_dir, DOSSIERS).success
    again = run_datasets(data_dir, DOSSIERS)
    assert again.success and again.results == []  # nothing new: no run
    # One load-log row per file, however often `kho run` runs: the replaced export says what replaced it.
    log = _frame(_sqlite(data_dir), "SELECT * FROM kho_load_log ORDER BY file_name")
    assert log["file_name"].tolist() == [str(LANDING.relative_to("landing") / n)
                                         for n in ("ho_so_2026_10.csv", "ho_so_2026_10_sua.csv")]
    assert log["status"].tolist() == ["superseded", "loaded"]
    replaced = log.iloc[0]
    assert "ho_so_2026_10_sua.csv" in replaced["message"] and replaced["partition_key"] == "2026-10"
    assert (replaced["rows_read"], replaced["rows_loaded"], replaced["rows_quarantined"]) == (0, 0, 0)
    assert replaced["load_id"] == log.iloc[1]["load_id"]  # in the load that replaced it


def test_a_replaced_export_after_sensor_runs_is_not_offered_again(data_dir):
    """Under the daemon the sensor starts a run for each new file, and both runs load the period's newest export;
    neither `kho run` nor the schedule's catch-up (`pending`) reloads the period for the older file."""
    from assets.factory import build_assets
    from pipelines.runs import pending
    from tests.conftest import resources

    old = write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    write_dossiers(data_dir / LANDING / "ho_so_2026_10_sua.csv", rows=ROWS + 30, seed=8)
    os.utime(old, (time.time() - 3600,) * 2)
    for _ in range(2):  # one run per file, as the sensor requests them
        assert materialize(build_assets(DOSSIERS), partition_key="2026-10", resources=resources(data_dir)).success
    engine = _sqlite(data_dir)
    assert _frame(engine, "SELECT DISTINCT status FROM kho_load_log")["status"].tolist() == ["loaded"]
    assert pending(DOSSIERS, resources(data_dir)["kho"]) == {}  # the schedule has nothing to catch up on
    assert _frame(engine, "SELECT status FROM kho_load_log WHERE file_name LIKE '%10.csv'")["status"].tolist() \
        == ["superseded"]
    again = run_datasets(data_dir, DOSSIERS)
    assert again.success and again.results == []
    assert _scalar(engine, "SELECT count(*) FROM ho_so_tthc") == LOADED + 30


RUNNER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from assets.contract import CONTRACTS_DIR, load_contract
    from tests.conftest import run_datasets

    go, pairs = Path(sys.argv[1]), sys.argv[2:]
    contract = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
    import great_expectations  # noqa: F401  (imported before the start line, so both runs start together)
    for i in range(0, len(pairs), 2):
        data, url = Path(pairs[i]), pairs[i + 1]
        (go / f"ready{i}-{os.getpid()}").touch()
        while not (go / f"go{i}").exists():
            time.sleep(0.002)
        result = run_datasets(data, contract, warehouse_url=url)
        print(i, "success" if result.success else "failed", flush=True)
        for e in result.all_events:
            if e.is_step_failure:
                print(e.step_failure_data.error.message, flush=True)
""")


def test_two_runs_at_once_on_one_table(tmp_path, request):
    """Two processes load the same export into one table at the same moment: SQLite, then PostgreSQL."""
    backends = {"sqlite": ""}
    try:
        backends["postgresql"] = request.getfixturevalue("pg")[0]
    except pytest.skip.Exception:  # no server here (under CI=true the fixture fails instead)
        pass
    pairs = []
    for name, url in backends.items():
        write_dossiers(tmp_path / name / LANDING / "ho_so_2026_10.csv", rows=ROWS)
        pairs += [str(tmp_path / name), url]
    go = tmp_path / "go"
    go.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen([sys.executable, "-c", RUNNER, str(go), *pairs], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for i in range(0, len(pairs), 2):  # both processes are ready: start them on the same table together
        deadline = time.monotonic() + 120
        while len(list(go.glob(f"ready{i}-*"))) < 2:
            assert all(r.poll() is None for r in runs), [r.communicate() for r in runs]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (go / f"go{i}").touch()
    outputs = [r.communicate(timeout=180) for r in runs]
    for r, (out, err) in zip(runs, outputs):
        assert r.returncode == 0, err[-3000:]
        assert [line.split()[1] for line in out.splitlines() if line[:1].isdigit()] == ["success"] * len(backends), out

    for name, url in backends.items():
        data_dir = tmp_path / name
        engine = sa.create_engine(url) if url else _sqlite(data_dir)
        table, log_table = ("curated.ho_so_tthc", "kho.load_log") if url else ("ho_so_tthc", "kho_load_log")
        assert _scalar(engine, f"SELECT count(*) FROM {table}") == LOADED, name
        assert _scalar(engine, f"SELECT count(DISTINCT ma_ho_so) FROM {table}") == LOADED, name
        log = _frame(engine, f"SELECT status, rows_loaded FROM {log_table}")
        assert set(map(tuple, log.values.tolist())) == {("loaded", LOADED)}, name
        engine.dispose()
        assert _lake_rows(data_dir / "lake", "curated", "ho_so_tthc") == LOADED, name
        assert not _hidden(data_dir / "lake"), name


def test_two_runs_archiving_the_same_exports_at_once(tmp_path):
    """The raw archive under concurrent writers: whole files only, one per content, no temporary leftovers."""
    from concurrent.futures import ThreadPoolExecutor

    from assets.raw import archive

    landing = tmp_path / "landing"
    sources = [write_dossiers(landing / "trung_tam_hcc" / "ho_so_tthc" / f"ho_so_{i}.csv", rows=60, seed=i)
               for i in range(4)]

    def one(_):
        return archive(landing, tmp_path / "raw", "trung_tam_hcc/ho_so_tthc/*.csv", "ho_so_tthc", "trung_tam_hcc")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert all([r.sha256 for r in rows] == [r.sha256 for r in results[0]] for rows in results)
    archived = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert len(archived) == len(sources) and not [p for p in archived if p.name.startswith(".")]
    assert sorted(p.read_bytes() for p in archived) == sorted(s.read_bytes() for s in sources)


# ---- a lake folder that cannot be written ------------------------------------------------------------------


def test_an_unwritable_lake_fails_clearly_and_leaves_the_warehouse_unchanged(data_dir):
    """The lake's parent is a regular file (works as root too, where chmod does not stop writes)."""
    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=ROWS)
    blocker = data_dir / "mnt"
    blocker.write_text("not a folder", encoding="utf-8")
    lake = blocker / "lake"
    from pipelines.resources import KhoResource

    res = {**resources(data_dir), "kho": KhoResource(data_dir=str(data_dir), lake_url=str(lake))}
    from assets.factory import build_assets
    from pipelines.runs import materialize_landing

    result = materialize_landing(build_assets(DOSSIERS), res, [DOSSIERS])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message if failure.step_failure_data.error else ""
    description = failure.step_failure_data.user_failure_data.description \
        if failure.step_failure_data.user_failure_data else ""
    assert str(blocker) in message + description, message + description
    engine = _sqlite(data_dir)
    inspector = sa.inspect(engine)
    for table in ("ho_so_tthc", "quarantine_ho_so_tthc"):  # nothing committed without its lake file
        assert not inspector.has_table(table) or _scalar(engine, f"SELECT count(*) FROM {table}") == 0
    assert _frame(engine, "SELECT status FROM kho_load_log WHERE status = 'loaded'").empty

    # The disk is fixed: the same export loads, warehouse and lake agree.
    blocker.unlink()
    result = materialize_landing(build_assets(DOSSIERS), res, [DOSSIERS])
    assert result.success
    assert _scalar(engine, "SELECT count(*) FROM ho_so_tthc") == LOADED == _lake_rows(lake, "curated", "ho_so_tthc")
    assert _scalar(engine, "SELECT count(*) FROM quarantine_ho_so_tthc") == expected_quarantine() \
        == _lake_rows(lake, "quarantine", "ho_so_tthc")
