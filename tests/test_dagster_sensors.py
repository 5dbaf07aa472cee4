"""Landing sensors and deadline schedules, evaluated tick by tick with Dagster's test contexts."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance, SensorResult, build_schedule_context, build_sensor_context

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import write_dossiers
from pipelines.definitions import build_definitions
from pipelines.resources import KhoResource
from pipelines.schedules import cron_for, hour_before
from pipelines.sensors import SETTLE_SECONDS

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")  # monthly reporting periods
FACILITIES = load_contract(CONTRACTS_DIR / "co_so_y_te.yaml")  # no periods: one partition per file
PERMITS = load_contract(CONTRACTS_DIR / "giay_phep_xay_dung.yaml")  # a SQL source
LANDING = Path("landing/trung_tam_hcc/ho_so_tthc")


DEFS = build_definitions()  # the real code location: its sensors, schedules and jobs


class Ticks:
    """Evaluates a sensor as the daemon does: each tick gets the cursor the previous one left."""

    def __init__(self, contract, data_dir: Path, instance=None):
        self.sensor = DEFS.resolve_sensor_def(f"landing_{contract.dataset}")
        self.data_dir, self.instance, self.cursor = data_dir, instance, None

    def tick(self) -> SensorResult:
        context = build_sensor_context(cursor=self.cursor, instance=self.instance,
                                       resources={"kho": KhoResource(data_dir=str(self.data_dir))})
        result = self.sensor(context)
        self.cursor = result.cursor
        return result


def _settled(path: Path) -> Path:
    """As if the upload finished a while ago."""
    past = time.time() - SETTLE_SECONDS - 5
    os.utime(path, (past, past))
    return path


def _drop(data_dir: Path, name: str, content: bytes) -> Path:
    path = data_dir / LANDING / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return _settled(path)


def test_each_file_is_requested_exactly_once(data_dir):
    ticks = Ticks(DOSSIERS, data_dir)
    first = _drop(data_dir, "ho_so_2026_10.csv", b"Ma ho so\nHS-1\n")

    (request,) = ticks.tick().run_requests  # dropped once -> one run, for the period its name states
    assert request.partition_key == "2026-10"
    assert request.tags["kho/file"] == "trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv"
    assert request.run_key == request.tags["kho/sha256"] and len(request.run_key) == 64

    assert ticks.tick().run_requests == []  # nothing new
    shutil.copy(first, first.with_name("ho_so_2026_10 (1).csv"))  # a renamed copy: the same bytes
    _settled(first.with_name("ho_so_2026_10 (1).csv"))
    assert ticks.tick().run_requests == []
    first.unlink()
    _drop(data_dir, "ho_so_2026_10.csv", b"Ma ho so\nHS-1\n")  # the same file dropped again
    assert ticks.tick().run_requests == []

    _drop(data_dir, "ho_so_2026_10.csv", b"Ma ho so\nHS-1\nHS-2\n")  # changed contents, same name
    (changed,) = ticks.tick().run_requests
    assert changed.partition_key == "2026-10" and changed.run_key != request.run_key
    assert ticks.tick().run_requests == []


def test_the_cursor_survives_a_restart(data_dir):
    _drop(data_dir, "ho_so_2026_09.csv", b"a\n1\n")
    before = Ticks(DOSSIERS, data_dir)
    assert len(before.tick().run_requests) == 1
    saved = json.loads(before.cursor)  # what Dagster stores between ticks
    assert len(saved["seen"]) == 1 and "trung_tam_hcc/ho_so_tthc/ho_so_2026_09.csv" in saved["stat"]

    after = Ticks(DOSSIERS, data_dir)  # a new process: a fresh sensor object, the stored cursor
    after.cursor = before.cursor
    assert after.tick().run_requests == []
    _drop(data_dir, "ho_so_2026_08.csv", b"b\n2\n")
    assert [r.partition_key for r in after.tick().run_requests] == ["2026-08"]


def test_a_file_still_being_written_waits(data_dir):
    ticks = Ticks(DOSSIERS, data_dir)
    path = data_dir / LANDING / "ho_so_2026_07.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half an upl")
    assert ticks.tick().run_requests == []
    _settled(path)
    assert len(ticks.tick().run_requests) == 1


def test_period_from_rows_when_the_name_has_none_and_open_periods_wait(data_dir):
    ticks = Ticks(DOSSIERS, data_dir)
    _settled(write_dossiers(data_dir / LANDING / "ho_so.csv", rows=60, month=date(2026, 8, 1)))
    local = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    _drop(data_dir, f"ho_so_{local:%Y_%m}.csv", b"x\n1\n")  # this month has not closed: no partition yet
    (request,) = ticks.tick().run_requests
    assert request.partition_key == "2026-08" and request.tags["kho/file"].endswith("ho_so.csv")
    assert ticks.tick().run_requests == []  # the open period's file stays waiting, unseen


def test_files_without_periods_get_a_dynamic_partition_each(data_dir):
    ticks = Ticks(FACILITIES, data_dir, instance=DagsterInstance.ephemeral())
    folder = data_dir / "landing/so_y_te/co_so_y_te"
    folder.mkdir(parents=True)
    for name, body in (("ds_1.csv", b"one"), ("ds_2.csv", b"two"), ("ds_2_copy.csv", b"two")):
        (folder / name).write_bytes(body)
        _settled(folder / name)
    result = ticks.tick()
    keys = sorted(r.partition_key for r in result.run_requests)
    assert len(keys) == 2 and all(len(k) == 16 for k in keys)
    (added,) = result.dynamic_partitions_requests
    assert added.partitions_def_name == "co_so_y_te_files" and sorted(added.partition_keys) == keys
    assert ticks.tick().run_requests == []


def test_deadline_schedules_run_on_hcmc_time(data_dir):
    assert hour_before("0 9 5 * *") == "0 8 5 * *" and hour_before("0 0 * * *") == "0 0 * * *"
    assert cron_for(DOSSIERS) == "0 8 5 * *"
    names = {s.name for s in DEFS.schedules}
    assert "schedule_co_so_y_te" not in names  # irregular drops: its sensor is enough
    assert "landing_giay_phep_xay_dung" not in {s.name for s in DEFS.sensors}  # a database drops no files

    schedule = DEFS.resolve_schedule_def("schedule_ho_so_tthc")
    assert schedule.execution_timezone == "Asia/Ho_Chi_Minh" and schedule.cron_schedule == "0 8 5 * *"
    tick = datetime(2026, 11, 5, 8, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    kho = KhoResource(data_dir=str(data_dir))

    def evaluate(name):
        return DEFS.resolve_schedule_def(name).evaluate_tick(build_schedule_context(
            scheduled_execution_time=tick, resources={"kho": kho}, repository_def=DEFS.get_repository_def()))

    assert evaluate("schedule_ho_so_tthc").skip_message.startswith("nothing waiting for 2026-10")
    write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=30)
    (request,) = evaluate("schedule_ho_so_tthc").run_requests  # the sensor was down: catch up on October
    assert request.partition_key == "2026-10"

    assert DEFS.resolve_schedule_def("schedule_giay_phep_xay_dung").cron_schedule == "0 6 * * *"
    (pull,) = evaluate("schedule_giay_phep_xay_dung").run_requests  # a database is pulled every day
    assert pull.partition_key is None


@pytest.mark.parametrize("name, period", [
    ("ho_so_2026_10.csv", "2026-10"), ("HS-202609-final.csv", "2026-09"), ("bao_cao_2026-08-31.csv", "2026-08"),
    ("ho_so_v2.csv", None), ("ma_12026109.csv", None),
])
def test_period_in_a_file_name(name, period):
    from assets.periods import period_from_name

    assert period_from_name(DOSSIERS, name) == period
