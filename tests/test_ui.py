"""The real Dagster UI in a real headless Chromium: a trained model version's page shows its
ROC curve, and a heatmap partition launched from its named job's page runs under that name.

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


def _wait_for_server(base: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/server_info", timeout=5).status == 200:
                return
        except OSError:
            time.sleep(2)
    pytest.fail(f"dagster dev did not start within {timeout:.0f} s")


def test_model_page_shows_its_pictures_and_a_named_job_launches_from_the_ui(tmp_path):
    """A real model version trained on a real instance: its page shows the ROC curve drawn, with
    no click; then a heatmaps partition is launched from its named job's page, and the run
    carries that job's name (not Dagster's unnamed asset job)."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    from scone_assets.definitions import build_defs
    from scone_assets.defs.demo import register_partitions

    simulate(tmp_path / "sims" / "UI", 200, survey="des", seed=3, per_file=100, mix="SNIa=0.5,SNII=0.5",
             jobs=1, progress=False)
    (tmp_path / "train.yml").write_text(f"input_path: {tmp_path / 'sims' / 'UI'}\nnum_epochs: 3\nseed: 1\n")
    home, env = dagster_home_env(tmp_path, tmp_path / "train.yml")
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    defs = build_defs(str(tmp_path / "train.yml"), None, env["SCONE_OUTPUT_ROOT"], jobs=1)
    os.environ["DAGSTER_HOME"] = str(home)  # the instance's dagster.yaml names its storage by it
    with dg.DagsterInstance.get() as instance:
        register_partitions(instance, {"train": ["UI-0001", "UI-0002"]})
        assert defs.resolve_job_def("training_heatmaps_job").execute_in_process(
            instance=instance, partition_key="UI-0001").success
        # three epochs: the accuracy floor may block promotion; the version and its pictures exist
        defs.resolve_job_def("train_job").execute_in_process(instance=instance, raise_on_error=False)
        version = instance.get_latest_materialization_event(dg.AssetKey("trained_model"))
        assert version.asset_materialization.metadata["version"].value == "v0001"
    os.environ.pop("DAGSTER_HOME")
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _wait_for_server(base)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # The first-visit newsletter dialog can open at any moment (home/.nux marks it
            # seen); should it still appear, dismiss it before whatever action it would block.
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            page.goto(f"{base}/assets/trained_model", wait_until="networkidle", timeout=120_000)
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

            page.goto(f"{base}/locations/scone_assets/jobs/training_heatmaps_job", wait_until="networkidle",
                      timeout=120_000)
            page.get_by_role("button", name="Materialize all…").click()
            page.get_by_text("Partition selection").wait_for(timeout=30_000)
            page.get_by_role("button", name="Missing", exact=True).click()  # UI-0002 alone
            try:
                page.get_by_text("1 partition", exact=True).wait_for(timeout=30_000)
            finally:
                page.screenshot(path=str(ARTIFACTS / "ui_launch_dialog.png"))
            page.get_by_role("button", name="Launch 1 run").click()

            os.environ["DAGSTER_HOME"] = str(home)
            instance = dg.DagsterInstance.get()
            run = wait_for_runs(instance, 1, lambda rs: rs[0].is_finished and
                                rs[0].tags.get("dagster/partition") == "UI-0002")[0]
            page.goto(f"{base}/runs/{run.run_id}", wait_until="networkidle", timeout=120_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(ARTIFACTS / "ui_run.png"))
            browser.close()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.job_name == "training_heatmaps_job"
        assert (tmp_path / "out" / "heatmaps" / "full" / "UI-0002" / "heatmaps.tfrecord").is_file()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        os.environ.pop("DAGSTER_HOME", None)
