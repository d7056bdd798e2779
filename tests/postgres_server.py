"""A real PostgreSQL server for tests, from Debian's binaries (the `postgresql` package that
scripts/system_deps.sh installs): initdb'd in a temporary folder, listening on 127.0.0.1 on a
free port with password (scram-sha-256) authentication, one database created, and stopped
afterwards by process id.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system user
(created by the Debian package): its folder lives directly under the system temporary folder
(pytest's own folders are private to root) and is owned by that user, and initdb and the
server are started with that user's id. Not as root, it runs as the current user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("initdb", "postgres")
SERVER_USER = "postgres"  # the Debian package's system user


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres, else the
    folder of an `initdb` on PATH."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin") if all((p / b).is_file() for b in BINARIES)),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").is_file():
        return Path(found).resolve().parent
    return None


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None."""
    if find_bin_dir() is None:
        return "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb; " \
               "scripts/system_deps.sh installs the postgresql package as root)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root but there is no '{SERVER_USER}' user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """`PostgresServer().start()`; `.dagster_config()` for a dagster.yaml; `.stop()`."""

    def __init__(self, username: str = "dagster", password: str | None = None, db_name: str = "dagster"):
        self.username = username
        self.password = password or os.urandom(12).hex()
        self.db_name = db_name
        self.host = "127.0.0.1"
        self.port = 0
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None

    # -------------------------------------------------------------- set-up
    def _as_server_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(SERVER_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60) -> PostgresServer:
        bin_dir = find_bin_dir()
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        ids = self._as_server_user()
        self.root = Path(tempfile.mkdtemp(prefix="scone-pg-"))
        data, sock = self.root / "data", self.root / "socket"
        sock.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if ids:
            for path in (self.root, sock, pwfile):
                os.chown(path, ids["user"], ids["group"])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(self.root)}
        res = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", self.username,
                              f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
                             cwd=self.root, env=env, capture_output=True, text=True, timeout=120, **ids)
        pwfile.unlink()
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr[-2000:]}{res.stdout[-2000:]}")
        self.port = _free_port()
        log = open(self.root / "postgres.log", "w")  # noqa: SIM115 (closed in stop)
        if ids:
            os.chown(log.name, ids["user"], ids["group"])
        self._log = log
        self.process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(sock),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "shared_buffers=32MB", "-c", "max_connections=200"],
            cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **ids)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log_tail()}")
            if self._ready():
                break
            time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError(f"postgres did not accept connections in {timeout:.0f} s: {self.log_tail()}")
        self.execute(f'CREATE DATABASE "{self.db_name}"', db="postgres")
        return self

    def _ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(**self.connect_args("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    # -------------------------------------------------------------- use
    def connect_args(self, db: str | None = None) -> dict:
        return {"host": self.host, "port": self.port, "user": self.username, "password": self.password,
                "dbname": db or self.db_name}

    def execute(self, sql: str, params=None, db: str | None = None) -> list[tuple]:
        """Runs one statement (autocommit); returns its rows, if any."""
        import psycopg2

        conn = psycopg2.connect(**self.connect_args(db))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def dagster_config(self) -> dict:
        """The `storage:` section of a dagster.yaml using this server."""
        return {"postgres": {"postgres_db": {"hostname": self.host, "port": self.port, "username": self.username,
                                             "password": self.password, "db_name": self.db_name}}}

    def log_tail(self, n: int = 3000) -> str:
        try:
            return (self.root / "postgres.log").read_text(errors="replace")[-n:]
        except (OSError, TypeError):
            return ""

    # -------------------------------------------------------------- teardown
    def stop(self) -> None:
        """Fast shutdown (SIGINT) of the postmaster by its process id, which ends its backends;
        SIGQUIT and then SIGKILL if it does not go in time. Removes the folder."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # a backend that outlived its postmaster (it is in the server's process group)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
