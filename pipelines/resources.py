"""Resources, built in one place: where the data folder, the warehouse and the lake are.

Everything comes from the environment (Dagster `EnvVar`), with embedded defaults so a newcomer needs no server:
KHO_DATA_DIR (default ./data) holds landing/, raw/, staging/, the lake and the SQLite warehouse file.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext

from assets.warehouse import Warehouse


def default_data_dir() -> str:
    return os.environ.get("KHO_DATA_DIR", str(Path.cwd() / "data"))


class KhoResource(ConfigurableResource):
    """The data folder, the warehouse URL and the lake root."""

    data_dir: str
    warehouse_url: str = ""  # empty: SQLite file in the data folder
    lake_url: str = ""  # empty: lake/ in the data folder

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def lake(self) -> Path:
        return Path(self.lake_url) if self.lake_url else self.root / "lake"

    @property
    def lake_root(self) -> str:
        """The lake as an fsspec URL or local path: KHO_LAKE_URL may be s3://bucket/prefix (assets.lake)."""
        return self.lake_url or str(self.root / "lake")

    @property
    def docs(self) -> Path:
        return self.root / "data_docs"

    @cached_property
    def warehouse(self) -> Warehouse:
        url = self.warehouse_url or f"sqlite:///{self.root / 'warehouse.sqlite'}"
        self.root.mkdir(parents=True, exist_ok=True)
        return Warehouse(url)


class StagingIOManager(ConfigurableIOManager):
    """Hands a step's table to the next step as Parquet under <data>/staging/: one file per asset and partition,
    so runs of different periods of one dataset never read each other's tables."""

    data_dir: str

    def _path(self, context) -> Path:
        base = Path(self.data_dir, "staging", *context.asset_key.path)
        if not context.has_asset_partitions:
            return base.with_suffix(".parquet")
        r = context.asset_partition_key_range
        return base / f"{r.start if r.start == r.end else f'{r.start}...{r.end}'}.parquet"

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        obj.to_parquet(tmp, index=False, compression="zstd")
        tmp.replace(path)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        return pd.read_parquet(self._path(context))
