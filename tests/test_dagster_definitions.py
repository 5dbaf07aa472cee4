"""The code location as Dagster loads it: a wiring mistake fails here, not in a 2 a.m. run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, Backoff, DynamicPartitionsDefinition, EnvVar, TimeWindowPartitionsDefinition

from assets.contract import load_contracts
from pipelines.definitions import build_definitions
from pipelines.policy import AUTOMATION

REPO = Path(__file__).resolve().parent.parent
DEFS = build_definitions()
ASSETS = {k: a for a in DEFS.assets for k in a.keys}
CONTRACTS = {c.dataset: c for c in load_contracts()}


def _spec(*path: str):
    key = AssetKey(list(path))
    return ASSETS[key].specs_by_key[key]


def test_every_contract_becomes_four_assets_with_ui_metadata():
    for ds, contract in CONTRACTS.items():
        dept = contract.department.code
        for step in ("raw", "clean", "validated", "curated"):
            spec = _spec(ds, step)
            assert spec.group_name == dept and spec.owners == [f"team:{dept}"], (ds, step)
            assert spec.code_version and spec.tags["department"] == dept
        curated = _spec(ds, "curated")
        assert contract.description.strip() in curated.description
        assert {"parquet", "sqlite"} <= curated.kinds
        columns = {c.name: c.description for c in curated.metadata["dagster/column_schema"].columns}
        assert {n: columns[n].removesuffix(" (dữ liệu cá nhân)") for n in contract.columns} == {
            n: c.description for n, c in contract.columns.items()}  # Vietnamese, from the contract
        lineage = curated.metadata["dagster/column_lineage"].deps_by_column
        assert {d.asset_key for deps in lineage.values() for d in deps} == {AssetKey([ds, "validated"])}
    assert _spec("ho_so_tthc", "raw").kinds == {"csv"}
    assert _spec("dang_ky_doanh_nghiep", "raw").kinds == {"excel", "xlsx"}
    # Column lineage starts at the headers departments write in their exports.
    clean = _spec("ho_so_tthc", "clean").metadata["dagster/column_lineage"].deps_by_column
    (dep,) = clean["ma_ho_so"]
    assert (dep.asset_key, dep.column_name) == (AssetKey(["ho_so_tthc", "raw"]), "Mã hồ sơ")
    assert [d.column_name for d in clean["ky"]] == ["Ngày tiếp nhận"]


def test_partitions_per_contract():
    monthly = _spec("ho_so_tthc", "curated").partitions_def
    assert isinstance(monthly, TimeWindowPartitionsDefinition)
    assert (monthly.timezone, monthly.fmt, monthly.cron_schedule) == ("Asia/Ho_Chi_Minh", "%Y-%m", "0 0 1 * *")
    assert monthly.get_first_partition_key() == "2020-01"
    files = _spec("co_so_y_te", "raw").partitions_def  # irregular drops: a partition per received file
    assert isinstance(files, DynamicPartitionsDefinition) and files.name == "co_so_y_te_files"
    assert _spec("giay_phep_xay_dung", "raw").partitions_def is None  # pulled from a database
    check = next(s for s in ASSETS[AssetKey(["ho_so_tthc", "validated"])].check_specs)
    assert check.blocking and check.partitions_def == monthly  # a failed check blocks that period only


def test_policy_applied_to_every_dataset_step():
    for ds in CONTRACTS:
        for step in ("raw", "clean", "validated", "curated"):
            op = ASSETS[AssetKey([ds, step])].op
            assert op.retry_policy.backoff == Backoff.EXPONENTIAL and op.retry_policy.max_retries == 3
            assert op.pool == f"kho.{CONTRACTS[ds].table}"
        assert _spec(ds, "raw").automation_condition is None  # started by its sensor or schedule
        for step in ("clean", "validated", "curated"):
            condition = _spec(ds, step).automation_condition
            assert condition == AUTOMATION and "all_deps_blocking_checks_passed" in str(condition)


def test_jobs_sensors_schedules_checks_and_dimensions():
    jobs = {j.name for j in DEFS.jobs}
    assert {f"load_{ds}" for ds in CONTRACTS} | {"dimensions"} <= jobs
    sensors = {s.name for s in DEFS.sensors}
    files = {ds for ds, c in CONTRACTS.items() if c.format.type != "sql"}
    assert {f"landing_{ds}" for ds in files} | {"alert_on_run_failure", "alert_on_check_failure",
                                                "freshness_checks_sensor"} == sensors
    for schedule in DEFS.schedules:
        assert schedule.execution_timezone == "Asia/Ho_Chi_Minh"
    fresh = {k.asset_key.path[0] for c in DEFS.asset_checks for k in c.check_keys}
    assert fresh == {ds for ds, c in CONTRACTS.items() if c.freshness}
    dimensions = [k for k in ASSETS if k.path[0] == "danh_muc"]
    assert AssetKey(["danh_muc", "dm_don_vi_hanh_chinh"]) in dimensions
    assert all(_spec(*k.path).automation_condition is not None for k in dimensions)
    assert set(DEFS.resources) >= {"kho", "staging", "io_manager", "alerts"}


def test_secrets_stay_in_the_environment(monkeypatch):
    monkeypatch.setenv("KHO_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("KHO_ALERT_WEBHOOK", "https://hooks.example/abc")
    alerts = build_definitions().resources["alerts"]
    # The resource holds the variable's name; Dagster reads the value only when a run or sensor needs it.
    assert isinstance(alerts.smtp_password, EnvVar) and alerts.smtp_password == "KHO_SMTP_PASSWORD"
    assert isinstance(alerts.webhook_url, EnvVar) and "s3cret" not in repr(alerts)


def test_the_code_location_loads_fast_without_great_expectations_and_validates():
    probe = ("import sys, time; t = time.perf_counter(); import pipelines.definitions; "
             "print(time.perf_counter() - t, 'great_expectations' in sys.modules)")
    seconds, gx = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                                 check=True).stdout.split()
    assert gx == "False" and float(seconds) < 15  # ~2-3 s on an idle machine; generous for a busy CI box
    validate = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                               "-w", "workspace.yaml"], cwd=REPO, capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-2000:]
