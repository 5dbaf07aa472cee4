"""Sources that are not files: before archiving, pull what changed into the landing folder as an export file.

A database source becomes an ordinary export this way (a snapshot file, archived by hash like any other), so
everything downstream stays one flow. Contracts whose format is a file type have nothing to pull.
"""

from __future__ import annotations

from pathlib import Path

from assets.contract import Contract


def pull(contract: Contract, landing: Path, warehouse) -> list[Path]:
    """Write new snapshot files for `contract` into `landing`; returns them (none for file formats)."""
    if contract.format.type != "sql":
        return []
    raise NotImplementedError(f"{contract.source_file}: SQL sources are not wired yet")
