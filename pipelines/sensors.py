"""One sensor per landing folder: a run for each new export file, exactly once.

The run key is the file's sha256 and the cursor keeps every hash already requested, so the same bytes dropped
twice, or copied under another name, never load twice, while changed bytes under the same name do. Both survive
a restart: the cursor lives in Dagster's storage, and Dagster skips a run key it has seen even without it.
The cursor also caches (size, mtime) -> hash per file name, so unchanged files are not hashed on every tick.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from dagster import (
    AddDynamicPartitionsRequest, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason,
    sensor,
)

from assets.contract import Contract
from assets.factory import file_key, files_partitions, partitions_def
from assets.periods import file_period
from pipelines.resources import KhoResource

SETTLE_SECONDS = 60  # a file still changing (an upload in progress) waits for a later tick


def landing_files(landing: Path, pattern: str) -> list[Path]:
    """Regular files under the contract's glob; symlinks and hidden files are left to the raw step to refuse."""
    root = landing.resolve()
    return [p for p in sorted(landing.glob(pattern))
            if p.is_file() and not p.is_symlink() and not p.name.startswith((".", "~$"))  # ~$: Office lock files
            and p.resolve().is_relative_to(root)]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def landing_sensor(contract: Contract, job):
    ds, dept = contract.dataset, contract.department.code
    parts = partitions_def(contract)

    @sensor(name=f"landing_{ds}", job=job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
            description=f"A run of {job.name} for each new file in landing/{contract.landing}, once per sha256.")
    def _sensor(context: SensorEvaluationContext, kho: KhoResource):
        state = json.loads(context.cursor) if context.cursor else {}
        seen, cache = set(state.get("seen", [])), state.get("stat", {})
        stat, requests, new_keys, waiting = {}, [], [], []
        for path in landing_files(kho.landing, contract.landing):
            st, name = path.stat(), str(path.relative_to(kho.landing))
            if time.time() - st.st_mtime < SETTLE_SECONDS:
                continue
            known = cache.get(name)
            sha = known[2] if known and known[:2] == [st.st_size, st.st_mtime_ns] else sha256(path)
            stat[name] = [st.st_size, st.st_mtime_ns, sha]
            if sha in seen:
                continue
            if contract.partitioning:
                key = file_period(contract, path, name, datetime.fromtimestamp(st.st_mtime, timezone.utc),
                                  cache=kho.root / "staging" / "periods", sha256=sha)
                if not parts.has_partition_key(key):  # the period has not closed yet: ask again later
                    waiting.append(f"{name} ({key})")
                    continue
            else:
                key = file_key(sha)
                new_keys.append(key)
            seen.add(sha)
            requests.append(RunRequest(run_key=sha, partition_key=key, tags={
                "kho/dataset": ds, "kho/department": dept, "kho/file": name, "kho/sha256": sha}))
        if waiting:
            context.log.info(f"waiting for their period to close: {', '.join(waiting)}")
        return SensorResult(
            run_requests=requests, cursor=json.dumps({"seen": sorted(seen), "stat": stat}),
            dynamic_partitions_requests=[AddDynamicPartitionsRequest(files_partitions(contract), new_keys)]
            if new_keys else None,
            skip_reason=None if requests else SkipReason(f"no new file in landing/{contract.landing}"),
        )

    return _sensor
