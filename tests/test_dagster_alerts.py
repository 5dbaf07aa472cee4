"""Alerts and freshness: a failed run and late data reach a real webhook (http.server on 127.0.0.1) and a real
SMTP listener, both started here, naming the dataset, department, partition, file and reason."""

from __future__ import annotations

import email
import http.server
import json
import socketserver
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from dagster import (
    AssetSelection, DagsterEventType, build_run_status_sensor_context, build_sensor_context, instance_for_test,
    materialize,
)
from dagster._utils.schedules import get_latest_completed_cron_tick

from assets.contract import CONTRACTS_DIR, load_contract
from assets.demo.dossiers import write_dossiers
from assets.factory import build_assets
from assets.periods import period_before
from pipelines.alerts import Alerts
from pipelines.definitions import build_definitions
from pipelines.resources import KhoResource
from pipelines.runs import materialize_landing
from tests.conftest import resources

DOSSIERS = load_contract(CONTRACTS_DIR / "ho_so_tthc.yaml")
LANDING = Path("landing/trung_tam_hcc/ho_so_tthc")
DEFS = build_definitions()


class _Webhook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept a message: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self):
        def say(text: str) -> None:
            self.wfile.write(text.encode() + b"\r\n")

        say("220 kho-test")
        data = None
        for line in iter(self.rfile.readline, b""):
            if data is not None:
                if line.rstrip(b"\r\n") == b".":
                    self.server.received.append(email.message_from_bytes(b"".join(data)))
                    data = None
                    say("250 queued")
                else:
                    data.append(line)
                continue
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"EHLO":
                say("250-kho-test")
                say("250 8BITMIME")
            elif verb == b"DATA":
                data = []
                say("354 end with .")
            elif verb == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")


@pytest.fixture
def channels():
    """A webhook and an SMTP server on free local ports; yields (Alerts resource, posts, mails)."""
    web = http.server.HTTPServer(("127.0.0.1", 0), _Webhook)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    web.received, smtp.received = [], []
    for server in (web, smtp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    alerts = Alerts(webhook_url=f"http://127.0.0.1:{web.server_address[1]}/hook", smtp_host="127.0.0.1",
                    smtp_port=smtp.server_address[1], email_to="du-lieu@kho.test", dagster_url="http://kho.test")
    try:
        yield alerts, web.received, smtp.received
    finally:
        for server in (web, smtp):
            server.shutdown()
            server.server_close()


def test_a_failed_run_alerts_on_every_channel(data_dir, channels):
    alerts, posts, mails = channels
    path = write_dossiers(data_dir / LANDING / "ho_so_2026_10.csv", rows=100)
    frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    frame.loc[frame.index[:60], "Ngày tiếp nhận"] = "32/10/2026"  # most rows unreadable: the GX check fails
    path.write_bytes(frame.to_csv(index=False).encode("utf-8-sig"))
    with instance_for_test() as instance:
        runs = materialize_landing(build_assets(DOSSIERS), resources(data_dir), [DOSSIERS], instance=instance)
        (result,) = runs.results
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
        context = build_run_status_sensor_context(
            sensor_name="alert_on_run_failure", dagster_instance=instance, dagster_event=failure,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"alerts": alerts, "kho": KhoResource(data_dir=str(data_dir))}).for_run_failure()
        DEFS.resolve_sensor_def("alert_on_run_failure")(context)

    (post,) = posts
    assert post["kind"] == "run failed" and post["dataset"] == "ho_so_tthc" and post["partition"] == "2026-10"
    assert post["department"] == "Trung tâm Phục vụ hành chính công Thành phố Hồ Chí Minh (trung_tam_hcc)"
    assert post["file"] == "trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv"
    assert "above the contract's limit of 25%" in post["reason"] and "gx_suite" in post["reason"]
    assert post["link"] == f"http://kho.test/runs/{result.run_id}" and post["text"].startswith(
        "[kho] ho_so_tthc 2026-10: run failed")
    (mail,) = mails
    assert mail["Subject"] == "[kho] ho_so_tthc 2026-10: run failed" and mail["To"] == "du-lieu@kho.test"
    body = mail.get_payload(decode=True).decode()
    assert "file: trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv" in body and "Trung tâm Phục vụ" in body


def test_late_data_fails_its_freshness_check_and_alerts_once(data_dir, channels):
    alerts, posts, mails = channels
    (check,) = [c for c in DEFS.asset_checks if any(k.asset_key.path == ["ho_so_tthc", "curated"]
                                                     for k in c.check_keys)]
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    due = period_before(DOSSIERS, get_latest_completed_cron_tick("0 9 5 * *", now, "Asia/Ho_Chi_Minh"))
    assets = build_assets(DOSSIERS)

    def run_check(instance):
        result = materialize([*assets, check], selection=AssetSelection.checks(check), instance=instance,
                             resources=resources(data_dir))
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    def tick(instance, cursor=None):
        context = build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts})
        DEFS.resolve_sensor_def("alert_on_check_failure")(context)
        return context.cursor

    with instance_for_test() as instance:
        # An older period arriving does not make the due one fresh: the check is per partition.
        write_dossiers(data_dir / LANDING / "ho_so_2026_01.csv", rows=100, month=datetime(2026, 1, 1).date())
        materialize_landing(assets, resources(data_dir), [DOSSIERS], instance=instance)
        late = run_check(instance)
        assert not late.passed and f"expected partition {due}" in late.description
        cursor = tick(instance)
        (post,) = posts
        assert (post["kind"], post["dataset"], post["partition"]) == ("data late", "ho_so_tthc", due)
        assert "Trung tâm Phục vụ hành chính công" in post["department"] and "overdue" in post["reason"]
        assert len(mails) == 1
        cursor = tick(instance, cursor)
        assert len(posts) == 1  # one alert per failure, not one per tick
        assert not run_check(instance).passed  # evaluated again (a backfill run does): still the same episode
        cursor = tick(instance, cursor)
        assert len(posts) == 1

        y, m = map(int, due.split("-"))
        write_dossiers(data_dir / LANDING / f"ho_so_{y}_{m:02d}.csv", rows=100, month=datetime(y, m, 1).date())
        assert materialize_landing(assets, resources(data_dir), [DOSSIERS], instance=instance).success
        assert run_check(instance).passed
        tick(instance, cursor)
        assert len(posts) == 1 and len(mails) == 1  # fresh again: nothing to say
