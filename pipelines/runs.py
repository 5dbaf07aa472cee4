"""What is waiting in the landing folders, and running it in-process: one run per dataset partition.

`kho run`, `kho demo` and the tests use this. Under the daemon the landing sensors (`pipelines.sensors`) do the
same, one run per new file; both map a file to its partition with `assets.periods`.

Where a period's newest export replaces the period (load modes replace, replace_partition), a period's run loads
only its newest file (assets.factory). An older file of the period is then not waiting any more: `pending` leaves
it out and gives it a load-log row of its own, status `superseded`, naming the export that replaced it. That holds
whichever way the newer export was loaded: by `kho run`, or by a run the sensor started for either file.
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

ENDED = ("loaded", "failed", "superseded")  # a file with one of these in the load log is not offered again
REPLACING = ("replace", "replace_partition")  # load modes where a period's newest export replaces the period


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
    its run pulls whatever is new. Files a later export of their period has replaced are not waiting: they get
    their `superseded` load-log row here (see the module's docstring)."""
    landing = _landing(contract, kho)
    return {None: []} if landing is None else _pending(contract, kho, landing, {})


def _landing(contract: Contract, kho: KhoResource) -> list[dict] | None:
    """The manifest rows of the distinct exports in the landing folder (the same bytes twice: the first name);
    None for a SQL source without periods."""
    if partitions_def(contract) is None:
        return None
    files = archive(kho.landing, kho.raw, contract.landing, contract.dataset, contract.department.code)
    return list({f.sha256: asdict(f) for f in reversed(files)}.values())


def _arrival(f: dict) -> tuple:
    return f["received_at"], f["file_name"]  # as assets.factory orders a period's files: the last one is loaded


def _pending(contract: Contract, kho: KhoResource, landing: list[dict], keys: dict[str, str]
             ) -> dict[str | None, list[dict]]:
    """`pending` on a landing listing; `keys` caches each file's partition (sha256 -> key) between calls."""
    wh, log = kho.warehouse, kho.warehouse.load_log
    wh.create(log)
    with wh.engine.connect() as conn:
        rows = conn.execute(sa.select(log.c.file_sha256, log.c.status, log.c.load_id, log.c.finished_at)
                            .where(log.c.dataset == contract.dataset).where(log.c.status.in_(ENDED))
                            .order_by(log.c.finished_at)).all()
    ended = {r.file_sha256 for r in rows}
    failed = {r.file_sha256 for r in rows if r.status == "failed"}  # never taken again (assets.factory)
    loaded = {r.file_sha256: r for r in rows if r.status == "loaded" and r.file_sha256 not in failed}  # last load

    def key(f: dict) -> str:
        if f["sha256"] not in keys:
            keys[f["sha256"]] = (file_period(contract, f["archive_path"], f["file_name"], f["received_at"],
                                             cache=kho.root / "staging" / "periods", sha256=f["sha256"])
                                 if contract.partitioning else file_key(f["sha256"]))
        return keys[f["sha256"]]

    out: dict[str | None, list[dict]] = {}
    for f in landing:
        if f["sha256"] not in ended:
            out.setdefault(key(f), []).append(f)
    if out and contract.partitioning and contract.load.mode in REPLACING:
        first = min(_arrival(f) for group in out.values() for f in group)
        newest: dict[str, dict] = {}  # period -> its latest export already loaded (only later ones can replace)
        for f in landing:
            if f["sha256"] in loaded and _arrival(f) > first and key(f) in out:
                if key(f) not in newest or _arrival(f) > _arrival(newest[key(f)]):
                    newest[key(f)] = f
        replaced = []
        for period, by in newest.items():
            replaced += [_superseded(contract, f, by, period, loaded[by["sha256"]])
                         for f in out[period] if _arrival(f) < _arrival(by)]
            out[period] = [f for f in out[period] if _arrival(f) > _arrival(by)]
            if not out[period]:
                del out[period]
        if replaced:
            with wh.transaction() as conn:
                conn.execute(log.delete().where(log.c.dataset == contract.dataset).where(log.c.status == "superseded")
                             .where(log.c.file_sha256.in_([r["file_sha256"] for r in replaced])))
                conn.execute(log.insert(), replaced)
    return dict(sorted(out.items()))


def _superseded(contract: Contract, f: dict, by: dict, period: str, load) -> dict:
    """The load-log row of a file `by`, a later export of its period, replaced: stamped with that load."""
    return {
        "load_id": load.load_id, "dataset": contract.dataset, "department": contract.department.code,
        "partition_key": period, "file_name": f["file_name"], "file_sha256": f["sha256"],
        "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0, "check_outcome": None, "status": "superseded",
        "message": f"not loaded: replaced by {by['file_name']} (sha256 {by['sha256'][:12]}), a later export of "
                   f"period {period} ({contract.load.mode} loads only a period's newest export)",
        "started_at": load.finished_at, "finished_at": load.finished_at,
    }


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
        landing, keys = _landing(contract, kho), {}
        todo = {None: []} if landing is None else _pending(contract, kho, landing, keys)
        ran = len(runs.results)
        for key, files in todo.items():
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
        if landing and len(runs.results) > ran and contract.load.mode in REPLACING:
            _pending(contract, kho, landing, keys)  # the files these runs' loads replaced get their rows now
    rest = [a for a in defs if a.key.path[0] not in datasets and a.partitions_def is None]
    if others and rest:
        runs.results.append(materialize(rest, resources=resources, instance=instance, raise_on_error=False,
                                        run_config=run_config))
    return runs
