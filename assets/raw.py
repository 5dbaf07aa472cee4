"""Raw archive: the exact bytes of every export, content-addressed by sha256, never changed or deleted.

Hostile landing folders are refused, not followed: a symbolic link anywhere under the landing folder, a pattern
or path that leaves it, or something that is not a regular file. Each file is opened once without following links,
and the bytes hashed are the bytes archived (hash and copy in one pass from one descriptor), so a file replaced or
still being written while it is archived can never put other bytes under its hash. Two runs archiving the same
file at once each write their own temporary file; the rename into place is atomic, so the archive only ever
holds whole files.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from assets.errors import ExportError

BLOCK = 1 << 20
# Office and editors leave these beside the real exports; they are never exports themselves.
_NOT_EXPORTS = (".", "~$")


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


def _check_pattern(landing: Path, pattern: str) -> None:
    parts = pattern.replace("\\", "/").split("/")
    if not pattern or Path(pattern).is_absolute() or pattern.startswith(("/", "\\", "~")) or ".." in parts:
        raise ExportError(str(landing / pattern), "the landing pattern must stay inside the landing folder "
                          "(a relative pattern without '..')", "contract landing")


def _safe_files(landing: Path, pattern: str) -> list[Path]:
    """Landing files matching the contract's glob; symlinks and paths escaping the folder are refused."""
    _check_pattern(landing, pattern)
    root = landing.resolve()
    files = []
    for path in sorted(landing.glob(pattern)):
        rel = path.relative_to(landing)
        # the file itself or any folder between it and the landing folder
        for part in [landing / p for p in reversed(rel.parents) if str(p) != "."] + [path]:
            if part.is_symlink():
                raise ExportError(str(path), "symbolic links are not accepted in the landing folder",
                                  f"link {part.relative_to(landing)}")
        if not path.resolve().is_relative_to(root):
            raise ExportError(str(path), "path leaves the landing folder")
        if path.is_file() and not path.name.startswith(_NOT_EXPORTS):
            files.append(path)
    return files


def _copy(path: Path, raw_root: Path) -> tuple[str, int, float, Path]:
    """(sha256, size, mtime, archived path) of one landing file, read once through one descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:  # ELOOP: it became a symlink since it was listed
        raise ExportError(str(path), f"cannot open the file ({e.strerror})") from None
    with os.fdopen(fd, "rb") as src:
        before = os.fstat(src.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise ExportError(str(path), "not a regular file (a device, pipe or socket) in the landing folder")
        raw_root.mkdir(parents=True, exist_ok=True)
        tmp = raw_root / f".{uuid.uuid4().hex}.part"  # own name per writer: two runs may archive one file at once
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as out:
                while block := src.read(BLOCK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            after = os.fstat(src.fileno())
            if size != after.st_size or (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
                raise ExportError(str(path), "the file changed while it was being archived (still being written?); "
                                  "it will be read again on the next run")
            sha = digest.hexdigest()
            target = raw_root / sha[:2] / sha
            if target.exists():
                tmp.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)  # archived bytes are never changed
                os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return sha, size, before.st_mtime, target


def archive(landing: Path, raw_root: Path, pattern: str, dataset: str, department: str) -> list[RawFile]:
    """Copy each landing file into the archive under its hash (once) and return its manifest row."""
    rows = []
    for path in _safe_files(landing, pattern):
        sha, size, mtime, target = _copy(path, raw_root)
        rows.append(RawFile(
            dataset=dataset, department=department, file_name=str(path.relative_to(landing)),
            size=size, sha256=sha, received_at=datetime.fromtimestamp(mtime, tz=timezone.utc),
            archive_path=str(target),
        ))
    return rows
