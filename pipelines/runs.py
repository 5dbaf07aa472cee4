"""What is waiting in the landing folders, and running it in-process: one run per dataset partition.

`kho run`, `kho demo` and the tests use this. Under the daemon the landing sensors (`pipelines.sensors`) do the
same, one run per new file; both map a file to its partition with `assets.periods`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import sqlalchemy as sa
from dagster import AssetsDefinition, DagsterInstance, materialize

from assets.contract import Contract
from assets.factory import file_key, files_partitions, partitions_def
from assets.load import recover
from assets.periods import file_period
from assets.raw import archive
from pipelines.resources import KhoResource


@dataclass
class Runs:
    """Several in-process runs seen as one: succeeded only if every run did."""

    results: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # files left waiting, and why

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def all_events(self) -> list:
        return [e for r in self.results for e in r.all_events]

    def get_asset_materialization_events(self) -> list:
        return [e for r in self.results for e in r.get_asset_materialization_events()]

    def get_asset_check_evaluations(self) -> list:
        return [e for r in self.results for e in r.get_asset_check_evaluations()]


def pending(contract: Contract, kho: KhoResource) -> dict[str | None, list[dict]]:
    """Partition -> landing files not loaded (or failed) yet. A SQL source without periods: {None: []}, since
    its run pulls whatever is new."""
    parts = partitions_def(contract)
    if parts is None:
        return {None: []}
    files = archive(kho.landing, kho.raw, contract.landing, contract.dataset, contract.department.code)
    wh = kho.warehouse
    wh.create(wh.load_log)
    with wh.engine.connect() as conn:
        ended = set(conn.execute(sa.select(wh.load_log.c.file_sha256).where(wh.load_log.c.dataset == contract.dataset)
                                 .where(wh.load_log.c.status.in_(["loaded", "failed"]))).scalars())
    out: dict[str | None, list[dict]] = {}
    for f in {f.sha256: asdict(f) for f in reversed(files)}.values():
        if f["sha256"] in ended:
            continue
        key = (file_period(contract, f["archive_path"], f["file_name"], f["received_at"],
                           cache=kho.root / "staging" / "periods", sha256=f["sha256"])
               if contract.partitioning else file_key(f["sha256"]))
        out.setdefault(key, []).append(f)
    return dict(sorted(out.items()))


def materialize_landing(assets: list, resources: dict, contracts, instance: DagsterInstance | None = None,
                        run_config: dict | None = None, others: bool = True) -> Runs:
    """One run per contract partition with new files, then (others=True) every asset outside the contracts."""
    instance = instance or DagsterInstance.ephemeral()
    # Outside a run Dagster has not resolved EnvVar fields (KHO_WAREHOUSE_URL): resolve them here.
    kho: KhoResource = resources["kho"].process_config_and_initialize()
    defs = [a for a in assets if isinstance(a, AssetsDefinition)]
    runs, datasets = Runs(), {c.dataset for c in contracts}
    for contract in contracts:  # a run with no new files starts no run: publish what a crashed load left here
        recover(kho.warehouse, kho.lake_root, contract)
    for contract in contracts:
        mine = [a for a in defs if a.key.path[0] == contract.dataset]
        parts = partitions_def(contract)
        for key, files in pending(contract, kho).items():
            if parts is not None and contract.partitioning and not parts.has_partition_key(key):
                runs.notes.append(f"{contract.dataset}: {', '.join(f['file_name'] for f in files)} waits for "
                                  f"period {key} to close (or lies before {contract.partitioning.start})")
                continue
            if parts is not None and not contract.partitioning:
                instance.add_dynamic_partitions(files_partitions(contract), [key])
            runs.results.append(materialize(
                mine, partition_key=key, resources=resources, instance=instance, raise_on_error=False,
                run_config=run_config, tags={"kho/dataset": contract.dataset,
                                             "kho/file": ", ".join(f["file_name"] for f in files)[:200]}))
    rest = [a for a in defs if a.key.path[0] not in datasets and a.partitions_def is None]
    if others and rest:
        runs.results.append(materialize(rest, resources=resources, instance=instance, raise_on_error=False,
                                        run_config=run_config))
    return runs
