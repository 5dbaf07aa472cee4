"""The Dagster code location: every contract's assets, with resources and policy applied once here.

Per contract: its four assets (partitioned by reporting period or by received file, assets.factory), a job, a
landing sensor, a schedule before its deadline, a freshness check. Once for all: the shared dimension tables,
the analysts' assets, alert sensors, resources and the executor. Nothing here imports great_expectations.
"""

from __future__ import annotations

import os

from dagster import (
    AssetSelection, AutomationCondition, Definitions, EnvVar, ExecutorDefinition, FilesystemIOManager,
    define_asset_job, map_asset_specs, multi_or_in_process_executor,
)

from assets.analysts import build_analyst_assets
from assets.contract import load_contracts
from assets.dimensions import build_dimension_assets
from assets.factory import build_assets
from pipelines.alerts import Alerts, check_failure_alerts, run_failure_alerts
from pipelines.freshness import freshness_checks, freshness_sensor
from pipelines.resources import KhoResource, StagingIOManager, default_data_dir
from pipelines.schedules import deadline_schedule
from pipelines.sensors import landing_sensor

# Reference tables change only with the code: build them when missing and again when their sources change.
DIMENSION_AUTOMATION = AutomationCondition.on_missing() | AutomationCondition.code_version_changed()


def _env(name: str, default=""):
    # EnvVar keeps URLs and passwords out of the UI and out of files; unset means the embedded default.
    return EnvVar(name) if os.environ.get(name) else default


def alerts_resource() -> Alerts:
    return Alerts(
        webhook_url=_env("KHO_ALERT_WEBHOOK"), smtp_host=_env("KHO_SMTP_HOST"),
        smtp_port=EnvVar.int("KHO_SMTP_PORT") if os.environ.get("KHO_SMTP_PORT") else 587,
        smtp_user=_env("KHO_SMTP_USER"), smtp_password=_env("KHO_SMTP_PASSWORD"),
        email_to=_env("KHO_ALERT_EMAIL_TO"), email_from=_env("KHO_ALERT_EMAIL_FROM", "kho@localhost"),
        dagster_url=_env("KHO_DAGSTER_URL"),
    )


def executor() -> ExecutorDefinition:
    """One process per step on this machine (a run may ask for `in_process`); KHO_EXECUTOR=k8s or celery spreads
    steps over a cluster and needs dagster-k8s / dagster-celery 0.29.27 installed (deploy/k8s, deploy/celery)."""
    kind = os.environ.get("KHO_EXECUTOR", "multiprocess")
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured({"max_concurrent": 4, "env_secrets": ["kho-env"]})
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured({"broker": {"env": "KHO_CELERY_BROKER"},
                                           "backend": {"env": "KHO_CELERY_BACKEND"}})
    return multi_or_in_process_executor


def build_definitions() -> Definitions:
    data_dir = default_data_dir()
    contracts = load_contracts()
    assets, checks, jobs, schedules, sensors = [], [], [], [], []
    for contract in contracts:
        mine = build_assets(contract)
        dept = contract.department
        job = define_asset_job(
            f"load_{contract.dataset}", selection=AssetSelection.assets(*mine),
            tags={"kho/dataset": contract.dataset, "kho/department": dept.code},
            description=f"{contract.title} ({dept.name}): raw -> clean -> validated -> curated")
        assets += mine
        jobs.append(job)
        if contract.format.type != "sql":  # departments drop files: watch the folder (a database is pulled)
            sensors.append(landing_sensor(contract, job))
        if schedule := deadline_schedule(contract, job):
            schedules.append(schedule)
        checks += freshness_checks(contract, mine[-1])
    dimensions = map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=DIMENSION_AUTOMATION),
                                 build_dimension_assets())
    jobs.append(define_asset_job("dimensions", selection=AssetSelection.assets(*dimensions),
                                 description="Shared dimension tables (danh mục dùng chung)"))
    assets += dimensions
    assets += build_analyst_assets(contracts)  # marts, data dictionary, open data (assets.analysts)
    sensors += [
        freshness_sensor(checks),
        run_failure_alerts(contracts),
        check_failure_alerts(contracts, [spec.key for c in checks for spec in c.check_specs]),
    ]
    return Definitions(
        assets=assets, asset_checks=checks, jobs=jobs, schedules=schedules, sensors=sensors,
        executor=executor(),
        resources={
            "kho": KhoResource(data_dir=data_dir, warehouse_url=_env("KHO_WAREHOUSE_URL"),
                               lake_url=_env("KHO_LAKE_URL")),
            "staging": StagingIOManager(data_dir=data_dir),
            "io_manager": FilesystemIOManager(base_dir=os.path.join(data_dir, "staging", "_dagster")),
            "alerts": alerts_resource(),
        },
    )


defs = build_definitions()
