"""The production instance config (deploy/dagster.yaml): valid for Dagster, free of secrets, and working on a
real PostgreSQL: runs, events and the run policy (queue, per-dataset limit, one writer per table, retries)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import AssetKey, DagsterInstance
from dagster._core.instance.config import PoolGranularity, dagster_instance_config

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import write_dossiers
from assets.factory import build_assets
from pipelines.runs import materialize_landing
from tests.conftest import resources

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _env(monkeypatch, tmp_path: Path, url: str = "postgresql://kho@127.0.0.1:5432/dagster") -> None:
    u = sa.engine.make_url(url)
    for name, value in {"HOST": u.host, "PORT": str(u.port or 5432), "DB": u.database, "USER": u.username,
                        "PASSWORD": u.password or ""}.items():
        monkeypatch.setenv(f"KHO_DAGSTER_PG_{name}", value)
    monkeypatch.setenv("KHO_DAGSTER_LOGS", str(tmp_path / "logs"))


def _home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(DEPLOY / name, home / "dagster.yaml")
    return home


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.dev.yaml"])
def test_instance_configs_are_valid_and_hold_no_secret(name, tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    config, _ = dagster_instance_config(str(_home(tmp_path, name)))
    limits = config["concurrency"]
    assert limits["pools"] == {"granularity": "run", "default_limit": 1}
    assert limits["runs"]["tag_concurrency_limits"] == [
        {"key": "kho/dataset", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False

    def values(node):  # every scalar in the file, except those read from the environment
        if isinstance(node, dict):
            return [] if set(node) == {"env"} else [v for x in node.values() for v in values(x)]
        return [v for x in node for v in values(x)] if isinstance(node, list) else [node]

    raw = yaml.safe_load((DEPLOY / name).read_text())
    if "storage" in raw:
        # Host, port, database, user and password all come from the environment; only the driver is written.
        assert values(raw["storage"]) == ["postgresql+psycopg2"]


@pytest.mark.postgres
def test_production_instance_on_postgresql(postgres_url, data_dir, tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path, postgres_url)
    instance = DagsterInstance.from_config(str(_home(tmp_path, "dagster.yaml")))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        pools = instance.get_concurrency_config().pool_config
        assert (pools.pool_granularity, pools.default_pool_limit) == (PoolGranularity.RUN, 1)
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

        contract = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
        write_dossiers(data_dir / "landing/trung_tam_hcc/ho_so_tthc/ho_so_2026_09.csv", rows=100,
                       month=date(2026, 9, 1))
        runs = materialize_landing(build_assets(contract), resources(data_dir), [contract], instance=instance)
        assert runs.success
        (run,) = instance.get_runs()
        assert run.tags["dagster/partition"] == "2026-09" and run.tags["kho/dataset"] == "ho_so_tthc"
        assert instance.get_materialized_partitions(AssetKey(["ho_so_tthc", "curated"])) == {"2026-09"}
        with sa.create_engine(postgres_url).connect() as conn:  # it is really in PostgreSQL
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
    finally:
        instance.dispose()
