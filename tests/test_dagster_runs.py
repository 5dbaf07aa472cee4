"""Running for real: automation blocked by a failed GX check, backfills over periods, re-running failed
partitions, retries of transient faults only. Real files, a real warehouse, a persistent Dagster instance."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import (
    AssetKey, AutomationCondition, Backoff, DagsterEventType, Definitions, PartitionKeyRange, RetryPolicy,
    evaluate_automation_conditions, instance_for_test, map_asset_specs, materialize,
)
from dagster._core.storage.partition_status_cache import AssetPartitionStatus

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import expected_quarantine, write_dossiers
from assets.factory import build_assets, partitions_def
from tests.conftest import resources

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
LANDING = Path("landing/trung_tam_hcc/ho_so_tthc")
ROWS = 100  # the demo seeds 18 bad rows: keep them under the contract's 25% limit
CURATED, VALIDATED = AssetKey(["ho_so_tthc", "curated"]), AssetKey(["ho_so_tthc", "validated"])


def _export(data_dir: Path, period: str, bad: bool = False) -> Path:
    """The month's export, named by its period; `bad`: half its rows carry an impossible date (> the 25% limit)."""
    path = write_dossiers(data_dir / LANDING / f"ho_so_{period.replace('-', '_')}.csv", rows=ROWS,
                          month=date(int(period[:4]), int(period[5:7]), 1))
    if bad:
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        frame.loc[frame.index[: len(frame) // 2], "Ngày tiếp nhận"] = "32/01/2026"
        path.write_bytes(frame.to_csv(index=False).encode("utf-8-sig"))
    return path


def _curated(data_dir: Path) -> pd.DataFrame:
    with sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}").connect() as conn:
        return pd.DataFrame(conn.execute(sa.text("SELECT ky, _kho_load_id FROM ho_so_tthc")).mappings().all())


def test_a_failed_gx_check_blocks_downstream_until_fixed(data_dir):
    assets = build_assets(DOSSIERS)
    # eager() alone is the known trap: it would load a batch whose blocking check failed.
    naive = map_asset_specs(lambda s: s.replace_attributes(automation_condition=AutomationCondition.eager()), assets)
    period = partitions_def(DOSSIERS).get_last_partition_key()  # eager() looks at the latest period only

    def evaluate(assets, instance, cursor=None):  # one tick of the automation sensor
        return evaluate_automation_conditions(Definitions(assets=assets, resources=resources(data_dir)), instance,
                                              cursor=cursor)

    with instance_for_test() as instance:
        ours, trap = (evaluate(a, instance) for a in (assets, naive))

        _export(data_dir, period, bad=True)
        failed = materialize(assets, partition_key=period, resources=resources(data_dir), instance=instance,
                             raise_on_error=False)
        assert not failed.success
        (check,) = failed.get_asset_check_evaluations()
        assert not check.passed and check.partition == period  # the check result belongs to the period
        assert CURATED not in {e.asset_key for e in failed.get_asset_materialization_events()}

        ours = evaluate(assets, instance, ours.cursor)
        assert ours.get_requested_partitions(CURATED) == set()  # held back by the failed check
        trap = evaluate(naive, instance, trap.cursor)
        assert trap.get_requested_partitions(CURATED) == {period}

        _export(data_dir, period)  # the department sends a corrected file
        fixed = materialize(assets, partition_key=period, resources=resources(data_dir), instance=instance,
                            selection=[a.key for a in assets if a.key != CURATED])
        assert [c.passed for c in fixed.get_asset_check_evaluations()] == [True]
        ours = evaluate(assets, instance, ours.cursor)
        assert ours.get_requested_partitions(CURATED) == {period}  # now it flows downstream


def test_backfill_three_periods_then_rerun_only_the_failed_one(data_dir):
    """What the backfill daemon does for a range: one run per period (multi-run backfill policy)."""
    assets, parts = build_assets(DOSSIERS), partitions_def(DOSSIERS)
    periods = parts.get_partition_keys_in_range(PartitionKeyRange("2026-06", "2026-08"))
    assert periods == ["2026-06", "2026-07", "2026-08"]
    for period in periods:
        _export(data_dir, period, bad=period == "2026-07")
    with instance_for_test() as instance:
        runs = {p: materialize(assets, partition_key=p, resources=resources(data_dir), instance=instance,
                               raise_on_error=False, tags={"dagster/backfill": "test"}) for p in periods}
        assert {p for p, r in runs.items() if r.success} == {"2026-06", "2026-08"}
        assert instance.get_materialized_partitions(CURATED) == {"2026-06", "2026-08"}
        assert sorted(set(_curated(data_dir)["ky"])) == ["2026-06", "2026-08"]

        # Re-run only the failed partitions, as the UI's "failed and missing" backfill does.
        status = instance.get_status_by_partition(CURATED, periods, parts)
        assert status["2026-07"] == AssetPartitionStatus.FAILED
        failed = [p for p in periods if status[p] == AssetPartitionStatus.FAILED]
        _export(data_dir, "2026-07")
        loads_before = set(_curated(data_dir)["_kho_load_id"])
        for period in failed:
            assert materialize(assets, partition_key=period, resources=resources(data_dir), instance=instance).success
        assert instance.get_materialized_partitions(CURATED) == set(periods)
        curated = _curated(data_dir)
        assert curated.groupby("ky").size().to_dict() == {p: ROWS + 4 - expected_quarantine() for p in periods}
        assert set(curated["_kho_load_id"]) - loads_before == {runs_id(instance, "2026-07")}


def runs_id(instance, period: str) -> str:
    """The run that last materialised the period's curated table."""
    (record,) = instance.fetch_materializations(CURATED, limit=1).records
    assert record.partition_key == period
    return record.run_id


def test_transient_faults_are_retried_with_backoff_data_faults_are_not(data_dir):
    fast = RetryPolicy(max_retries=2, delay=0.2, backoff=Backoff.EXPONENTIAL)
    raw = [a for a in build_assets(DOSSIERS, retry_policy=fast) if a.key.path[-1] == "raw"]
    _export(data_dir, "2026-05")
    down = resources(data_dir, warehouse_url="postgresql+psycopg://kho@127.0.0.1:1/kho")  # nothing listens there
    with instance_for_test() as instance:
        result = materialize(raw, partition_key="2026-05", resources=down, instance=instance, raise_on_error=False)
        assert not result.success
        retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
        assert len(retries) == 2  # OperationalError: the database is unavailable -> retried, then given up
        waits = [e.event_specific_data.seconds_to_wait for e in retries]
        assert waits == pytest.approx([0.2, 0.6])  # exponential backoff: delay * (2**n - 1)

        # No export for the period is a data fault: it fails at once, never retried.
        empty = materialize(raw, partition_key="2026-04", resources=resources(data_dir), instance=instance,
                            raise_on_error=False)
        assert not empty.success
        assert not [e for e in empty.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
        failure = next(e for e in empty.all_events if e.is_step_failure)
        assert "no export for 2026-04" in failure.step_failure_data.user_failure_data.description
