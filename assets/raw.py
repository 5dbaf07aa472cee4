"""Raw archive: the exact bytes of every export, content-addressed by sha256, never changed or deleted."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from assets.errors import ExportError


@dataclass(frozen=True)
class RawFile:
    """A manifest row: one received export."""

    dataset: str
    department: str
    file_name: str  # as it arrived, relative to the landing folder
    size: int
    sha256: str
    received_at: datetime  # UTC
    archive_path: str


def _safe_files(landing: Path, pattern: str) -> list[Path]:
    """Landing files matching the contract's glob; symlinks and paths escaping the folder are refused."""
    root = landing.resolve()
    files = []
    for path in sorted(landing.glob(pattern)):
        if path.is_symlink():
            raise ExportError(str(path), "symbolic links are not accepted in the landing folder")
        if not path.resolve().is_relative_to(root):
            raise ExportError(str(path), "path leaves the landing folder")
        if path.is_file() and not path.name.startswith("."):
            files.append(path)
    return files


def archive(landing: Path, raw_root: Path, pattern: str, dataset: str, department: str) -> list[RawFile]:
    """Copy each landing file into the archive under its hash (once) and return its manifest row."""
    rows = []
    for path in _safe_files(landing, pattern):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        sha = digest.hexdigest()
        target = raw_root / sha[:2] / sha
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            shutil.copyfile(path, tmp)
            os.chmod(tmp, 0o444)  # archived bytes are never changed
            tmp.replace(target)
        rows.append(RawFile(
            dataset=dataset, department=department, file_name=str(path.relative_to(landing)),
            size=path.stat().st_size, sha256=sha,
            received_at=datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc), archive_path=str(target),
        ))
    return rows
