"""Resources, built in one place: where the data folder, the warehouse and the lake are.

Everything comes from the environment (Dagster `EnvVar`), with embedded defaults so a newcomer needs no server:
KHO_DATA_DIR (default ./data) holds landing/, raw/, staging/, the lake and the SQLite warehouse file.
"""

from __future__ import annotations

import os
import shutil
from functools import cached_property
from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext

from assets.batches import Staged
from assets.warehouse import Warehouse


WORK = "_work"  # under staging/: the files steps are writing


def sweep(folder: Path, instance) -> None:
    """Remove the work files of runs this Dagster instance knows to be finished.

    They hold personal data as departments sent it, so they do not outlive their run. A file whose run the
    instance does not know (another instance sharing the data folder) is left alone: it may still be written."""
    finished: dict[str, bool] = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        run_id = path.name.lstrip(".")[:36]  # <run id>-<asset>..., or a Writer's .<name>.<hex>.tmp
        if run_id not in finished:
            run = instance.get_run_by_id(run_id) if len(run_id) == 36 else None
            finished[run_id] = run is not None and run.is_finished
        if finished[run_id]:
            path.unlink(missing_ok=True)


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

    def work_file(self, context) -> Path:
        """Where a step writes its rows during a run; the staging IO manager then moves the file into place.
        What steps of finished runs left there (a step that failed after writing) is removed first."""
        folder = self.root / "staging" / WORK
        sweep(folder, context.instance)
        return folder / f"{context.run.run_id}-{context.asset_key.to_python_identifier()}.parquet"

    @cached_property
    def warehouse(self) -> Warehouse:
        url = self.warehouse_url or f"sqlite:///{self.root / 'warehouse.sqlite'}"
        self.root.mkdir(parents=True, exist_ok=True)
        return Warehouse(url)


class StagingIOManager(ConfigurableIOManager):
    """Hands a step's table to the next step as Parquet under <data>/staging/: one file per asset and partition,
    so runs of different periods of one dataset never read each other's tables. A step that wrote its rows
    itself, a slice at a time (`assets.batches.Staged`), has its file moved into place; a step that takes a
    Staged input reads it a slice at a time too."""

    data_dir: str

    def _path(self, context) -> Path:
        base = Path(self.data_dir, "staging", *context.asset_key.path)
        if not context.has_asset_partitions:
            return base.with_suffix(".parquet")
        r = context.asset_partition_key_range
        return base / f"{r.start if r.start == r.end else f'{r.start}...{r.end}'}.parquet"

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | Staged) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        overlay = _overlay(path)
        if isinstance(obj, Staged):
            self._place(obj.path, path)
            if obj.overlay:
                self._place(obj.overlay, overlay)
                return
        else:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            obj.to_parquet(tmp, index=False, compression="zstd")
            tmp.replace(path)
        overlay.unlink(missing_ok=True)

    def _place(self, source: Path, target: Path) -> None:
        """A file the step wrote is moved into place; an input handed on (the cleaned rows under validation's
        reasons) is linked, or copied: files here are replaced, never changed, so a link stays what it was."""
        if source.parent == Path(self.data_dir, "staging", WORK):
            os.replace(source, target)
            return
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        tmp.replace(target)

    def load_input(self, context: InputContext) -> pd.DataFrame | Staged:
        path = self._path(context)
        if context.dagster_type.typing_type is Staged:
            overlay = _overlay(path)
            return Staged(path, overlay if overlay.exists() else None)
        return pd.read_parquet(path)


def _overlay(path: Path) -> Path:
    return path.with_name(path.stem + ".overlay.parquet")
