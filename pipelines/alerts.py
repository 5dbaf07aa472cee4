"""Alerts: a failed run or a failed (non-blocking) check notifies the data team, naming the dataset, the
department, the partition, the file and the reason.

Channels come from the environment: KHO_ALERT_WEBHOOK (a JSON POST with a `text` field, as Slack, Mattermost,
Google Chat and Teams workflows accept) and e-mail over SMTP (KHO_SMTP_HOST, KHO_SMTP_PORT, KHO_SMTP_USER,
KHO_SMTP_PASSWORD, KHO_ALERT_EMAIL_TO, optional KHO_ALERT_EMAIL_FROM). KHO_DAGSTER_URL, when set, turns run ids
into links. A blocking check that fails fails its run, so it is reported once, by the run-failure sensor.
"""

from __future__ import annotations

import json
import smtplib
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email.message import EmailMessage

import sqlalchemy as sa
from dagster import (
    AssetCheckKey, ConfigurableResource, DagsterEventType, DefaultSensorStatus, RunFailureSensorContext,
    SensorEvaluationContext, SkipReason, run_failure_sensor, sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from assets.contract import Contract
from assets.periods import period_before
from pipelines.resources import KhoResource


@dataclass
class Alert:
    kind: str  # "run failed", "check failed", "data late"
    dataset: str
    department: str
    partition: str | None
    file: str | None
    reason: str
    run_id: str | None = None
    link: str | None = None

    @property
    def subject(self) -> str:
        return f"[kho] {self.dataset}{' ' + self.partition if self.partition else ''}: {self.kind}"

    @property
    def text(self) -> str:
        lines = [self.subject, f"dataset: {self.dataset}", f"department: {self.department}",
                 f"partition: {self.partition or '-'}", f"file: {self.file or '-'}", f"reason: {self.reason}"]
        return "\n".join(lines + ([f"run: {self.link or self.run_id}"] if self.run_id else []))


class Alerts(ConfigurableResource):
    """Where alerts go; every field empty means alerts only reach the sensor's log."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    email_to: str = ""  # comma-separated
    email_from: str = "kho@localhost"
    dagster_url: str = ""  # the UI's address, for links

    def send(self, alert: Alert) -> list[str]:
        """Deliver to every configured channel; raises if a configured channel failed (the tick shows it)."""
        if self.dagster_url and alert.run_id:
            alert.link = f"{self.dagster_url.rstrip('/')}/runs/{alert.run_id}"
        sent, errors = [], []
        for name, configured, deliver in (("webhook", self.webhook_url, self._webhook),
                                          ("email", self.smtp_host and self.email_to, self._email)):
            if not configured:
                continue
            try:
                deliver(alert)
                sent.append(name)
            except Exception as e:  # try the other channel before giving up
                errors.append(f"{name}: {type(e).__name__}: {e}")
        if errors:
            raise RuntimeError(f"alert not delivered ({'; '.join(errors)}): {alert.subject}")
        return sent

    def _webhook(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.text, **asdict(alert)}, ensure_ascii=False).encode()
        request = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _email(self, alert: Alert) -> None:
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = alert.subject, self.email_from, self.email_to
        msg.set_content(alert.text)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password)
            smtp.send_message(msg)


def _department(contracts: dict[str, Contract], dataset: str) -> str:
    c = contracts.get(dataset)
    return f"{c.department.name} ({c.department.code})" if c else "-"


def _files(kho: KhoResource, run_id: str, dataset: str) -> str | None:
    """The files the run took, from the load log (it names them even for runs started by hand)."""
    try:
        wh = kho.warehouse
        with wh.engine.connect() as conn:
            names = conn.execute(sa.select(wh.load_log.c.file_name).distinct().where(wh.load_log.c.load_id == run_id)
                                 .where(wh.load_log.c.dataset == dataset)).scalars().all()
    except sa.exc.SQLAlchemyError:  # no load log yet, or the warehouse is what failed
        return None
    return ", ".join(sorted(n for n in names if n)) or None


def _reasons(context: RunFailureSensorContext) -> str:
    reasons = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        text = (data.user_failure_data.description if data.user_failure_data else None) or data.error.message
        reasons.append(f"{event.step_key}: {text.strip()}")
    for entry in context.instance.all_logs(context.dagster_run.run_id,
                                           of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if not evaluation.passed:
            reasons.append(f"check {evaluation.check_name} failed: {evaluation.description}")
    return "; ".join(reasons) or context.failure_event.message or "the run failed"


def _late_period(contract: Contract | None, evaluation) -> str | None:
    """The period a failed freshness check waited for: the one that closed before the missed deadline."""
    tick = evaluation.metadata.get("dagster/latest_cron_tick_timestamp")
    if contract is None or contract.partitioning is None or tick is None:
        return None
    return period_before(contract, datetime.fromtimestamp(tick.value, timezone.utc))


def run_failure_alerts(contracts: list[Contract]):
    by_name = {c.dataset: c for c in contracts}

    @run_failure_sensor(name="alert_on_run_failure", default_status=DefaultSensorStatus.RUNNING,
                        description="Notifies the data team of every failed run (KHO_ALERT_WEBHOOK, SMTP e-mail).")
    def _sensor(context: RunFailureSensorContext, alerts: Alerts, kho: KhoResource):
        run = context.dagster_run
        tags = run.tags
        datasets = ({tags["kho/dataset"]} if "kho/dataset" in tags else
                    {k.path[0] for k in run.asset_selection or () if k.path[0] in by_name}) or {run.job_name}
        partition = tags.get("dagster/partition") or (
            f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
            if "dagster/asset_partition_range_start" in tags else None)
        reason = _reasons(context)
        for ds in sorted(datasets):
            alert = Alert("run failed", ds, _department(by_name, ds), partition,
                          _files(kho, run.run_id, ds) or tags.get("kho/file"), reason, run.run_id)
            context.log.info(f"{alert.text} -> {alerts.send(alert) or 'no channel configured'}")

    return _sensor


def check_failure_alerts(contracts: list[Contract], check_keys: list[AssetCheckKey]):
    """Failed checks that do not fail their run: freshness (late data) and any non-blocking check. One alert per
    episode: a check that fails again (every backfill run re-evaluates freshness) stays quiet until it passed."""
    by_name = {c.dataset: c for c in contracts}
    done = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}

    @sensor(name="alert_on_check_failure", minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
            description="Notifies the data team when a freshness or non-blocking check starts failing.")
    def _sensor(context: SensorEvaluationContext, alerts: Alerts):
        # The cursor is the newest check record handled; on the first tick look back one day only.
        after = int(context.cursor) if context.cursor else None
        since = time.time() - 86400
        newest, sent = after or 0, 0
        storage = context.instance.event_log_storage
        for key in check_keys:
            history = storage.get_asset_check_execution_history(key, limit=50, status=done)[::-1]  # oldest first
            for before, record in zip([None, *history], history):
                newest = max(newest, record.id)
                if (after is not None and record.id <= after) or (after is None and record.create_timestamp < since):
                    continue
                if record.status != AssetCheckExecutionRecordStatus.FAILED or (
                        before is not None and before.status == AssetCheckExecutionRecordStatus.FAILED
                        and before.partition == record.partition):
                    continue
                evaluation = record.event.dagster_event.event_specific_data
                ds = key.asset_key.path[0]
                late = "freshness" in key.name
                partition = record.partition or (_late_period(by_name.get(ds), evaluation) if late else None)
                alert = Alert("data late" if late else "check failed", ds, _department(by_name, ds), partition,
                              "no export loaded for this period" if late else None,
                              f"{key.name}: {evaluation.description}", record.run_id)
                context.log.info(f"{alert.text} -> {alerts.send(alert) or 'no channel configured'}")
                sent += 1
        context.update_cursor(str(newest))
        return None if sent else SkipReason("no check started failing")

    return _sensor
