"""The real Dagster UI in a real headless Chromium: open the heatmaps asset, launch the
materialization of a heatmap partition, and wait until the run succeeds.

Needs Debian's chromium (installed by `make test` as root); without it the test skips
with the reason, except under CI where it fails. Screenshots are kept in test-artifacts/.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from conftest import dagster_home_env, wait_for_runs

from scone_assets.simulate.run import simulate

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


def test_launch_a_heatmap_partition_from_the_ui(tmp_path):
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    simulate(tmp_path / "sims" / "UI", 20, survey="des", seed=3, per_file=20, jobs=1, progress=False)
    (tmp_path / "train.yml").write_text(f"input_path: {tmp_path / 'sims' / 'UI'}\n")
    home, env = dagster_home_env(tmp_path, tmp_path / "train.yml")
    subprocess.run([sys.executable, "-m", "scone_assets.cli", "register", "--config_path", str(tmp_path / "train.yml")],
                   env=env, check=True, capture_output=True)
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{base}/server_info", timeout=5).status == 200:
                    break
            except OSError:
                time.sleep(2)
        else:
            pytest.fail("dagster dev did not start within 180 s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # The first-visit newsletter dialog can open at any moment (home/.nux marks it
            # seen); should it still appear, dismiss it before whatever action it would block.
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            page.goto(f"{base}/assets/heatmaps", wait_until="networkidle", timeout=120_000)
            page.get_by_role("button", name="Materialize…").click()
            confirm = page.get_by_role("button", name="Confirm")
            confirm.wait_for(timeout=30_000)
            confirm.click()  # "upstream not materialized": heatmaps only needs snana_files for lineage
            page.get_by_role("button", name="All", exact=True).click()
            page.get_by_text("train:UI__UI-0001").first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "ui_launch_dialog.png"))
            page.get_by_role("button", name="Launch 1 run").click()

            os.environ["DAGSTER_HOME"] = str(home)
            instance = dg.DagsterInstance.get()
            [run] = wait_for_runs(instance, 1, lambda rs: rs[0].is_finished)
            page.goto(f"{base}/runs/{run.run_id}", wait_until="networkidle", timeout=120_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(ARTIFACTS / "ui_run.png"))
            browser.close()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags.get("dagster/partition") == "train:UI__UI-0001"
        assert (tmp_path / "out" / "heatmaps" / "full" / "UI__UI-0001" / "heatmaps.tfrecord").is_file()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        os.environ.pop("DAGSTER_HOME", None)
