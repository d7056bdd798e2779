"""The real Dagster UI in a real headless Chromium on the instance `make demo` made: the
promoted model's page shows its ROC curve, and a partition launched from its named job's page
runs under that name.

Needs Debian's chromium (installed by `make test` as root); without it the test skips
with the reason, except under CI where it fails. Screenshots are kept in test-artifacts/.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from conftest import wait_for_runs

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the UI test, but chromium is not installed (scripts/system_deps.sh)")
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(base: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/server_info", timeout=5).status == 200:
                return
        except OSError:
            time.sleep(2)
    pytest.fail(f"the UI did not start within {timeout:.0f} s")


def test_after_make_demo_the_ui_shows_the_model_and_launches_named_jobs(demo, tmp_path):
    """`make demo`, then `make ui` (its command, with the demo's ui.env): the promoted model's
    page shows its ROC curve drawn, with no click; a survey partition launched from its named
    job's page runs under that name (not Dagster's unnamed asset job)."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    out, ui_env, _ = demo
    home = Path(ui_env["DAGSTER_HOME"])
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    env = os.environ | ui_env | {"SCONE_JOBS": "1"}
    port = _free_port()
    console = tmp_path / "make_ui.log"
    with console.open("w") as log:  # `make ui`'s command, from the repository root
        server = subprocess.Popen([str(Path(sys.executable).parent / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        before = len(instance.get_runs())
        _wait_for_server(base)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # The first-visit newsletter dialog can open at any moment (home/.nux marks it
            # seen); should it still appear, dismiss it before whatever action it would block.
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            page.goto(f"{base}/assets/promoted_model", wait_until="networkidle", timeout=120_000)
            roc = page.locator('img[alt="ROC curve"]').first
            try:
                roc.wait_for(state="visible", timeout=60_000)
                # naturalWidth stays 0 until the picture is fetched and decoded (or when broken)
                page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=roc.element_handle(),
                                       timeout=30_000)
                roc.scroll_into_view_if_needed()
                width = roc.evaluate("i => i.naturalWidth")
            finally:
                page.screenshot(path=str(ARTIFACTS / "ui_model_page.png"))
            assert width > 200
            assert page.get_by_text("v0001").first.is_visible()
            # a partition's details name the job that made it
            page.goto(f"{base}/assets/survey_heatmaps?view=partitions&partition=DEMO_SURVEY-0001",
                      wait_until="networkidle", timeout=120_000)
            try:
                page.get_by_text("survey_heatmaps_job").first.wait_for(timeout=30_000)
            finally:
                page.screenshot(path=str(ARTIFACTS / "ui_partition.png"))

            page.goto(f"{base}/locations/scone_assets/jobs/survey_heatmaps_job", wait_until="networkidle",
                      timeout=120_000)
            page.get_by_role("button", name="Materialize all…").click()
            page.get_by_text("Partition selection").wait_for(timeout=30_000)
            page.get_by_role("button", name="All", exact=True).click()  # DEMO_SURVEY-0001 alone
            try:
                page.get_by_role("dialog").get_by_text("1 partition", exact=True).wait_for(timeout=30_000)
            finally:
                page.screenshot(path=str(ARTIFACTS / "ui_launch_dialog.png"))
            page.get_by_role("button", name="Launch 1 run").click()

            [run] = wait_for_runs(instance, 1, lambda rs: len(instance.get_runs()) > before and rs[0].is_finished)
            page.goto(f"{base}/runs/{run.run_id}", wait_until="networkidle", timeout=120_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(ARTIFACTS / "ui_run.png"))
            browser.close()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.job_name == "survey_heatmaps_job" and run.tags["dagster/partition"] == "DEMO_SURVEY-0001"
        assert any("light curves," in (e.message or "") and "ETA" in (e.message or "")
                   for e in instance.all_logs(run.run_id))  # its progress, in the run log
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # fail, but leave no webserver, daemon or code server behind
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            raise
    # a quiet console: no telemetry banner, no warning about configuration it ignores or
    # superseded commands, no error lines
    text = console.read_text()
    assert "Serving dagster-webserver" in text, text[-3000:]
    for noise in ("Telemetry:", "usage statistics", "in the current folder, but your DAGSTER_HOME", "superseded",
                  "E0000", "Traceback"):
        assert noise not in text, f"{noise!r} in the console of make ui:\n{text[-3000:]}"
