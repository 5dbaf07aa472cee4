"""Schedules, on Asia/Ho_Chi_Minh time, an hour before each contract's freshness deadline.

A SQL source is pulled on its schedule (nothing is dropped, so no sensor sees it). For files the landing sensor
does the work; the schedule only catches up on a closed period whose files are waiting unloaded (the daemon
was down, the sensor was stopped), and otherwise skips, leaving a late export to the freshness check.
"""

from __future__ import annotations

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from assets.contract import Contract
from assets.periods import TZ, period_before
from pipelines.resources import KhoResource
from pipelines.runs import pending

DEFAULT_CRON = {"month": "0 6 1 * *", "day": "0 6 * * *", None: "0 6 * * *"}


def hour_before(cron: str) -> str:
    """'0 9 5 * *' -> '0 8 5 * *'; a cron whose hour is not one plain number (or is 0) is kept as it is."""
    fields = cron.split()
    if len(fields) == 5 and fields[1].isdigit() and int(fields[1]) > 0:
        fields[1] = str(int(fields[1]) - 1)
    return " ".join(fields)


def cron_for(contract: Contract) -> str:
    if contract.freshness:
        return hour_before(contract.freshness.cron)
    return DEFAULT_CRON[contract.partitioning.grain if contract.partitioning else None]


def deadline_schedule(contract: Contract, job):
    """None for a contract whose files arrive irregularly (one partition per file): its sensor is enough."""
    if not contract.partitioning and contract.format.type != "sql":
        return None
    ds, sql = contract.dataset, contract.format.type == "sql"

    @schedule(name=f"schedule_{ds}", cron_schedule=cron_for(contract), execution_timezone=TZ, job=job,
              default_status=DefaultScheduleStatus.RUNNING,
              description=("Pull the source" if sql else "Catch up on the last closed period's waiting files")
              + f" before the deadline ({contract.freshness.cron if contract.freshness else 'none'}, {TZ}).")
    def _schedule(context: ScheduleEvaluationContext, kho: KhoResource):
        tags = {"kho/dataset": ds, "kho/department": contract.department.code}
        if not contract.partitioning:
            return RunRequest(tags=tags)
        period = period_before(contract, context.scheduled_execution_time)
        if sql:
            return RunRequest(run_key=period, partition_key=period, tags=tags)
        files = pending(contract, kho).get(period)
        if not files:
            return SkipReason(f"nothing waiting for {period}: loaded already, or not arrived (see its freshness check)")
        return RunRequest(run_key=period + ":" + ",".join(sorted(f["sha256"][:12] for f in files)),
                          partition_key=period, tags={**tags, "kho/file": ", ".join(f["file_name"] for f in files)})

    return _schedule
