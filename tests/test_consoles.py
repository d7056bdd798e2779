"""Dagster consoles say only what matters: `make ui` on a demo instance prints neither the
telemetry banner nor the warning about a dagster.yaml in the working folder."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scone_assets.defs.demo import instance_for

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_ui_console_has_no_telemetry_banner_nor_dagster_yaml_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # instance_for sets it: restored afterwards
    home = tmp_path / "dagster_home"
    instance_for(home)
    # as `make ui` runs it: from the repository root, DAGSTER_HOME elsewhere
    out = tmp_path / "dev.log"
    env = os.environ | {"DAGSTER_HOME": str(home)}
    with out.open("w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
                                 "-h", "127.0.0.1", "-p", str(_free_port())], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Serving dagster-webserver" not in out.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the webserver and daemon with it
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.read_text()
    assert "Serving dagster-webserver" in text, text[-3000:]
    assert "Telemetry:" not in text and "usage statistics" not in text, text[-3000:]
    assert "in the current folder, but your DAGSTER_HOME" not in text, text[-3000:]
