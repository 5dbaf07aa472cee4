"""As a user would: the real Dagster webserver on a free port, driven through its GraphQL API (and, where
Chromium is installed, the asset graph page loaded headless). The server process is always killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assets.demo.dossiers import expected_quarantine, write_dossiers
from tests.conftest import TEST_KEY

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
ROWS = 400
READ = ROWS + 4  # the demo appends 3 exact repeats and 1 conflicting twin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """dagster-webserver against a temporary DAGSTER_HOME and KHO_DATA_DIR holding the demo export."""
    tmp_path = tmp_path_factory.mktemp("webserver")
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    # No daemon in this test: runs launch straight from the webserver, and no sensor fires on its own.
    (home / "dagster.yaml").write_text("run_coordinator:\n  module: dagster._core.run_coordinator\n"
                                       "  class: DefaultRunCoordinator\ntelemetry:\n  enabled: false\n")
    write_dossiers(data / "landing/trung_tam_hcc/ho_so_tthc/ho_so_2026_10.csv", rows=ROWS)
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "KHO_DATA_DIR": str(data), "KHO_PSEUDONYM_KEY": TEST_KEY}
    log = (tmp_path / "webserver.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            try:
                located = _graphql(url, "{ workspaceOrError { ... on Workspace { locationEntries {"
                                        " locationOrLoadError { __typename } } } } }")
                entries = located["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["locationOrLoadError"]:
                    assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the webserver did not load the code location in 60 s"
            time.sleep(0.5)
        yield url, data
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its code server and run processes
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

MATERIALIZATIONS = """
query($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        partition runId
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""


def test_a_dataset_runs_through_the_webserver(webserver):
    url, data = webserver
    launched = _graphql(url, LAUNCH, {"params": {
        "selector": {"repositoryLocationName": "kho", "repositoryName": "__repository__",
                     "jobName": "load_ho_so_tthc"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2026-10"}]},
        # One process for the run instead of one per step (the UI's default): ~20 s instead of ~70 s here.
        "runConfigData": {"execution": {"config": {"in_process": {}}}},
    }})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline, status = time.monotonic() + 75, None
    while status not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run {run_id} still {status} after 75 s"
        time.sleep(1)
        status = _graphql(url, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                          {"id": run_id})["runOrError"]["status"]
    assert status == "SUCCESS"

    found = _graphql(url, MATERIALIZATIONS, {"key": {"path": ["ho_so_tthc", "curated"]}})
    (latest,) = found["assetOrError"]["assetMaterializations"]
    assert latest["runId"] == run_id and latest["partition"] == "2026-10"
    values = {e["label"]: e.get("intValue") for e in latest["metadataEntries"]}
    assert values["rows_quarantined"] == expected_quarantine()
    assert values["dagster/row_count"] == READ - expected_quarantine()



def _rendered(url: str) -> str:
    """The DOM after the UI's JavaScript ran, as headless Chromium renders it."""
    page = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=20000",
         "--dump-dom", url], capture_output=True, text=True, timeout=60)
    return page.stdout


@pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                    reason=f"{CHROMIUM} is not installed (.ci/run installs it)")
def test_the_asset_graph_renders_in_a_browser(webserver):
    url, _ = webserver
    graph = _rendered(f"{url}/asset-groups")  # the global asset graph: one group per department
    for group in ("trung_tam_hcc", "so_y_te", "so_tai_chinh", "danh_muc"):
        assert group in graph, graph[-2000:]
