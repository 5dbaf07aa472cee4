"""Freshness: each contract's `freshness.cron` says when its department's data is due (Asia/Ho_Chi_Minh time).

Late data shows as a failed freshness check on the dataset's curated table. For reporting periods the check
asks for the exact period that closed before the deadline (build_time_partition_freshness_checks): Dagster
1.13's asset-level FreshnessPolicy only looks at the newest materialisation of any partition, so a backfill of
an old month would make it look fresh. Files without periods: updated since the previous deadline.
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetsDefinition, DefaultSensorStatus, SupersessionWarning, build_last_update_freshness_checks,
    build_sensor_for_freshness_checks, build_time_partition_freshness_checks,
)
from dagster._utils.schedules import get_smallest_cron_interval  # pinned dagster 1.13.27

from assets.contract import Contract
from assets.periods import TZ


def freshness_checks(contract: Contract, curated: AssetsDefinition) -> list:
    if not contract.freshness:
        return []
    cron = contract.freshness.cron
    with warnings.catch_warnings():  # superseded, not deprecated: still the only per-partition freshness check
        warnings.simplefilter("ignore", SupersessionWarning)
        if contract.partitioning:
            return list(build_time_partition_freshness_checks(assets=[curated], deadline_cron=cron, timezone=TZ))
        return list(build_last_update_freshness_checks(
            assets=[curated], deadline_cron=cron, timezone=TZ,
            lower_bound_delta=get_smallest_cron_interval(cron, TZ)))


def freshness_sensor(checks: list):
    """Evaluates the checks when a deadline passes; a failed check waits for the next load to re-run it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_sensor_for_freshness_checks(freshness_checks=checks, minimum_interval_seconds=300,
                                                 default_status=DefaultSensorStatus.RUNNING)
