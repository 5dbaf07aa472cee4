"""Run policy decided once for every dataset: retries, automation, pools, time zone.

A transient fault (the warehouse is restarting, a lock, a network blip) is retried with exponential backoff;
anything else is a data or code fault that a retry cannot fix, so it fails at once (`Failure(allow_retries=False)`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from dagster import AutomationCondition, Backoff, DagsterError, Failure, Jitter, RetryPolicy, RetryRequested

TZ = "Asia/Ho_Chi_Minh"

# Waits of 30 s, 90 s, 210 s (delay * (2**n - 1), +/- jitter): a database failover or restart fits in them.
RETRY = RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

# Database unavailable or locked, connection dropped, pool exhausted, network timeouts. Loads run on ADBC
# (assets.session), whose drivers raise their own DB-API OperationalError (libpq "server closed the connection",
# "Failed to connect", SQLite "database is locked"): as transient as SQLAlchemy's.
try:
    from adbc_driver_manager import OperationalError as _AdbcOperationalError
except ImportError:  # pragma: no cover - ADBC is pinned in pyproject.toml
    _AdbcOperationalError = sa.exc.OperationalError
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, _AdbcOperationalError,
             ConnectionError, TimeoutError)

# A step runs when its inputs changed, never past a failed blocking check: eager() alone ignores blocking checks.
AUTOMATION = AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()


def pool(table: str) -> str:
    """One pool per warehouse table; with a limit of 1 (deploy/dagster.yaml) two runs never write it at once."""
    return f"kho.{table}"


@contextmanager
def faults(what: str) -> Iterator[None]:
    """Let transient faults through to the RetryPolicy; turn every other exception into a final failure."""
    try:
        yield
    except (Failure, RetryRequested, DagsterError, *TRANSIENT):  # these decide for themselves
        raise
    except Exception as e:
        raise Failure(description=f"{what}: {type(e).__name__}: {e}", allow_retries=False) from e
