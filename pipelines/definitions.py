"""The Dagster code location: every contract's assets, with resources and policy applied once here."""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar, FilesystemIOManager, define_asset_job

from assets.contract import load_contracts
from assets.factory import build_assets
from pipelines.resources import KhoResource, StagingIOManager, default_data_dir


def _env(name: str):
    # EnvVar keeps URLs that may hold passwords out of the UI and out of files; unset means the embedded default.
    return EnvVar(name) if os.environ.get(name) else ""


def build_definitions() -> Definitions:
    data_dir = default_data_dir()
    all_assets = [a for contract in load_contracts() for a in build_assets(contract)]
    return Definitions(
        assets=all_assets,
        jobs=[define_asset_job("load_all", selection="*", description="Every dataset, end to end")],
        resources={
            "kho": KhoResource(data_dir=data_dir, warehouse_url=_env("KHO_WAREHOUSE_URL"),
                               lake_url=_env("KHO_LAKE_URL")),
            "staging": StagingIOManager(data_dir=data_dir),
            "io_manager": FilesystemIOManager(base_dir=os.path.join(data_dir, "staging", "_dagster")),
        },
    )


defs = build_definitions()
